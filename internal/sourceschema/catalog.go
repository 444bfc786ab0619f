package sourceschema

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cdcq/cdcq/internal/sqlplan"
)

// Name is a table's database name.
type Name struct{ Schema, Table string }

// String returns "orders" when the schema is public, else "shop.orders".
// Names are not quoted.
func (n Name) String() string {
	if n.Schema == "public" || n.Schema == "" {
		return n.Table
	}
	return n.Schema + "." + n.Table
}

// Column is a column of a table, as the catalog describes it.
type Column struct {
	Name string
	// Num is the column's attnum: it stays with the column through a
	// rename, and a column added again gets a new one.
	Num int16
	// Type is the column's type with domains resolved to their base types
	// (an array of a domain is an array of the domain's base type).
	Type sqlplan.Type
	// TypeName is the declared type as format_type spells it: "numeric(12,2)",
	// "character varying(40)", a domain's name.
	TypeName string
	// TypeOID is the OID of Type's base type (of the element type for an
	// array): it tells an enum renamed from another enum.
	TypeOID uint32
	// TypeMod is Type's modifier (atttypmod, or a domain's typtypmod; -1 for
	// none). It holds what Type does not model, such as an interval's
	// fields and precision.
	TypeMod int32
	// NotNull is set by NOT NULL on the column or on its domain.
	NotNull bool
	// Generated marks a generated column, whose values logical replication
	// (before PostgreSQL 18) does not send.
	Generated bool
	// EnumLabels are the values of an enum type (or of an array's enum
	// element type) in sort order; nil for other types.
	EnumLabels []string
}

// Table is a table of the source database, as the catalog describes it.
type Table struct {
	Name Name
	OID  uint32
	// Columns are in attnum order; dropped columns are left out.
	Columns []Column
	// PrimaryKey lists the primary key's columns in key order; empty when
	// the table has none.
	PrimaryKey []string
	// ReplicaIdentity is pg_class.relreplident: 'd' (default, the primary
	// key), 'f' (full), 'i' (an index) or 'n' (nothing).
	ReplicaIdentity byte
}

// Column returns the column with the given name, or nil.
func (t *Table) Column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// columnNum returns the column with the given attnum, or nil.
func (t *Table) columnNum(num int16) *Column {
	for i := range t.Columns {
		if t.Columns[i].Num == num {
			return &t.Columns[i]
		}
	}
	return nil
}

