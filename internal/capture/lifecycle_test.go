package capture

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/pgtest"
)

// streamingRow waits until the capture's row says it streams.
func streamingRow(t testing.TB, e *Engine, env string) captureRow {
	t.Helper()
	var row captureRow
	eventually(t, 20*time.Second, env+" streaming", func() (bool, string) {
		r, ok, err := e.store.load(context.Background(), env)
		if err != nil || !ok {
			return false, fmt.Sprint(ok, err)
		}
		row = r
		return r.Phase == phaseStreaming, r.Phase + " " + r.LastError
	})
	return row
}

func slotAndPublication(t testing.TB, dsn, name string) (slots, publications int64) {
	t.Helper()
	conn := connect(t, dsn)
	return queryInt(t, conn, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, name),
		queryInt(t, conn, `SELECT count(*) FROM pg_publication WHERE pubname = $1`, name)
}

func TestDeleteStopsCaptureAndDropsSlotAndPublication(t *testing.T) {
	h := newHarness(t)
	dsn := pgtest.NewDatabase(t)
	src := connect(t, dsn)
	exec(t, src, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a')`)
	const env = "envdelete"
	sp := spec(env, dsn)
	e := h.engine("a", nil)
	ctx := context.Background()
	if err := e.Ensure(ctx, sp); err != nil {
		t.Fatal(err)
	}
	cons := consume(t, h.brokers, env+".public.t")
	h.supervise(e)
	streamingRow(t, e, env)
	if s, p := slotAndPublication(t, dsn, sp.SlotName); s != 1 || p != 1 {
		t.Fatalf("before delete: %d slots, %d publications", s, p)
	}

	start := time.Now()
	if err := e.Delete(ctx, sp); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	t.Logf("delete took %s", time.Since(start))
	if s, p := slotAndPublication(t, dsn, sp.SlotName); s != 0 || p != 0 {
		t.Fatalf("after delete: %d slots, %d publications", s, p)
	}
	// The supervisor must not bring them back.
	time.Sleep(time.Second)
	if s, p := slotAndPublication(t, dsn, sp.SlotName); s != 0 || p != 0 {
		t.Fatalf("a second after delete: %d slots, %d publications", s, p)
	}
	st, err := e.Observe(ctx, sp)
	if err != nil || st.Status != jobs.StatusDeleting {
		t.Fatalf("Observe after delete: %+v, %v", st, err)
	}
	if err := e.Delete(ctx, sp); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	// A deleted capture keeps no credentials (found by the soak,
	// TestSoakEmbeddedWorkersKilled).
	if row, ok, err := e.store.load(ctx, env); err != nil || !ok || !row.Deleted || row.ConnectionSealed != "" {
		t.Fatalf("after delete: deleted %v, sealed connection string %q (%v, %v)", row.Deleted, row.ConnectionSealed, ok, err)
	}

	// Creating it again starts over with a new snapshot.
	exec(t, src, `INSERT INTO t VALUES (2, 'b')`)
	if err := e.Ensure(ctx, sp); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "new snapshot", func() (bool, string) {
		got := ops(decodeAll(t, cons.all()))
		return got == "rrr", got
	})
}

func TestDeleteOfUnknownCaptureSucceeds(t *testing.T) {
	h := newHarness(t)
	dsn := pgtest.NewDatabase(t)
	if err := h.engine("a", nil).Delete(context.Background(), spec("envnever", dsn)); err != nil {
		t.Fatal(err)
	}
}

