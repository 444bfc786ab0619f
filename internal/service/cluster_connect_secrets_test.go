package service

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/clustertest"
	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/localcluster"
	"github.com/cdcq/cdcq/internal/names"
)

// With CDCQ_CONNECT_SECRETS_DIR on the real Kafka Connect: a capture made
// through cdcq runs (its rows arrive) while Connect's REST API and its
// config topic show no password, only a reference to a 0600 file that
// holds it; a rotated password rewrites the file and the restarted
// connector goes on capturing; delete removes the file. Nothing else cdcq
// writes holds either password (as TestPasswordAppearsNowhere checks with
// the fake).
func TestClusterConnectHoldsNoPassword(t *testing.T) {
	c := clustertest.Shared(t)
	secrets := c.ConnectSecretsDir()
	if secrets == "" {
		t.Fatal("the cluster's env file sets no CDCQ_CONNECT_SECRETS_DIR: start it again with this localcluster")
	}
	// The cluster's Connect asks for basic authentication (cdcq sends it:
	// the capture below runs only if it does).
	if c.ConnectAuthorization() == "" {
		t.Fatal("the cluster's env file sets no CDCQ_CONNECT_USERNAME: start it again with this localcluster")
	}
	if res, err := http.Get(c.ConnectURL() + "/connectors"); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /connectors without credentials: %v %v, want 401", res.Status, err)
	} else {
		res.Body.Close()
	}
	s := startClusterSystem(t, clusterEngines{debezium: true})
	src, srcConn := sourceDatabase(t)
	ctx := context.Background()
	if _, err := srcConn.Exec(ctx, `CREATE TABLE items (id int PRIMARY KEY, note text);
		INSERT INTO items VALUES (1, 'snapshot')`); err != nil {
		t.Fatal(err)
	}
	env := uniqueEnv("csec")
	name := names.ConnectorName(env)
	conn := map[string]string{"connectionString": src, "environmentId": env}
	if res := s.postJSON("/createDatabaseConnection", conn); res.status != http.StatusCreated {
		t.Fatalf("create connection: %d %s", res.status, res.body)
	}
	side := &captureSide{name: "debezium", s: s, env: env}
	side.await(t, src, "items", 2*time.Minute, func(recs []*kgo.Record) bool { return len(recs) >= 1 })
	checkConnectShowsNoPassword(t, c, name, knownPassword)
	checkSecretsFile(t, secrets, name, knownPassword)

	// Rotation: the same database, a new password.
	const rotated = "Rotated-9xq-Passw0rd"
	conn["connectionString"] = strings.Replace(src, ":"+knownPassword+"@", ":"+rotated+"@", 1)
	if res := s.postJSON("/createDatabaseConnection", conn); res.status != http.StatusCreated {
		t.Fatalf("create connection with the rotated password: %d %s", res.status, res.body)
	}
	waitFor(t, time.Minute, "the password file rewritten", func() bool {
		b, _ := readFileIfExists(secretsPath(secrets, name))
		return b == rotated
	})
	checkSecretsFile(t, secrets, name, rotated)
	if _, err := srcConn.Exec(ctx, `INSERT INTO items VALUES (2, 'after rotation')`); err != nil {
		t.Fatal(err)
	}
	side.await(t, src, "items", 2*time.Minute, func(recs []*kgo.Record) bool {
		return len(recs) >= 2 && strings.Contains(string(recs[len(recs)-1].Value), "after rotation")
	})
	s.waitForStatusWithin(src, env, "RUNNING after the rotation", time.Minute, func(m map[string]any) bool { return m["status"] == "RUNNING" })
	checkConnectShowsNoPassword(t, c, name, knownPassword, rotated)

	if res := s.postJSON("/deleteDatabaseConnection", conn); res.status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", res.status, res.body)
	}
	s.waitForStatusWithin(src, env, "DELETED", 2*time.Minute, func(m map[string]any) bool { return m["status"] == "DELETED" })
	checkNoSecretsFile(t, secrets, name)
	checkConfigTopicHoldsNoPassword(t, s, name, knownPassword, rotated)
	s.checkPasswordNowhere(t, env, knownPassword)
	s.checkPasswordNowhere(t, env, rotated)
	// Nor does Connect's REST password, as it is or as sent.
	s.checkPasswordNowhere(t, env, c.ConnectPassword())
	s.checkPasswordNowhere(t, env, strings.TrimPrefix(c.ConnectAuthorization(), "Basic "))
	// Debezium logs its configuration with the password masked; the log of
	// a cluster from CDCQ_TEST_CLUSTER_ENV is not known here.
	if log := c.LogFile(localcluster.Connect); log != "" {
		b, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), name) {
			t.Fatalf("Kafka Connect's log %s does not mention %s; the test is not looking at it", log, name)
		}
		if strings.Contains(string(b), knownPassword) || strings.Contains(string(b), rotated) {
			t.Errorf("Kafka Connect's log %s holds a password", log)
		}
	}
}

