package ivm

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/dbzjson"
	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

var (
	diffSeed = flag.Uint64("ivm.seed", 0, "seed of the differential test (0 picks one from the clock)")
	diffOps  = flag.Int("ivm.ops", 10000, "row changes the differential test makes")
)

// The tables of testdata/shop.prisma.
const shopDDL = `
CREATE TYPE mood AS ENUM ('happy', 'sad', 'meh');
CREATE TABLE customers (
	id integer PRIMARY KEY,
	name text NOT NULL,
	country varchar(2),
	vip boolean,
	score double precision,
	created_at timestamp(6) NOT NULL,
	seen_at timestamptz(3),
	token uuid,
	avatar bytea,
	mood mood,
	wake time(0)
);
CREATE TABLE orders (
	id bigint PRIMARY KEY,
	customer_id integer NOT NULL,
	status text NOT NULL,
	total numeric(12,2) NOT NULL,
	discount numeric(12,2),
	quantity integer,
	weight real,
	created_at timestamp(3) NOT NULL,
	note text
);
CREATE TABLE order_items (
	order_id bigint NOT NULL,
	line integer NOT NULL,
	product_id integer NOT NULL,
	qty integer NOT NULL,
	price numeric(12,2) NOT NULL,
	PRIMARY KEY (order_id, line)
);
CREATE TABLE products (
	id integer PRIMARY KEY,
	name text NOT NULL,
	category text,
	price numeric,
	code char(4),
	launched date,
	big bigint,
	small smallint
);`

