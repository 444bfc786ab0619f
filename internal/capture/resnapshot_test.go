package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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

	w := startGhostWriter(t, dsn, rows)
	defer w.stop()
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
	w.stop()
	if w.ops.Load() < 20 {
		t.Fatalf("the writer did only %d changes", w.ops.Load())
	}

	cons := consume(t, h.brokers, env+".public.t")
	want := sourceRows(t, src)
	var got map[string]string
	eventually(t, 30*time.Second, "topic equals the source", func() (bool, string) {
		got = liveRows(t, decodeAll(t, cons.all()))
		return diffRows(want, got) == "", diffRows(want, got)
	})
	if s, _ := slotAndPublication(t, dsn, sp.SlotName); s != 1 {
		t.Fatalf("%d slots", s)
	}
	st, err := b.Observe(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows, %d writer changes; snapshot: %s", len(want), w.ops.Load(), mustJSON(st.Snapshot))
}

// ghostWriter inserts, updates and deletes rows of t until stopped.
type ghostWriter struct {
	ops  atomic.Int64
	stop func()
}

func startGhostWriter(t *testing.T, dsn string, rows int) *ghostWriter {
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &ghostWriter{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer conn.Close(context.Background())
		rng := rand.New(rand.NewPCG(1, uint64(rows)))
		next := rows + 1
		// Statements run to completion (not under ctx): a statement
		// cancelled by closing the connection may still commit after stop.
		bg := context.Background()
		for ctx.Err() == nil {
			var err error
			switch id := 1 + rng.IntN(next-1); rng.IntN(3) {
			case 0:
				_, err = conn.Exec(bg, `INSERT INTO t VALUES ($1, $2, $3)`, next, next%100, float64(next)/4)
				next++
			case 1:
				_, err = conn.Exec(bg, `UPDATE t SET amount = amount + 1, grp = (grp + 1) % 100 WHERE id = $1`, id)
			default:
				_, err = conn.Exec(bg, `DELETE FROM t WHERE id = $1`, id)
			}
			if err == nil {
				w.ops.Add(1)
			}
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	w.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	return w
}

// sourceRows reads t as id -> "grp|amount".
func sourceRows(t *testing.T, conn *pgx.Conn) map[string]string {
	rs, err := conn.Query(context.Background(), `SELECT id::text, grp::text, coalesce(amount::text, 'NULL') FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for rs.Next() {
		var id, grp, amount string
		if err := rs.Scan(&id, &grp, &amount); err != nil {
			t.Fatal(err)
		}
		out[id] = grp + "|" + amount
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// liveRows replays a topic: the keys whose last record is not a delete,
// with their last value.
func liveRows(t *testing.T, cs []change) map[string]string {
	out := map[string]string{}
	for _, c := range cs {
		if c.Key == nil {
			if c.Op == "t" {
				clear(out)
			}
			continue
		}
		id := num(c.Key["id"])
		if c.Tombstone || c.Op == "d" {
			delete(out, id)
			continue
		}
		amount := "NULL"
		if a, ok := c.After["amount"]; ok && a != nil {
			amount = fmt.Sprint(a)
		}
		out[id] = num(c.After["grp"]) + "|" + amount
	}
	return out
}

// diffRows describes how got differs from want ("" when equal).
func diffRows(want, got map[string]string) string {
	var missing, ghost, wrong []string
	for id, v := range want {
		switch g, ok := got[id]; {
		case !ok:
			missing = append(missing, id)
		case g != v:
			wrong = append(wrong, id+": "+g+" want "+v)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			ghost = append(ghost, id)
		}
	}
	if len(missing)+len(ghost)+len(wrong) == 0 {
		return ""
	}
	sort.Strings(missing)
	sort.Strings(ghost)
	sort.Strings(wrong)
	b, _ := json.Marshal(map[string]any{"missing": head(missing), "ghost": head(ghost), "wrong": head(wrong),
		"counts": []int{len(missing), len(ghost), len(wrong)}})
	return string(b)
}

func head(s []string) []string {
	return s[:min(len(s), 8)]
}
