package dbzjson

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// The expected JSON in these tables is what Debezium's PostgreSQL connector
// (3.1+, decimal.handling.mode=string, time.precision.mode=isostring,
// binary.handling.mode=base64) and Kafka's JsonConverter
// (schemas.enable=false) write for the given PostgreSQL text output.
// "docs" is the connector documentation (debezium.io, postgresql.adoc in
// debezium/debezium), "source" names the upstream class or test that shows
// the rule; DEBEZIUM.md has the full list.

type valueCase struct {
	name string
	text string
	want string // JSON
}

func col(oid uint32, typmod int32) Column {
	return Column{Name: "v", TypeOID: oid, TypeName: "t", TypeMod: typmod, Kind: 'b'}
}

func runValueCases(t *testing.T, c Column, cases []valueCase) {
	t.Helper()
	codec := newColumnCodec(c, false)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := codec.append(nil, tc.text)
			if err != nil {
				t.Fatalf("encode %q: %v", tc.text, err)
			}
			if string(got) != tc.want {
				t.Fatalf("encode %q\n got %s\nwant %s", tc.text, got, tc.want)
			}
			if !json.Valid(got) {
				t.Fatalf("encode %q: invalid JSON %s", tc.text, got)
			}
		})
	}
}

func TestIntegers(t *testing.T) {
	// docs: SMALLINT INT16, INTEGER INT32, BIGINT INT64 — JSON numbers.
	t.Run("smallint", func(t *testing.T) {
		runValueCases(t, col(oidInt2, -1), []valueCase{
			{"max", "32767", "32767"},
			{"min", "-32768", "-32768"},
			{"zero", "0", "0"},
		})
	})
	t.Run("integer", func(t *testing.T) {
		runValueCases(t, col(oidInt4, -1), []valueCase{
			{"min", "-2147483648", "-2147483648"},
			{"max", "2147483647", "2147483647"},
		})
	})
	t.Run("bigint", func(t *testing.T) {
		runValueCases(t, col(oidInt8, -1), []valueCase{
			{"max", "9223372036854775807", "9223372036854775807"},
			{"min", "-9223372036854775808", "-9223372036854775808"},
		})
	})
	t.Run("oid", func(t *testing.T) {
		// docs: OID maps to INT64, so the whole unsigned range fits.
		runValueCases(t, col(oidOID, -1), []valueCase{
			{"max", "4294967295", "4294967295"},
			{"small", "16384", "16384"},
		})
	})
}

func TestBoolean(t *testing.T) {
	// docs: BOOLEAN maps to BOOLEAN.
	runValueCases(t, col(oidBool, -1), []valueCase{
		{"true", "t", "true"},
		{"false", "f", "false"},
	})
}

func TestReal(t *testing.T) {
	// docs: REAL maps to FLOAT32; JsonConverter writes it with Jackson,
	// i.e. Java's Float.toString, and NaN/Infinity as strings
	// (QUOTE_NON_NUMERIC_NUMBERS).
	runValueCases(t, col(oidFloat4, -1), []valueCase{
		{"extra_float_digits_3", "1.10000002", "1.1"},
		{"shortest_text", "1.1", "1.1"},
		{"tenth", "0.100000001", "0.1"},
		{"whole", "100", "100.0"},
		{"plain_upper_bound", "1234567", "1234567.0"},
		{"scientific_from_1e7", "1e+07", "1.0E7"},
		{"small", "9.99999975e-06", "1.0E-5"},
		{"plain_lower_bound", "0.00100000005", "0.001"},
		{"max", "3.40282347e+38", "3.4028235E38"},
		{"min_subnormal", "1.40129846e-45", "1.4E-45"},
		// 2^-12 lies halfway between the two closest 8-digit decimals;
		// Java takes the even one.
		{"tie_to_even", "0.000244140625", "2.4414062E-4"},
		{"negative", "-2.5", "-2.5"},
		{"negative_zero", "-0", "-0.0"},
		{"nan", "NaN", `"NaN"`},
		{"infinity", "Infinity", `"Infinity"`},
		{"minus_infinity", "-Infinity", `"-Infinity"`},
	})
}

