package service

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/config"
)

const shopSchema = `datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

model Customer {
  id     Int     @id
  region String?
  orders Order[]

  @@map("customers")
}

model Order {
  id         Int      @id
  customerId Int      @map("customer_id")
  total      Decimal? @db.Decimal(10, 2)
  status     String?
  customer   Customer @relation(fields: [customerId], references: [id])

  @@map("orders")
}
`

// The queries the differential test keeps, each run on Postgres too.
var differentialQueries = []string{
	`SELECT status, count(*) AS n, count(total) AS priced, sum(total) AS revenue, avg(total) AS mean,
	        min(total) AS lo, max(total) AS hi, count(DISTINCT customer_id) AS buyers
	   FROM orders GROUP BY status`,
	`SELECT c.region, count(*) AS n, sum(o.total) AS revenue
	   FROM orders o JOIN customers c ON c.id = o.customer_id
	  GROUP BY c.region HAVING count(*) > 2`,
	`SELECT count(*) AS n, sum(total) AS revenue, max(total) AS hi FROM orders WHERE status IS NOT NULL`,
}

// From createCachedQuery to GET /cachedQueries/{id}/result on the embedded
// capture and engine: thousands of random changes in random transactions,
// a worker restart in the middle, and the results compared row for row
// with the same queries run on Postgres.
func TestEmbeddedQueriesMatchPostgres(t *testing.T) {
	runDifferential(t, false)
}

// The same with the source tables at REPLICA IDENTITY DEFAULT: updates
// carry no before-image and deletes only the key, so the engine must
// retract the rows it keeps by primary key.
func TestEmbeddedQueriesMatchPostgresWithoutBeforeImages(t *testing.T) {
	runDifferential(t, true)
}

func runDifferential(t *testing.T, defaultIdentity bool) {
	var stopFirst func()
	s := startSystemWith(t, func(inf *Infra, cfg config.Config, logger *slog.Logger) []WorkerDeps {
		return nil
	})
	stopFirst = s.startEmbeddedWorker()
	src, srcConn, w := shopSource(t, 7)
	ctx := context.Background()
	w.run(t, 30, 10) // some history before the queries exist

	env := uniqueEnv("diff")
	ids := s.createShopQueries(t, src, env)
	if defaultIdentity {
		// The capture set REPLICA IDENTITY FULL when it started; take it
		// back, as on a database where cdcq may not alter the tables.
		waitFor(t, 30*time.Second, "the capture's replica identity", func() bool {
			var full int
			srcConn.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE relname IN ('orders', 'customers') AND relreplident = 'f'`).Scan(&full)
			return full == 2
		})
		// One table per transaction: the capture's snapshot may still be
		// reading both tables in one transaction, and altering both in one
		// would deadlock with it.
		for _, table := range []string{"orders", "customers"} {
			if _, err := srcConn.Exec(ctx, `ALTER TABLE `+table+` REPLICA IDENTITY DEFAULT`); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.run(t, 120, 10)
	s.compareWithPostgres(t, srcConn, ids)
	if defaultIdentity {
		var full int
		srcConn.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE relname IN ('orders', 'customers') AND relreplident = 'f'`).Scan(&full)
		if full != 0 {
			t.Fatalf("%d tables are back at REPLICA IDENTITY FULL; the test did not run without before-images", full)
		}
	}

	// A restart in the middle of the workload: the engine rebuilds from
	// the topics and says so until it has caught up.
	stopFirst()
	w.run(t, 60, 10)
	s.startEmbeddedWorker()
	w.run(t, 60, 10)
	s.compareWithPostgres(t, srcConn, ids)
	t.Logf("%d changes in %d transactions", w.changes, w.txs)
}

// startEmbeddedWorker starts a worker with the embedded engines and returns
// what stops it.
func (s *system) startEmbeddedWorker() func() {
	return s.startEmbeddedWorkers(1)
}

// startEmbeddedWorkers starts one more worker and waits until the consumer
// groups have members in all.
func (s *system) startEmbeddedWorkers(members int) func() {
	s.t.Helper()
	deps, err := Engines(s.cfg, s.inf, s.logger)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := RunWorker(ctx, s.inf, deps, s.cfg.StatusInterval, s.logger); err != nil && ctx.Err() == nil {
			s.t.Errorf("worker: %v", err)
		}
	}()
	stop := func() {
		cancel()
		<-done
	}
	s.t.Cleanup(stop)
	s.waitForGroupMembers(s.inf.Names.WorkerGroup, members)
	s.waitForGroupMembers(s.inf.Names.ProjectorGroup, members)
	return stop
}

