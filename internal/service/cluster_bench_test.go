package service

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/clustertest"
	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/internal/resulttopic"
)

// Benchmarks of the real cluster's engines (Debezium on Kafka Connect,
// Flink SQL through the SQL Gateway) against cdcq's embedded ones, in the
// same run, on the same source database and the same Kafka broker (the
// cluster's). The engines take turns: each runs in a system of its own, and
// its connection is deleted, and seen DELETED, before the other starts, so
// the two never compete for the cores (other processes on the machine may).
// Each benchmark runs its workload once,
// whatever b.N, reports with b.ReportMetric, and prints one line per
// comparison, starting with "cluster-vs-embedded:", with both figures and
// their ratio. Nothing asserts a timing.
//
// They need a cluster started with the normal JIT. `make bench-cluster`
// starts .cluster if it is not up, and runs
//
//	CDCQ_TEST_CLUSTER_ENV=$PWD/.cluster/env go test -run '^$' -bench '^BenchmarkCluster' -benchtime 1x -timeout 90m ./internal/service/
//
// Without CDCQ_TEST_CLUSTER_ENV (`make bench`, a plain go test -bench) they
// start a cluster of their own through clustertest.ForBenchmarks, with the
// normal JIT too (the tests' C1-only JIT would mislead the figures).
//
// Sizes, from the environment:
//
//	CDCQ_BENCH_CLUSTER_ROWS     rows of each capture throughput run (200000)
//	CDCQ_BENCH_CLUSTER_SECONDS  length of each steady-rate run (20)
//	CDCQ_BENCH_CLUSTER_UPDATES  rows of the query's table, all updated in the burst (100000)

const (
	// captureRate and queryRate are the steady rates of one-row commits.
	captureRate, queryRate = 2000, 1000
	// steadyWriters commit the steady workloads, each on its own connection.
	steadyWriters = 4
	// queryGroups is the number of groups of the maintained query.
	queryGroups = 1000
)

// clusterBenchSize reads a size from the environment.
func clusterBenchSize(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// needBenchCluster makes sure the benchmark's cluster runs the normal JIT:
// the one named by CDCQ_TEST_CLUSTER_ENV (as `make bench-cluster` starts
// it), or one it starts itself.
func needBenchCluster(b *testing.B) {
	b.Helper()
	clustertest.ForBenchmarks(b)
}

// benchEngine is one side of a comparison.
type benchEngine struct {
	name string
	use  clusterEngines
}

var (
	debeziumSide = benchEngine{name: "debezium", use: clusterEngines{debezium: true}}
	flinkSide    = benchEngine{name: "flink", use: clusterEngines{flink: true}}
	embeddedSide = benchEngine{name: "embedded", use: clusterEngines{}}
	// captureComparison runs no query; queryComparison feeds both query
	// engines from the embedded capture.
	captureComparison = []benchEngine{debeziumSide, embeddedSide}
	queryComparison   = []benchEngine{flinkSide, embeddedSide}
)

// clusterBenchTimeout bounds each wait for an engine to finish a workload.
const clusterBenchTimeout = 10 * time.Minute

// benchConnection starts a system with the engine's engines and registers
// the source database as a new environment, deleted (and awaited) when the
// benchmark ends.
func benchConnection(b *testing.B, eng benchEngine, src string) (*system, string) {
	b.Helper()
	s := startClusterSystem(b, eng.use)
	env := uniqueEnv("b" + eng.name[:2])
	body := map[string]string{"connectionString": src, "environmentId": env}
	if res := s.postJSON("/createDatabaseConnection", body); res.status != http.StatusCreated {
		b.Fatalf("%s: create connection: %d %s", eng.name, res.status, res.body)
	}
	s.deleteOnCleanup(src, env)
	return s, env
}

// topicEnd reads the sum of a topic's end offsets: how many records Kafka
// has acknowledged on it.
type topicEnd struct {
	adm   *kadm.Client
	topic string
}

func newTopicEnd(b *testing.B, brokers []string, topic string) *topicEnd {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	return &topicEnd{adm: kadm.NewClient(cl), topic: topic}
}

// total is 0 for a topic that does not exist yet.
func (t *topicEnd) total(ctx context.Context) int64 {
	ends, err := t.adm.ListEndOffsets(ctx, t.topic)
	if err != nil {
		return 0
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			n += o.Offset
		}
	})
	return n
}

