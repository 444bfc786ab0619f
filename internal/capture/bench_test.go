package capture

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/pgtest"
)

// Benchmarks of the capture on a private PostgreSQL server and the
// in-process broker, both on this machine. Each runs its workload once,
// whatever b.N, and reports:
//
//	rows/s  rows from commit to Kafka's acknowledgement
//	p50-ms, p99-ms  commit-to-acknowledgement latency
//
// Run: go test -run '^$' -bench . ./internal/capture/
// CDCQ_BENCH_ROWS changes the 1,000,000 rows of the throughput runs.

const benchDDL = `CREATE TABLE bench (id bigint PRIMARY KEY, n integer, label text, at timestamptz, amount numeric(12,2))`

// benchRig is a capture of the bench table, streaming.
type benchRig struct {
	h      *harness
	dsn    string
	conn   *pgx.Conn
	acked  atomic.Int64
	mu     sync.Mutex
	lat    []time.Duration
	record bool
}

func newBenchRig(b *testing.B) *benchRig {
	b.Helper()
	h := newHarness(b)
	cluster := pgtest.NewCluster(b)
	r := &benchRig{h: h, dsn: cluster.URL()}
	r.conn = connect(b, r.dsn)
	exec(b, r.conn, benchDDL)
	return r
}

// start runs the capture until the test ends.
func (r *benchRig) start(b *testing.B, env string) (stop func()) {
	b.Helper()
	e := r.h.engine("bench", func(c *Config) {
		c.SnapshotChunkRows = 10000
		c.StatusInterval = time.Second
		c.HeartbeatInterval = 10 * time.Second
		c.ProgressInterval = time.Second
		c.Logger = testLogger()
		c.onAck = func(commit time.Time) {
			r.acked.Add(1)
			if r.record {
				d := time.Since(commit)
				r.mu.Lock()
				r.lat = append(r.lat, d)
				r.mu.Unlock()
			}
		}
	})
	if err := e.Ensure(context.Background(), spec(env, r.dsn)); err != nil {
		b.Fatal(err)
	}
	stop = r.h.supervise(e)
	streamingRow(b, e, env)
	return stop
}

func (r *benchRig) waitAcked(b *testing.B, n int64, timeout time.Duration) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for r.acked.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d records acknowledged after %s", r.acked.Load(), n, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// cpuTime is the CPU time this process (the capture, the in-process broker
// and the test driver; not PostgreSQL) has used: on a busy machine CPU per
// row says more than rows per second.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// checkTopic makes sure the topic holds what was counted.
func (r *benchRig) checkTopic(b *testing.B, topic string, want int64) {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.h.brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		b.Fatal(err)
	}
	var got int64
	ends.Each(func(o kadm.ListedOffset) { got += o.Offset })
	if got != want {
		b.Fatalf("topic %s holds %d records, want %d", topic, got, want)
	}
}

