package ivm

import (
	"slices"
	"strings"
	"testing"

	"github.com/cdcq/cdcq/internal/dbzjson"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

// typedColumn is a column of every type the engine reads, with how
// dbzjson describes it.
type typedColumn struct {
	name string
	typ  sqlplan.Type
	dbz  dbzjson.Column
}

var typedColumns = []typedColumn{
	{"id", sqlplan.TypeOf(sqlplan.KindInteger), dbzjson.Column{TypeOID: 23, TypeName: "integer", TypeMod: -1, Key: true}},
	{"c_int2", sqlplan.TypeOf(sqlplan.KindSmallint), dbzjson.Column{TypeOID: 21, TypeName: "smallint", TypeMod: -1}},
	{"c_int8", sqlplan.TypeOf(sqlplan.KindBigint), dbzjson.Column{TypeOID: 20, TypeName: "bigint", TypeMod: -1}},
	{"c_num", sqlplan.NumericType(12, 2), dbzjson.Column{TypeOID: 1700, TypeName: "numeric(12,2)", TypeMod: 12<<16 | 2 + 4}},
	{"c_numany", sqlplan.TypeOf(sqlplan.KindNumeric), dbzjson.Column{TypeOID: 1700, TypeName: "numeric", TypeMod: -1}},
	{"c_real", sqlplan.TypeOf(sqlplan.KindReal), dbzjson.Column{TypeOID: 700, TypeName: "real", TypeMod: -1}},
	{"c_double", sqlplan.TypeOf(sqlplan.KindDouble), dbzjson.Column{TypeOID: 701, TypeName: "double precision", TypeMod: -1}},
	{"c_bool", sqlplan.TypeOf(sqlplan.KindBoolean), dbzjson.Column{TypeOID: 16, TypeName: "boolean", TypeMod: -1}},
	{"c_text", sqlplan.TypeOf(sqlplan.KindText), dbzjson.Column{TypeOID: 25, TypeName: "text", TypeMod: -1}},
	{"c_varchar", sqlplan.VarcharType(20), dbzjson.Column{TypeOID: 1043, TypeName: "character varying(20)", TypeMod: 24}},
	{"c_char", sqlplan.CharType(4), dbzjson.Column{TypeOID: 1042, TypeName: "character(4)", TypeMod: 8}},
	{"c_uuid", sqlplan.TypeOf(sqlplan.KindUUID), dbzjson.Column{TypeOID: 2950, TypeName: "uuid", TypeMod: -1}},
	{"c_date", sqlplan.TypeOf(sqlplan.KindDate), dbzjson.Column{TypeOID: 1082, TypeName: "date", TypeMod: -1}},
	{"c_ts", sqlplan.TimestampType(6), dbzjson.Column{TypeOID: 1114, TypeName: "timestamp(6) without time zone", TypeMod: 6}},
	{"c_tstz", sqlplan.TimestamptzType(3), dbzjson.Column{TypeOID: 1184, TypeName: "timestamp(3) with time zone", TypeMod: 3}},
	{"c_time", sqlplan.TimeType(sqlplan.NoPrecision), dbzjson.Column{TypeOID: 1083, TypeName: "time without time zone", TypeMod: -1}},
	{"c_bytea", sqlplan.TypeOf(sqlplan.KindBytea), dbzjson.Column{TypeOID: 17, TypeName: "bytea", TypeMod: -1}},
	{"c_jsonb", sqlplan.TypeOf(sqlplan.KindJSONB), dbzjson.Column{TypeOID: 3802, TypeName: "jsonb", TypeMod: -1}},
	{"c_enum", sqlplan.EnumType("public", "mood"), dbzjson.Column{TypeOID: 90001, TypeName: "mood", TypeMod: -1, Kind: 'e'}},
	{"c_interval", sqlplan.TypeOf(sqlplan.KindInterval), dbzjson.Column{TypeOID: 1186, TypeName: "interval", TypeMod: -1}},
}

// typedPlan is a plan whose one source has the typed columns, and the
// relation dbzjson encodes its rows with (plus a column the plan does not
// read).
func typedPlan() (*sqlplan.Plan, *dbzjson.Relation) {
	src := sqlplan.Source{Alias: "t", Schema: "public", Name: "t", Topic: "public.t", PrimaryKey: []string{"id"}}
	rel := &dbzjson.Relation{Schema: "public", Table: "t"}
	for i, c := range typedColumns {
		src.Columns = append(src.Columns, sqlplan.SourceColumn{Name: c.name, Type: c.typ, Nullable: !c.dbz.Key, Key: c.dbz.Key})
		col := c.dbz
		col.Name = c.name
		if col.Kind == 0 {
			col.Kind = 'b'
		}
		rel.Columns = append(rel.Columns, col)
		if i == 3 {
			rel.Columns = append(rel.Columns, dbzjson.Column{Name: "unused", TypeOID: 25, TypeName: "text", TypeMod: -1, Kind: 'b'})
		}
	}
	return &sqlplan.Plan{Sources: []sqlplan.Source{src}}, rel
}

// TestDecodeValues encodes rows from PostgreSQL text with dbzjson (as the
// capture does), decodes them, and checks the values read back as the
// same PostgreSQL text (or, where Debezium's format loses something, what
// is left).
func TestDecodeValues(t *testing.T) {
	plan, rel := typedPlan()
	tests := []struct {
		name, col, text, want string
	}{
		{"integer", "id", "42", ""},
		{"smallint", "c_int2", "-32768", ""},
		{"bigint", "c_int8", "9223372036854775807", ""},
		{"numeric_scale_kept", "c_num", "1234.50", ""},
		{"numeric_zero_with_scale", "c_num", "0.00", ""},
		{"numeric_exponent_form", "c_numany", "0.0000001", ""},
		{"numeric_zero_exponent_form", "c_numany", "0.00000000", ""},
		{"numeric_huge", "c_numany", "-123456789012345678901234567890.123", ""},
		{"numeric_nan", "c_numany", "NaN", ""},
		{"numeric_infinity", "c_numany", "-Infinity", ""},
		{"real", "c_real", "1.1", ""},
		{"real_exponent", "c_real", "1e+07", ""},
		{"real_nan", "c_real", "NaN", ""},
		{"double", "c_double", "12345678.5", ""},
		{"double_negative_zero", "c_double", "-0", ""},
		{"double_tiny", "c_double", "1e-300", ""},
		{"double_infinity", "c_double", "-Infinity", ""},
		{"boolean", "c_bool", "t", ""},
		{"text_escapes", "c_text", "a\"b\\c\n\x01é😀\u2028", ""},
		{"varchar", "c_varchar", "hello", ""},
		{"char_padding_kept", "c_char", "ab  ", ""},
		{"uuid", "c_uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", ""},
		{"date", "c_date", "2024-02-29", ""},
		{"date_bc", "c_date", "0044-03-15 BC", ""},
		{"date_bc_leap_day", "c_date", "0005-02-29 BC", ""}, // 5 BC is year -4
		{"date_infinity", "c_date", "infinity", ""},
		{"timestamp", "c_ts", "2019-07-09 02:28:57.1", ""},
		{"timestamp_micros", "c_ts", "1999-12-31 23:59:59.999999", ""},
		{"timestamp_bc_leap_day", "c_ts", "0005-02-29 12:00:00 BC", ""},
		{"timestamp_minus_infinity", "c_ts", "-infinity", ""},
		{"timestamptz_utc", "c_tstz", "2020-04-01 11:51:02.5+00", ""},
		{"timestamptz_offset", "c_tstz", "2020-04-01 13:51:02+02", "2020-04-01 11:51:02+00"},
		{"time", "c_time", "04:05:11.789", ""},
		{"time_end_of_day_wraps", "c_time", "24:00:00", "00:00:00"}, // Debezium's IsoTime wraps it
		{"bytea", "c_bytea", `\x89504e470d0a`, ""},
		{"enum", "c_enum", "happy", ""},
		{"jsonb_as_its_text", "c_jsonb", `{"a": 1}`, ""},
		{"interval_kept_as_json_text", "c_interval", "1 day", "86400000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row := make([]dbzjson.Value, len(rel.Columns))
			id := "7"
			row[0] = &id
			col := -1
			for i, c := range rel.Columns {
				if c.Name == tt.col {
					col = i
				}
			}
			text := tt.text
			row[col] = &text
			key, err := dbzjson.Key(rel, row)
			if err != nil {
				t.Fatal(err)
			}
			value, err := dbzjson.Envelope(rel, dbzjson.OpCreate, nil, row, dbzjson.Source{Name: "env"}, 1)
			if err != nil {
				t.Fatal(err)
			}
			ch, err := DecodeChange(plan, 0, key, value)
			if err != nil {
				t.Fatalf("decode %s: %v", value, err)
			}
			if ch.Op != OpInsert || len(ch.After) != len(plan.Sources[0].Columns) {
				t.Fatalf("decoded %+v", ch)
			}
			pc := -1
			for i, c := range plan.Sources[0].Columns {
				if c.Name == tt.col {
					pc = i
				}
			}
			want := tt.want
			if want == "" {
				want = tt.text
			}
			if got := ch.After[pc].String(); got != want {
				t.Errorf("read back %q from %s, want %q", got, value, want)
			}
			if got := ch.After[0].String(); got != "7" && pc != 0 {
				t.Errorf("id read back as %q", got)
			}
			for i, v := range ch.After {
				if i != 0 && i != pc && !v.IsNull() {
					t.Errorf("column %s is %v, want NULL", plan.Sources[0].Columns[i].Name, v)
				}
			}
		})
	}
}