// diffQueries are maintained by the engine and run on PostgreSQL at every
// checkpoint.
var diffQueries = []struct{ name, sql string }{
	{"orders_every_aggregate", `SELECT status, count(*) AS n, count(discount) AS n_discount,
		count(DISTINCT customer_id) AS customers, sum(total) AS total, avg(total) AS avg_total,
		min(total) AS min_total, max(total) AS max_total, sum(quantity) AS qty, avg(quantity) AS avg_qty,
		min(created_at) AS first, max(note) AS last_note, sum(weight) AS weight, avg(weight) AS avg_weight,
		sum(discount) AS discount, avg(discount) AS avg_discount
		FROM orders GROUP BY status`},
	{"orders_having", `SELECT customer_id, count(*) AS n, sum(total) AS total, max(quantity) AS max_q
		FROM orders GROUP BY customer_id HAVING count(*) >= 2 AND sum(total) > 400`},
	{"customers_null_heavy", `SELECT country, vip, count(*) AS n, count(score) AS scored, sum(score) AS score,
		avg(score) AS avg_score, min(score) AS min_score, max(score) AS max_score, max(name) AS max_name,
		min(created_at) AS first
		FROM customers GROUP BY country, vip`},
	{"join_two_tables", `SELECT c.country, count(*) AS n, sum(o.total) AS total, avg(o.quantity) AS avg_qty,
		max(o.created_at) AS last, min(c.score) AS min_score
		FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.status <> 'cancelled'
		GROUP BY c.country`},
	{"join_three_tables", `SELECT c.name, count(*) AS lines, sum(i.qty * i.price) AS revenue,
		count(DISTINCT i.product_id) AS products, min(i.price) AS cheapest, avg(i.qty) AS avg_qty
		FROM customers c JOIN orders o ON o.customer_id = c.id JOIN order_items i ON i.order_id = o.id
		WHERE i.qty > 0 GROUP BY c.name`},
	{"join_items_products_orders", `SELECT p.category, count(*) AS n, sum(i.qty) AS qty, avg(i.price) AS avg_price,
		sum(p.price * i.qty) AS value, count(DISTINCT o.customer_id) AS customers
		FROM order_items i JOIN products p ON p.id = i.product_id JOIN orders o ON o.id = i.order_id
		WHERE o.status IN ('paid', 'shipped') GROUP BY p.category`},
	{"orders_no_group_by", `SELECT count(*) AS n, count(DISTINCT customer_id) AS customers,
		count(DISTINCT status) AS statuses, sum(total) AS total, avg(discount) AS avg_discount,
		min(created_at) AS first, max(created_at) AS last, max(total) AS max_total
		FROM orders`},
	{"orders_case_arithmetic", `SELECT CASE WHEN total >= 300 THEN 'big' WHEN total >= 50 THEN 'medium' ELSE 'small' END AS size,
		count(*) AS n, sum(total * quantity) AS gross, sum(total - coalesce(discount, 0)) AS net,
		sum(quantity / 3) AS thirds, sum(quantity % 3) AS rest,
		sum(CASE WHEN status = 'paid' THEN 1 ELSE 0 END) AS paid,
		max(total / nullif(quantity, 0)) AS unit, avg(round(total / 3, 1)) AS avg_third,
		sum(CASE WHEN weight > 500 THEN weight * 2 END) AS heavy
		FROM orders WHERE quantity IS NULL OR quantity BETWEEN -1 AND 15 GROUP BY 1`},
	{"products_numeric_scales", `SELECT category, count(*) AS n, sum(price) AS price, avg(price) AS avg_price,
		min(price) AS min_price, max(price) AS max_price, min(code) AS min_code, max(launched) AS last_launch,
		count(DISTINCT price) AS prices, count(DISTINCT code) AS codes, sum(big) AS big, avg(big) AS avg_big,
		sum(small) AS small, avg(small) AS avg_small
		FROM products GROUP BY category`},
	{"orders_by_month", `SELECT date_trunc('month', created_at) AS month, extract(dow FROM created_at) AS dow,
		count(*) AS n, sum(total) AS total
		FROM orders WHERE created_at >= '2024-01-01' GROUP BY 1, 2`},
	{"customers_strings", `SELECT lower(substring(name from 1 for 1)) AS initial, count(*) AS n,
		max(length(name)) AS longest, min(name || '/' || coalesce(country, '??')) AS first
		FROM customers WHERE name LIKE '%a%' OR name ILIKE 'b%' GROUP BY 1`},
	{"customers_other_types", `SELECT mood, count(*) AS n, min(seen_at) AS first_seen, max(seen_at) AS last_seen,
		count(DISTINCT token) AS tokens, count(avatar) AS avatars, count(DISTINCT avatar) AS distinct_avatars,
		min(wake) AS earliest, max(wake) AS latest, max(length(avatar)) AS max_len, sum(CASE WHEN vip THEN 1 END) AS vips
		FROM customers GROUP BY mood`},
	{"customers_row_expressions", `SELECT id, seen_at AT TIME ZONE 'UTC' AS utc, seen_at AT TIME ZONE 'Europe/Paris' AS paris,
		created_at AT TIME ZONE 'America/New_York' AS ny, extract(epoch FROM seen_at) AS ep,
		date_trunc('day', seen_at AT TIME ZONE 'Asia/Tokyo') AS tokyo_day, token::text AS tt, wake < '12:00' AS morning,
		vip IS TRUE AS v, vip IS NOT FALSE AS nf, mood = 'happy' AS happy, mood::text AS mt, avatar = '\x00ff'::bytea AS av,
		extract(hour FROM wake) AS wh, seen_at > '2024-01-01 00:00:00+00' AS late, count(*) AS n
		FROM customers GROUP BY id`},
	{"customers_self_join", `SELECT a.country, count(*) AS pairs, sum(b.score) AS score, count(DISTINCT b.name) AS names
		FROM customers a JOIN customers b ON b.country = a.country WHERE b.id < a.id GROUP BY a.country`},
	{"products_code_groups", `SELECT code, count(*) AS n, sum(price) AS price FROM products GROUP BY code`},
	// Grouping by the primary key makes every row a group, so these check
	// row expressions on every row.
	{"products_row_expressions", `SELECT id, price * 2 AS dbl, price / 7 AS sev, round(price, 1) AS r1,
		round(price, -2) AS r2, ceil(price) AS ce, floor(price) AS fl, abs(small) AS a, small / 7 AS sd,
		small % 7 AS sm, -small AS neg, coalesce(category, 'none') || '-' || code AS cc, length(code) AS lc,
		upper(name) AS un, lower(name) AS ln, substring(name from 2 for 3) AS sub, code LIKE 'a%' AS la,
		name ILIKE '%A%' AS il, name LIKE '_a%' AS l2, CASE category WHEN 'a' THEN 1 WHEN 'b' THEN 2 END AS cat,
		nullif(category, 'c') AS nc, greatest(small, 0, big % 1000) AS g, least(price, 100) AS l,
		launched + 30 AS later, launched - DATE '2021-01-01' AS since, extract(year FROM launched) AS y,
		extract(doy FROM launched) AS doy, date_part('dow', launched) AS dow, price::integer AS pi,
		small::numeric(8,1) / 3 AS nd, big::float8 / 3 AS bf, big / 3 AS bd, big::numeric / 7 AS bn,
		(price > 100) IS NOT TRUE AS nt, small BETWEEN -100 AND 100 AS bw, small NOT BETWEEN 0 AND 20000 AS nbw,
		code IN ('ab', 'x') AS inl, category NOT IN ('a', NULL) AS nin, price::float8 AS pf, small::real / 3 AS sr,
		code = 'ab' AS ce2, (code || '|') AS cp, price % 3 AS pm, count(*) AS n
		FROM products GROUP BY id`},
	{"orders_row_expressions", `SELECT id, total * quantity AS tq, total / nullif(quantity, 0) AS per,
		quantity / 3 AS q3, weight * 2 AS w2, weight / 3 AS w3, weight::float8 / 3 AS wd, weight + 0.5 AS wh,
		round(weight) AS rw, created_at::date AS d, date_trunc('hour', created_at) AS h,
		extract(epoch FROM created_at) AS ep, extract(second FROM created_at) AS sec,
		date_part('milliseconds', created_at) AS ms, status || coalesce(note, '?') AS sn,
		discount IS NULL AS nd, total - discount AS td, total > 250 AND (quantity > 5 OR note IS NULL) AS logic,
		NOT (discount > 5) AS nd5, coalesce(quantity, -1) * 1.5 AS qf, created_at > '2024-06-01' AS recent,
		created_at::time AS tod, total::float8 * quantity AS tf, count(*) AS n
		FROM orders GROUP BY id`},
}

