package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/debezium"
	"github.com/cdcq/cdcq/internal/kafkaconnect/connectfake"
	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/internal/pgtest"
)

// The password of every source connection string in these tests. It must
// not appear anywhere cdcq writes except the Debezium config sent to Kafka
// Connect (the trust-authenticated test server ignores it).
const knownPassword = "Zq8-unforgettable-Passw0rd"

// sourceDatabase is a customer database on a wal_level=logical server, and
// its connection string with knownPassword in it.
func sourceDatabase(t testing.TB) (url string, conn *pgx.Conn) {
	t.Helper()
	plain := pgtest.NewDatabase(t)
	url = strings.Replace(plain, "postgres://cdcq@", "postgres://cdcq:"+knownPassword+"@", 1)
	c, err := pgx.Connect(context.Background(), plain)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return url, c
}

// debeziumStarted does to the source database what Debezium's connector
// does when it starts: create its slot and its publication.
func debeziumStarted(t *testing.T, src *pgx.Conn, env string) {
	t.Helper()
	ctx := context.Background()
	if _, err := src.Exec(ctx, "CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY, total numeric)"); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Exec(ctx, fmt.Sprintf("CREATE PUBLICATION %s FOR ALL TABLES", names.PublicationName(env))); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", names.SlotName(env)); err != nil {
		t.Fatal(err)
	}
}

func slotAndPublicationCount(t *testing.T, src *pgx.Conn, env string) (slots, pubs int) {
	t.Helper()
	ctx := context.Background()
	if err := src.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", names.SlotName(env)).Scan(&slots); err != nil {
		t.Fatal(err)
	}
	if err := src.QueryRow(ctx, "SELECT count(*) FROM pg_publication WHERE pubname = $1", names.PublicationName(env)).Scan(&pubs); err != nil {
		t.Fatal(err)
	}
	return slots, pubs
}

func startWithConnect(t *testing.T) (*system, *connectfake.Server) {
	t.Helper()
	return startWithConnectConfig(t, config.Config{})
}

// startWithConnectConfig is startWithConnect with cfg's Kafka Connect
// settings (its ConnectURL is the fake's).
func startWithConnectConfig(t *testing.T, cfg config.Config) (*system, *connectfake.Server) {
	t.Helper()
	fake := connectfake.NewServer(t)
	cfg.ConnectURL = fake.URL
	return startSystemWith(t, func(inf *Infra, base config.Config, _ *slog.Logger) []WorkerDeps {
		source, err := SourceClient(base, inf)
		if err != nil {
			t.Fatal(err)
		}
		capture, err := kafkaConnectCapture(cfg, source)
		if err != nil {
			t.Fatal(err)
		}
		return []WorkerDeps{{Capture: capture, Processor: noProcessor{}, Source: source}}
	}), fake
}

// The whole life of a connection through Kafka Connect: create (form),
// status with connector, tasks and slot (JSON), a failed task noticed by
// the status poller, delete (form) leaving no connector, slot or
// publication behind.
func TestKafkaConnectLifecycle(t *testing.T) {
	s, fake := startWithConnect(t)
	src, srcConn := sourceDatabase(t)
	const env = "shop1"
	body := map[string]string{"connectionString": src, "environmentId": env}

	res := s.postForm("/createDatabaseConnection", body)
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	m := s.waitForStatus(src, env, "RUNNING", func(m map[string]any) bool { return m["status"] == "RUNNING" })
	c, ok := fake.Connector(names.ConnectorName(env))
	if !ok {
		t.Fatal("no connector in Kafka Connect")
	}
	for k, want := range map[string]string{
		"connector.class": "io.debezium.connector.postgresql.PostgresConnector", "plugin.name": "pgoutput",
		"topic.prefix": env, "slot.name": names.SlotName(env), "publication.name": names.PublicationName(env),
		"database.password": knownPassword, "tombstones.on.delete": "true",
	} {
		if got := c.Config[k]; got != want {
			t.Errorf("connector config %s = %q, want %q", k, got, want)
		}
	}
	connector, _ := m["connector"].(map[string]any)
	if connector["state"] != "RUNNING" || len(connector["tasks"].([]any)) != 1 {
		t.Errorf("connector in status = %v", connector)
	}

	debeziumStarted(t, srcConn, env)
	m = s.waitForStatus(src, env, "slot seen", func(m map[string]any) bool {
		slot, _ := m["slot"].(map[string]any)
		return slot["exists"] == true
	})
	if slot := m["slot"].(map[string]any); slot["active"] != false || slot["retainedWalBytes"] == nil {
		t.Errorf("slot = %v", slot)
	}

	// A RUNNING connector with a FAILED task is not healthy.
	const trace = "org.apache.kafka.connect.errors.ConnectException: replication slot is in use\n\tat io.debezium..."
	if err := fake.SetTaskState(names.ConnectorName(env), 0, "FAILED", trace); err != nil {
		t.Fatal(err)
	}
	m = s.waitForStatus(src, env, "FAILED task", func(m map[string]any) bool { return m["status"] == "FAILED" })
	if reason, _ := m["reason"].(string); !strings.Contains(reason, "replication slot is in use") {
		t.Errorf("reason = %q", reason)
	}
	task := m["connector"].(map[string]any)["tasks"].([]any)[0].(map[string]any)
	if task["trace"] != trace || task["state"] != "FAILED" {
		t.Errorf("task = %v", task)
	}

	if res := s.postForm("/deleteDatabaseConnection", body); res.status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", res.status, res.body)
	}
	s.waitForStatus(src, env, "DELETED", func(m map[string]any) bool { return m["status"] == "DELETED" })
	if names := fake.Names(); len(names) != 0 {
		t.Errorf("connectors left in Kafka Connect: %v", names)
	}
	if slots, pubs := slotAndPublicationCount(t, srcConn, env); slots != 0 || pubs != 0 {
		t.Errorf("left behind: %d slots, %d publications", slots, pubs)
	}
}