// narrowPlan is typedPlan reading only the named columns (and id, its
// key).
func narrowPlan(names ...string) *sqlplan.Plan {
	plan, _ := typedPlan()
	src := &plan.Sources[0]
	cols := src.Columns[:1]
	for _, c := range src.Columns[1:] {
		if slices.Contains(names, c.Name) {
			cols = append(cols, c)
		}
	}
	src.Columns = cols
	return plan
}

func TestDecodeRecords(t *testing.T) {
	plan := narrowPlan("c_int2", "c_text")
	env := func(op, before, after string) []byte {
		return []byte(`{"before":` + before + `,"after":` + after + `,"source":{"version":"x","connector":"postgresql","name":"e","ts_ms":1,"snapshot":"false","db":"d","sequence":"[\"1\",\"2\"]","schema":"public","table":"t","txId":5,"lsn":6,"xmin":null},"op":"` + op + `","ts_ms":1,"transaction":null}`)
	}
	tests := []struct {
		name       string
		key, value []byte
		want       string // op, then before / after / key texts
		err        string
	}{
		{"tombstone", []byte(`{"id":1}`), nil, "none", ""},
		{"create", []byte(`{"id":1}`), env("c", "null", `{"id":1,"c_int2":null,"c_text":"x"}`), "insert after=(1, x)", ""},
		{"snapshot_read_is_insert", []byte(`{"id":1}`), env("r", "null", `{"id":1,"c_int2":null,"c_text":null}`), "insert after=(1)", ""},
		{"update_without_before", nil, env("u", "null", `{"id":2,"c_int2":3,"c_text":null}`), "update after=(2, 3)", ""},
		{"update_before_keeps_only_key", nil, env("u", `{"id":1,"c_int2":9,"c_text":"old"}`, `{"id":2,"c_int2":3,"c_text":null}`), "update before=(1) after=(2, 3)", ""},
		{"delete_key_only_before", []byte(`{"id":4}`), env("d", `{"id":4,"c_text":null}`, "null"), "delete before=(4) key=(4)", ""},
		{"delete_without_before_uses_key", []byte(`{"id":4}`), env("d", "null", "null"), "delete key=(4)", ""},
		{"truncate", nil, []byte(`{"before":null,"after":null,"source":{"table":"t"},"op":"t","ts_ms":1}`), "truncate", ""},
		{"schemas_enabled_payload", []byte(`{"schema":{"type":"struct"},"payload":{"id":8}}`),
			[]byte(`{"schema":{"type":"struct","fields":[{"a":[1,{"b":"}"}]}]},"payload":{"before":{"id":8},"after":null,"op":"d"}}`),
			"delete before=(8) key=(8)", ""},
		{"unknown_fields_and_order", nil, []byte(` { "op" : "c" , "extra" : [1, "2", {"x": null}], "after" : { "zzz": true, "c_text": null, "id" : 5, "c_int2": null } } `), "insert after=(5)", ""},
		{"escaped_field_name", nil, []byte(`{"op":"c","after":{"\u0069d":6,"c_int2":null,"c_te\u0078t":"\u00e9\ud83d\ude00"}}`), "insert after=(6, é😀)", ""},
		{"unavailable_toast_value", nil, env("u", "null", `{"id":1,"c_int2":null,"c_text":"__debezium_unavailable_value"}`), "update after=(1, __debezium_unavailable_value)", ""},
		{"unknown_op", nil, env("x", "null", "null"), "", "unknown op"},
		{"missing_op", nil, []byte(`{"after":{"id":1,"c_int2":null,"c_text":null}}`), "", "no op"},
		{"create_without_after", nil, env("c", "null", "null"), "", "without an after image"},
		{"bad_integer", nil, env("c", "null", `{"id":"x"}`), "", "column id"},
		{"bad_json", nil, []byte(`{"op":"c","after":{"id":1`), "", "JSON"},
		{"delete_without_anything", nil, env("d", "null", "null"), "", "neither"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := DecodeChange(plan, 0, tt.key, tt.value)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := describeChange(ch); got != tt.want {
				t.Errorf("decoded %q, want %q", got, tt.want)
			}
		})
	}
}

