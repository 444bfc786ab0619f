package sourceschema

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cdcq/cdcq/internal/sqlplan"
)

func TestNameString(t *testing.T) {
	for _, tt := range []struct {
		name Name
		want string
	}{
		{Name{"public", "orders"}, "orders"},
		{Name{"", "orders"}, "orders"},
		{Name{"shop", "orders"}, "shop.orders"},
	} {
		if got := tt.name.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestReadTypes(t *testing.T) {
	conn := newConn(t,
		`CREATE SCHEMA shop`,
		`CREATE TYPE shop.state AS ENUM ('new', 'paid', 'void')`,
		`CREATE DOMAIN price AS numeric(10,2) NOT NULL CHECK (VALUE >= 0)`,
		`CREATE DOMAIN int_list AS integer[]`,
		`CREATE DOMAIN price2 AS price`,
		`CREATE TABLE shop.all_types (
			dropped_first int,
			a smallint, b integer NOT NULL, c bigint,
			d numeric, e numeric(12,2), f numeric(3,-1),
			g real, h double precision, i boolean, j text,
			k varchar, l varchar(40), m char, n char(10), o bpchar,
			p uuid, q date,
			r timestamp, s timestamp(3), tz timestamptz(0), u time, v timetz(2), w interval, w2 interval day to second(2),
			x json, y jsonb, z bytea,
			en shop.state, ens shop.state[],
			dom price, dom2 price2, domarr price[], arrdom int_list,
			ints int[], v20 varchar(20)[],
			ip inet, bits bit(8), vb bit varying(4), cash money,
			gen bigint GENERATED ALWAYS AS (c * 2) STORED,
			PRIMARY KEY (c, a)
		)`,
		`ALTER TABLE shop.all_types DROP COLUMN dropped_first`,
		`ALTER TABLE shop.all_types REPLICA IDENTITY FULL`,
		`CREATE TABLE empty ()`,
	)
	db, err := Read(context.Background(), conn, []Name{{"shop", "all_types"}, {"public", "empty"}, {"public", "missing"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(db) != 2 || db[Name{"public", "missing"}] != nil {
		t.Fatalf("read %d tables: %v", len(db), db)
	}
	if e := db[Name{"public", "empty"}]; e == nil || len(e.Columns) != 0 || len(e.PrimaryKey) != 0 || e.ReplicaIdentity != 'd' {
		t.Errorf("empty = %+v", e)
	}
	tab := db[Name{"shop", "all_types"}]
	if tab == nil {
		t.Fatal("shop.all_types not read")
	}
	if tab.Name != (Name{"shop", "all_types"}) || tab.OID == 0 || tab.ReplicaIdentity != 'f' {
		t.Errorf("table = %v oid %d replica identity %c", tab.Name, tab.OID, tab.ReplicaIdentity)
	}
	if !slices.Equal(tab.PrimaryKey, []string{"c", "a"}) {
		t.Errorf("primary key = %v, want [c a] (key order)", tab.PrimaryKey)
	}
	np := sqlplan.NoPrecision
	price := sqlplan.NumericType(10, 2)
	wantTypes := []struct {
		name     string
		typ      sqlplan.Type
		typeName string
		notNull  bool
	}{
		{"a", sqlplan.TypeOf(sqlplan.KindSmallint), "smallint", true},
		{"b", sqlplan.TypeOf(sqlplan.KindInteger), "integer", true},
		{"c", sqlplan.TypeOf(sqlplan.KindBigint), "bigint", true},
		{"d", sqlplan.TypeOf(sqlplan.KindNumeric), "numeric", false},
		{"e", sqlplan.NumericType(12, 2), "numeric(12,2)", false},
		{"f", sqlplan.NumericType(3, -1), "numeric(3,-1)", false},
		{"g", sqlplan.TypeOf(sqlplan.KindReal), "real", false},
		{"h", sqlplan.TypeOf(sqlplan.KindDouble), "double precision", false},
		{"i", sqlplan.TypeOf(sqlplan.KindBoolean), "boolean", false},
		{"j", sqlplan.TypeOf(sqlplan.KindText), "text", false},
		{"k", sqlplan.VarcharType(np), "character varying", false},
		{"l", sqlplan.VarcharType(40), "character varying(40)", false},
		{"m", sqlplan.CharType(1), "character(1)", false},
		{"n", sqlplan.CharType(10), "character(10)", false},
		{"o", sqlplan.CharType(np), "bpchar", false},
		{"p", sqlplan.TypeOf(sqlplan.KindUUID), "uuid", false},
		{"q", sqlplan.TypeOf(sqlplan.KindDate), "date", false},
		{"r", sqlplan.TimestampType(np), "timestamp without time zone", false},
		{"s", sqlplan.TimestampType(3), "timestamp(3) without time zone", false},
		{"tz", sqlplan.TimestamptzType(0), "timestamp(0) with time zone", false},
		{"u", sqlplan.TimeType(np), "time without time zone", false},
		{"v", sqlplan.TimetzType(2), "time(2) with time zone", false},
		{"w", sqlplan.TypeOf(sqlplan.KindInterval), "interval", false},
		{"w2", sqlplan.TypeOf(sqlplan.KindInterval), "interval day to second(2)", false},
		{"x", sqlplan.TypeOf(sqlplan.KindJSON), "json", false},
		{"y", sqlplan.TypeOf(sqlplan.KindJSONB), "jsonb", false},
		{"z", sqlplan.TypeOf(sqlplan.KindBytea), "bytea", false},
		{"en", sqlplan.EnumType("shop", "state"), "shop.state", false},
		{"ens", sqlplan.ArrayType(sqlplan.EnumType("shop", "state")), "shop.state[]", false},
		// A domain is its base type with the domain's modifier and NOT
		// NULL; an array's domain elements do not make it NOT NULL.
		{"dom", price, "price", true},
		{"dom2", price, "price2", true},
		{"domarr", sqlplan.ArrayType(price), "price[]", false},
		{"arrdom", sqlplan.ArrayType(sqlplan.TypeOf(sqlplan.KindInteger)), "int_list", false},
		{"ints", sqlplan.ArrayType(sqlplan.TypeOf(sqlplan.KindInteger)), "integer[]", false},
		{"v20", sqlplan.ArrayType(sqlplan.VarcharType(20)), "character varying(20)[]", false},
		{"ip", sqlplan.OtherType("inet"), "inet", false},
		{"bits", sqlplan.OtherType("bit(8)"), "bit(8)", false},
		{"vb", sqlplan.OtherType("bit varying(4)"), "bit varying(4)", false},
		{"cash", sqlplan.OtherType("money"), "money", false},
		{"gen", sqlplan.TypeOf(sqlplan.KindBigint), "bigint", false},
	}
	if len(tab.Columns) != len(wantTypes) {
		t.Fatalf("read %d columns, want %d", len(tab.Columns), len(wantTypes))
	}
	for i, w := range wantTypes {
		c := tab.Columns[i]
		if c.Name != w.name || c.Type != w.typ || c.TypeName != w.typeName || c.NotNull != w.notNull {
			t.Errorf("column %d = %s %v (%q) not null %v, want %s %v (%q) not null %v",
				i, c.Name, c.Type, c.TypeName, c.NotNull, w.name, w.typ, w.typeName, w.notNull)
		}
		if c.Num != int16(i+2) {
			t.Errorf("column %s: attnum %d, want %d (the dropped column keeps attnum 1)", c.Name, c.Num, i+2)
		}
		if c.Generated != (c.Name == "gen") {
			t.Errorf("column %s: generated = %v", c.Name, c.Generated)
		}
		isEnum := c.Name == "en" || c.Name == "ens"
		if isEnum && !slices.Equal(c.EnumLabels, []string{"new", "paid", "void"}) || !isEnum && c.EnumLabels != nil {
			t.Errorf("column %s: enum labels %q", c.Name, c.EnumLabels)
		}
	}
	if a, b := tab.Column("en"), tab.Column("ens"); a.TypeOID == 0 || a.TypeOID != b.TypeOID {
		t.Errorf("enum type OIDs %d and %d, want the enum's for both", a.TypeOID, b.TypeOID)
	}
	if w, w2 := tab.Column("w"), tab.Column("w2"); w.TypeMod != -1 || w2.TypeMod < 0 {
		t.Errorf("interval modifiers %d and %d", w.TypeMod, w2.TypeMod)
	}
}

func TestTablesDeduplicatesSelfJoins(t *testing.T) {
	const schema = `
datasource db {
  provider = "postgresql"
  schemas  = ["public", "shop"]
}

model Employee {
  id        Int  @id
  managerId Int? @map("manager_id")
  dept      String

  @@map("employees")
  @@schema("shop")
}

model Dept {
  name String @id

  @@schema("public")
}
`
	plan := compile(t, schema, `SELECT m.dept, count(*) FROM shop.employees e JOIN shop.employees m ON e.manager_id = m.id JOIN "Dept" d ON d.name = e.dept GROUP BY m.dept`)
	got := Tables(plan)
	if diff := cmp.Diff([]Name{{"shop", "employees"}, {"public", "Dept"}}, got); diff != "" {
		t.Errorf("Tables (-want +got):\n%s", diff)
	}
	// The two sources read different columns of one table; both count.
	rt := readTables(plan)
	var cols []string
	for _, c := range rt[0].columns {
		cols = append(cols, c.Name)
	}
	slices.Sort(cols)
	if !slices.Equal(cols, []string{"dept", "id", "manager_id"}) {
		t.Errorf("columns read of employees = %v", cols)
	}
}

func TestRereadFindsRenamedTable(t *testing.T) {
	conn := newConn(t,
		`CREATE TABLE orders (id int PRIMARY KEY)`,
		`CREATE TABLE other (id int PRIMARY KEY)`,
	)
	ctx := context.Background()
	names := []Name{{"public", "orders"}}
	before, err := Read(ctx, conn, names)
	if err != nil {
		t.Fatal(err)
	}
	exec(t, conn, `CREATE SCHEMA archive`, `ALTER TABLE orders RENAME TO orders_v2`, `ALTER TABLE orders_v2 SET SCHEMA archive`)
	after, err := Reread(ctx, conn, names, before)
	if err != nil {
		t.Fatal(err)
	}
	moved := after[Name{"archive", "orders_v2"}]
	if len(after) != 1 || moved == nil || moved.OID != before[names[0]].OID {
		t.Fatalf("after = %v, want the table under its new name with its OID", after)
	}
	// Read alone does not look for it.
	plain, err := Read(ctx, conn, names)
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != 0 {
		t.Errorf("Read = %v, want nothing", plain)
	}
}
