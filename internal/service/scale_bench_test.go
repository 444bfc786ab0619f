package service

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/pgtest"
)

// BenchmarkScaleEnvironments runs one worker with the embedded capture and
// engine (and the API and the in-process broker, in the same process) for
// CDCQ_BENCH_TENANTS environments (default 50, so that `make bench`, whose
// go test stops a package after 10 minutes, stays short: 200 take about 5
// minutes on 2 cores), each a database of its
// own with a small table and 3 cached queries, on a private Postgres
// server with room for that many replication slots and walsenders. It
// measures the process's memory and CPU with CDCQ_BENCH_TENANTS_BASE
// environments (default 20) LIVE, then with all of them, each over a
// steady window with a light write load (one insert per environment every
// 2s), and prints both and the slope: the cost of one more environment
// (and of one more query, a third of it). It asserts nothing.
//
//	CDCQ_BENCH_TENANTS=200 go test -run '^$' -bench ScaleEnvironments -benchtime 1x ./internal/service/
func BenchmarkScaleEnvironments(b *testing.B) {
	total := benchEnvInt("CDCQ_BENCH_TENANTS", 50)
	base := min(benchEnvInt("CDCQ_BENCH_TENANTS_BASE", 20), total)
	window := time.Duration(benchEnvInt("CDCQ_BENCH_WINDOW_SECONDS", 20)) * time.Second
	const queriesPerEnv = 3
	for range b.N {
		// Each capture holds a slot and a walsender; the status poller and
		// the capture's checks open short connections of their own.
		pg := pgtest.NewClusterWith(b, map[string]string{
			"max_replication_slots": strconv.Itoa(total + 10),
			"max_wal_senders":       strconv.Itoa(total + 10),
			// Per environment: the walsender, the capture's own
			// connection and the one it measures the lag on, the schema
			// watcher's, and the benchmark's writer.
			"max_connections": strconv.Itoa(5*total + 50),
		})
		broker, err := kafkabus.StartEmbedded("", 0)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(broker.Close)
		// The production round of the status poller.
		s := startSystemOn(b, config.Config{KafkaBrokers: broker.Brokers(), StatusInterval: 10 * time.Second},
			func(inf *Infra, cfg config.Config, logger *slog.Logger) []WorkerDeps {
				deps, err := Engines(cfg, inf, logger)
				if err != nil {
					b.Fatal(err)
				}
				return []WorkerDeps{deps}
			})
		admin, err := pgx.Connect(context.Background(), pg.URL())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { admin.Close(context.Background()) })

		var envs []*scaleEnv
		var points []scalePoint
		for _, upTo := range []int{base, total} {
			start := time.Now()
			for i := len(envs); i < upTo; i++ {
				envs = append(envs, newScaleEnv(b, s, admin, pg.URLFor, i))
			}
			created := time.Since(start)
			waitAllLive(b, s, envs, 15*time.Minute)
			b.Logf("%d environments, %d queries LIVE %s after the first create (creates took %s)", len(envs), len(envs)*queriesPerEnv, time.Since(start).Round(time.Second), created.Round(time.Second))
			points = append(points, measureSteady(b, envs, window))
			printConnections(b, pg.URL(), len(envs))
		}
		p0, p1 := points[0], points[len(points)-1]
		fmt.Printf("\nBenchmarkScaleEnvironments: one worker, embedded capture and engine, API and in-process broker in one process; %d queries per environment; steady window %s with one insert per environment every 2s\n", queriesPerEnv, window)
		fmt.Printf("%-24s %12s %12s %12s %12s %12s %10s\n", "", "envs", "HeapInuse", "Sys", "RSS", "goroutines", "CPU")
		for _, p := range points {
			fmt.Printf("%-24s %12d %10.1fMB %10.1fMB %10.1fMB %12d %9.1f%%\n", "LIVE", p.envs, mb(p.heapInuse), mb(p.sys), mb(p.rss), p.goroutines, 100*p.cpu)
		}
		if d := float64(p1.envs - p0.envs); d > 0 {
			perEnv := func(a, b uint64) float64 { return (float64(b) - float64(a)) / d / 1024 }
			fmt.Printf("%-24s %12s %10.0fkB %10.0fkB %10.0fkB %12.1f %9.2f%%\n", "per environment (slope)", "",
				perEnv(p0.heapInuse, p1.heapInuse), perEnv(p0.sys, p1.sys), perEnv(p0.rss, p1.rss),
				float64(p1.goroutines-p0.goroutines)/d, 100*(p1.cpu-p0.cpu)/d)
			fmt.Printf("%-24s %12s %10.0fkB %10.0fkB %10.0fkB %12.1f %9.2f%%\n", "per query (slope / 3)", "",
				perEnv(p0.heapInuse, p1.heapInuse)/queriesPerEnv, perEnv(p0.sys, p1.sys)/queriesPerEnv, perEnv(p0.rss, p1.rss)/queriesPerEnv,
				float64(p1.goroutines-p0.goroutines)/d/queriesPerEnv, 100*(p1.cpu-p0.cpu)/d/queriesPerEnv)
			b.ReportMetric(perEnv(p0.rss, p1.rss), "RSS-kB/env")
			b.ReportMetric(perEnv(p0.heapInuse, p1.heapInuse), "heap-kB/env")
			b.ReportMetric(100*(p1.cpu-p0.cpu)/d, "CPU-%/env")
		}
		b.ReportMetric(mb(p1.rss), "RSS-MB")
		b.ReportMetric(100*p1.cpu, "CPU-%")
	}
}