func TestDoublePrecision(t *testing.T) {
	// docs: DOUBLE PRECISION maps to FLOAT64; Java's Double.toString.
	runValueCases(t, col(oidFloat8, -1), []valueCase{
		{"tenth", "0.10000000000000001", "0.1"},
		{"third", "0.333333333333333315", "0.3333333333333333"},
		{"fraction", "1234567.125", "1234567.125"},
		{"scientific", "12345678.5", "1.23456785E7"},
		{"big", "1e+100", "1.0E100"},
		{"thousandth", "0.001", "0.001"},
		{"ten_thousandth", "0.0001", "1.0E-4"},
		{"min_subnormal", "4.94065645841246544e-324", "4.9E-324"},
		{"max", "1.79769313486231571e+308", "1.7976931348623157E308"},
		{"zero", "0", "0.0"},
		{"nan", "NaN", `"NaN"`},
		{"infinity", "Infinity", `"Infinity"`},
		{"minus_infinity", "-Infinity", `"-Infinity"`},
	})
}

func TestNumeric(t *testing.T) {
	// docs (decimal types): with decimal.handling.mode=string NUMERIC and
	// DECIMAL are STRING; NaN is "the string constant NAN". source:
	// SpecialValueDecimal.fromLogical writes BigDecimal.toPlainString (never
	// scientific notation; Debezium 3.6.1 on the cluster writes 0.0000001
	// as "0.0000001"), and the special values by name (POSITIVE_INFINITY,
	// NEGATIVE_INFINITY).
	t.Run("numeric_10_2", func(t *testing.T) {
		runValueCases(t, col(oidNumeric, 10<<16|2+4), []valueCase{
			{"scale_kept", "12345678.90", `"12345678.90"`},
			{"negative", "-0.50", `"-0.50"`},
			{"zero", "0.00", `"0.00"`},
		})
	})
	t.Run("numeric_unconstrained", func(t *testing.T) {
		runValueCases(t, col(oidNumeric, -1), []valueCase{
			{"trailing_zeros_kept", "123.4500", `"123.4500"`},
			{"integer", "42", `"42"`},
			{"long", "123456789012345678901234567890.123456789", `"123456789012345678901234567890.123456789"`},
			{"small_plain", "0.000001", `"0.000001"`},
			{"small_plain_two_digits", "0.0000012", `"0.0000012"`},
			{"small_stays_plain", "0.0000001", `"0.0000001"`},
			{"small_negative_stays_plain", "-0.00000012", `"-0.00000012"`},
			{"zero_with_big_scale", "0.00000000", `"0.00000000"`},
			{"big", "100000000000000000000", `"100000000000000000000"`},
			{"nan", "NaN", `"NAN"`},
			{"infinity", "Infinity", `"POSITIVE_INFINITY"`},
			{"minus_infinity", "-Infinity", `"NEGATIVE_INFINITY"`},
		})
	})
}

func TestMoney(t *testing.T) {
	// docs: MONEY is STRING with decimal.handling.mode=string. source:
	// PostgresMoney drops the currency symbol and group separators, and
	// convertMoney writes BigDecimal.toPlainString.
	runValueCases(t, col(oidMoney, -1), []valueCase{
		{"grouped", "$1,234.56", `"1234.56"`},
		{"negative", "-$0.50", `"-0.50"`},
		{"zero", "$0.00", `"0.00"`},
		{"min", "-$92,233,720,368,547,758.08", `"-92233720368547758.08"`},
	})
}

func TestStrings(t *testing.T) {
	// docs: CHAR, VARCHAR, TEXT map to STRING; JsonConverter escapes as
	// Jackson does (short escapes, \u00XX for other control characters,
	// UTF-8 as is).
	t.Run("text", func(t *testing.T) {
		runValueCases(t, col(oidText, -1), []valueCase{
			{"plain", "hello", `"hello"`},
			{"quote_and_backslash", `a"b\c`, `"a\"b\\c"`},
			{"short_escapes", "\b\t\n\f\r", `"\b\t\n\f\r"`},
			{"control", "\x01\x1f", `"\u0001\u001F"`},
			// Jackson's UTF8JsonGenerator escapes a character outside the
			// BMP as its surrogate pair (the cluster test saw "\uD83D\uDE00").
			{"unicode", "zürich ✓ 😀", `"zürich ✓ \uD83D\uDE00"`},
			{"line_separator_raw", "\u2028", "\"\u2028\""},
			{"supplementary_only", "𝄞", `"\uD834\uDD1E"`},
			{"slash_and_html", "</a>&", `"</a>&"`},
			{"empty", "", `""`},
		})
	})
	t.Run("bpchar", func(t *testing.T) {
		// docs: CHAR[(M)] is STRING; the padding PostgreSQL outputs stays.
		runValueCases(t, col(oidBPChar, 9), []valueCase{
			{"padded", "ab   ", `"ab   "`},
		})
	})
	t.Run("varchar", func(t *testing.T) {
		runValueCases(t, col(oidVarchar, 24), []valueCase{{"plain", "abc", `"abc"`}})
	})
}

