package migrations_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var tables = []string{"connections", "cached_queries", "job_events", "rejected_commands"}

func TestUp(t *testing.T) {
	ctx := testContext(t)
	url := pgtest.NewDatabase(t)

	before, err := migrations.Status(ctx, url)
	if err != nil {
		t.Fatalf("Status before Up: %v", err)
	}
	if len(before) == 0 {
		t.Fatal("Status lists no migrations")
	}
	for _, m := range before {
		if m.Applied {
			t.Errorf("migration %s applied on a fresh database", m.Name)
		}
	}

	if err := migrations.Up(ctx, url); err != nil {
		t.Fatalf("Up: %v", err)
	}
	conn := connect(t, url)
	for _, table := range tables {
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, "public."+table).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if !exists {
			t.Errorf("table %s missing after Up", table)
		}
	}
	after, err := migrations.Status(ctx, url)
	if err != nil {
		t.Fatalf("Status after Up: %v", err)
	}
	for _, m := range after {
		if !m.Applied || m.AppliedAt.IsZero() {
			t.Errorf("migration %s not applied after Up: %+v", m.Name, m)
		}
		if !strings.HasSuffix(m.Name, ".sql") {
			t.Errorf("migration name %q is not a file name", m.Name)
		}
	}
}

func TestUp_again_is_a_no_op(t *testing.T) {
	ctx := testContext(t)
	url := pgtest.NewDatabase(t)
	if err := migrations.Up(ctx, url); err != nil {
		t.Fatalf("first Up: %v", err)
	}
	conn := connect(t, url)
	// Data written between runs must survive a second Up.
	if _, err := conn.Exec(ctx, `INSERT INTO rejected_commands (event_id, reason, at) VALUES ('e1', 'r', now())`); err != nil {
		t.Fatal(err)
	}
	versions := versionRows(t, conn)

	if err := migrations.Up(ctx, url); err != nil {
		t.Fatalf("second Up: %v", err)
	}
	if got := versionRows(t, conn); got != versions {
		t.Errorf("second Up changed goose_db_version from %d to %d rows", versions, got)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM rejected_commands`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("rejected_commands has %d rows after second Up, want 1", n)
	}
}

func TestUp_concurrent_callers_all_succeed(t *testing.T) {
	ctx := testContext(t)
	url := pgtest.NewDatabase(t)
	const callers = 3
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { errs[i] = migrations.Up(ctx, url) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Up #%d: %v", i, err)
		}
	}
	st, err := migrations.Status(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st {
		if !m.Applied {
			t.Errorf("migration %s not applied", m.Name)
		}
	}
	if got := versionRows(t, connect(t, url)); got != len(st)+1 { // +1: goose's version 0 row
		t.Errorf("goose_db_version has %d rows, want %d (each migration once)", got, len(st)+1)
	}
}

func TestUp_bad_url_says_so_without_the_password(t *testing.T) {
	err := migrations.Up(testContext(t), "postgres://u:s3cret-pw@:::bad/db")
	if err == nil {
		t.Fatal("Up with a bad URL succeeded")
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error repeats the password: %v", err)
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func versionRows(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM goose_db_version`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
