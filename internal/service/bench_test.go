package service

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/config"
)

// The benchmarks of the embedded engine run the whole system (embedded
// capture, engine, API) on a private Postgres and the in-process broker,
// and report their figures with b.ReportMetric; they assert nothing. Run
// them with `make bench` or
//
//	go test -run '^$' -bench 'Serving|Freshness' -benchtime 1x ./internal/service/

const benchSchema = `datasource db {
  provider = "postgresql"
}

model Order {
  id     Int     @id
  region String
  total  Decimal @db.Decimal(10, 2)

  @@map("orders")
}
`

func startBenchSystem(b *testing.B) (*system, string, *benchSource) {
	b.Helper()
	s := startSystemWith(b, func(inf *Infra, cfg config.Config, logger *slog.Logger) []WorkerDeps {
		deps, err := Engines(cfg, inf, logger)
		if err != nil {
			b.Fatal(err)
		}
		return []WorkerDeps{deps}
	})
	src, conn := sourceDatabase(b)
	return s, src, &benchSource{conn: conn}
}

// BenchmarkFreshness measures how long a commit in the source takes to be
// visible in GET /cachedQueries/{id}/result, at a steady 2,000 commits/s.
func BenchmarkFreshness(b *testing.B) {
	s, src, source := startBenchSystem(b)
	source.exec(b, `CREATE TABLE orders (id int PRIMARY KEY, region text NOT NULL, total numeric(10,2) NOT NULL)`)
	source.exec(b, `SET synchronous_commit = on`)
	id := createQuery(b, s, src, uniqueEnv("fresh"), benchSchema, `SELECT max(id) AS last, count(*) AS n FROM orders`)
	waitCaughtUp(b, s, id, func(resultBody) bool { return true })

	const rate, seconds = 2000, 5
	committed := make([]time.Time, rate*seconds+1)
	var mu sync.Mutex
	var seenUpTo int
	var latencies []time.Duration
	done := make(chan struct{})
	go func() { // the reader: polls the result and attributes what it sees
		defer close(done)
		deadline := time.Now().Add(time.Duration(seconds+10) * time.Second)
		for time.Now().Before(deadline) {
			res, err := http.Get(s.apiURL + "/cachedQueries/" + id + "/result")
			if err != nil {
				continue
			}
			var body resultBody
			json.NewDecoder(res.Body).Decode(&body)
			res.Body.Close()
			now := time.Now()
			last := 0
			if len(body.Rows) == 1 {
				if v, ok := body.Rows[0]["last"].(float64); ok {
					last = int(v)
				}
			}
			mu.Lock()
			for i := seenUpTo + 1; i <= last && i < len(committed); i++ {
				latencies = append(latencies, now.Sub(committed[i]))
			}
			if last > seenUpTo {
				seenUpTo = last
			}
			finished := seenUpTo >= rate*seconds
			mu.Unlock()
			if finished {
				return
			}
		}
	}()
	start := time.Now()
	for i := 1; i <= rate*seconds; i++ {
		next := start.Add(time.Duration(i) * time.Second / rate)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		if _, err := source.conn.Exec(context.Background(), `INSERT INTO orders VALUES ($1, 'r', 1)`, i); err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		committed[i] = time.Now()
		mu.Unlock()
	}
	achieved := float64(rate*seconds) / time.Since(start).Seconds()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if seenUpTo < rate*seconds {
		b.Fatalf("only %d of %d commits became visible", seenUpTo, rate*seconds)
	}
	report(b, "freshness", latencies)
	b.ReportMetric(achieved, "commits/s")
}

type resultBody struct {
	CaughtUp      bool             `json:"caughtUp"`
	State         string           `json:"state"`
	EventsApplied int64            `json:"eventsApplied"`
	LastError     string           `json:"lastError"`
	Rows          []map[string]any `json:"rows"`
}

func sumN(body resultBody) int {
	n := 0
	for _, r := range body.Rows {
		if v, ok := r["n"].(float64); ok {
			n += int(v)
		}
	}
	return n
}

func createQuery(b *testing.B, s *system, src, env, schema, query string) string {
	b.Helper()
	res := s.postJSON("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": env, "schema": schema, "sqlQuery": query})
	if res.status != http.StatusCreated {
		b.Fatalf("create: %d %s", res.status, res.body)
	}
	return res.json(b)["id"].(string)
}

func waitCaughtUp(b *testing.B, s *system, id string, done func(resultBody) bool) {
	b.Helper()
	var last resultBody
	if !poll(5*time.Minute, func() bool {
		res, err := http.Get(s.apiURL + "/cachedQueries/" + id + "/result")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var body resultBody
		if json.NewDecoder(res.Body).Decode(&body) != nil {
			return false
		}
		last = body
		return body.CaughtUp && done(body)
	}) {
		b.Fatalf("the cached query did not catch up within 5 minutes: %+v", last)
	}
}

func sample(n int, fn func()) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		start := time.Now()
		fn()
		out[i] = time.Since(start)
	}
	return out
}

func pct(d []time.Duration, p int) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return float64(s[i].Microseconds()) / 1000
}

func report(b *testing.B, name string, d []time.Duration) {
	b.ReportMetric(pct(d, 50), name+"-p50-ms")
	b.ReportMetric(pct(d, 99), name+"-p99-ms")
}

type benchSource struct {
	conn *pgx.Conn
}

func (s *benchSource) exec(b *testing.B, sql string) {
	b.Helper()
	if _, err := s.conn.Exec(context.Background(), sql); err != nil {
		b.Fatalf("%s: %v", sql, err)
	}
}