// await polls every 2 ms until the topic holds n records, and returns when
// it first saw them.
func (t *topicEnd) await(n int64, timeout time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		if t.total(ctx) >= n {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s holds %d records after %s, want %d", t.topic, t.total(context.Background()), timeout, n)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func (t *topicEnd) mustAwait(b *testing.B, n int64, timeout time.Duration) time.Time {
	b.Helper()
	at, err := t.await(n, timeout)
	if err != nil {
		b.Fatal(err)
	}
	return at
}

// sourceExec runs statements on the source database.
func sourceExec(b *testing.B, conn *pgx.Conn, sql string, args ...any) {
	b.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		b.Fatalf("%.200s: %v", sql, err)
	}
}

// syncCommits makes a connection's commits wait for the WAL flush, as a
// production server's do: the test server runs with synchronous_commit
// off, which holds the WAL, and so the walsender, back for up to
// wal_writer_delay.
func syncCommits(b *testing.B, conn *pgx.Conn) {
	b.Helper()
	sourceExec(b, conn, `SET synchronous_commit = on`)
}

const captureBenchTable = `(id bigint PRIMARY KEY, n integer, label text, at timestamptz, amount numeric(12,2))`

// newCaptureTable creates the table afresh, with one row for the snapshot.
func newCaptureTable(b *testing.B, conn *pgx.Conn, table string) {
	b.Helper()
	sourceExec(b, conn, fmt.Sprintf(`DROP TABLE IF EXISTS %[1]s; CREATE TABLE %[1]s %[2]s;
		INSERT INTO %[1]s VALUES (0, 0, 'snapshot', now(), 0)`, table, captureBenchTable))
}

// streaming waits until the capture has snapshotted the table's row and
// streams: a row inserted after the snapshot is on the topic.
func streaming(b *testing.B, conn *pgx.Conn, table string, end *topicEnd) {
	b.Helper()
	end.mustAwait(b, 1, 3*time.Minute)
	sourceExec(b, conn, fmt.Sprintf(`INSERT INTO %s VALUES (-1, 0, 'probe', now(), 0)`, table))
	end.mustAwait(b, 2, time.Minute)
}

// warmUp captures a tenth of the measured rows (ids below zero) first, so
// that both engines are measured warm, as a long-running capture is.
func warmUp(b *testing.B, conn *pgx.Conn, table string, end *topicEnd, rows int) {
	b.Helper()
	n := max(rows/10, 1000)
	before := end.total(context.Background())
	sourceExec(b, conn, fmt.Sprintf(`INSERT INTO %s SELECT -1 - g, g, md5(g::text), now(), g * 1.25 FROM generate_series(1, %d) g`, table, n))
	end.mustAwait(b, before+int64(n), clusterBenchTimeout)
}

// comparison collects one figure per engine and prints them side by side.
type comparison struct {
	what  string
	unit  string
	lower bool // lower is better (latencies)
	order []string
	got   map[string]float64
}

func newComparison(what, unit string, lower bool) *comparison {
	return &comparison{what: what, unit: unit, lower: lower, got: map[string]float64{}}
}

func (c *comparison) set(engine string, v float64) {
	if _, ok := c.got[engine]; !ok {
		c.order = append(c.order, engine)
	}
	c.got[engine] = v
}

// print writes "cluster-vs-embedded: what: cluster X unit, embedded Y unit
// (the better one N× higher or lower)"; a comparison missing a side (a
// failed run) prints what it has.
func (c *comparison) print() {
	line := "cluster-vs-embedded: " + c.what + ":"
	for i, e := range c.order {
		if i > 0 {
			line += ","
		}
		line += fmt.Sprintf(" %s %s %s", e, figure(c.got[e]), c.unit)
	}
	if len(c.order) == 2 {
		a, z := c.order[0], c.order[1]
		better, worse := a, z
		if (c.lower && c.got[z] < c.got[a]) || (!c.lower && c.got[z] > c.got[a]) {
			better, worse = z, a
		}
		switch vb, vw := c.got[better], c.got[worse]; {
		case c.lower && vb > 0:
			line += fmt.Sprintf(" (%s %.1f× lower)", better, vw/vb)
		case !c.lower && vw > 0:
			line += fmt.Sprintf(" (%s %.1f× higher)", better, vb/vw)
		}
	}
	fmt.Println(line)
}

