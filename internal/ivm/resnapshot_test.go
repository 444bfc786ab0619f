package ivm

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/dbzjson"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

// topicWriter writes the records of one table as the captures do.
type topicWriter struct {
	t     testing.TB
	rel   *dbzjson.Relation
	table string
	// full: updates and deletes carry the whole before image (REPLICA
	// IDENTITY FULL); otherwise updates carry none and deletes the key.
	full bool
}

func (w topicWriter) record(op dbzjson.Op, before, after []dbzjson.Value, src dbzjson.Source) dbzRecord {
	w.t.Helper()
	keyRow := after
	if keyRow == nil {
		keyRow = before
	}
	key, err := dbzjson.Key(w.rel, keyRow)
	if err != nil {
		w.t.Fatal(err)
	}
	enc := dbzjson.NewEncoder(w.rel)
	if op == dbzjson.OpRead {
		enc = dbzjson.NewSnapshotEncoder(w.rel)
	}
	v, err := enc.Envelope(op, before, after, src, 1)
	if err != nil {
		w.t.Fatal(err)
	}
	return dbzRecord{table: w.table, key: key, value: v}
}

func (w topicWriter) keyOnly(row []dbzjson.Value) []dbzjson.Value {
	out := make([]dbzjson.Value, len(row))
	for i, c := range w.rel.Columns {
		if c.Key {
			out[i] = row[i]
		}
	}
	return out
}

// read is a record of the snapshot at lsn taken in transaction tx (tx 0:
// lsn/100, as the tests number them).
func (w topicWriter) read(row []dbzjson.Value, marker string, lsn, tx int64) dbzRecord {
	w.t.Helper()
	if tx == 0 {
		tx = lsn / 100
	}
	return w.record(dbzjson.OpRead, nil, row, dbzjson.Source{Name: "env", DB: "shop", Snapshot: marker, LSN: lsn, TxID: tx})
}

func (w topicWriter) streamed(lsn int64) dbzjson.Source {
	return dbzjson.Source{Name: "env", DB: "shop", Snapshot: "false", LSN: lsn, TxID: lsn / 10}
}

func (w topicWriter) create(row []dbzjson.Value, lsn int64) []dbzRecord {
	w.t.Helper()
	return []dbzRecord{w.record(dbzjson.OpCreate, nil, row, w.streamed(lsn))}
}

func (w topicWriter) update(before, after []dbzjson.Value, lsn int64) []dbzRecord {
	w.t.Helper()
	if !w.full {
		before = nil
	}
	return []dbzRecord{w.record(dbzjson.OpUpdate, before, after, w.streamed(lsn))}
}

func (w topicWriter) delete(before []dbzjson.Value, lsn int64) []dbzRecord {
	w.t.Helper()
	if !w.full {
		before = w.keyOnly(before)
	}
	d := w.record(dbzjson.OpDelete, before, nil, w.streamed(lsn))
	return []dbzRecord{d, {table: w.table, key: d.key}}
}

func (w topicWriter) truncate(lsn int64) []dbzRecord {
	w.t.Helper()
	src := w.streamed(lsn)
	src.Schema, src.Table = "public", w.table
	v, err := dbzjson.TruncateEnvelope(src, 1)
	if err != nil {
		w.t.Fatal(err)
	}
	return []dbzRecord{{table: w.table, value: v}}
}

// snapshot returns a table's snapshot records with Debezium's markers, the
// first cut of them when cut >= 0 (a snapshot killed there).
func (w topicWriter) snapshot(rows [][]dbzjson.Value, lsn int64, firstTable, lastTable bool, cut int) []dbzRecord {
	return w.snapshotIn(rows, lsn, 0, firstTable, lastTable, cut)
}

// snapshotIn is snapshot with the snapshot's transaction.
func (w topicWriter) snapshotIn(rows [][]dbzjson.Value, lsn, tx int64, firstTable, lastTable bool, cut int) []dbzRecord {
	w.t.Helper()
	var out []dbzRecord
	for i, r := range rows {
		if cut >= 0 && i >= cut {
			break
		}
		out = append(out, w.read(r, dbzjson.SnapshotMarker(firstTable, lastTable, i == 0, i == len(rows)-1), lsn, tx))
	}
	return out
}