// printConnections prints the source server's sessions by kind: what
// each environment costs the server.
func printConnections(b *testing.B, url string, envs int) {
	admin, err := pgx.Connect(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(context.Background())
	rows, err := admin.Query(context.Background(), `
		SELECT backend_type, application_name, datname LIKE 'scale%' AS source, count(*)
		FROM pg_stat_activity GROUP BY 1, 2, 3 ORDER BY 4 DESC`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	fmt.Printf("source server sessions with %d environments:\n", envs)
	for rows.Next() {
		var kind, app string
		var source *bool
		var n int
		if err := rows.Scan(&kind, &app, &source, &n); err != nil {
			b.Fatal(err)
		}
		fmt.Printf("  %5d %s %q source database=%v\n", n, kind, app, source != nil && *source)
	}
}

func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func mb(n uint64) float64 { return float64(n) / (1 << 20) }

// scaleEnv is one environment of BenchmarkScaleEnvironments.
type scaleEnv struct {
	conn    *pgx.Conn
	queries []string
	next    int
}

func newScaleEnv(b *testing.B, s *system, admin *pgx.Conn, urlFor func(string) string, i int) *scaleEnv {
	b.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("scale%d", i)
	// FILE_COPY: the default (WAL_LOG) writes the whole template to the
	// WAL, which every capture's walsender then reads through.
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" STRATEGY FILE_COPY"); err != nil {
		b.Fatal(err)
	}
	plain := urlFor(name)
	conn, err := pgx.Connect(ctx, plain)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, `CREATE TABLE orders (id int PRIMARY KEY, region text NOT NULL, total numeric(10,2) NOT NULL);
		INSERT INTO orders SELECT g, 'r' || (g % 4), g FROM generate_series(1, 20) g`); err != nil {
		b.Fatal(err)
	}
	src := strings.Replace(plain, "postgres://cdcq@", "postgres://cdcq:"+knownPassword+"@", 1)
	env := uniqueEnv("scale")
	e := &scaleEnv{conn: conn, next: 21}
	for _, q := range []string{
		`SELECT region, count(*) AS n, sum(total) AS total FROM orders GROUP BY region`,
		`SELECT count(*) AS n FROM orders`,
		`SELECT max(id) AS last FROM orders`,
	} {
		for {
			res := s.postJSON("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": env, "schema": benchSchema, "sqlQuery": q})
			if res.status == http.StatusTooManyRequests {
				time.Sleep(time.Second) // the API's write rate limit
				continue
			}
			if res.status != http.StatusCreated {
				b.Fatalf("create query of %s: %d %s", env, res.status, res.body)
			}
			e.queries = append(e.queries, res.json(b)["id"].(string))
			break
		}
	}
	return e
}

// waitAllLive waits until every query of envs is LIVE.
func waitAllLive(b *testing.B, s *system, envs []*scaleEnv, timeout time.Duration) {
	b.Helper()
	live := map[string]bool{}
	var waiting []string
	for _, e := range envs {
		waiting = append(waiting, e.queries...)
	}
	deadline := time.Now().Add(timeout)
	var last string
	for len(live) < len(waiting) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d queries LIVE after %s; one not: %s", len(live), len(waiting), timeout, last)
		}
		for _, id := range waiting {
			if live[id] {
				continue
			}
			res, err := http.Get(s.apiURL + "/cachedQueries/" + id + "/result")
			if err != nil {
				continue
			}
			var body resultBody
			err = json.NewDecoder(res.Body).Decode(&body)
			res.Body.Close()
			if err == nil && body.State == "LIVE" && body.CaughtUp {
				live[id] = true
			} else {
				last = fmt.Sprintf("%s %+v", id, body)
			}
		}
		time.Sleep(time.Second)
	}
}

type scalePoint struct {
	envs                int
	heapInuse, sys, rss uint64
	goroutines          int
	cpu                 float64 // cores used over the window
}

// measureSteady writes one row per environment every 2s for window, and
// measures the CPU the process used meanwhile and its memory after.
func measureSteady(b *testing.B, envs []*scaleEnv, window time.Duration) scalePoint {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	cpu0, t0 := processCPU(b), time.Now()
	tick := time.NewTicker(2 * time.Second / time.Duration(len(envs)))
	defer tick.Stop()
	for i := 0; ctx.Err() == nil; i++ {
		e := envs[i%len(envs)]
		if _, err := e.conn.Exec(ctx, `INSERT INTO orders VALUES ($1, 'r0', 1)`, e.next); err != nil && ctx.Err() == nil {
			b.Fatal(err)
		}
		e.next++
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	cpu := (processCPU(b) - cpu0).Seconds() / time.Since(t0).Seconds()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return scalePoint{envs: len(envs), heapInuse: ms.HeapInuse, sys: ms.Sys, rss: processRSS(b), goroutines: runtime.NumGoroutine(), cpu: cpu}
}

// processCPU is the user and system CPU time the process used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processRSS is the process's resident set size (VmRSS of
// /proc/self/status), in bytes.
func processRSS(b *testing.B) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}
