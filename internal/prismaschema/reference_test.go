package prismaschema

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// referenceDir holds the Node script that runs Prisma's own schema parser
// (@prisma/prisma-schema-wasm, pinned in package-lock.json).
const referenceDir = "testdata/reference"

// TestReferenceParserAgrees parses every schema of testdata/schemas with this
// package and with Prisma's own parser, and requires both to describe the
// same models, views, columns, database names, keys, relations, enums and
// composite types. Every schema of testdata/invalid must be rejected by both.
func TestReferenceParserAgrees(t *testing.T) {
	valid := readCorpus(t, "testdata/schemas")
	invalid := readCorpus(t, "testdata/invalid")
	if len(valid) < 20 {
		t.Fatalf("testdata/schemas holds %d schemas; the comparison needs at least 20", len(valid))
	}

	type job struct {
		name   string
		schema *Schema // nil for an invalid schema
	}
	var jobs []job
	var inputs []referenceInput
	for _, c := range valid {
		for _, variant := range []struct{ suffix, text string }{
			{"", c.text},
			{" (CRLF)", strings.ReplaceAll(c.text, "\n", "\r\n")},
		} {
			name := c.name + variant.suffix
			s, err := Parse(c.name, []byte(variant.text))
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			jobs = append(jobs, job{name: name, schema: s})
			inputs = append(inputs, referenceInput{Name: name, Text: withoutConnectionURLs(s.File, variant.text)})
		}
	}
	for _, c := range invalid {
		if _, err := Parse(c.name, []byte(c.text)); err == nil {
			t.Errorf("%s: parsed without error; it is in testdata/invalid", c.name)
		}
		jobs = append(jobs, job{name: c.name})
		inputs = append(inputs, referenceInput{Name: c.name, Text: c.text})
	}
	if t.Failed() {
		return
	}

	results := runReference(t, inputs)
	if len(results) != len(inputs) {
		t.Fatalf("reference parser answered %d schemas, want %d", len(results), len(inputs))
	}
	for i, j := range jobs {
		res := results[i]
		if res.Name != j.name {
			t.Fatalf("reference result %d is for %q, want %q", i, res.Name, j.name)
		}
		if j.schema == nil {
			if res.Error == "" {
				t.Errorf("%s: Prisma's parser accepts this schema, which is in testdata/invalid", j.name)
			}
			continue
		}
		if res.Error != "" {
			t.Errorf("%s: Prisma's parser rejects it:\n%s", j.name, res.Error)
			continue
		}
		want := res.normalize(j.schema.Datasource)
		got := normalizeSchema(j.schema)
		if len(want.Models)+len(want.Enums)+len(want.Types) == 0 {
			t.Errorf("%s: the reference parser found nothing", j.name)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: differs from Prisma's parser (-prisma +ours):\n%s", j.name, diff)
		}
	}
}

type corpusFile struct {
	name string
	text string
}

func readCorpus(t *testing.T, dir string) []corpusFile {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.prisma"))
	if err != nil {
		t.Fatal(err)
	}
	var out []corpusFile
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, corpusFile{name: filepath.Base(p), text: string(b)})
	}
	return out
}

// withoutConnectionURLs blanks the datasource properties that Prisma 7
// refuses in schema files, keeping line numbers.
func withoutConnectionURLs(f *File, text string) string {
	drop := map[int]bool{}
	for _, b := range f.Blocks {
		if b.Kind != DatasourceBlock {
			continue
		}
		for _, p := range b.Properties {
			switch p.Name {
			case "url", "directUrl", "shadowDatabaseUrl":
				drop[p.Pos.Line] = true
			}
		}
	}
	lines := strings.Split(text, "\n")
	for i := range lines {
		if drop[i+1] {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n")
}

type referenceInput struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

// runReference installs the pinned reference parser when node_modules is
// missing, then runs it once for all inputs.
func runReference(t *testing.T, inputs []referenceInput) []referenceResult {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the reference comparison needs %s on PATH: %v", tool, err)
		}
	}
	if _, err := os.Stat(filepath.Join(referenceDir, "node_modules", "@prisma", "prisma-schema-wasm", "package.json")); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = referenceDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", referenceDir, err, out)
		}
	}
	in, err := json.Marshal(inputs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "dmmf.js")
	cmd.Dir = referenceDir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node dmmf.js: %v\n%s", err, stderr.String())
	}
	var results []referenceResult
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("decode the output of node dmmf.js: %v", err)
	}
	return results
}

