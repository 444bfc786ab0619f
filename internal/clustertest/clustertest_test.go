package clustertest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// The test binary points CDCQ_TEST_CLUSTER_ENV at an env file describing
// stand-ins that answer like the cluster's endpoints: Shared must take that
// cluster instead of starting one. (internal/localcluster's own test starts a
// real one.)
func TestMain(m *testing.M) {
	// Main exits the process, which closes these.
	broker, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		panic(err)
	}
	endpoints := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/connector-plugins":
			w.Write([]byte(`[{"class":"io.debezium.connector.postgresql.PostgresConnector","type":"source"}]`))
		case "/connectors":
			w.Write([]byte(`[]`))
		case "/overview":
			w.Write([]byte(`{"taskmanagers":1,"slots-total":32,"slots-available":32}`))
		case "/v1/info":
			w.Write([]byte(`{"productName":"Apache Flink","version":"1.20.3"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	dir, err := os.MkdirTemp("", "clustertest-")
	if err != nil {
		panic(err)
	}
	envDir = dir
	env := filepath.Join(dir, "env")
	u := endpoints.URL
	text := "export CDCQ_KAFKA_BROKERS=" + strings.Join(broker.ListenAddrs(), ",") + "\n" +
		"export CDCQ_CONNECT_URL=" + u + "\nexport CDCQ_FLINK_SQL_GATEWAY_URL=" + u + "\nexport CDCQ_FLINK_REST_URL=" + u + "\n"
	if err := os.WriteFile(env, []byte(text), 0o644); err != nil {
		panic(err)
	}
	os.Setenv(EnvFileVariable, env)
	wantURL = u
	Main(m)
}

var wantURL, envDir string

func TestSharedUsesTheClusterOfTheEnvFile(t *testing.T) {
	t.Cleanup(func() { _ = os.RemoveAll(envDir) })
	c := Shared(t)
	if c.ConnectURL() != wantURL || c.SQLGatewayURL() != wantURL || c.FlinkRESTURL() != wantURL {
		t.Errorf("Shared = %s, %s, %s; want the env file's %s", c.ConnectURL(), c.SQLGatewayURL(), c.FlinkRESTURL(), wantURL)
	}
	if c.Dir() != "" {
		t.Errorf("Shared started a cluster in %s", c.Dir())
	}
	if again := Shared(t); again != c {
		t.Error("a second Shared returned another cluster")
	}
}