func benchRows() int64 {
	if n, err := strconv.ParseInt(os.Getenv("CDCQ_BENCH_ROWS"), 10, 64); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// BenchmarkCaptureOneTransaction: N rows inserted in one transaction, from
// its commit until Kafka acknowledged the last row.
func BenchmarkCaptureOneTransaction(b *testing.B) {
	r := newBenchRig(b)
	r.start(b, "benchone")
	n := benchRows()
	start := r.acked.Load()
	b.ResetTimer()
	exec(b, r.conn, `INSERT INTO bench SELECT g, g, md5(g::text), now(), g * 1.25 FROM generate_series(1, $1) g`, n)
	committed, cpu := time.Now(), cpuTime()
	r.waitAcked(b, start+n, 10*time.Minute)
	elapsed := time.Since(committed)
	b.StopTimer()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(float64(cpuTime()-cpu)/float64(time.Microsecond)/float64(n), "cpu-us/row")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d rows in one transaction: %s from commit to last acknowledgement", n, elapsed)
	r.checkTopic(b, "benchone.public.bench", n)
}

// BenchmarkCaptureSmallTransactions: N rows in transactions of 100 rows,
// committed while the capture was stopped; measured from the capture's
// start until Kafka acknowledged the last row (the backlog a restarted
// capture works through).
func BenchmarkCaptureSmallTransactions(b *testing.B) {
	r := newBenchRig(b)
	stop := r.start(b, "benchsmall")
	stop()
	n := benchRows()
	txs := n / 100
	exec(b, r.conn, fmt.Sprintf(`DO $$ BEGIN
		FOR i IN 0..%d LOOP
			INSERT INTO bench SELECT g, g, md5(g::text), now(), g * 1.25 FROM generate_series(i * 100 + 1, i * 100 + 100) g;
			COMMIT;
		END LOOP; END $$`, txs-1))
	b.ResetTimer()
	began, cpu := time.Now(), cpuTime()
	r.start(b, "benchsmall")
	r.waitAcked(b, txs*100, 10*time.Minute)
	elapsed := time.Since(began)
	b.StopTimer()
	b.ReportMetric(float64(txs*100)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(float64(cpuTime()-cpu)/float64(time.Microsecond)/float64(txs*100), "cpu-us/row")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d rows in %d transactions: %s from the capture's start to last acknowledgement", txs*100, txs, elapsed)
	r.checkTopic(b, "benchsmall.public.bench", txs*100)
}

// BenchmarkCaptureLatency: one-row transactions at a steady 2,000 commits/s
// for 5 seconds; latency from each commit (its commit timestamp) to Kafka's
// acknowledgement of its record.
func BenchmarkCaptureLatency(b *testing.B) {
	r := newBenchRig(b)
	r.start(b, "benchlat")
	const rate, seconds, writers = 2000, 5, 4
	total := int64(rate * seconds)
	start := r.acked.Load()
	r.record = true
	b.ResetTimer()
	began := time.Now()
	var wg sync.WaitGroup
	var late atomic.Int64
	for w := range writers {
		conn := connect(b, r.dsn)
		// The test server runs with synchronous_commit off, which holds
		// WAL (and so the walsender) back for up to wal_writer_delay; a
		// production server flushes at commit.
		exec(b, conn, `SET synchronous_commit = on`)
		wg.Add(1)
		go func() {
			defer wg.Done()
			interval := time.Second * writers / rate
			for i := int64(w); i < total; i += writers {
				due := began.Add(time.Duration(i) * time.Second / rate)
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				} else if d < -interval {
					late.Add(1)
				}
				if _, err := conn.Exec(context.Background(), `INSERT INTO bench VALUES ($1, 1, 'x', now(), 1)`, i+1); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	writing := time.Since(began)
	r.waitAcked(b, start+total, time.Minute)
	b.StopTimer()
	r.mu.Lock()
	lat := slices.Clone(r.lat)
	r.mu.Unlock()
	slices.Sort(lat)
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
	b.ReportMetric(float64(total)/writing.Seconds(), "commits/s")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d commits in %s (%d behind schedule); latency p50 %.2fms p99 %.2fms max %.2fms",
		total, writing, late.Load(), p(0.5), p(0.99), p(1))
}

// BenchmarkSnapshotStartingOver: the initial snapshot of a table on an
// empty topic, against a snapshot that starts over after a crash at its
// very end (the topic holds every row of the abandoned snapshot, and 1% or
// 0.01% of the rows were deleted meanwhile: retracted rows close together
// or far apart): the second reads the topic first
// and retracts the deleted rows. Both from the start of a worker's capture
// to the snapshot's position recorded (streaming may begin).
//
//	first-rows/s, again-rows/s  rows of the table per second
//	retracted                   rows the second snapshot retracted
//
// CDCQ_BENCH_ROWS changes the 200,000 rows.
func BenchmarkSnapshotStartingOver(b *testing.B) {
	for _, every := range []int{100, 10000} {
		b.Run(fmt.Sprintf("deleted=1/%d", every), func(b *testing.B) { benchSnapshotStartingOver(b, every) })
	}
}

func benchSnapshotStartingOver(b *testing.B, every int) {
	rows := 200_000
	if v, err := strconv.Atoi(os.Getenv("CDCQ_BENCH_ROWS")); err == nil && v > 0 {
		rows = v
	}
	r := newBenchRig(b)
	exec(b, r.conn, fmt.Sprintf(`INSERT INTO bench SELECT g, g %% 1000, 'label ' || g, now(), CASE WHEN g %% 5 = 0 THEN NULL ELSE g * 0.5 END
		FROM generate_series(1, %d) g; ANALYZE bench`, rows))
	const env = "benchagain"
	sp := spec(env, r.dsn)
	crashed := make(chan struct{})
	first := r.h.engine("first", func(c *Config) {
		c.SnapshotChunkRows = 10000
		c.ProgressInterval = time.Second
		c.crashOnStop = true
		c.at = func(ctx context.Context, point string) {
			if point == "snapshot-copied" {
				close(crashed)
				<-ctx.Done()
			}
		}
	})
	if err := first.Ensure(context.Background(), sp); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	stop := r.h.supervise(first)
	<-crashed
	firstTook := time.Since(start)
	stop()
	exec(b, r.conn, fmt.Sprintf(`DELETE FROM bench WHERE id %% %d = 0`, every))

	again := r.h.engine("again", func(c *Config) {
		c.SnapshotChunkRows = 10000
		c.ProgressInterval = time.Second
	})
	start = time.Now()
	r.h.supervise(again)
	row := streamingRow(b, again, env)
	againTook := time.Since(start)
	b.StopTimer()
	var retracted int64
	if row.Snapshot != nil {
		retracted = row.Snapshot.RowsRetracted
	}
	if want := int64(rows / every); retracted != want {
		b.Fatalf("retracted %d rows, want %d", retracted, want)
	}
	b.ReportMetric(float64(rows)/firstTook.Seconds(), "first-rows/s")
	b.ReportMetric(float64(rows-rows/every)/againTook.Seconds(), "again-rows/s")
	b.ReportMetric(float64(retracted), "retracted")
}
