package pgsource_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/pgsource"
	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/internal/sourcepolicy"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// allowLoopback lets the tests reach their servers, which listen on
// 127.0.0.1; the default policy refuses loopback.
var allowLoopback = func() *sourcepolicy.Policy {
	p, err := sourcepolicy.New(sourcepolicy.Rules{Allow: []string{sourcepolicy.WordLoopback}})
	if err != nil {
		panic(err)
	}
	return p
}()

// loopback is a client with allowLoopback.
var loopback, _ = pgsource.New(pgsource.Config{Policy: allowLoopback})

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func exec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// createSlotAndPublication makes what a Debezium connector leaves behind:
// a pgoutput slot and a publication for all tables.
func createSlotAndPublication(t *testing.T, conn *pgx.Conn, slot, publication string) {
	t.Helper()
	exec(t, conn, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, slot)
	exec(t, conn, `CREATE PUBLICATION `+pgx.Identifier{publication}.Sanitize()+` FOR ALL TABLES`)
}

func count(t *testing.T, conn *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func assertGone(t *testing.T, conn *pgx.Conn, slot, publication string) {
	t.Helper()
	if n := count(t, conn, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, slot); n != 0 {
		t.Fatalf("slot %s still in pg_replication_slots", slot)
	}
	if n := count(t, conn, `SELECT count(*) FROM pg_publication WHERE pubname = $1`, publication); n != 0 {
		t.Fatalf("publication %s still in pg_publication", publication)
	}
}

func TestSlotState(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	conn := connect(t, dsn)
	ctx := context.Background()

	st, err := loopback.SlotState(ctx, dsn, "cdcq_absent")
	if err != nil {
		t.Fatal(err)
	}
	if st != (jobs.SlotState{Name: "cdcq_absent"}) {
		t.Fatalf("absent slot: %+v", st)
	}

	createSlotAndPublication(t, conn, "cdcq_state", "cdcq_state")
	t.Cleanup(func() { _ = loopback.DropSlotAndPublication(ctx, dsn, "cdcq_state", "cdcq_state") })
	// Write WAL after the slot's restart point, which the slot then retains.
	// Committed synchronously: the test server commits asynchronously, and
	// pg_current_wal_lsn (which both figures use) moves only once the WAL
	// writer has written the WAL, up to wal_writer_delay later.
	exec(t, conn, `SET synchronous_commit = on`)
	exec(t, conn, `CREATE TABLE t (id int PRIMARY KEY, v text)`)
	exec(t, conn, `INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 2000) g`)

	st, err = loopback.SlotState(ctx, dsn, "cdcq_state")
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "cdcq_state" || !st.Exists || st.Active || st.Error != "" {
		t.Fatalf("slot state %+v, want existing and inactive", st)
	}
	var want int64
	if err := conn.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint FROM pg_replication_slots WHERE slot_name = 'cdcq_state'`).Scan(&want); err != nil {
		t.Fatal(err)
	}
	// At least 200 kB were written; the server's own figure bounds ours.
	if st.RetainedWALBytes < 200_000 || st.RetainedWALBytes > want {
		t.Fatalf("retained WAL %d bytes, want between 200000 and %d", st.RetainedWALBytes, want)
	}
}

func TestDropSlotAndPublicationIsIdempotent(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	conn := connect(t, dsn)
	ctx := context.Background()
	createSlotAndPublication(t, conn, "cdcq_env1", "cdcq_env1")

	if err := loopback.DropSlotAndPublication(ctx, dsn, "cdcq_env1", "cdcq_env1"); err != nil {
		t.Fatalf("drop: %v", err)
	}
	assertGone(t, conn, "cdcq_env1", "cdcq_env1")
	if err := loopback.DropSlotAndPublication(ctx, dsn, "cdcq_env1", "cdcq_env1"); err != nil {
		t.Fatalf("second drop: %v", err)
	}
}

func TestDropQuotesThePublicationName(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	conn := connect(t, dsn)
	// A name that is only valid quoted; unquoted it would be a syntax error.
	const pub = `Pub; DROP TABLE x`
	exec(t, conn, `CREATE TABLE x (id int)`)
	exec(t, conn, `CREATE PUBLICATION `+pgx.Identifier{pub}.Sanitize()+` FOR ALL TABLES`)
	if err := loopback.DropSlotAndPublication(context.Background(), dsn, "", pub); err != nil {
		t.Fatal(err)
	}
	assertGone(t, conn, "", pub)
	if n := count(t, conn, `SELECT count(*) FROM pg_tables WHERE tablename = 'x'`); n != 1 {
		t.Fatal("table x was dropped")
	}
}

// startReplication attaches a logical replication consumer to the slot, as
// a running Debezium task does, and returns its connection.
func startReplication(t *testing.T, dsn, slot, publication string) *pgconn.PgConn {
	t.Helper()
	ctx := context.Background()
	rc, err := pgconn.Connect(ctx, dsn+"&replication=database")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close(context.Background()) })
	err = pglogrepl.StartReplication(ctx, rc, slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names '" + publication + "'"},
	})
	if err != nil {
		t.Fatalf("start replication: %v", err)
	}
	return rc
}

func waitActive(t *testing.T, conn *pgx.Conn, slot string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for count(t, conn, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND active`, slot) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("slot %s never became active", slot)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDropTerminatesTheConsumerOfAnActiveSlot(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	conn := connect(t, dsn)
	ctx := context.Background()
	createSlotAndPublication(t, conn, "cdcq_active", "cdcq_active")
	rc := startReplication(t, dsn, "cdcq_active", "cdcq_active")
	waitActive(t, conn, "cdcq_active")

	st, err := loopback.SlotState(ctx, dsn, "cdcq_active")
	if err != nil || !st.Active {
		t.Fatalf("slot state %+v, %v; want active", st, err)
	}

	c, err := pgsource.New(pgsource.Config{Policy: allowLoopback, ActiveSlotGrace: 200 * time.Millisecond, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.DropSlotAndPublication(ctx, dsn, "cdcq_active", "cdcq_active"); err != nil {
		t.Fatalf("drop: %v", err)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Fatalf("dropped after %s, before the grace period ended", waited)
	}
	assertGone(t, conn, "cdcq_active", "cdcq_active")

	// The consumer's backend was terminated: its stream ends in an error.
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		msg, err := rc.ReceiveMessage(rctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("replication stream still open after the drop")
			}
			break
		}
		_ = msg // keepalives and data before the termination
	}
}

func TestDropWaitsForAConsumerThatLetsGo(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	conn := connect(t, dsn)
	ctx := context.Background()
	createSlotAndPublication(t, conn, "cdcq_leaving", "cdcq_leaving")
	rc := startReplication(t, dsn, "cdcq_leaving", "cdcq_leaving")
	waitActive(t, conn, "cdcq_leaving")

	// The consumer stops on its own 300ms later, well within the grace.
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = rc.Close(context.Background())
	}()
	c, err := pgsource.New(pgsource.Config{Policy: allowLoopback, ActiveSlotGrace: 20 * time.Second, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.DropSlotAndPublication(ctx, dsn, "cdcq_leaving", "cdcq_leaving"); err != nil {
		t.Fatalf("drop: %v", err)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond || waited > 10*time.Second {
		t.Fatalf("drop took %s; want it to wait for the consumer, not for the grace period", waited)
	}
	assertGone(t, conn, "cdcq_leaving", "cdcq_leaving")
}

func TestErrorsAreClassifiedAndRedacted(t *testing.T) {
	good := pgtest.NewDatabase(t)
	u, err := url.Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	withPassword := func(mutate func(u *url.URL)) string {
		v := *u
		v.User = url.UserPassword(u.User.Username(), "s3cret-pw-123")
		mutate(&v)
		return v.String()
	}
	closedPort := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}()

	tests := []struct {
		name     string
		dsn      string
		terminal bool
	}{
		{
			name:     "connection_refused_is_retriable",
			dsn:      withPassword(func(v *url.URL) { v.Host = closedPort }),
			terminal: false,
		},
		{
			name:     "missing_host_is_retriable",
			dsn:      withPassword(func(v *url.URL) { v.Host = "no-such-host.invalid:5432" }),
			terminal: false,
		},
		{
			name:     "refused_parameter_is_terminal",
			dsn:      withPassword(func(v *url.URL) { v.RawQuery = "sslmode=disable&host=10.0.0.1" }),
			terminal: true,
		},
		{
			name:     "missing_database_is_terminal",
			dsn:      withPassword(func(v *url.URL) { v.Path = "/no_such_database" }),
			terminal: true,
		},
		{
			name:     "unknown_role_is_terminal",
			dsn:      withPassword(func(v *url.URL) { v.User = url.UserPassword("no_such_role", "s3cret-pw-123") }),
			terminal: true,
		},
		{
			name:     "unparsable_connection_string_is_terminal",
			dsn:      "host=localhost password=s3cret-pw-123",
			terminal: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, slotErr := loopback.SlotState(ctx, tt.dsn, "cdcq_x")
			dropErr := loopback.DropSlotAndPublication(ctx, tt.dsn, "cdcq_x", "cdcq_x")
			for _, err := range []error{slotErr, dropErr} {
				if err == nil {
					t.Fatal("no error")
				}
				if got := jobs.IsTerminal(err); got != tt.terminal {
					t.Fatalf("IsTerminal = %v, want %v: %v", got, tt.terminal, err)
				}
				t.Logf("%v", err)
				if strings.Contains(err.Error(), "s3cret-pw-123") {
					t.Fatalf("error leaks the password: %v", err)
				}
			}
		})
	}
}