// Kafka Connect answering 409 during a rebalance, then 500, is retried
// until the connector is created.
func TestKafkaConnectRebalanceIsRetried(t *testing.T) {
	s, fake := startWithConnect(t)
	src, _ := sourceDatabase(t)
	fake.FailNext(2, connectfake.Rebalance)
	fake.FailNext(1, connectfake.ServerError)
	if res := s.postJSON("/createDatabaseConnection", map[string]string{"connectionString": src, "environmentId": "shop2"}); res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	s.waitForStatus(src, "shop2", "RUNNING", func(m map[string]any) bool { return m["status"] == "RUNNING" })
	if _, ok := fake.Connector("cdcq-shop2"); !ok {
		t.Fatal("connector not created")
	}
}

// Kafka Connect rejecting the config (400) fails the job with Connect's
// message, and the command is acknowledged: the next one is carried out.
func TestKafkaConnectBadConfigFailsJob(t *testing.T) {
	s, fake := startWithConnect(t)
	src, _ := sourceDatabase(t)
	fake.RejectKey("topic.prefix", "shop3", "Topic prefix 'shop3' is reserved by this test")
	body := map[string]string{"connectionString": src, "environmentId": "shop3"}
	if res := s.postJSON("/createDatabaseConnection", body); res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	m := s.waitForStatus(src, "shop3", "FAILED", func(m map[string]any) bool { return m["status"] == "FAILED" })
	if reason, _ := m["reason"].(string); !strings.Contains(reason, "reserved by this test") {
		t.Errorf("reason = %q, want Connect's message", reason)
	}
	if res := s.postJSON("/deleteDatabaseConnection", body); res.status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", res.status, res.body)
	}
	s.waitForStatus(src, "shop3", "DELETED", func(m map[string]any) bool { return m["status"] == "DELETED" })
}