// TestName: the snapshot reads a name column through JDBC (VARCHAR, a
// string); the streamed value goes through pgoutput's value resolver,
// which has no case for name and yields null (the cluster test saw both).
func TestName(t *testing.T) {
	runValueCases(t, col(oidName, -1), []valueCase{{"streamed", "pg_class", "null"}})
	got, err := newColumnCodec(col(oidName, -1), true).append(nil, "pg_class")
	if err != nil || string(got) != `"pg_class"` {
		t.Errorf("snapshot name = %s, %v", got, err)
	}
	dom := Column{Name: "v", TypeOID: 90005, TypeName: "name_d", TypeMod: -1, Kind: 'd', BaseOID: oidName}
	runValueCases(t, dom, []valueCase{{"domain_streamed", "x", "null"}})
}

func TestStringLikeTypes(t *testing.T) {
	cases := []struct {
		name string
		oid  uint32
		text string
		want string
	}{
		// docs: UUID is STRING (io.debezium.data.Uuid).
		{"uuid", oidUUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`},
		// docs: JSON, JSONB are STRING (io.debezium.data.Json): the document as text.
		{"json", oidJSON, `{"a": [1, 2.50]}`, `"{\"a\": [1, 2.50]}"`},
		{"jsonb", oidJSONB, `{"a": [1, 2.50]}`, `"{\"a\": [1, 2.50]}"`},
		// docs: XML is STRING (io.debezium.data.Xml).
		{"xml", oidXML, `<a b="c">d</a>`, `"<a b=\"c\">d</a>"`},
		// docs (network address types): INET, CIDR, MACADDR, MACADDR8 are STRING.
		{"inet", oidInet, "192.168.0.1/24", `"192.168.0.1/24"`},
		{"cidr", oidCIDR, "10.0.0.0/8", `"10.0.0.0/8"`},
		{"macaddr", oidMacaddr, "08:00:2b:01:02:03", `"08:00:2b:01:02:03"`},
		{"macaddr8", oidMacaddr8, "08:00:2b:01:02:03:04:05", `"08:00:2b:01:02:03:04:05"`},
		// docs: TSVECTOR and the range types are STRING.
		{"tsvector", oidTSVector, "'a' 'b'", `"'a' 'b'"`},
		{"int4range", oidInt4Range, "[1,5)", `"[1,5)"`},
		{"tstzrange", oidTSTZRange, `["2020-01-01 00:00:00+00",)`, `"[\"2020-01-01 00:00:00+00\",)"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runValueCases(t, col(tc.oid, -1), []valueCase{{tc.name, tc.text, tc.want}})
		})
	}
}

func TestEnumAndDomain(t *testing.T) {
	// docs: ENUM is STRING (io.debezium.data.Enum).
	runValueCases(t, Column{Name: "v", TypeOID: 90001, TypeName: "mood", TypeMod: -1, Kind: 'e'},
		[]valueCase{{"enum", "happy", `"happy"`}})
	// docs (domain types): a domain is represented by its base type.
	runValueCases(t, Column{Name: "v", TypeOID: 90002, TypeName: "positive_int", TypeMod: -1, Kind: 'd', BaseOID: oidInt4},
		[]valueCase{{"domain_over_integer", "7", "7"}})
	runValueCases(t, Column{Name: "v", TypeOID: 90003, TypeName: "price", TypeMod: 10<<16 | 2 + 4, Kind: 'd', BaseOID: oidNumeric},
		[]valueCase{{"domain_over_numeric", "1.50", `"1.50"`}})
	runValueCases(t, Column{Name: "v", TypeOID: 90004, TypeName: "int_list", TypeMod: -1, Kind: 'd', BaseOID: 1007},
		[]valueCase{{"domain_over_integer_array", "{1,2}", `[1,2]`}})
}