// dbzRecord is one record of a change topic.
type dbzRecord struct {
	table      string
	key, value []byte
}

type diffTable struct {
	name string
	rel  *dbzjson.Relation
	pk   []string
}

// TestDifferential makes thousands of random changes in random
// transactions on a real PostgreSQL server, feeds the Debezium records the
// capture would write for them to the engine, and compares the engine's
// result with the query's result on the server at checkpoints.
func TestDifferential(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	seed := *diffSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -ivm.seed=%d), %d changes", seed, seed, *diffOps)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	ctx := context.Background()
	conn := diffConnect(t, pgtestURL(t))
	if _, err := conn.Exec(ctx, shopDDL); err != nil {
		t.Fatal(err)
	}
	tables := map[string]*diffTable{}
	for _, name := range []string{"customers", "orders", "order_items", "products"} {
		rel := loadDiffRelation(t, conn, name)
		tb := &diffTable{name: name, rel: rel}
		for _, c := range rel.Columns {
			if c.Key {
				tb.pk = append(tb.pk, c.Name)
			}
		}
		tables[name] = tb
	}

	type maintained struct {
		name  string
		sql   string
		plan  *sqlplan.Plan
		q     *Query
		types []sqlplan.Type
	}
	var qs []*maintained
	for _, dq := range diffQueries {
		p := compilePlan(t, "shop.prisma", dq.sql)
		q, err := New(p)
		if err != nil {
			t.Fatalf("%s: %v", dq.name, err)
		}
		if _, err := q.Flush(); err != nil {
			t.Fatal(err)
		}
		m := &maintained{name: dq.name, sql: dq.sql, plan: p, q: q}
		for _, o := range p.Outputs {
			m.types = append(m.types, o.Type)
		}
		qs = append(qs, m)
	}

	feed := func(recs []dbzRecord) {
		t.Helper()
		for _, m := range qs {
			for _, r := range recs {
				if _, err := m.q.ApplyTopicRecord("public."+r.table, r.key, r.value); err != nil {
					t.Fatalf("%s: apply %s record %s: %v", m.name, r.table, r.value, err)
				}
			}
		}
	}
	check := func(when string) {
		t.Helper()
		for _, m := range qs {
			want := pgRows(t, conn, m.sql)
			got := make([][]string, 0, len(want))
			for _, r := range m.q.Rows() {
				line := make([]string, len(r.Row))
				for i, v := range r.Row {
					if v.IsNull() {
						line[i] = "\x00NULL"
					} else {
						line[i] = v.String()
					}
				}
				got = append(got, line)
			}
			if err := compareResults(got, want, m.types); err != nil {
				t.Fatalf("%s: %s: engine and PostgreSQL differ (seed %d): %v", when, m.name, seed, err)
			}
		}
	}

	check("on empty tables")
	gen := &rowGen{rng: rng}
	var history []dbzRecord
	ops, txs, checkpoints := 0, 0, 0
	stats := map[string]int{}
	for ops < *diffOps {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var recs []dbzRecord
		n := 1 + rng.IntN(6)
		for i := 0; i < n; i++ {
			tb := tables[pickTable(rng)]
			recs = append(recs, diffChange(t, tx, tb, gen, stats)...)
		}
		ops += n
		if rng.IntN(20) == 0 {
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			stats["rolled back transactions"]++
			continue
		}
		if rng.IntN(400) == 0 {
			// A truncate, as its own transaction's last statement.
			tb := tables["products"]
			if _, err := tx.Exec(ctx, "TRUNCATE products"); err != nil {
				t.Fatal(err)
			}
			v, err := dbzjson.TruncateEnvelope(dbzjson.Source{Name: "env", Schema: "public", Table: tb.name}, 1)
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, dbzRecord{table: tb.name, value: v})
			stats["truncates"]++
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		txs++
		feed(recs)
		history = append(history, recs...)
		if txs%60 == 0 {
			checkpoints++
			check(fmt.Sprintf("after %d transactions", txs))
			if rng.IntN(3) == 0 {
				// Replay the last records, as after a crash: duplicates,
				// in order.
				k := min(len(history), 20+rng.IntN(200))
				feed(history[len(history)-k:])
				stats["replays"]++
				check(fmt.Sprintf("after replaying %d records", k))
			}
		}
	}
	check("at the end")
	checkpoints++
	var keys []string
	for k := range stats {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, stats[k]))
	}
	t.Logf("%d changes in %d transactions, %d records, %d checkpoints; %s", ops, txs, len(history), checkpoints, strings.Join(parts, ", "))
	for _, m := range qs {
		t.Logf("%s: %d result rows, %d groups", m.name, len(m.q.Rows()), m.q.Groups())
	}
}

