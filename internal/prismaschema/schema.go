package prismaschema

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotFound is wrapped by the lookup helpers when no table, column or enum
// has the name asked for.
var ErrNotFound = errors.New("not found")

// ErrAmbiguous is wrapped by the lookup helpers when a name matches more than
// one table, column or enum at the same step of the lookup.
var ErrAmbiguous = errors.New("ambiguous")

// Schema is the database shape a Prisma schema describes.
type Schema struct {
	Filename string
	// Datasource is nil when the file declares none.
	Datasource *Datasource
	Generators []*Generator
	// Tables holds models and views in the order they are declared, then the
	// join tables of implicit many-to-many relations. Models with @@ignore
	// are kept, flagged Ignored: their tables exist in the database.
	Tables []*Table
	// Enums in the order they are declared.
	Enums []*Enum
	// CompositeTypes are the `type` blocks (MongoDB embedded documents).
	// They are not tables.
	CompositeTypes []*CompositeType
	// File is the syntax tree the schema was built from.
	File *File
}

// Datasource is the datasource block.
type Datasource struct {
	Name     string // the prefix of native type attributes, as in @db.VarChar
	Provider string // "postgresql", "mysql", "sqlite", "sqlserver", "mongodb", "cockroachdb"
	// URL is the url property (Prisma 6 and older), or nil when absent
	// (Prisma 7 keeps it in prisma.config.ts). It is usually env("...").
	URL *Value
	// Schemas lists the schemas property: the database schemas that
	// @@schema may name.
	Schemas []string
	// DefaultSchema is the schema tables without @@schema live in, when the
	// schema file says so: the schema parameter of a literal url. It is ""
	// when the file does not say (the database's search path decides).
	DefaultSchema string
	Pos           Position
}

// Generator is a generator block.
type Generator struct {
	Name     string
	Provider string
	Pos      Position
}

// Table is a database table or view: a model, a view, or the join table of
// an implicit many-to-many relation.
type Table struct {
	Name      string // database name: @@map, or the model name
	Schema    string // @@schema, or the datasource's DefaultSchema
	ModelName string // the Prisma model or view name; "" for a join table
	IsView    bool
	// Ignored marks a model with @@ignore: the table exists, but Prisma
	// Client does not use it.
	Ignored bool
	// IsJoinTable marks the table Prisma creates for an implicit
	// many-to-many relation: "_" + relation name, with columns A (the id of
	// the model whose name sorts first) and B. Its schema is taken to be
	// that of model A.
	IsJoinTable bool
	// Columns holds scalar, enum, composite and Unsupported fields in the
	// order they are declared. Relation fields are not columns.
	Columns []*Column
	// PrimaryKey lists the database names of the primary key columns, in
	// key order, from @id or @@id. It is empty when the model has none.
	PrimaryKey []string
	// Indexes lists @unique, @@unique, @@index and @@fulltext, in order.
	Indexes   []*Index
	Relations []*Relation
	Doc       string
	Pos       Position
}

// QualifiedName returns schema.name, or name when the schema is unknown.
func (t *Table) QualifiedName() string {
	if t.Schema == "" {
		return t.Name
	}
	return t.Schema + "." + t.Name
}

// ColumnKind says what a column's Prisma type is.
type ColumnKind int

const (
	ScalarColumn      ColumnKind = iota + 1 // String, Int, DateTime, ...
	EnumColumn                              // an enum of the schema
	CompositeColumn                         // a composite type (MongoDB)
	UnsupportedColumn                       // Unsupported("...")
)

// String names the kind as the Prisma DMMF does.
func (k ColumnKind) String() string {
	switch k {
	case ScalarColumn:
		return "scalar"
	case EnumColumn:
		return "enum"
	case CompositeColumn:
		return "composite"
	case UnsupportedColumn:
		return "unsupported"
	}
	return "unknown"
}

// Column is a field that the database stores.
type Column struct {
	Name      string // database name: @map, or the field name
	FieldName string // the Prisma field name
	// Type is the Prisma type: a scalar such as "Int", an enum or composite
	// type name, or "Unsupported".
	Type string
	Kind ColumnKind
	// Unsupported is the database type of an Unsupported("...") field.
	Unsupported string
	Optional    bool
	List        bool
	// NativeType comes from the @db.* attribute, without its prefix:
	// "VarChar(255)", "Decimal(10,2)", "Uuid". It is "" when there is none.
	NativeType string
	// Default is the argument of @default, or nil.
	Default *Value
	// Unique is true when the column alone is unique: @unique, or an
	// @@unique naming only this field.
	Unique bool
	// ID is true when the column is part of the primary key.
	ID        bool
	UpdatedAt bool
	// Ignored marks a field with @ignore: the column exists, but Prisma
	// Client does not use it.
	Ignored bool
	Doc     string
	Pos     Position
}

// Index is a unique constraint or an index.
type Index struct {
	// Name is the map: (or name:) argument; "" when Prisma derives it.
	Name     string
	Columns  []string // database column names, in index order
	Unique   bool
	Fulltext bool
	Pos      Position
}