// sale is a row of benchSales: id, region and amount (other columns
// NULL).
func sale(id int, region, amount string) []dbzjson.Value {
	row := make([]dbzjson.Value, len(benchSales.Columns))
	row[0] = ptr(strconv.Itoa(id))
	if region != "" {
		row[1] = ptr(region)
	}
	if amount != "" {
		row[5] = ptr(amount)
	}
	return row
}

func saleOfShop(id, shop int) []dbzjson.Value {
	row := sale(id, "", "1.00")
	row[3] = ptr(strconv.Itoa(shop))
	return row
}

func shop(id int, region string) []dbzjson.Value {
	return []dbzjson.Value{ptr(strconv.Itoa(id)), ptr(region), nil}
}

func feedRecords(t *testing.T, q *Query, recs []dbzRecord) {
	t.Helper()
	for _, r := range recs {
		if _, err := q.ApplyTopicRecord("public."+r.table, r.key, r.value); err != nil {
			t.Fatalf("apply %s record %s: %v", r.table, r.value, err)
		}
	}
}

func cat(parts ...[]dbzRecord) []dbzRecord { return slices.Concat(parts...) }

// A capture restarted in the middle of its snapshot snapshots again from a
// later position: rows the first snapshot published and the second does
// not have were deleted meanwhile, and no delete of them is on the topic
// (Debezium streams from the second snapshot's position). The engine
// retracts them when the table's new snapshot ends, with REPLICA IDENTITY
// FULL and DEFAULT records around it, and a rebuild from the whole topic
// gives the same result.
func TestResnapshotRetractsRowsTheNewSnapshotLacks(t *testing.T) {
	const sql = "SELECT region, count(*) AS n, sum(amount) AS total FROM sales GROUP BY region"
	for _, full := range []bool{false, true} {
		sales := topicWriter{t: t, rel: benchSales, table: "sales", full: full}
		r1, r2, r3 := sale(1, "eu", "1.00"), sale(2, "eu", "2.00"), sale(3, "us", "3.00")
		r3b, r4, r5 := sale(3, "us", "5.00"), sale(4, "us", "4.00"), sale(5, "eu", "0.50")
		type stage struct {
			recs []dbzRecord
			want []string // the result after recs
		}
		cases := []struct {
			name   string
			stages []stage
		}{{
			// The normal case: one snapshot, then streaming.
			name: "one_snapshot",
			stages: []stage{
				{sales.snapshot([][]dbzjson.Value{r1, r2, r3}, 100, true, true, -1), []string{"eu | 2 | 3.00", "us | 1 | 3.00"}},
				{cat(sales.delete(r2, 110), sales.update(r3, r3b, 120)), []string{"eu | 1 | 1.00", "us | 1 | 5.00"}},
			},
		}, {
			// Killed after three rows; meanwhile 2 is deleted, 3 updated,
			// 4 inserted; the second snapshot ends with its "last" record.
			name: "killed_then_complete",
			stages: []stage{
				{sales.snapshot([][]dbzjson.Value{r1, r2, r3, r4}, 100, true, true, 3), []string{"eu | 2 | 3.00", "us | 1 | 3.00"}},
				{sales.snapshot([][]dbzjson.Value{r1, r3b, r4}, 200, true, true, -1), []string{"eu | 1 | 1.00", "us | 2 | 9.00"}},
				{sales.create(r5, 210), []string{"eu | 2 | 1.50", "us | 2 | 9.00"}},
			},
		}, {
			// The table's snapshot ends without an end marker (a one-row
			// first table is marked "first" only): its end shows with the
			// first streamed change.
			name: "ended_by_streaming",
			stages: []stage{
				{sales.snapshot([][]dbzjson.Value{r1, r2, r3}, 100, true, false, 2), []string{"eu | 2 | 3.00"}},
				{[]dbzRecord{sales.read(r1, "first", 200, 0)}, []string{"eu | 2 | 3.00"}},
				{sales.create(r5, 210), []string{"eu | 2 | 1.50"}},
			},
		}, {
			// Killed twice: the third snapshot is the truth.
			name: "killed_twice",
			stages: []stage{
				{sales.snapshot([][]dbzjson.Value{r1, r2, r3}, 100, true, true, 2), []string{"eu | 2 | 3.00"}},
				{sales.snapshot([][]dbzjson.Value{r1, r3b, r4}, 200, true, true, 2), []string{"eu | 2 | 3.00", "us | 1 | 5.00"}},
				{sales.snapshot([][]dbzjson.Value{r3b, r4}, 300, true, true, -1), []string{"us | 2 | 9.00"}},
			},
		}, {
			// A complete snapshot, streaming, then a snapshot again (the
			// connector lost its offsets): deletes made while it was down
			// were never streamed.
			name: "snapshot_again_after_streaming",
			stages: []stage{
				{sales.snapshot([][]dbzjson.Value{r1, r2, r3}, 100, true, true, -1), []string{"eu | 2 | 3.00", "us | 1 | 3.00"}},
				{cat(sales.create(r4, 110), sales.update(r3, r3b, 120)), []string{"eu | 2 | 3.00", "us | 2 | 9.00"}},
				{sales.snapshot([][]dbzjson.Value{r2, r4}, 300, true, true, -1), []string{"eu | 1 | 2.00", "us | 1 | 4.00"}},
				{cat(sales.update(r4, sale(4, "eu", "4.00"), 310), sales.delete(r2, 320)), []string{"eu | 1 | 4.00"}},
			},
		}, {
			// Records of the snapshot that ended, replayed (a capture
			// re-sends what it had not confirmed), and a snapshot record
			// with a lower lsn: no new snapshot, nothing retracted.
			name: "replays",
			stages: []stage{
				{sales.snapshot([][]dbzjson.Value{r1, r2, r3}, 100, true, true, 2), []string{"eu | 2 | 3.00"}},
				{sales.snapshot([][]dbzjson.Value{r1, r3b, r4}, 200, true, true, -1), []string{"eu | 1 | 1.00", "us | 2 | 9.00"}},
				{sales.create(r5, 210), []string{"eu | 2 | 1.50", "us | 2 | 9.00"}},
				{cat(sales.snapshot([][]dbzjson.Value{r1, r3b, r4}, 200, true, true, -1)[1:], sales.create(r5, 210)), []string{"eu | 2 | 1.50", "us | 2 | 9.00"}},
				{[]dbzRecord{sales.read(r3, "last", 150, 0)}, []string{"eu | 2 | 1.50", "us | 2 | 7.00"}},
			},
		}, {
			// Debezium reads the WAL write position, which asynchronous
			// commits may leave where it was: a snapshot at the same lsn
			// in another transaction is a new snapshot.
			name: "same_lsn_other_transaction",
			stages: []stage{
				{sales.snapshotIn([][]dbzjson.Value{r1, r2, r3}, 100, 1, true, true, 2), []string{"eu | 2 | 3.00"}},
				{sales.snapshotIn([][]dbzjson.Value{r1, r3b}, 100, 2, true, true, -1), []string{"eu | 1 | 1.00", "us | 1 | 5.00"}},
			},
		}, {
			// A truncate while the new snapshot's end is awaited.
			name: "truncate_ends_it",
			stages: []stage{
				{sales.snapshot([][]dbzjson.Value{r1, r2, r3}, 100, true, true, 2), []string{"eu | 2 | 3.00"}},
				{[]dbzRecord{sales.read(r3b, "first", 200, 0)}, []string{"eu | 2 | 3.00", "us | 1 | 5.00"}},
				{cat(sales.truncate(210), sales.create(r4, 220)), []string{"us | 1 | 4.00"}},
			},
		}, {
			// Records without an lsn (not Debezium's) never start a new
			// snapshot: replacing by key as before.
			name: "no_lsn",
			stages: []stage{
				{sales.snapshot([][]dbzjson.Value{r1, r2}, 0, true, true, -1), []string{"eu | 2 | 3.00"}},
				{sales.snapshot([][]dbzjson.Value{r1}, 0, true, true, -1), []string{"eu | 2 | 3.00"}},
			},
		}}
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/full_%v", c.name, full), func(t *testing.T) {
				sales.t = t
				q := newQuery(t, sql)
				var history []dbzRecord
				for i, st := range c.stages {
					feedRecords(t, q, st.recs)
					history = append(history, st.recs...)
					if got := rowsText(q); !slices.Equal(got, st.want) {
						t.Fatalf("after stage %d: got %q, want %q", i, got, st.want)
					}
				}
				// A restart rebuilds from the start of the topic.
				rebuilt := newQuery(t, sql)
				feedRecords(t, rebuilt, history)
				if got, want := rowsText(rebuilt), rowsText(q); !slices.Equal(got, want) {
					t.Fatalf("rebuilt from the topic: %q, live: %q", got, want)
				}
			})
		}
	}
}