// workload applies random inserts, updates and deletes in random
// transactions.
// shopSource is a source database with the shop tables (customers,
// orders) and a random workload over them, seeded from the clock (logged)
// and stream.
func shopSource(t *testing.T, stream uint64) (string, *pgx.Conn, *workload) {
	t.Helper()
	src, srcConn := sourceDatabase(t)
	if _, err := srcConn.Exec(context.Background(), `
		CREATE TABLE customers (id int PRIMARY KEY, region text);
		CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, total numeric(10,2), status text)`); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return src, srcConn, &workload{rng: rand.New(rand.NewPCG(seed, stream)), conn: srcConn}
}

type workload struct {
	rng  *rand.Rand
	conn *pgx.Conn
	// base is where this workload's order ids start: concurrent
	// workloads on one source each keep to ids of their own.
	base         int
	nextOrder    int
	changes, txs int
}

func (w *workload) run(t *testing.T, txs, maxPerTx int) {
	t.Helper()
	regions := []any{"eu", "us", "ap", nil}
	statuses := []any{"new", "paid", "shipped", nil}
	w.changes += randomTransactions(t, w.conn, w.rng, txs, maxPerTx, func() (string, []any) {
		switch k := w.rng.IntN(10); {
		case k < 2:
			return `INSERT INTO customers VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET region = EXCLUDED.region`,
				[]any{w.rng.IntN(40), regions[w.rng.IntN(len(regions))]}
		case k < 6:
			w.nextOrder++
			var total any
			if w.rng.IntN(8) > 0 {
				total = fmt.Sprintf("%d.%02d", w.rng.IntN(500), w.rng.IntN(100))
			}
			return `INSERT INTO orders VALUES ($1, $2, $3::numeric, $4)`,
				[]any{w.nextOrder, w.rng.IntN(40), total, statuses[w.rng.IntN(len(statuses))]}
		case k < 8:
			return `UPDATE orders SET total = total + 1.25, status = $2 WHERE id = $1`,
				[]any{w.base + 1 + w.rng.IntN(w.nextOrder-w.base+1), statuses[w.rng.IntN(len(statuses))]}
		case k < 9:
			return `DELETE FROM orders WHERE id = $1`, []any{w.base + 1 + w.rng.IntN(w.nextOrder-w.base+1)}
		default:
			return `DELETE FROM customers WHERE id = $1`, []any{w.rng.IntN(40)}
		}
	})
	w.txs += txs
}

