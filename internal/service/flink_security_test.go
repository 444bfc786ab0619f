package service

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/flink/flinkfake"
	"github.com/cdcq/cdcq/internal/flink/kafkatopics"
	"github.com/cdcq/cdcq/internal/kafkaconnect/connectfake"
	"github.com/cdcq/cdcq/internal/kafkasec"
)

// authSeen serves h and keeps every request's Authorization header.
type authSeen struct {
	h    http.Handler
	mu   sync.Mutex
	auth []string
}

func (a *authSeen) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.auth = append(a.auth, r.Header.Get("Authorization"))
	a.mu.Unlock()
	a.h.ServeHTTP(w, r)
}

func (a *authSeen) all() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.auth...)
}

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
	connect := connectfake.NewServer(t)
	fl := flinkfake.NewServer(t)
	fl.Gateway.SetStatusPolls(0)
	gw, jm := &authSeen{h: fl.Gateway}, &authSeen{h: fl.JobManager}
	gwSrv, jmSrv := httptest.NewServer(gw), httptest.NewServer(jm)
	t.Cleanup(gwSrv.Close)
	t.Cleanup(jmSrv.Close)
	cfg.FlinkGatewayURL, cfg.FlinkRESTURL = gwSrv.URL, jmSrv.URL

	sys := startSystemWith(t, func(inf *Infra, base config.Config, _ *slog.Logger) []WorkerDeps {
		source, err := SourceClient(base, inf)
		if err != nil {
			t.Fatal(err)
		}
		capture, err := kafkaConnectCapture(config.Config{ConnectURL: connect.URL}, source)
		if err != nil {
			t.Fatal(err)
		}
		topics, err := kafkatopics.New(inf.Kafka())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(topics.Close)
		proc, err := flinkProcessor(cfg, sec, topics)
		if err != nil {
			t.Fatal(err)
		}
		return []WorkerDeps{{Capture: capture, Processor: proc, Source: source}}
	})
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
	for who, seen := range map[string][]string{"gateway": gw.all(), "jobmanager": jm.all()} {
		if len(seen) == 0 {
			t.Errorf("the %s received no request", who)
		}
		for i, a := range seen {
			if a != basic {
				t.Errorf("%s request %d: Authorization %q, want %q", who, i, a, basic)
			}
		}
	}
	for _, secret := range []string{"kafka-pw", "flink-pw"} {
		if strings.Contains(sys.logs.String(), secret) {
			t.Errorf("the logs show %s", secret)
		}
	}
}
