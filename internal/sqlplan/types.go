package sqlplan

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cdcq/cdcq/internal/prismaschema"
)

// Kind is the PostgreSQL base type of a value.
type Kind uint8

// The kinds cdcq knows. KindUnknown is the type of a string literal or NULL
// whose type the context has not decided yet; it never appears in a
// compiled Plan (PostgreSQL resolves such values to text, and so does
// Compile).
const (
	KindUnknown     Kind = iota
	KindSmallint         // smallint (int2)
	KindInteger          // integer (int4)
	KindBigint           // bigint (int8)
	KindNumeric          // numeric / decimal
	KindReal             // real (float4)
	KindDouble           // double precision (float8)
	KindBoolean          // boolean
	KindText             // text
	KindVarchar          // varchar(n) / character varying
	KindChar             // char(n) / character / bpchar
	KindUUID             // uuid
	KindDate             // date
	KindTimestamp        // timestamp without time zone
	KindTimestamptz      // timestamp with time zone
	KindTime             // time without time zone
	KindTimetz           // time with time zone
	KindInterval         // interval
	KindJSON             // json
	KindJSONB            // jsonb
	KindBytea            // bytea
	KindEnum             // a user-defined enum; Type.Name names it
	KindOther            // any other type, such as inet, money, citext; Type.Name names it
)

var kindNames = [...]string{
	KindUnknown:     "unknown",
	KindSmallint:    "smallint",
	KindInteger:     "integer",
	KindBigint:      "bigint",
	KindNumeric:     "numeric",
	KindReal:        "real",
	KindDouble:      "double precision",
	KindBoolean:     "boolean",
	KindText:        "text",
	KindVarchar:     "varchar",
	KindChar:        "char",
	KindUUID:        "uuid",
	KindDate:        "date",
	KindTimestamp:   "timestamp",
	KindTimestamptz: "timestamptz",
	KindTime:        "time",
	KindTimetz:      "timetz",
	KindInterval:    "interval",
	KindJSON:        "json",
	KindJSONB:       "jsonb",
	KindBytea:       "bytea",
	KindEnum:        "enum",
	KindOther:       "other",
}

// String returns the PostgreSQL name of the kind ("enum" and "other" for
// the kinds that Type.Name names).
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// NoPrecision is the Precision of a type declared without a modifier.
const NoPrecision = -1

// Type is a PostgreSQL type: a kind, its modifiers, and whether it is an
// array. Types are comparable with ==; build them with the constructors
// (TypeOf, NumericType, ...) so that unused fields hold their canonical
// values.
type Type struct {
	Kind Kind
	// Precision is the first type modifier, or NoPrecision when there is
	// none: the precision of numeric(p,s), the length of varchar(n) and
	// char(n), and the fractional-second digits of timestamp(p),
	// timestamptz(p), time(p) and timetz(p). Without one, numeric is
	// unconstrained, varchar is unlimited, char is bpchar (unlimited, blank
	// padded) and the time types keep microseconds. Kinds that take no
	// modifier always have NoPrecision.
	Precision int
	// Scale is the scale of numeric(p,s); 0 otherwise.
	Scale int
	// Name is the database name of an enum (KindEnum) or the name of the
	// type as PostgreSQL spells it (KindOther, e.g. "inet", "money",
	// "bit(8)"); "" for other kinds.
	Name string
	// Schema is the database schema of an enum; "" means the default
	// schema (public).
	Schema string
	// Array marks a one-dimensional array of the type described by the
	// other fields (Prisma lists).
	Array bool
}

// TypeOf returns the type of kind k without modifiers. Use EnumType and
// OtherType for KindEnum and KindOther.
func TypeOf(k Kind) Type { return Type{Kind: k, Precision: NoPrecision} }

// NumericType returns numeric(precision, scale).
func NumericType(precision, scale int) Type {
	return Type{Kind: KindNumeric, Precision: precision, Scale: scale}
}

// VarcharType returns varchar(n); NoPrecision gives unlimited varchar.
func VarcharType(n int) Type { return Type{Kind: KindVarchar, Precision: n} }

