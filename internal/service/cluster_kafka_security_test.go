package service

import (
	"strings"
	"testing"

	"github.com/cdcq/cdcq/internal/clustertest"
	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/localcluster"
)

// useClusterSASLKafka points cfg at the cluster's SASL_SSL listener, as an
// operator configures a secured Kafka: SCRAM-SHA-256 over TLS, the CA as a
// file. The test fails when the cluster has no such listener (one started
// by an older cdcq: restart it).
func useClusterSASLKafka(t testing.TB, cfg *config.Config, c *localcluster.Cluster) {
	t.Helper()
	if c.KafkaSASLBrokers() == "" {
		t.Fatal("the cluster has no Kafka SASL_SSL listener (CDCQ_TEST_KAFKA_SASL_BROKERS); restart it with `go run ./cmd/localcluster down` and `up`")
	}
	cfg.KafkaBrokers = strings.Split(c.KafkaSASLBrokers(), ",")
	cfg.KafkaTLS, cfg.KafkaTLSCAFile = true, c.KafkaSASLCAFile()
	cfg.KafkaSASLMechanism = kafkasec.ScramSHA256
	cfg.KafkaSASLUsername, cfg.KafkaSASLPassword = c.KafkaSASLUsername(), config.Secret(c.KafkaSASLPassword())
}

// On the real cluster's Kafka reached only through its SASL_SSL listener
// (SCRAM-SHA-256 over TLS, CA from a file): the API, the worker, the
// embedded capture, and Flink, whose jobs read and write that listener
// with the connector properties cdcq gives them (security protocol, SCRAM
// JAAS config, the CA inline as a PEM trust store). The listener refuses
// anything else, so a job without them never produces a result; with them,
// the cached queries equal PostgreSQL's answers after the snapshot and
// after a workload.
func TestFlinkQueriesOnSCRAMOverTLSClusterKafka(t *testing.T) {
	c := clustertest.Shared(t)
	if c.KafkaSASLBrokers() != "" {
		refused(t, kafkasec.Cluster{Brokers: []string{c.KafkaSASLBrokers()}}, "plaintext on the SASL_SSL listener")
	}
	d := &clusterDeployment{name: "sasl_flink", use: clusterEngines{flink: true, saslKafka: true}}
	runClusterDifferential(t, clusterQueries[:2], []*clusterDeployment{d})
	if got, want := d.s.inf.KafkaSecurity.String(), "SASL_SSL SCRAM-SHA-256 as "+c.KafkaSASLUsername(); got != want {
		t.Errorf("security = %q, want %q", got, want)
	}
	for _, id := range d.ids {
		if st := d.s.queryStatus(id); !strings.Contains(st, `"engine":"flink"`) {
			t.Errorf("query %s does not run on Flink: %s", id, st)
		}
	}
	if strings.Contains(d.s.logs.String(), c.KafkaSASLPassword()) {
		t.Error("the logs show the Kafka SASL password")
	}
}