// Relation is a field whose type is another model or view. It is not a
// column; on the side that holds the foreign key, Columns names the
// columns that do.
type Relation struct {
	FieldName string
	// Name is the relation name: @relation("...") or, when not given,
	// the two model names in sorted order joined by "To".
	Name string
	// Target is the Prisma name of the related model or view.
	Target   string
	List     bool
	Optional bool
	// Fields and References are the Prisma field names of @relation(fields:
	// [...], references: [...]); Columns and ReferencedColumns are their
	// database names. All four are empty on the side without the foreign key.
	Fields            []string
	References        []string
	Columns           []string
	ReferencedColumns []string
	OnDelete          string
	OnUpdate          string
	Ignored           bool
	Pos               Position
}

// Enum is an enum block.
type Enum struct {
	Name     string // database name: @@map, or the enum name
	Schema   string // @@schema, or the datasource's DefaultSchema
	EnumName string // the Prisma enum name
	Values   []*EnumValue
	Doc      string
	Pos      Position
}

// EnumValue is one value of an enum.
type EnumValue struct {
	Name      string // database name: @map, or the value name
	ValueName string // the Prisma name
	Doc       string
	Pos       Position
}

// CompositeType is a `type` block: the shape of an embedded document.
type CompositeType struct {
	Name    string
	Columns []*Column
	Doc     string
	Pos     Position
}

// Table finds a table. It tries, in order: the database name, the Prisma
// model name, the database name ignoring case, the Prisma model name ignoring
// case; the first step that matches decides. A name of the form
// "schema.table" that matches no table as a whole is looked up in that
// schema. The error wraps ErrNotFound or ErrAmbiguous.
func (s *Schema) Table(name string) (*Table, error) {
	t, err := s.findTable("", name)
	if errors.Is(err, ErrNotFound) {
		if schema, rest, ok := strings.Cut(name, "."); ok {
			if t, err2 := s.findTable(schema, rest); err2 == nil || errors.Is(err2, ErrAmbiguous) {
				return t, err2
			}
		}
	}
	return t, err
}

// TableInSchema is Table restricted to the tables of one database schema.
func (s *Schema) TableInSchema(schema, name string) (*Table, error) {
	return s.findTable(schema, name)
}

func (s *Schema) findTable(schema, name string) (*Table, error) {
	var candidates []*Table
	for _, t := range s.Tables {
		if schema == "" || t.Schema == schema {
			candidates = append(candidates, t)
		}
	}
	keys := []func(*Table) string{
		func(t *Table) string { return t.Name },
		func(t *Table) string { return t.ModelName },
	}
	t, err := lookup(candidates, name, keys, (*Table).QualifiedName)
	if err != nil {
		return nil, fmt.Errorf("table %q: %w", name, err)
	}
	return t, nil
}

// Column finds a column. It tries, in order: the database name, the Prisma
// field name, the database name ignoring case, the Prisma field name ignoring
// case; the first step that matches decides. The error wraps
// ErrNotFound or ErrAmbiguous.
func (t *Table) Column(name string) (*Column, error) {
	keys := []func(*Column) string{
		func(c *Column) string { return c.Name },
		func(c *Column) string { return c.FieldName },
	}
	c, err := lookup(t.Columns, name, keys, func(c *Column) string { return c.Name })
	if err != nil {
		return nil, fmt.Errorf("column %q of table %s: %w", name, t.QualifiedName(), err)
	}
	return c, nil
}

// Enum finds an enum by database name, then by Prisma name, like Table.
func (s *Schema) Enum(name string) (*Enum, error) {
	keys := []func(*Enum) string{
		func(e *Enum) string { return e.Name },
		func(e *Enum) string { return e.EnumName },
	}
	e, err := lookup(s.Enums, name, keys, func(e *Enum) string { return e.Name })
	if err != nil {
		return nil, fmt.Errorf("enum %q: %w", name, err)
	}
	return e, nil
}

// CompositeType finds a composite type by its exact name, or nil.
func (s *Schema) CompositeType(name string) *CompositeType {
	for _, c := range s.CompositeTypes {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// lookup tries each key case-sensitively, then each key case-insensitively,
// and returns the single match of the first step that matches anything.
func lookup[T any](items []T, name string, keys []func(T) string, describe func(T) string) (T, error) {
	var zero T
	for _, fold := range []bool{false, true} {
		for _, key := range keys {
			var found []T
			for _, it := range items {
				k := key(it)
				if k == "" {
					continue
				}
				if k == name || fold && strings.EqualFold(k, name) {
					found = append(found, it)
				}
			}
			switch len(found) {
			case 0:
				continue
			case 1:
				return found[0], nil
			default:
				names := make([]string, len(found))
				for i, f := range found {
					names[i] = describe(f)
				}
				return zero, fmt.Errorf("%w: matches %s", ErrAmbiguous, strings.Join(names, ", "))
			}
		}
	}
	return zero, ErrNotFound
}
