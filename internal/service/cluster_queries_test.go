package service

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The real cluster's suite: Kafka, Kafka Connect with Debezium and Flink
// with its SQL Gateway, started on this machine by clustertest (the same
// launcher as `make cluster-up`).

const storeSchema = `datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

model Customer {
  id        Int      @id
  region    String?
  name      String
  createdAt DateTime @map("created_at") @db.Timestamptz(6)
  orders    Order[]

  @@map("customers")
}

model Product {
  id       Int     @id
  category String?
  price    Decimal @db.Decimal(10, 2)
  orders   Order[]

  @@map("products")
}

model Order {
  id         Int      @id
  customerId Int      @map("customer_id")
  productId  Int?     @map("product_id")
  total      Decimal? @db.Decimal(10, 2)
  status     String?
  qty        Int
  placedAt   DateTime @map("placed_at") @db.Timestamp(3)
  customer   Customer @relation(fields: [customerId], references: [id])
  product    Product? @relation(fields: [productId], references: [id])

  @@map("orders")
}
`

const storeTables = `
CREATE TABLE customers (id int PRIMARY KEY, region text, name text NOT NULL, created_at timestamptz(6) NOT NULL);
CREATE TABLE products (id int PRIMARY KEY, category text, price numeric(10,2) NOT NULL);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, product_id int, total numeric(10,2),
  status text, qty int NOT NULL, placed_at timestamp(3) NOT NULL)`

// clusterQuery is a cached query and the same query for PostgreSQL (they
// differ only where the cached query uses Prisma's names).
type clusterQuery struct{ sql, postgres string }

// clusterQueries cover every construct the compiler accepts: COUNT, SUM,
// AVG, MIN, MAX, COUNT DISTINCT, WHERE, HAVING, two- and three-table joins,
// nullable group keys, Prisma names, numeric, timestamp and text types.
var clusterQueries = []clusterQuery{
	{sql: `SELECT status, count(*) AS n, count(total) AS priced, sum(total) AS revenue, avg(total) AS mean,
	        min(total) AS lo, max(total) AS hi, count(DISTINCT customer_id) AS buyers FROM orders GROUP BY status`},
	{sql: `SELECT c.region, count(*) AS n, sum(o.total) AS revenue
	   FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.region HAVING count(*) > 2`},
	{sql: `SELECT count(*) AS n, sum(total) AS revenue, max(total) AS hi FROM orders WHERE status IS NOT NULL`},
	{sql: `SELECT c.region, p.category, count(*) AS n, sum(o.qty) AS units
	   FROM orders o JOIN customers c ON c.id = o.customer_id JOIN products p ON p.id = o.product_id
	  GROUP BY c.region, p.category`},
	{sql: `SELECT "customerId", count(*) AS n, sum(qty) AS units FROM "Order" GROUP BY "customerId"`,
		// The output is named after the database column a Prisma name
		// resolves to.
		postgres: `SELECT customer_id, count(*) AS n, sum(qty) AS units FROM orders GROUP BY customer_id`},
	{sql: `SELECT date_trunc('day', placed_at) AS day, count(*) AS n, sum(total) AS revenue FROM orders GROUP BY 1`},
	{sql: `SELECT status, min(placed_at) AS first, max(placed_at) AS last FROM orders GROUP BY status`},
	{sql: `SELECT region, min(name) AS first_name, max(name) AS last_name, count(*) AS n FROM customers GROUP BY region`},
	{sql: `SELECT count(*) AS n FROM customers WHERE name LIKE 'a%'`},
	{sql: `SELECT customer_id, sum(total) AS spent FROM orders GROUP BY customer_id HAVING sum(total) > 300`},
	{sql: `SELECT c.region, count(DISTINCT o.status) AS statuses FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.region`},
	{sql: `SELECT CASE WHEN total >= 250 THEN 'big' ELSE 'small' END AS size, count(*) AS n FROM orders GROUP BY 1`},
	{sql: `SELECT status, avg(qty) AS mean_qty, sum(qty) AS units FROM orders GROUP BY status`},
	{sql: `SELECT status, sum(total * qty) AS gross FROM orders WHERE total IS NOT NULL GROUP BY status`},
	{sql: `SELECT p.category, avg(p.price) AS mean_price, count(*) AS n FROM orders o JOIN products p ON p.id = o.product_id GROUP BY p.category`},
	{sql: `SELECT count(*) AS n, sum(total) AS revenue FROM orders WHERE total > 1000000`},
	{sql: `SELECT coalesce(status, 'none') AS state, count(*) AS n FROM orders GROUP BY 1`},
	{sql: `SELECT region, max(created_at) AS newest FROM customers GROUP BY region`},
}

func (q clusterQuery) postgresSQL() string {
	if q.postgres != "" {
		return q.postgres
	}
	return q.sql
}

// storeWorkload applies random inserts, updates and deletes to the three
// tables in random transactions.
type storeWorkload struct {
	rng          *rand.Rand
	conn         *pgx.Conn
	nextOrder    int
	changes, txs int
}

