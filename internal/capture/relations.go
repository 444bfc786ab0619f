package capture

import (
	"context"
	"fmt"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/dbzjson"
)

// typeInfo is what the encoder needs to know about a pg_type.
type typeInfo struct {
	typtype     byte
	elem        uint32
	base        uint32
	typmod      int32
	isArrayType bool
}

// catalog looks up column types and primary keys in the source database
// and remembers the types it saw.
type catalog struct {
	types map[uint32]typeInfo
	// generated says the server has pg_attribute.attgenerated (12+).
	generated bool
}

func newCatalog(serverVersion int) *catalog {
	return &catalog{types: map[uint32]typeInfo{}, generated: serverVersion >= 120000}
}

// loadTypes fetches the types in oids that are not cached yet, following
// domains to their base types and arrays to their element types.
func (c *catalog) loadTypes(ctx context.Context, conn *pgx.Conn, oids []uint32) error {
	for len(oids) > 0 {
		var missing []uint32
		for _, o := range oids {
			if _, ok := c.types[o]; !ok && o != 0 {
				missing = append(missing, o)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		rows, err := conn.Query(ctx, `
			SELECT oid, typtype::text, typelem, typbasetype, typtypmod, typinput = 'array_in'::regproc
			FROM pg_type WHERE oid = ANY($1)`, missing)
		if err != nil {
			return fmt.Errorf("read column types: %w", err)
		}
		oids = oids[:0:0]
		for rows.Next() {
			var oid, elem, base uint32
			var typtype string
			var typmod int32
			var arrayIn bool
			if err := rows.Scan(&oid, &typtype, &elem, &base, &typmod, &arrayIn); err != nil {
				rows.Close()
				return fmt.Errorf("read column types: %w", err)
			}
			ti := typeInfo{elem: elem, base: base, typmod: typmod}
			if typtype != "" {
				ti.typtype = typtype[0]
			}
			// A true array reads its text with array_in. int2vector and
			// oidvector have element types too, but text of their own
			// ("1 2").
			ti.isArrayType = arrayIn && elem != 0
			c.types[oid] = ti
			if ti.typtype == 'd' && base != 0 {
				oids = append(oids, base)
			}
			if ti.isArrayType {
				oids = append(oids, elem)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read column types: %w", err)
		}
		for _, o := range missing {
			if _, ok := c.types[o]; !ok {
				// Dropped meanwhile; remember it as an unknown base type.
				c.types[o] = typeInfo{typtype: 'b'}
			}
		}
	}
	return nil
}

// column fills the type fields of a dbzjson.Column from the cache. keyPos
// is the column's position in the primary key, 0 when it is not in it.
func (c *catalog) column(name string, oid uint32, typmod int32, typeName string, keyPos int) dbzjson.Column {
	col := dbzjson.Column{Name: name, TypeOID: oid, TypeName: typeName, TypeMod: typmod, Kind: 'b', Key: keyPos > 0, KeyPos: keyPos}
	ti := c.types[oid]
	switch {
	case ti.typtype == 'e':
		col.Kind = 'e'
	case ti.typtype == 'd':
		col.Kind = 'd'
		base, seen := ti.base, 0
		for seen < 32 {
			bt, ok := c.types[base]
			if !ok || bt.typtype != 'd' {
				break
			}
			base = bt.base
			seen++
		}
		col.BaseOID = base
		if typmod < 0 {
			col.TypeMod = ti.typmod
		}
	case ti.isArrayType:
		col.Kind = 'a'
		col.ElemOID = ti.elem
		col.ElemKind = 'b'
		if et := c.types[ti.elem].typtype; et == 'e' || et == 'd' {
			col.ElemKind = et
		}
	}
	return col
}

// tableRelation describes a table from the catalog, as the snapshot sees it
// (within the snapshot's transaction). Columns are in attnum order without
// dropped and generated columns, as pgoutput sends them.
func (c *catalog) tableRelation(ctx context.Context, conn *pgx.Conn, t candidateTable) (*dbzjson.Relation, error) {
	q := `
		SELECT a.attname, a.atttypid, a.atttypmod, format_type(a.atttypid, a.atttypmod),
		       COALESCE((SELECT k.n FROM unnest(pk.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) WHERE k.attnum = a.attnum), 0)
		FROM pg_attribute a
		LEFT JOIN pg_index pk ON pk.indrelid = a.attrelid AND pk.indisprimary
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`
	if c.generated {
		q += ` AND a.attgenerated = ''`
	}
	q += ` ORDER BY a.attnum`
	type col struct {
		name     string
		oid      uint32
		typmod   int32
		typeName string
		keyPos   int32
	}
	rows, err := conn.Query(ctx, q, t.OID)
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", t, err)
	}
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (col, error) {
		var x col
		err := r.Scan(&x.name, &x.oid, &x.typmod, &x.typeName, &x.keyPos)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", t, err)
	}
	oids := make([]uint32, len(cols))
	for i, x := range cols {
		oids[i] = x.oid
	}
	if err := c.loadTypes(ctx, conn, oids); err != nil {
		return nil, err
	}
	rel := &dbzjson.Relation{Schema: t.Schema, Table: t.Name, Columns: make([]dbzjson.Column, len(cols))}
	for i, x := range cols {
		rel.Columns[i] = c.column(x.name, x.oid, x.typmod, x.typeName, int(x.keyPos))
	}
	return rel, nil
}

// streamRelation describes a table from a pgoutput Relation message. The
// message marks replica-identity columns, which under REPLICA IDENTITY
// FULL are all of them; the key is the primary key, as Debezium's, so it is
// read from the catalog.
func (c *catalog) streamRelation(ctx context.Context, conn *pgx.Conn, m *pglogrepl.RelationMessage) (*dbzjson.Relation, error) {
	oids := make([]uint32, len(m.Columns))
	mods := make([]int32, len(m.Columns))
	for i, col := range m.Columns {
		oids[i] = col.DataType
		mods[i] = col.TypeModifier
	}
	if err := c.loadTypes(ctx, conn, oids); err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, `
		SELECT format_type(u.o, u.m) FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS u(o, m, n) ORDER BY u.n`,
		oids, mods)
	if err != nil {
		return nil, fmt.Errorf("format column types of %s.%s: %w", m.Namespace, m.RelationName, err)
	}
	typeNames, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("format column types of %s.%s: %w", m.Namespace, m.RelationName, err)
	}
	rows, err = conn.Query(ctx, `
		SELECT a.attname FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
		WHERE i.indrelid = $1 AND i.indisprimary
		ORDER BY (SELECT k.n FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) WHERE k.attnum = a.attnum)`, m.RelationID)
	if err != nil {
		return nil, fmt.Errorf("read primary key of %s.%s: %w", m.Namespace, m.RelationName, err)
	}
	keyNames, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read primary key of %s.%s: %w", m.Namespace, m.RelationName, err)
	}
	keyPos := make(map[string]int, len(keyNames))
	for i, k := range keyNames {
		keyPos[k] = i + 1
	}
	rel := &dbzjson.Relation{Schema: m.Namespace, Table: m.RelationName, Columns: make([]dbzjson.Column, len(m.Columns))}
	for i, col := range m.Columns {
		name := ""
		if i < len(typeNames) {
			name = typeNames[i]
		}
		rel.Columns[i] = c.column(col.Name, col.DataType, col.TypeModifier, name, keyPos[col.Name])
	}
	return rel, nil
}

// attnums reads the attribute numbers of a table's columns by name, for
// its description (see ColumnDescription.Attnum). The stream reads the
// current catalog, which may be ahead of the Relation message; a table
// dropped meanwhile has none.
func (c *catalog) attnums(ctx context.Context, conn *pgx.Conn, oid uint32) (map[string]int16, error) {
	rows, err := conn.Query(ctx, `SELECT attname, attnum FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`, oid)
	if err != nil {
		return nil, fmt.Errorf("read attribute numbers of relation %d: %w", oid, err)
	}
	out := map[string]int16{}
	var name string
	var num int16
	if _, err := pgx.ForEachRow(rows, []any{&name, &num}, func() error {
		out[name] = num
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read attribute numbers of relation %d: %w", oid, err)
	}
	return out, nil
}
