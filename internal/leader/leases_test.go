package leader_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/leader"
	"github.com/cdcq/cdcq/internal/pgtest"
)

// Two processes share three units of work: each unit runs in exactly one of
// them, and when one process stops, the other takes its units over.
func TestLeasesRunEachUnitOnceAndMove(t *testing.T) {
	url, _ := pgtest.NewJobState(t)
	var mu sync.Mutex
	running := map[string]int{} // id -> how many run it now
	maxAtOnce := 0
	owner := map[string]int{}
	run := func(p int) func(ctx context.Context, id string) {
		return func(ctx context.Context, id string) {
			mu.Lock()
			running[id]++
			if running[id] > maxAtOnce {
				maxAtOnce = running[id]
			}
			owner[id] = p
			mu.Unlock()
			<-ctx.Done()
			mu.Lock()
			running[id]--
			mu.Unlock()
		}
	}
	wanted := func(context.Context) ([]string, error) { return []string{"a", "b", "c"}, nil }
	var wg sync.WaitGroup
	cancels := make([]context.CancelFunc, 2)
	for p := 0; p < 2; p++ {
		ctx, cancel := context.WithCancel(context.Background())
		cancels[p] = cancel
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			if err := leader.RunLeases(ctx, leader.LeasesConfig{DatabaseURL: url, Namespace: "test", Wanted: wanted, Run: run(p), Interval: 50 * time.Millisecond}); err != nil {
				t.Error(err)
			}
		}(p)
	}
	all := func(p int) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range []string{"a", "b", "c"} {
			if running[id] != 1 || (p >= 0 && owner[id] != p) {
				return false
			}
		}
		return true
	}
	waitFor(t, func() bool { return all(-1) })
	cancels[0]()
	waitFor(t, func() bool { return all(1) })
	cancels[1]()
	wg.Wait()
	if maxAtOnce != 1 {
		t.Fatalf("a unit ran in %d processes at once", maxAtOnce)
	}
}

// A unit taken over by another process runs with a larger epoch, and a
// write fenced with the first holder's epoch is refused from then on,
// while the new holder's goes through.
func TestTakeOverFencesThePreviousHolder(t *testing.T) {
	url, pool := pgtest.NewJobState(t)
	if _, err := pool.Exec(context.Background(), `CREATE TABLE writes (by int)`); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	fences := map[int]leader.Fence{}
	run := func(p int) func(ctx context.Context, id string) {
		return func(ctx context.Context, id string) {
			f, ok := leader.FenceFrom(ctx)
			if !ok {
				t.Error("a run's context carries no fence")
			}
			mu.Lock()
			fences[p] = f
			mu.Unlock()
			<-ctx.Done()
		}
	}
	fenceOf := func(p int) (leader.Fence, bool) {
		mu.Lock()
		defer mu.Unlock()
		f, ok := fences[p]
		return f, ok
	}
	wanted := func(context.Context) ([]string, error) { return []string{"u"}, nil }
	start := func(p int) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := leader.RunLeases(ctx, leader.LeasesConfig{DatabaseURL: url, Namespace: "test", Wanted: wanted, Run: run(p), Interval: 50 * time.Millisecond}); err != nil {
				t.Error(err)
			}
		}()
		return func() { cancel(); <-done }
	}
	write := func(f leader.Fence, by int) error {
		_, err := leader.FencedExec(leader.WithFence(context.Background(), f), pool, `INSERT INTO writes VALUES ($1)`, by)
		return err
	}
	stop0 := start(0)
	waitFor(t, func() bool { _, ok := fenceOf(0); return ok })
	first, _ := fenceOf(0)
	if err := write(first, 0); err != nil {
		t.Fatalf("the holder's own write: %v", err)
	}
	stop1 := start(1)
	defer stop1()
	stop0()
	waitFor(t, func() bool { _, ok := fenceOf(1); return ok })
	second, _ := fenceOf(1)
	if second.Epoch <= first.Epoch {
		t.Fatalf("the new holder's epoch %d is not above the first's %d", second.Epoch, first.Epoch)
	}
	if err := write(first, 0); !errors.Is(err, leader.ErrFenced) {
		t.Fatalf("a write with the previous holder's epoch: got %v, want ErrFenced", err)
	}
	if err := write(second, 1); err != nil {
		t.Fatalf("the new holder's write: %v", err)
	}
	var byFirst int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM writes WHERE by = 0`).Scan(&byFirst); err != nil {
		t.Fatal(err)
	}
	if byFirst != 1 {
		t.Fatalf("%d writes of the first holder landed, want 1 (the one before the take-over)", byFirst)
	}
}

// The epoch of work no longer wanted whose holder died before giving it
// back is removed; one whose lease someone holds is kept.
func TestLeasesSweepEpochsOfWorkGone(t *testing.T) {
	url, pool := pgtest.NewJobState(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO lease_epochs (namespace, id, epoch) VALUES ('test', 'gone', 1), ('test', 'held', 2), ('other', 'gone', 3)`); err != nil {
		t.Fatal(err)
	}
	holder, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Release()
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock($1)`, leader.LeaseKey("test", "held")); err != nil {
		t.Fatal(err)
	}
	defer holder.Exec(ctx, `SELECT pg_advisory_unlock($1)`, leader.LeaseKey("test", "held"))
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = leader.RunLeases(runCtx, leader.LeasesConfig{DatabaseURL: url, Namespace: "test", Interval: 50 * time.Millisecond,
			Wanted: func(context.Context) ([]string, error) { return nil, nil }, Run: func(context.Context, string) {}})
	}()
	defer func() { cancel(); <-done }()
	left := func() string {
		var ids string
		if err := pool.QueryRow(ctx, `SELECT string_agg(namespace || '/' || id, ',' ORDER BY namespace, id) FROM lease_epochs`).Scan(&ids); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	waitFor(t, func() bool { return left() == "other/gone,test/held" })
}
