package dbzjson

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func arrayCol(arrayOID uint32, typmod int32) Column {
	return Column{Name: "v", TypeOID: arrayOID, TypeName: "t[]", TypeMod: typmod, Kind: 'a', ElemOID: arrayElem[arrayOID]}
}

// docs: PostgreSQL arrays map to ARRAY of the element's mapping
// (PostgresValueConverter builds the element schema from the element type).
func TestArrays(t *testing.T) {
	t.Run("integer", func(t *testing.T) {
		runValueCases(t, arrayCol(1007, -1), []valueCase{
			{"plain", "{1,2,3}", "[1,2,3]"},
			{"empty", "{}", "[]"},
			{"nulls", "{NULL,2,null}", "[null,2,null]"},
			{"lower_bound_decoration", "[0:1]={5,6}", "[5,6]"},
			// Debezium's element converter cannot convert the inner
			// arrays: a null for each (the cluster test saw [null,null]).
			{"two_dimensions", "{{1,2},{3,4}}", "[null,null]"},
			{"one_row", "{{1,2,3}}", "[null]"},
			{"three_dimensions", "{{{1}},{{2}}}", "[null,null]"},
			{"null_inside", "{{1,NULL},{3,4}}", "[null,null]"},
		})
	})
	t.Run("text", func(t *testing.T) {
		runValueCases(t, arrayCol(1009, -1), []valueCase{
			{"quoting", `{a,"b c","d,e","f\"g","h\\i",NULL,"NULL","",é}`,
				`["a","b c","d,e","f\"g","h\\i",null,"NULL","","é"]`},
			{"braces_in_quotes", `{"{x}","}"}`, `["{x}","}"]`},
			{"escape_unquoted", `{a\,b,c\\}`, `["a,b","c\\"]`},
			{"whitespace_around", `{ a , "b" }`, `["a","b"]`},
		})
	})
	t.Run("bpchar", func(t *testing.T) {
		// source (AbstractRecordsProducerTest): char(10)[] keeps padding.
		runValueCases(t, arrayCol(1014, 14), []valueCase{
			{"padded", `{"cone      ","ctwo      "}`, `["cone      ","ctwo      "]`},
		})
	})
	t.Run("numeric", func(t *testing.T) {
		runValueCases(t, arrayCol(1231, -1), []valueCase{
			{"values", "{1.1,2.22,NULL,0.0000001,0.00000000}", `["1.1","2.22",null,"0.0000001","0.00000000"]`},
			// pgjdbc cannot make a BigDecimal of NaN or an infinity: the
			// whole array is null (the cluster test saw it).
			{"nan", "{1.5,NaN}", "null"},
			{"infinity", "{Infinity}", "null"},
			{"minus_infinity", "{-Infinity,1}", "null"},
		})
	})
	t.Run("scalars", func(t *testing.T) {
		runValueCases(t, arrayCol(1000, -1), []valueCase{{"bool", "{t,f,NULL}", "[true,false,null]"}})
		runValueCases(t, arrayCol(1022, -1), []valueCase{{"float8", "{1.5,NaN,-Infinity}", `[1.5,"NaN","-Infinity"]`}})
		runValueCases(t, arrayCol(1021, -1), []valueCase{{"float4", "{1.10000002}", `[1.1]`}})
		runValueCases(t, arrayCol(1016, -1), []valueCase{{"int8", "{9223372036854775807}", `[9223372036854775807]`}})
		runValueCases(t, arrayCol(2951, -1), []valueCase{{"uuid", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", `["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]`}})
		runValueCases(t, arrayCol(3807, -1), []valueCase{{"jsonb", `{"{\"a\": 1}","[]"}`, `["{\"a\": 1}","[]"]`}})
		runValueCases(t, arrayCol(1001, -1), []valueCase{{"bytea", `{"\\x0102",NULL}`, `["AQI=",null]`}})
		// bit[] gets the schema of a bit column, which a list never fits.
		runValueCases(t, arrayCol(1561, 3), []valueCase{{"bit", `{101,001}`, `null`}})
		runValueCases(t, arrayCol(1561, 1), []valueCase{{"bit1", `{1}`, `null`}})
	})
	t.Run("temporal", func(t *testing.T) {
		// Elements are pgjdbc's java.sql objects (jdbc.go; TestJDBCTemporal
		// has the calendar cases).
		runValueCases(t, arrayCol(1182, -1), []valueCase{{"date", "{2020-04-01,infinity}", `["2020-04-01Z","+292278994-08-16Z"]`}})
		// java.sql.Time keeps milliseconds.
		runValueCases(t, arrayCol(1183, -1), []valueCase{{"time", "{00:01:02,01:02:03.5,04:05:06.123456,24:00:00}",
			`["00:01:02Z","01:02:03.5Z","04:05:06.123Z","00:00:00Z"]`}})
		// source: timetz[] elements "11:51:02Z", timestamptz[] elements
		// "2020-04-01T11:51:02.000000Z" (AbstractRecordsProducerTest);
		// Time.toLocalTime drops the fraction (the cluster test saw
		// 04:05:06.5+05:30 as "22:35:06Z").
		runValueCases(t, arrayCol(1270, -1), []valueCase{{"timetz", "{13:51:02+02,04:05:06.5+05:30,24:00:00+00}",
			`["11:51:02Z","22:35:06Z","00:00:00Z"]`}})
		runValueCases(t, arrayCol(1115, -1), []valueCase{{"timestamp", `{"2020-04-01 00:01:02"}`, `["2020-04-01T00:01:02Z"]`}})
		runValueCases(t, arrayCol(1185, -1), []valueCase{{"timestamptz", `{"2020-04-01 11:51:02+00","2020-04-01 14:51:03+02"}`,
			`["2020-04-01T11:51:02.000000Z","2020-04-01T12:51:03.000000Z"]`}})
	})
	t.Run("enum_elements", func(t *testing.T) {
		c := Column{Name: "v", TypeOID: 90011, TypeName: "mood[]", TypeMod: -1, Kind: 'a', ElemOID: 90010, ElemKind: 'e'}
		runValueCases(t, c, []valueCase{
			{"strings", "{happy,sad}", `["happy","sad"]`},
			// The Enum converter fails on a NULL element: the array is
			// null (the cluster test saw it).
			{"null_element", "{happy,NULL}", "null"},
		})
	})
	t.Run("extension_elements", func(t *testing.T) {
		c := Column{Name: "v", TypeOID: 92001, TypeName: "citext[]", TypeMod: -1, Kind: 'a', ElemOID: 92000}
		runValueCases(t, c, []valueCase{{"citext", "{AbC}", `["AbC"]`}})
		h := Column{Name: "v", TypeOID: 93001, TypeName: "hstore[]", TypeMod: -1, Kind: 'a', ElemOID: 93000}
		runValueCases(t, h, []valueCase{{"hstore", `{"\"a\"=>\"1\""}`, `["{\"a\":\"1\"}"]`}})
	})
}

// TestOmittedArrays: array columns Debezium leaves out: the array types
// PostgresValueConverter has no schema for, arrays of domains, arrays of
// types it leaves out.
func TestOmittedArrays(t *testing.T) {
	for name, c := range map[string]Column{
		"money":     arrayCol(791, -1),
		"name":      arrayCol(1003, -1),
		"interval":  arrayCol(1187, -1),
		"varbit":    arrayCol(1563, -1),
		"xml":       arrayCol(143, -1),
		"point":     arrayCol(1017, -1),
		"box":       arrayCol(1020, -1),
		"domain":    {Name: "v", TypeOID: 90021, TypeName: "positive_int[]", TypeMod: -1, Kind: 'a', ElemOID: 90020, ElemKind: 'd'},
		"composite": {Name: "v", TypeOID: 90023, TypeName: "my_row[]", TypeMod: -1, Kind: 'a', ElemOID: 90022},
	} {
		if k := newColumnCodec(c, false).kind; k != kOmit {
			t.Errorf("%s[]: codec kind %d, want omitted", name, k)
		}
	}
}

func TestArrayMalformed(t *testing.T) {
	c := newColumnCodec(arrayCol(1009, -1), false)
	for _, text := range []string{"", "{", "{a", "a}", "{a,}", "{,a}", "{a,,b}", `{"a}`, `{"a"b}`, "{a}x", `{a\`, "{{a},b}", "{a}}", "{}{}", `{a"b}`} {
		if got, err := c.append(nil, text); err == nil {
			t.Errorf("%q: want an error, got %s", text, got)
		}
	}
	ic := newColumnCodec(arrayCol(1007, -1), false)
	if _, err := ic.append(nil, "{1,x}"); err == nil {
		t.Error("integer array with text element: want an error")
	}
}

// quoteArray builds a text[] literal as array_out would, quoting every
// element.
func quoteArray(elems []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for j := 0; j < len(e); j++ {
			if e[j] == '"' || e[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(e[j])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

func TestArrayRoundTrip(t *testing.T) {
	elems := []string{"", "plain", `"quoted"`, `back\slash`, "{braces}", "a,b", " spaced ", "NULL", strings.Repeat(`\"`, 300)}
	got, err := newColumnCodec(arrayCol(1009, -1), false).append(nil, quoteArray(elems))
	if err != nil {
		t.Fatal(err)
	}
	var back []string
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if !reflect.DeepEqual(back, elems) {
		t.Fatalf("round trip\n got %q\nwant %q", back, elems)
	}
}

// FuzzArrayLiteral feeds arbitrary text to the array parser: it must never
// panic, must produce valid JSON when it accepts the text, and must read
// back exactly what a quoted literal holds.
func FuzzArrayLiteral(f *testing.F) {
	for _, s := range []string{"{}", "{1,2}", `{"a\"b",NULL}`, "[0:1]={1,2}", "{{1},{2}}", `{a\,b}`, "{ a , b }", `{"\\x00"}`, "{"} {
		f.Add(s, "x", "y")
	}
	text := newColumnCodec(arrayCol(1009, -1), false)
	ints := newColumnCodec(arrayCol(1007, -1), false)
	bytea := newColumnCodec(arrayCol(1001, -1), false)
	f.Fuzz(func(t *testing.T, literal, a, b string) {
		for _, c := range []*codec{text, ints, bytea} {
			out, err := c.append(nil, literal)
			if err == nil && !json.Valid(out) {
				t.Fatalf("%q: accepted with invalid JSON %q", literal, out)
			}
		}
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			return
		}
		out, err := text.append(nil, quoteArray([]string{a, b}))
		if err != nil {
			t.Fatalf("quoted %q %q: %v", a, b, err)
		}
		var back []string
		if err := json.Unmarshal(out, &back); err != nil || len(back) != 2 || back[0] != a || back[1] != b {
			t.Fatalf("quoted %q %q: got %s (%v)", a, b, out, err)
		}
	})
}