// describeChange renders a change with only its non-NULL values.
func describeChange(ch Change) string {
	parts := []string{ch.Op.String()}
	show := func(label string, r Row) {
		if r == nil {
			return
		}
		var vals []string
		for _, v := range r {
			if !v.IsNull() {
				vals = append(vals, v.String())
			}
		}
		parts = append(parts, label+"=("+strings.Join(vals, ", ")+")")
	}
	show("before", ch.Before)
	show("after", ch.After)
	show("key", ch.Key)
	return strings.Join(parts, " ")
}

func TestDecodeAllocations(t *testing.T) {
	plan, rel := typedPlan()
	row := make([]dbzjson.Value, len(rel.Columns))
	for i, s := range []string{"1", "2", "3", "1.50", "x", "2.5", "1.5", "2.5", "t", "some text", "v", "ab  "} {
		s := s
		row[i] = &s
	}
	value, err := dbzjson.Envelope(rel, dbzjson.OpUpdate, nil, row, dbzjson.Source{Name: "env"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDecoder(plan, 0)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := d.Decode(nil, value); err != nil {
			t.Fatal(err)
		}
	})
	// The row itself and one string holding all its text.
	if allocs > 2 {
		t.Errorf("Decode allocates %.0f times per record, want at most 2", allocs)
	}
}
