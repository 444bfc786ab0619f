package service

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/capture/capturetest"
	"github.com/cdcq/cdcq/internal/clustertest"
	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/names"
)

// TestClusterKilledDuringSnapshotConverges: a `cdcq worker` process is
// killed with SIGKILL again and again during the embedded capture's initial
// snapshot of a 300,000-row table (as soon as the snapshot is under way,
// once rows were copied, late in the copy) and once in the first seconds
// of streaming, while a writer inserts, updates
// and deletes rows and rows the abandoned snapshots published are deleted
// while no capture runs. After the last restart the change topic holds
// exactly the source's rows, the cached query equals PostgreSQL, one slot
// exists, and no answer of GET /cachedQueries/{id}/result said caughtUp
// while the capture's snapshot was incomplete.
func TestClusterKilledDuringSnapshotConverges(t *testing.T) {
	// Kafka is the real cluster's: a SIGKILLed worker stays in the
	// consumer groups until its session times out, which kfake does not
	// model the way Kafka does.
	c := clustertest.Shared(t)
	bin := buildCdcq(t)
	ns := uniqueEnv("ks")
	s := startSystemOn(t, config.Config{KafkaBrokers: strings.Split(c.KafkaBrokers(), ","), KafkaNamespace: ns},
		func(*Infra, config.Config, *slog.Logger) []WorkerDeps { return nil })
	t.Cleanup(func() { deleteNamespaceTopics(t, s.inf.Brokers, ns) })
	fleet := &workerFleet{t: t, bin: bin, dir: t.TempDir(), env: workerEnv(s, ns)}
	if dir := os.Getenv("CDCQ_TEST_LOG_DIR"); dir != "" {
		fleet.dir = dir
	}
	const rows = 300_000
	// The workers reach the source through a proxy that passes 4 MB/s, so
	// that a snapshot lasts seconds (as a bigger table over a network
	// would) and the kills land in it.
	_, srcConn, proxied := salesSource(t, rows, 4<<20)
	ctx := context.Background()
	env := uniqueEnv("kill")
	t.Cleanup(func() { deleteNamespaceTopics(t, s.inf.Brokers, env) })
	queryID := createSalesQuery(t, s, proxied, env)
	captureState := captureStateOf(t, s, env)

	// Nothing may be served as caught up while the snapshot is incomplete.
	watch := watchResult(t, s, queryID, func() bool { _, _, _, done := captureState(0); return done })
	w := capturetest.StartWriter(t, srcConn.Config().ConnString(), "sales", rows, 5*time.Millisecond)

	kills := []struct {
		name  string
		ready func(phase string, copied, estimate int64, done bool) bool
	}{
		{"as soon as the snapshot shows", func(p string, c, _ int64, d bool) bool { return p == "snapshot" || p == "streaming" }},
		{"once rows were copied", func(p string, c, _ int64, d bool) bool { return (p == "snapshot" && c > 0) || p == "streaming" }},
		{"late in the copy", func(p string, c, e int64, d bool) bool {
			return (p == "snapshot" && e > 0 && c*10 >= e*6) || p == "streaming"
		}},
		{"early in streaming", func(p string, _, _ int64, d bool) bool { return p == "streaming" }},
	}
	for i, k := range kills {
		wp := fleet.start(fmt.Sprintf("w%d", i+1))
		var at string
		waitFor(t, 2*time.Minute, "worker "+wp.name+": "+k.name, func() bool {
			phase, copied, estimate, done := captureState(wp.cmd.Process.Pid)
			at = fmt.Sprintf("phase %s, %d of %d rows copied, snapshot complete %v", phase, copied, estimate, done)
			return k.ready(phase, copied, estimate, done)
		})
		if k.name == "early in streaming" {
			time.Sleep(time.Second)
		}
		wp.signal(syscall.SIGKILL)
		wp.waitExit(30 * time.Second)
		t.Logf("killed %s %s (%s)", wp.name, k.name, at)
		// Rows the killed snapshot may have published go away while no
		// capture runs.
		if _, err := srcConn.Exec(ctx, `DELETE FROM sales WHERE id IN (SELECT id FROM sales WHERE id % 97 = 0 ORDER BY id LIMIT 300);
			UPDATE sales SET amount = NULL WHERE id IN (SELECT id FROM sales WHERE id % 89 = 0 AND amount IS NOT NULL ORDER BY id LIMIT 100)`); err != nil {
			t.Fatal(err)
		}
	}
	fleet.start("last")
	s.deleteOnCleanup(proxied, env)
	waitFor(t, 2*time.Minute, "streaming after the last restart", func() bool {
		phase, _, _, done := captureState(0)
		return done && phase == "streaming"
	})
	time.Sleep(2 * time.Second)
	w.Stop()
	t.Logf("writer: %d changes", w.Ops.Load())

	want := postgresCanonical(t, srcConn, salesQuery)
	if got, ok := s.awaitResult(queryID, want, 2*time.Minute); !ok {
		t.Fatalf("the result is not PostgreSQL's:\nwant %d groups\ngot %s", len(want), got)
	}
	served, withProgress, early := watch.stop()
	if early != "" {
		t.Fatalf("served as caught up before the snapshot was complete: %s", early)
	}
	if withProgress == 0 {
		t.Fatalf("no answer of %d during the snapshots showed its progress", served)
	}
	topic := names.TopicPrefix(env) + ".public.sales"
	source := capturetest.SourceRows(t, srcConn, "sales")
	var diff string
	waitFor(t, time.Minute, "topic equals the source", func() bool {
		diff = capturetest.Diff(source, capturetest.TopicRows(t, s.records(topic)))
		return diff == ""
	})
	var slots int
	if err := srcConn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, names.SlotName(env)).Scan(&slots); err != nil || slots != 1 {
		t.Fatalf("%d slots (%v)", slots, err)
	}
	t.Logf("%d source rows, topic equal; %d result answers watched, %d with the snapshot's progress", len(source), served, withProgress)
}

