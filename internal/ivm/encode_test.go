package ivm

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdcq/cdcq/internal/sqlplan"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("output differs from %s (run go test -update to accept):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

// TestResultRecords writes the result records of a query with outputs of
// many types, a group key that is not an output and a NULL key.
func TestResultRecords(t *testing.T) {
	q := newQuery(t, `SELECT region, flag, count(*) AS n, sum(amount) AS amount, avg(qty) AS avg_qty,
		sum(weight) AS weight, max(light) AS light, min(at) AS first_at, max(day) AS last_day,
		min(code) AS code, max(product) AS product, sum(rate) / 3 AS third
		FROM sales GROUP BY region, flag, shop_id`)
	steps := []step{
		ins(0, M{"id": "1", "region": "eu", "flag": "t", "shop_id": "1", "amount": "10.50", "qty": "3", "weight": "1e7",
			"light": "1.1", "at": "2024-01-02 03:04:05.123", "day": "2024-01-02", "code": "ab", "product": "Tab\there \"q\" é", "rate": "1"}),
		ins(0, M{"id": "2", "region": "eu", "flag": "t", "shop_id": "1", "amount": "0.25", "qty": "4", "weight": "0.001",
			"light": "NaN", "at": "2024-01-02 03:04:00", "day": "1999-12-31", "rate": "2.5"}),
		ins(0, M{"id": "3", "flag": "f", "shop_id": "2", "weight": "-0"}),
		ins(0, M{"id": "4", "region": "us", "shop_id": "3", "amount": "1234567890.99", "qty": "-7", "weight": "123456789.125"}),
	}
	run(t, q, steps...)
	enc := q.ResultEncoder("q_0123abcd")
	var b strings.Builder
	for _, r := range q.Rows() {
		rc := ResultChange{Key: r.Key, Row: r.Row}
		key, value := enc.EncodeKey(rc), enc.EncodeValue(rc)
		for _, j := range [][]byte{key, value} {
			if !json.Valid(j) {
				t.Errorf("invalid JSON: %s", j)
			}
		}
		b.WriteString("key:   " + string(key) + "\nvalue: " + string(value) + "\n")
	}
	out := run(t, q, del(0, M{"id": "3"}))
	if len(out) != 1 || out[0].Row != nil {
		t.Fatalf("changes %q, want one tombstone", changesText(out))
	}
	if v := enc.EncodeValue(out[0]); v != nil {
		t.Errorf("a tombstone's value is %s, want nil", v)
	}
	b.WriteString("tombstone key: " + string(enc.EncodeKey(out[0])) + "\n")
	golden(t, "result_records.golden", b.String())
}

func TestResultKeyNames(t *testing.T) {
	tests := []struct {
		name, sql string
		key       []string // of the key's group object
		value     []string
	}{
		{"no_group_by", "SELECT count(*) FROM sales", nil, []string{"count"}},
		{"key_outputs_first", "SELECT count(*) AS n, region FROM sales GROUP BY region", []string{"region"}, []string{"region", "n"}},
		{"hidden_keys_numbered_from_one", "SELECT count(*) FROM sales GROUP BY region, flag", []string{"_group_1", "_group_2"}, []string{"_group_1", "_group_2", "count"}},
		{"hidden_key_avoids_taken_name", "SELECT count(*) AS _group_1 FROM sales GROUP BY region", []string{"__group_1"}, []string{"__group_1", "_group_1"}},
		{"key_output_repeated", "SELECT region, region AS r2, count(*) FROM sales GROUP BY region", []string{"region"}, []string{"region", "r2", "count"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQuery(t, tt.sql)
			run(t, q, ins(0, M{"id": "1", "region": "eu", "flag": "t"}))
			enc := q.ResultEncoder("q1")
			r := q.Rows()[0]
			rc := ResultChange{Key: r.Key, Row: r.Row}
			key := enc.EncodeKey(rc)
			wantKey := []string{QueryIDColumn}
			if tt.key != nil {
				wantKey = append(wantKey, "group")
			}
			if got := fieldNames(t, key); strings.Join(got, ",") != strings.Join(wantKey, ",") {
				t.Errorf("key fields %v, want %v", got, wantKey)
			}
			if tt.key != nil {
				var k struct{ Group json.RawMessage }
				if err := json.Unmarshal(key, &k); err != nil {
					t.Fatal(err)
				}
				if got := fieldNames(t, k.Group); strings.Join(got, ",") != strings.Join(tt.key, ",") {
					t.Errorf("key's group fields %v, want %v", got, tt.key)
				}
			}
			if got := fieldNames(t, enc.EncodeValue(rc)); strings.Join(got, ",") != strings.Join(append([]string{QueryIDColumn}, tt.value...), ",") {
				t.Errorf("value fields %v, want query_id then %v", got, tt.value)
			}
		})
	}
}

