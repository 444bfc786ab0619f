package prismaschema

import (
	"errors"
	"strings"
	"testing"
)

// pg is a three-line datasource header: schemas in the tests below start
// their own lines at line 4.
const pg = "datasource db {\n  provider = \"postgresql\"\n}\n"

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // the first error
	}{
		// Lexical errors.
		{
			name: "unterminated_string",
			src:  pg + "model A {\n  id Int @id @map(\"a_id)\n}\n",
			want: `schema.prisma:5:19: string is not terminated before the end of the line`,
		},
		{
			name: "unknown_escape",
			src:  pg + "model A {\n  id Int @id @map(\"a\\qb\")\n}\n",
			want: `schema.prisma:5:21: unknown escape sequence \q in string`,
		},
		{
			name: "short_unicode_escape",
			src:  pg + "model A {\n  id Int @id @map(\"\\u12\")\n}\n",
			want: `schema.prisma:5:20: escape \u needs four hexadecimal digits`,
		},
		{
			name: "unexpected_character",
			src:  pg + "model A {\n  id Int @id $\n}\n",
			want: `schema.prisma:5:14: unexpected character '$'`,
		},
		{
			name: "dash_in_model_name",
			src:  pg + "model A-b {\n  id Int @id\n}\n",
			want: `schema.prisma:4:8: unexpected character '-'`,
		},
		{
			name: "malformed_number",
			src:  pg + "model A {\n  id Float @id @default(1.5.2)\n}\n",
			want: `schema.prisma:5:25: malformed number "1.5."`,
		},
		{
			name: "attribute_without_name",
			src:  pg + "model A {\n  id Int @ id\n}\n",
			want: `schema.prisma:5:10: expected attribute name after "@"`,
		},
		{
			name: "native_type_without_name",
			src:  pg + "model A {\n  id Int @id @db.\n}\n",
			want: `schema.prisma:5:14: expected attribute name after "@db."`,
		},
		{
			name: "non_ascii_identifier",
			src:  pg + "model Straße {\n  id Int @id\n}\n",
			want: `schema.prisma:4:11: unexpected character 'ß'`,
		},
		// Syntax errors.
		{
			name: "expected_field_type",
			src:  pg + "model A {\n  id Int @id\n  name {\n}\n",
			want: `schema.prisma:6:8: expected field type, found "{"`,
		},
		{
			name: "missing_field_type_at_end_of_line",
			src:  pg + "model A {\n  id Int @id\n  name\n}\n",
			want: `schema.prisma:6:7: expected field type, found end of line`,
		},
		{
			name: "unknown_keyword",
			src:  "modle A {\n  id Int @id\n}\n",
			want: `schema.prisma:1:1: expected "model", "view", "enum", "type", "datasource" or "generator", found "modle"`,
		},
		{
			name: "stray_closing_brace",
			src:  pg + "}\n",
			want: `schema.prisma:4:1: expected "model", "view", "enum", "type", "datasource" or "generator", found "}"`,
		},
		{
			name: "missing_block_name",
			src:  pg + "model {\n}\n",
			want: `schema.prisma:4:7: expected model name, found "{"`,
		},
		{
			name: "brace_on_next_line",
			src:  pg + "model A\n{\n}\n",
			want: `schema.prisma:4:8: expected "{" after model name, found end of line`,
		},
		{
			name: "unclosed_block",
			src:  pg + "model A {\n  id Int @id\n",
			want: `schema.prisma:6:1: expected "}" to close model "A" opened at 4:1, found end of file`,
		},
		{
			name: "property_without_equals",
			src:  "datasource db {\n  provider \"postgresql\"\n}\n",
			want: `schema.prisma:2:12: expected "=" after "provider", found string "postgresql"`,
		},
		{
			name: "field_in_datasource",
			src:  "datasource db {\n  @@map(\"x\")\n}\n",
			want: `schema.prisma:2:3: expected datasource property, found "@@map"`,
		},
		{
			name: "value_missing",
			src:  "datasource db {\n  provider =\n}\n",
			want: `schema.prisma:2:13: expected a value, found end of line`,
		},
		{
			name: "two_fields_on_one_line",
			src:  pg + "model A {\n  id Int @id name String\n}\n",
			want: `schema.prisma:5:14: expected end of line, found "name"`,
		},
		{
			name: "space_before_optional_marker",
			src:  pg + "model A {\n  id Int @id\n  name String ?\n}\n",
			want: `schema.prisma:6:15: "?" must follow the type name without a space`,
		},
		{
			name: "space_inside_list_brackets",
			src:  pg + "model A {\n  id Int @id\n  tags String[ ]\n}\n",
			want: `schema.prisma:6:16: expected "]" right after "[", found "]"`,
		},
		{
			name: "optional_marker_before_list",
			src:  pg + "model A {\n  id Int @id\n  tags String?[]\n}\n",
			want: `schema.prisma:6:15: optional lists are not supported; use String[] or String?`,
		},
		{
			name: "arguments_on_scalar_type",
			src:  pg + "model A {\n  id Int(4) @id\n}\n",
			want: `schema.prisma:5:9: type Int takes no arguments; only Unsupported("...") does`,
		},
		{
			name: "unsupported_without_type",
			src:  pg + "model A {\n  id Int @id\n  g Unsupported\n}\n",
			want: `schema.prisma:6:16: expected "(" after Unsupported, found end of line`,
		},
		{
			name: "unsupported_with_constant",
			src:  pg + "model A {\n  id Int @id\n  g Unsupported(circle)\n}\n",
			want: `schema.prisma:6:17: expected database type as a string in Unsupported("..."), found "circle"`,
		},
		{
			name: "unclosed_argument_list",
			src:  pg + "model A {\n  id Int @id @default(autoincrement()\n}\n",
			want: `schema.prisma:5:38: expected "," or ")", found end of line`,
		},
		{
			name: "unclosed_array",
			src:  pg + "model A {\n  id Int @id\n  @@index([id\n}\n",
			want: `schema.prisma:6:14: expected "," or "]", found end of line`,
		},
		{
			name: "enum_value_with_type",
			src:  pg + "enum E {\n  A Int\n}\n",
			want: `schema.prisma:5:5: expected end of line, found "Int"`,
		},
		// Semantic errors.
		{
			name: "unknown_type",
			src:  pg + "model A {\n  id Int @id\n  b  Bogus\n}\n",
			want: `schema.prisma:6:6: unknown type "Bogus" for field "b" of model "A"`,
		},
		{
			name: "unknown_type_differs_in_case",
			src:  pg + "model A {\n  id Int @id\n  at datetime\n}\n",
			want: `schema.prisma:6:6: unknown type "datetime" for field "at" of model "A" (did you mean "DateTime"?)`,
		},
		{
			name: "duplicate_model",
			src:  pg + "model A {\n  id Int @id\n}\nmodel A {\n  id Int @id\n}\n",
			want: `schema.prisma:7:7: model "A" is already declared as a model at 4:1`,
		},
		{
			name: "enum_named_like_model",
			src:  pg + "model A {\n  id Int @id\n}\nenum A {\n  X\n}\n",
			want: `schema.prisma:7:6: enum "A" is already declared as a model at 4:1`,
		},
		{
			name: "model_named_like_scalar",
			src:  pg + "model String {\n  id Int @id\n}\n",
			want: `schema.prisma:4:7: model name "String" is a built-in type`,
		},
		{
			name: "id_names_unknown_field",
			src:  pg + "model A {\n  x Int\n  y Int\n  @@id([x, z])\n}\n",
			want: `schema.prisma:7:12: @@id names unknown field "z" of model "A"`,
		},
		{
			name: "id_names_relation_field",
			src:  pg + "model A {\n  x Int\n  b B @relation(fields: [x], references: [id])\n  @@id([b])\n}\nmodel B {\n  id Int @id\n  as A[]\n}\n",
			want: `schema.prisma:7:9: @@id names relation field "b" of model "A"; name its scalar fields instead`,
		},
		{
			name: "id_without_fields",
			src:  pg + "model A {\n  x Int\n  @@id\n}\n",
			want: `schema.prisma:6:3: @@id needs a list of fields such as [a, b]`,
		},
		{
			name: "id_fields_not_a_list",
			src:  pg + "model A {\n  x Int\n  @@id(x)\n}\n",
			want: `schema.prisma:6:8: @@id needs a list of fields such as [a, b], found x`,
		},
		{
			name: "two_id_fields",
			src:  pg + "model A {\n  x Int @id\n  y Int @id\n}\n",
			want: `schema.prisma:6:3: model "A" has more than one @id (fields "x" and "y"); use @@id([...]) for a compound key`,
		},
		{
			name: "id_and_compound_id",
			src:  pg + "model A {\n  x Int @id\n  y Int\n  @@id([x, y])\n}\n",
			want: `schema.prisma:7:3: model "A" has both @id on field "x" and @@id; use one of them`,
		},
		{
			name: "duplicate_field",
			src:  pg + "model A {\n  id Int @id\n  id String\n}\n",
			want: `schema.prisma:6:3: model "A": field "id" is already declared at 5:3`,
		},
		{
			name: "duplicate_column_name",
			src:  pg + "model A {\n  id Int @id @map(\"key\")\n  key Int\n}\n",
			want: `schema.prisma:6:3: model "A": field "key" maps to column "key", which field "id" already uses`,
		},
		{
			name: "duplicate_table_name",
			src:  pg + "model A {\n  id Int @id\n  @@map(\"t\")\n}\nmodel B {\n  id Int @id\n  @@map(\"t\")\n}\n",
			want: `schema.prisma:8:7: model "B" maps to table "t", which "A" declared at 4:1 already uses`,
		},
		{
			name: "unknown_field_attribute",
			src:  pg + "model A {\n  id Int @id @primary\n}\n",
			want: `schema.prisma:5:14: unknown attribute @primary on field "id"`,
		},
		{
			name: "unknown_block_attribute",
			src:  pg + "model A {\n  id Int @id\n  @@table(\"a\")\n}\n",
			want: `schema.prisma:6:3: unknown attribute @@table on model "A"`,
		},
		{
			name: "repeated_attribute",
			src:  pg + "model A {\n  id Int @id @default(1) @default(2)\n}\n",
			want: `schema.prisma:5:26: field "id": attribute @default is already set at 5:14`,
		},
		{
			name: "two_native_types",
			src:  pg + "model A {\n  id Int @id @db.Integer @db.SmallInt\n}\n",
			want: `schema.prisma:5:26: field "id": a native type is already set at 5:14`,
		},
		{
			name: "repeated_block_map",
			src:  pg + "model A {\n  id Int @id\n  @@map(\"a\")\n  @@map(\"b\")\n}\n",
			want: `schema.prisma:7:3: attribute @@map is already set on model "A" at 6:3`,
		},
		{
			name: "map_without_string",
			src:  pg + "model A {\n  id Int @id @map(a_id)\n}\n",
			want: `schema.prisma:5:14: @map needs one string argument`,
		},
		{
			name: "map_with_empty_name",
			src:  pg + "model A {\n  id Int @id\n  @@map(\"\")\n}\n",
			want: `schema.prisma:6:9: @@map needs a non-empty name`,
		},
		{
			name: "default_without_value",
			src:  pg + "model A {\n  id Int @id @default()\n}\n",
			want: `schema.prisma:5:14: @default needs a value`,
		},
		{
			name: "native_type_prefix",
			src:  "datasource pg {\n  provider = \"postgresql\"\n}\nmodel A {\n  id String @id @db.Uuid\n}\n",
			want: `schema.prisma:5:17: native type attribute @db.Uuid: the prefix must be the datasource name "pg", as in @pg.Uuid`,
		},
		{
			name: "relation_on_scalar_field",
			src:  pg + "model A {\n  id Int @id @relation(\"x\")\n}\n",
			want: `schema.prisma:5:14: @relation needs a field whose type is a model; "id" is Int`,
		},
		{
			name: "attribute_on_relation_field",
			src:  pg + "model A {\n  id Int @id\n  bId Int\n  b B @relation(fields: [bId], references: [id]) @unique\n}\nmodel B {\n  id Int @id\n  as A[]\n}\n",
			want: `schema.prisma:7:50: attribute @unique cannot be used on relation field "b" (its type is model "B")`,
		},
		{
			name: "relation_references_unknown_field",
			src:  pg + "model A {\n  id Int @id\n  bId Int\n  b B @relation(fields: [bId], references: [key])\n}\nmodel B {\n  id Int @id\n  as A[]\n}\n",
			want: `schema.prisma:7:45: @relation references names unknown field "key" of model "B"`,
		},
		{
			name: "relation_fields_without_references",
			src:  pg + "model A {\n  id Int @id\n  bId Int\n  b B @relation(fields: [bId])\n}\nmodel B {\n  id Int @id\n  as A[]\n}\n",
			want: `schema.prisma:7:7: field "b": @relation needs both fields and references, or neither`,
		},
		{
			name: "relation_fields_do_not_pair",
			src:  pg + "model A {\n  id Int @id\n  bId Int\n  b B @relation(fields: [bId, id], references: [id])\n}\nmodel B {\n  id Int @id\n  as A[]\n}\n",
			want: `schema.prisma:7:7: field "b": @relation has 2 fields and 1 references; they must pair up`,
		},
		{
			name: "updated_at_on_string",
			src:  pg + "model A {\n  id Int @id\n  v String @updatedAt\n}\n",
			want: `schema.prisma:6:12: @updatedAt needs a DateTime field; "v" is String`,
		},
		{
			name: "enum_default_unknown_value",
			src:  pg + "model A {\n  id Int @id\n  r R @default(C)\n}\nenum R {\n  A\n  B\n}\n",
			want: `schema.prisma:6:16: default C of field "r" is not a value of enum "R"`,
		},
		{
			name: "empty_enum",
			src:  pg + "enum R {\n}\n",
			want: `schema.prisma:4:6: enum "R" has no values`,
		},
		{
			name: "duplicate_enum_value",
			src:  pg + "enum R {\n  A\n  A\n}\n",
			want: `schema.prisma:6:3: enum "R": value "A" is already declared at 5:3`,
		},
		{
			name: "enum_values_map_to_one_name",
			src:  pg + "enum R {\n  A @map(\"x\")\n  B @map(\"x\")\n}\n",
			want: `schema.prisma:6:3: enum "R": value "B" maps to "x", which value "A" already uses`,
		},
		{
			name: "unknown_enum_value_attribute",
			src:  pg + "enum R {\n  A @default\n}\n",
			want: `schema.prisma:5:5: unknown attribute @default on enum value "A"`,
		},
		{
			name: "schema_missing_with_schemas_listed",
			src:  "datasource db {\n  provider = \"postgresql\"\n  schemas = [\"a\"]\n}\nmodel M {\n  id Int @id\n}\n",
			want: `schema.prisma:5:7: model "M" needs @@schema: the datasource lists schemas "a"`,
		},
		{
			name: "schema_not_listed",
			src:  pg + "model M {\n  id Int @id\n  @@schema(\"x\")\n}\n",
			want: `schema.prisma:6:12: schema "x" is not listed in the schemas of the datasource`,
		},
		{
			name: "view_with_compound_id",
			src:  pg + "view V {\n  a Int\n  b Int\n  @@id([a, b])\n}\n",
			want: `schema.prisma:7:3: view "V" cannot have a primary key; use @@unique instead of @@id`,
		},
		{
			name: "two_datasources",
			src:  pg + "datasource other {\n  provider = \"mysql\"\n}\n",
			want: `schema.prisma:4:12: datasource "other": only one datasource is allowed; "db" is declared at 1:1`,
		},
		{
			name: "datasource_without_provider",
			src:  "datasource db {\n  url = env(\"X\")\n}\n",
			want: `schema.prisma:1:12: datasource "db" has no provider`,
		},
		{
			name: "repeated_property",
			src:  "datasource db {\n  provider = \"postgresql\"\n  provider = \"mysql\"\n}\n",
			want: `schema.prisma:3:3: datasource "db": property "provider" is already set at 2:3`,
		},
		{
			name: "composite_type_refers_to_model",
			src:  "datasource db {\n  provider = \"mongodb\"\n}\nmodel M {\n  id String @id @map(\"_id\")\n}\ntype T {\n  m M\n}\n",
			want: `schema.prisma:8:5: composite type "T" cannot refer to model "M"`,
		},
		{
			name: "composite_type_block_attribute",
			src:  "datasource db {\n  provider = \"mongodb\"\n}\ntype T {\n  a Int\n  @@map(\"t\")\n}\n",
			want: `schema.prisma:6:3: composite type "T" cannot have block attributes; found @@map`,
		},
		{
			name: "composite_type_on_sql_database",
			src:  pg + "type T {\n  a Int\n}\n",
			want: `schema.prisma:4:1: composite type "T": composite types need the mongodb provider, not "postgresql"`,
		},
		{
			name: "implicit_many_to_many_without_single_id",
			src:  pg + "model A {\n  x Int\n  y Int\n  bs B[]\n  @@id([x, y])\n}\nmodel B {\n  id Int @id\n  as A[]\n}\n",
			want: `schema.prisma:7:3: implicit many-to-many relation "AToB" needs a single-field @id on model "A"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("schema.prisma", []byte(tt.src))
			errs := Errors(err)
			if len(errs) == 0 {
				t.Fatalf("no error; want %s", tt.want)
			}
			if got := errs[0].Error(); got != tt.want {
				t.Errorf("first error\n got: %s\nwant: %s\nall:\n%v", got, tt.want, err)
			}
		})
	}
}

func TestSemanticErrorsAreAllReportedInOrder(t *testing.T) {
	src := pg + "model A {\n  id Int @id\n  b Bogus\n  c Int @nope\n}\nmodel A {\n  id Int @id\n}\n"
	_, err := Parse("s.prisma", []byte(src))
	want := strings.Join([]string{
		`s.prisma:6:5: unknown type "Bogus" for field "b" of model "A"`,
		`s.prisma:7:9: unknown attribute @nope on field "c"`,
		`s.prisma:9:7: model "A" is already declared as a model at 4:1`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
	var one *Error
	if !errors.As(err, &one) || one.Pos != (Position{Line: 6, Column: 5}) {
		t.Errorf("errors.As found %+v, want the first error at 6:5", one)
	}
	if n := len(Errors(err)); n != 3 {
		t.Errorf("Errors returned %d errors, want 3", n)
	}
}

func TestSyntaxErrorStopsParsing(t *testing.T) {
	src := pg + "model A {\n  id Int @id\n  x {\n  y {\n}\n"
	_, err := ParseFile("s.prisma", []byte(src))
	if errs := Errors(err); len(errs) != 1 {
		t.Fatalf("got %d errors, want exactly the first syntax error: %v", len(errs), err)
	}
}

func TestErrorWithoutFilename(t *testing.T) {
	e := &Error{Pos: Position{Line: 3, Column: 7}, Msg: "boom"}
	if got, want := e.Error(), "schema.prisma:3:7: boom"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if Errors(nil) != nil {
		t.Error("Errors(nil) is not nil")
	}
}
