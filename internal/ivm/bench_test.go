package ivm

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"

	"github.com/cdcq/cdcq/internal/dbzjson"
)

// benchRelations describe the unit schema's tables for dbzjson, with the
// columns a real table would have (some the queries do not read).
var (
	benchSales = &dbzjson.Relation{Schema: "public", Table: "sales", Columns: []dbzjson.Column{
		{Name: "id", TypeOID: 23, TypeName: "integer", TypeMod: -1, Kind: 'b', Key: true},
		{Name: "region", TypeOID: 25, TypeName: "text", TypeMod: -1, Kind: 'b'},
		{Name: "product", TypeOID: 25, TypeName: "text", TypeMod: -1, Kind: 'b'},
		{Name: "shop_id", TypeOID: 23, TypeName: "integer", TypeMod: -1, Kind: 'b'},
		{Name: "qty", TypeOID: 23, TypeName: "integer", TypeMod: -1, Kind: 'b'},
		{Name: "amount", TypeOID: 1700, TypeName: "numeric(12,2)", TypeMod: 12<<16 | 2 + 4, Kind: 'b'},
		{Name: "at", TypeOID: 1114, TypeName: "timestamp(6) without time zone", TypeMod: 6, Kind: 'b'},
		{Name: "flag", TypeOID: 16, TypeName: "boolean", TypeMod: -1, Kind: 'b'},
	}}
	benchShops = &dbzjson.Relation{Schema: "public", Table: "shops", Columns: []dbzjson.Column{
		{Name: "id", TypeOID: 23, TypeName: "integer", TypeMod: -1, Kind: 'b', Key: true},
		{Name: "region", TypeOID: 25, TypeName: "text", TypeMod: -1, Kind: 'b'},
		{Name: "city", TypeOID: 25, TypeName: "text", TypeMod: -1, Kind: 'b'},
	}}
)

const (
	benchRows   = 100_000
	benchGroups = 1_000
	benchShopsN = 1_000
)

func ptr(s string) dbzjson.Value { return &s }

func benchSale(rng *rand.Rand, id int) []dbzjson.Value {
	return []dbzjson.Value{
		ptr(strconv.Itoa(id)),
		ptr("region-" + strconv.Itoa(rng.IntN(benchGroups))),
		ptr("product " + strconv.Itoa(rng.IntN(50))),
		ptr(strconv.Itoa(rng.IntN(benchShopsN))),
		ptr(strconv.Itoa(rng.IntN(20))),
		ptr(fmt.Sprintf("%d.%02d", rng.IntN(10000), rng.IntN(100))),
		ptr(fmt.Sprintf("2024-%02d-%02d 12:%02d:00.123456", 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(60))),
		ptr([]string{"t", "f"}[rng.IntN(2)]),
	}
}

type benchRecord struct{ key, value []byte }

// benchRecords makes a stream of sales changes as the capture writes them:
// updates without a before image (REPLICA IDENTITY DEFAULT), and deletes
// each followed by the row's re-insert, so the state stays at benchRows.
func benchRecords(b *testing.B, rng *rand.Rand, n int) []benchRecord {
	src := dbzjson.Source{Version: "cdcq-bench", Name: "env42", TsMs: 1709284500123, DB: "shop", TxID: 767, LSN: 24023128,
		Sequence: dbzjson.Sequence(24023119, 24023128)}
	out := make([]benchRecord, 0, n)
	for len(out) < n {
		id := rng.IntN(benchRows)
		row := benchSale(rng, id)
		key, err := dbzjson.Key(benchSales, row)
		if err != nil {
			b.Fatal(err)
		}
		if rng.IntN(10) == 0 {
			before := make([]dbzjson.Value, len(row))
			before[0] = row[0]
			del, err := dbzjson.Envelope(benchSales, dbzjson.OpDelete, before, nil, src, 1709284500456)
			if err != nil {
				b.Fatal(err)
			}
			ins, err := dbzjson.Envelope(benchSales, dbzjson.OpCreate, nil, row, src, 1709284500456)
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, benchRecord{key, del}, benchRecord{key, nil}, benchRecord{key, ins})
			continue
		}
		upd, err := dbzjson.Envelope(benchSales, dbzjson.OpUpdate, nil, row, src, 1709284500456)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, benchRecord{key, upd})
	}
	return out[:n]
}