func (w *storeWorkload) run(t *testing.T, txs, maxPerTx int) {
	t.Helper()
	regions := []any{"eu", "us", "ap", nil}
	statuses := []any{"new", "paid", "shipped", nil}
	categories := []any{"books", "games", nil}
	names := []string{"alice", "bob", "anna", "carl", "ada", "zoe"}
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	w.changes += randomTransactions(t, w.conn, w.rng, txs, maxPerTx, func() (string, []any) {
		switch k := w.rng.IntN(12); {
		case k < 2:
			return `INSERT INTO customers VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET region = EXCLUDED.region, name = EXCLUDED.name`,
				[]any{w.rng.IntN(30), regions[w.rng.IntN(len(regions))], names[w.rng.IntN(len(names))],
					base.Add(time.Duration(w.rng.IntN(1e6)) * time.Second).Add(time.Duration(w.rng.IntN(1e6)) * time.Microsecond)}
		case k < 3:
			return `INSERT INTO products VALUES ($1, $2, $3::numeric) ON CONFLICT (id) DO UPDATE SET category = EXCLUDED.category, price = EXCLUDED.price`,
				[]any{w.rng.IntN(10), categories[w.rng.IntN(len(categories))], fmt.Sprintf("%d.%02d", 1+w.rng.IntN(99), w.rng.IntN(100))}
		case k < 7:
			w.nextOrder++
			var total, product any
			if w.rng.IntN(8) > 0 {
				total = fmt.Sprintf("%d.%02d", w.rng.IntN(500), w.rng.IntN(100))
			}
			if w.rng.IntN(6) > 0 {
				product = w.rng.IntN(10)
			}
			return `INSERT INTO orders VALUES ($1, $2, $3, $4::numeric, $5, $6, $7)`,
				[]any{w.nextOrder, w.rng.IntN(30), product, total, statuses[w.rng.IntN(len(statuses))], 1 + w.rng.IntN(9),
					base.Add(time.Duration(w.rng.IntN(20*24*3600)) * time.Second).Add(time.Duration(w.rng.IntN(1000)) * time.Millisecond)}
		case k < 9:
			return `UPDATE orders SET total = total + 1.25, status = $2, qty = qty + 1 WHERE id = $1`,
				[]any{1 + w.rng.IntN(w.nextOrder+1), statuses[w.rng.IntN(len(statuses))]}
		case k < 10:
			return `UPDATE orders SET customer_id = $2 WHERE id = $1`, []any{1 + w.rng.IntN(w.nextOrder+1), w.rng.IntN(30)}
		case k < 11:
			return `DELETE FROM orders WHERE id = $1`, []any{1 + w.rng.IntN(w.nextOrder+1)}
		default:
			return `DELETE FROM customers WHERE id = $1`, []any{w.rng.IntN(30)}
		}
	})
	w.txs += txs
}

// clusterDeployment is one system of the differential test and the queries
// it keeps.
type clusterDeployment struct {
	name string
	use  clusterEngines
	s    *system
	env  string
	ids  []string
}

// Every cached query, on Flink fed by real Debezium, on Flink fed by the
// embedded capture, and on the embedded engine fed by real Debezium, equals
// PostgreSQL's answer row for row: after the initial snapshot and after a
// random workload of inserts, updates and deletes in random transactions.
// All three read the same source database, so they also equal each other.
func TestClusterQueriesMatchPostgres(t *testing.T) {
	runClusterDifferential(t, clusterQueries, []*clusterDeployment{
		{name: "debezium_flink", use: clusterEngines{debezium: true, flink: true}},
		{name: "embedded_flink", use: clusterEngines{flink: true}},
		{name: "debezium_embedded", use: clusterEngines{debezium: true}},
	})
}

func runClusterDifferential(t *testing.T, queries []clusterQuery, deployments []*clusterDeployment) {
	src, srcConn := sourceDatabase(t)
	ctx := context.Background()
	if _, err := srcConn.Exec(ctx, storeTables); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	w := &storeWorkload{rng: rand.New(rand.NewPCG(seed, 11)), conn: srcConn}
	w.run(t, 60, 10) // history the snapshot reads

	for _, d := range deployments {
		d.s = startClusterSystem(t, d.use)
		d.env = uniqueEnv("c" + d.name[:2])
		for _, q := range queries {
			res := d.s.postJSON("/createCachedQuery", map[string]string{
				"connectionString": src, "environmentId": d.env, "schema": storeSchema, "sqlQuery": q.sql})
			if res.status != http.StatusCreated {
				t.Fatalf("%s: create %s: %d %s", d.name, q.sql, res.status, res.body)
			}
			d.ids = append(d.ids, res.json(t)["id"].(string))
		}
		d.s.deleteOnCleanup(src, d.env)
	}
	compareDeployments(t, srcConn, queries, deployments, "after the snapshot")
	w.run(t, 200, 10)
	compareDeployments(t, srcConn, queries, deployments, "after the workload")
	t.Logf("%d changes in %d transactions", w.changes, w.txs)
}

