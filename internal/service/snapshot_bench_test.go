package service

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/kafkabus"
)

// BenchmarkSnapshotThroughput measures a cached query over a table of a
// million rows (1,000 groups) from POST /createCachedQuery, without an
// earlier createDatabaseConnection, to GET /cachedQueries/{id}/result
// answering caughtUp with every row counted, through the whole system (the
// API, a worker with the embedded capture and engine, the in-process
// broker, Postgres on this machine). It reports rows/s end to end and when
// each stage began or ended after the create (s-capture-lease,
// s-snapshot-start, s-query-start, s-snapshot-complete, s-query-caught-up:
// from the worker's log lines; the log line also shows what polling the
// job-state database and the result saw), and asserts nothing about time:
//
//	go test -run '^$' -bench SnapshotThroughput -benchtime 1x ./internal/service/
//
// CDCQ_BENCH_SNAPSHOT_ROWS changes the table's size; with
// CDCQ_BENCH_SNAPSHOT_CONNECTED=1, createDatabaseConnection is done first
// and the clock starts once the capture's snapshot is complete (the query
// then only reads the topic); with
// CDCQ_BENCH_SNAPSHOT_DEV=1 the broker keeps its log on disk, as `cdcq dev`'s
// does.
func BenchmarkSnapshotThroughput(b *testing.B) {
	rows := 1_000_000
	connected := os.Getenv("CDCQ_BENCH_SNAPSHOT_CONNECTED") != ""
	if v, err := strconv.Atoi(os.Getenv("CDCQ_BENCH_SNAPSHOT_ROWS")); err == nil && v > 0 {
		rows = v
	}
	for i := 0; i < b.N; i++ {
		s, src, source := startSnapshotBenchSystem(b)
		source.exec(b, `CREATE TABLE sales (id int PRIMARY KEY, grp int NOT NULL, amount numeric(12,2) NOT NULL)`)
		source.exec(b, fmt.Sprintf(`INSERT INTO sales SELECT g, g %% 1000, (g %% 10007) * 0.37 FROM generate_series(1, %d) g`, rows))
		source.exec(b, `ANALYZE sales`)
		var want int64
		if err := source.conn.QueryRow(context.Background(), `SELECT count(*) FROM sales`).Scan(&want); err != nil {
			b.Fatal(err)
		}
		env := uniqueEnv("snapbench")
		state := captureStateOf(b, s, env)
		captureState := func() (string, int64, int64, bool) { return state(0) }
		if connected {
			// The capture's snapshot is on the topic already: what is
			// measured is the engine reading it.
			res := s.postJSON("/createDatabaseConnection", map[string]string{"connectionString": src, "environmentId": env})
			if res.status != http.StatusCreated {
				b.Fatalf("createDatabaseConnection: %d %s", res.status, res.body)
			}
			snapStart := time.Now()
			waitFor(b, 5*time.Minute, "the capture's snapshot", func() bool { _, _, _, done := captureState(); return done })
			b.Logf("capture alone: snapshot of %d rows complete %v after createDatabaseConnection", want, time.Since(snapStart).Round(time.Millisecond))
		}
		b.ResetTimer()
		start := time.Now()
		id := createQuery(b, s, src, env, salesSchema, salesAggregates)
		created := time.Since(start)

		var firstCopied, snapshotDone, firstApplied, caughtUp time.Duration
		var last resultBody
		deadline := start.Add(5 * time.Minute)
		for time.Now().Before(deadline) {
			_, copied, _, done := captureState()
			now := time.Since(start)
			if copied > 0 && firstCopied == 0 {
				firstCopied = now
			}
			if done && snapshotDone == 0 {
				snapshotDone = now
			}
			body, applied := getResult(s, id)
			last = body
			if applied > 0 && firstApplied == 0 {
				firstApplied = time.Since(start)
			}
			if body.CaughtUp && int64(sumN(body)) == want {
				caughtUp = time.Since(start)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		b.StopTimer()
		if caughtUp == 0 {
			b.Fatalf("not caught up within 5 minutes: %+v", last)
		}
		if len(last.Rows) != 1000 {
			b.Fatalf("%d groups", len(last.Rows))
		}
		b.ReportMetric(float64(want)/caughtUp.Seconds(), "rows/s")
		b.ReportMetric(caughtUp.Seconds(), "s-total")
		b.ReportMetric(created.Seconds(), "s-create-answered")
		// The stages as the worker logged them.
		at := func(parts ...string) time.Duration { return logged(s.logs.String(), start, parts...) }
		stages := []struct {
			name string
			at   time.Duration
		}{
			{"capture-lease", at(`msg="leases: running"`, "namespace=capture")},
			{"snapshot-start", at("taking the initial snapshot")},
			{"query-start", at(`msg="cached query started"`)},
			{"snapshot-complete", at("embedded capture: snapshot complete")},
			{"query-caught-up", at(`msg="cached query caught up"`)},
		}
		line := fmt.Sprintf("%d rows: create answered %v", want, created.Round(time.Millisecond))
		for _, st := range stages {
			b.ReportMetric(st.at.Seconds(), "s-"+st.name)
			line += fmt.Sprintf(", %s %v", st.name, st.at.Round(time.Millisecond))
		}
		b.Logf("%s, result caught up %v (polled: first rows copied %v, first applied %v, snapshot done %v)",
			line, caughtUp.Round(time.Millisecond), firstCopied.Round(time.Millisecond), firstApplied.Round(time.Millisecond), snapshotDone.Round(time.Millisecond))
	}
}

// getResult reads a query's result and the rows it applied while hydrating.
func getResult(s *system, id string) (resultBody, int64) {
	res, err := http.Get(s.apiURL + "/cachedQueries/" + id + "/result")
	if err != nil {
		return resultBody{}, 0
	}
	defer res.Body.Close()
	var body struct {
		resultBody
		Hydration struct {
			RowsApplied int64 `json:"rowsApplied"`
		} `json:"hydration"`
	}
	if json.NewDecoder(res.Body).Decode(&body) != nil {
		return resultBody{}, 0
	}
	applied := body.Hydration.RowsApplied
	if applied == 0 {
		applied = body.EventsApplied
	}
	return body.resultBody, applied
}

// startSnapshotBenchSystem starts the system as startBenchSystem does, on a
// broker that keeps its log in a directory when CDCQ_BENCH_SNAPSHOT_DEV is
// set (as `cdcq dev` runs it).
func startSnapshotBenchSystem(b *testing.B) (*system, string, *benchSource) {
	b.Helper()
	if os.Getenv("CDCQ_BENCH_SNAPSHOT_DEV") == "" {
		return startBenchSystem(b)
	}
	broker, err := kafkabus.StartEmbedded(b.TempDir(), 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(broker.Close)
	s := startSystemOn(b, config.Config{KafkaBrokers: broker.Brokers()}, func(inf *Infra, cfg config.Config, logger *slog.Logger) []WorkerDeps {
		deps, err := Engines(cfg, inf, logger)
		if err != nil {
			b.Fatal(err)
		}
		return []WorkerDeps{deps}
	})
	src, conn := sourceDatabase(b)
	return s, src, &benchSource{conn: conn}
}

// logged is when, after start, the first log line holding every part was
// written (0: none).
func logged(logs string, start time.Time, parts ...string) time.Duration {
	for _, l := range strings.Split(logs, "\n") {
		ok := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				ok = false
				break
			}
		}
		if !ok || !strings.HasPrefix(l, "time=") {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(l, "time="), " ")
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || t.Before(start.Add(-time.Millisecond)) {
			continue
		}
		return t.Sub(start)
	}
	return 0
}