// figure prints a number with three significant digits at least.
func figure(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// BenchmarkClusterCaptureThroughput: rows per second from commit until
// Kafka acknowledged the last row (the topic's end offset counts it), for
// N rows in one transaction and N rows in 100-row transactions, Debezium
// against the embedded capture. Both engines are warmed up with N/10 rows
// first.
func BenchmarkClusterCaptureThroughput(b *testing.B) {
	needBenchCluster(b)
	rows := clusterBenchSize("CDCQ_BENCH_CLUSTER_ROWS", 200_000)
	src, conn := sourceDatabase(b)
	syncCommits(b, conn)
	for _, small := range []bool{false, true} {
		name, what := "one_transaction", fmt.Sprintf("capture, %d rows in one transaction, commit to Kafka acknowledgement", rows)
		if small {
			name, what = "small_transactions", fmt.Sprintf("capture, %d rows in 100-row transactions, first commit to Kafka acknowledgement of the last", rows)
		}
		cmp := newComparison(what, "rows/s", false)
		b.Run(name, func(b *testing.B) {
			for _, eng := range captureComparison {
				b.Run(eng.name, func(b *testing.B) {
					cmp.set(eng.name, captureThroughput(b, eng, src, conn, rows, small))
				})
			}
		})
		cmp.print()
	}
}

// captureThroughput measures one engine; it returns rows/s.
func captureThroughput(b *testing.B, eng benchEngine, src string, conn *pgx.Conn, rows int, small bool) float64 {
	const table = "tput"
	newCaptureTable(b, conn, table)
	s, env := benchConnection(b, eng, src)
	end := newTopicEnd(b, s.inf.Brokers, env+".public."+table)
	streaming(b, conn, table, end)
	warmUp(b, conn, table, end, rows)
	base := end.total(context.Background())

	b.ResetTimer()
	var began, committed time.Time
	if small {
		began = time.Now()
		sourceExec(b, conn, fmt.Sprintf(`DO $$ BEGIN
			FOR i IN 0..%d LOOP
				INSERT INTO %s SELECT g, g, md5(g::text), now(), g * 1.25 FROM generate_series(i * 100 + 1, i * 100 + 100) g;
				COMMIT;
			END LOOP; END $$`, rows/100-1, table))
		committed = time.Now()
		rows = rows / 100 * 100
	} else {
		sourceExec(b, conn, fmt.Sprintf(`INSERT INTO %s SELECT g, g, md5(g::text), now(), g * 1.25 FROM generate_series(1, %d) g`, table, rows))
		began = time.Now()
		committed = began
	}
	last := end.mustAwait(b, base+int64(rows), clusterBenchTimeout)
	b.StopTimer()

	elapsed := last.Sub(began)
	rate := float64(rows) / elapsed.Seconds()
	b.ReportMetric(rate, "rows/s")
	b.ReportMetric(0, "ns/op")
	if small {
		// The writer's own pace bounds the figure when it is not much
		// shorter than the whole.
		b.ReportMetric(float64(committed.Sub(began).Milliseconds()), "writing-ms")
		b.ReportMetric(float64(last.Sub(committed).Milliseconds()), "after-last-commit-ms")
		b.Logf("%s: %d rows in %d transactions committed in %s; the last on the topic %s after the first commit (%s after the last)",
			eng.name, rows, rows/100, committed.Sub(began).Round(time.Millisecond), elapsed.Round(time.Millisecond), last.Sub(committed).Round(time.Millisecond))
	} else {
		b.Logf("%s: %d rows in one transaction; the last on the topic %s after the commit", eng.name, rows, elapsed.Round(time.Millisecond))
	}
	return rate
}

// pacedCommits runs total one-row commits at rate per second, spread over
// steadyWriters connections (each with synchronous_commit on), stmt(i)
// being the i-th commit's statement. It returns when each commit returned
// to its writer (Unix nanoseconds, by index), how many commits started
// more than a writer's interval behind schedule, and how long it took.
func pacedCommits(b *testing.B, dsn string, rate, total int, stmt func(i int) (string, []any)) (committed []int64, late int64, took time.Duration) {
	b.Helper()
	ctx := context.Background()
	conns := make([]*pgx.Conn, steadyWriters)
	for w := range conns {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close(ctx)
		syncCommits(b, c)
		conns[w] = c
	}
	committed = make([]int64, total)
	var behind atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	interval := time.Second * steadyWriters / time.Duration(rate)
	for w, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += steadyWriters {
				due := began.Add(time.Duration(i) * time.Second / time.Duration(rate))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				} else if d < -interval {
					behind.Add(1)
				}
				sql, args := stmt(i)
				if _, err := c.Exec(ctx, sql, args...); err != nil {
					b.Error(err)
					return
				}
				committed[i] = time.Now().UnixNano()
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return committed, behind.Load(), time.Since(began)
}

// latencies are the differences seen[i] - committed[i], sorted; a record
// seen before its writer heard of the commit counts as 0.
func latencies(committed, seen []int64) []time.Duration {
	out := make([]time.Duration, len(committed))
	for i := range committed {
		out[i] = time.Duration(max(seen[i]-committed[i], 0))
	}
	slices.Sort(out)
	return out
}

// quantileMs is the q-quantile of sorted latencies, in milliseconds.
func quantileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(q*float64(len(sorted)-1))]) / float64(time.Millisecond)
}