// The rows a new snapshot of one side of a join lacks take their joined
// tuples with them; a self-join retracts both sides' ghosts.
func TestResnapshotOfAJoinedTable(t *testing.T) {
	sales := topicWriter{t: t, rel: benchSales, table: "sales"}
	shops := topicWriter{t: t, rel: benchShops, table: "shops"}
	q := newQuery(t, "SELECT sh.region, count(*) AS n FROM sales s JOIN shops sh ON sh.id = s.shop_id GROUP BY sh.region")
	feedRecords(t, q, cat(
		shops.snapshot([][]dbzjson.Value{shop(1, "eu"), shop(2, "us")}, 100, true, false, 2),
		sales.snapshot([][]dbzjson.Value{saleOfShop(1, 1), saleOfShop(2, 2), saleOfShop(3, 2)}, 100, false, true, -1),
	))
	if got, want := rowsText(q), []string{"eu | 1", "us | 2"}; !slices.Equal(got, want) {
		t.Fatalf("after the first snapshot: %q, want %q", got, want)
	}
	// Shop 2 was deleted before the second snapshot, sale 3 too; shop 3
	// is new.
	feedRecords(t, q, cat(
		shops.snapshot([][]dbzjson.Value{shop(1, "eu"), shop(3, "ap")}, 200, true, false, -1),
		sales.snapshot([][]dbzjson.Value{saleOfShop(1, 1), saleOfShop(2, 2)}, 200, false, true, -1),
	))
	if got, want := rowsText(q), []string{"eu | 1"}; !slices.Equal(got, want) {
		t.Fatalf("after the second snapshot: %q, want %q", got, want)
	}
	if q.Len(0)+q.Len(1) != 4 {
		t.Fatalf("the engine holds %d and %d rows, want 4 in all", q.Len(0), q.Len(1))
	}

	self := newQuery(t, "SELECT a.region, count(*) AS pairs FROM shops a JOIN shops b ON b.region = a.region GROUP BY a.region")
	feedRecords(t, self, shops.snapshot([][]dbzjson.Value{shop(1, "eu"), shop(2, "eu"), shop(3, "us")}, 100, true, true, 2))
	feedRecords(t, self, shops.snapshot([][]dbzjson.Value{shop(1, "eu"), shop(3, "us")}, 200, true, true, -1))
	if got, want := rowsText(self), []string{"eu | 1", "us | 1"}; !slices.Equal(got, want) {
		t.Fatalf("self-join after the second snapshot: %q, want %q", got, want)
	}
}