// randomTransactions runs txs transactions of one to maxPerTx statements
// each, which next picks, and returns how many statements ran.
func randomTransactions(t *testing.T, conn *pgx.Conn, rng *rand.Rand, txs, maxPerTx int, next func() (string, []any)) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	for range txs {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for range 1 + rng.IntN(maxPerTx) {
			sql, args := next()
			if _, err := tx.Exec(ctx, sql, args...); err != nil {
				t.Fatalf("%s %v: %v", sql, args, err)
			}
			n++
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// compareWithPostgres waits until every query's result, read through the
// API, equals the query's result on Postgres.
func (s *system) compareWithPostgres(t *testing.T, src *pgx.Conn, ids []string) {
	t.Helper()
	for i, id := range ids {
		want := postgresRows(t, src, differentialQueries[i], numbersAsWritten)
		var got []string
		var last string
		ok := poll(60*time.Second, func() bool {
			req, _ := http.NewRequest(http.MethodGet, s.apiURL+"/cachedQueries/"+id+"/result", nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			defer res.Body.Close()
			var body struct {
				CaughtUp bool              `json:"caughtUp"`
				Rows     []json.RawMessage `json:"rows"`
			}
			dec := json.NewDecoder(res.Body)
			if err := dec.Decode(&body); err != nil || !body.CaughtUp {
				last = fmt.Sprintf("status %d, caught up %v", res.StatusCode, body.CaughtUp)
				return false
			}
			got = canonicalRows(t, body.Rows, dropQueryID|numbersAsWritten)
			last = strings.Join(got, "\n")
			return slices.Equal(got, want)
		})
		if !ok {
			t.Fatalf("query %d (%s) did not reach Postgres's result within 60s\nwant:\n%s\nlast seen:\n%s", i, id, strings.Join(want, "\n"), last)
		}
		if len(want) == 0 {
			t.Fatalf("query %d has no rows on Postgres; the comparison proves nothing", i)
		}
		t.Logf("query %d: %d rows equal, e.g. %s", i, len(want), want[0])
	}
}

// With several workers, a query runs in one of them and moves to another
// when that worker stops: stopping the first and then the second worker
// forces at least one move, and the result stays equal to Postgres's.
func TestEmbeddedQueryMovesWhenItsWorkerStops(t *testing.T) {
	s := startSystemWith(t, func(*Infra, config.Config, *slog.Logger) []WorkerDeps { return nil })
	stop1 := s.startEmbeddedWorkers(1)
	stop2 := s.startEmbeddedWorkers(2)
	src, srcConn, w := shopSource(t, 9)
	res := s.postJSON("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": uniqueEnv("move"), "schema": shopSchema, "sqlQuery": differentialQueries[0]})
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	ids := []string{res.json(t)["id"].(string)}
	w.run(t, 50, 10)
	s.compareWithPostgres(t, srcConn, ids)
	stop1()
	w.run(t, 50, 10)
	s.compareWithPostgres(t, srcConn, ids)
	s.startEmbeddedWorkers(2)
	stop2()
	w.run(t, 50, 10)
	s.compareWithPostgres(t, srcConn, ids)
}

// A cached query deleted and created again at once, on a source where
// nothing changes, is run again from its sources: its result comes back
// whole (the worker running it had not noticed the delete before the
// create cleared it).
func TestEmbeddedQueryDeletedAndCreatedAgain(t *testing.T) {
	s := startSystemWith(t, func(*Infra, config.Config, *slog.Logger) []WorkerDeps { return nil })
	s.startEmbeddedWorkers(1)
	src, srcConn := sourceDatabase(t)
	ctx := context.Background()
	if _, err := srcConn.Exec(ctx, `CREATE TABLE sales (id int PRIMARY KEY, grp int NOT NULL, amount numeric(12,2));
		INSERT INTO sales SELECT g, g % 20, CASE WHEN g % 7 = 0 THEN NULL ELSE g * 0.25 END FROM generate_series(1, 2000) g`); err != nil {
		t.Fatal(err)
	}
	env := uniqueEnv("again")
	create := func() string {
		res := s.postJSON("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": env, "schema": salesSchema, "sqlQuery": salesQuery})
		if res.status != http.StatusCreated {
			t.Fatalf("create: %d %s", res.status, res.body)
		}
		return res.json(t)["id"].(string)
	}
	id := create()
	want := postgresCanonical(t, srcConn, salesQuery)
	if got, ok := s.awaitResult(id, want, time.Minute); !ok {
		t.Fatalf("first result: %s", got)
	}
	for round := range 3 {
		req, err := http.NewRequest(http.MethodDelete, s.apiURL+"/cachedQueries/"+id, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusAccepted {
			t.Fatalf("delete: %d", res.StatusCode)
		}
		// Created again as soon as the delete is carried out.
		waitFor(t, 30*time.Second, "query deleted", func() bool {
			return strings.Contains(s.queryStatus(id), `"status":"DELETED"`)
		})
		if again := create(); again != id {
			t.Fatalf("created again as %s, not %s", again, id)
		}
		if got, ok := s.awaitResult(id, want, time.Minute); !ok {
			t.Fatalf("round %d: the result did not come back whole: %s\nstatus %s", round, got, s.queryStatus(id))
		}
	}
}