// TestSupervisorsShareCaptures runs two workers: each capture runs in
// exactly one, and when that one stops the other takes over.
func TestSupervisorsShareCaptures(t *testing.T) {
	h := newHarness(t)
	a, b := h.engine("a", nil), h.engine("b", nil)
	envs := []string{"envshare1", "envshare2", "envshare3"}
	dsns := map[string]string{}
	for _, env := range envs {
		dsn := pgtest.NewDatabase(t)
		exec(t, connect(t, dsn), `CREATE TABLE t (id int PRIMARY KEY)`)
		if err := a.Ensure(context.Background(), spec(env, dsn)); err != nil {
			t.Fatal(err)
		}
		dsns[env] = dsn
	}
	stopA := h.supervise(a)
	stopB := h.supervise(b)
	jobState := connect(t, h.jobState)
	holders := func(env string) int64 {
		key := leaseKey(env)
		return queryInt(t, jobState, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
			AND classid = $1 AND objid = $2 AND objsubid = 1`, uint32(uint64(key)>>32), uint32(uint64(key)))
	}
	workers := map[string]string{}
	for _, env := range envs {
		row := streamingRow(t, a, env)
		workers[env] = row.Worker
		if n := holders(env); n != 1 {
			t.Errorf("%s: lease held %d times", env, n)
		}
	}
	t.Logf("workers: %v", workers)

	// Stop whichever worker runs the first capture.
	stop, other := stopA, "b"
	if workers[envs[0]] == "b" {
		stop, other = stopB, "a"
	}
	stop()
	for _, env := range envs {
		eventually(t, 15*time.Second, env+" taken over", func() (bool, string) {
			r, _, err := a.store.load(context.Background(), env)
			if err != nil {
				return false, err.Error()
			}
			return r.Worker == other && r.Phase == phaseStreaming && holders(env) == 1, r.Worker + " " + r.Phase
		})
	}
	cons := consume(t, h.brokers, envs[0]+".public.t")
	exec(t, connect(t, dsns[envs[0]]), `INSERT INTO t VALUES (1)`)
	eventually(t, 10*time.Second, "change after takeover", func() (bool, string) {
		got := ops(decodeAll(t, cons.all()))
		return strings.Contains(got, "c"), got
	})
}

// TestQuietTablesStillAdvanceTheSlot writes only outside the captured
// database: the slot must follow the server's WAL.
func TestQuietTablesStillAdvanceTheSlot(t *testing.T) {
	h := newHarness(t)
	dsn := pgtest.NewDatabase(t)
	exec(t, connect(t, dsn), `CREATE TABLE quiet (id int PRIMARY KEY)`)
	const env = "envquiet"
	sp := spec(env, dsn)
	e := h.engine("a", nil)
	if err := e.Ensure(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	h.supervise(e)
	streamingRow(t, e, env)

	other := connect(t, pgtest.NewDatabase(t))
	exec(t, other, `CREATE TABLE busy AS SELECT g FROM generate_series(1, 10000) g`)
	var target string
	if err := other.QueryRow(context.Background(), `SELECT pg_current_wal_lsn()::text`).Scan(&target); err != nil {
		t.Fatal(err)
	}
	want, _ := pglogrepl.ParseLSN(target)
	src := connect(t, dsn)
	eventually(t, 15*time.Second, "slot advances", func() (bool, string) {
		var confirmed string
		if err := src.QueryRow(context.Background(), `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, sp.SlotName).Scan(&confirmed); err != nil {
			return false, err.Error()
		}
		got, _ := pglogrepl.ParseLSN(confirmed)
		return got >= want, fmt.Sprintf("confirmed %s, want %s", got, want)
	})
}

// TestSnapshotProgressAndCrashMidSnapshot holds a snapshot up (Kafka
// acknowledges nothing until released) to look at its progress, stops the
// worker abruptly, and lets another worker start the snapshot over.
func TestSnapshotProgressAndCrashMidSnapshot(t *testing.T) {
	h := newHarness(t)
	dsn := pgtest.NewDatabase(t)
	src := connect(t, dsn)
	exec(t, src, `CREATE TABLE big (id int PRIMARY KEY, v text); INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 500) g; ANALYZE big`)
	const env = "envmidsnap"
	sp := spec(env, dsn)
	release := make(chan struct{})
	stalled := h.engine("a", func(c *Config) {
		c.MaxBufferedRecords = 20
		c.crashOnStop = true
		c.onAck = func(time.Time) { <-release }
	})
	if err := stalled.Ensure(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	stopA := h.supervise(stalled)
	eventually(t, 20*time.Second, "snapshot under way", func() (bool, string) {
		st, err := stalled.Observe(context.Background(), sp)
		if err != nil {
			return false, err.Error()
		}
		ok := st.Status == jobs.StatusRunning && st.Snapshot != nil && st.Snapshot.RowsCopied > 0
		return ok, mustJSON(st)
	})
	st, err := stalled.Observe(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	if s := st.Snapshot; s.Done || s.RowsCopied >= 500 || s.RowsEstimate != 500 || len(s.Tables) != 1 || s.Tables[0].Table != "big" || s.Tables[0].Done {
		t.Fatalf("progress of a held-up snapshot: %s", mustJSON(s))
	}

	stopped := make(chan struct{})
	go func() {
		stopA()
		close(stopped)
	}()
	close(release)
	<-stopped

	cons := consume(t, h.brokers, env+".public.big")
	b := h.engine("b", nil)
	h.supervise(b)
	streamingRow(t, b, env)
	exec(t, src, `UPDATE big SET v = 'new' WHERE id = 1`)
	eventually(t, 20*time.Second, "snapshot taken again, then streaming", func() (bool, string) {
		ids := map[string]bool{}
		updated := false
		for _, c := range decodeAll(t, cons.all()) {
			if c.Op == "r" {
				ids[num(c.After["id"])] = true
			}
			updated = updated || (c.Op == "u" && c.After["v"] == "new")
		}
		return len(ids) == 500 && updated, fmt.Sprintf("%d rows, update seen %v", len(ids), updated)
	})
	st, err = b.Observe(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	if s := st.Snapshot; s == nil || !s.Done || s.RowsCopied != 500 || s.RowsEstimate != 500 {
		t.Fatalf("progress of the finished snapshot: %s", mustJSON(st.Snapshot))
	}
	if s, _ := slotAndPublication(t, dsn, sp.SlotName); s != 1 {
		t.Fatalf("%d slots", s)
	}
}