// CharType returns char(n); NoPrecision gives bpchar.
func CharType(n int) Type { return Type{Kind: KindChar, Precision: n} }

// TimestampType returns timestamp(p) without time zone.
func TimestampType(p int) Type { return Type{Kind: KindTimestamp, Precision: p} }

// TimestamptzType returns timestamptz(p).
func TimestamptzType(p int) Type { return Type{Kind: KindTimestamptz, Precision: p} }

// TimeType returns time(p) without time zone.
func TimeType(p int) Type { return Type{Kind: KindTime, Precision: p} }

// TimetzType returns timetz(p).
func TimetzType(p int) Type { return Type{Kind: KindTimetz, Precision: p} }

// EnumType returns the enum with the given database schema and name.
func EnumType(schema, name string) Type {
	return Type{Kind: KindEnum, Precision: NoPrecision, Name: name, Schema: schema}
}

// OtherType returns a type cdcq does not model, by its PostgreSQL name.
func OtherType(name string) Type {
	return Type{Kind: KindOther, Precision: NoPrecision, Name: name}
}

// ArrayType returns the array of elem.
func ArrayType(elem Type) Type {
	elem.Array = true
	return elem
}

// Elem returns the element type of an array type (t itself otherwise).
func (t Type) Elem() Type {
	t.Array = false
	return t
}

// Base returns t without its modifiers: numeric(10,2) gives numeric,
// varchar(20) gives varchar. PostgreSQL drops modifiers the same way in
// the results of operators and functions.
func (t Type) Base() Type {
	t.Precision, t.Scale = NoPrecision, 0
	return t
}

// IsInteger reports whether t is smallint, integer or bigint.
func (t Type) IsInteger() bool {
	return !t.Array && (t.Kind == KindSmallint || t.Kind == KindInteger || t.Kind == KindBigint)
}

// IsNumeric reports whether t is a number: an integer kind, numeric, real
// or double precision.
func (t Type) IsNumeric() bool {
	return t.IsInteger() || !t.Array && (t.Kind == KindNumeric || t.Kind == KindReal || t.Kind == KindDouble)
}

// IsFloat reports whether t is real or double precision.
func (t Type) IsFloat() bool {
	return !t.Array && (t.Kind == KindReal || t.Kind == KindDouble)
}

// IsString reports whether t is text, varchar or char.
func (t Type) IsString() bool {
	return !t.Array && (t.Kind == KindText || t.Kind == KindVarchar || t.Kind == KindChar)
}

// IsUnknown reports whether t is the type of a literal not resolved yet.
func (t Type) IsUnknown() bool { return t.Kind == KindUnknown }

// String spells t the way PostgreSQL's documentation does, with modifiers:
// "integer", "numeric(10,2)", "varchar(255)", "timestamp(3)",
// "timestamptz(6)", "double precision", an enum's (quoted if needed)
// name, "text[]".
func (t Type) String() string {
	var b strings.Builder
	switch t.Kind {
	case KindEnum:
		if t.Schema != "" && t.Schema != "public" {
			b.WriteString(QuoteIdent(t.Schema))
			b.WriteByte('.')
		}
		b.WriteString(QuoteIdent(t.Name))
	case KindOther:
		b.WriteString(t.Name)
	case KindChar:
		if t.Precision == NoPrecision {
			b.WriteString("bpchar")
		} else {
			fmt.Fprintf(&b, "char(%d)", t.Precision)
		}
	case KindNumeric:
		b.WriteString("numeric")
		if t.Precision != NoPrecision {
			fmt.Fprintf(&b, "(%d,%d)", t.Precision, t.Scale)
		}
	case KindVarchar, KindTimestamp, KindTimestamptz, KindTime, KindTimetz:
		b.WriteString(t.Kind.String())
		if t.Precision != NoPrecision {
			fmt.Fprintf(&b, "(%d)", t.Precision)
		}
	default:
		b.WriteString(t.Kind.String())
	}
	if t.Array {
		b.WriteString("[]")
	}
	return b.String()
}

// integerRank orders the integer kinds by width.
func integerRank(k Kind) int {
	switch k {
	case KindSmallint:
		return 1
	case KindInteger:
		return 2
	case KindBigint:
		return 3
	}
	return 0
}