// referenceResult is what dmmf.js writes for one schema: a trimmed DMMF.
type referenceResult struct {
	Name   string      `json:"name"`
	Error  string      `json:"error"`
	Models []dmmfModel `json:"models"`
	Enums  []dmmfEnum  `json:"enums"`
	Types  []dmmfModel `json:"types"`
}

type dmmfModel struct {
	Name          string      `json:"name"`
	DBName        *string     `json:"dbName"`
	Schema        *string     `json:"schema"`
	Documentation *string     `json:"documentation"`
	PrimaryKey    []string    `json:"primaryKey"`
	UniqueFields  [][]string  `json:"uniqueFields"`
	Fields        []dmmfField `json:"fields"`
}

type dmmfField struct {
	Name               string          `json:"name"`
	DBName             *string         `json:"dbName"`
	Kind               string          `json:"kind"`
	Type               string          `json:"type"`
	IsList             bool            `json:"isList"`
	IsRequired         bool            `json:"isRequired"`
	IsUnique           bool            `json:"isUnique"`
	IsID               bool            `json:"isId"`
	IsUpdatedAt        bool            `json:"isUpdatedAt"`
	HasDefaultValue    bool            `json:"hasDefaultValue"`
	Default            json.RawMessage `json:"default"`
	NativeType         json.RawMessage `json:"nativeType"`
	Documentation      *string         `json:"documentation"`
	RelationName       *string         `json:"relationName"`
	RelationFromFields []string        `json:"relationFromFields"`
	RelationToFields   []string        `json:"relationToFields"`
	RelationOnDelete   *string         `json:"relationOnDelete"`
	RelationOnUpdate   *string         `json:"relationOnUpdate"`
}

type dmmfEnum struct {
	Name          string  `json:"name"`
	DBName        *string `json:"dbName"`
	Documentation *string `json:"documentation"`
	Values        []struct {
		Name          string  `json:"name"`
		DBName        *string `json:"dbName"`
		Documentation *string `json:"documentation"`
	} `json:"values"`
}

// The comparable shape: both parsers are reduced to these types.
type (
	cmpSchema struct {
		Models []cmpModel
		Enums  []cmpEnum
		Types  []cmpModel
	}
	cmpModel struct {
		Name, DBName, Schema, Doc string
		PrimaryKey                []string   // database names
		Uniques                   [][]string // compound unique keys, database names
		Columns                   []cmpColumn
		Relations                 []cmpRelation
	}
	cmpColumn struct {
		Field, DBName, Kind, Type           string
		List, Required, Unique, ID, Updated bool
		HasDefault                          bool
		Default                             string // JSON of a literal, or name() of a function
		NativeType                          string
		Doc                                 string
	}
	cmpRelation struct {
		Field, Target, Name string
		List, Required      bool
		Fields, References  []string
		OnDelete, OnUpdate  string
	}
	cmpEnum struct {
		Name, DBName, Doc string
		Values            []cmpEnumValue
	}
	cmpEnumValue struct{ Name, DBName, Doc string }
)

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func orName(db *string, name string) string {
	if db == nil || *db == "" {
		return name
	}
	return *db
}

