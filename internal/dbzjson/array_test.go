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
			// Chosen: further dimensions become nested arrays.
			{"two_dimensions", "{{1,2},{3,4}}", "[[1,2],[3,4]]"},
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
			{"values", "{1.1,2.22,NaN,0.00000000}", `["1.1","2.22","NAN","0E-8"]`},
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
		runValueCases(t, arrayCol(1561, 3), []valueCase{{"bit", `{101,001}`, `["BQ==","AQ=="]`}})
		runValueCases(t, arrayCol(791, -1), []valueCase{{"money", `{"$1,000.00"}`, `["1000.00"]`}})
		runValueCases(t, arrayCol(1187, -1), []valueCase{{"interval", `{"1 day",00:00:01}`, `[86400000000,1000000]`}})
	})
	t.Run("temporal", func(t *testing.T) {
		runValueCases(t, arrayCol(1182, -1), []valueCase{{"date", "{2020-04-01,infinity}", `["2020-04-01Z","+5877611-06-21Z"]`}})
		runValueCases(t, arrayCol(1183, -1), []valueCase{{"time", "{00:01:02,01:02:03.5}", `["00:01:02Z","01:02:03.5Z"]`}})
		// source: timetz[] elements "11:51:02Z", timestamptz[] elements
		// "2020-04-01T11:51:02.000000Z" (AbstractRecordsProducerTest).
		runValueCases(t, arrayCol(1270, -1), []valueCase{{"timetz", "{13:51:02+02}", `["11:51:02Z"]`}})
		runValueCases(t, arrayCol(1115, -1), []valueCase{{"timestamp", `{"2020-04-01 00:01:02"}`, `["2020-04-01T00:01:02Z"]`}})
		runValueCases(t, arrayCol(1185, -1), []valueCase{{"timestamptz", `{"2020-04-01 11:51:02+00","2020-04-01 14:51:03+02"}`,
			`["2020-04-01T11:51:02.000000Z","2020-04-01T12:51:03.000000Z"]`}})
	})
	t.Run("box_uses_semicolons", func(t *testing.T) {
		runValueCases(t, arrayCol(1020, -1), []valueCase{{"box", "{(1,1),(0,0);(2,2),(1,1)}", `["(1,1),(0,0)","(2,2),(1,1)"]`}})
	})
	t.Run("enum_elements", func(t *testing.T) {
		c := Column{Name: "v", TypeOID: 90011, TypeName: "mood[]", TypeMod: -1, Kind: 'a', ElemOID: 90010}
		runValueCases(t, c, []valueCase{{"strings", "{happy,sad}", `["happy","sad"]`}})
	})
}

func TestArrayMalformed(t *testing.T) {
	c := newColumnCodec(arrayCol(1009, -1))
	for _, text := range []string{"", "{", "{a", "a}", "{a,}", "{,a}", "{a,,b}", `{"a}`, `{"a"b}`, "{a}x", `{a\`, "{{a},b}", "{a}}", "{}{}", `{a"b}`} {
		if got, err := c.append(nil, text); err == nil {
			t.Errorf("%q: want an error, got %s", text, got)
		}
	}
	ic := newColumnCodec(arrayCol(1007, -1))
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
	got, err := newColumnCodec(arrayCol(1009, -1)).append(nil, quoteArray(elems))
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
	text := newColumnCodec(arrayCol(1009, -1))
	ints := newColumnCodec(arrayCol(1007, -1))
	bytea := newColumnCodec(arrayCol(1001, -1))
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
