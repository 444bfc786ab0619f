package serving_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/cdcq/cdcq/internal/results"
	"github.com/cdcq/cdcq/internal/serving"
)

// BenchmarkCacheMemory reports what a cache holds in memory for a result
// of 100,000 rows (each row kept decoded for ordering and encoded for
// serving, and the whole body once encoded), and for each of 1,000
// subscribers (without their HTTP connections). Nothing is asserted.
//
//	go test -run '^$' -bench CacheMemory -benchtime 1x ./internal/serving/
func BenchmarkCacheMemory(b *testing.B) {
	perRows, perSub := measureCacheMemory(b, 100000)
	fmt.Printf("serving: the API's cache holds %.0f kB per 1,000 result rows (100,000 rows) and %.0f bytes per subscriber (1,000, without their HTTP connections)\n",
		perRows/1024, perSub)
	b.ReportMetric(perRows/1024, "kB/1000rows")
	b.ReportMetric(perSub, "B/subscriber")
}

func measureCacheMemory(t testing.TB, rows int) (perThousandRows, perSubscriber float64) {
	w := newWorld(t)
	ctx := t.Context()
	changes := make([]results.Change, rows)
	for i := range changes {
		changes[i] = results.Change{Key: key(ip(i)), Row: value(ip(i), i%1000+1, fmt.Sprintf("%d.%02d", i, i%100))}
	}
	if err := w.store.Replace(ctx, "q1", changes, results.Progress{State: results.StateLive}); err != nil {
		t.Fatal(err)
	}
	var m0, m1, m2 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	c := w.cache(true, 0)
	s, err := c.Snapshot(ctx, "q1")
	if err != nil {
		t.Fatal(err)
	}
	s.Rows()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	var subs []*serving.Subscription
	for range 1000 {
		sub, err := c.Subscribe(context.Background(), "q1", nil)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	runtime.GC()
	runtime.ReadMemStats(&m2)
	runtime.KeepAlive(s)
	runtime.KeepAlive(subs)
	return float64(m1.HeapAlloc-m0.HeapAlloc) / float64(rows/1000), float64(m2.HeapAlloc-m1.HeapAlloc) / 1000
}
