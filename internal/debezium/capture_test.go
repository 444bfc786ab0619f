package debezium_test

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/handlers"
	"github.com/cdcq/cdcq/internal/debezium"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/kafkaconnect"
	"github.com/cdcq/cdcq/internal/kafkaconnect/connectfake"
	"github.com/cdcq/cdcq/internal/pgsource"
	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/internal/sourcepolicy"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Component tests: the capture against connectfake and a real PostgreSQL
// database standing in for the customer's.

type fixture struct {
	fake    *connectfake.Server
	capture *debezium.Capture
	dsn     string // source database, without a password (trust auth)
	db      *pgx.Conn
}

// allowLoopback lets the fixture reach the test server on 127.0.0.1,
// which the default source policy refuses.
var allowLoopback = func() *sourcepolicy.Policy {
	p, err := sourcepolicy.New(sourcepolicy.Rules{Allow: []string{sourcepolicy.WordLoopback}})
	if err != nil {
		panic(err)
	}
	return p
}()

func newFixture(t *testing.T, cfg debezium.Config) *fixture {
	t.Helper()
	fake := connectfake.NewServer(t)
	connect, err := kafkaconnect.New(kafkaconnect.Config{URL: fake.URL, RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	source, err := pgsource.New(pgsource.Config{ActiveSlotGrace: time.Second, PollInterval: 20 * time.Millisecond, Policy: allowLoopback})
	if err != nil {
		t.Fatal(err)
	}
	capture, err := debezium.New(connect, source, cfg)
	if err != nil {
		t.Fatal(err)
	}
	dsn := pgtest.NewDatabase(t)
	db, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	return &fixture{fake: fake, capture: capture, dsn: dsn, db: db}
}

// withPassword adds a password to the trust-auth test URL, so that tests
// can check it never leaks; the server ignores it.
func withPassword(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), fakePassword)
	return u.String()
}

func (f *fixture) createSlotAndPublication(t *testing.T, spec handlers.CaptureSpec) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.db.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, spec.SlotName); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Exec(ctx, `CREATE PUBLICATION `+pgx.Identifier{spec.PublicationName}.Sanitize()+` FOR ALL TABLES`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pgsource.DropSlotAndPublication(ctx, f.dsn, spec.SlotName, spec.PublicationName) })
}

