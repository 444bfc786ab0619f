package capture

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/pgtest"
)

const workloadKeys = 8

// TestKillAndRestartMidStream stops a worker's capture abruptly while
// transactions keep coming, then lets another worker resume from the slot.
func TestKillAndRestartMidStream(t *testing.T) {
	h := newHarness(t)
	dsn := pgtest.NewDatabase(t)
	exec(t, connect(t, dsn), fmt.Sprintf(workloadDDL, workloadKeys))
	const env = "envkill"
	// Confirming rarely leaves acknowledged records unconfirmed at the
	// kill, so that some are replayed.
	slow := func(c *Config) { c.StatusInterval, c.crashOnStop = 700*time.Millisecond, true }
	a := h.engine("a", slow)
	if err := a.Ensure(context.Background(), spec(env, dsn)); err != nil {
		t.Fatal(err)
	}
	cons := consume(t, h.brokers, env+".public.counters", env+".public.events")
	stopA := h.supervise(a)
	w := startWorkload(t, dsn, workloadKeys, time.Millisecond)

	eventually(t, 20*time.Second, "streaming", func() (bool, string) {
		n := 0
		for _, c := range decodeAll(t, cons.all()) {
			if c.Op == "u" {
				n++
			}
		}
		return n >= 50, fmt.Sprintf("%d updates", n)
	})
	stopA()
	time.Sleep(300 * time.Millisecond)
	h.supervise(h.engine("b", slow))
	time.Sleep(time.Second)
	w.stop()
	if w.txs.Load() < 100 {
		t.Fatalf("workload committed only %d transactions", w.txs.Load())
	}

	tr := readTruth(t, dsn)
	eventually(t, 30*time.Second, "catch up", func() (bool, string) { return caughtUp(t, decodeAll(t, cons.all()), tr, env) })
	dups := verifyWorkload(t, decodeAll(t, cons.all()), tr, env)
	t.Logf("%d transactions, %d replayed records", w.txs.Load(), dups)
}

// TestGracefulHandoverMidStream stops workers' captures the orderly way
// (as a worker that shuts down does) while transactions keep coming: the
// records still buffered in the producer when the capture stops are not
// written, and must not be confirmed to the slot either.
func TestGracefulHandoverMidStream(t *testing.T) {
	h := newHarness(t)
	dsn := pgtest.NewDatabase(t)
	exec(t, connect(t, dsn), fmt.Sprintf(workloadDDL, workloadKeys))
	const env = "envhandover"
	// A long linger keeps records buffered when the capture stops.
	linger := func(c *Config) { c.ProducerLinger = 50 * time.Millisecond }
	e := h.engine("a", linger)
	if err := e.Ensure(context.Background(), spec(env, dsn)); err != nil {
		t.Fatal(err)
	}
	cons := consume(t, h.brokers, env+".public.counters", env+".public.events")
	stop := h.supervise(e)
	w := startWorkload(t, dsn, workloadKeys, 0)
	for i := range 3 {
		streamingRow(t, e, env)
		time.Sleep(500 * time.Millisecond)
		stop()
		stop = h.supervise(h.engine(fmt.Sprintf("w%d", i), linger))
	}
	time.Sleep(500 * time.Millisecond)
	w.stop()

	tr := readTruth(t, dsn)
	eventually(t, 30*time.Second, "catch up", func() (bool, string) { return caughtUp(t, decodeAll(t, cons.all()), tr, env) })
	dups := verifyWorkload(t, decodeAll(t, cons.all()), tr, env)
	t.Logf("%d transactions, %d replayed records", w.txs.Load(), dups)
}

// TestPostgresRestartMidStream restarts the source server while
// transactions keep coming.
func TestPostgresRestartMidStream(t *testing.T) {
	h := newHarness(t)
	cluster := pgtest.NewCluster(t)
	dsn := cluster.URL()
	exec(t, connect(t, dsn), fmt.Sprintf(workloadDDL, workloadKeys))
	const env = "envrestart"
	e := h.engine("a", nil)
	if err := e.Ensure(context.Background(), spec(env, dsn)); err != nil {
		t.Fatal(err)
	}
	cons := consume(t, h.brokers, env+".public.counters", env+".public.events")
	h.supervise(e)
	w := startWorkload(t, dsn, workloadKeys, time.Millisecond)
	eventually(t, 20*time.Second, "streaming", func() (bool, string) {
		n := 0
		for _, c := range decodeAll(t, cons.all()) {
			if c.Op == "u" {
				n++
			}
		}
		return n >= 50, fmt.Sprintf("%d updates", n)
	})
	before := w.txs.Load()
	if err := cluster.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "workload resumes", func() (bool, string) {
		return w.txs.Load() > before+100, fmt.Sprintf("%d transactions", w.txs.Load())
	})
	w.stop()

	tr := readTruth(t, dsn)
	eventually(t, 30*time.Second, "catch up", func() (bool, string) { return caughtUp(t, decodeAll(t, cons.all()), tr, env) })
	dups := verifyWorkload(t, decodeAll(t, cons.all()), tr, env)
	t.Logf("%d transactions, %d replayed records", w.txs.Load(), dups)
}
