package ivm

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cdcq/cdcq/internal/dbzjson"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

// schemaSQL reads id (the key), region and amount of sales.
const schemaSQL = "SELECT region, count(*), sum(amount) FROM sales GROUP BY region"

// salesAltered returns benchSales after edit changed its columns, as the
// capture describes the table after an ALTER TABLE.
func salesAltered(edit func([]dbzjson.Column) []dbzjson.Column) *dbzjson.Relation {
	rel := *benchSales
	rel.Columns = edit(slices.Clone(benchSales.Columns))
	return &rel
}

var (
	salesRenamed = salesAltered(func(cs []dbzjson.Column) []dbzjson.Column {
		cs[1].Name = "area" // RENAME COLUMN region TO area
		return cs
	})
	salesDropped = salesAltered(func(cs []dbzjson.Column) []dbzjson.Column {
		return slices.Delete(cs, 1, 2) // DROP COLUMN region
	})
	salesAdded = salesAltered(func(cs []dbzjson.Column) []dbzjson.Column {
		return append(cs, dbzjson.Column{Name: "note", TypeOID: 25, TypeName: "text", TypeMod: -1, Kind: 'b'})
	})
	salesRetyped = salesAltered(func(cs []dbzjson.Column) []dbzjson.Column {
		cs[1] = dbzjson.Column{Name: "region", TypeOID: 23, TypeName: "integer", TypeMod: -1, Kind: 'b'} // ALTER COLUMN region TYPE integer
		return cs
	})
	salesKeyRenamed = salesAltered(func(cs []dbzjson.Column) []dbzjson.Column {
		cs[0].Name = "sale_id" // RENAME COLUMN id TO sale_id
		return cs
	})
	salesAmountText = salesAltered(func(cs []dbzjson.Column) []dbzjson.Column {
		cs[5] = dbzjson.Column{Name: "amount", TypeOID: 25, TypeName: "text", TypeMod: -1, Kind: 'b'} // ALTER COLUMN amount TYPE text
		return cs
	})
)

// dbzRow gives the values of rel's columns by name; the others are NULL.
func dbzRow(rel *dbzjson.Relation, vals M) []dbzjson.Value {
	row := make([]dbzjson.Value, len(rel.Columns))
	for i, c := range rel.Columns {
		if v, ok := vals[c.Name]; ok {
			row[i] = &v
		}
	}
	return row
}

