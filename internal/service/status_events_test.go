package service

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/kafkabus"
)

// busySource creates a table in a new source database, captures it in
// env, and inserts into it until the test ends; it returns the source's
// connection string and a counter of the rows inserted.
func busySource(t testing.TB, s *system, env string) (src string, conn *pgx.Conn, inserted *atomic.Int64) {
	t.Helper()
	src, conn = sourceDatabase(t)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(10,2))`); err != nil {
		t.Fatal(err)
	}
	if res := s.postForm("/createDatabaseConnection", map[string]string{"connectionString": src, "environmentId": env}); res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	s.waitForStatus(src, env, "snapshot done", func(m map[string]any) bool {
		snap, _ := m["snapshot"].(map[string]any)
		return m["status"] == "RUNNING" && snap["done"] == true
	})
	// The writer has a connection of its own: the test's is for DDL.
	writer, err := pgx.Connect(ctx, conn.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	inserted = &atomic.Int64{}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer writer.Close(context.Background())
		for i := int64(1); wctx.Err() == nil; i++ {
			if _, err := writer.Exec(wctx, `INSERT INTO orders VALUES ($1, 1)`, i); err != nil {
				return
			}
			inserted.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return src, conn, inserted
}

// statusRows counts env's ConnectionObserved rows in job_events.
func statusRows(t testing.TB, s *system, env string) int {
	t.Helper()
	var n int
	if err := s.inf.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM job_events WHERE environment_id = $1 AND name = 'ConnectionObserved'`, env).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// observedAt is when the projection last took an observation of env.
func observedAt(t testing.TB, s *system, env string) time.Time {
	t.Helper()
	var at time.Time
	if err := s.inf.Pool.QueryRow(context.Background(),
		`SELECT observed_at FROM connections WHERE environment_id = $1`, env).Scan(&at); err != nil {
		t.Fatal(err)
	}
	return at
}

// TestBusySourceAddsNoStatusEventsUntilItsStateChanges: a capture whose
// source is written all the time changes its lag and retained WAL every
// round; the status poller (rounds of 200ms, lag sampled every minute)
// keeps checkJobStatus's figures current but adds no job event, until
// the capture's state changes (a column added: a schema change).
func TestBusySourceAddsNoStatusEventsUntilItsStateChanges(t *testing.T) {
	s := startEmbeddedSystem(t)
	env := uniqueEnv("busy")
	src, conn, inserted := busySource(t, s, env)
	waitFor(t, 30*time.Second, "rows streamed", func() bool { return inserted.Load() > 100 })
	// Let the observations of the start settle (snapshot done, streaming).
	time.Sleep(2 * time.Second)
	before, seenBefore, insertedBefore := statusRows(t, s, env), observedAt(t, s, env), inserted.Load()
	time.Sleep(3 * time.Second) // 15 rounds
	after, seenAfter := statusRows(t, s, env), observedAt(t, s, env)
	if inserted.Load() <= insertedBefore {
		t.Fatal("the source was not busy")
	}
	if after != before {
		t.Errorf("%d status events while only the figures moved, want none", after-before)
	}
	if !seenAfter.After(seenBefore) {
		t.Errorf("the projection took no observation in 15 rounds of a busy source (observed at %v, then %v): checkJobStatus shows stale figures", seenBefore, seenAfter)
	}

	if _, err := conn.Exec(context.Background(), `ALTER TABLE orders ADD COLUMN note text`); err != nil {
		t.Fatal(err)
	}
	s.waitForStatus(src, env, "the schema change", func(m map[string]any) bool {
		changes, _ := m["schemaChanges"].([]any)
		return len(changes) == 1
	})
	waitFor(t, 10*time.Second, "the schema change's status event", func() bool { return statusRows(t, s, env) > after })
	time.Sleep(2 * time.Second)
	if got := statusRows(t, s, env) - after; got != 1 {
		t.Errorf("%d status events for one change of state, want 1", got)
	}
}

// BenchmarkStatusEventsPerHour runs the status poller at its default
// round (10s) against one busy source (inserts every 2ms) for
// CDCQ_BENCH_STATUS_SECONDS (default 60, to keep `make bench` short; the
// sampled events, at most one a minute, need 180 or more to show) and
// reports the job_events rows
// it wrote, extrapolated to an hour, with every observation recorded
// (before CDCQ_LAG_SAMPLE_INTERVAL) and with the default 1m sampling.
func BenchmarkStatusEventsPerHour(b *testing.B) {
	seconds := 60
	if v, err := strconv.Atoi(os.Getenv("CDCQ_BENCH_STATUS_SECONDS")); err == nil && v > 0 {
		seconds = v
	}
	for _, c := range []struct {
		name   string
		sample time.Duration
	}{{"every-observation", -1}, {"lag-sampled-1m", time.Minute}} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				broker, err := kafkabus.StartEmbedded("", 0)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(broker.Close)
				s := startSystemOn(b, config.Config{KafkaBrokers: broker.Brokers(), StatusInterval: 10 * time.Second},
					func(inf *Infra, cfg config.Config, logger *slog.Logger) []WorkerDeps {
						cfg.LagSampleInterval = c.sample
						deps, err := Engines(cfg, inf, logger)
						if err != nil {
							b.Fatal(err)
						}
						return []WorkerDeps{deps}
					})
				env := uniqueEnv("evh")
				busySource(b, s, env)
				start, t0 := statusRows(b, s, env), time.Now()
				time.Sleep(time.Duration(seconds) * time.Second)
				n := statusRows(b, s, env) - start
				perHour := float64(n) / time.Since(t0).Hours()
				b.ReportMetric(perHour, "rows/env/hour")
				fmt.Printf("status events, %s: %d rows in %ds, %.0f rows per environment per hour\n", c.name, n, seconds, perHour)
			}
		})
	}
}
