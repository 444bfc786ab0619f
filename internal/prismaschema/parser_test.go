package prismaschema

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustParseFile(t *testing.T, src string) *File {
	t.Helper()
	f, err := ParseFile("schema.prisma", []byte(src))
	if err != nil {
		t.Fatalf("ParseFile: %v", err)
	}
	return f
}

func TestFieldTypes(t *testing.T) {
	tests := []struct {
		name string
		line string
		want FieldType
		text string
	}{
		{name: "plain", line: "a Int", want: FieldType{Name: "Int"}, text: "Int"},
		{name: "optional", line: "a String?", want: FieldType{Name: "String", Optional: true}, text: "String?"},
		{name: "list", line: "a Float[]", want: FieldType{Name: "Float", List: true}, text: "Float[]"},
		{name: "model_type", line: "a Post[]", want: FieldType{Name: "Post", List: true}, text: "Post[]"},
		{
			name: "unsupported",
			line: `a Unsupported("geometry(Point, 4326)")?`,
			want: FieldType{Name: "Unsupported", Unsupported: "geometry(Point, 4326)", HasArgs: true, Optional: true},
			text: `Unsupported("geometry(Point, 4326)")?`,
		},
		{
			name: "unsupported_list",
			line: `a Unsupported("int4range")[]`,
			want: FieldType{Name: "Unsupported", Unsupported: "int4range", HasArgs: true, List: true},
			text: `Unsupported("int4range")[]`,
		},
		{name: "attribute_without_space", line: "a Int?@unique", want: FieldType{Name: "Int", Optional: true}, text: "Int?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustParseFile(t, "model M {\n  "+tt.line+"\n}\n")
			got := f.Blocks[0].Fields[0].Type
			got.Pos = Position{}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("type (-want +got):\n%s", diff)
			}
			if got.String() != tt.text {
				t.Errorf("String() = %q, want %q", got.String(), tt.text)
			}
		})
	}
}