// BenchmarkClusterCaptureLatency: one-row commits at a steady 2,000
// commits/s from 4 writers for 20 s; latency from each commit (when it
// returned to its writer) to when a consumer of the environment's topic
// read its record (by primary key), Debezium against the embedded capture.
func BenchmarkClusterCaptureLatency(b *testing.B) {
	needBenchCluster(b)
	seconds := clusterBenchSize("CDCQ_BENCH_CLUSTER_SECONDS", 20)
	src, conn := sourceDatabase(b)
	syncCommits(b, conn)
	what := fmt.Sprintf("capture latency at %d commits/s for %d s, commit to record read from the topic", captureRate, seconds)
	p50, p99, worst := newComparison(what+", p50", "ms", true), newComparison(what+", p99", "ms", true), newComparison(what+", max", "ms", true)
	for _, eng := range captureComparison {
		b.Run(eng.name, func(b *testing.B) {
			lat := captureLatency(b, eng, src, conn, seconds)
			p50.set(eng.name, quantileMs(lat, 0.5))
			p99.set(eng.name, quantileMs(lat, 0.99))
			worst.set(eng.name, quantileMs(lat, 1))
		})
	}
	p50.print()
	p99.print()
	worst.print()
}

func captureLatency(b *testing.B, eng benchEngine, src string, conn *pgx.Conn, seconds int) []time.Duration {
	const table = "lat"
	newCaptureTable(b, conn, table)
	s, env := benchConnection(b, eng, src)
	topic := env + ".public." + table
	end := newTopicEnd(b, s.inf.Brokers, topic)
	streaming(b, conn, table, end)
	warmUp(b, conn, table, end, captureRate*seconds)

	total := captureRate * seconds
	seen := make([]int64, total)
	read, stop := consumeCaptureKeys(b, s.inf.Brokers, topic, seen)
	b.ResetTimer()
	committed, late, took := pacedCommits(b, src, captureRate, total, func(i int) (string, []any) {
		return `INSERT INTO lat VALUES ($1, 1, 'x', now(), 1)`, []any{int64(i + 1)}
	})
	deadline := time.Now().Add(2 * time.Minute)
	for read.Load() < int64(total) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	b.StopTimer()
	if got := read.Load(); got < int64(total) {
		b.Fatalf("%s: %d of %d records read from %s within 2 min of the last commit", eng.name, got, total, topic)
	}
	lat := latencies(committed, seen)
	b.ReportMetric(quantileMs(lat, 0.5), "p50-ms")
	b.ReportMetric(quantileMs(lat, 0.99), "p99-ms")
	b.ReportMetric(quantileMs(lat, 1), "max-ms")
	b.ReportMetric(float64(total)/took.Seconds(), "commits/s")
	b.ReportMetric(0, "ns/op")
	b.Logf("%s: %d commits in %s (%d behind schedule); commit to topic p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		eng.name, total, took.Round(time.Millisecond), late, quantileMs(lat, 0.5), quantileMs(lat, 0.99), quantileMs(lat, 1))
	return lat
}

// consumeCaptureKeys reads the capture topic from its start and records,
// for each key {"id": i} with 1 <= i <= len(seen), when it was read
// (seen[i-1]); read counts the ids seen. stop ends the consumer and waits
// for it.
func consumeCaptureKeys(b *testing.B, brokers []string, topic string, seen []int64) (read *atomic.Int64, stop func()) {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	read = &atomic.Int64{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			now := time.Now().UnixNano()
			fs.EachRecord(func(r *kgo.Record) {
				var key struct {
					ID int64 `json:"id"`
				}
				if json.Unmarshal(r.Key, &key) != nil || key.ID < 1 || key.ID > int64(len(seen)) || seen[key.ID-1] != 0 {
					return
				}
				seen[key.ID-1] = now
				read.Add(1)
			})
		}
	}()
	return read, func() {
		cancel()
		<-done
		cl.Close()
	}
}