// ColumnType returns the PostgreSQL type of a column of a Prisma schema
// for PostgreSQL: the @db native type when there is one, else Prisma's
// default mapping (Int integer, BigInt bigint, Float double precision,
// Decimal numeric(65,30), String text, Boolean boolean, DateTime
// timestamp(3), Json jsonb, Bytes bytea, an enum its database name,
// Unsupported("x") the type x). Lists are arrays.
func ColumnType(schema *prismaschema.Schema, col *prismaschema.Column) (Type, error) {
	t, err := columnBaseType(schema, col)
	if err != nil {
		return Type{}, err
	}
	if col.List {
		t = ArrayType(t)
	}
	return t, nil
}

func columnBaseType(schema *prismaschema.Schema, col *prismaschema.Column) (Type, error) {
	switch col.Kind {
	case prismaschema.EnumColumn:
		for _, e := range schema.Enums {
			if e.EnumName == col.Type {
				return EnumType(e.Schema, e.Name), nil
			}
		}
		e, err := schema.Enum(col.Type)
		if err != nil {
			return Type{}, err
		}
		return EnumType(e.Schema, e.Name), nil
	case prismaschema.UnsupportedColumn:
		return parseTypeText(col.Unsupported), nil
	case prismaschema.CompositeColumn:
		return Type{}, fmt.Errorf("composite type %s is not a PostgreSQL column type", col.Type)
	}
	native, args := splitNative(col.NativeType)
	arg := func(i int) int {
		if i < len(args) {
			return args[i]
		}
		return NoPrecision
	}
	switch col.Type {
	case "Int":
		switch native {
		case "", "Integer":
			return TypeOf(KindInteger), nil
		case "SmallInt":
			return TypeOf(KindSmallint), nil
		case "Oid":
			return OtherType("oid"), nil
		}
	case "BigInt":
		if native == "" || native == "BigInt" {
			return TypeOf(KindBigint), nil
		}
	case "Float":
		switch native {
		case "", "DoublePrecision":
			return TypeOf(KindDouble), nil
		case "Real":
			return TypeOf(KindReal), nil
		}
	case "Decimal":
		switch native {
		case "":
			return NumericType(65, 30), nil
		case "Decimal":
			if len(args) == 0 {
				return TypeOf(KindNumeric), nil
			}
			return NumericType(arg(0), max(arg(1), 0)), nil
		case "Money":
			return OtherType("money"), nil
		}
	case "String":
		switch native {
		case "", "Text":
			return TypeOf(KindText), nil
		case "VarChar":
			return VarcharType(arg(0)), nil
		case "Char":
			if len(args) == 0 {
				return CharType(1), nil
			}
			return CharType(arg(0)), nil
		case "Uuid":
			return TypeOf(KindUUID), nil
		case "Bit", "VarBit":
			name := strings.ToLower(native)
			if len(args) > 0 {
				name += "(" + strconv.Itoa(args[0]) + ")"
			}
			return OtherType(name), nil
		case "Xml", "Inet", "Citext":
			return OtherType(strings.ToLower(native)), nil
		}
	case "Boolean":
		if native == "" || native == "Boolean" {
			return TypeOf(KindBoolean), nil
		}
	case "DateTime":
		switch native {
		case "":
			return TimestampType(3), nil
		case "Timestamp":
			return TimestampType(arg(0)), nil
		case "Timestamptz":
			return TimestamptzType(arg(0)), nil
		case "Date":
			return TypeOf(KindDate), nil
		case "Time":
			return TimeType(arg(0)), nil
		case "Timetz":
			return TimetzType(arg(0)), nil
		}
	case "Json":
		switch native {
		case "", "JsonB":
			return TypeOf(KindJSONB), nil
		case "Json":
			return TypeOf(KindJSON), nil
		}
	case "Bytes":
		if native == "" || native == "ByteA" {
			return TypeOf(KindBytea), nil
		}
	default:
		return Type{}, fmt.Errorf("unknown Prisma type %s", col.Type)
	}
	return Type{}, fmt.Errorf("native type @db.%s does not apply to %s on PostgreSQL", col.NativeType, col.Type)
}

