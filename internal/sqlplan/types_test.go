package sqlplan

import "testing"

func TestColumnType(t *testing.T) {
	want := map[string]string{
		"id":           "bigint",
		"int":          "integer",
		"smallInt":     "smallint",
		"integer":      "integer",
		"oid":          "oid",
		"bigInt":       "bigint",
		"float":        "double precision",
		"real":         "real",
		"double":       "double precision",
		"decimal":      "numeric(65,30)",
		"decimal102":   "numeric(10,2)",
		"decimalAny":   "numeric",
		"money":        "money",
		"string":       "text",
		"text":         "text",
		"varchar":      "varchar(255)",
		"varcharAny":   "varchar",
		"char":         "char(10)",
		"uuid":         "uuid",
		"bit":          "bit(8)",
		"varbit":       "varbit(16)",
		"xml":          "xml",
		"inet":         "inet",
		"citext":       "citext",
		"boolean":      "boolean",
		"dateTime":     "timestamp(3)",
		"timestamp6":   "timestamp(6)",
		"timestampAny": "timestamp",
		"timestamptz":  "timestamptz(6)",
		"date":         "date",
		"time":         "time(0)",
		"timetz":       "timetz(2)",
		"json":         "jsonb",
		"jsonNative":   "json",
		"jsonb":        "jsonb",
		"bytes":        "bytea",
		"byteA":        "bytea",
		"mood":         "mood",
		"ints":         "integer[]",
		"labels":       "varchar(30)[]",
		"optional":     "numeric(5,1)",
		"tsvector":     "tsvector",
		"interval":     "interval",
		"doubleArray":  "double precision[]",
		"numericMod":   "numeric(7,3)",
	}
	s := loadSchema(t, "types.prisma")
	table, err := s.Table("everything")
	if err != nil {
		t.Fatal(err)
	}
	if len(table.Columns) != len(want) {
		t.Errorf("the schema has %d columns, the test expects %d", len(table.Columns), len(want))
	}
	for _, col := range table.Columns {
		t.Run(col.FieldName, func(t *testing.T) {
			typ, err := ColumnType(s, col)
			if err != nil {
				t.Fatal(err)
			}
			if got := typ.String(); got != want[col.FieldName] {
				t.Errorf("ColumnType = %s, want %s", got, want[col.FieldName])
			}
		})
	}
}

func TestType_kinds(t *testing.T) {
	if !TypeOf(KindSmallint).IsInteger() || TypeOf(KindNumeric).IsInteger() || !TypeOf(KindNumeric).IsNumeric() {
		t.Error("integer and numeric predicates")
	}
	if ArrayType(TypeOf(KindInteger)).IsNumeric() {
		t.Error("an array of integers is not a number")
	}
	if got := NumericType(10, 2).Base(); got != TypeOf(KindNumeric) {
		t.Errorf("Base of numeric(10,2) = %s", got)
	}
	if got := EnumType("auth", "Status").String(); got != `auth."Status"` {
		t.Errorf("enum in a schema = %s", got)
	}
	if got := CharType(NoPrecision).String(); got != "bpchar" {
		t.Errorf("char without length = %s", got)
	}
}

func TestQuoteIdent(t *testing.T) {
	for in, want := range map[string]string{
		"orders": "orders",
		"Order":  `"Order"`,
		"a_1":    "a_1",
		"1a":     `"1a"`,
		"has sp": `"has sp"`,
		`qu"ote`: `"qu""ote"`,
		"":       `""`,
		"_x$":    "_x$",
	} {
		if got := QuoteIdent(in); got != want {
			t.Errorf("QuoteIdent(%q) = %s, want %s", in, got, want)
		}
	}
}