// The password of a connection string appears in no log line, no
// response, no record on any cdcq topic, and no row of the job-state
// database; with a secrets directory, not in Kafka Connect either, and its
// file is the owner's only. (TestClusterConnectHoldsNoPassword checks the
// same with the real Kafka Connect.)
func TestPasswordAppearsNowhere(t *testing.T) {
	secrets := t.TempDir()
	if err := os.Chmod(secrets, 0o700); err != nil { // as an operator keeps it
		t.Fatal(err)
	}
	s, fake := startWithConnectConfig(t, config.Config{ConnectSecretsDir: secrets})
	src, srcConn := sourceDatabase(t)
	const env = "secret1"
	body := map[string]string{"connectionString": src, "environmentId": env}
	s.postForm("/createDatabaseConnection", body)
	s.waitForStatus(src, env, "RUNNING", func(m map[string]any) bool { return m["status"] == "RUNNING" })
	c, _ := fake.Connector(names.ConnectorName(env))
	if cfg := fmt.Sprint(c.Config); strings.Contains(cfg, knownPassword) || !strings.Contains(cfg, "${dir:"+secrets+":") {
		t.Errorf("Kafka Connect holds the password, or no reference to its file: %s", cfg)
	}
	checkSecretsFile(t, secrets, names.ConnectorName(env), knownPassword)
	debeziumStarted(t, srcConn, env)
	s.postJSON("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": env,
		"schema": "model orders {\n id Int @id\n total Decimal\n}", "sqlQuery": "SELECT count(*) FROM orders"})
	// Validation errors must not echo the string either.
	s.postForm("/createDatabaseConnection", map[string]string{"connectionString": src + "%zz", "environmentId": env})
	s.postForm("/checkJobStatus", map[string]string{"connectionString": strings.Replace(src, "127.0.0.1", "localhost", 1), "environmentId": env})
	fake.SetTaskState(names.ConnectorName(env), 0, "FAILED", "password authentication failed for user cdcq")
	s.waitForStatus(src, env, "FAILED", func(m map[string]any) bool { return m["status"] == "FAILED" })
	s.postForm("/deleteDatabaseConnection", body)
	s.waitForStatus(src, env, "DELETED", func(m map[string]any) bool { return m["status"] == "DELETED" })
	checkNoSecretsFile(t, secrets, names.ConnectorName(env))
	s.checkPasswordNowhere(t, env, knownPassword)
}

// checkPasswordNowhere checks that password is in no log line, no
// response, no record on cdcq's topics and no row of the job-state
// database of s, where environment env was created and deleted.
func (s *system) checkPasswordNowhere(t *testing.T, env, password string) {
	t.Helper()
	if strings.Contains(s.logs.String(), password) {
		t.Error("password found in logs")
	}
	s.respMu.Lock()
	for _, r := range s.responses {
		if strings.Contains(r, password) {
			t.Errorf("password found in a response: %s", r)
		}
	}
	s.respMu.Unlock()
	var recs []*kgo.Record
	for _, topic := range []string{s.inf.Names.Commands, s.inf.Names.CommandsDead, s.inf.Names.Events, s.inf.Names.EventsDead} {
		recs = append(recs, s.records(topic)...)
	}
	if len(recs) < 8 {
		t.Fatalf("only %d records on cdcq's topics; the test is not looking at them", len(recs))
	}
	for _, r := range recs {
		text := string(r.Key) + string(r.Value)
		for _, h := range r.Headers {
			text += h.Key + string(h.Value)
		}
		if strings.Contains(text, password) {
			t.Errorf("password found on topic %s: %s", r.Topic, text)
		}
	}
	rows := dumpTables(t, s.inf.DatabaseURL)
	if !strings.Contains(rows, env) {
		t.Fatal("job-state dump does not mention the environment; the test is not looking at it")
	}
	if strings.Contains(rows, password) {
		t.Error("password found in the job-state database")
	}
}

// checkSecretsFile checks that the secrets directory and connector's
// password file in it are their owner's only, and that the file holds
// password.
func checkSecretsFile(t *testing.T, dir, connector, password string) {
	t.Helper()
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		t.Errorf("secrets directory %s has mode %v: others may read it", dir, st.Mode().Perm())
	}
	path := filepath.Join(dir, debezium.SecretFileName(connector))
	if st, err = os.Stat(path); err != nil {
		t.Fatalf("password file: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("password file %s has mode %v, want 0600", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != password {
		t.Errorf("password file %s does not hold the connection's password", path)
	}
}

// checkNoSecretsFile checks that connector's password file is gone.
func checkNoSecretsFile(t *testing.T, dir, connector string) {
	t.Helper()
	path := filepath.Join(dir, debezium.SecretFileName(connector))
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("password file %s is still there (%v)", path, err)
	}
}

// dumpTables renders every row of every table in the public schema as text.
func dumpTables(t *testing.T, url string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, table := range tables {
		rows, err := conn.Query(ctx, fmt.Sprintf("SELECT t::text FROM %s t", pgx.Identifier{table}.Sanitize()))
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(strings.Join(lines, "\n"))
	}
	return b.String()
}

func secretsPath(dir, connector string) string {
	return filepath.Join(dir, debezium.SecretFileName(connector))
}

// readFileIfExists is the file's content, "" when it does not exist.
func readFileIfExists(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return string(b), err
}