// normalize reduces the DMMF to the comparable shape. The reference never
// sees the url, so tables without @@schema take ds.DefaultSchema.
func (r referenceResult) normalize(ds *Datasource) cmpSchema {
	typeNames := map[string]bool{}
	for _, ty := range r.Types {
		typeNames[ty.Name] = true
	}
	defaultSchema := ""
	if ds != nil {
		defaultSchema = ds.DefaultSchema
	}
	var out cmpSchema
	convert := func(m dmmfModel, isType bool) cmpModel {
		cm := cmpModel{Name: m.Name, DBName: orName(m.DBName, m.Name), Doc: deref(m.Documentation)}
		if !isType {
			cm.Schema = deref(m.Schema)
			if cm.Schema == "" {
				cm.Schema = defaultSchema
			}
		}
		dbNames := map[string]string{}
		for _, f := range m.Fields {
			dbNames[f.Name] = orName(f.DBName, f.Name)
		}
		pk := m.PrimaryKey
		if pk == nil {
			for _, f := range m.Fields {
				if f.IsID {
					pk = append(pk, f.Name)
				}
			}
		}
		for _, name := range pk {
			cm.PrimaryKey = append(cm.PrimaryKey, dbNames[name])
		}
		// Single-column unique keys show as isUnique on the column.
		for _, u := range m.UniqueFields {
			if len(u) > 1 {
				cm.Uniques = append(cm.Uniques, mapNames(u, dbNames))
			}
		}
		for _, f := range m.Fields {
			kind := f.Kind
			if kind == "object" && typeNames[f.Type] {
				kind = "composite"
			}
			if kind == "object" {
				cm.Relations = append(cm.Relations, cmpRelation{
					Field: f.Name, Target: f.Type, Name: deref(f.RelationName),
					List: f.IsList, Required: f.IsRequired,
					Fields: emptyNil(f.RelationFromFields), References: emptyNil(f.RelationToFields),
					OnDelete: deref(f.RelationOnDelete), OnUpdate: deref(f.RelationOnUpdate),
				})
				continue
			}
			cm.Columns = append(cm.Columns, cmpColumn{
				Field: f.Name, DBName: orName(f.DBName, f.Name), Kind: kind, Type: f.Type,
				List: f.IsList, Required: f.IsRequired, Unique: f.IsUnique, ID: isIDField(f, m.PrimaryKey),
				Updated: f.IsUpdatedAt, HasDefault: f.HasDefaultValue, Default: dmmfDefault(f.Default),
				NativeType: dmmfNativeType(f.NativeType), Doc: deref(f.Documentation),
			})
		}
		return cm
	}
	for _, m := range r.Models {
		out.Models = append(out.Models, convert(m, false))
	}
	for _, ty := range r.Types {
		out.Types = append(out.Types, convert(ty, true))
	}
	for _, e := range r.Enums {
		ce := cmpEnum{Name: e.Name, DBName: orName(e.DBName, e.Name), Doc: deref(e.Documentation)}
		for _, v := range e.Values {
			ce.Values = append(ce.Values, cmpEnumValue{Name: v.Name, DBName: orName(v.DBName, v.Name), Doc: deref(v.Documentation)})
		}
		out.Enums = append(out.Enums, ce)
	}
	return out
}

// isIDField: the DMMF sets isId only for @id and single-field @@id; a field
// of a compound @@id is part of the key too.
func isIDField(f dmmfField, pk []string) bool {
	if f.IsID {
		return true
	}
	for _, name := range pk {
		if name == f.Name {
			return true
		}
	}
	return false
}

func mapNames(names []string, m map[string]string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = m[n]
	}
	return out
}

func emptyNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// dmmfDefault renders a DMMF default: "name()" for a function, else the
// JSON of the literal with numbers normalised.
func dmmfDefault(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var fn struct {
		Name *string `json:"name"`
	}
	if raw[0] == '{' && json.Unmarshal(raw, &fn) == nil && fn.Name != nil {
		return *fn.Name + "()"
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "undecodable: " + string(raw)
	}
	return canonicalJSON(v)
}

func canonicalJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("unencodable %v", v)
	}
	return string(b)
}

func dmmfNativeType(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var nt []json.RawMessage
	if err := json.Unmarshal(raw, &nt); err != nil || len(nt) != 2 {
		return "undecodable: " + string(raw)
	}
	var name string
	var args []string
	if json.Unmarshal(nt[0], &name) != nil || json.Unmarshal(nt[1], &args) != nil {
		return "undecodable: " + string(raw)
	}
	if len(args) == 0 {
		return name
	}
	return name + "(" + strings.Join(args, ",") + ")"
}

