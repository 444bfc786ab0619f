package ivm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/civil"
	"github.com/cdcq/cdcq/internal/floattext"
	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

// TestScalarsAgainstPostgres computes numeric arithmetic, float text and
// date functions for random inputs both here and on PostgreSQL, and
// compares the text of every result.
func TestScalarsAgainstPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	conn := diffConnect(t, pgtest.NewDatabase(t))
	seed := *diffSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))

	t.Run("numeric", func(t *testing.T) {
		var vals []string
		type pair struct {
			a, b dec
			n    int
		}
		var pairs []pair
		for i := 0; i < 400; i++ {
			as, bs := randomNumeric(rng), randomNumeric(rng)
			n := rng.IntN(9) - 3
			a, err1 := parseDec(as)
			b, err2 := parseDec(bs)
			if err1 != nil || err2 != nil {
				t.Fatalf("parse %q %q: %v %v", as, bs, err1, err2)
			}
			pairs = append(pairs, pair{a, b, n})
			vals = append(vals, fmt.Sprintf("(%d, '%s'::numeric, '%s'::numeric, %d)", i, as, bs, n))
		}
		sql := `SELECT a + b, a - b, a * b, CASE WHEN b <> 0 THEN a / b END, CASE WHEN b <> 0 THEN a % b END,
			round(a, n), round(a), ceil(a), floor(a), trunc(a, 2), a::float8, (a::float8)::numeric, (a::float4)::numeric,
			abs(a), -a, a < b, a = b
			FROM (VALUES ` + strings.Join(vals, ", ") + `) v(i, a, b, n) ORDER BY i`
		rows := pgRows(t, conn, sql)
		for i, p := range pairs {
			a, b := p.a, p.b
			var got []string
			got = append(got, decAdd(a, b).String(), decSub(a, b).String(), mustDec(decMul(a, b)).String())
			if b.sign() != 0 {
				got = append(got, mustDec(decDiv(a, b)).String(), mustDec(decMod(a, b)).String())
			} else {
				got = append(got, "\x00NULL", "\x00NULL")
			}
			got = append(got, decRound(a, int32(p.n)).String(), decRound(a, 0).String(), decCeil(a).String(),
				decFloor(a).String(), decTrunc(a, 2).withScale(2).String(),
				string(floattext.AppendPostgres(nil, decToFloat(a), 64)),
				mustDec(decFromFloat(decToFloat(a), 15)).String(),
				mustDec(decFromFloat(float64(float32(decToFloat(a))), 6)).String(),
				decAbs(a).String(), decNeg(a).String(),
				pgBool(decCmp(a, b) < 0), pgBool(decCmp(a, b) == 0))
			for j := range got {
				if got[j] != rows[i][j] {
					t.Errorf("a=%s b=%s n=%d: expression %d gives %q, PostgreSQL %q", a, b, p.n, j+1, got[j], rows[i][j])
				}
			}
		}
	})

	t.Run("avg_scale", func(t *testing.T) {
		// select_div_scale decides avg's scale from the sum and the count.
		var vals []string
		var sums []dec
		var counts []int64
		for i := 0; i < 300; i++ {
			s := randomNumeric(rng)
			n := 1 + rng.Int64N(100000)
			d, _ := parseDec(s)
			sums = append(sums, d)
			counts = append(counts, n)
			vals = append(vals, fmt.Sprintf("(%d, '%s'::numeric, %d::int8)", i, s, n))
		}
		rows := pgRows(t, conn, `SELECT s / n FROM (VALUES `+strings.Join(vals, ", ")+`) v(i, s, n) ORDER BY i`)
		for i := range sums {
			got := mustDec(decDiv(sums[i], decInt(counts[i]))).String()
			if got != rows[i][0] {
				t.Errorf("%s / %d: %q, PostgreSQL %q", sums[i], counts[i], got, rows[i][0])
			}
		}
	})

	t.Run("float_text", func(t *testing.T) {
		var vals []string
		var fs []float64
		for i := 0; i < 400; i++ {
			f := (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(50)-25))
			if rng.IntN(5) == 0 {
				f = math.Round(f)
			}
			fs = append(fs, f)
			vals = append(vals, fmt.Sprintf("(%d, '%s'::float8)", i, strconv.FormatFloat(f, 'g', -1, 64)))
		}
		rows := pgRows(t, conn, `SELECT x, x::float4, x::float4::float8 FROM (VALUES `+strings.Join(vals, ", ")+`) v(i, x) ORDER BY i`)
		for i, f := range fs {
			f32 := float64(float32(f))
			got := []string{string(floattext.AppendPostgres(nil, f, 64)), string(floattext.AppendPostgres(nil, f32, 32)), string(floattext.AppendPostgres(nil, f32, 64))}
			if math.Abs(f) > math.MaxFloat32 || f32 == 0 && f != 0 {
				continue // real overflows or underflows: PostgreSQL fails
			}
			for j := range got {
				if got[j] != rows[i][j] {
					t.Errorf("%v: expression %d gives %q, PostgreSQL %q", f, j+1, got[j], rows[i][j])
				}
			}
		}
	})

	t.Run("time_zones", func(t *testing.T) {
		// Every 20 minutes across 2024's daylight saving changes, where a
		// local time can be missing or ambiguous.
		zones := []string{"America/New_York", "Europe/Paris", "Australia/Sydney", "Asia/Kolkata"}
		days := []string{"2024-03-10", "2024-03-31", "2024-04-07", "2024-10-06", "2024-10-27", "2024-11-03"}
		var vals []string
		var tss []Value
		for _, d := range days {
			for m := 0; m < 24*60; m += 20 {
				text := fmt.Sprintf("%s %02d:%02d:00", d, m/60, m%60)
				v, _ := parseTimestampText(text, false)
				tss = append(tss, v)
				vals = append(vals, fmt.Sprintf("(%d, '%s'::timestamp)", len(vals), text))
			}
		}
		var exprs []string
		for _, z := range zones {
			exprs = append(exprs, fmt.Sprintf("ts AT TIME ZONE '%s'", z), fmt.Sprintf("(ts AT TIME ZONE 'UTC') AT TIME ZONE '%s'", z))
		}
		rows := pgRows(t, conn, `SELECT `+strings.Join(exprs, ", ")+` FROM (VALUES `+strings.Join(vals, ", ")+`) v(i, ts) ORDER BY i`)
		for i, ts := range tss {
			var got []string
			for _, z := range zones {
				loc, err := loadZone(z)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, atTimeZone(loc, ts).String(), atTimeZone(loc, atTimeZone(time.UTC, ts)).String())
			}
			for j := range got {
				if got[j] != rows[i][j] {
					t.Errorf("%s: %s gives %q, PostgreSQL %q", ts, exprs[j], got[j], rows[i][j])
				}
			}
		}
	})

	t.Run("temporal", func(t *testing.T) {
		units := []string{"microseconds", "milliseconds", "second", "minute", "hour", "day", "week", "month",
			"quarter", "year", "decade", "century", "millennium"}
		var tsFields, dateFields []string
		for f := range extractFields[kindTimestamp] {
			tsFields = append(tsFields, f)
		}
		for f := range extractFields[kindDate] {
			dateFields = append(dateFields, f)
		}
		var exprs []string
		for _, u := range units {
			exprs = append(exprs, fmt.Sprintf("date_trunc('%s', ts)", u))
		}
		for _, f := range tsFields {
			exprs = append(exprs, fmt.Sprintf("extract(%s FROM ts)", f), fmt.Sprintf("date_part('%s', ts)", f))
		}
		for _, f := range dateFields {
			exprs = append(exprs, fmt.Sprintf("extract(%s FROM ts::date)", f))
		}
		exprs = append(exprs, "ts::date", "ts::time", "extract(epoch FROM ts::time)", "extract(second FROM ts::time)",
			"ts::date + 40", "ts::date - date '2000-01-01'")
		var vals []string
		var tss []Value
		for i := 0; i < 200; i++ {
			year := 1 + rng.IntN(3000)
			if rng.IntN(2) == 0 {
				year = 1990 + rng.IntN(50)
			}
			tm := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(366 * 24 * time.Hour))))
			tm = tm.Add(time.Duration(rng.IntN(1_000_000)) * time.Microsecond)
			text := tm.Format("2006-01-02 15:04:05.999999")
			v, err := parseTimestampText(text, false)
			if err != nil {
				t.Fatal(err)
			}
			tss = append(tss, v)
			vals = append(vals, fmt.Sprintf("(%d, '%s'::timestamp)", i, text))
		}
		rows := pgRows(t, conn, `SELECT `+strings.Join(exprs, ", ")+` FROM (VALUES `+strings.Join(vals, ", ")+`) v(i, ts) ORDER BY i`)
		toDate, _ := castFn(sqlplan.TimestampType(6), sqlplan.TypeOf(sqlplan.KindDate))
		toTime, _ := castFn(sqlplan.TimestampType(6), sqlplan.TimeType(sqlplan.NoPrecision))
		for i, ts := range tss {
			var got []string
			for _, u := range units {
				v, err := truncTimestamp(u, ts)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, v.String())
			}
			for _, f := range tsFields {
				d, err := extract(f, ts)
				if err != nil {
					t.Fatal(err)
				}
				f, err := datePart(f, ts)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, d.String(), string(floattext.AppendPostgres(nil, f, 64)))
			}
			date, _ := toDate(ts)
			for _, f := range dateFields {
				d, err := extract(f, date)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, d.String())
			}
			tod, _ := toTime(ts)
			e1, _ := extract("epoch", tod)
			e2, _ := extract("second", tod)
			got = append(got, date.String(), tod.String(), e1.String(), e2.String(),
				dateValue(date.i+40).String(), strconv.FormatInt(date.i-civil.Days(2000, 1, 1), 10))
			for j := range got {
				if got[j] != rows[i][j] {
					t.Errorf("%s: %s gives %q, PostgreSQL %q", ts, exprs[j], got[j], rows[i][j])
				}
			}
		}
	})
}

func mustDec(d dec, err error) dec {
	if err != nil {
		panic(err)
	}
	return d
}

func pgBool(b bool) string {
	if b {
		return "t"
	}
	return "f"
}

// randomNumeric returns numeric text of varied magnitude and scale,
// sometimes with more digits than an int64 holds.
func randomNumeric(rng *rand.Rand) string {
	intDigits := rng.IntN(8)
	if rng.IntN(6) == 0 {
		intDigits = 15 + rng.IntN(20)
	}
	scale := rng.IntN(7)
	var b strings.Builder
	if rng.IntN(3) == 0 {
		b.WriteByte('-')
	}
	if intDigits == 0 {
		b.WriteByte('0')
	}
	for i := 0; i < intDigits; i++ {
		b.WriteByte(byte('0' + rng.IntN(10)))
	}
	if scale > 0 {
		b.WriteByte('.')
		for i := 0; i < scale; i++ {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
	}
	if rng.IntN(10) == 0 {
		return "0"
	}
	return b.String()
}
