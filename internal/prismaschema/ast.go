package prismaschema

import (
	"strings"
)

// File is the syntax tree of one schema file, before names are resolved.
type File struct {
	Name   string
	Blocks []*Block
}

// BlockKind says which keyword opened a block.
type BlockKind int

const (
	DatasourceBlock BlockKind = iota + 1
	GeneratorBlock
	ModelBlock
	ViewBlock
	TypeBlock // composite type
	EnumBlock
)

var blockKeywords = map[string]BlockKind{
	"datasource": DatasourceBlock,
	"generator":  GeneratorBlock,
	"model":      ModelBlock,
	"view":       ViewBlock,
	"type":       TypeBlock,
	"enum":       EnumBlock,
}

// String returns the keyword of the block kind.
func (k BlockKind) String() string {
	for word, kind := range blockKeywords {
		if kind == k {
			return word
		}
	}
	return "block"
}

// Block is a datasource, generator, model, view, composite type or enum.
type Block struct {
	Kind    BlockKind
	Name    string
	Pos     Position // of the keyword
	NamePos Position
	Doc     string // the /// comments before the block, one line each

	Properties []*Property  // datasource and generator
	Fields     []*Field     // model, view and type
	Values     []*EnumEntry // enum
	Attributes []*Attribute // @@ block attributes, in order
}

// Property is a key = value line of a datasource or generator.
type Property struct {
	Name  string
	Pos   Position
	Value *Value
}

// Field is a line "name Type attributes" of a model, view or composite type.
type Field struct {
	Name       string
	Pos        Position
	Type       FieldType
	Attributes []*Attribute
	Doc        string
}

// FieldType is the type of a field with its modifiers.
type FieldType struct {
	Name string // "Int", a model, enum or composite type name, or "Unsupported"
	Pos  Position
	// Unsupported holds the database type of Unsupported("..."); it is set
	// only when Name is "Unsupported" and the type had parentheses.
	Unsupported string
	HasArgs     bool // the type had parentheses: Unsupported("...")
	List        bool // Type[]
	Optional    bool // Type?
}

// String renders the type as written in a schema, e.g. `String?` or
// `Unsupported("circle")[]`.
func (t FieldType) String() string {
	var b strings.Builder
	b.WriteString(t.Name)
	if t.HasArgs {
		b.WriteString("(" + quote(t.Unsupported) + ")")
	}
	if t.List {
		b.WriteString("[]")
	}
	if t.Optional {
		b.WriteString("?")
	}
	return b.String()
}

// EnumEntry is one value line of an enum block.
type EnumEntry struct {
	Name       string
	Pos        Position
	Attributes []*Attribute
	Doc        string
}

// Attribute is a field attribute (@id, @db.VarChar(255)) or a block attribute
// (@@map("users")).
type Attribute struct {
	// Name is written without the "@" or "@@": "id", "map", "db.VarChar".
	Name  string
	Block bool // written with "@@"
	Pos   Position
	Args  []*Argument
}

// String renders the attribute as written in a schema.
func (a *Attribute) String() string {
	if a.Args == nil {
		return a.displayName()
	}
	return a.displayName() + "(" + renderArgs(a.Args) + ")"
}

// displayName is the attribute's name as written: "@map" or "@@map".
func (a *Attribute) displayName() string {
	if a.Block {
		return "@@" + a.Name
	}
	return "@" + a.Name
}

// Arg returns the argument called name, or when there is none such, the
// positional argument at index position (-1 for none). It returns nil when
// neither exists.
func (a *Attribute) Arg(name string, position int) *Argument {
	return findArg(a.Args, name, position)
}

func findArg(args []*Argument, name string, position int) *Argument {
	n := 0
	for _, arg := range args {
		if arg.Name == "" {
			if n == position {
				return arg
			}
			n++
			continue
		}
		if arg.Name == name {
			return arg
		}
	}
	return nil
}

// Argument is one argument of an attribute or function call; Name is empty
// for a positional argument.
type Argument struct {
	Name  string
	Pos   Position
	Value *Value
}

// ValueKind says what kind of expression a Value is.
type ValueKind int

const (
	StringValue   ValueKind = iota + 1 // "text"
	NumberValue                        // 42, -1.5
	ConstantValue                      // an identifier: true, false, Desc, USER, Cascade
	FunctionValue                      // now(), env("X"), sequence(start: 1), a(sort: Desc)
	ArrayValue                         // [a, b]
)

// Value is an expression in an argument or a property.
type Value struct {
	Kind ValueKind
	Pos  Position
	// Text is the unescaped string, the number as written, the constant or
	// the function name.
	Text  string
	Args  []*Argument // FunctionValue
	Elems []*Value    // ArrayValue
}

// String renders the value as written in a schema: `"text"`, `42`, `now()`,
// `[a, b(sort: Desc)]`.
func (v *Value) String() string {
	if v == nil {
		return ""
	}
	switch v.Kind {
	case StringValue:
		return quote(v.Text)
	case FunctionValue:
		return v.Text + "(" + renderArgs(v.Args) + ")"
	case ArrayValue:
		parts := make([]string, len(v.Elems))
		for i, e := range v.Elems {
			parts[i] = e.String()
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return v.Text
}

// Arg returns the argument of a function value called name, or the
// positional argument at index position; nil when there is neither.
func (v *Value) Arg(name string, position int) *Argument {
	return findArg(v.Args, name, position)
}

func renderArgs(args []*Argument) string {
	parts := make([]string, len(args))
	for i, a := range args {
		if a.Name != "" {
			parts[i] = a.Name + ": " + a.Value.String()
		} else {
			parts[i] = a.Value.String()
		}
	}
	return strings.Join(parts, ", ")
}

// quote writes s as a Prisma string literal.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 || r == 0x7f {
				const hex = "0123456789abcdef"
				b.WriteString(`\u00`)
				b.WriteByte(hex[r>>4])
				b.WriteByte(hex[r&0xf])
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
