package prismaschema

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// Parse parses a Prisma schema and derives the database shape it describes.
// filename is used in error messages only. The error is an ErrorList: the
// first syntax error, or every semantic error found.
func Parse(filename string, src []byte) (*Schema, error) {
	f, err := ParseFile(filename, src)
	if err != nil {
		return nil, err
	}
	return Build(f)
}

// Build resolves the names of a syntax tree and derives the database shape.
func Build(f *File) (*Schema, error) {
	b := &builder{
		file:    f,
		s:       &Schema{Filename: f.Name, File: f},
		decls:   map[string]*Block{},
		tables:  map[string]*Table{},
		columns: map[*Table]map[string]*Column{},
		enums:   map[string]*Enum{},
	}
	b.declare()
	b.buildDatasource()
	b.buildEnums()
	b.buildCompositeTypes()
	b.buildTables()
	b.buildRelations()
	b.checkTableNames()
	if err := b.errs.err(); err != nil {
		return nil, err
	}
	return b.s, nil
}

// scalarTypes are Prisma's built-in field types.
var scalarTypes = map[string]bool{
	"String": true, "Boolean": true, "Int": true, "BigInt": true, "Float": true,
	"Decimal": true, "DateTime": true, "Json": true, "Bytes": true,
}

type builder struct {
	file *File
	s    *Schema
	errs ErrorList

	// decls holds the model, view, type and enum blocks by Prisma name.
	decls map[string]*Block
	// tables holds the tables of models and views by Prisma name.
	tables map[string]*Table
	// columns maps each table's Prisma field names to its columns.
	columns map[*Table]map[string]*Column
	enums   map[string]*Enum
	// relationFields are the relation fields of each table, for the
	// relation pass.
	relationFields []pendingRelation
	// datasource is the block of s.Datasource.
	datasource *Block
}

type pendingRelation struct {
	table *Table
	block *Block
	field *Field
	rel   *Relation
	attr  *Attribute // @relation, or nil
}