// BenchmarkApply measures change events applied per second (decode +
// apply + the result changes) with 100k rows of state. Run it on one core:
//
//	go test -run '^$' -bench BenchmarkApply -cpu 1 ./internal/ivm/
func BenchmarkApply(b *testing.B) {
	cases := []struct {
		name, sql string
		shops     bool
	}{
		{"group_by_sum_count_avg", "SELECT region, count(*), sum(amount), avg(amount), sum(qty) AS qty, avg(qty) AS avg_qty FROM sales GROUP BY region", false},
		{"join_group_by", "SELECT sh.region, count(*), sum(s.amount), avg(s.qty) FROM sales s JOIN shops sh ON sh.id = s.shop_id GROUP BY sh.region", true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			q, err := New(compilePlan(b, "unit.prisma", c.sql))
			if err != nil {
				b.Fatal(err)
			}
			salesSource := 0
			for i, s := range q.plan.Sources {
				if s.Name == "sales" {
					salesSource = i
				}
			}
			if c.shops {
				shopSource := 1 - salesSource
				for id := 0; id < benchShopsN; id++ {
					row := []dbzjson.Value{ptr(strconv.Itoa(id)), ptr("region-" + strconv.Itoa(id%100)), ptr("city")}
					key, _ := dbzjson.Key(benchShops, row)
					v, _ := dbzjson.Envelope(benchShops, dbzjson.OpRead, nil, row, dbzjson.Source{Name: "env42"}, 1)
					if _, err := q.ApplyRecord(shopSource, key, v); err != nil {
						b.Fatal(err)
					}
				}
			}
			for id := 0; id < benchRows; id++ {
				row := benchSale(rng, id)
				key, _ := dbzjson.Key(benchSales, row)
				v, _ := dbzjson.Envelope(benchSales, dbzjson.OpRead, nil, row, dbzjson.Source{Name: "env42"}, 1)
				if _, err := q.ApplyRecord(salesSource, key, v); err != nil {
					b.Fatal(err)
				}
			}
			recs := benchRecords(b, rng, 200_000)
			enc := q.ResultEncoder("q_bench")
			var out []byte
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := recs[i%len(recs)]
				changes, err := q.ApplyRecord(salesSource, r.key, r.value)
				if err != nil {
					b.Fatal(err)
				}
				for _, ch := range changes {
					out = enc.AppendKey(out[:0], ch.Key)
					if ch.Row != nil {
						out = enc.AppendValue(out, ch.Key, ch.Row)
					}
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			// A run may stop between a delete and its re-insert.
			if n := q.Len(salesSource); n != benchRows && n != benchRows-1 {
				b.Fatalf("state holds %d rows, want %d", n, benchRows)
			}
		})
	}
}

// BenchmarkDecode measures the decoder alone on the sales stream of
// BenchmarkApply: updates with a full after image, deletes with a
// key-only before image, tombstones and inserts.
//
//	go test -run '^$' -bench BenchmarkDecode -cpu 1 ./internal/ivm/
func BenchmarkDecode(b *testing.B) {
	plan := compilePlan(b, "unit.prisma", "SELECT region, count(*), sum(amount), avg(amount), sum(qty) AS qty, avg(qty) AS avg_qty FROM sales GROUP BY region")
	d, err := NewDecoder(plan, 0)
	if err != nil {
		b.Fatal(err)
	}
	recs := benchRecords(b, rand.New(rand.NewPCG(1, 2)), 10_000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := recs[i%len(recs)]
		if _, err := d.Decode(r.key, r.value); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkStateMemory reports the heap the engine holds for the issue-9
// shape of query (count, sum, avg, min and max of a numeric per group) over
// 100,000 source rows: with 1,000 groups and with 10,000, so that the cost
// of a source row and of a result row (a group) can be told apart. Nothing
// is asserted.
//
//	go test -run '^$' -bench StateMemory -benchtime 1x ./internal/ivm/
func BenchmarkStateMemory(b *testing.B) {
	const rows = 100_000
	heap := func(groups int) float64 {
		rng := rand.New(rand.NewPCG(3, 4))
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		q, err := New(compilePlan(b, "unit.prisma", "SELECT region, count(*), sum(amount), avg(amount), min(amount), max(amount) FROM sales GROUP BY region"))
		if err != nil {
			b.Fatal(err)
		}
		for id := 0; id < rows; id++ {
			row := benchSale(rng, id)
			region := "region-" + strconv.Itoa(id%groups)
			row[1] = &region
			key, _ := dbzjson.Key(benchSales, row)
			v, _ := dbzjson.Envelope(benchSales, dbzjson.OpRead, nil, row, dbzjson.Source{Name: "env42"}, 1)
			if _, err := q.ApplyRecord(0, key, v); err != nil {
				b.Fatal(err)
			}
		}
		if n := len(q.Rows()); n != groups {
			b.Fatalf("%d groups, want %d", n, groups)
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		runtime.KeepAlive(q)
		return float64(m1.HeapAlloc) - float64(m0.HeapAlloc)
	}
	few, many := heap(1_000), heap(10_000)
	perGroup := (many - few) / 9_000
	perRow := (few - 1_000*perGroup) / rows
	fmt.Printf("ivm: %d source rows: %.1f MiB with 1,000 groups, %.1f MiB with 10,000: about %.0f bytes per source row and %.0f kB per 1,000 result rows\n",
		rows, few/(1<<20), many/(1<<20), perRow, perGroup*1000/1024)
	b.ReportMetric(perRow, "B/source-row")
	b.ReportMetric(perGroup*1000/1024, "kB/1000-groups")
}
