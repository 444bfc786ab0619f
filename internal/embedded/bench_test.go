package embedded

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/dbzjson"
	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/internal/results"
	"github.com/cdcq/cdcq/projections"
)

// benchRestartSizes reads CDCQ_BENCH_RESTART_SIZES: the numbers of change
// records of BenchmarkRestartVsHistory, comma-separated, with k and M for
// thousands and millions ("1M,5M,10M"). Default 1M: 10M records take about
// 5 GiB in the in-process broker and a few minutes to write.
func benchRestartSizes(b *testing.B) []int {
	v := os.Getenv("CDCQ_BENCH_RESTART_SIZES")
	if v == "" {
		v = "1M"
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		mult := 1
		switch {
		case strings.HasSuffix(f, "M"):
			mult, f = 1_000_000, strings.TrimSuffix(f, "M")
		case strings.HasSuffix(f, "k"):
			mult, f = 1_000, strings.TrimSuffix(f, "k")
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			b.Fatalf("CDCQ_BENCH_RESTART_SIZES: %q is not a count such as 1M", v)
		}
		out = append(out, n*mult)
	}
	return out
}

// benchRestartRows is the source table's size: 1M rows, or fewer when
// there are fewer changes (CDCQ_BENCH_RESTART_ROWS changes it).
func benchRestartRows(b *testing.B) int {
	if v := os.Getenv("CDCQ_BENCH_RESTART_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("CDCQ_BENCH_RESTART_ROWS: %q", v)
		}
		return n
	}
	return 1_000_000
}

// produceHistory writes changes Debezium records of the sales table
// (engineTestSales) to topic, as the capture writes them: rows inserts
// first, then updates of random rows, and now and then a row deleted
// (with its tombstone) and inserted again, so that the table keeps rows
// rows. The records go straight to the broker: taking 10M changes
// through PostgreSQL's WAL and the capture would take far longer.
func produceHistory(b *testing.B, cl *kgo.Client, topic string, rows, changes int) {
	rng := rand.New(rand.NewPCG(1, 2))
	str := func(s string) dbzjson.Value { return &s }
	row := func(id int) []dbzjson.Value {
		return []dbzjson.Value{str(strconv.Itoa(id)), str(strconv.Itoa(rng.IntN(1000))), str(fmt.Sprintf("%d.%02d", rng.IntN(100000), rng.IntN(100)))}
	}
	var (
		mu       sync.Mutex
		firstErr error
	)
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	}
	lsn := int64(1000)
	produce := func(op dbzjson.Op, before, after []dbzjson.Value) {
		lsn += 8
		keyRow := after
		if keyRow == nil {
			keyRow = before
		}
		key, err := dbzjson.Key(engineTestSales, keyRow)
		if err != nil {
			b.Fatal(err)
		}
		val, err := dbzjson.Envelope(engineTestSales, op, before, after,
			dbzjson.Source{Name: "bench", DB: "shop", LSN: lsn, TxID: lsn / 8, TsMs: 1709284500123 + lsn/1000}, 1709284500123+lsn/1000)
		if err != nil {
			b.Fatal(err)
		}
		cl.Produce(context.Background(), &kgo.Record{Topic: topic, Key: key, Value: val}, done)
		if op == dbzjson.OpDelete {
			cl.Produce(context.Background(), &kgo.Record{Topic: topic, Key: key}, done)
		}
	}
	n := 0
	for ; n < min(rows, changes); n++ {
		produce(dbzjson.OpCreate, nil, row(n))
	}
	for n < changes {
		id := rng.IntN(rows)
		if rng.IntN(20) == 0 && n+3 <= changes {
			before := make([]dbzjson.Value, 3)
			before[0] = str(strconv.Itoa(id))
			produce(dbzjson.OpDelete, before, nil)
			produce(dbzjson.OpCreate, nil, row(id))
			n += 3
			continue
		}
		produce(dbzjson.OpUpdate, nil, row(id))
		n++
	}
	if err := cl.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}