// Querier runs a query; *pgx.Conn, *pgxpool.Pool and pgx.Tx satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Tables returns the tables the plan reads, each once, in the order the
// query first names them.
func Tables(plan *sqlplan.Plan) []Name {
	var names []Name
	seen := map[Name]bool{}
	for _, s := range plan.Sources {
		n := Name{Schema: s.Schema, Table: s.Name}
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return names
}

// Read reads the named tables (ordinary and partitioned ones) from the
// catalog in one round trip. The map is keyed by the tables' names; a
// table that does not exist is absent from it.
func Read(ctx context.Context, q Querier, names []Name) (map[Name]*Table, error) {
	return read(ctx, q, names, nil)
}

// Reread is Read for a poll that follows the observation previous: it
// reads the named tables, and also the tables of previous by their OID,
// under their current names. A table renamed since previous thus appears
// in the map under its new name, with its old OID, and CheckRunning can
// tell a rename from a drop. It is one round trip as well.
func Reread(ctx context.Context, q Querier, names []Name, previous map[Name]*Table) (map[Name]*Table, error) {
	oids := make([]uint32, 0, len(previous))
	for _, t := range previous {
		oids = append(oids, t.OID)
	}
	return read(ctx, q, names, oids)
}

// readSQL returns one row per column of each table asked for (by
// schema-qualified name, $1 and $2, or by OID, $3), or one row of NULL
// columns for a table without any. The walk CTE follows each column type
// through domains (their typtypmod and NOT NULL) and arrays to its base
// type. attgenerated is read through to_jsonb because PostgreSQL 10 and
// 11 have no such column.
const readSQL = `
WITH RECURSIVE rel AS (
	SELECT c.oid, n.nspname::text AS nspname, c.relname::text AS relname, c.relreplident::text AS replident
	FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('r', 'p')
	  AND ((n.nspname::text, c.relname::text) IN (SELECT * FROM unnest($1::text[], $2::text[])) OR c.oid = ANY ($3::oid[]))
), col AS (
	SELECT a.attrelid, a.attnum, a.attname::text AS attname, a.atttypid, a.atttypmod, a.attnotnull,
	       format_type(a.atttypid, a.atttypmod) AS typename,
	       COALESCE(to_jsonb(a) ->> 'attgenerated', '') <> '' AS generated
	FROM pg_attribute a
	JOIN rel ON rel.oid = a.attrelid
	WHERE a.attnum > 0 AND NOT a.attisdropped
), walk (start, startmod, typid, typmod, arr, domnotnull, depth) AS (
	SELECT DISTINCT atttypid, atttypmod, atttypid, atttypmod, false, false, 0 FROM col
	UNION ALL
	SELECT w.start, w.startmod,
	       CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.typelem END,
	       CASE WHEN t.typtype = 'd' AND w.typmod < 0 THEN t.typtypmod ELSE w.typmod END,
	       w.arr OR t.typtype <> 'd',
	       w.domnotnull OR (t.typtype = 'd' AND t.typnotnull AND NOT w.arr),
	       w.depth + 1
	FROM walk w
	JOIN pg_type t ON t.oid = w.typid
	WHERE (t.typtype = 'd' OR t.typelem <> 0 AND t.typinput = 'array_in'::regproc) AND w.depth < 16
), base AS (
	SELECT DISTINCT ON (w.start, w.startmod)
	       w.start, w.startmod, w.typid, w.typmod, w.arr, w.domnotnull,
	       t.typname::text AS typname, tn.nspname::text AS typschema, t.typtype::text AS typtype,
	       format_type(w.typid, w.typmod) AS basename,
	       CASE WHEN t.typtype = 'e' THEN
	           ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
	       END AS labels
	FROM walk w
	JOIN pg_type t ON t.oid = w.typid
	JOIN pg_namespace tn ON tn.oid = t.typnamespace
	ORDER BY w.start, w.startmod, w.depth DESC
)
SELECT rel.oid, rel.nspname, rel.relname, rel.replident,
       (SELECT ARRAY(
           SELECT a.attname::text
           FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
           ORDER BY k.n)
        FROM pg_index i WHERE i.indrelid = rel.oid AND i.indisprimary),
       col.attnum, col.attname, col.typename, col.attnotnull OR base.domnotnull, col.generated,
       base.typid, base.typmod, base.arr, base.typname, base.typschema, base.typtype, base.basename, base.labels
FROM rel
LEFT JOIN col ON col.attrelid = rel.oid
LEFT JOIN base ON base.start = col.atttypid AND base.startmod = col.atttypmod
ORDER BY rel.oid, col.attnum`

func read(ctx context.Context, q Querier, names []Name, oids []uint32) (map[Name]*Table, error) {
	schemas := make([]string, len(names))
	tables := make([]string, len(names))
	for i, n := range names {
		schemas[i], tables[i] = n.Schema, n.Table
	}
	if oids == nil {
		oids = []uint32{}
	}
	rows, err := q.Query(ctx, readSQL, schemas, tables, oids)
	if err != nil {
		return nil, fmt.Errorf("read the source tables from the catalog: %w", err)
	}
	defer rows.Close()
	out := map[Name]*Table{}
	var t *Table
	for rows.Next() {
		var (
			oid                         uint32
			schema, table, replident    string
			key                         []string
			num                         *int16
			name, typeName              *string
			notNull, generated, array   *bool
			baseOID                     *uint32
			typmod                      *int32
			baseName, baseSchema, btype *string
			formatted                   *string
			labels                      []string
		)
		if err := rows.Scan(&oid, &schema, &table, &replident, &key,
			&num, &name, &typeName, &notNull, &generated,
			&baseOID, &typmod, &array, &baseName, &baseSchema, &btype, &formatted, &labels); err != nil {
			return nil, fmt.Errorf("read the source tables from the catalog: %w", err)
		}
		if t == nil || t.OID != oid {
			t = &Table{Name: Name{Schema: schema, Table: table}, OID: oid, PrimaryKey: key}
			if replident != "" {
				t.ReplicaIdentity = replident[0]
			}
			out[t.Name] = t
		}
		if num == nil || baseOID == nil {
			continue // a table without columns
		}
		c := Column{
			Name:       *name,
			Num:        *num,
			TypeName:   *typeName,
			TypeOID:    *baseOID,
			TypeMod:    *typmod,
			NotNull:    *notNull,
			Generated:  *generated,
			EnumLabels: labels,
		}
		var kind byte
		if *btype != "" {
			kind = (*btype)[0]
		}
		c.Type = catalogType(*baseOID, kind, *baseSchema, *baseName, *typmod, *formatted)
		if *array {
			c.Type = sqlplan.ArrayType(c.Type)
		}
		t.Columns = append(t.Columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the source tables from the catalog: %w", err)
	}
	return out, nil
}

// catalogType maps a base type (not a domain, not an array) to a
// sqlplan.Type: its OID and typtype, its schema and name for enums, its
// modifier, and format_type's text for the types cdcq does not model.
func catalogType(oid uint32, typtype byte, schema, name string, typmod int32, formatted string) sqlplan.Type {
	if typtype == 'e' {
		return sqlplan.EnumType(schema, name)
	}
	switch oid {
	case pgtype.Int2OID:
		return sqlplan.TypeOf(sqlplan.KindSmallint)
	case pgtype.Int4OID:
		return sqlplan.TypeOf(sqlplan.KindInteger)
	case pgtype.Int8OID:
		return sqlplan.TypeOf(sqlplan.KindBigint)
	case pgtype.NumericOID:
		// The modifier is ((precision << 16) | scale) + 4, the scale an
		// 11-bit signed number since PostgreSQL 15 (numeric(3,-2)).
		if typmod < 4 {
			return sqlplan.TypeOf(sqlplan.KindNumeric)
		}
		v := typmod - 4
		return sqlplan.NumericType(int(v>>16&0xffff), int((v&0x7ff)^1024)-1024)
	case pgtype.Float4OID:
		return sqlplan.TypeOf(sqlplan.KindReal)
	case pgtype.Float8OID:
		return sqlplan.TypeOf(sqlplan.KindDouble)
	case pgtype.BoolOID:
		return sqlplan.TypeOf(sqlplan.KindBoolean)
	case pgtype.TextOID:
		return sqlplan.TypeOf(sqlplan.KindText)
	case pgtype.VarcharOID:
		return sqlplan.VarcharType(lengthOf(typmod))
	case pgtype.BPCharOID:
		return sqlplan.CharType(lengthOf(typmod))
	case pgtype.UUIDOID:
		return sqlplan.TypeOf(sqlplan.KindUUID)
	case pgtype.DateOID:
		return sqlplan.TypeOf(sqlplan.KindDate)
	case pgtype.TimestampOID:
		return sqlplan.TimestampType(precisionOf(typmod))
	case pgtype.TimestamptzOID:
		return sqlplan.TimestamptzType(precisionOf(typmod))
	case pgtype.TimeOID:
		return sqlplan.TimeType(precisionOf(typmod))
	case pgtype.TimetzOID:
		return sqlplan.TimetzType(precisionOf(typmod))
	case pgtype.IntervalOID:
		return sqlplan.TypeOf(sqlplan.KindInterval)
	case pgtype.JSONOID:
		return sqlplan.TypeOf(sqlplan.KindJSON)
	case pgtype.JSONBOID:
		return sqlplan.TypeOf(sqlplan.KindJSONB)
	case pgtype.ByteaOID:
		return sqlplan.TypeOf(sqlplan.KindBytea)
	}
	return sqlplan.OtherType(formatted)
}

// lengthOf decodes the modifier of varchar(n) and char(n).
func lengthOf(typmod int32) int {
	if typmod < 4 {
		return sqlplan.NoPrecision
	}
	return int(typmod - 4)
}

// precisionOf decodes the modifier of the time types.
func precisionOf(typmod int32) int {
	if typmod < 0 {
		return sqlplan.NoPrecision
	}
	return int(typmod)
}
