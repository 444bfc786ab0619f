package leader_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/leader"
	"github.com/cdcq/cdcq/internal/pgtest"
)

// Two processes share three units of work: each unit runs in exactly one of
// them, and when one process stops, the other takes its units over.
func TestLeasesRunEachUnitOnceAndMove(t *testing.T) {
	url := pgtest.NewDatabase(t)
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
