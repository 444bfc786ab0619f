// Package pgtest starts private PostgreSQL servers for tests, one per test
// binary, and hands each test a fresh database on it.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcq/cdcq/internal/pgcluster"
	"github.com/cdcq/cdcq/migrations"
)

var (
	sharedOnce sync.Once
	shared     *pgcluster.Cluster
	sharedErr  error
	dbSeq      atomic.Int64
)

// Shared returns the test binary's shared server, starting it on first use.
// Call Main from TestMain so that it is stopped when the tests end.
func Shared(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cdcq-pgtest-")
		if err != nil {
			sharedErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared, sharedErr = pgcluster.Start(ctx, pgcluster.Config{DataDir: dir + "/data"})
	})
	if sharedErr != nil {
		t.Fatalf("start test postgres: %v", sharedErr)
	}
	return shared
}

// NewDatabase creates an empty database on the shared server and returns its
// connection string.
func NewDatabase(t testing.TB) string {
	t.Helper()
	c := Shared(t)
	name := fmt.Sprintf("t%d_%s", dbSeq.Add(1), sanitize(t.Name()))
	if err := c.CreateDatabase(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	return c.URLFor(name)
}

// NewJobState creates a database on the shared server with cdcq's
// migrations applied (a job-state database) and returns its connection
// string and a pool on it, closed when the test ends.
func NewJobState(t testing.TB) (string, *pgxpool.Pool) {
	t.Helper()
	url := NewDatabase(t)
	if err := migrations.Up(context.Background(), url); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return url, pool
}

// NewCluster starts a server of the test's own (for tests that restart it)
// and stops it when the test ends.
func NewCluster(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	return NewClusterWith(t, nil)
}

// NewClusterWith is NewCluster with extra postgresql.conf settings, such
// as more replication slots and connections than the shared server's for
// a test of many captures.
func NewClusterWith(t testing.TB, settings map[string]string) *pgcluster.Cluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "cdcq-pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Config{DataDir: dir + "/data", Settings: settings})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Stop(context.Background())
		_ = os.RemoveAll(dir)
	})
	return c
}

// Main runs the tests and stops the shared server afterwards. Use it as
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the shared server, if one was started, and removes its
// directory. Main calls it; a harness that composes with pgtest
// (clustertest.Main) calls it after m.Run.
func Stop() {
	if shared != nil {
		_ = shared.Stop(context.Background())
		_ = os.RemoveAll(strings.TrimSuffix(shared.DataDir(), "/data"))
	}
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		if b.Len() >= 40 {
			break
		}
	}
	return b.String()
}