// compareDeployments waits until every query of every deployment equals
// PostgreSQL's answer.
func compareDeployments(t *testing.T, src *pgx.Conn, queries []clusterQuery, deployments []*clusterDeployment, when string) {
	t.Helper()
	wants := make([][]string, len(queries))
	for j, q := range queries {
		wants[j] = postgresCanonical(t, src, q.postgresSQL())
	}
	var wg sync.WaitGroup
	errs := make([]string, len(deployments))
	for i, d := range deployments {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j, id := range d.ids {
				want := wants[j]
				got, ok := d.s.awaitResult(id, want, 3*time.Minute)
				if !ok {
					errs[i] += fmt.Sprintf("\n%s, query %d (%s) %s: not PostgreSQL's answer within 3 min\nwant:\n%s\nlast seen:\n%s\nstatus: %s",
						d.name, j, id, when, strings.Join(want, "\n"), got, d.s.queryStatus(id))
					return
				}
			}
		}()
	}
	wg.Wait()
	if msg := strings.Join(errs, ""); msg != "" {
		t.Fatal(msg)
	}
	t.Logf("%s: %d queries × %d deployments equal PostgreSQL's answers", when, len(deployments[0].ids), len(deployments))
}

// awaitResult polls GET /cachedQueries/{id}/result until its rows, caught
// up, equal want; it returns what it saw last.
func (s *system) awaitResult(id string, want []string, timeout time.Duration) (string, bool) {
	var last string
	ok := poll(timeout, func() bool {
		res, err := http.Get(s.apiURL + "/cachedQueries/" + id + "/result")
		if err != nil {
			last = err.Error()
			return false
		}
		defer res.Body.Close()
		var body struct {
			CaughtUp bool              `json:"caughtUp"`
			State    string            `json:"state"`
			Rows     []json.RawMessage `json:"rows"`
		}
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			last = fmt.Sprintf("status %d: %v", res.StatusCode, err)
			return false
		}
		got := canonicalRows(s.t, body.Rows, dropQueryID)
		last = fmt.Sprintf("(%d, caught up %v, %s)\n%s", res.StatusCode, body.CaughtUp, body.State, strings.Join(got, "\n"))
		return body.CaughtUp && slices.Equal(got, want)
	})
	return last, ok
}

// queryStatus is GET /cachedQueries/{id}, for failure messages.
func (s *system) queryStatus(id string) string {
	res, err := http.Get(s.apiURL + "/cachedQueries/" + id)
	if err != nil {
		return err.Error()
	}
	defer res.Body.Close()
	var b strings.Builder
	_, _ = fmt.Fprint(&b, res.StatusCode, " ")
	buf := make([]byte, 4096)
	n, _ := res.Body.Read(buf)
	b.Write(buf[:n])
	return b.String()
}

// postgresCanonical runs a query on PostgreSQL and renders its rows as
// canonicalRows does with numbers and timestamps by value.
func postgresCanonical(t testing.TB, src *pgx.Conn, query string) []string {
	return postgresRows(t, src, query, 0)
}

// postgresRows runs a query on PostgreSQL and renders its rows like
// canonicalRows.
func postgresRows(t testing.TB, src *pgx.Conn, query string, how canonicalOption) []string {
	t.Helper()
	rows, err := src.Query(context.Background(), "SELECT to_jsonb(q)::text FROM ("+query+") q")
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]json.RawMessage, len(texts))
	for i, s := range texts {
		raw[i] = json.RawMessage(s)
	}
	return canonicalRows(t, raw, how&^dropQueryID)
}

// canonicalOption says how canonicalRows renders rows.
type canonicalOption int

const (
	// dropQueryID drops the result records' query_id.
	dropQueryID canonicalOption = 1 << iota
	// numbersAsWritten keeps numbers and timestamps as written (12.50 is
	// not 12.5), for engines that must write PostgreSQL's text; without
	// it numbers compare by value and timestamps in UTC, since Flink
	// writes numeric at its sink type's scale and timestamptz with a Z.
	numbersAsWritten
)

// canonicalRows renders rows with sorted keys, and sorts them.
func canonicalRows(t testing.TB, rows []json.RawMessage, how canonicalOption) []string {
	t.Helper()
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		dec := json.NewDecoder(strings.NewReader(string(r)))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("row %s: %v", r, err)
		}
		if how&dropQueryID != 0 {
			delete(m, "query_id")
		}
		if how&numbersAsWritten == 0 {
			for k, v := range m {
				m[k] = canonicalValue(v)
			}
		}
		b, _ := json.Marshal(m)
		out = append(out, string(b))
	}
	slices.Sort(out)
	return out
}

var timestampLayouts = []string{"2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999"}

func canonicalValue(v any) any {
	switch v := v.(type) {
	case json.Number:
		r, ok := new(big.Rat).SetString(string(v))
		if !ok {
			return string(v)
		}
		return "n:" + r.RatString()
	case string:
		for _, layout := range timestampLayouts {
			if ts, err := time.Parse(layout, v); err == nil {
				return "t:" + ts.UTC().Format(time.RFC3339Nano)
			}
		}
	}
	return v
}