func TestAttributeArguments(t *testing.T) {
	tests := []struct {
		name string
		attr string
		want string // the attribute rendered back
	}{
		{name: "no_arguments", attr: "@id", want: "@id"},
		{name: "empty_parentheses", attr: "@db.Uuid()", want: "@db.Uuid()"},
		{name: "positional_string", attr: `@map( "user_id" )`, want: `@map("user_id")`},
		{name: "function_call", attr: "@default(autoincrement())", want: "@default(autoincrement())"},
		{name: "env_call", attr: `@default(env("X"))`, want: `@default(env("X"))`},
		{name: "dbgenerated", attr: `@default(dbgenerated("gen_random_uuid()"))`, want: `@default(dbgenerated("gen_random_uuid()"))`},
		{name: "named_arguments_in_call", attr: "@default(sequence(maxValue: 100, start: 1))", want: "@default(sequence(maxValue: 100, start: 1))"},
		{name: "native_type_two_numbers", attr: "@db.Decimal(10,2)", want: "@db.Decimal(10, 2)"},
		{name: "negative_float", attr: "@default(-1.25)", want: "@default(-1.25)"},
		{name: "boolean_constant", attr: "@default(false)", want: "@default(false)"},
		{name: "enum_constant", attr: "@default(ACTIVE)", want: "@default(ACTIVE)"},
		{name: "empty_array", attr: "@default([])", want: "@default([])"},
		{name: "array_of_strings", attr: `@default(["a","b"])`, want: `@default(["a", "b"])`},
		{name: "escaped_string", attr: `@default("say \"hi\"\\n\t\u00e9")`, want: `@default("say \"hi\"\\n\té")`},
		{
			name: "relation",
			attr: `@relation("Tree",fields:[parentId],references:[id],onDelete:Cascade)`,
			want: `@relation("Tree", fields: [parentId], references: [id], onDelete: Cascade)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustParseFile(t, "model M {\n  a Int "+tt.attr+"\n}\n")
			attrs := f.Blocks[0].Fields[0].Attributes
			if len(attrs) != 1 {
				t.Fatalf("got %d attributes, want 1", len(attrs))
			}
			if got := attrs[0].String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestBlockAttributeArguments(t *testing.T) {
	f := mustParseFile(t, "model M {\n  a Int\n  b Int\n  @@index([a, b(sort: Desc, ops: raw(\"x\"))], type: Brin, map: \"m_idx\")\n}\n")
	a := f.Blocks[0].Attributes[0]
	if !a.Block || a.Name != "index" || a.Pos != (Position{Line: 4, Column: 3}) {
		t.Fatalf("attribute %+v", a)
	}
	fields := a.Arg("fields", 0).Value
	if fields.Kind != ArrayValue || len(fields.Elems) != 2 {
		t.Fatalf("fields: %s", fields)
	}
	b := fields.Elems[1]
	if b.Kind != FunctionValue || b.Text != "b" || b.Arg("sort", -1).Value.Text != "Desc" {
		t.Errorf("second element: %s", b)
	}
	if got := b.Arg("ops", -1).Value.String(); got != `raw("x")` {
		t.Errorf("ops = %s", got)
	}
	if got := a.Arg("type", -1).Value; got.Kind != ConstantValue || got.Text != "Brin" {
		t.Errorf("type = %s", got)
	}
	if a.Arg("map", -1).Value.Text != "m_idx" {
		t.Errorf("map = %s", a.Arg("map", -1).Value)
	}
	if a.Arg("fields", 1) != nil || a.Arg("where", -1) != nil {
		t.Error("Arg found an argument that is not there")
	}
}

func TestDocComments(t *testing.T) {
	src := strings.Join([]string{
		"/// detached: a blank line follows",
		"",
		"/// Model doc.",
		"// plain comments do not break doc comments",
		"///   second line, trimmed   ",
		"model M {",
		"  /// field doc",
		"",
		"  /// kept across the blank line",
		"  id Int @id /// trailing",
		"  /// dropped: a block attribute follows",
		"  @@map(\"m\")",
		"  /// dropped: the block ends",
		"}",
		"enum E {",
		"  /// value doc",
		"  A",
		"  B /// trailing value doc",
		"  C // plain",
		"}",
	}, "\n")
	f := mustParseFile(t, src)
	m, e := f.Blocks[0], f.Blocks[1]
	if want := "Model doc.\nsecond line, trimmed"; m.Doc != want {
		t.Errorf("model doc %q, want %q", m.Doc, want)
	}
	if want := "field doc\nkept across the blank line\ntrailing"; m.Fields[0].Doc != want {
		t.Errorf("field doc %q, want %q", m.Fields[0].Doc, want)
	}
	for i, want := range []string{"value doc", "trailing value doc", ""} {
		if e.Values[i].Doc != want {
			t.Errorf("enum value %s doc %q, want %q", e.Values[i].Name, e.Values[i].Doc, want)
		}
	}
}

func TestLineEndingsAndByteOrderMark(t *testing.T) {
	lf := pg + "model A {\n\tid Int @id // comment\n  name String @map(\"a b\")\n}\n"
	tests := []struct {
		name string
		src  string
	}{
		{name: "lf", src: lf},
		{name: "crlf", src: strings.ReplaceAll(lf, "\n", "\r\n")},
		{name: "byte_order_mark", src: "\uFEFF" + lf},
		{name: "no_final_newline", src: strings.TrimSuffix(lf, "\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("schema.prisma", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			tbl, _ := s.Table("A")
			if tbl == nil || len(tbl.Columns) != 2 || tbl.Columns[1].Name != "a b" {
				t.Fatalf("table %+v", tbl)
			}
			if tbl.Columns[1].Pos != (Position{Line: 6, Column: 3}) {
				t.Errorf("position %s, want 6:3", tbl.Columns[1].Pos)
			}
		})
	}
}

func TestPositionsCountCharacters(t *testing.T) {
	src := "/// Größe\nmodel A {\n  id Int @id @map(\"größe\") @bogus\n}\n"
	_, err := Parse("s.prisma", []byte(src))
	// "  id Int @id @map("größe") " is 26 characters but 28 bytes long.
	if want := `s.prisma:3:28: unknown attribute @bogus on field "id"`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestKeywordsAreNamesInsideBlocks(t *testing.T) {
	f := mustParseFile(t, "model model {\n  model model\n  enum Int\n  type String\n  view Boolean\n}\n")
	b := f.Blocks[0]
	if b.Name != "model" || len(b.Fields) != 4 || b.Fields[0].Type.Name != "model" || b.Fields[3].Name != "view" {
		t.Errorf("block %+v", b)
	}
}

func TestBlockClosedOnTheLineOfTheNextBlock(t *testing.T) {
	// Prisma accepts "} model B {" and so does this parser.
	f := mustParseFile(t, "model A {\n  id Int @id\n} model B {\n  id Int @id\n}\n")
	if len(f.Blocks) != 2 || f.Blocks[1].Name != "B" {
		t.Fatalf("blocks: %+v", f.Blocks)
	}
}

func TestEmptyInput(t *testing.T) {
	for _, src := range []string{"", "\n\n", "// only a comment", "/// only a doc comment\n"} {
		s, err := Parse("s.prisma", []byte(src))
		if err != nil {
			t.Errorf("%q: %v", src, err)
			continue
		}
		if len(s.Tables) != 0 || s.Datasource != nil {
			t.Errorf("%q: schema not empty", src)
		}
	}
}

func TestGeneratorAndDatasourceProperties(t *testing.T) {
	src := strings.Join([]string{
		`generator client {`,
		`  provider        = "prisma-client-js"`,
		`  previewFeatures = ["views", "multiSchema"]`,
		`  binaryTargets   = ["native"]`,
		`}`,
		`generator erd {`,
		`  provider = env("ERD_PROVIDER")`,
		`}`,
		`datasource main {`,
		`  provider     = "postgresql"`,
		`  url          = env("DATABASE_URL")`,
		`  schemas      = ["app", "audit"]`,
		`  relationMode = "prisma"`,
		`  extensions   = [pg_trgm, postgis(version: "3.4")]`,
		`}`,
	}, "\n")
	s, err := Parse("s.prisma", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Generators) != 2 || s.Generators[0].Provider != "prisma-client-js" || s.Generators[1].Provider != "" {
		t.Errorf("generators: %+v %+v", s.Generators[0], s.Generators[1])
	}
	ds := s.Datasource
	if ds.Name != "main" || ds.Provider != "postgresql" || ds.URL.String() != `env("DATABASE_URL")` {
		t.Errorf("datasource %+v", ds)
	}
	if diff := cmp.Diff([]string{"app", "audit"}, ds.Schemas); diff != "" {
		t.Errorf("schemas (-want +got):\n%s", diff)
	}
	if ds.DefaultSchema != "" {
		t.Errorf("default schema %q from env()", ds.DefaultSchema)
	}
	ext := s.File.Blocks[2].Properties[4].Value
	if got := ext.String(); got != `[pg_trgm, postgis(version: "3.4")]` {
		t.Errorf("extensions = %s", got)
	}
}

func TestDatasourceWithAndWithoutURL(t *testing.T) {
	tests := []struct {
		name          string
		datasource    string
		wantURL       string
		defaultSchema string
		tableSchema   string
	}{
		{name: "prisma_7_without_url", datasource: "  provider = \"postgresql\"\n"},
		{name: "prisma_6_env_url", datasource: "  provider = \"postgresql\"\n  url = env(\"DATABASE_URL\")\n  directUrl = env(\"DIRECT_URL\")\n", wantURL: `env("DATABASE_URL")`},
		{
			name:          "literal_url_with_schema",
			datasource:    "  provider = \"postgresql\"\n  url = \"postgresql://localhost:5432/app?schema=sales\"\n",
			wantURL:       `"postgresql://localhost:5432/app?schema=sales"`,
			defaultSchema: "sales",
			tableSchema:   "sales",
		},
		{name: "literal_url_without_schema", datasource: "  provider = \"sqlite\"\n  url = \"file:./dev.db\"\n", wantURL: `"file:./dev.db"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("s.prisma", []byte("datasource db {\n"+tt.datasource+"}\nmodel A {\n  id Int @id\n}\n"))
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Datasource.URL.String(); got != tt.wantURL {
				t.Errorf("url %s, want %s", got, tt.wantURL)
			}
			if s.Datasource.DefaultSchema != tt.defaultSchema || s.Tables[0].Schema != tt.tableSchema {
				t.Errorf("default schema %q, table schema %q; want %q, %q",
					s.Datasource.DefaultSchema, s.Tables[0].Schema, tt.defaultSchema, tt.tableSchema)
			}
		})
	}
}