// normalizeSchema reduces our Schema to the comparable shape, leaving out
// what the DMMF does not describe: ignored models and fields, Unsupported
// fields and the join tables of implicit many-to-many relations.
func normalizeSchema(s *Schema) cmpSchema {
	var out cmpSchema
	for _, t := range s.Tables {
		if t.Ignored || t.IsJoinTable {
			continue
		}
		cm := cmpModel{Name: t.ModelName, DBName: t.Name, Schema: t.Schema, Doc: t.Doc, PrimaryKey: t.PrimaryKey}
		for _, idx := range t.Indexes {
			if idx.Unique && len(idx.Columns) > 1 {
				cm.Uniques = append(cm.Uniques, idx.Columns)
			}
		}
		cm.Columns = normalizeColumns(t.Columns)
		for _, r := range t.Relations {
			if r.Ignored {
				continue
			}
			cm.Relations = append(cm.Relations, cmpRelation{
				Field: r.FieldName, Target: r.Target, Name: r.Name,
				List: r.List, Required: !r.Optional,
				Fields: emptyNil(r.Fields), References: emptyNil(r.References),
				OnDelete: r.OnDelete, OnUpdate: r.OnUpdate,
			})
		}
		out.Models = append(out.Models, cm)
	}
	for _, ct := range s.CompositeTypes {
		out.Types = append(out.Types, cmpModel{Name: ct.Name, DBName: ct.Name, Doc: ct.Doc, Columns: normalizeColumns(ct.Columns)})
	}
	for _, e := range s.Enums {
		ce := cmpEnum{Name: e.EnumName, DBName: e.Name, Doc: e.Doc}
		for _, v := range e.Values {
			ce.Values = append(ce.Values, cmpEnumValue{Name: v.ValueName, DBName: v.Name, Doc: v.Doc})
		}
		out.Enums = append(out.Enums, ce)
	}
	return out
}

func normalizeColumns(cols []*Column) []cmpColumn {
	var out []cmpColumn
	for _, c := range cols {
		if c.Ignored || c.Kind == UnsupportedColumn {
			continue
		}
		out = append(out, cmpColumn{
			Field: c.FieldName, DBName: c.Name, Kind: c.Kind.String(), Type: c.Type,
			List: c.List, Required: !c.Optional, Unique: c.Unique, ID: c.ID, Updated: c.UpdatedAt,
			HasDefault: c.Default != nil, Default: ourDefault(c.Default, c.Type),
			NativeType: c.NativeType, Doc: c.Doc,
		})
	}
	return out
}

// ourDefault renders a default like dmmfDefault does.
func ourDefault(v *Value, typ string) string {
	if v == nil {
		return ""
	}
	if v.Kind == FunctionValue {
		return v.Text + "()"
	}
	return canonicalJSON(literal(v, typ))
}

func literal(v *Value, typ string) any {
	switch v.Kind {
	case StringValue:
		return v.Text
	case NumberValue:
		if typ == "BigInt" {
			// The DMMF writes BigInt values as strings: JSON numbers
			// cannot hold them.
			return v.Text
		}
		f, err := strconv.ParseFloat(v.Text, 64)
		if err != nil || math.IsInf(f, 0) {
			return v.Text
		}
		return f
	case ConstantValue:
		switch v.Text {
		case "true":
			return true
		case "false":
			return false
		}
		return v.Text
	case ArrayValue:
		out := make([]any, len(v.Elems))
		for i, e := range v.Elems {
			out[i] = literal(e, typ)
		}
		return out
	}
	return v.String()
}

func TestNormalizeDetectsDifferences(t *testing.T) {
	// The comparison must be able to fail: a schema compared with a changed
	// copy of itself differs.
	src := []byte("datasource db {\n  provider = \"postgresql\"\n}\nmodel A {\n  id Int @id @map(\"a_id\")\n}\n")
	s, err := Parse("a.prisma", src)
	if err != nil {
		t.Fatal(err)
	}
	before := normalizeSchema(s)
	s.Tables[0].Columns[0].Name = "id"
	if cmp.Diff(before, normalizeSchema(s)) == "" {
		t.Fatal("a changed column name went unnoticed")
	}
}
