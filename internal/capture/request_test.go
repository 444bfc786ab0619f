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
// cleared. Once done, a request whose topics start at or below the ends
// recorded with the last request changes nothing; one whose topic starts
// above, or that reads a topic not recorded, takes a new snapshot. A
// deleted or unknown capture refuses the request.
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
	// The requester's topic ends after the first snapshot; it reads from
	// its log start.
	ends := map[string]map[int32]int64{env + ".public.t": {0: rows}}
	if requested, err := e.RequestSnapshot(ctx, env, "test: records gone", ends, map[string]map[int32]int64{env + ".public.t": {0: 0}}); err != nil || !requested {
		t.Fatalf("request: %v, %v", requested, err)
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
	if requested, err := e.RequestSnapshot(ctx, env, "test: again", ends, map[string]map[int32]int64{env + ".public.t": {0: 0}}); err != nil || requested {
		t.Fatalf("second request while the first is pending: %v, %v", requested, err)
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

	// The completed snapshot was written after the recorded end: a query
	// that reads from a log start at or below it (it restarted before it
	// went LIVE) needs no other; one whose log start is above it, or that
	// reads a topic the request did not record, does.
	if requested, err := e.RequestSnapshot(ctx, env, "test: restarted", ends, map[string]map[int32]int64{env + ".public.t": {0: rows}}); err != nil || requested {
		t.Errorf("request while the last requested snapshot is whole in the topic: %v, %v", requested, err)
	}
	if row, _, err := e.store.load(ctx, env); err != nil || row.Version != done.Version || row.SnapshotLSN == nil {
		t.Errorf("a request the last snapshot serves changed the capture: %+v, %v", row, err)
	}
	if requested, err := e.RequestSnapshot(ctx, env, "test: lost again", ends, map[string]map[int32]int64{env + ".public.t": {0: rows + 1}}); err != nil || !requested {
		t.Errorf("request after the last requested snapshot's records were lost: %v, %v", requested, err)
	}
	eventually(t, 30*time.Second, "the third snapshot done", func() (bool, string) {
		sp, err := e.SnapshotProgress(ctx, env)
		return err == nil && sp.Done, fmt.Sprint(sp, err)
	})
	if requested, err := e.RequestSnapshot(ctx, env, "test: other topic", ends, map[string]map[int32]int64{env + ".public.u": {0: 0}}); err != nil || !requested {
		t.Errorf("request for a topic the last request did not record: %v, %v", requested, err)
	}

	if _, err := e.RequestSnapshot(ctx, "nosuch"+env, "test", nil, nil); !errors.Is(err, errNotWanted) {
		t.Errorf("request for an unknown capture: %v, want errNotWanted", err)
	}
}