// salesRecord encodes a record of rel as the capture writes it.
func salesRecord(t testing.TB, rel *dbzjson.Relation, op dbzjson.Op, before, after M) (key, value []byte) {
	t.Helper()
	var b, a []dbzjson.Value
	if before != nil {
		b = dbzRow(rel, before)
	}
	if after != nil {
		a = dbzRow(rel, after)
	}
	keyRow := a
	if keyRow == nil {
		keyRow = b
	}
	key, err := dbzjson.Key(rel, keyRow)
	if err != nil {
		t.Fatal(err)
	}
	value, err = dbzjson.Envelope(rel, op, b, a, dbzjson.Source{Name: "env"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return key, value
}

// withSchemas wraps a record as JsonConverter writes it with
// schemas.enable=true.
func withSchemas(record []byte) []byte {
	if record == nil {
		return nil
	}
	return []byte(`{"schema":{"type":"struct","fields":[{"type":"struct","optional":true,"field":"after"}],"optional":false,"name":"env.public.sales.Envelope"},"payload":` + string(record) + `}`)
}

func TestDecodeSchemaChanges(t *testing.T) {
	plan := compilePlan(t, "unit.prisma", schemaSQL)
	if got := len(plan.Sources[0].Columns); got != 3 {
		t.Fatalf("the plan reads %d columns of sales, want 3 (id, region, amount)", got)
	}
	full := M{"id": "7", "region": "north", "amount": "1.50", "note": "n", "area": "north"}
	keyOnlyBefore := M{"id": "7"}
	raw := func(value string, key ...string) func(t testing.TB) ([]byte, []byte) {
		k := `{"id":7}`
		if len(key) > 0 {
			k = key[0]
		}
		return func(testing.TB) ([]byte, []byte) { return []byte(k), []byte(value) }
	}
	enc := func(rel *dbzjson.Relation, op dbzjson.Op, before, after M) func(t testing.TB) ([]byte, []byte) {
		return func(t testing.TB) ([]byte, []byte) { return salesRecord(t, rel, op, before, after) }
	}
	tests := []struct {
		name   string
		record func(t testing.TB) (key, value []byte)
		// want is the decoded change (describeChange) when the record
		// fits; otherwise col names the column of the *SchemaError and
		// problem is part of its message.
		want, col, problem string
	}{
		{name: "unchanged_table", record: enc(benchSales, dbzjson.OpCreate, nil, full), want: "insert after=(7, north, 1.50)"},
		{name: "renamed_column", record: enc(salesRenamed, dbzjson.OpCreate, nil, full),
			col: "region", problem: "has no field region: the column was renamed or dropped"},
		{name: "renamed_column_update", record: enc(salesRenamed, dbzjson.OpUpdate, nil, full),
			col: "region", problem: "has no field region"},
		{name: "dropped_column", record: enc(salesDropped, dbzjson.OpUpdate, nil, full),
			col: "region", problem: "has no field region"},
		{name: "dropped_column_snapshot_read", record: enc(salesDropped, dbzjson.OpRead, nil, full),
			col: "region", problem: "has no field region"},
		{name: "added_column_is_fine", record: enc(salesAdded, dbzjson.OpUpdate, nil, full), want: "update after=(7, north, 1.50)"},
		{name: "null_field_is_fine", record: enc(benchSales, dbzjson.OpUpdate, nil, M{"id": "7"}), want: "update after=(7)"},
		{name: "delete_key_only_before_is_fine", record: enc(benchSales, dbzjson.OpDelete, keyOnlyBefore, nil), want: "delete before=(7) key=(7)"},
		{name: "delete_key_only_before_of_renamed_table_is_fine", record: enc(salesRenamed, dbzjson.OpDelete, keyOnlyBefore, nil), want: "delete before=(7) key=(7)"},
		{name: "delete_before_with_only_the_key_field_is_fine", record: raw(`{"before":{"id":7},"after":null,"op":"d"}`), want: "delete before=(7) key=(7)"},
		{name: "update_full_before_is_fine", record: enc(benchSales, dbzjson.OpUpdate, full, full), want: "update before=(7) after=(7, north, 1.50)"},
		{name: "update_before_of_renamed_non_key_is_fine", record: raw(`{"before":{"id":7,"area":"x"},"after":{"id":7,"region":"y","amount":1},"op":"u"}`),
			want: "update before=(7) after=(7, y, 1)"},
		{name: "renamed_key_in_after", record: enc(salesKeyRenamed, dbzjson.OpCreate, nil, M{"sale_id": "7", "region": "north"}),
			col: "id", problem: "has no field id"},
		{name: "renamed_key_in_delete_before", record: enc(salesKeyRenamed, dbzjson.OpDelete, M{"sale_id": "7"}, nil),
			col: "id", problem: "has a before image without the key field id"},
		{name: "renamed_key_in_update_before", record: raw(`{"before":{"sale_id":7},"after":{"id":7,"region":"y","amount":1},"op":"u"}`),
			col: "id", problem: "has a before image without the key field id"},
		{name: "renamed_key_in_delete_key", record: func(testing.TB) ([]byte, []byte) {
			return []byte(`{"sale_id":7}`), []byte(`{"before":null,"after":null,"op":"d"}`)
		}, col: "sale_id", problem: "has a key with the field sale_id, which is not in the primary key (id): the table's primary key changed"},
		{name: "key_of_another_primary_key", record: raw(`{"after":{"id":7,"region":"y","amount":"1.00"},"op":"c"}`, `{"id":7,"region":"y"}`),
			col: "region", problem: "has a key with the field region, which is not in the primary key (id)"},
		{name: "numeric_scale_lowered", record: raw(`{"after":{"id":7,"region":"y","amount":"1.5"},"op":"c"}`),
			col: "amount", problem: `has value "1.5" for column amount, which does not read as numeric(12,2)`},
		{name: "text_column_now_integer", record: enc(salesRetyped, dbzjson.OpUpdate, nil, M{"id": "7", "region": "12", "amount": "1"}),
			col: "region", problem: "has value 12 for column region, which does not read as text: the column's type changed?"},
		{name: "numeric_column_now_text", record: enc(salesAmountText, dbzjson.OpUpdate, nil, M{"id": "7", "amount": "abc"}),
			col: "amount", problem: `has value "abc" for column amount, which does not read as numeric(12,2)`},
		{name: "integer_key_now_text", record: raw(`{"after":{"id":"abc","region":"x","amount":1},"op":"c"}`),
			col: "id", problem: `has value "abc" for column id, which does not read as integer`},
		{name: "integer_key_now_text_of_digits", record: raw(`{"after":{"id":"12","region":"x","amount":1},"op":"c"}`),
			col: "id", problem: `has value "12" for column id`},
		{name: "integer_key_now_numeric", record: raw(`{"after":{"id":1.5,"region":"x","amount":1},"op":"c"}`),
			col: "id", problem: `has value 1.5 for column id`},
		{name: "key_type_change_in_delete_before", record: raw(`{"before":{"id":"abc"},"after":null,"op":"d"}`),
			col: "id", problem: `has value "abc" for column id`},
		{name: "long_value_is_cut", record: raw(`{"after":{"id":7,"region":["` + strings.Repeat("é", 40) + `"],"amount":1},"op":"c"}`),
			col: "region", problem: `has value ["` + strings.Repeat("é", 19) + `... for column region`},
	}
	d, err := NewDecoder(plan, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		for _, schemas := range []bool{false, true} {
			name := tt.name
			if schemas {
				name += "/schemas_enabled"
			}
			t.Run(name, func(t *testing.T) {
				key, value := tt.record(t)
				if schemas {
					key, value = withSchemas(key), withSchemas(value)
				}
				ch, err := d.Decode(key, value)
				if tt.col == "" {
					if err != nil {
						t.Fatalf("decode %s: %v", value, err)
					}
					if got := describeChange(ch); got != tt.want {
						t.Errorf("decoded %q, want %q", got, tt.want)
					}
					return
				}
				var se *SchemaError
				if !errors.As(err, &se) {
					t.Fatalf("decode %s: error %v, want a *SchemaError", value, err)
				}
				if se.Column != tt.col || se.Table != "sales" || se.Topic != "public.sales" {
					t.Errorf("SchemaError names %s.%s (topic %s), want sales.%s (topic public.sales)", se.Table, se.Column, se.Topic, tt.col)
				}
				if msg := err.Error(); !strings.HasPrefix(msg, "change record of sales ") || !strings.Contains(msg, tt.problem) {
					t.Errorf("error %q, want one starting %q containing %q", msg, "change record of sales ", tt.problem)
				}
				if ch.Op != OpNone || ch.Before != nil || ch.After != nil || ch.Key != nil {
					t.Errorf("decode returned the change %+v with its error, want none", ch)
				}
			})
		}
	}
}

// TestDecodeSchemaErrorNamesOneColumn checks the error names the first
// missing column, and that the decoder notices any missing column of a
// source wider than a machine word.
func TestDecodeSchemaErrorNamesOneColumn(t *testing.T) {
	const width = 70
	src := sqlplan.Source{Alias: "w", Schema: "audit", Name: "wide", Topic: "audit.wide", PrimaryKey: []string{"c0"}}
	for i := range width {
		src.Columns = append(src.Columns, sqlplan.SourceColumn{Name: "c" + strconv.Itoa(i), Type: sqlplan.TypeOf(sqlplan.KindInteger), Key: i == 0})
	}
	plan := &sqlplan.Plan{Sources: []sqlplan.Source{src}}
	d, err := NewDecoder(plan, 0)
	if err != nil {
		t.Fatal(err)
	}
	after := func(skip ...int) []byte {
		var b strings.Builder
		b.WriteString(`{"op":"c","after":{`)
		for i := width - 1; i >= 0; i-- { // fields in an order other than the plan's
			if slices.Contains(skip, i) {
				continue
			}
			b.WriteString(`"c` + strconv.Itoa(i) + `":` + strconv.Itoa(i) + `,`)
		}
		b.WriteString(`"c0":0}}`) // a duplicate field counts once
		return []byte(b.String())
	}
	ch, err := d.Decode(nil, after())
	if err != nil {
		t.Fatal(err)
	}
	if got := ch.After[69].String(); got != "69" {
		t.Errorf("c69 = %s, want 69", got)
	}
	for _, skip := range [][]int{{69}, {64}, {63}, {1}, {68, 5}} {
		_, err := d.Decode(nil, after(skip...))
		var se *SchemaError
		if !errors.As(err, &se) {
			t.Fatalf("without %v: error %v, want a *SchemaError", skip, err)
		}
		want := "c" + strconv.Itoa(slices.Min(skip))
		if se.Column != want {
			t.Errorf("without %v: the error names %s, want %s", skip, se.Column, want)
		}
		if msg := "change record of audit.wide has no field " + want + ": the column was renamed or dropped"; err.Error() != msg {
			t.Errorf("error %q, want %q", err, msg)
		}
	}
	// Only the key matters in a before image.
	ch, err = d.Decode([]byte(`{"c0":3}`), []byte(`{"op":"d","before":{"c0":3}}`))
	if err != nil || ch.Op != OpDelete {
		t.Fatalf("delete with a key-only before image: %+v, %v", ch, err)
	}
}

// TestDecodeMalformedJSONIsNoSchemaError: a record that is not JSON is
// not a schema change.
func TestDecodeMalformedJSONIsNoSchemaError(t *testing.T) {
	plan := compilePlan(t, "unit.prisma", schemaSQL)
	for _, value := range []string{
		`{"op":"c","after":{"id":7,"region":"x","amount":1`,
		`{"op":"c","after":{"id":7,"region":"x","amount":`,
		`{"op":"c","after":{"id":7,"region":"bad \q escape","amount":1}}`,
		`{"op":"c","after":{"id":7,"region":"x","amount":1}`,
		`{"op":"c","after":{"id":7,"region":"x","amount":1,}}`,
	} {
		_, err := DecodeChange(plan, 0, nil, []byte(value))
		var se *SchemaError
		if err == nil || errors.As(err, &se) {
			t.Errorf("decode %s: error %v, want one that is no *SchemaError", value, err)
		}
	}
}

// TestApplySchemaChange checks that a record of an altered table reaches
// the caller as a *SchemaError through every path that decodes, and that
// nothing of it is applied.
func TestApplySchemaChange(t *testing.T) {
	q := newQuery(t, schemaSQL)
	for id, region := range []string{"north", "south", "north"} {
		key, value := salesRecord(t, benchSales, dbzjson.OpRead, nil, M{"id": strconv.Itoa(id), "region": region, "amount": "1.00"})
		if _, err := q.ApplyRecord(0, key, value); err != nil {
			t.Fatal(err)
		}
	}
	before := rowsText(q)
	// After RENAME COLUMN region TO area, row 0 moves to "east".
	key, value := salesRecord(t, salesRenamed, dbzjson.OpUpdate, nil, M{"id": "0", "area": "east", "amount": "2.00"})
	var se *SchemaError

	ch, err := q.Decode(0, key, value)
	if !errors.As(err, &se) || se.Column != "region" {
		t.Fatalf("Query.Decode: %+v, %v; want a *SchemaError for region", ch, err)
	}
	if ch.Op != OpNone || ch.After != nil {
		t.Errorf("Query.Decode returned the change %+v with its error", ch)
	}

	out, err := q.ApplyRecord(0, key, value)
	var ce *ChangeError
	if !errors.As(err, &ce) || !errors.As(err, &se) || len(out) != 0 {
		t.Fatalf("ApplyRecord: %v, %v; want a *ChangeError wrapping a *SchemaError and no result changes", out, err)
	}

	out, err = q.ApplyTopicRecord("public.sales", key, withSchemas(value))
	if !errors.As(err, &se) || len(out) != 0 {
		t.Fatalf("ApplyTopicRecord: %v, %v; want a *SchemaError and no result changes", out, err)
	}

	if after := rowsText(q); !slices.Equal(after, before) {
		t.Errorf("the result changed from %q to %q", before, after)
	}
	if n := q.Len(0); n != 3 {
		t.Errorf("state holds %d rows, want 3", n)
	}
}

// A table whose primary key was dropped has records without a key.
func TestDecodeRecordWithoutKey(t *testing.T) {
	plan := compilePlan(t, "unit.prisma", schemaSQL)
	d, err := NewDecoder(plan, 0)
	if err != nil {
		t.Fatal(err)
	}
	value := []byte(`{"after":{"id":7,"region":"y","amount":"1.00"},"op":"c"}`)
	for _, key := range [][]byte{[]byte(`null`), withSchemas([]byte(`null`))} {
		_, err := d.Decode(key, value)
		var se *SchemaError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), "has no key: the table's primary key was dropped") {
			t.Errorf("key %s: error %v, want a *SchemaError saying the primary key was dropped", key, err)
		}
	}
}
