package capture

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/capture/capturetest"
	"github.com/cdcq/cdcq/internal/pgtest"
)

// TestCrashDuringSnapshotLeavesNoGhostRows crashes the capture at points
// of its initial snapshot (before the first chunk, in the middle, after
// the last chunk but before streaming starts) and during the first moments
// of streaming, while a writer inserts, updates and deletes rows, and rows
// the abandoned snapshot already published are deleted. After another
// worker takes over, the change topic holds exactly the source's rows
// (every key whose last record is not a delete exists with that value)
// and one slot exists. Tables at REPLICA IDENTITY FULL and DEFAULT.
func TestCrashDuringSnapshotLeavesNoGhostRows(t *testing.T) {
	points := []struct {
		name  string
		point string
		nth   int
	}{
		{"before-first-chunk", "snapshot-start", 1},
		{"mid-snapshot", "snapshot-chunk", 15},
		{"after-last-chunk", "snapshot-copied", 1},
		{"early-streaming", "streaming", 1},
		{"twice-mid-snapshot", "snapshot-chunk", 8},
	}
	for _, identity := range []string{"FULL", "DEFAULT"} {
		for _, p := range points {
			t.Run(identity+"/"+p.name, func(t *testing.T) {
				t.Parallel()
				crashAndConverge(t, identity, p.point, p.nth, strings.HasPrefix(p.name, "twice"))
			})
		}
	}
}

func crashAndConverge(t *testing.T, identity, point string, nth int, twice bool) {
	const rows = 3000
	h := newHarness(t)
	dsn := pgtest.NewDatabase(t)
	src := connect(t, dsn)
	exec(t, src, fmt.Sprintf(`CREATE TABLE t (id int PRIMARY KEY, grp int NOT NULL, amount numeric(12,2));
		INSERT INTO t SELECT g, g %% 100, CASE WHEN g %% 7 = 0 THEN NULL ELSE g * 1.25 END FROM generate_series(1, %d) g;
		ALTER TABLE t REPLICA IDENTITY %s; ANALYZE t`, rows, identity))
	env := fmt.Sprintf("ghost%s%s%d_%d", strings.ToLower(identity[:1]), strings.ReplaceAll(point, "-", ""), nth, rand.IntN(1e6))
	sp := spec(env, dsn)

	w := capturetest.StartWriter(t, dsn, "t", rows, 2*time.Millisecond)
	defer w.Stop()
	crashAt := func(worker string) {
		reached := make(chan struct{})
		var seen atomic.Int32
		e := h.engine(worker, func(c *Config) {
			c.SnapshotChunkRows = 100
			c.crashOnStop = true
			c.keepReplicaIdentity = identity == "DEFAULT"
			c.at = func(ctx context.Context, at string) {
				if at == point && seen.Add(1) == int32(nth) {
					close(reached)
					<-ctx.Done()
				}
			}
		})
		if err := e.Ensure(context.Background(), sp); err != nil {
			t.Fatal(err)
		}
		stop := h.supervise(e)
		if point == "streaming" {
			streamingRow(t, e, env)
		} else {
			select {
			case <-reached:
			case <-time.After(30 * time.Second):
				t.Fatalf("the capture never reached %s #%d", point, nth)
			}
		}
		// Rows the snapshot may already have published go away while
		// nothing captures.
		exec(t, src, `DELETE FROM t WHERE id IN (SELECT id FROM t WHERE id % 3 = 0 ORDER BY id LIMIT 40)`)
		exec(t, src, `UPDATE t SET amount = NULL WHERE id IN (SELECT id FROM t WHERE id % 3 = 1 ORDER BY id LIMIT 20)`)
		stop()
	}
	crashAt("a")
	if twice {
		crashAt("b")
	}
	b := h.engine("c", func(c *Config) {
		c.SnapshotChunkRows = 100
		c.keepReplicaIdentity = identity == "DEFAULT"
	})
	h.supervise(b)
	t.Cleanup(func() {
		if err := b.Delete(context.Background(), sp); err != nil {
			t.Errorf("delete the capture: %v", err)
		}
	})
	streamingRow(t, b, env)
	time.Sleep(500 * time.Millisecond)
	w.Stop()
	if w.Ops.Load() < 20 {
		t.Fatalf("the writer did only %d changes", w.Ops.Load())
	}

	cons := consume(t, h.brokers, env+".public.t")
	want := capturetest.SourceRows(t, src, "t")
	eventually(t, 30*time.Second, "topic equals the source", func() (bool, string) {
		diff := capturetest.Diff(want, capturetest.TopicRows(t, cons.all()))
		return diff == "", diff
	})
	if s, _ := slotAndPublication(t, dsn, sp.SlotName); s != 1 {
		t.Fatalf("%d slots", s)
	}
	st, err := b.Observe(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows, %d writer changes; snapshot: %s", len(want), w.Ops.Load(), mustJSON(st.Snapshot))
}