// fieldNames returns the names of a JSON object's fields in order.
func fieldNames(t *testing.T, obj []byte) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(obj)))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var names []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return names
}

func TestJSONValues(t *testing.T) {
	num := func(s string) Value {
		v, err := ParseValue(sqlplan.TypeOf(sqlplan.KindNumeric), s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	parse := func(k sqlplan.Kind, s string) Value {
		v, err := ParseValue(sqlplan.TypeOf(k), s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		v    Value
		want string
	}{
		{"null", Null, "null"},
		{"integer", IntValue(-42), "-42"},
		{"numeric_plain_with_scale", num("12.50"), "12.50"},
		{"numeric_tiny_plain", num("0.0000001"), "0.0000001"},
		{"numeric_huge_plain", num("1e30"), "1000000000000000000000000000000"},
		{"numeric_nan", num("NaN"), `"NaN"`},
		{"numeric_infinity", num("-Infinity"), `"-Infinity"`},
		{"double_integral", Float8Value(100), "100.0"},
		{"double_large", Float8Value(1e7), "1.0E7"},
		{"double_just_below_large", Float8Value(9999999.5), "9999999.5"},
		{"double_small", Float8Value(0.001), "0.001"},
		{"double_smaller", Float8Value(0.0001), "1.0E-4"},
		{"double_digits", Float8Value(12345678.5), "1.23456785E7"},
		{"double_negative_zero", Float8Value(math.Copysign(0, -1)), "-0.0"},
		{"double_nan", Float8Value(math.NaN()), `"NaN"`},
		{"double_infinity", Float8Value(math.Inf(1)), `"Infinity"`},
		{"real", float4Value(1.1), "1.1"},
		{"real_large", float4Value(1e10), "1.0E10"},
		// Java (JDK 19+) takes the closest decimal of one or two digits.
		{"double_min_subnormal", Float8Value(math.SmallestNonzeroFloat64), "4.9E-324"},
		{"real_min_subnormal", float4Value(math.SmallestNonzeroFloat32), "1.4E-45"},
		{"real_tie_to_even", float4Value(0x1p-12), "2.4414062E-4"},
		{"boolean", BoolValue(true), "true"},
		{"text_escapes", TextValue("a\"b\\c\n\t\x01é"), `"a\"b\\c\n\t\u0001é"`},
		{"char_padding", charValue("ab  "), `"ab  "`},
		{"bytea_base64", Value{k: kindBytes, s: "\x89PNG"}, `"iVBORw=="`},
		{"date", parse(sqlplan.KindDate, "2024-01-02"), `"2024-01-02"`},
		{"date_infinity", parse(sqlplan.KindDate, "infinity"), `"infinity"`},
		{"date_bc_leap_day", parse(sqlplan.KindDate, "0005-02-29 BC"), `"-0004-02-29"`},
		{"timestamp", parse(sqlplan.KindTimestamp, "2024-01-02 03:04:05.1"), `"2024-01-02T03:04:05.1"`},
		{"timestamp_whole_seconds", parse(sqlplan.KindTimestamp, "2024-01-02 03:04:00"), `"2024-01-02T03:04:00"`},
		{"timestamptz", parse(sqlplan.KindTimestamptz, "2024-01-02 03:04:05.123456+00"), `"2024-01-02T03:04:05.123456Z"`},
		{"time", parse(sqlplan.KindTime, "04:05:06.789"), `"04:05:06.789"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(appendJSONValue(nil, tt.v))
			if got != tt.want {
				t.Errorf("JSON %s, want %s", got, tt.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("%s is not valid JSON", got)
			}
		})
	}
}