// The decoder reports a snapshot read's marker and lsn, and nothing for
// streamed changes.
func TestDecodeSnapshotPosition(t *testing.T) {
	q := newQuery(t, "SELECT count(*) FROM sales")
	w := topicWriter{t: t, rel: benchSales, table: "sales", full: true}
	r := sale(1, "eu", "1.00")
	for _, c := range []struct {
		rec     dbzRecord
		want    SnapshotPos
		lsn, tx int64
	}{
		{w.read(r, "first", 42, 9), InSnapshot, 42, 9},
		{w.read(r, "true", 42, 9), InSnapshot, 42, 9},
		{w.read(r, "first_in_data_collection", 42, 9), InSnapshot, 42, 9},
		{w.read(r, "last_in_data_collection", 42, 9), SnapshotEnd, 42, 9},
		{w.read(r, "last", 42, 9), SnapshotEnd, 42, 9},
		{w.read(r, "incremental", 42, 9), NotSnapshot, 42, 9},
		{w.read(r, "false", 42, 9), NotSnapshot, 42, 9},
		{w.read(r, "last", 0, 9), SnapshotEnd, 0, 9},
		{w.create(r, 4300)[0], NotSnapshot, 0, 0},
		{w.update(r, r, 4400)[0], NotSnapshot, 0, 0},
		{w.delete(r, 4500)[0], NotSnapshot, 0, 0},
		{dbzRecord{value: []byte(`{"payload":{"after":{"id":1},"source":{"snapshot":"last","lsn":7,"txId":3},"op":"r"}}`)}, SnapshotEnd, 7, 3},
		{dbzRecord{value: []byte(`{"after":{"id":1},"source":{"snapshot":true,"lsn":null,"txId":null},"op":"r"}`)}, InSnapshot, 0, 0},
		{dbzRecord{value: []byte(`{"after":{"id":1},"source":null,"op":"r"}`)}, NotSnapshot, 0, 0},
	} {
		ch, err := q.Decode(0, c.rec.key, c.rec.value)
		if err != nil {
			t.Fatalf("%s: %v", c.rec.value, err)
		}
		if ch.Snapshot != c.want || ch.LSN != c.lsn || ch.TxID != c.tx {
			t.Errorf("%s: snapshot %d, lsn %d, txId %d; want %d, %d, %d", c.rec.value, ch.Snapshot, ch.LSN, ch.TxID, c.want, c.lsn, c.tx)
		}
	}
}