func pickTable(rng *rand.Rand) string {
	switch n := rng.IntN(100); {
	case n < 40:
		return "orders"
	case n < 65:
		return "order_items"
	case n < 85:
		return "customers"
	}
	return "products"
}

// rowGen makes random column values as SQL literals ("NULL" for NULL).
type rowGen struct{ rng *rand.Rand }

func (g *rowGen) maybe(pNull int, v string) string {
	if g.rng.IntN(100) < pNull {
		return "NULL"
	}
	return v
}

func (g *rowGen) pick(vals ...string) string { return vals[g.rng.IntN(len(vals))] }

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (g *rowGen) cents(maxCents int) string {
	c := g.rng.IntN(maxCents + 1)
	return fmt.Sprintf("%d.%02d", c/100, c%100)
}

func (g *rowGen) timestamp(year int) string {
	t := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(g.rng.Int64N(int64(730 * 24 * time.Hour))))
	t = t.Add(time.Duration(g.rng.IntN(1_000_000)) * time.Microsecond)
	return quote(t.Format("2006-01-02 15:04:05.999999"))
}

var names = []string{"Alice", "bob", "Carla", "dan", "Émile", "Bea", "Zoë", "adam", "Brandt", "carl",
	"Dana", "eve", "Frank", "gina", "Hans", "ivy", "Jack", "Anna", "Ben", "maria"}

