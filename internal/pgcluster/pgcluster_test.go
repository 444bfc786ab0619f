package pgcluster_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

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