// BenchmarkRestartVsHistory measures how long a cached query takes from
// the start of its run to LIVE (caught up) over a sales table of 1M rows
// whose change topic holds 1M, 5M or 10M records
// (CDCQ_BENCH_RESTART_SIZES), rebuilding from the topic's start and
// restoring the checkpoint taken when it caught up, side by side:
//
//	CDCQ_BENCH_RESTART_SIZES=1M,5M,10M go test -run '^$' -bench RestartVsHistory -benchtime 1x ./internal/embedded/
//
// It prints a line per size and way, and the checkpoint's size and the
// time it took (the serialising part holds the live query up; the rest
// runs beside it).
func BenchmarkRestartVsHistory(b *testing.B) {
	rows := benchRestartRows(b)
	for _, changes := range benchRestartSizes(b) {
		b.Run(fmt.Sprintf("changes=%d", changes), func(b *testing.B) {
			broker, err := kafkabus.StartEmbedded("", 0)
			if err != nil {
				b.Fatal(err)
			}
			defer broker.Close()
			cluster := kafkasec.Cluster{Brokers: broker.Brokers()}
			_, pool := pgtest.NewJobState(b)
			store, err := results.New(pool)
			if err != nil {
				b.Fatal(err)
			}
			q := projections.ActiveQuery{QueryID: "q_bench", EnvironmentID: "bench", Schema: engineTestSchema, SQLQuery: engineTestQuery}
			topic := "bench.public.sales"
			if err := kafkabus.EnsureTopics(context.Background(), cluster, kafkabus.Topic{Name: topic, Partitions: 1}); err != nil {
				b.Fatal(err)
			}
			cl, err := cluster.NewClient(kgo.MaxBufferedRecords(100_000), kgo.ProducerLinger(5*time.Millisecond))
			if err != nil {
				b.Fatal(err)
			}
			started := time.Now()
			produceHistory(b, cl, topic, min(rows, changes), changes)
			cl.Close()
			b.Logf("wrote %d records in %s", changes, time.Since(started).Round(time.Millisecond))

			var logs syncBuf
			r := &runner{kafka: cluster, results: store, newEngine: NewIVMEngine, owner: "bench",
				logger:        slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
				progressEvery: time.Second, snapshotEvery: 500 * time.Millisecond,
				// One checkpoint, when the query caught up.
				checkpointEvery: time.Hour, checkpointEvents: 1}
			b.ResetTimer()
			for range b.N {
				rebuild := timeToLive(b, r, store, q)
				// The checkpoint taken when it caught up.
				var events int64
				waitUntil(b, 5*time.Minute, func() bool {
					err := pool.QueryRow(context.Background(), `SELECT events FROM query_checkpoints WHERE query_id = $1`, q.QueryID).Scan(&events)
					return err == nil
				})
				if _, err := pool.Exec(context.Background(), `UPDATE query_progress SET state = $2 WHERE query_id = $1`, q.QueryID, results.StateCatchingUp); err != nil {
					b.Fatal(err)
				}
				restored := timeToLive(b, r, store, q)
				if !strings.Contains(logs.String(), "restored from its checkpoint") {
					b.Fatal("the second run did not restore the checkpoint")
				}
				m := regexp.MustCompile(`checkpoint written.*state_bytes=(\d+) held_ms=(\d+) serialise_ms=(\d+) total_ms=(\d+)`).FindStringSubmatch(logs.String())
				if m == nil {
					b.Fatalf("no checkpoint written in the logs:\n%s", logs.String())
				}
				fmt.Printf("restart-vs-history: rows=%d changes=%d checkpoint=no seconds=%.2f\n", rows, changes, rebuild.Seconds())
				fmt.Printf("restart-vs-history: rows=%d changes=%d checkpoint=yes seconds=%.2f (checkpoint: %s bytes; live query held %s ms, serialised after %s ms, stored after %s ms)\n",
					rows, changes, restored.Seconds(), m[1], m[2], m[3], m[4])
				for _, line := range strings.Split(logs.String(), "\n") {
					if strings.Contains(line, "restored") || strings.Contains(line, "caught up") || strings.Contains(line, "checkpoint written") {
						b.Log(line)
					}
				}
				b.ReportMetric(rebuild.Seconds(), "s-rebuild")
				b.ReportMetric(restored.Seconds(), "s-from-checkpoint")
				if _, err := pool.Exec(context.Background(), `DELETE FROM query_checkpoints`); err != nil {
					b.Fatal(err)
				}
				logs.Reset()
			}
		})
	}
}

// timeToLive runs the query until its result is LIVE and returns how long
// that took from the start of the run.
func timeToLive(b *testing.B, r *runner, store *results.Store, q projections.ActiveQuery) time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := time.Now()
	go func() { done <- r.run(ctx, q) }()
	var took time.Duration
	waitUntil(b, 10*time.Minute, func() bool {
		p, err := store.Progress(context.Background(), q.QueryID)
		if err == nil && p.State == results.StateLive && p.UpdatedAt.After(started) {
			took = time.Since(started)
			return true
		}
		select {
		case err := <-done:
			b.Fatalf("the run ended: %v", err)
		default:
		}
		return false
	})
	cancel()
	<-done // stopped: an error now is the cancellation's
	return took
}

func waitUntil(b *testing.B, timeout time.Duration, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuf is a bytes.Buffer safe for the logger's goroutines.
type syncBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *syncBuf) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Reset()
}
