package ivm

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/cdcq/cdcq/internal/dbzjson"
)

// checkpointed writes q's state and restores it into a new query of the
// same SQL.
func checkpointed(t *testing.T, q *Query, sql string) *Query {
	t.Helper()
	var buf bytes.Buffer
	if err := q.WriteState(&buf); err != nil {
		t.Fatal(err)
	}
	r := newQuery(t, sql)
	if err := r.RestoreState(&buf); err != nil {
		t.Fatalf("restore: %v", err)
	}
	return r
}

// A query restored from a checkpoint taken after any record, also in the
// middle of a snapshot taken again (rows of the old generation still to
// be retracted), has the same result as the query that went on, and goes
// on to the same results: the snapshot bookkeeping survives.
func TestCheckpointRestoreContinues(t *testing.T) {
	sales := topicWriter{t: t, rel: benchSales, table: "sales", full: false}
	shops := topicWriter{t: t, rel: benchShops, table: "shops", full: true}
	r1, r2, r3 := sale(1, "eu", "1.00"), sale(2, "eu", "2.00"), sale(3, "", "3.00")
	r3b, r4, r5 := sale(3, "us", "5.00"), sale(4, "us", "123456789012345678901234567890.25"), sale(5, "eu", "-0.50")
	history := cat(
		shops.snapshot([][]dbzjson.Value{shop(1, "eu"), shop(2, "us")}, 100, true, false, -1),
		sales.snapshot([][]dbzjson.Value{r1, r2, r3, r4}, 100, false, true, 3),
		sales.snapshot([][]dbzjson.Value{r1, r3b, r4, saleOfShop(6, 2), saleOfShop(7, 1)}, 200, true, true, -1),
		sales.create(r5, 210),
		sales.update(r5, sale(5, "", "7.25"), 220),
		shops.delete(shop(2, "us"), 230),
		sales.delete(r1, 240),
		shops.create(shop(4, "gone"), 250),
		sales.create(saleOfShop(9, 4), 260),
		shops.snapshot([][]dbzjson.Value{shop(1, "eu"), shop(3, "ap")}, 300, true, true, 1),
		sales.create(saleOfShop(8, 3), 310),
		shops.snapshot([][]dbzjson.Value{shop(1, "eu"), shop(3, "ap")}, 300, true, true, -1)[1:],
		sales.truncate(400),
		sales.create(r2, 410),
	)
	for _, sql := range []string{
		"SELECT region, count(*) AS n, sum(amount) AS total, min(amount) AS lo, max(amount) AS hi FROM sales GROUP BY region",
		"SELECT count(*) AS n, avg(amount) AS mean FROM sales WHERE amount > 0",
		"SELECT sh.region, count(*) AS n FROM sales s JOIN shops sh ON sh.id = s.shop_id GROUP BY sh.region",
	} {
		t.Run(sql, func(t *testing.T) {
			sales.t, shops.t = t, t
			for cut := range len(history) + 1 {
				q := newQuery(t, sql)
				feedRecords(t, q, history[:cut])
				r := checkpointed(t, q, sql)
				q.Flush() // as r did: the global group's row is reported
				if got, want := rowsText(r), rowsText(q); !slices.Equal(got, want) {
					t.Fatalf("restored after %d records: %q, want %q", cut, got, want)
				}
				if ch, err := r.Flush(); err != nil || len(ch) > 0 {
					t.Fatalf("a restored query reports changes %q (%v) before any record", changesText(ch), err)
				}
				feedRecords(t, q, history[cut:])
				feedRecords(t, r, history[cut:])
				if got, want := rowsText(r), rowsText(q); !slices.Equal(got, want) {
					t.Fatalf("restored after %d records, then the rest: %q, want %q", cut, got, want)
				}
				for i := range q.sources {
					if r.Len(i) != q.Len(i) {
						t.Fatalf("restored after %d records: source %d holds %d rows, want %d", cut, i, r.Len(i), q.Len(i))
					}
				}
			}
		})
	}
}

