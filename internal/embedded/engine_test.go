package embedded

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/cdcq/cdcq/internal/cachedquery"
	"github.com/cdcq/cdcq/internal/dbzjson"
	"github.com/cdcq/cdcq/internal/ivm"
	"github.com/cdcq/cdcq/internal/results"
)

const engineTestSchema = `datasource db {
  provider = "postgresql"
}

model Sale {
  id     Int     @id
  grp    Int
  amount Decimal @db.Decimal(12, 2)

  @@map("sales")
}
`

const engineTestQuery = `SELECT grp, COUNT(*) AS n, SUM(amount) AS total, AVG(amount) AS mean, MIN(amount) AS lo, MAX(amount) AS hi FROM sales GROUP BY grp`

var engineTestSales = &dbzjson.Relation{Schema: "public", Table: "sales", Columns: []dbzjson.Column{
	{Name: "id", TypeOID: 23, TypeName: "integer", TypeMod: -1, Kind: 'b', Key: true},
	{Name: "grp", TypeOID: 23, TypeName: "integer", TypeMod: -1, Kind: 'b'},
	{Name: "amount", TypeOID: 1700, TypeName: "numeric(12,2)", TypeMod: 12<<16 | 2 + 4, Kind: 'b'},
}}

type testRecord struct{ key, value []byte }

// saleRecords are snapshot reads of n rows, then updates and deletes of
// some of them.
func saleRecords(t *testing.T, n int) []testRecord {
	t.Helper()
	str := func(s string) dbzjson.Value { return &s }
	row := func(id, grp, cents int) []dbzjson.Value {
		return []dbzjson.Value{str(strconv.Itoa(id)), str(strconv.Itoa(grp)), str(fmt.Sprintf("%d.%02d", cents/100, cents%100))}
	}
	var out []testRecord
	add := func(op dbzjson.Op, before, after []dbzjson.Value) {
		keyRow := after
		if keyRow == nil {
			keyRow = before
		}
		key, err := dbzjson.Key(engineTestSales, keyRow)
		if err != nil {
			t.Fatal(err)
		}
		val, err := dbzjson.Envelope(engineTestSales, op, before, after, dbzjson.Source{Name: "env", LSN: 100, TxID: 7}, 1)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, testRecord{key, val})
	}
	for id := 1; id <= n; id++ {
		add(dbzjson.OpRead, nil, row(id, id%97, (id*37)%100003))
	}
	for id := 1; id <= n; id += 7 {
		add(dbzjson.OpUpdate, row(id, id%97, (id*37)%100003), row(id, id%89, (id*41)%100019))
	}
	for id := 3; id <= n; id += 11 {
		before := row(id, id%97, (id*37)%100003)
		if (id-1)%7 == 0 {
			before = row(id, id%89, (id*41)%100019)
		}
		add(dbzjson.OpDelete, before, nil)
	}
	return out
}

func newTestEngine(t *testing.T) *ivmEngine {
	t.Helper()
	c, err := cachedquery.Compile(engineTestSchema, engineTestQuery)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewIVMEngine(c.Plan, "q_test")
	if err != nil {
		t.Fatal(err)
	}
	return e.(*ivmEngine)
}

// sameRows compares two results in key order.
func sameRows(t *testing.T, got, want []results.Change) {
	t.Helper()
	byKey := func(a, b results.Change) int { return bytes.Compare(a.Key, b.Key) }
	slices.SortFunc(got, byKey)
	slices.SortFunc(want, byKey)
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i].Key, want[i].Key) || !bytes.Equal(got[i].Row, want[i].Row) {
			t.Fatalf("row %d: %s %s, want %s %s", i, got[i].Key, got[i].Row, want[i].Key, want[i].Row)
		}
	}
}

// TestEngineDecodesLargeBatchesInParallel: records applied in batches
// large enough to be decoded by several goroutines give the result that
// batches of one record give.
func TestEngineDecodesLargeBatchesInParallel(t *testing.T) {
	recs := saleRecords(t, 12_000)
	one := newTestEngine(t)
	for _, r := range recs {
		if err := one.Apply(0, r.key, r.value); err != nil {
			t.Fatal(err)
		}
		if _, err := one.Changes(); err != nil {
			t.Fatal(err)
		}
	}
	want, err := one.Rows()
	if err != nil {
		t.Fatal(err)
	}
	for _, batch := range []int{parallelDecodeMin, len(recs)} {
		big := newTestEngine(t)
		for i, r := range recs {
			if err := big.Apply(0, r.key, r.value); err != nil {
				t.Fatal(err)
			}
			if (i+1)%batch == 0 {
				if _, err := big.Changes(); err != nil {
					t.Fatal(err)
				}
				// Room made for the table's rows while it holds some
				// (and again, which does nothing) keeps them.
				big.Reserve("public.sales", 48_000)
			}
		}
		got, err := big.Rows()
		if err != nil {
			t.Fatal(err)
		}
		sameRows(t, got, want)
	}
}

// TestEngineBatchWithBadRecordAppliesNothing: a record that does not fit
// the plan fails its batch, wherever it is in it, and nothing of the
// batch is applied.
func TestEngineBatchWithBadRecordAppliesNothing(t *testing.T) {
	recs := saleRecords(t, 10_000)
	for _, at := range []int{0, 5_000, 9_999} {
		e := newTestEngine(t)
		for _, r := range recs[:1000] {
			e.Apply(0, r.key, r.value)
		}
		if _, err := e.Changes(); err != nil {
			t.Fatal(err)
		}
		before, _ := e.Rows()
		for i, r := range recs[1000:] {
			v := r.value
			if i == at-1000 || (at < 1000 && i == 0) {
				v = bytes.Replace(v, []byte(`"amount"`), []byte(`"price"`), 1)
			}
			e.Apply(0, r.key, v)
		}
		_, err := e.Changes()
		var se *ivm.SchemaError
		if !errors.As(err, &se) {
			t.Fatalf("record %d renamed a column: error %v, want a SchemaError", at, err)
		}
		after, _ := e.Rows()
		sameRows(t, after, before)
	}
}
