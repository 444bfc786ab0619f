package pgcluster_test

import (
	"context"
	"net"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/pgcluster"
	"github.com/cdcq/cdcq/internal/pgtest"
)

func TestStartServesLogicalReplication(t *testing.T) {
	c := pgtest.NewCluster(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var level string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != "logical" {
		t.Fatalf("wal_level = %q, want logical", level)
	}
	conn.Close(ctx)
	if err := c.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	conn2, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		t.Fatalf("connect after restart: %v", err)
	}
	conn2.Close(ctx)
}

// A process that dies without stopping its server (cdcq dev killed with
// SIGKILL) leaves the server holding the data directory: the next Start on
// that directory takes it over, with the data kept.
func TestStartTakesOverAServerLeftRunning(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	first, err := pgcluster.Start(ctx, pgcluster.Config{DataDir: dir + "/data", Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Stop(context.Background()) })
	if err := first.CreateDatabase(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	// first is forgotten, as by a process that died.
	second, err := pgcluster.Start(ctx, pgcluster.Config{DataDir: dir + "/data", Durable: true})
	if err != nil {
		t.Fatalf("start over a server left running: %v", err)
	}
	t.Cleanup(func() { _ = second.Stop(context.Background()) })
	conn, err := pgx.Connect(ctx, second.URLFor("kept"))
	if err != nil {
		t.Fatalf("the database made before is gone: %v", err)
	}
	conn.Close(ctx)
}

// A first start that failed after initdb (its port taken) leaves a data
// directory without the database; the next start creates it.
func TestStartAfterAFailedFirstStart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := taken.Addr().(*net.TCPAddr).Port
	if c, err := pgcluster.Start(ctx, pgcluster.Config{DataDir: dir + "/data", Port: port}); err == nil {
		_ = c.Stop(ctx)
		t.Fatal("the server started on a port already listened on")
	}
	taken.Close()
	c, err := pgcluster.Start(ctx, pgcluster.Config{DataDir: dir + "/data", Port: port})
	if err != nil {
		t.Fatalf("start again: %v", err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		t.Fatalf("the database: %v", err)
	}
	conn.Close(ctx)
}
