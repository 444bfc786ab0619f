package dbzjson_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/dbzjson"
	"github.com/cdcq/cdcq/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// pgCase is one column of the all-types table: its type, a SQL expression
// for the stored value and the JSON Debezium writes for it (the rules and
// their sources are in the unit tests and DEBEZIUM.md).
type pgCase struct {
	name, typ, value, want string
}

var pgCases = []pgCase{
	{"c_smallint", "smallint", "-32768", "-32768"},
	{"c_integer", "integer", "2147483647", "2147483647"},
	{"c_bigint", "bigint", "-9223372036854775808", "-9223372036854775808"},
	{"c_oid", "oid", "4294967295", "4294967295"},
	{"c_real", "real", "1.1", "1.1"},
	{"c_real_small", "real", "1e-5", "1.0E-5"},
	{"c_real_max", "real", "3.4028235e38", "3.4028235E38"},
	{"c_real_nan", "real", "'NaN'", `"NaN"`},
	{"c_double", "double precision", "0.1", "0.1"},
	{"c_double_sci", "double precision", "12345678.5", "1.23456785E7"},
	{"c_double_neg_zero", "double precision", "'-0'", "-0.0"},
	{"c_double_inf", "double precision", "'-Infinity'", `"-Infinity"`},
	{"c_numeric_10_2", "numeric(10,2)", "12345678.9", `"12345678.90"`},
	{"c_numeric", "numeric", "123.4500", `"123.4500"`},
	{"c_numeric_tiny", "numeric", "0.0000001", `"1E-7"`},
	{"c_numeric_nan", "numeric", "'NaN'", `"NAN"`},
	{"c_numeric_inf", "numeric", "'Infinity'", `"POSITIVE_INFINITY"`},
	{"c_decimal", "decimal(5,1)", "-0.5", `"-0.5"`},
	{"c_money", "money", "-1234.56", `"-1234.56"`},
	{"c_boolean", "boolean", "true", "true"},
	{"c_text", "text", `E'line\nbreak "q" \\ é\u0001'`, `"line\nbreak \"q\" \\ é\u0001"`},
	{"c_varchar", "varchar(20)", "'abc'", `"abc"`},
	{"c_char", "char(5)", "'ab'", `"ab   "`},
	{"c_name", "name", "'pg_class'", `"pg_class"`},
	{"c_uuid", "uuid", "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'", `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`},
	{"c_json", "json", `'{"b": 1,  "a": [1, 2]}'`, `"{\"b\": 1,  \"a\": [1, 2]}"`},
	{"c_jsonb", "jsonb", `'{"b": 1,  "a": [1, 2]}'`, `"{\"a\": [1, 2], \"b\": 1}"`},
	{"c_xml", "xml", "'<a>1</a>'", `"<a>1</a>"`},
	{"c_date", "date", "'2017-09-15'", `"2017-09-15Z"`},
	{"c_date_bc", "date", "'0044-03-15 BC'", `"-0043-03-15Z"`},
	{"c_date_inf", "date", "'infinity'", `"+5877611-06-21Z"`},
	{"c_time", "time", "'04:05:11.789'", `"04:05:11.789Z"`},
	{"c_time_24", "time", "'24:00:00'", `"00:00:00Z"`},
	{"c_timetz", "timetz", "'04:05:11 PST'", `"12:05:11Z"`},
	{"c_timetz_half", "time(3) with time zone", "'23:30:00.5+05:30'", `"18:00:00.5Z"`},
	{"c_timestamp", "timestamp", "'2019-07-09 02:28:57'", `"2019-07-09T02:28:57Z"`},
	{"c_timestamp_1", "timestamp(1)", "'2019-07-09 02:28:57.1+01'", `"2019-07-09T02:28:57.1Z"`},
	{"c_timestamp_inf", "timestamp", "'infinity'", `"+292278994-08-16T23:00:00Z"`},
	{"c_timestamptz", "timestamptz", "'2019-07-09 02:28:10.123456+01'", `"2019-07-09T01:28:10.123456Z"`},
	{"c_timestamptz_pad", "timestamptz", "'2020-04-01 11:51:02+00'", `"2020-04-01T11:51:02.000000Z"`},
	{"c_timestamptz_3", "timestamptz(3)", "'2020-04-01 11:51:02.1+00'", `"2020-04-01T11:51:02.100Z"`},
	{"c_timestamptz_0", "timestamptz(0)", "'2020-04-01 11:51:02+00'", `"2020-04-01T11:51:02Z"`},
	{"c_timestamptz_bc", "timestamptz", "'0001-01-01 00:00:00+00 BC'", `"0000-01-01T00:00:00.000000Z"`},
	{"c_timestamptz_ninf", "timestamptz", "'-infinity'", `"-infinity"`},
	{"c_interval", "interval", "'1 year 2 months 3 days 04:05:06.78'", "37091106780000"},
	{"c_interval_neg", "interval", "'-1 day +02:03:00'", "-79020000000"},
	{"c_interval_year", "interval", "'1 year'", "31557600000000"},
	{"c_bytea", "bytea", `'\x89504e47'`, `"iVBORw=="`},
	{"c_bytea_empty", "bytea", `'\x'`, `""`},
	{"c_inet", "inet", "'192.168.0.1/24'", `"192.168.0.1/24"`},
	{"c_cidr", "cidr", "'10.0.0.0/8'", `"10.0.0.0/8"`},
	{"c_macaddr", "macaddr", "'08:00:2b:01:02:03'", `"08:00:2b:01:02:03"`},
	{"c_macaddr8", "macaddr8", "'08:00:2b:01:02:03:04:05'", `"08:00:2b:01:02:03:04:05"`},
	{"c_bit1", "bit(1)", "B'1'", "true"},
	{"c_bit3", "bit(3)", "B'101'", `"BQ=="`},
	{"c_varbit", "varbit", "B'000000110000001000000001'", `"AQID"`},
	{"c_varbit1", "varbit(1)", "B'0'", "false"},
	{"c_enum", "mood", "'happy'", `"happy"`},
	{"c_domain_int", "positive_int", "5", "5"},
	{"c_domain_numeric", "price", "1.5", `"1.50"`},
	{"c_int_array", "integer[]", "ARRAY[1,NULL,3]", "[1,null,3]"},
	{"c_int_matrix", "integer[][]", "'{{1,2},{3,4}}'", "[[1,2],[3,4]]"},
	{"c_text_array", "text[]", `ARRAY['a b','c,d','e"f',NULL,'NULL','',E'g\\h','{x}']`, `["a b","c,d","e\"f",null,"NULL","","g\\h","{x}"]`},
	{"c_char_array", "char(4)[]", "ARRAY['ab','abcd']", `["ab  ","abcd"]`},
	{"c_numeric_array", "numeric(5,2)[]", "ARRAY[1.5,2.25]", `["1.50","2.25"]`},
	{"c_float_array", "float8[]", "ARRAY[1.5,'NaN']", `[1.5,"NaN"]`},
	{"c_bool_array", "boolean[]", "ARRAY[true,false]", "[true,false]"},
	{"c_date_array", "date[]", "ARRAY['2020-04-01'::date]", `["2020-04-01Z"]`},
	{"c_timestamptz_array", "timestamptz[]", "ARRAY['2020-04-01 13:51:02+02'::timestamptz]", `["2020-04-01T11:51:02.000000Z"]`},
	{"c_uuid_array", "uuid[]", "ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid]", `["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]`},
	{"c_jsonb_array", "jsonb[]", `ARRAY['{"a": "x,y"}'::jsonb]`, `["{\"a\": \"x,y\"}"]`},
	{"c_bytea_array", "bytea[]", `ARRAY['\x0102'::bytea, NULL]`, `["AQI=",null]`},
	{"c_enum_array", "mood[]", "ARRAY['happy','sad']::mood[]", `["happy","sad"]`},
	{"c_interval_array", "interval[]", "ARRAY['1 day'::interval]", "[86400000000]"},
	{"c_money_array", "money[]", "ARRAY[1000::money]", `["1000.00"]`},
	{"c_tsvector", "tsvector", "'b a'", `"'a' 'b'"`},
	{"c_int4range", "int4range", "'[1,5)'", `"[1,5)"`},
	{"c_point", "point", "'(1,2)'", `"(1,2)"`},
}