// TestOmittedTypes: Debezium leaves out a column whose type it has no
// schema for (include.unknown.datatypes=false): built-in types outside
// PostgresValueConverter's and JDBC's lists, and types of extensions it
// does not know by name. The cluster test saw each of these missing.
func TestOmittedTypes(t *testing.T) {
	for name, c := range map[string]Column{
		"box":         col(oidBox, -1),
		"circle":      col(718, -1),
		"line":        col(628, -1),
		"lseg":        col(601, -1),
		"path":        col(602, -1),
		"polygon":     col(604, -1),
		"pg_lsn":      col(3220, -1),
		"tsquery":     col(3615, -1),
		"xid":         col(28, -1),
		"xid8":        col(5069, -1),
		"cid":         col(29, -1),
		"tid":         col(27, -1),
		"regclass":    col(2205, -1),
		"regtype":     col(2206, -1),
		"jsonpath":    col(4072, -1),
		"aclitem":     col(1033, -1),
		"pg_snapshot": col(5038, -1),
		"txid_snap":   col(2970, -1),
		"isbn13":      {Name: "v", TypeOID: 91000, TypeName: "isbn13", TypeMod: -1, Kind: 'b'},
		"composite":   {Name: "v", TypeOID: 91001, TypeName: "my_row", TypeMod: -1, Kind: 'b'},
	} {
		if k := newColumnCodec(c, false).kind; k != kOmit {
			t.Errorf("%s: codec kind %d, want omitted", name, k)
		}
	}
}

// TestVectorTypes: int2vector and oidvector have element types, so
// Debezium takes them for arrays, and pgjdbc's PgArray finds no elements in
// their text (the cluster test saw "1 2" as []).
func TestVectorTypes(t *testing.T) {
	runValueCases(t, col(oidInt2Vector, -1), []valueCase{{"int2vector", "1 2", "[]"}})
	runValueCases(t, col(oidOIDVector, -1), []valueCase{{"oidvector", "1 2", "[]"}})
}

// TestExtensionTypes: the extension types Debezium knows by name.
func TestExtensionTypes(t *testing.T) {
	ext := func(name string) Column {
		return Column{Name: "v", TypeOID: 92000, TypeName: name, TypeMod: -1, Kind: 'b'}
	}
	runValueCases(t, ext("citext"), []valueCase{{"citext", "AbC", `"AbC"`}})
	runValueCases(t, ext("public.citext"), []valueCase{{"qualified", "AbC", `"AbC"`}})
	runValueCases(t, ext("ltree"), []valueCase{{"ltree", "a.b.c", `"a.b.c"`}})
	runValueCases(t, ext("isbn"), []valueCase{{"isbn", "978-0-393-04002-9", `"978-0-393-04002-9"`}})
}

func TestPoint(t *testing.T) {
	// source: POINT is io.debezium.data.geometry.Point, the struct {x, y,
	// wkb, srid}; Point.createValue builds the little-endian WKB point.
	// The cluster test saw (1,2), (1.5,-0.1) and (1e300,-1e-300).
	runValueCases(t, col(oidPoint, -1), []valueCase{
		{"integers", "(1,2)", `{"x":1.0,"y":2.0,"wkb":"AQEAAAAAAAAAAADwPwAAAAAAAABA","srid":null}`},
		{"fractions", "(1.5,-0.1)", `{"x":1.5,"y":-0.1,"wkb":"AQEAAAAAAAAAAAD4P5qZmZmZmbm/","srid":null}`},
		{"exponents", "(1e+300,-1e-300)", `{"x":1.0E300,"y":-1.0E-300,"wkb":"AQEAAACcdQCIPOQ3flnz+MIfbqWB","srid":null}`},
	})
}

