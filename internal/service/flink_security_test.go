package service

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/flink/flinkfake"
	"github.com/cdcq/cdcq/internal/kafkasec"
)

// The configuration as `cdcq worker` reads it reaches Flink: CDCQ_FLINK_USERNAME
// and CDCQ_FLINK_PASSWORD as basic authentication on every request to the
// SQL Gateway and the JobManager, the Kafka SASL settings as the job's
// connector properties.
func TestFlinkGetsKafkaSecurityAndAuthorization(t *testing.T) {
	cfg, err := config.FromEnv(func(k string) string {
		return map[string]string{
			"CDCQ_KAFKA_BROKERS":         "kafka:9092",
			"CDCQ_FLINK_SQL_GATEWAY_URL": "http://gateway", "CDCQ_FLINK_REST_URL": "http://jobmanager",
			"CDCQ_FLINK_USERNAME": "flink", "CDCQ_FLINK_PASSWORD": "flink-pw",
			"CDCQ_KAFKA_SASL_MECHANISM": "PLAIN", "CDCQ_KAFKA_SASL_USERNAME": "cdcq", "CDCQ_KAFKA_SASL_PASSWORD": "kafka-pw",
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := kafkasec.Load(kafkaSettings(cfg))
	if err != nil {
		t.Fatal(err)
	}
	fl := flinkfake.NewServer(t)
	fl.Gateway.SetStatusPolls(0)
	cfg.FlinkGatewayURL, cfg.FlinkRESTURL = fl.GatewayURL, fl.JobManagerURL
	sys := startWithConnectAndFlinkConfig(t, cfg, &sec)
	src := ordersDatabase(t)
	const env = "secured1"
	res := sys.postForm("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": env, "schema": ordersSchema,
		"sqlQuery": "SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id"})
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	sys.waitForStatus(src, env, "query RUNNING", func(m map[string]any) bool {
		qs, _ := m["cachedQueries"].([]any)
		return len(qs) == 1 && qs[0].(map[string]any)["status"] == "RUNNING"
	})

	stmts := strings.Join(fl.Gateway.Statements(), ";\n")
	for _, want := range []string{
		"'properties.bootstrap.servers' = 'kafka:9092'",
		"'properties.security.protocol' = 'SASL_PLAINTEXT'",
		"'properties.sasl.mechanism' = 'PLAIN'",
		`'properties.sasl.jaas.config' = 'org.apache.kafka.common.security.plain.PlainLoginModule required username="cdcq" password="kafka-pw";'`,
	} {
		if n := strings.Count(stmts, want); n != 2 {
			t.Errorf("%q in %d statements, want 2 (the source and the sink):\n%s", want, n, stmts)
		}
	}
	basic := "Basic Zmxpbms6ZmxpbmstcHc=" // flink:flink-pw
	flinkfake.CheckAuthorization(t, "gateway", fl.Gateway.Requests(), basic)
	flinkfake.CheckAuthorization(t, "jobmanager", fl.JobManager.Requests(), basic)
	for _, secret := range []string{"kafka-pw", "flink-pw"} {
		if strings.Contains(sys.logs.String(), secret) {
			t.Errorf("the logs show %s", secret)
		}
	}
}
