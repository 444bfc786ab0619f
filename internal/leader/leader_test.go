package leader_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/leader"
	"github.com/cdcq/cdcq/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Two candidates: exactly one leads at a time, and when the leader stops,
// the other takes over.
func TestOneLeaderAndFailover(t *testing.T) {
	url := pgtest.NewDatabase(t)
	var leading atomic.Int32
	var maxLeading atomic.Int32
	var led [2]atomic.Bool
	ctxs := make([]context.CancelFunc, 2)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		ctxs[i] = cancel
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			leader.Run(ctx, leader.Config{DatabaseURL: url, LockID: 42, RetryInterval: 50 * time.Millisecond}, func(lctx context.Context) {
				n := leading.Add(1)
				for {
					m := maxLeading.Load()
					if n <= m || maxLeading.CompareAndSwap(m, n) {
						break
					}
				}
				led[i].Store(true)
				<-lctx.Done()
				leading.Add(-1)
			})
		}(i)
	}
	waitFor(t, func() bool { return led[0].Load() || led[1].Load() })
	first := 0
	if led[1].Load() {
		first = 1
	}
	ctxs[first]()
	waitFor(t, func() bool { return led[1-first].Load() })
	ctxs[1-first]()
	wg.Wait()
	if maxLeading.Load() != 1 {
		t.Fatalf("at most %d leaders at once, want 1", maxLeading.Load())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