func connect(t *testing.T, dsn, timeZone string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	// The session settings the capture engine uses (see the package doc).
	cfg.RuntimeParams["DateStyle"] = "ISO"
	cfg.RuntimeParams["IntervalStyle"] = "postgres"
	cfg.RuntimeParams["TimeZone"] = timeZone
	cfg.RuntimeParams["extra_float_digits"] = "3"
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func exec(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// loadRelation reads a table's columns from the catalog the way the capture
// engine is expected to fill Column.
func loadRelation(t *testing.T, conn *pgx.Conn, table string) *dbzjson.Relation {
	t.Helper()
	rows, err := conn.Query(context.Background(), `
		SELECT a.attname, a.atttypid::int8, format_type(a.atttypid, a.atttypmod), a.atttypmod,
		       t.typtype, t.typcategory, t.typelem::int8, t.typbasetype::int8, t.typtypmod,
		       COALESCE(a.attnum = ANY(i.indkey), false)
		FROM pg_attribute a
		JOIN pg_type t ON t.oid = a.atttypid
		LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
		WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, table)
	if err != nil {
		t.Fatal(err)
	}
	rel := &dbzjson.Relation{Schema: "public", Table: table}
	for rows.Next() {
		var (
			c                    dbzjson.Column
			oid, elem, base      int64
			typtype, typcategory string
			typmod, domainTypmod int32
		)
		if err := rows.Scan(&c.Name, &oid, &c.TypeName, &typmod, &typtype, &typcategory, &elem, &base, &domainTypmod, &c.Key); err != nil {
			t.Fatal(err)
		}
		c.TypeOID, c.TypeMod, c.Kind = uint32(oid), typmod, 'b'
		switch {
		case typtype == "e":
			c.Kind = 'e'
		case typtype == "d":
			c.Kind, c.BaseOID = 'd', uint32(base)
			if c.TypeMod == -1 {
				c.TypeMod = domainTypmod
			}
		case typcategory == "A" && elem != 0:
			c.Kind, c.ElemOID = 'a', uint32(elem)
		}
		rel.Columns = append(rel.Columns, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return rel
}

// readRow returns the row's values in text format, as pgoutput sends them.
func readRow(t *testing.T, conn *pgx.Conn, sql string) []dbzjson.Value {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatalf("%s: no row (%v)", sql, rows.Err())
	}
	var row []dbzjson.Value
	for _, raw := range rows.RawValues() {
		if raw == nil {
			row = append(row, nil)
			continue
		}
		s := string(raw)
		row = append(row, &s)
	}
	return row
}

func TestAgainstPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	dsn := pgtest.NewDatabase(t)
	conn := connect(t, dsn, "UTC")
	exec(t, conn, `CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`)
	exec(t, conn, `CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0)`)
	exec(t, conn, `CREATE DOMAIN price AS numeric(10,2)`)

	defs := []string{"id integer PRIMARY KEY"}
	names, values := []string{"id"}, []string{"1"}
	for _, c := range pgCases {
		defs = append(defs, c.name+" "+c.typ)
		names = append(names, c.name)
		values = append(values, c.value)
	}
	exec(t, conn, "CREATE TABLE all_types ("+strings.Join(defs, ", ")+")")
	exec(t, conn, "INSERT INTO all_types ("+strings.Join(names, ", ")+") VALUES ("+strings.Join(values, ", ")+")")
	exec(t, conn, "INSERT INTO all_types (id) VALUES (2)")

	rel := loadRelation(t, conn, "all_types")
	enc := dbzjson.NewEncoder(rel)
	src := dbzjson.Source{Name: "env", TsMs: 1, DB: "db"}

	row := readRow(t, conn, "SELECT * FROM all_types WHERE id = 1")
	b, err := enc.Envelope(dbzjson.OpCreate, nil, row, src, 2)
	if err != nil {
		t.Fatal(err)
	}
	var env struct{ After map[string]json.RawMessage }
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	for i, c := range pgCases {
		t.Run(c.name, func(t *testing.T) {
			if got := string(env.After[c.name]); got != c.want {
				t.Errorf("%s %s = %s: PostgreSQL text %q\n got %s\nwant %s", c.typ, c.name, c.value, deref(row[i+1]), got, c.want)
			}
		})
	}
	key, err := enc.Key(row)
	if err != nil || string(key) != `{"id":1}` {
		t.Errorf("key %s, %v", key, err)
	}

	// NULLs of every type are null.
	b, err = enc.Envelope(dbzjson.OpCreate, nil, readRow(t, conn, "SELECT * FROM all_types WHERE id = 2"), src, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	for _, c := range pgCases {
		if got := string(env.After[c.name]); got != "null" {
			t.Errorf("NULL %s: got %s", c.name, got)
		}
	}

	// A session in another time zone prints timestamptz with its offset;
	// the encoded values must not change.
	other := connect(t, dsn, "Asia/Kathmandu")
	b2, err := enc.Envelope(dbzjson.OpCreate, nil, readRow(t, other, "SELECT * FROM all_types WHERE id = 1"), src, 2)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := enc.Envelope(dbzjson.OpCreate, nil, row, src, 2)
	if string(b2) != string(first) {
		t.Errorf("TimeZone changes the output:\n UTC       %s\n Kathmandu %s", first, b2)
	}
}

func deref(v dbzjson.Value) string {
	if v == nil {
		return "NULL"
	}
	return *v
}

// TestTypeOIDs checks the built-in OIDs the encoder relies on against
// pg_type, through the encoder's behaviour: a column declared by OID alone
// (no Kind) must encode like the catalog type.
func TestTypeOIDs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	conn := connect(t, pgtest.NewDatabase(t), "UTC")
	types := []string{"bool", "bytea", "char", "name", "int8", "int2", "int4", "text", "oid", "json", "xml", "box",
		"cidr", "float4", "float8", "macaddr8", "money", "macaddr", "inet", "bpchar", "varchar", "date", "time",
		"timestamp", "timestamptz", "interval", "timetz", "bit", "varbit", "numeric", "uuid", "jsonb"}
	rows, err := conn.Query(context.Background(),
		`SELECT t.typname, t.oid::int8, a.oid::int8 FROM pg_type t JOIN pg_type a ON a.oid = t.typarray WHERE t.typname = ANY($1) ORDER BY 1`, types)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]int64{}
	for rows.Next() {
		var name string
		var oid, arr int64
		if err := rows.Scan(&name, &oid, &arr); err != nil {
			t.Fatal(err)
		}
		got[name] = [2]int64{oid, arr}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := dbzjson.BuiltinTypeOIDs()
	for _, name := range types {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s not in pg_type", name)
			continue
		}
		if w := want[name]; w != [2]uint32{uint32(g[0]), uint32(g[1])} {
			t.Errorf("%s: package has oid %d array %d, pg_type has %d %d", name, w[0], w[1], g[0], g[1])
		}
	}
	if len(want) != len(types) {
		t.Errorf("package knows %d types, test checks %d", len(want), len(types))
	}
}