// resultWatch polls a query's result and remembers an answer that said
// caughtUp while the capture's snapshot was incomplete (before and after
// the request).
type resultWatch struct {
	// stop returns how many answers were read, how many of them showed
	// the snapshot's progress, and the first early one.
	stop func() (answers, withProgress int, early string)
}

func watchResult(t *testing.T, s *system, queryID string, snapshotDone func() bool) *resultWatch {
	ctx, cancel := context.WithCancel(context.Background())
	var answers, progress atomic.Int64
	var early atomic.Value
	early.Store("")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			before := snapshotDone()
			res, err := http.Get(s.apiURL + "/cachedQueries/" + queryID + "/result")
			if err == nil {
				var body struct {
					CaughtUp  bool              `json:"caughtUp"`
					State     string            `json:"state"`
					Rows      []json.RawMessage `json:"rows"`
					Hydration *struct {
						SnapshotDone bool  `json:"snapshotDone"`
						RowsCaptured int64 `json:"rowsCaptured"`
						RowsEstimate int64 `json:"rowsEstimate"`
					} `json:"hydration"`
				}
				_ = json.NewDecoder(res.Body).Decode(&body)
				res.Body.Close()
				answers.Add(1)
				after := snapshotDone()
				if body.CaughtUp && !before && !after && early.Load() == "" {
					early.Store(fmt.Sprintf("state %s with %d rows", body.State, len(body.Rows)))
				}
				if h := body.Hydration; h != nil && !before && !after && !h.SnapshotDone && h.RowsCaptured > 0 && h.RowsEstimate > 0 {
					progress.Add(1)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	w := &resultWatch{}
	var once sync.Once
	w.stop = func() (int, int, string) {
		once.Do(func() { cancel(); wg.Wait() })
		return int(answers.Load()), int(progress.Load()), early.Load().(string)
	}
	t.Cleanup(func() { w.stop() })
	return w
}

// salesSource is a source database with the table sales of rows rows
// (salesSchema, salesQuery: cluster_bench_test.go), and a connection
// string that reaches it through a proxy passing rate bytes a second.
func salesSource(t *testing.T, rows, rate int) (src string, conn *pgx.Conn, proxied string) {
	t.Helper()
	src, conn = sourceDatabase(t)
	if _, err := conn.Exec(context.Background(), fmt.Sprintf(`CREATE TABLE sales (id int PRIMARY KEY, grp int NOT NULL, amount numeric(12,2));
		INSERT INTO sales SELECT g, g %% 100, CASE WHEN g %% 9 = 0 THEN NULL ELSE (g %% 1000) * 1.25 END FROM generate_series(1, %d) g;
		ANALYZE sales`, rows)); err != nil {
		t.Fatal(err)
	}
	proxy := startThrottledProxy(t, conn.PgConn().Conn().RemoteAddr().String(), rate)
	return src, conn, proxy.redirect(src)
}

// createSalesQuery creates salesQuery in environment env and returns its id.
func createSalesQuery(t *testing.T, s *system, src, env string) string {
	t.Helper()
	res := s.postJSON("/createCachedQuery", map[string]string{
		"connectionString": src, "environmentId": env, "schema": salesSchema, "sqlQuery": salesQuery})
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	return res.json(t)["id"].(string)
}

// captureStateOf reads an environment's embedded capture row as the
// worker running it last wrote it; phase is "" unless that worker is pid
// (0: any).
func captureStateOf(t testing.TB, s *system, env string) func(pid int) (phase string, copied, estimate int64, done bool) {
	t.Helper()
	ctx := context.Background()
	jobState, err := pgx.Connect(ctx, s.cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jobState.Close(context.Background()) })
	var mu sync.Mutex
	return func(pid int) (phase string, copied, estimate int64, done bool) {
		mu.Lock()
		defer mu.Unlock()
		var lsn *int64
		var c, e *int64
		var worker string
		err := jobState.QueryRow(ctx, `SELECT phase, worker, (snapshot->>'rowsCopied')::bigint, (snapshot->>'rowsEstimate')::bigint, snapshot_lsn
			FROM embedded_captures WHERE environment_id = $1`, env).Scan(&phase, &worker, &c, &e, &lsn)
		if err != nil {
			return "", 0, 0, false
		}
		if pid != 0 && !strings.HasSuffix(worker, fmt.Sprintf(":%d", pid)) {
			return "", 0, 0, lsn != nil
		}
		if c != nil {
			copied = *c
		}
		if e != nil {
			estimate = *e
		}
		return phase, copied, estimate, lsn != nil
	}
}

// A Flink query is served as caught up only once the capture's snapshot
// is complete and the job has read it: here the embedded capture copies
// 300,000 rows through a proxy passing 160 kB/s (about a minute), long
// enough for the Flink job to start and checkpoint (every 10 s) while it
// runs. Without the rule the result said LIVE with partial counts.
func TestClusterFlinkResultWaitsForTheSnapshot(t *testing.T) {
	s := startClusterSystem(t, clusterEngines{flink: true})
	_, srcConn, proxied := salesSource(t, 300_000, 160<<10)
	env := uniqueEnv("fhyd")
	s.deleteOnCleanup(proxied, env)
	queryID := createSalesQuery(t, s, proxied, env)
	captureState := captureStateOf(t, s, env)
	watch := watchResult(t, s, queryID, func() bool { _, _, _, done := captureState(0); return done })
	want := postgresCanonical(t, srcConn, salesQuery)
	if got, ok := s.awaitResult(queryID, want, 4*time.Minute); !ok {
		t.Fatalf("the result is not PostgreSQL's:\nwant %d groups\ngot %s\nstatus %s", len(want), got, s.queryStatus(queryID))
	}
	served, withProgress, early := watch.stop()
	if early != "" {
		t.Fatalf("served as caught up before the snapshot was complete: %s", early)
	}
	if withProgress == 0 {
		t.Fatalf("no answer of %d during the snapshot showed its progress", served)
	}
	t.Logf("%d result answers watched, %d with the snapshot's progress", served, withProgress)
}