// values returns a full random row of table (column -> literal), with key
// as its primary key.
func (g *rowGen) values(table string, key []string) map[string]string {
	v := map[string]string{}
	switch table {
	case "customers":
		v["id"] = key[0]
		v["name"] = quote(g.pick(names...))
		v["country"] = g.maybe(30, quote(g.pick("FR", "DE", "US", "JP")))
		v["vip"] = g.maybe(40, g.pick("true", "false"))
		v["score"] = g.maybe(40, strconv.FormatFloat(g.rng.NormFloat64()*100, 'g', -1, 64))
		v["created_at"] = g.timestamp(2023)
		v["seen_at"] = g.maybe(30, quote(strings.Trim(g.timestamp(2023), "'")+g.pick("+00", "+02", "-05:30")))
		v["token"] = g.maybe(30, quote(g.pick("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "00000000-0000-0000-0000-000000000001",
			"ffffffff-9c0b-4ef8-bb6d-6bb9bd380a11", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12")))
		v["avatar"] = g.maybe(40, g.pick(`'\x00ff'`, `'\x'`, `'\xdeadbeef'`, `'\x00'`))
		v["mood"] = g.maybe(25, quote(g.pick("happy", "sad", "meh")))
		v["wake"] = g.maybe(30, quote(fmt.Sprintf("%02d:%02d:%02d", g.rng.IntN(24), g.rng.IntN(60), g.rng.IntN(60))))
	case "orders":
		v["id"] = key[0]
		v["customer_id"] = strconv.Itoa(1 + g.rng.IntN(70))
		v["status"] = quote(g.pick("paid", "pending", "shipped", "cancelled"))
		v["total"] = g.cents(50000)
		v["discount"] = g.maybe(50, g.cents(2000))
		v["quantity"] = g.maybe(20, strconv.Itoa(g.rng.IntN(23)-2))
		v["weight"] = g.maybe(30, strconv.FormatFloat(float64(g.rng.Float32()*1000), 'g', -1, 32))
		v["created_at"] = g.timestamp(2023)
		v["note"] = g.maybe(50, quote(g.pick("rush", "gift", "call", "Late", "zzz", "")))
	case "order_items":
		v["order_id"], v["line"] = key[0], key[1]
		v["product_id"] = strconv.Itoa(1 + g.rng.IntN(30))
		v["qty"] = strconv.Itoa(g.rng.IntN(12) - 1)
		v["price"] = g.cents(9999)
	case "products":
		v["id"] = key[0]
		v["name"] = quote(g.pick(names...))
		v["category"] = g.maybe(20, quote(g.pick("a", "b", "c")))
		scale := g.rng.IntN(5)
		p := strconv.FormatFloat(float64(g.rng.IntN(200000)-20000)/math.Pow(10, float64(scale)), 'f', scale, 64)
		if scale > 0 && g.rng.IntN(4) == 0 {
			p += strings.Repeat("0", 1+g.rng.IntN(2)) // trailing zeros change the scale, not the value
		}
		v["price"] = g.maybe(15, p)
		v["code"] = g.maybe(20, quote(g.pick("ab", "ab ", "x", "zz", "Ab")))
		v["launched"] = g.maybe(30, quote(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, g.rng.IntN(2000)).Format("2006-01-02")))
		v["big"] = g.maybe(30, strconv.FormatInt(g.rng.Int64N(1<<62)-1<<61, 10))
		v["small"] = g.maybe(30, strconv.Itoa(g.rng.IntN(60000)-30000))
	}
	return v
}

func (g *rowGen) key(table string) []string {
	switch table {
	case "customers":
		return []string{strconv.Itoa(1 + g.rng.IntN(60))}
	case "orders":
		return []string{strconv.Itoa(1 + g.rng.IntN(300))}
	case "order_items":
		return []string{strconv.Itoa(1 + g.rng.IntN(300)), strconv.Itoa(1 + g.rng.IntN(4))}
	}
	return []string{strconv.Itoa(1 + g.rng.IntN(30))}
}

func keyWhere(tb *diffTable, key []string) string {
	var conds []string
	for i, c := range tb.pk {
		conds = append(conds, c+" = "+key[i])
	}
	return strings.Join(conds, " AND ")
}

// diffChange makes one random change to table tb and returns the records
// Debezium would write for it.
func diffChange(t *testing.T, tx pgx.Tx, tb *diffTable, g *rowGen, stats map[string]int) []dbzRecord {
	t.Helper()
	key := g.key(tb.name)
	old := selectRow(t, tx, fmt.Sprintf("SELECT * FROM %s WHERE %s FOR UPDATE", tb.name, keyWhere(tb, key)))
	enc := func(op dbzjson.Op, before, after []dbzjson.Value) dbzRecord {
		t.Helper()
		keyRow := after
		if keyRow == nil {
			keyRow = before
		}
		k, err := dbzjson.Key(tb.rel, keyRow)
		if err != nil {
			t.Fatal(err)
		}
		v, err := dbzjson.Envelope(tb.rel, op, before, after, dbzjson.Source{Name: "env", DB: "shop"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		return dbzRecord{table: tb.name, key: k, value: v}
	}
	keyOnlyImage := func(row []dbzjson.Value) []dbzjson.Value {
		out := make([]dbzjson.Value, len(row))
		for i, c := range tb.rel.Columns {
			if c.Key {
				out[i] = row[i]
			}
		}
		return out
	}
	deleteRecords := func(row []dbzjson.Value) []dbzRecord {
		before := row
		if g.rng.IntN(2) == 0 {
			before = keyOnlyImage(row) // REPLICA IDENTITY DEFAULT
			stats["deletes with key-only before"]++
		} else {
			stats["deletes with full before"]++
		}
		del := enc(dbzjson.OpDelete, before, nil)
		return []dbzRecord{del, {table: tb.name, key: del.key}} // and its tombstone
	}
	if old == nil {
		vals := g.values(tb.name, key)
		row := execReturning(t, tx, insertSQL(tb, vals))
		op := dbzjson.OpCreate
		if g.rng.IntN(10) == 0 {
			op = dbzjson.OpRead
		}
		stats["inserts"]++
		return []dbzRecord{enc(op, nil, row)}
	}
	switch n := g.rng.IntN(100); {
	case n < 30:
		row := execReturning(t, tx, fmt.Sprintf("DELETE FROM %s WHERE %s RETURNING *", tb.name, keyWhere(tb, key)))
		return deleteRecords(row)
	case n < 35 && tb.name != "order_items":
		// Move the row to a free key: Debezium writes a delete and a
		// create, or an update whose before image has the old key (all
		// columns with REPLICA IDENTITY FULL, the key alone otherwise).
		newKey := g.key(tb.name)
		if selectRow(t, tx, fmt.Sprintf("SELECT * FROM %s WHERE %s", tb.name, keyWhere(tb, newKey))) != nil {
			return nil
		}
		row := execReturning(t, tx, fmt.Sprintf("UPDATE %s SET %s = %s WHERE %s RETURNING *", tb.name, tb.pk[0], newKey[0], keyWhere(tb, key)))
		stats["key updates"]++
		switch g.rng.IntN(3) {
		case 0:
			return append(deleteRecords(old), enc(dbzjson.OpCreate, nil, row))
		case 1:
			return []dbzRecord{enc(dbzjson.OpUpdate, keyOnlyImage(old), row)} // the old key only
		}
		return []dbzRecord{enc(dbzjson.OpUpdate, old, row)}
	default:
		vals := g.values(tb.name, key)
		var sets []string
		for _, c := range tb.rel.Columns {
			if c.Key || g.rng.IntN(3) == 0 {
				continue // keep some columns, so that some updates change nothing a query reads
			}
			sets = append(sets, c.Name+" = "+vals[c.Name])
		}
		if len(sets) == 0 {
			sets = append(sets, tb.pk[0]+" = "+tb.pk[0])
		}
		row := execReturning(t, tx, fmt.Sprintf("UPDATE %s SET %s WHERE %s RETURNING *", tb.name, strings.Join(sets, ", "), keyWhere(tb, key)))
		if g.rng.IntN(2) == 0 {
			stats["updates without before"]++
			return []dbzRecord{enc(dbzjson.OpUpdate, nil, row)}
		}
		stats["updates with before"]++
		return []dbzRecord{enc(dbzjson.OpUpdate, old, row)}
	}
}

func insertSQL(tb *diffTable, vals map[string]string) string {
	var cols, lits []string
	for _, c := range tb.rel.Columns {
		cols = append(cols, c.Name)
		lits = append(lits, vals[c.Name])
	}
	return fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) RETURNING *", tb.name, strings.Join(cols, ", "), strings.Join(lits, ", "))
}

// execReturning runs a statement that returns one row, in text format.
func execReturning(t *testing.T, tx pgx.Tx, sql string) []dbzjson.Value {
	t.Helper()
	row := selectRow(t, tx, sql)
	if row == nil {
		t.Fatalf("%s: no row", sql)
	}
	return row
}

// selectRow returns the one row sql gives (text values, nil for NULL), or
// nil.
func selectRow(t *testing.T, tx pgx.Tx, sql string) []dbzjson.Value {
	t.Helper()
	rows, err := tx.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return nil
	}
	var out []dbzjson.Value
	for _, raw := range rows.RawValues() {
		if raw == nil {
			out = append(out, nil)
			continue
		}
		s := string(raw)
		out = append(out, &s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// pgRows runs a query and returns its rows as text ("\x00NULL" for NULL).
func pgRows(t *testing.T, conn *pgx.Conn, sql string) [][]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		var line []string
		for _, raw := range rows.RawValues() {
			if raw == nil {
				line = append(line, "\x00NULL")
			} else {
				line = append(line, string(raw))
			}
		}
		out = append(out, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// compareResults compares two results ignoring row order: every column
// exactly as text, except floats, which PostgreSQL sums in row order and
// the engine exactly (the tolerance is relative: 1e-9 for double, 1e-4 for
// real, whose sum PostgreSQL accumulates in single precision).
func compareResults(got, want [][]string, types []sqlplan.Type) error {
	exact := func(row []string) string {
		var parts []string
		for i, v := range row {
			if types[i].IsFloat() {
				continue
			}
			parts = append(parts, v)
		}
		return strings.Join(parts, " | ")
	}
	sortRows := func(rows [][]string) {
		slices.SortFunc(rows, func(a, b []string) int { return strings.Compare(exact(a), exact(b)) })
	}
	sortRows(got)
	sortRows(want)
	if len(got) != len(want) {
		return fmt.Errorf("%d rows, PostgreSQL has %d\nengine:\n%s\npostgres:\n%s", len(got), len(want), rowsDump(got), rowsDump(want))
	}
	for i := range got {
		if len(got[i]) != len(want[i]) {
			return fmt.Errorf("row widths differ: %q and %q", got[i], want[i])
		}
		for j := range got[i] {
			g, w := got[i][j], want[i][j]
			if g == w {
				continue
			}
			if types[j].IsFloat() && floatsClose(g, w, types[j].Kind == sqlplan.KindReal) {
				continue
			}
			return fmt.Errorf("row %d column %d: engine %q, PostgreSQL %q\nengine:\n%s\npostgres:\n%s", i, j+1, g, w, rowsDump(got), rowsDump(want))
		}
	}
	return nil
}

func floatsClose(a, b string, single bool) bool {
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	tol := 1e-9
	if single {
		tol = 1e-4
	}
	return math.Abs(x-y) <= tol*math.Max(1, math.Max(math.Abs(x), math.Abs(y)))
}

func rowsDump(rows [][]string) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString("  " + strings.ReplaceAll(strings.Join(r, " | "), "\x00", "") + "\n")
	}
	return b.String()
}

func pgtestURL(t *testing.T) string {
	t.Helper()
	return pgtest.NewDatabase(t)
}

// diffConnect opens a session with the settings of cdcq's capture engine:
// text output in the forms dbzjson reads.
func diffConnect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["DateStyle"] = "ISO"
	cfg.RuntimeParams["IntervalStyle"] = "postgres"
	cfg.RuntimeParams["TimeZone"] = "UTC"
	cfg.RuntimeParams["extra_float_digits"] = "3"
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// loadDiffRelation describes a table for dbzjson from the catalog.
func loadDiffRelation(t *testing.T, conn *pgx.Conn, table string) *dbzjson.Relation {
	t.Helper()
	rows, err := conn.Query(context.Background(), `
		SELECT a.attname, a.atttypid::int8, format_type(a.atttypid, a.atttypmod), a.atttypmod,
		       t.typtype, COALESCE(a.attnum = ANY(i.indkey), false)
		FROM pg_attribute a
		JOIN pg_type t ON t.oid = a.atttypid
		LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
		WHERE a.attrelid = '`+table+`'::regclass AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	rel := &dbzjson.Relation{Schema: "public", Table: table}
	for rows.Next() {
		var (
			c       dbzjson.Column
			oid     int64
			typtype string
		)
		if err := rows.Scan(&c.Name, &oid, &c.TypeName, &c.TypeMod, &typtype, &c.Key); err != nil {
			t.Fatal(err)
		}
		c.TypeOID, c.Kind = uint32(oid), typtype[0]
		rel.Columns = append(rel.Columns, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return rel
}