const salesSchema = `datasource db {
  provider = "postgresql"
}

model Sale {
  id     Int      @id
  grp    Int
  amount Decimal? @db.Decimal(12, 2)

  @@map("sales")
}
`

const salesQuery = `SELECT grp, count(*) AS n, sum(amount) AS total FROM sales GROUP BY grp`

// BenchmarkClusterQueryMaintenance: the same cached query (1,000 groups,
// SUM over a nullable column) on Flink and on the embedded engine, both fed
// by the embedded capture:
//
//   - burst: every row of the table (100,000) updated in 1,000-row
//     transactions; change events per second from the first commit until
//     GET /cachedQueries/{id}/result equals PostgreSQL's answer;
//   - steady: one-row inserts at 1,000 commits/s from 4 writers for 20 s;
//     latency from each commit until GET …/result shows it (the count of
//     its group), and until the result topic carries it.
func BenchmarkClusterQueryMaintenance(b *testing.B) {
	needBenchCluster(b)
	rows := clusterBenchSize("CDCQ_BENCH_CLUSTER_UPDATES", 100_000)
	seconds := clusterBenchSize("CDCQ_BENCH_CLUSTER_SECONDS", 20)
	src, conn := sourceDatabase(b)
	syncCommits(b, conn)
	burst := newComparison(fmt.Sprintf("query maintenance, burst of %d updates, first commit to the answer in GET …/result", rows), "events/s", false)
	steady := fmt.Sprintf("query freshness at %d commits/s for %d s, commit to", queryRate, seconds)
	getP50, getP99 := newComparison(steady+" GET …/result, p50", "ms", true), newComparison(steady+" GET …/result, p99", "ms", true)
	topicP50, topicP99 := newComparison(steady+" result topic, p50", "ms", true), newComparison(steady+" result topic, p99", "ms", true)
	for _, eng := range queryComparison {
		b.Run(eng.name, func(b *testing.B) {
			m := queryMaintenance(b, eng, src, conn, rows, seconds)
			burst.set(eng.name, m.eventsPerSecond)
			getP50.set(eng.name, quantileMs(m.get, 0.5))
			getP99.set(eng.name, quantileMs(m.get, 0.99))
			topicP50.set(eng.name, quantileMs(m.topic, 0.5))
			topicP99.set(eng.name, quantileMs(m.topic, 0.99))
		})
	}
	for _, c := range []*comparison{burst, getP50, getP99, topicP50, topicP99} {
		c.print()
	}
}

type maintenance struct {
	eventsPerSecond float64
	get, topic      []time.Duration
}

