package dbzjson_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/dbzjson"
	"github.com/cdcq/cdcq/internal/dbzjson/dbzjsontest"
	"github.com/cdcq/cdcq/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

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
		       t.typtype, t.typinput = 'array_in'::regproc, t.typelem::int8, t.typbasetype::int8, t.typtypmod,
		       COALESCE(e.typtype, ''), COALESCE(a.attnum = ANY(i.indkey), false)
		FROM pg_attribute a
		JOIN pg_type t ON t.oid = a.atttypid
		LEFT JOIN pg_type e ON e.oid = t.typelem
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
			typtype, elemTyptype string
			isArray              bool
			typmod, domainTypmod int32
		)
		if err := rows.Scan(&c.Name, &oid, &c.TypeName, &typmod, &typtype, &isArray, &elem, &base, &domainTypmod, &elemTyptype, &c.Key); err != nil {
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
		case isArray:
			c.Kind, c.ElemOID, c.ElemKind = 'a', uint32(elem), 'b'
			if elemTyptype == "e" || elemTyptype == "d" {
				c.ElemKind = elemTyptype[0]
			}
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
	exec(t, conn, dbzjsontest.Types)
	cols := dbzjsontest.Columns
	exec(t, conn, "CREATE TABLE all_types (id integer PRIMARY KEY, "+dbzjsontest.Definitions(cols)+")")
	exec(t, conn, "INSERT INTO all_types (id, "+dbzjsontest.Names(cols)+") VALUES (1, "+dbzjsontest.Values(cols)+")")
	exec(t, conn, "INSERT INTO all_types (id) VALUES (2)")

	rel := loadRelation(t, conn, "all_types")
	enc := dbzjson.NewEncoder(rel)
	src := dbzjson.Source{Name: "env", TsMs: 1, DB: "db"}

	row := readRow(t, conn, "SELECT * FROM all_types WHERE id = 1")
	var env struct{ After map[string]json.RawMessage }
	// Streamed rows and snapshot rows, each with its encoder.
	for _, snapshot := range []bool{false, true} {
		e, op, want := enc, dbzjson.OpCreate, dbzjsontest.Column.WantSnapshot
		if !snapshot {
			want = func(c dbzjsontest.Column) string { return c.Want }
		} else {
			e, op = dbzjson.NewSnapshotEncoder(rel), dbzjson.OpRead
		}
		b, err := e.Envelope(op, nil, row, src, 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		for i, c := range cols {
			t.Run(fmt.Sprintf("%s/snapshot=%v", c.Name, snapshot), func(t *testing.T) {
				got, ok := env.After[c.Name]
				switch w := want(c); {
				case w == dbzjsontest.Omitted && ok:
					t.Errorf("%s %s is in the record (%s); Debezium leaves it out", c.Type, c.Name, got)
				case w != dbzjsontest.Omitted && string(got) != w:
					t.Errorf("%s %s = %s: PostgreSQL text %q\n got %s\nwant %s", c.Type, c.Name, c.Value, deref(row[i+1]), got, w)
				}
			})
		}
	}
	key, err := enc.Key(row)
	if err != nil || string(key) != `{"id":1}` {
		t.Errorf("key %s, %v", key, err)
	}

	// NULLs of every type are null.
	b, err := enc.Envelope(dbzjson.OpCreate, nil, readRow(t, conn, "SELECT * FROM all_types WHERE id = 2"), src, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		if got, ok := env.After[c.Name]; ok != (c.Want != dbzjsontest.Omitted) || ok && string(got) != "null" {
			t.Errorf("NULL %s: got %s", c.Name, got)
		}
	}

	// A session in another time zone prints timestamptz with its offset;
	// the encoded values must not change.
	other := connect(t, dsn, "Asia/Kathmandu")
	b2, err := enc.Envelope(dbzjson.OpCreate, nil, readRow(t, other, "SELECT * FROM all_types WHERE id = 1"), src, 2)
	if err != nil {
		t.Fatal(err)
	}
	var there struct{ After map[string]json.RawMessage }
	if err := json.Unmarshal(b2, &there); err != nil {
		t.Fatal(err)
	}
	first, _ := enc.Envelope(dbzjson.OpCreate, nil, row, src, 2)
	if err := json.Unmarshal(first, &env); err != nil {
		t.Fatal(err)
	}
	for name, v := range env.After {
		// A tstzrange is its text, which has the session's offsets.
		if name != "c_tstzrange" && string(there.After[name]) != string(v) {
			t.Errorf("TimeZone changes %s: UTC %s, Kathmandu %s", name, v, there.After[name])
		}
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
		"timestamp", "timestamptz", "interval", "timetz", "bit", "varbit", "numeric", "uuid", "jsonb", "point", "tsvector",
		"int4range", "numrange", "tsrange", "tstzrange", "daterange", "int8range"}
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