// checkConnectShowsNoPassword reads what Kafka Connect's REST API shows of
// connector, and checks that no password appears while the configuration
// refers to its file.
func checkConnectShowsNoPassword(t *testing.T, c *localcluster.Cluster, connector string, passwords ...string) {
	t.Helper()
	config := connectGet(t, c, "/connectors/"+connector+"/config")
	if !strings.Contains(config, `"${dir:`) {
		t.Errorf("the connector's config names no password file: %s", config)
	}
	for _, path := range []string{
		"/connectors/" + connector + "/config",
		"/connectors/" + connector,
		"/connectors/" + connector + "/tasks",
		"/connectors?expand=info&expand=status",
	} {
		body := connectGet(t, c, path)
		if strings.HasPrefix(path, "/connectors?") {
			// Only this connector's entry: a cluster reused from older runs
			// may list connectors that cdcq made before it had a secrets
			// directory.
			var all map[string]json.RawMessage
			if err := json.Unmarshal([]byte(body), &all); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			body = string(all[connector])
		}
		if !strings.Contains(body, connector) && !strings.Contains(body, "database.dbname") {
			t.Fatalf("GET %s does not show the connector; the test is not looking at it: %.500s", path, body)
		}
		for _, pw := range passwords {
			if strings.Contains(body, pw) {
				t.Errorf("GET %s shows a password", path)
			}
		}
	}
}

// checkConfigTopicHoldsNoPassword reads Connect's config topic: the
// records of connector (its configuration, task configurations, commits
// and target states) must hold no password.
func checkConfigTopicHoldsNoPassword(t *testing.T, s *system, connector string, passwords ...string) {
	t.Helper()
	n := 0
	for _, r := range s.records(localcluster.ConnectConfigTopic) {
		if !strings.Contains(string(r.Key), connector) {
			continue
		}
		n++
		for _, pw := range passwords {
			if strings.Contains(string(r.Value), pw) {
				t.Errorf("Connect's config topic holds a password in record %s", r.Key)
			}
		}
	}
	if n == 0 {
		t.Fatalf("no record of %s on %s; the test is not looking at it", connector, localcluster.ConnectConfigTopic)
	}
}

// useClusterConnect points cfg at the cluster's Kafka Connect as an
// operator does: the cluster's env file read by config (CDCQ_CONNECT_URL,
// CDCQ_CONNECT_USERNAME and _PASSWORD, CDCQ_CONNECT_SECRETS_DIR), so that
// cdcq authenticates as configured and Connect never holds a source
// password.
func useClusterConnect(tb testing.TB, cfg *config.Config, c *localcluster.Cluster) {
	tb.Helper()
	env := map[string]string{}
	for _, kv := range c.EnvVars() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	op, err := config.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		tb.Fatalf("the cluster's env file: %v", err)
	}
	if op.ConnectAuthorization.Reveal() != c.ConnectAuthorization() || op.ConnectSecretsDir == "" {
		tb.Fatalf("config read the cluster's Connect settings as %q, secrets dir %q", op.ConnectAuthorization, op.ConnectSecretsDir)
	}
	cfg.ConnectURL, cfg.ConnectSecretsDir, cfg.ConnectAuthorization = op.ConnectURL, op.ConnectSecretsDir, op.ConnectAuthorization
}

// connectGetResponse sends GET path to the cluster's Kafka Connect, with
// its credentials.
func connectGetResponse(c *localcluster.Cluster, path string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, c.ConnectURL()+path, nil)
	if err != nil {
		return nil, err
	}
	if a := c.ConnectAuthorization(); a != "" {
		req.Header.Set("Authorization", a)
	}
	return http.DefaultClient.Do(req)
}

func connectGet(t *testing.T, c *localcluster.Cluster, path string) string {
	t.Helper()
	res, err := connectGetResponse(c, path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %.300s", path, res.StatusCode, b)
	}
	return string(b)
}