// splitNative splits "Decimal(10,2)" into "Decimal" and [10 2].
func splitNative(s string) (string, []int) {
	name, rest, ok := strings.Cut(s, "(")
	if !ok {
		return s, nil
	}
	var args []int
	for _, a := range strings.Split(strings.TrimSuffix(rest, ")"), ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(a)); err == nil {
			args = append(args, n)
		}
	}
	return name, args
}

// parseTypeText maps the text of an Unsupported("...") type to a Type: the
// names PostgreSQL and its documentation use for the modelled kinds, and
// OtherType for the rest.
func parseTypeText(text string) Type {
	s := strings.ToLower(strings.Join(strings.Fields(text), " "))
	array := false
	if strings.HasSuffix(s, "[]") {
		array = true
		s = strings.TrimSpace(strings.TrimSuffix(s, "[]"))
	}
	name, mods := s, []int(nil)
	if i := strings.IndexByte(s, '('); i >= 0 && strings.HasSuffix(s, ")") {
		name = strings.TrimSpace(s[:i])
		for _, a := range strings.Split(s[i+1:len(s)-1], ",") {
			n, err := strconv.Atoi(strings.TrimSpace(a))
			if err != nil {
				return wrapArray(OtherType(text), array)
			}
			mods = append(mods, n)
		}
	}
	t, ok := typeByName(name, mods)
	if !ok {
		t = OtherType(s)
	}
	return wrapArray(t, array)
}

func wrapArray(t Type, array bool) Type {
	if array {
		return ArrayType(t)
	}
	return t
}

// typeByName maps a PostgreSQL type name (lower case, as written in SQL or
// as the parser spells it in pg_catalog) and its modifiers to a Type.
func typeByName(name string, mods []int) (Type, bool) {
	mod := func(i int) int {
		if i < len(mods) {
			return mods[i]
		}
		return NoPrecision
	}
	switch name {
	case "smallint", "int2":
		return TypeOf(KindSmallint), true
	case "integer", "int", "int4":
		return TypeOf(KindInteger), true
	case "bigint", "int8":
		return TypeOf(KindBigint), true
	case "numeric", "decimal":
		if len(mods) == 0 {
			return TypeOf(KindNumeric), true
		}
		return NumericType(mod(0), max(mod(1), 0)), true
	case "real", "float4":
		return TypeOf(KindReal), true
	case "double precision", "float8":
		return TypeOf(KindDouble), true
	case "float":
		if p := mod(0); p != NoPrecision && p <= 24 {
			return TypeOf(KindReal), true
		}
		return TypeOf(KindDouble), true
	case "boolean", "bool":
		return TypeOf(KindBoolean), true
	case "text":
		return TypeOf(KindText), true
	case "varchar", "character varying":
		return VarcharType(mod(0)), true
	case "char", "character":
		if len(mods) == 0 {
			return CharType(1), true
		}
		return CharType(mod(0)), true
	case "bpchar":
		return CharType(mod(0)), true
	case "uuid":
		return TypeOf(KindUUID), true
	case "date":
		return TypeOf(KindDate), true
	case "timestamp", "timestamp without time zone":
		return TimestampType(mod(0)), true
	case "timestamptz", "timestamp with time zone":
		return TimestamptzType(mod(0)), true
	case "time", "time without time zone":
		return TimeType(mod(0)), true
	case "timetz", "time with time zone":
		return TimetzType(mod(0)), true
	case "interval":
		return TypeOf(KindInterval), true
	case "json":
		return TypeOf(KindJSON), true
	case "jsonb":
		return TypeOf(KindJSONB), true
	case "bytea":
		return TypeOf(KindBytea), true
	}
	return Type{}, false
}

// QuoteIdent returns name as a PostgreSQL identifier: unchanged when it is
// a lower-case identifier that needs no quotes, double-quoted otherwise.
// Reserved keywords are not checked; it is meant for readable output.
func QuoteIdent(name string) string {
	if name == "" {
		return `""`
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r == '_' || i > 0 && (r >= '0' && r <= '9' || r == '$')
		if !ok {
			return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
		}
	}
	return name
}