// A checkpoint that is cut short, written for another query or not a
// checkpoint at all is refused with an error, never a partial state taken
// as whole.
func TestCheckpointRefusesWhatDoesNotFit(t *testing.T) {
	const sql = "SELECT region, count(*) AS n FROM sales GROUP BY region"
	sales := topicWriter{t: t, rel: benchSales, table: "sales"}
	q := newQuery(t, sql)
	feedRecords(t, q, sales.snapshot([][]dbzjson.Value{sale(1, "eu", "1.00"), sale(2, "us", "2.00")}, 100, true, true, -1))
	var buf bytes.Buffer
	if err := q.WriteState(&buf); err != nil {
		t.Fatal(err)
	}
	whole := buf.Bytes()
	for cut := range len(whole) {
		err := newQuery(t, sql).RestoreState(bytes.NewReader(whole[:cut]))
		if !errors.Is(err, errBadState) {
			t.Fatalf("restore of the first %d of %d bytes: %v, want errBadState", cut, len(whole), err)
		}
	}
	if err := newQuery(t, sql).RestoreState(bytes.NewReader(append(slices.Clip(whole), 0))); !errors.Is(err, errBadState) {
		t.Fatalf("restore with a byte too many: %v", err)
	}
	join := newQuery(t, "SELECT sh.region, count(*) AS n FROM sales s JOIN shops sh ON sh.id = s.shop_id GROUP BY sh.region")
	if err := join.RestoreState(bytes.NewReader(whole)); !errors.Is(err, errBadState) {
		t.Fatalf("restore into a query of two sources: %v", err)
	}
	used := newQuery(t, sql)
	feedRecords(t, used, sales.create(sale(3, "eu", "1.00"), 10))
	if err := used.RestoreState(bytes.NewReader(whole)); err == nil {
		t.Fatal("restore into a query that applied a record: no error")
	}
}

// BenchmarkCheckpoint measures WriteState (State, which gathers the rows
// and is the only part that holds a live query up, then Write, which runs
// beside it in the embedded engine) and RestoreState over a sales state of CDCQ_BENCH_CHECKPOINT_ROWS rows
// (default 1,000,000):
//
//	go test -run '^$' -bench Checkpoint -benchtime 3x ./internal/ivm/
func BenchmarkCheckpoint(b *testing.B) {
	rows := 1_000_000
	if v := os.Getenv("CDCQ_BENCH_CHECKPOINT_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("CDCQ_BENCH_CHECKPOINT_ROWS: %q", v)
		}
		rows = n
	}
	const sql = "SELECT region, count(*), sum(amount), avg(amount), sum(qty) AS qty FROM sales GROUP BY region"
	rng := rand.New(rand.NewPCG(1, 2))
	q, err := New(compilePlan(b, "unit.prisma", sql))
	if err != nil {
		b.Fatal(err)
	}
	for id := range rows {
		rec := benchSale(rng, id)
		key, err := dbzjson.Key(benchSales, rec)
		if err != nil {
			b.Fatal(err)
		}
		val, err := dbzjson.Envelope(benchSales, dbzjson.OpCreate, nil, rec, dbzjson.Source{Name: "env", LSN: int64(id + 1)}, 1)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := q.ApplyRecord(0, key, val); err != nil {
			b.Fatal(err)
		}
	}
	var buf bytes.Buffer
	b.Run("write", func(b *testing.B) {
		for range b.N {
			buf.Reset()
			if err := q.WriteState(&buf); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(buf.Len()), "bytes")
	})
	b.Run("restore", func(b *testing.B) {
		for range b.N {
			r, err := New(q.plan)
			if err != nil {
				b.Fatal(err)
			}
			if err := r.RestoreState(bytes.NewReader(buf.Bytes())); err != nil {
				b.Fatal(err)
			}
		}
	})
}