// TestDifferentialResnapshots runs the differential test's queries while a
// capture is killed in the middle of its snapshots: snapshots of a real
// PostgreSQL server, with the markers and lsn Debezium writes, cut off at
// random; changes made while the capture is down are never streamed, and
// the next snapshot starts from a later position. After every snapshot
// that completes, and while changes are streamed after it, the engine's
// results equal the server's; a rebuild from the whole history gives them
// too.
func TestDifferentialResnapshots(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	seed := *diffSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -ivm.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	ctx := context.Background()
	conn := diffConnect(t, pgtestURL(t))
	if _, err := conn.Exec(ctx, shopDDL); err != nil {
		t.Fatal(err)
	}
	order := []string{"customers", "order_items", "orders", "products"} // the snapshot's table order
	tables := map[string]*diffTable{}
	for _, name := range order {
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
		name, sql string
		q         *Query
		types     []sqlplan.Type
	}
	var qs []*maintained
	for _, dq := range diffQueries {
		p := compilePlan(t, "shop.prisma", dq.sql)
		m := &maintained{name: dq.name, sql: dq.sql}
		var err error
		if m.q, err = New(p); err != nil {
			t.Fatalf("%s: %v", dq.name, err)
		}
		for _, o := range p.Outputs {
			m.types = append(m.types, o.Type)
		}
		qs = append(qs, m)
	}
	var history []dbzRecord
	lastSnapshotStart := 0 // index in history of the last snapshot's first record
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
	compare := func(when, name string, q *Query, sql string, types []sqlplan.Type) {
		t.Helper()
		var got [][]string
		for _, r := range q.Rows() {
			line := make([]string, len(r.Row))
			for i, v := range r.Row {
				line[i] = v.String()
				if v.IsNull() {
					line[i] = "\x00NULL"
				}
			}
			got = append(got, line)
		}
		if err := compareResults(got, pgRows(t, conn, sql), types); err != nil {
			t.Fatalf("%s: %s: engine and PostgreSQL differ (seed %d): %v", when, name, seed, err)
		}
	}
	check := func(when string) {
		t.Helper()
		for _, m := range qs {
			compare(when, m.name, m.q, m.sql, m.types)
		}
	}
	gen := &rowGen{rng: rng}
	stats := map[string]int{}
	// changes makes n random changes in random transactions and returns
	// the records a capture would stream for them.
	changes := func(n int) []dbzRecord {
		t.Helper()
		var out []dbzRecord
		for done := 0; done < n; {
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var recs []dbzRecord
			k := 1 + rng.IntN(5)
			for range k {
				recs = append(recs, diffChange(t, tx, tables[pickTable(rng)], gen, stats)...)
			}
			done += k
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			out = append(out, recs...)
		}
		return out
	}
	// snapshot reads every table in one transaction, as Debezium does,
	// with its lsn and markers.
	snapshot := func() ([]dbzRecord, int64) {
		t.Helper()
		tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		// Debezium's position: the WAL write position, which the test
		// server's asynchronous commits often leave where it was; and the
		// snapshot transaction's id.
		var lsn, txID int64
		if err := tx.QueryRow(ctx, "SELECT (pg_current_wal_lsn() - '0/0')::int8, txid_current()").Scan(&lsn, &txID); err != nil {
			t.Fatal(err)
		}
		rows := map[string][][]dbzjson.Value{}
		lastTable := ""
		for _, name := range order {
			rows[name] = selectRows(t, tx, fmt.Sprintf("SELECT * FROM %s ORDER BY random()", name))
			if len(rows[name]) > 0 {
				lastTable = name
			}
		}
		var out []dbzRecord
		for i, name := range order {
			w := topicWriter{t: t, rel: tables[name].rel, table: name}
			out = append(out, w.snapshotIn(rows[name], lsn, txID, i == 0, name == lastTable, -1)...)
		}
		return out, lsn
	}

	// History before the capture starts.
	changes(600)
	down, snapshots, killed, streamed := 0, 0, 0, 0
	var lastLSN int64
	for round := 0; round < 24; round++ {
		// Debezium reads only tables with rows; an empty one is the
		// known limitation (its rows stay), so keep two in each.
		for {
			var fewest int
			if err := conn.QueryRow(ctx, `SELECT least((SELECT count(*) FROM customers), (SELECT count(*) FROM orders),
				(SELECT count(*) FROM order_items), (SELECT count(*) FROM products))`).Scan(&fewest); err != nil {
				t.Fatal(err)
			}
			if fewest >= 2 {
				break
			}
			changes(1)
		}
		recs, lsn := snapshot()
		if lsn == lastLSN {
			stats["snapshots at the previous one's lsn"]++
		}
		lastLSN = lsn
		snapshots++
		lastSnapshotStart = len(history)
		if rng.IntN(2) == 0 {
			// Killed mid-snapshot: the records up to the cut are on the
			// topic, the changes made until the capture is back are never
			// streamed (sometimes none: the next snapshot then has the
			// same lsn).
			cut := rng.IntN(len(recs))
			feed(recs[:cut])
			history = append(history, recs[:cut]...)
			killed++
			n := rng.IntN(4) * 20
			changes(n)
			down += n
			continue
		}
		feed(recs)
		history = append(history, recs...)
		check(fmt.Sprintf("round %d: after the snapshot at lsn %d", round, lsn))
		for range 1 + rng.IntN(3) {
			recs := changes(10 + rng.IntN(40))
			feed(recs)
			history = append(history, recs...)
			streamed += len(recs)
			if rng.IntN(3) == 0 {
				// A replay after a crash while streaming: duplicates, in
				// order, from a point after the snapshot's start.
				from := lastSnapshotStart + rng.IntN(len(history)-lastSnapshotStart)
				feed(history[from:])
				stats["replays"]++
			}
			check(fmt.Sprintf("round %d: streaming", round))
		}
		if rng.IntN(3) == 0 {
			// The capture goes down after streaming and snapshots again.
			n := rng.IntN(3) * 20
			changes(n)
			down += n
		}
	}
	// End with a complete snapshot and streaming.
	recs, _ := snapshot()
	feed(recs)
	history = append(history, recs...)
	recs = changes(50)
	feed(recs)
	history = append(history, recs...)
	check("at the end")
	for _, m := range qs {
		rebuilt, err := New(m.q.Plan())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range history {
			if _, err := rebuilt.ApplyTopicRecord("public."+r.table, r.key, r.value); err != nil {
				t.Fatalf("%s: rebuild: %v", m.name, err)
			}
		}
		compare("rebuilt from the history", m.name, rebuilt, m.sql, m.types)
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(stats)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, stats[k]))
	}
	t.Logf("%d snapshots (%d killed), %d changes never streamed, %d streamed records, %d records in all; %s",
		snapshots+1, killed, down, streamed, len(history), strings.Join(parts, ", "))
}

// selectRows returns the rows of sql as text values (nil for NULL).
func selectRows(t *testing.T, tx pgx.Tx, sql string) [][]dbzjson.Value {
	t.Helper()
	rows, err := tx.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out [][]dbzjson.Value
	for rows.Next() {
		var row []dbzjson.Value
		for _, raw := range rows.RawValues() {
			if raw == nil {
				row = append(row, nil)
				continue
			}
			s := string(raw)
			row = append(row, &s)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}