func TestHstore(t *testing.T) {
	// source: hstore.handling.mode=json writes the JSON text of pgjdbc's
	// HStoreConverter map (a HashMap) as Jackson's generator writes it;
	// the cluster test saw "a"=>"1", "b"=>NULL as {"a":"1","b":null}.
	c := Column{Name: "v", TypeOID: 93000, TypeName: "hstore", TypeMod: -1, Kind: 'b'}
	runValueCases(t, c, []valueCase{
		{"null_value", `"a"=>"1", "b"=>NULL`, `"{\"a\":\"1\",\"b\":null}"`},
		{"empty", ``, `"{}"`},
		{"escapes", `"q\"uote"=>"back\\slash", "nl"=>"x
y"`, `"{\"q\\\"uote\":\"back\\\\slash\",\"nl\":\"x\\ny\"}"`},
		// Supplementary characters are raw in the inner JSON and escaped
		// in the outer string.
		{"emoji", `"k"=>"😀"`, `"{\"k\":\"\uD83D\uDE00\"}"`},
	})
	// HashMap iteration orders, as Java 17 prints them for maps filled in
	// this order.
	for _, tc := range []struct{ keys, want string }{
		{"b a", "a b"},
		{"k1 k2 k3 k10 k11 k12 k13 k14 k15 k16 k17 k18 k19", "k1 k2 k3 k11 k10 k13 k12 k15 k14 k17 k16 k19 k18"},
		{"Aa BB z 😀 é key x", "Aa BB 😀 x é z key"},
		{"0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25",
			"22 23 24 25 10 11 12 13 14 15 16 17 18 19 0 1 2 3 4 5 6 7 8 9 20 21"},
	} {
		var pairs []hstorePair
		for _, k := range strings.Fields(tc.keys) {
			pairs = append(pairs, hstorePair{key: k})
		}
		var got []string
		for _, p := range javaHashMapOrder(pairs) {
			got = append(got, p.key)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("HashMap order of %s: got %s, want %s", tc.keys, strings.Join(got, " "), tc.want)
		}
	}
}

func TestBytea(t *testing.T) {
	// docs: BYTEA with binary.handling.mode=base64 is a base64 STRING;
	// Debezium supports bytea_output=hex only.
	runValueCases(t, col(oidBytea, -1), []valueCase{
		{"empty", `\x`, `""`},
		{"one_byte", `\x01`, `"AQ=="`},
		{"three_bytes", `\xdeadbe`, `"3q2+"`},
		{"upper_hex", `\xDEADBEEF`, `"3q2+7w=="`},
		{"text_bytes", `\x68656c6c6f`, `"aGVsbG8="`},
	})
	// 2000 bytes cross the encoder's 768-byte chunks; the standard library
	// is the oracle.
	long := `\x` + strings.Repeat("00ff", 1000)
	got, err := newScalarCodec(oidBytea, -1, "bytea", pathStream).append(nil, long)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"` + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0, 0xff}, 1000)) + `"`; string(got) != want {
		t.Fatalf("long bytea:\n got %.60s...\nwant %.60s...", got, want)
	}
}

func TestBits(t *testing.T) {
	// docs: BIT(1) is BOOLEAN; BIT(>1) and BIT VARYING are
	// io.debezium.data.Bits, bytes in little-endian order. source
	// (AbstractRecordsProducerTest): b'11' in bit(2) is {3}, b'1000000' in
	// bit(7) is {64}, b'00' in varbit(2) is {}, the 24 bits 0x030201 are
	// {1,2,3}; varbit(1) is BOOLEAN too (PostgresValueConverter).
	runValueCases(t, col(oidBit, 1), []valueCase{
		{"bit1_one", "1", "true"},
		{"bit1_zero", "0", "false"},
	})
	runValueCases(t, col(oidVarbit, 1), []valueCase{
		{"varbit1_one", "1", "true"},
		// Integer.valueOf("", 2) fails: null (the cluster test saw it).
		{"varbit1_empty", "", "null"},
	})
	runValueCases(t, col(oidBit, 2), []valueCase{{"bit2", "11", `"Aw=="`}})                               // {3}
	runValueCases(t, col(oidBit, 7), []valueCase{{"bit7", "1000000", `"QA=="`}})                          // {64}
	runValueCases(t, col(oidVarbit, 2), []valueCase{{"varbit_zero", "00", `""`}})                         // {}
	runValueCases(t, col(oidVarbit, 24), []valueCase{{"varbit24", "000000110000001000000001", `"AQID"`}}) // {1,2,3}
	runValueCases(t, col(oidVarbit, -1), []valueCase{
		// bit 63 set: {0,0,0,0,0,0,0,-128}
		{"varbit_long", "1" + strings.Repeat("0", 63), `"AAAAAAAAAIA="`},
	})
}