func queryMaintenance(b *testing.B, eng benchEngine, src string, conn *pgx.Conn, rows, seconds int) maintenance {
	ctx := context.Background()
	// Every tenth amount is NULL: SUM skips it, COUNT(*) counts it.
	sourceExec(b, conn, fmt.Sprintf(`DROP TABLE IF EXISTS sales;
		CREATE TABLE sales (id int PRIMARY KEY, grp int NOT NULL, amount numeric(12,2));
		INSERT INTO sales SELECT g, g %% %d, CASE WHEN g %% 10 = 0 THEN NULL ELSE (g %% 997) * 0.25 END
		  FROM generate_series(1, %d) g`, queryGroups, rows))
	s := startClusterSystem(b, eng.use)
	env := uniqueEnv("b" + eng.name[:2])
	id := createQuery(b, s, src, env, salesSchema, salesQuery)
	s.deleteOnCleanup(src, env)
	if got, ok := s.awaitResult(id, postgresCanonical(b, conn, salesQuery), clusterBenchTimeout); !ok {
		b.Fatalf("%s: the initial result is not PostgreSQL's: %s\nstatus %s", eng.name, got, s.queryStatus(id))
	}
	source := newTopicEnd(b, s.inf.Brokers, env+".public.sales")
	base := source.total(ctx)

	// The burst.
	b.ResetTimer()
	began := time.Now()
	captured := make(chan time.Time, 1)
	go func() {
		at, err := source.await(base+int64(rows), clusterBenchTimeout)
		if err != nil {
			b.Error(err)
		}
		captured <- at
	}()
	sourceExec(b, conn, fmt.Sprintf(`DO $$ BEGIN
		FOR i IN 0..%d LOOP
			UPDATE sales SET amount = amount + 1 WHERE id > i * 1000 AND id <= i * 1000 + 1000;
			COMMIT;
		END LOOP; END $$`, (rows-1)/1000))
	committed := time.Now()
	if got, ok := s.awaitResult(id, postgresCanonical(b, conn, salesQuery), clusterBenchTimeout); !ok {
		b.Fatalf("%s: after the burst the result is not PostgreSQL's: %s\nstatus %s", eng.name, got, s.queryStatus(id))
	}
	answered := time.Now()
	capturedAt := <-captured
	b.StopTimer()
	m := maintenance{eventsPerSecond: float64(rows) / answered.Sub(began).Seconds()}
	b.ReportMetric(m.eventsPerSecond, "events/s")
	b.ReportMetric(float64(answered.Sub(capturedAt).Milliseconds()), "after-capture-ms")
	b.Logf("%s: %d updates committed in %s, captured %s after the first commit, answered %s after it (%s after the capture)",
		eng.name, rows, committed.Sub(began).Round(time.Millisecond), capturedAt.Sub(began).Round(time.Millisecond),
		answered.Sub(began).Round(time.Millisecond), answered.Sub(capturedAt).Round(time.Millisecond))

	// The steady inserts: commit i adds a row to group i % queryGroups, so
	// a group's count says which of its commits a result reflects.
	baseCounts := map[int64]int64{}
	rs, err := conn.Query(ctx, `SELECT grp, count(*) FROM sales GROUP BY grp`)
	if err != nil {
		b.Fatal(err)
	}
	for rs.Next() {
		var g, n int64
		if err := rs.Scan(&g, &n); err != nil {
			b.Fatal(err)
		}
		baseCounts[g] = n
	}
	if rs.Err() != nil {
		b.Fatal(rs.Err())
	}
	total := queryRate * seconds
	viaGet, viaTopic := newGroupVisibility(baseCounts, total), newGroupVisibility(baseCounts, total)
	stopTopic := followResultTopic(b, s.inf.Brokers, env, id, viaTopic)
	stopGet := pollResult(s, id, viaGet)
	b.StartTimer()
	commits, late, took := pacedCommits(b, src, queryRate, total, func(i int) (string, []any) {
		var amount any = "1.00"
		if i%7 == 0 {
			amount = nil
		}
		return `INSERT INTO sales VALUES ($1, $2, $3::numeric)`, []any{rows + 1 + i, i % queryGroups, amount}
	})
	deadline := time.Now().Add(2 * time.Minute)
	for (viaGet.done.Load() < int64(total) || viaTopic.done.Load() < int64(total)) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stopGet()
	stopTopic()
	b.StopTimer()
	if g, t := viaGet.done.Load(), viaTopic.done.Load(); g < int64(total) || t < int64(total) {
		b.Fatalf("%s: of %d commits, GET …/result showed %d and the result topic carried %d within 2 min of the last", eng.name, total, g, t)
	}
	m.get, m.topic = latencies(commits, viaGet.seen), latencies(commits, viaTopic.seen)
	b.ReportMetric(quantileMs(m.get, 0.5), "get-p50-ms")
	b.ReportMetric(quantileMs(m.get, 0.99), "get-p99-ms")
	b.ReportMetric(quantileMs(m.topic, 0.5), "topic-p50-ms")
	b.ReportMetric(quantileMs(m.topic, 0.99), "topic-p99-ms")
	b.ReportMetric(float64(total)/took.Seconds(), "commits/s")
	b.ReportMetric(0, "ns/op")
	b.Logf("%s: %d commits in %s (%d behind schedule); commit to GET …/result p50 %.1f ms, p99 %.1f ms, max %.1f ms; to the result topic p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		eng.name, total, took.Round(time.Millisecond), late, quantileMs(m.get, 0.5), quantileMs(m.get, 0.99), quantileMs(m.get, 1),
		quantileMs(m.topic, 0.5), quantileMs(m.topic, 0.99), quantileMs(m.topic, 1))
	if got, ok := s.awaitResult(id, postgresCanonical(b, conn, salesQuery), time.Minute); !ok {
		b.Fatalf("%s: after the steady inserts the result is not PostgreSQL's: %s", eng.name, got)
	}
	return m
}

