package flinksql_test

import (
	"os"
	"strings"
	"testing"

	"github.com/cdcq/cdcq/internal/flinksql"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/kafkasec/kafkasectest"
)

// TestKafkaSecurityInDDL: kafkasec's properties reach every source and the
// sink as Flink SQL string literals: a quote in the password doubled for
// SQL after JAAS escaped its double quote and backslash, the CA inline.
func TestKafkaSecurityInDDL(t *testing.T) {
	caFile := kafkasectest.WriteCA(t, t.TempDir())
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := kafkasec.Load(kafkasec.Settings{CAFile: caFile, Mechanism: kafkasec.ScramSHA256,
		Username: "cdcq", Password: `it's "q" \ x`})
	if err != nil {
		t.Fatal(err)
	}
	opts := options()
	opts.KafkaProperties = sec.FlinkProperties()
	stmts, err := flinksql.Translate(join(), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"  'properties.security.protocol' = 'SASL_SSL',\n",
		"  'properties.sasl.mechanism' = 'SCRAM-SHA-256',\n",
		`  'properties.sasl.jaas.config' = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="cdcq" password="it''s \"q\" \\ x";',` + "\n",
		"  'properties.ssl.truststore.type' = 'PEM',\n",
		"  'properties.ssl.truststore.certificates' = '" + string(ca) + "',\n",
	}
	if !strings.HasPrefix(string(ca), "-----BEGIN CERTIFICATE-----\n") {
		t.Fatalf("CA file %q is not PEM", ca)
	}
	tables := 0
	for _, st := range stmts {
		if !strings.HasPrefix(st, "CREATE TEMPORARY TABLE") {
			continue
		}
		tables++
		for _, w := range want {
			if !strings.Contains(st, w) {
				t.Errorf("statement lacks %q:\n%s", w, st)
			}
		}
	}
	if tables != 3 {
		t.Fatalf("%d tables, want two sources and the sink", tables)
	}
}
