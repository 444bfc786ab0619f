package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/pgtest"
)

// A requested snapshot (a cached query lost records to retention) is taken
// as a whole new snapshot: the snapshot is not done from the request on,
// a second request while it is pending changes nothing, and once it is
// done every row was read again, at a later position, and the request is
// cleared. A deleted or unknown capture refuses the request.
func TestRequestSnapshotTakesANewOne(t *testing.T) {
	const rows = 50
	h := newHarness(t)
	dsn := pgtest.NewDatabase(t)
	src := connect(t, dsn)
	exec(t, src, fmt.Sprintf(`CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, %d) g`, rows))
	env := fmt.Sprintf("req%d", rand.IntN(1e6))
	sp := spec(env, dsn)
	e := h.engine("a", nil)
	ctx := context.Background()
	if err := e.Ensure(ctx, sp); err != nil {
		t.Fatal(err)
	}
	h.supervise(e)
	t.Cleanup(func() { _ = e.Delete(context.Background(), sp) })
	first := streamingRow(t, e, env)
	if first.SnapshotLSN == nil {
		t.Fatal("streaming without a snapshot")
	}
	cons := consume(t, h.brokers, env+".public.t")
	reads := func() int {
		n := 0
		for _, r := range cons.all() {
			if bytes.Contains(r.Value, []byte(`"op":"r"`)) {
				n++
			}
		}
		return n
	}
	eventually(t, 20*time.Second, "the first snapshot on the topic", func() (bool, string) {
		return reads() == rows, fmt.Sprint(reads())
	})

	// The new snapshot cannot read t while this transaction holds it, so
	// the first request stays pending through the second.
	hold, err := src.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(context.Background())
	if _, err := hold.Exec(ctx, `LOCK TABLE t IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	if err := e.RequestSnapshot(ctx, env, "test: records gone"); err != nil {
		t.Fatal(err)
	}
	sp1, err := e.SnapshotProgress(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if sp1.Done {
		t.Fatal("the snapshot is done right after a new one was requested")
	}
	row, _, err := e.store.load(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.RequestSnapshot(ctx, env, "test: again"); err != nil {
		t.Fatal(err)
	}
	again, _, err := e.store.load(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if again.SnapshotLSN != nil {
		t.Fatal("the requested snapshot completed while t was locked")
	}
	if again.Version != row.Version || again.SnapshotRequested != "test: records gone" {
		t.Errorf("a second request while the first is pending changed the capture: version %d to %d, request %q", row.Version, again.Version, again.SnapshotRequested)
	}
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	eventually(t, 30*time.Second, "the requested snapshot done", func() (bool, string) {
		sp, err := e.SnapshotProgress(ctx, env)
		return err == nil && sp.Done, fmt.Sprint(sp, err)
	})
	done, _, err := e.store.load(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if *done.SnapshotLSN <= *first.SnapshotLSN {
		t.Errorf("the new snapshot is at %d, the first was at %d", *done.SnapshotLSN, *first.SnapshotLSN)
	}
	if done.SnapshotRequested != "" {
		t.Errorf("the request is still recorded: %q", done.SnapshotRequested)
	}
	eventually(t, 20*time.Second, "the second snapshot on the topic", func() (bool, string) {
		return reads() == 2*rows, fmt.Sprint(reads())
	})

	if err := e.RequestSnapshot(ctx, "nosuch"+env, "test"); !errors.Is(err, errNotWanted) {
		t.Errorf("request for an unknown capture: %v, want errNotWanted", err)
	}
}