func TestValueStringRoundTrips(t *testing.T) {
	for _, text := range []string{
		`"plain"`, `"quote \" backslash \\ newline \n tab \t control \u0001"`, `42`, `-0.5`,
		`now()`, `[]`, `[1, 2, 3]`, `[a, b(sort: Desc)]`, `f(g(h("x")), n: [k])`, `Max`,
	} {
		f := mustParseFile(t, "generator g {\n  x = "+text+"\n}\n")
		if got := f.Blocks[0].Properties[0].Value.String(); got != text {
			t.Errorf("%s renders as %s", text, got)
		}
	}
}

func TestDeepNestingIsAnError(t *testing.T) {
	for name, value := range map[string]string{
		"arrays":         strings.Repeat("[", 100000) + strings.Repeat("]", 100000),
		"function_calls": strings.Repeat("f(", 100000) + strings.Repeat(")", 100000),
		"mixed":          strings.Repeat("f([", 50000) + strings.Repeat("])", 50000),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseFile("s.prisma", []byte("generator g {\n  x = "+value+"\n}\n"))
			if err == nil || !strings.Contains(err.Error(), "nested more than 64 deep") {
				t.Errorf("got %v", err)
			}
		})
	}
	nested := strings.Repeat("[", 64) + strings.Repeat("]", 64)
	if _, err := ParseFile("s.prisma", []byte("generator g {\n  x = "+nested+"\n}\n")); err != nil {
		t.Errorf("64 levels: %v", err)
	}
}
