package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/kafkabus"
)

// freshnessSchema and freshnessQuery are a cached query over the table
// freshnessTable makes.
const (
	freshnessTable  = `CREATE TABLE orders (id int PRIMARY KEY, total numeric(10,2))`
	freshnessSchema = `datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

model Order {
  id    Int      @id
  total Decimal? @db.Decimal(10, 2)

  @@map("orders")
}
`
	freshnessQuery = `SELECT count(*) AS n, sum(total) AS revenue FROM orders`
)

// startSystemEvery starts the API and one worker with the embedded engines
// on an in-process broker, its status poller running a round every
// interval.
func startSystemEvery(tb testing.TB, interval time.Duration) *system {
	tb.Helper()
	broker, err := kafkabus.StartEmbedded("", 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(broker.Close)
	return startSystemOn(tb, config.Config{KafkaBrokers: broker.Brokers(), StatusInterval: interval},
		func(inf *Infra, cfg config.Config, logger *slog.Logger) []WorkerDeps {
			deps, err := Engines(cfg, inf, logger)
			if err != nil {
				tb.Fatal(err)
			}
			return []WorkerDeps{deps}
		})
}

// getJSON GETs path from the API; ok is false unless it answers 200.
func (s *system) getJSON(path string) (m map[string]any, ok bool) {
	res, err := http.Get(s.apiURL + path)
	if err != nil {
		return nil, false
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || json.Unmarshal(b, &m) != nil {
		return nil, false
	}
	return m, true
}

// statusLags creates env's connection to src (which has freshnessTable),
// then a cached query, and measures how long after the embedded engines
// reached a state the API showed it: from the capture's phase becoming
// streaming (recorded in the job-state database, after its snapshot) to
// checkJobStatus saying RUNNING with the snapshot done; and from the
// query's result becoming LIVE (GET /cachedQueries/{id}'s progress, read
// from the engine's own table) to the same answer's job state (the
// projection) saying LIVE. Both are sampled every 10ms; each must happen
// within within.
func (s *system) statusLags(tb testing.TB, src, env string, within time.Duration) (capture, query time.Duration) {
	tb.Helper()
	ctx := context.Background()
	body := map[string]string{"connectionString": src, "environmentId": env}
	if res := s.postForm("/createDatabaseConnection", body); res.status != http.StatusCreated {
		tb.Fatalf("create connection: %d %s", res.status, res.body)
	}
	capture = sampleLag(tb, within, "the capture streaming, and checkJobStatus showing it",
		func() bool {
			var phase string
			err := s.inf.Pool.QueryRow(ctx, `SELECT phase FROM embedded_captures WHERE environment_id = $1`, env).Scan(&phase)
			return err == nil && phase == "streaming"
		},
		func() bool {
			res := s.postJSON("/checkJobStatus", body)
			if res.status != http.StatusOK {
				return false
			}
			var m struct {
				Status   string `json:"status"`
				Snapshot *struct {
					Done bool `json:"done"`
				} `json:"snapshot"`
			}
			return json.Unmarshal([]byte(res.body), &m) == nil && m.Status == "RUNNING" && m.Snapshot != nil && m.Snapshot.Done
		})

	res := s.postJSON("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": env,
		"schema": freshnessSchema, "sqlQuery": freshnessQuery})
	if res.status != http.StatusCreated {
		tb.Fatalf("create query: %d %s", res.status, res.body)
	}
	id := res.json(tb)["id"].(string)
	var last map[string]any
	live := func(get func(m map[string]any) any) func() bool {
		return func() bool {
			m, ok := s.getJSON("/cachedQueries/" + id)
			if ok {
				last = m
			}
			return ok && get(m) == "LIVE"
		}
	}
	query = sampleLag(tb, within, "the query's result LIVE, and its job state showing it",
		live(func(m map[string]any) any {
			p, _ := m["progress"].(map[string]any)
			return p["state"]
		}),
		live(func(m map[string]any) any { return m["jobState"] }))
	if last["status"] != "RUNNING" {
		tb.Errorf("a LIVE query's status is %v", last["status"])
	}
	return capture, query
}

// sampleLag samples engine and shown every 10ms until both held once, and
// returns how long after engine first held shown first did (0 when shown
// held first).
func sampleLag(tb testing.TB, within time.Duration, what string, engine, shown func() bool) time.Duration {
	tb.Helper()
	var engineAt, shownAt time.Time
	deadline := time.Now().Add(within)
	for engineAt.IsZero() || shownAt.IsZero() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %s (engine reached it: %t, shown: %t)", what, within, !engineAt.IsZero(), !shownAt.IsZero())
		}
		if engineAt.IsZero() && engine() {
			engineAt = time.Now()
		}
		if shownAt.IsZero() && shown() {
			shownAt = time.Now()
			if engineAt.IsZero() {
				engineAt = shownAt
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return max(shownAt.Sub(engineAt), 0)
}

// How long after the embedded capture starts streaming checkJobStatus says
// so, and how long after a cached query's result goes LIVE its job state
// does, with the status poller's production period (10s, or
// CDCQ_BENCH_STATUS_INTERVAL), over CDCQ_BENCH_STATUS_ROUNDS environments
// (default 5) created one after the other on one source database:
//
//	go test -run '^$' -bench StatusFreshness -benchtime 1x ./internal/service/
func BenchmarkStatusFreshness(b *testing.B) {
	interval := 10 * time.Second
	if v := os.Getenv("CDCQ_BENCH_STATUS_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		interval = d
	}
	rounds := 5
	if v := os.Getenv("CDCQ_BENCH_STATUS_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		rounds = n
	}
	s := startSystemEvery(b, interval)
	src, srcConn := sourceDatabase(b)
	if _, err := srcConn.Exec(context.Background(), freshnessTable+`;
		INSERT INTO orders SELECT i, i % 100 FROM generate_series(1, 1000) i`); err != nil {
		b.Fatal(err)
	}
	var captures, queries []time.Duration
	for range b.N {
		for range rounds {
			// Created one after the other, the environments would reach
			// their states in step with the rounds: start at a random
			// point of one.
			time.Sleep(rand.N(interval))
			c, q := s.statusLags(b, src, uniqueEnv("fresh"), 3*interval+30*time.Second)
			captures, queries = append(captures, c), append(queries, q)
		}
	}
	report := func(what, unit string, ds []time.Duration) {
		slices.Sort(ds)
		p50 := ds[len(ds)/2]
		fmt.Printf("status poller every %s: %s: p50 %s, max %s over %d (all: %v)\n",
			interval, what, p50.Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond), len(ds), roundAll(ds))
		b.ReportMetric(float64(p50.Milliseconds()), unit)
	}
	report("capture streaming to checkJobStatus", "capture-p50-ms", captures)
	report("result LIVE to jobState LIVE", "query-p50-ms", queries)
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