// groupVisibility attributes the counts a result shows to the steady
// commits that made them: commit i added a row to group i % queryGroups,
// so the c-th commit of group g is (c-1)*queryGroups + g. One goroutine
// observes; done may be read by others.
type groupVisibility struct {
	base  map[int64]int64
	shown map[int64]int64
	seen  []int64 // by commit, Unix nanoseconds
	done  atomic.Int64
}

func newGroupVisibility(base map[int64]int64, total int) *groupVisibility {
	return &groupVisibility{base: base, shown: map[int64]int64{}, seen: make([]int64, total)}
}

// observe records that at now group grp had n rows.
func (v *groupVisibility) observe(grp, n, now int64) {
	c := n - v.base[grp]
	for k := v.shown[grp] + 1; k <= c; k++ {
		if i := (k-1)*queryGroups + grp; i >= 0 && i < int64(len(v.seen)) {
			v.seen[i] = now
			v.done.Add(1)
		}
	}
	if c > v.shown[grp] {
		v.shown[grp] = c
	}
}

// pollResult reads GET /cachedQueries/{id}/result over and over, 5 ms
// apart, until stop.
func pollResult(s *system, id string, v *groupVisibility) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.apiURL+"/cachedQueries/"+id+"/result", nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			var body resultBody
			err = json.NewDecoder(res.Body).Decode(&body)
			res.Body.Close()
			now := time.Now().UnixNano()
			if err == nil && body.CaughtUp {
				for _, r := range body.Rows {
					g, gok := r["grp"].(float64)
					n, nok := r["n"].(float64)
					if gok && nok {
						v.observe(int64(g), int64(n), now)
					}
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return func() { cancel(); <-done }
}

// followResultTopic reads the environment's result topic from its end:
// each record's value carries every output column of its group.
func followResultTopic(b *testing.B, brokers []string, env, queryID string, v *groupVisibility) (stop func()) {
	b.Helper()
	topic := names.ResultTopic(env)
	ends := newTopicEnd(b, brokers, topic)
	listed, err := ends.adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		b.Fatal(err)
	}
	start := map[string]map[int32]kgo.Offset{topic: {}}
	listed.Each(func(o kadm.ListedOffset) { start[topic][o.Partition] = kgo.NewOffset().At(o.Offset) })
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(start))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			now := time.Now().UnixNano()
			fs.EachRecord(func(r *kgo.Record) {
				var row struct {
					Grp *int64 `json:"grp"`
					N   int64  `json:"n"`
				}
				if id, ok := resulttopic.QueryIDOf(r.Key); !ok || id != queryID || r.Value == nil ||
					json.Unmarshal(r.Value, &row) != nil || row.Grp == nil {
					return
				}
				v.observe(*row.Grp, row.N, now)
			})
		}
	}()
	return func() { cancel(); <-done; cl.Close() }
}