func (b *builder) errorf(pos Position, format string, args ...any) {
	b.errs = append(b.errs, &Error{Filename: b.file.Name, Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// declare records every named block and reports duplicate names.
func (b *builder) declare() {
	generators := map[string]*Block{}
	for _, blk := range b.file.Blocks {
		switch blk.Kind {
		case DatasourceBlock:
			if b.s.Datasource != nil {
				b.errorf(blk.NamePos, "datasource %q: only one datasource is allowed; %q is declared at %s",
					blk.Name, b.s.Datasource.Name, b.s.Datasource.Pos)
				continue
			}
			b.s.Datasource = &Datasource{Name: blk.Name, Pos: blk.Pos}
			b.datasource = blk
		case GeneratorBlock:
			if prev, ok := generators[blk.Name]; ok {
				b.errorf(blk.NamePos, "generator %q is already declared at %s", blk.Name, prev.Pos)
				continue
			}
			generators[blk.Name] = blk
		default:
			if scalarTypes[blk.Name] || blk.Name == "Unsupported" {
				b.errorf(blk.NamePos, "%s name %q is a built-in type", blk.Kind, blk.Name)
				continue
			}
			if prev, ok := b.decls[blk.Name]; ok {
				b.errorf(blk.NamePos, "%s %q is already declared as a %s at %s", blk.Kind, blk.Name, prev.Kind, prev.Pos)
				continue
			}
			b.decls[blk.Name] = blk
		}
	}
}

// isDecl reports whether blk is the declaration its name resolves to, and
// not a duplicate that declare reported.
func (b *builder) isDecl(blk *Block) bool { return b.decls[blk.Name] == blk }

func (b *builder) buildDatasource() {
	for _, blk := range b.file.Blocks {
		switch blk.Kind {
		case DatasourceBlock:
			if blk == b.datasource {
				b.datasourceProperties(blk, b.s.Datasource)
			}
		case GeneratorBlock:
			g := &Generator{Name: blk.Name, Pos: blk.Pos}
			props := b.properties(blk)
			if v := props["provider"]; v != nil {
				g.Provider = b.stringOrEnv(v, "provider")
			}
			b.s.Generators = append(b.s.Generators, g)
		}
	}
}

func (b *builder) properties(blk *Block) map[string]*Value {
	props := map[string]*Value{}
	seen := map[string]*Property{}
	for _, p := range blk.Properties {
		if prev, ok := seen[p.Name]; ok {
			b.errorf(p.Pos, "%s %q: property %q is already set at %s", blk.Kind, blk.Name, p.Name, prev.Pos)
			continue
		}
		seen[p.Name] = p
		props[p.Name] = p.Value
	}
	return props
}

// stringOrEnv returns the text of a string value; env("X") yields "".
func (b *builder) stringOrEnv(v *Value, what string) string {
	switch {
	case v.Kind == StringValue:
		return v.Text
	case v.Kind == FunctionValue && v.Text == "env":
		return ""
	}
	b.errorf(v.Pos, "%s must be a string, found %s", what, v)
	return ""
}

func (b *builder) datasourceProperties(blk *Block, ds *Datasource) {
	props := b.properties(blk)
	if v := props["provider"]; v != nil {
		ds.Provider = b.stringOrEnv(v, "provider")
	} else {
		b.errorf(blk.NamePos, "datasource %q has no provider", blk.Name)
	}
	if v := props["url"]; v != nil {
		ds.URL = v
		if v.Kind == StringValue {
			if u, err := url.Parse(v.Text); err == nil {
				ds.DefaultSchema = u.Query().Get("schema")
			}
		}
	}
	if v := props["schemas"]; v != nil {
		if v.Kind != ArrayValue {
			b.errorf(v.Pos, "schemas must be an array of strings, found %s", v)
			return
		}
		for _, e := range v.Elems {
			if e.Kind != StringValue {
				b.errorf(e.Pos, "schemas must be an array of strings, found %s", e)
				continue
			}
			ds.Schemas = append(ds.Schemas, e.Text)
		}
	}
}

// blockAttrs checks the block attributes of blk against allowed, reports
// unknown ones and repeats of those not repeatable, and returns one
// attribute of each name.
func (b *builder) blockAttrs(blk *Block, allowed map[string]bool, repeatable map[string]bool) map[string]*Attribute {
	seen := map[string]*Attribute{}
	for _, a := range blk.Attributes {
		if !allowed[a.Name] {
			b.errorf(a.Pos, "unknown attribute @@%s on %s %q", a.Name, blk.Kind, blk.Name)
			continue
		}
		if prev, ok := seen[a.Name]; ok && !repeatable[a.Name] {
			b.errorf(a.Pos, "attribute @@%s is already set on %s %q at %s", a.Name, blk.Kind, blk.Name, prev.Pos)
			continue
		}
		seen[a.Name] = a
	}
	return seen
}

// stringArg returns the single string argument of @map, @@map or @@schema
// (positional, or named name).
func (b *builder) stringArg(a *Attribute, name string) (string, bool) {
	arg := a.Arg(name, 0)
	if arg == nil || arg.Value.Kind != StringValue || len(a.Args) != 1 {
		b.errorf(a.Pos, "%s needs one string argument", a.displayName())
		return "", false
	}
	if arg.Value.Text == "" {
		b.errorf(arg.Value.Pos, "%s needs a non-empty name", a.displayName())
		return "", false
	}
	return arg.Value.Text, true
}

// schemaOf resolves @@schema for blk.
func (b *builder) schemaOf(blk *Block, attr *Attribute) string {
	ds := b.s.Datasource
	if attr == nil {
		if ds != nil && len(ds.Schemas) > 0 {
			b.errorf(blk.NamePos, "%s %q needs @@schema: the datasource lists schemas %s", blk.Kind, blk.Name, strings.Join(quoteAll(ds.Schemas), ", "))
		}
		if ds != nil {
			return ds.DefaultSchema
		}
		return ""
	}
	name, ok := b.stringArg(attr, "name")
	if !ok {
		return ""
	}
	if ds == nil || !slices.Contains(ds.Schemas, name) {
		b.errorf(attr.Args[0].Value.Pos, "schema %q is not listed in the schemas of the datasource", name)
	}
	return name
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func (b *builder) buildEnums() {
	allowed := map[string]bool{"map": true, "schema": true}
	for _, blk := range b.file.Blocks {
		if blk.Kind != EnumBlock || !b.isDecl(blk) {
			continue
		}
		e := &Enum{Name: blk.Name, EnumName: blk.Name, Doc: blk.Doc, Pos: blk.Pos}
		attrs := b.blockAttrs(blk, allowed, nil)
		if a := attrs["map"]; a != nil {
			if name, ok := b.stringArg(a, "name"); ok {
				e.Name = name
			}
		}
		e.Schema = b.schemaOf(blk, attrs["schema"])
		if len(blk.Values) == 0 {
			b.errorf(blk.NamePos, "enum %q has no values", blk.Name)
		}
		seen := map[string]*EnumEntry{}
		dbNames := map[string]*EnumEntry{}
		for _, entry := range blk.Values {
			if prev, ok := seen[entry.Name]; ok {
				b.errorf(entry.Pos, "enum %q: value %q is already declared at %s", blk.Name, entry.Name, prev.Pos)
				continue
			}
			seen[entry.Name] = entry
			v := &EnumValue{Name: entry.Name, ValueName: entry.Name, Doc: entry.Doc, Pos: entry.Pos}
			var mapAttr *Attribute
			for _, a := range entry.Attributes {
				if a.Name != "map" {
					b.errorf(a.Pos, "unknown attribute @%s on enum value %q", a.Name, entry.Name)
					continue
				}
				if mapAttr != nil {
					b.errorf(a.Pos, "attribute @map is already set on enum value %q at %s", entry.Name, mapAttr.Pos)
					continue
				}
				mapAttr = a
				if name, ok := b.stringArg(a, "name"); ok {
					v.Name = name
				}
			}
			if prev, ok := dbNames[v.Name]; ok {
				b.errorf(entry.Pos, "enum %q: value %q maps to %q, which value %q already uses", blk.Name, entry.Name, v.Name, prev.Name)
				continue
			}
			dbNames[v.Name] = entry
			e.Values = append(e.Values, v)
		}
		b.enums[blk.Name] = e
		b.s.Enums = append(b.s.Enums, e)
	}
}

func (b *builder) buildCompositeTypes() {
	for _, blk := range b.file.Blocks {
		if blk.Kind != TypeBlock || !b.isDecl(blk) {
			continue
		}
		ct := &CompositeType{Name: blk.Name, Doc: blk.Doc, Pos: blk.Pos}
		if ds := b.s.Datasource; ds != nil && ds.Provider != "" && ds.Provider != "mongodb" {
			b.errorf(blk.Pos, "composite type %q: composite types need the mongodb provider, not %q", blk.Name, ds.Provider)
		}
		for _, a := range blk.Attributes {
			b.errorf(a.Pos, "composite type %q cannot have block attributes; found @@%s", blk.Name, a.Name)
		}
		// A throwaway table collects the columns so that field checks are
		// shared with models.
		t := &Table{Name: blk.Name}
		b.columns[t] = map[string]*Column{}
		b.buildFields(blk, t)
		ct.Columns = t.Columns
		b.s.CompositeTypes = append(b.s.CompositeTypes, ct)
	}
}

var modelBlockAttrs = map[string]bool{
	"map": true, "schema": true, "ignore": true, "id": true, "unique": true,
	"index": true, "fulltext": true, "shardKey": true,
}

var repeatableBlockAttrs = map[string]bool{"unique": true, "index": true, "fulltext": true}

func (b *builder) buildTables() {
	for _, blk := range b.file.Blocks {
		if blk.Kind != ModelBlock && blk.Kind != ViewBlock || !b.isDecl(blk) {
			continue
		}
		t := &Table{
			Name:      blk.Name,
			ModelName: blk.Name,
			IsView:    blk.Kind == ViewBlock,
			Doc:       blk.Doc,
			Pos:       blk.Pos,
		}
		attrs := b.blockAttrs(blk, modelBlockAttrs, repeatableBlockAttrs)
		if a := attrs["map"]; a != nil {
			if name, ok := b.stringArg(a, "name"); ok {
				t.Name = name
			}
		}
		if a := attrs["ignore"]; a != nil {
			if len(a.Args) > 0 {
				b.errorf(a.Pos, "@@ignore takes no arguments")
			}
			t.Ignored = true
		}
		t.Schema = b.schemaOf(blk, attrs["schema"])
		b.tables[blk.Name] = t
		b.columns[t] = map[string]*Column{}
		b.s.Tables = append(b.s.Tables, t)
	}
	// Fields come second: relation fields need every table declared.
	for _, blk := range b.file.Blocks {
		if blk.Kind != ModelBlock && blk.Kind != ViewBlock || !b.isDecl(blk) {
			continue
		}
		t := b.tables[blk.Name]
		b.buildFields(blk, t)
		b.buildKeys(blk, t)
	}
}

// buildFields turns the fields of a model, view or composite type into
// columns, and records relation fields for buildRelations.
func (b *builder) buildFields(blk *Block, t *Table) {
	seen := map[string]*Field{}
	byColumn := map[string]*Column{}
	for _, f := range blk.Fields {
		if prev, ok := seen[f.Name]; ok {
			b.errorf(f.Pos, "%s %q: field %q is already declared at %s", blk.Kind, blk.Name, f.Name, prev.Pos)
			continue
		}
		seen[f.Name] = f
		col, rel := b.buildField(blk, f)
		if rel != nil {
			t.Relations = append(t.Relations, rel.rel)
			rel.table = t
			b.relationFields = append(b.relationFields, *rel)
			continue
		}
		if col == nil {
			continue
		}
		if prev, ok := byColumn[col.Name]; ok {
			b.errorf(f.Pos, "%s %q: field %q maps to column %q, which field %q already uses", blk.Kind, blk.Name, f.Name, col.Name, prev.FieldName)
			continue
		}
		byColumn[col.Name] = col
		b.columns[t][f.Name] = col
		t.Columns = append(t.Columns, col)
		if col.Unique {
			t.Indexes = append(t.Indexes, &Index{Name: uniqueName(f), Columns: []string{col.Name}, Unique: true, Pos: col.Pos})
		}
	}
}

func uniqueName(f *Field) string {
	for _, a := range f.Attributes {
		if a.Name == "unique" {
			if arg := a.Arg("map", -1); arg != nil && arg.Value.Kind == StringValue {
				return arg.Value.Text
			}
		}
	}
	return ""
}

// typeKind describes what a field's type name resolves to.
func (b *builder) typeKind(name string) (ColumnKind, *Block) {
	if scalarTypes[name] {
		return ScalarColumn, nil
	}
	if name == "Unsupported" {
		return UnsupportedColumn, nil
	}
	blk := b.decls[name]
	if blk == nil {
		return 0, nil
	}
	switch blk.Kind {
	case EnumBlock:
		return EnumColumn, blk
	case TypeBlock:
		return CompositeColumn, blk
	}
	return 0, blk // a model or view: a relation
}

// suggestType proposes the built-in or declared type closest to name: one
// that differs only in case, or else by at most two edits.
func (b *builder) suggestType(name string) string {
	var names []string
	for n := range scalarTypes {
		names = append(names, n)
	}
	for n := range b.decls {
		names = append(names, n)
	}
	sort.Strings(names)
	best, bestDist := "", 4
	for _, n := range names {
		if len(n) > len(name)+2 || len(name) > len(n)+2 {
			continue
		}
		d := editDistance(strings.ToLower(n), strings.ToLower(name))
		if !strings.EqualFold(n, name) {
			d++ // a difference in case only is the best suggestion
		}
		if d < bestDist {
			best, bestDist = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (b *builder) buildField(blk *Block, f *Field) (*Column, *pendingRelation) {
	kind, target := b.typeKind(f.Type.Name)
	if kind == 0 && target == nil {
		b.errorf(f.Type.Pos, "unknown type %q for field %q of %s %q%s", f.Type.Name, f.Name, blk.Kind, blk.Name, b.suggestType(f.Type.Name))
		return nil, nil
	}
	if kind == 0 {
		return nil, b.relationField(blk, f, target)
	}
	if kind == UnsupportedColumn && blk.Kind == TypeBlock {
		b.errorf(f.Type.Pos, "composite type %q cannot have Unsupported fields", blk.Name)
		return nil, nil
	}
	col := &Column{
		Name:        f.Name,
		FieldName:   f.Name,
		Type:        f.Type.Name,
		Kind:        kind,
		Unsupported: f.Type.Unsupported,
		Optional:    f.Type.Optional,
		List:        f.Type.List,
		Doc:         f.Doc,
		Pos:         f.Pos,
	}
	seen := map[string]*Attribute{}
	for _, a := range f.Attributes {
		key := a.Name
		prefix, native, isNative := strings.Cut(a.Name, ".")
		if isNative {
			key = "native type"
		}
		if prev, ok := seen[key]; ok {
			b.errorf(a.Pos, "field %q: %s is already set at %s", f.Name, describeAttr(a, isNative), prev.Pos)
			continue
		}
		seen[key] = a
		if isNative {
			b.nativeType(col, a, prefix, native)
			continue
		}
		if blk.Kind == TypeBlock && a.Name != "map" && a.Name != "default" {
			b.errorf(a.Pos, "attribute @%s cannot be used in composite type %q", a.Name, blk.Name)
			continue
		}
		switch a.Name {
		case "map":
			if name, ok := b.stringArg(a, "name"); ok {
				col.Name = name
			}
		case "id":
			b.noPositionalArgs(a)
			if blk.Kind == ViewBlock {
				b.errorf(a.Pos, "view %q cannot have a primary key; use @unique instead of @id", blk.Name)
				continue
			}
			col.ID = true
		case "unique":
			b.noPositionalArgs(a)
			col.Unique = true
		case "default":
			col.Default = b.defaultValue(f, col, a)
		case "updatedAt":
			b.noArgs(a)
			if f.Type.Name != "DateTime" {
				b.errorf(a.Pos, "@updatedAt needs a DateTime field; %q is %s", f.Name, f.Type)
			}
			col.UpdatedAt = true
		case "ignore":
			b.noArgs(a)
			col.Ignored = true
		case "shardKey":
			b.noArgs(a)
		case "relation":
			b.errorf(a.Pos, "@relation needs a field whose type is a model; %q is %s", f.Name, f.Type)
		default:
			b.errorf(a.Pos, "unknown attribute @%s on field %q", a.Name, f.Name)
		}
	}
	return col, nil
}

func describeAttr(a *Attribute, native bool) string {
	if native {
		return "a native type"
	}
	return "attribute " + a.displayName()
}

func (b *builder) noArgs(a *Attribute) {
	if len(a.Args) > 0 {
		b.errorf(a.Pos, "%s takes no arguments", a.displayName())
	}
}

func (b *builder) noPositionalArgs(a *Attribute) {
	for _, arg := range a.Args {
		if arg.Name == "" {
			b.errorf(arg.Pos, "%s takes only named arguments", a.displayName())
			return
		}
	}
}

func (b *builder) defaultValue(f *Field, col *Column, a *Attribute) *Value {
	arg := a.Arg("value", 0)
	if arg == nil {
		b.errorf(a.Pos, "@default needs a value")
		return nil
	}
	v := arg.Value
	if col.Kind == EnumColumn && v.Kind == ConstantValue {
		if e := b.enums[col.Type]; e != nil && !hasEnumValue(e, v.Text) {
			b.errorf(v.Pos, "default %s of field %q is not a value of enum %q", v.Text, f.Name, col.Type)
		}
	}
	return v
}

func hasEnumValue(e *Enum, name string) bool {
	for _, v := range e.Values {
		if v.ValueName == name {
			return true
		}
	}
	return false
}

func (b *builder) nativeType(col *Column, a *Attribute, prefix, name string) {
	if ds := b.s.Datasource; ds != nil && prefix != ds.Name {
		b.errorf(a.Pos, "native type attribute @%s: the prefix must be the datasource name %q, as in @%s.%s", a.Name, ds.Name, ds.Name, name)
		return
	}
	parts := make([]string, 0, len(a.Args))
	for _, arg := range a.Args {
		if arg.Name != "" {
			b.errorf(arg.Pos, "native type @%s takes only positional arguments", a.Name)
			return
		}
		if arg.Value.Kind == StringValue {
			parts = append(parts, arg.Value.Text)
		} else {
			parts = append(parts, arg.Value.String())
		}
	}
	col.NativeType = name
	if len(parts) > 0 {
		col.NativeType += "(" + strings.Join(parts, ",") + ")"
	}
}

// relationField checks the attributes of a field whose type is a model or
// view; buildRelations resolves it once every table has its columns.
func (b *builder) relationField(blk *Block, f *Field, target *Block) *pendingRelation {
	if blk.Kind == TypeBlock {
		b.errorf(f.Type.Pos, "composite type %q cannot refer to %s %q", blk.Name, target.Kind, target.Name)
		return nil
	}
	pr := &pendingRelation{
		block: blk,
		field: f,
		rel: &Relation{
			FieldName: f.Name,
			Target:    target.Name,
			List:      f.Type.List,
			Optional:  f.Type.Optional,
			Pos:       f.Pos,
		},
	}
	seen := map[string]*Attribute{}
	for _, a := range f.Attributes {
		if prev, ok := seen[a.Name]; ok {
			b.errorf(a.Pos, "field %q: attribute %s is already set at %s", f.Name, a.displayName(), prev.Pos)
			continue
		}
		seen[a.Name] = a
		switch a.Name {
		case "relation":
			pr.attr = a
		case "ignore":
			b.noArgs(a)
			pr.rel.Ignored = true
		default:
			b.errorf(a.Pos, "attribute %s cannot be used on relation field %q (its type is %s %q)", a.displayName(), f.Name, target.Kind, target.Name)
		}
	}
	return pr
}

// fieldList reads the field names of @@id, @@unique, @@index or @relation:
// an array of names, each optionally with arguments as in a(sort: Desc).
func (b *builder) fieldList(a *Attribute, v *Value) ([]string, []Position, bool) {
	if v.Kind != ArrayValue {
		b.errorf(v.Pos, "%s needs a list of fields such as [a, b], found %s", a.displayName(), v)
		return nil, nil, false
	}
	names := make([]string, 0, len(v.Elems))
	positions := make([]Position, 0, len(v.Elems))
	for _, e := range v.Elems {
		if e.Kind != ConstantValue && e.Kind != FunctionValue {
			b.errorf(e.Pos, "%s needs field names, found %s", a.displayName(), e)
			return nil, nil, false
		}
		names = append(names, e.Text)
		positions = append(positions, e.Pos)
	}
	return names, positions, true
}

// keyColumns resolves the fields of a block attribute to the database names
// of their columns.
func (b *builder) keyColumns(blk *Block, t *Table, a *Attribute) ([]*Column, bool) {
	arg := a.Arg("fields", 0)
	if arg == nil {
		b.errorf(a.Pos, "%s needs a list of fields such as [a, b]", a.displayName())
		return nil, false
	}
	names, positions, ok := b.fieldList(a, arg.Value)
	if !ok {
		return nil, false
	}
	if len(names) == 0 {
		b.errorf(arg.Value.Pos, "%s needs at least one field", a.displayName())
		return nil, false
	}
	cols := make([]*Column, 0, len(names))
	for i, name := range names {
		col := b.columns[t][name]
		if col == nil {
			if isRelationField(t, name) {
				b.errorf(positions[i], "%s names relation field %q of %s %q; name its scalar fields instead", a.displayName(), name, blk.Kind, blk.Name)
			} else {
				b.errorf(positions[i], "%s names unknown field %q of %s %q", a.displayName(), name, blk.Kind, blk.Name)
			}
			ok = false
			continue
		}
		cols = append(cols, col)
	}
	return cols, ok
}

func isRelationField(t *Table, name string) bool {
	for _, r := range t.Relations {
		if r.FieldName == name {
			return true
		}
	}
	return false
}

func columnNames(cols []*Column) []string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return names
}

// buildKeys derives the primary key and the indexes of a model or view.
func (b *builder) buildKeys(blk *Block, t *Table) {
	var idCols []*Column
	for _, c := range t.Columns {
		if c.ID {
			idCols = append(idCols, c)
		}
	}
	if len(idCols) > 1 {
		b.errorf(idCols[1].Pos, "%s %q has more than one @id (fields %q and %q); use @@id([...]) for a compound key",
			blk.Kind, blk.Name, idCols[0].FieldName, idCols[1].FieldName)
	}
	if len(idCols) > 0 {
		t.PrimaryKey = []string{idCols[0].Name}
	}
	for _, a := range blk.Attributes {
		switch a.Name {
		case "id":
			if blk.Kind == ViewBlock {
				b.errorf(a.Pos, "view %q cannot have a primary key; use @@unique instead of @@id", blk.Name)
				continue
			}
			if len(idCols) > 0 {
				b.errorf(a.Pos, "%s %q has both @id on field %q and @@id; use one of them", blk.Kind, blk.Name, idCols[0].FieldName)
				continue
			}
			cols, ok := b.keyColumns(blk, t, a)
			if !ok {
				continue
			}
			t.PrimaryKey = columnNames(cols)
			for _, c := range cols {
				c.ID = true
			}
		case "unique", "index", "fulltext":
			cols, ok := b.keyColumns(blk, t, a)
			if !ok {
				continue
			}
			idx := &Index{Columns: columnNames(cols), Unique: a.Name == "unique", Fulltext: a.Name == "fulltext", Pos: a.Pos}
			if arg := a.Arg("map", -1); arg != nil && arg.Value.Kind == StringValue {
				idx.Name = arg.Value.Text
			}
			if idx.Unique && len(cols) == 1 {
				cols[0].Unique = true
			}
			t.Indexes = append(t.Indexes, idx)
		case "shardKey":
			b.keyColumns(blk, t, a)
		}
	}
}

// relationName is the name Prisma gives a relation that @relation does not
// name: the two model names in sorted order, joined by "To".
func relationName(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return a + "To" + b
}

func (b *builder) buildRelations() {
	for i := range b.relationFields {
		pr := &b.relationFields[i]
		b.resolveRelation(pr)
	}
	b.buildJoinTables()
}

func (b *builder) resolveRelation(pr *pendingRelation) {
	rel, f := pr.rel, pr.field
	rel.Name = relationName(pr.block.Name, rel.Target)
	if pr.attr == nil {
		return
	}
	a := pr.attr
	if arg := a.Arg("name", 0); arg != nil {
		if arg.Value.Kind != StringValue || arg.Value.Text == "" {
			b.errorf(arg.Value.Pos, "@relation name must be a non-empty string, found %s", arg.Value)
		} else {
			rel.Name = arg.Value.Text
		}
	}
	for _, arg := range a.Args {
		if arg.Name == "" && arg != a.Arg("name", 0) {
			b.errorf(arg.Pos, "@relation takes one positional argument, the relation name")
		}
	}
	for _, action := range []struct {
		name string
		dst  *string
	}{{"onDelete", &rel.OnDelete}, {"onUpdate", &rel.OnUpdate}} {
		if arg := a.Arg(action.name, -1); arg != nil {
			if arg.Value.Kind != ConstantValue {
				b.errorf(arg.Value.Pos, "@relation %s needs a referential action such as Cascade, found %s", action.name, arg.Value)
			} else {
				*action.dst = arg.Value.Text
			}
		}
	}
	fieldsArg, refsArg := a.Arg("fields", -1), a.Arg("references", -1)
	if fieldsArg == nil && refsArg == nil {
		return
	}
	if fieldsArg == nil || refsArg == nil {
		b.errorf(a.Pos, "field %q: @relation needs both fields and references, or neither", f.Name)
		return
	}
	fields, fieldPos, ok1 := b.fieldList(a, fieldsArg.Value)
	refs, refPos, ok2 := b.fieldList(a, refsArg.Value)
	if !ok1 || !ok2 {
		return
	}
	if len(fields) != len(refs) || len(fields) == 0 {
		b.errorf(a.Pos, "field %q: @relation has %d fields and %d references; they must pair up", f.Name, len(fields), len(refs))
		return
	}
	own := b.columns[pr.table]
	target := b.tables[rel.Target]
	other := b.columns[target]
	ok := true
	for i, name := range fields {
		if c := own[name]; c != nil {
			rel.Columns = append(rel.Columns, c.Name)
			continue
		}
		b.errorf(fieldPos[i], "@relation fields names unknown field %q of %s %q", name, pr.block.Kind, pr.block.Name)
		ok = false
	}
	for i, name := range refs {
		if c := other[name]; c != nil {
			rel.ReferencedColumns = append(rel.ReferencedColumns, c.Name)
			continue
		}
		blk := b.decls[rel.Target]
		b.errorf(refPos[i], "@relation references names unknown field %q of %s %q", name, blk.Kind, blk.Name)
		ok = false
	}
	if !ok {
		rel.Columns, rel.ReferencedColumns = nil, nil
		return
	}
	rel.Fields, rel.References = fields, refs
}

// buildJoinTables adds the tables Prisma creates for implicit many-to-many
// relations: both sides are lists and neither names fields.
func (b *builder) buildJoinTables() {
	done := map[string]bool{}
	for i := range b.relationFields {
		pr := &b.relationFields[i]
		rel := pr.rel
		if !rel.List || done[rel.Name] {
			continue
		}
		opposite := b.oppositeRelation(pr)
		if opposite == nil || !opposite.rel.List {
			continue
		}
		done[rel.Name] = true
		models := []string{pr.block.Name, rel.Target}
		sort.Strings(models)
		t := &Table{Name: "_" + rel.Name, IsJoinTable: true, Pos: pr.field.Pos}
		ok := true
		for i, model := range models {
			mt := b.tables[model]
			if len(mt.PrimaryKey) != 1 {
				b.errorf(pr.field.Pos, "implicit many-to-many relation %q needs a single-field @id on %s %q", rel.Name, b.decls[model].Kind, model)
				ok = false
				break
			}
			if i == 0 {
				t.Schema = mt.Schema
			}
			id, _ := mt.Column(mt.PrimaryKey[0])
			t.Columns = append(t.Columns, &Column{
				Name:       string(rune('A' + i)),
				FieldName:  string(rune('A' + i)),
				Type:       id.Type,
				Kind:       id.Kind,
				NativeType: id.NativeType,
				Pos:        pr.field.Pos,
			})
		}
		if !ok {
			continue
		}
		// Since Prisma 6 the join tables on PostgreSQL have a primary key
		// where other databases have a unique index.
		if ds := b.s.Datasource; ds != nil && (ds.Provider == "postgresql" || ds.Provider == "postgres") {
			t.PrimaryKey = []string{"A", "B"}
			t.Columns[0].ID, t.Columns[1].ID = true, true
		} else {
			t.Indexes = append(t.Indexes, &Index{Name: "_" + rel.Name + "_AB_unique", Columns: []string{"A", "B"}, Unique: true, Pos: t.Pos})
		}
		t.Indexes = append(t.Indexes, &Index{Name: "_" + rel.Name + "_B_index", Columns: []string{"B"}, Pos: t.Pos})
		b.s.Tables = append(b.s.Tables, t)
	}
}

// oppositeRelation finds the field on the other side of a relation: a
// relation field of the target whose type is this model and whose relation
// has the same name.
func (b *builder) oppositeRelation(pr *pendingRelation) *pendingRelation {
	for i := range b.relationFields {
		o := &b.relationFields[i]
		if o == pr || o.block.Name != pr.rel.Target || o.rel.Target != pr.block.Name || o.rel.Name != pr.rel.Name {
			continue
		}
		return o
	}
	return nil
}

// checkTableNames reports two models or views that map to one table.
func (b *builder) checkTableNames() {
	seen := map[string]*Table{}
	for _, t := range b.s.Tables {
		key := t.Schema + "\x00" + t.Name
		if prev, ok := seen[key]; ok {
			what := "model"
			if t.IsView {
				what = "view"
			}
			if t.IsJoinTable {
				b.errorf(t.Pos, "the join table %q of an implicit many-to-many relation clashes with %q declared at %s", t.QualifiedName(), prev.ModelName, prev.Pos)
				continue
			}
			b.errorf(b.decls[t.ModelName].NamePos, "%s %q maps to table %q, which %q declared at %s already uses", what, t.ModelName, t.QualifiedName(), prev.ModelName, prev.Pos)
			continue
		}
		seen[key] = t
	}
}