func (f *fixture) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := f.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNewRefusesNilDependencies(t *testing.T) {
	connect, err := kafkaconnect.New(kafkaconnect.Config{URL: "http://connect:8083"})
	if err != nil {
		t.Fatal(err)
	}
	source, err := pgsource.New(pgsource.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := debezium.New(nil, source, debezium.Config{}); err == nil {
		t.Fatal("accepted a nil Connect")
	}
	if _, err := debezium.New(connect, nil, debezium.Config{}); err == nil {
		t.Fatal("accepted a nil Source")
	}
	c, err := debezium.New(connect, source, debezium.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Engine() != "kafka-connect" {
		t.Fatalf("Engine() = %q", c.Engine())
	}
}

func TestEnsureCreatesTheConnectorOnce(t *testing.T) {
	f := newFixture(t, debezium.Config{})
	spec := specFor("ensure1", withPassword(t, f.dsn))
	ctx := context.Background()

	if err := f.capture.Ensure(ctx, spec); err != nil {
		t.Fatal(err)
	}
	want, err := debezium.ConnectorConfig(spec)
	if err != nil {
		t.Fatal(err)
	}
	puts := f.fake.RequestsTo(http.MethodPut, "/connectors/cdcq-ensure1/config")
	if len(puts) != 1 {
		t.Fatalf("%d PUTs, want 1", len(puts))
	}
	var sent map[string]string
	if err := json.Unmarshal(puts[0].Body, &sent); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(sent, want) {
		t.Fatalf("PUT body\n got %v\nwant %v", sent, want)
	}
	if c, ok := f.fake.Connector("cdcq-ensure1"); !ok || c.Config["slot.name"] != "cdcq_ensure1" {
		t.Fatalf("connector not stored: %+v", c)
	}

	// Redelivered command: nothing changes, nothing is re-sent.
	for range 2 {
		if err := f.capture.Ensure(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.fake.RequestsTo(http.MethodPut, "/connectors/cdcq-ensure1/config")); n != 1 {
		t.Fatalf("repeated Ensure sent %d PUTs in all, want 1", n)
	}

	// A changed spec (here: a new password) updates the connector.
	u, _ := url.Parse(spec.ConnectionString)
	u.User = url.UserPassword(u.User.Username(), "rotated-"+fakePassword)
	spec.ConnectionString = u.String()
	if err := f.capture.Ensure(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.fake.Connector("cdcq-ensure1"); c.Config["database.password"] != "rotated-"+fakePassword {
		t.Fatalf("config not updated: password %q", c.Config["database.password"])
	}
}

// TestEnsureChecksTheSourcePolicy: a host the policy refuses never
// reaches Kafka Connect.
func TestEnsureChecksTheSourcePolicy(t *testing.T) {
	f := newFixture(t, debezium.Config{})
	connect, err := kafkaconnect.New(kafkaconnect.Config{URL: f.fake.URL, RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	strict, err := pgsource.New(pgsource.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := debezium.New(connect, strict, debezium.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, dsn := range []string{
		withPassword(t, f.dsn),
		"postgres://u:s3cret@169.254.169.254:5432/db",
		"postgres://u:s3cret@localhost:5432/db",
	} {
		err := c.Ensure(context.Background(), specFor("policy1", dsn))
		if !jobs.IsTerminal(err) || !strings.Contains(err.Error(), "source policy refuses") {
			t.Errorf("error = %v, want a terminal policy refusal", err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error repeats the password: %v", err)
		}
	}
	if puts := f.fake.RequestsTo(http.MethodPut, "/connectors/cdcq-policy1/config"); len(puts) != 0 {
		t.Fatalf("%d PUTs reached Kafka Connect, want none", len(puts))
	}
}

func TestEnsureClassifiesConnectErrors(t *testing.T) {
	rejection := "The 'database.hostname' value is invalid: Unable to connect: Connection refused"
	tests := []struct {
		name     string
		script   func(s *connectfake.Server)
		terminal bool
		message  string
	}{
		{
			name:   "rebalance_on_read_is_retriable",
			script: func(s *connectfake.Server) { s.FailNext(1, connectfake.Rebalance) },
		},
		{
			name: "rebalance_on_put_is_retriable",
			script: func(s *connectfake.Server) {
				s.FailNext(1, connectfake.Failure{Status: 409, Message: connectfake.MessageRebalance, Method: http.MethodPut})
			},
			message: connectfake.MessageRebalance,
		},
		{
			name:    "server_error_is_retriable",
			script:  func(s *connectfake.Server) { s.FailNext(1, connectfake.ServerError) },
			message: connectfake.MessageRequestTimedOut,
		},
		{
			name:     "rejected_config_is_terminal_with_connects_message",
			script:   func(s *connectfake.Server) { s.RejectKey("plugin.name", "pgoutput", rejection) },
			terminal: true,
			message:  rejection,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, debezium.Config{})
			tt.script(f.fake)
			spec := specFor("classify"+string(rune('a'+i)), withPassword(t, f.dsn))
			err := f.capture.Ensure(context.Background(), spec)
			if err == nil {
				t.Fatal("Ensure succeeded")
			}
			if got := jobs.IsTerminal(err); got != tt.terminal {
				t.Fatalf("IsTerminal = %v, want %v: %v", got, tt.terminal, err)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("error %q does not carry %q", err, tt.message)
			}
			if strings.Contains(err.Error(), fakePassword) {
				t.Fatalf("error leaks the password: %v", err)
			}
			if !tt.terminal {
				if err := f.capture.Ensure(context.Background(), spec); err != nil {
					t.Fatalf("retry after the passing failure: %v", err)
				}
				if _, ok := f.fake.Connector(spec.ConnectorName); !ok {
					t.Fatal("retry did not create the connector")
				}
			}
		})
	}
}

func TestEnsureRefusesABadConnectionString(t *testing.T) {
	f := newFixture(t, debezium.Config{})
	spec := specFor("badconn", "mysql://root:"+fakePassword+"@db/app")
	err := f.capture.Ensure(context.Background(), spec)
	if !jobs.IsTerminal(err) || strings.Contains(err.Error(), fakePassword) {
		t.Fatalf("err = %v, want a terminal error without the password", err)
	}
	if n := len(f.fake.Requests()); n != 0 {
		t.Fatalf("sent %d requests to Kafka Connect for an unusable spec", n)
	}
}

func TestObserve(t *testing.T) {
	trace := "org.apache.kafka.connect.errors.ConnectException: An exception occurred in the change event producer. This connector will be stopped.\n" +
		"\tat io.debezium.pipeline.ErrorHandler.setProducerThrowable(ErrorHandler.java:67)\n" +
		"Caused by: org.postgresql.util.PSQLException: FATAL: password authentication failed for user \"postgres\"\n"
	tests := []struct {
		name    string
		script  func(s *connectfake.Server, name string) error
		status  jobs.Status
		reason  string
		noConn  bool // no connector in Connect
		traceOK func(cs *jobs.ConnectorState) bool
	}{
		{
			name:   "all_running",
			script: func(*connectfake.Server, string) error { return nil },
			status: jobs.StatusRunning,
		},
		{
			name: "running_connector_with_failed_task",
			script: func(s *connectfake.Server, name string) error {
				return s.SetTaskState(name, 0, "FAILED", trace)
			},
			status: jobs.StatusFailed,
			reason: "task 0 of connector cdcq-observe_running_connector_with_failed_task FAILED: org.apache.kafka.connect.errors.ConnectException: An exception occurred in the change event producer. This connector will be stopped.",
			traceOK: func(cs *jobs.ConnectorState) bool {
				return cs.State == "RUNNING" && len(cs.Tasks) == 1 && cs.Tasks[0].State == "FAILED" && cs.Tasks[0].Trace == trace
			},
		},
		{
			name: "failed_connector",
			script: func(s *connectfake.Server, name string) error {
				return s.SetConnectorState(name, "FAILED", "java.lang.NullPointerException\n\tat X\n")
			},
			status:  jobs.StatusFailed,
			reason:  "connector cdcq-observe_failed_connector FAILED: java.lang.NullPointerException",
			traceOK: func(cs *jobs.ConnectorState) bool { return cs.Trace == "java.lang.NullPointerException\n\tat X\n" },
		},
		{
			name: "paused",
			script: func(s *connectfake.Server, name string) error {
				if err := s.SetConnectorState(name, "PAUSED", ""); err != nil {
					return err
				}
				return s.SetTaskState(name, 0, "PAUSED", "")
			},
			status: jobs.StatusPaused,
			reason: "connector cdcq-observe_paused is PAUSED",
		},
		{
			name: "unassigned_is_pending",
			script: func(s *connectfake.Server, name string) error {
				return s.SetConnectorState(name, "UNASSIGNED", "")
			},
			status: jobs.StatusPending,
			reason: "connector cdcq-observe_unassigned_is_pending is UNASSIGNED",
		},
		{
			name:   "running_without_tasks_is_pending",
			script: func(s *connectfake.Server, name string) error { return s.SetTasks(name) },
			status: jobs.StatusPending,
			reason: "connector cdcq-observe_running_without_tasks_is_pending is RUNNING but has no tasks yet",
		},
		{
			name: "restarting_task_is_pending",
			script: func(s *connectfake.Server, name string) error {
				return s.SetTaskState(name, 0, "RESTARTING", "")
			},
			status: jobs.StatusPending,
			reason: "task 0 of connector cdcq-observe_restarting_task_is_pending is RESTARTING",
		},
		{
			name:   "missing_connector_is_failed",
			noConn: true,
			status: jobs.StatusFailed,
			reason: "connector cdcq-observe_missing_connector_is_failed does not exist in Kafka Connect",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, debezium.Config{})
			spec := specFor("observe_"+tt.name, withPassword(t, f.dsn))
			f.createSlotAndPublication(t, spec)
			if !tt.noConn {
				if err := f.capture.Ensure(context.Background(), spec); err != nil {
					t.Fatal(err)
				}
				if err := tt.script(f.fake, spec.ConnectorName); err != nil {
					t.Fatal(err)
				}
			}
			got, err := f.capture.Observe(context.Background(), spec)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.status || got.Reason != tt.reason {
				t.Fatalf("status %s %q, want %s %q", got.Status, got.Reason, tt.status, tt.reason)
			}
			if tt.noConn != (got.Connector == nil) {
				t.Fatalf("connector state %+v", got.Connector)
			}
			if tt.traceOK != nil && !tt.traceOK(got.Connector) {
				t.Fatalf("connector state lost detail: %+v", got.Connector)
			}
			if got.Slot == nil || got.Slot.Name != spec.SlotName || !got.Slot.Exists || got.Slot.Active || got.Slot.Error != "" {
				t.Fatalf("slot state %+v", got.Slot)
			}
		})
	}
}

func TestObserveReportsAnUnreachableSourceInTheSlotState(t *testing.T) {
	f := newFixture(t, debezium.Config{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	spec := specFor("unreachable", "postgres://u:"+fakePassword+"@"+addr+"/app?sslmode=disable")
	if err := f.capture.Ensure(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	got, err := f.capture.Observe(context.Background(), spec)
	if err != nil {
		t.Fatalf("observation failed: %v", err)
	}
	if got.Status != jobs.StatusRunning {
		t.Fatalf("status %s, want RUNNING from Connect", got.Status)
	}
	if got.Slot == nil || got.Slot.Name != spec.SlotName || got.Slot.Exists || got.Slot.Error == "" {
		t.Fatalf("slot state %+v, want an error", got.Slot)
	}
	if strings.Contains(got.Slot.Error, fakePassword) {
		t.Fatalf("slot error leaks the password: %s", got.Slot.Error)
	}
}

func TestDeleteRemovesConnectorSlotAndPublication(t *testing.T) {
	f := newFixture(t, debezium.Config{PollInterval: 10 * time.Millisecond})
	spec := specFor("delete1", withPassword(t, f.dsn))
	f.createSlotAndPublication(t, spec)
	ctx := context.Background()
	if err := f.capture.Ensure(ctx, spec); err != nil {
		t.Fatal(err)
	}
	// Connect keeps reporting the connector for a while after the DELETE.
	f.fake.LingerAfterDelete(spec.ConnectorName, 3)

	if err := f.capture.Delete(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.fake.Connector(spec.ConnectorName); ok {
		t.Fatal("connector still in Kafka Connect")
	}
	if n := len(f.fake.RequestsTo(http.MethodGet, "/connectors/cdcq-delete1/status")); n != 5 {
		t.Fatalf("%d status polls, want 5 (STOPPED, 3 lingering answers, then not found)", n)
	}
	// The connector was stopped and its offsets reset before it was
	// deleted: Connect keeps a deleted connector's offsets for the next
	// connector of that name.
	var writes []string
	for _, r := range f.fake.Requests() {
		if r.Method != http.MethodGet {
			writes = append(writes, r.Method+" "+r.Path)
		}
	}
	want := []string{
		"PUT /connectors/cdcq-delete1/config",
		"PUT /connectors/cdcq-delete1/stop",
		"DELETE /connectors/cdcq-delete1/offsets",
		"DELETE /connectors/cdcq-delete1",
	}
	if !slices.Equal(writes, want) {
		t.Fatalf("writes = %q, want %q", writes, want)
	}
	if n := f.count(t, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, spec.SlotName); n != 0 {
		t.Fatal("slot still in pg_replication_slots")
	}
	if n := f.count(t, `SELECT count(*) FROM pg_publication WHERE pubname = $1`, spec.PublicationName); n != 0 {
		t.Fatal("publication still in pg_publication")
	}

	if err := f.capture.Delete(ctx, spec); err != nil {
		t.Fatalf("second delete: %v", err)
	}
}

// A delete that stopped the connector and reset its offsets, then died
// before deleting it, is repeated to the end.
func TestDeleteAfterAnInterruptedDelete(t *testing.T) {
	f := newFixture(t, debezium.Config{PollInterval: 10 * time.Millisecond})
	spec := specFor("delete4", withPassword(t, f.dsn))
	f.createSlotAndPublication(t, spec)
	ctx := context.Background()
	if err := f.capture.Ensure(ctx, spec); err != nil {
		t.Fatal(err)
	}
	connect, err := kafkaconnect.New(kafkaconnect.Config{URL: f.fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := connect.StopConnector(ctx, spec.ConnectorName); err != nil {
		t.Fatal(err)
	}
	if err := connect.ResetConnectorOffsets(ctx, spec.ConnectorName); err != nil {
		t.Fatal(err)
	}

	if err := f.capture.Delete(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.fake.Connector(spec.ConnectorName); ok {
		t.Fatal("connector still in Kafka Connect")
	}
	if n := f.count(t, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, spec.SlotName); n != 0 {
		t.Fatal("slot still in pg_replication_slots")
	}
}

func TestDeleteLeavesTheSlotWhileTheConnectorLingers(t *testing.T) {
	f := newFixture(t, debezium.Config{DeleteTimeout: 200 * time.Millisecond, PollInterval: 20 * time.Millisecond})
	spec := specFor("delete2", withPassword(t, f.dsn))
	f.createSlotAndPublication(t, spec)
	ctx := context.Background()
	if err := f.capture.Ensure(ctx, spec); err != nil {
		t.Fatal(err)
	}
	f.fake.LingerAfterDelete(spec.ConnectorName, 1_000_000)

	err := f.capture.Delete(ctx, spec)
	if err == nil || jobs.IsTerminal(err) {
		t.Fatalf("err = %v, want a retriable error", err)
	}
	if n := f.count(t, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, spec.SlotName); n != 1 {
		t.Fatal("slot dropped while the connector may still use it")
	}
}

func TestDeleteClassifiesSourceErrors(t *testing.T) {
	f := newFixture(t, debezium.Config{PollInterval: 10 * time.Millisecond})
	u, err := url.Parse(withPassword(t, f.dsn))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/no_such_database"
	spec := specFor("delete3", u.String())
	if err := f.capture.Ensure(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	err = f.capture.Delete(context.Background(), spec)
	if !jobs.IsTerminal(err) || strings.Contains(err.Error(), fakePassword) {
		t.Fatalf("err = %v, want a terminal error without the password", err)
	}
	if _, ok := f.fake.Connector(spec.ConnectorName); ok {
		t.Fatal("connector not deleted before the source was asked")
	}
}

// The snapshot state comes from the offsets Connect committed for the
// connector, as Debezium 3.6.1 writes them on the real cluster: none yet,
// while it snapshots, once it streams.
func TestSnapshotProgressFromCommittedOffsets(t *testing.T) {
	f := newFixture(t, debezium.Config{})
	spec := specFor("snap1", withPassword(t, f.dsn))
	ctx := context.Background()
	progress := func() jobs.SnapshotProgress {
		t.Helper()
		sp, err := f.capture.SnapshotProgress(ctx, "snap1")
		if err != nil {
			t.Fatal(err)
		}
		return sp
	}
	if sp := progress(); sp.Done {
		t.Fatal("a connector that does not exist has a complete snapshot")
	}
	if err := f.capture.Ensure(ctx, spec); err != nil {
		t.Fatal(err)
	}
	server := map[string]any{"server": "snap1"}
	cases := []struct {
		name    string
		offsets []connectfake.Offset
		done    bool
	}{
		{"no offset committed yet", []connectfake.Offset{}, false},
		{"snapshotting", []connectfake.Offset{{Partition: server, Offset: map[string]any{
			"last_snapshot_record": false, "lsn": 63724712, "txId": 726, "ts_usec": 1796637103305004,
			"snapshot": "INITIAL", "snapshot_completed": false}}}, false},
		{"an older Debezium's snapshot marker", []connectfake.Offset{{Partition: server, Offset: map[string]any{
			"lsn": 63724712, "snapshot": true, "last_snapshot_record": false}}}, false},
		{"another connector's partition", []connectfake.Offset{{Partition: map[string]any{"server": "other"}, Offset: map[string]any{
			"lsn": 63724712, "txId": 726, "ts_usec": 1796637103305004}}}, false},
		{"streaming", []connectfake.Offset{{Partition: server, Offset: map[string]any{
			"lsn": 63724712, "txId": 726, "ts_usec": 1796637103305004}}}, true},
		{"snapshot completed", []connectfake.Offset{{Partition: server, Offset: map[string]any{
			"lsn": 63724712, "snapshot": "INITIAL", "snapshot_completed": true}}}, true},
	}
	for _, c := range cases {
		if err := f.fake.SetOffsets("cdcq-snap1", c.offsets...); err != nil {
			t.Fatal(err)
		}
		if sp := progress(); sp.Done != c.done {
			t.Errorf("%s: done %v, want %v", c.name, sp.Done, c.done)
		}
	}
}

// TestEnsureCreatesTopicsWithRetention checks that the connector is told
// to create its change topics with the capture's retention, deleted and
// not compacted, and its heartbeat topic compacted.
func TestEnsureCreatesTopicsWithRetention(t *testing.T) {
	f := newFixture(t, debezium.Config{ChangeTopicRetention: 72 * time.Hour})
	spec := specFor("ensureretention", withPassword(t, f.dsn))
	if err := f.capture.Ensure(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	puts := f.fake.RequestsTo(http.MethodPut, "/connectors/cdcq-ensureretention/config")
	if len(puts) != 1 {
		t.Fatalf("%d PUTs, want 1", len(puts))
	}
	var sent map[string]string
	if err := json.Unmarshal(puts[0].Body, &sent); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"topic.creation.default.cleanup.policy":   "delete",
		"topic.creation.default.retention.ms":     "259200000",
		"topic.creation.default.partitions":       "1",
		"topic.creation.groups":                   "heartbeat",
		"topic.creation.heartbeat.cleanup.policy": "compact",
	} {
		if sent[k] != v {
			t.Errorf("%s = %q, want %q", k, sent[k], v)
		}
	}
}
