package prismaschema

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func mustParse(t *testing.T, src string) *Schema {
	t.Helper()
	s, err := Parse("schema.prisma", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

func mustTable(t *testing.T, s *Schema, name string) *Table {
	t.Helper()
	tbl, err := s.Table(name)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// ignorePositions leaves positions and syntax trees out of comparisons.
var ignorePositions = cmpopts.IgnoreTypes(Position{}, &Value{})

const shopSchema = `datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

/// People who buy.
model Customer {
  id        Int      @id @default(autoincrement()) @map("customer_id")
  email     String   @unique @db.VarChar(255)
  name      String?
  tags      String[]
  tier      Tier     @default(BASIC)
  createdAt DateTime @default(now()) @map("created_at") @db.Timestamptz(6)
  updatedAt DateTime @updatedAt @map("updated_at")
  orders    Order[]

  @@map("customers")
}

model Order {
  customerId Int      @map("customer_id")
  number     Int      @map("order_number")
  total      Decimal  @db.Decimal(10,2)
  note       String?  @ignore
  customer   Customer @relation(fields: [customerId], references: [id], onDelete: Cascade)

  @@id([number, customerId])
  @@index([customerId], map: "orders_customer_idx")
  @@map("orders")
}

enum Tier {
  BASIC   @map("basic")
  PREMIUM

  @@map("customer_tier")
}
`

func TestTablesColumnsAndKeys(t *testing.T) {
	s := mustParse(t, shopSchema)
	want := []*Table{
		{
			Name: "customers", ModelName: "Customer", Doc: "People who buy.",
			Columns: []*Column{
				{Name: "customer_id", FieldName: "id", Type: "Int", Kind: ScalarColumn, ID: true},
				{Name: "email", FieldName: "email", Type: "String", Kind: ScalarColumn, NativeType: "VarChar(255)", Unique: true},
				{Name: "name", FieldName: "name", Type: "String", Kind: ScalarColumn, Optional: true},
				{Name: "tags", FieldName: "tags", Type: "String", Kind: ScalarColumn, List: true},
				{Name: "tier", FieldName: "tier", Type: "Tier", Kind: EnumColumn},
				{Name: "created_at", FieldName: "createdAt", Type: "DateTime", Kind: ScalarColumn, NativeType: "Timestamptz(6)"},
				{Name: "updated_at", FieldName: "updatedAt", Type: "DateTime", Kind: ScalarColumn, UpdatedAt: true},
			},
			PrimaryKey: []string{"customer_id"},
			Indexes:    []*Index{{Columns: []string{"email"}, Unique: true}},
			Relations:  []*Relation{{FieldName: "orders", Name: "CustomerToOrder", Target: "Order", List: true}},
		},
		{
			Name: "orders", ModelName: "Order",
			Columns: []*Column{
				{Name: "customer_id", FieldName: "customerId", Type: "Int", Kind: ScalarColumn, ID: true},
				{Name: "order_number", FieldName: "number", Type: "Int", Kind: ScalarColumn, ID: true},
				{Name: "total", FieldName: "total", Type: "Decimal", Kind: ScalarColumn, NativeType: "Decimal(10,2)"},
				{Name: "note", FieldName: "note", Type: "String", Kind: ScalarColumn, Optional: true, Ignored: true},
			},
			// @@id names Prisma fields in key order; the key holds database names.
			PrimaryKey: []string{"order_number", "customer_id"},
			Indexes:    []*Index{{Name: "orders_customer_idx", Columns: []string{"customer_id"}}},
			Relations: []*Relation{{
				FieldName: "customer", Name: "CustomerToOrder", Target: "Customer",
				Fields: []string{"customerId"}, References: []string{"id"},
				Columns: []string{"customer_id"}, ReferencedColumns: []string{"customer_id"},
				OnDelete: "Cascade",
			}},
		},
	}
	if diff := cmp.Diff(want, s.Tables, ignorePositions); diff != "" {
		t.Errorf("tables (-want +got):\n%s", diff)
	}
	wantEnums := []*Enum{{
		Name: "customer_tier", EnumName: "Tier",
		Values: []*EnumValue{{Name: "basic", ValueName: "BASIC"}, {Name: "PREMIUM", ValueName: "PREMIUM"}},
	}}
	if diff := cmp.Diff(wantEnums, s.Enums, ignorePositions); diff != "" {
		t.Errorf("enums (-want +got):\n%s", diff)
	}
	customers := s.Tables[0]
	for name, want := range map[string]string{"id": "autoincrement()", "tier": "BASIC", "createdAt": "now()"} {
		c, err := customers.Column(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Default.String(); got != want {
			t.Errorf("default of %s = %s, want %s", name, got, want)
		}
	}
	if c, _ := customers.Column("email"); c.Pos != (Position{Line: 9, Column: 3}) {
		t.Errorf("email at %s, want 9:3", c.Pos)
	}
}

func TestTableLookup(t *testing.T) {
	s := mustParse(t, `datasource db {
  provider = "postgresql"
  schemas  = ["app", "audit"]
}
model User {
  id Int @id
  @@map("users")
  @@schema("app")
}
model users_archive {
  id Int @id
  @@schema("app")
}
model Event {
  id Int @id
  @@map("events")
  @@schema("app")
}
model AuditEvent {
  id Int @id
  @@map("events")
  @@schema("audit")
}
model Session {
  id Int @id
  @@map("session")
  @@schema("app")
}
model SESSION {
  id Int @id
  @@map("legacy_session")
  @@schema("app")
}
`)
	tests := []struct {
		name      string
		lookup    string
		wantModel string
		wantErr   error
	}{
		{name: "database_name", lookup: "users", wantModel: "User"},
		{name: "model_name", lookup: "User", wantModel: "User"},
		{name: "database_name_ignoring_case", lookup: "USERS", wantModel: "User"},
		{name: "model_name_ignoring_case", lookup: "user", wantModel: "User"},
		{name: "model_name_equals_database_name", lookup: "users_archive", wantModel: "users_archive"},
		{name: "exact_match_beats_case_insensitive", lookup: "SESSION", wantModel: "SESSION"},
		{name: "database_name_beats_model_name", lookup: "session", wantModel: "Session"},
		{name: "same_name_in_two_schemas", lookup: "events", wantErr: ErrAmbiguous},
		{name: "qualified_name", lookup: "audit.events", wantModel: "AuditEvent"},
		{name: "qualified_model_name", lookup: "app.Event", wantModel: "Event"},
		{name: "unknown", lookup: "orders", wantErr: ErrNotFound},
		{name: "unknown_schema", lookup: "billing.events", wantErr: ErrNotFound},
		{name: "empty", lookup: "", wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl, err := s.Table(tt.lookup)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, %v; want %v", tbl, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tbl.ModelName != tt.wantModel {
				t.Errorf("found %s, want %s", tbl.ModelName, tt.wantModel)
			}
		})
	}
	if tbl, err := s.TableInSchema("audit", "events"); err != nil || tbl.ModelName != "AuditEvent" {
		t.Errorf("TableInSchema: %v, %v", tbl, err)
	}
	_, err := s.Table("events")
	if want := `table "events": ambiguous: matches app.events, audit.events`; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

func TestColumnLookup(t *testing.T) {
	s := mustParse(t, pg+`model A {
  id        Int    @id @map("a_id")
  firstName String @map("first_name")
  FIRSTNAME String @map("shout")
  email     String
  Email2    String @map("EMAIL")
}
`)
	tbl := mustTable(t, s, "A")
	tests := []struct {
		name      string
		lookup    string
		wantField string
		wantErr   error
	}{
		{name: "database_name", lookup: "first_name", wantField: "firstName"},
		{name: "field_name", lookup: "firstName", wantField: "firstName"},
		{name: "exact_field_name_beats_case_insensitive", lookup: "FIRSTNAME", wantField: "FIRSTNAME"},
		{name: "database_name_ignoring_case", lookup: "A_ID", wantField: "id"},
		{name: "exact_database_name", lookup: "EMAIL", wantField: "Email2"},
		{name: "exact_field_name", lookup: "email", wantField: "email"},
		{name: "field_name_ignoring_case", lookup: "Shout", wantField: "FIRSTNAME"},
		{name: "ambiguous_ignoring_case", lookup: "Email", wantErr: ErrAmbiguous},
		{name: "relation_or_unknown", lookup: "b", wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tbl.Column(tt.lookup)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, %v; want %v", c, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.FieldName != tt.wantField {
				t.Errorf("found %s, want %s", c.FieldName, tt.wantField)
			}
		})
	}
}

func TestEnumLookup(t *testing.T) {
	s := mustParse(t, shopSchema)
	for _, name := range []string{"customer_tier", "Tier", "TIER", "Customer_Tier"} {
		if e, err := s.Enum(name); err != nil || e.EnumName != "Tier" {
			t.Errorf("Enum(%q) = %v, %v", name, e, err)
		}
	}
	if _, err := s.Enum("Status"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Enum(Status): %v", err)
	}
}

func TestRelationFieldsAreNotColumns(t *testing.T) {
	s := mustParse(t, pg+`model Post {
  id       Int     @id
  authorId Int
  author   User    @relation("Writes", fields: [authorId], references: [id])
  editor   User?   @relation("Edits", fields: [editorId], references: [id])
  editorId Int?
}
model User {
  id     Int    @id
  posts  Post[] @relation("Writes")
  edited Post[] @relation("Edits")
}
`)
	post := mustTable(t, s, "Post")
	if len(post.Columns) != 3 {
		t.Errorf("Post has %d columns, want 3", len(post.Columns))
	}
	if _, err := post.Column("author"); !errors.Is(err, ErrNotFound) {
		t.Errorf("relation field found as a column: %v", err)
	}
	want := []*Relation{
		{FieldName: "author", Name: "Writes", Target: "User", Fields: []string{"authorId"}, References: []string{"id"}, Columns: []string{"authorId"}, ReferencedColumns: []string{"id"}},
		{FieldName: "editor", Name: "Edits", Target: "User", Optional: true, Fields: []string{"editorId"}, References: []string{"id"}, Columns: []string{"editorId"}, ReferencedColumns: []string{"id"}},
	}
	if diff := cmp.Diff(want, post.Relations, ignorePositions); diff != "" {
		t.Errorf("relations (-want +got):\n%s", diff)
	}
}

func TestImplicitManyToManyJoinTables(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		src      string
		want     *Table
	}{
		{
			name:     "unnamed_relation_postgres",
			provider: "postgresql",
			src: `model Post {
  id   Int   @id @map("post_id")
  tags Tag[]
}
model Tag {
  id    String @id @db.Uuid
  posts Post[]
}
`,
			want: &Table{
				Name: "_PostToTag", IsJoinTable: true,
				Columns: []*Column{
					{Name: "A", FieldName: "A", Type: "Int", Kind: ScalarColumn, ID: true},
					{Name: "B", FieldName: "B", Type: "String", Kind: ScalarColumn, NativeType: "Uuid", ID: true},
				},
				PrimaryKey: []string{"A", "B"},
				Indexes:    []*Index{{Name: "_PostToTag_B_index", Columns: []string{"B"}}},
			},
		},
		{
			name:     "named_self_relation_mysql",
			provider: "mysql",
			src: `model User {
  id        BigInt @id
  followers User[] @relation("Follows")
  following User[] @relation("Follows")
}
`,
			want: &Table{
				Name: "_Follows", IsJoinTable: true,
				Columns: []*Column{
					{Name: "A", FieldName: "A", Type: "BigInt", Kind: ScalarColumn},
					{Name: "B", FieldName: "B", Type: "BigInt", Kind: ScalarColumn},
				},
				Indexes: []*Index{
					{Name: "_Follows_AB_unique", Columns: []string{"A", "B"}, Unique: true},
					{Name: "_Follows_B_index", Columns: []string{"B"}},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, "datasource db {\n  provider = \""+tt.provider+"\"\n}\n"+tt.src)
			var joins []*Table
			for _, tbl := range s.Tables {
				if tbl.IsJoinTable {
					joins = append(joins, tbl)
				}
			}
			if diff := cmp.Diff([]*Table{tt.want}, joins, ignorePositions); diff != "" {
				t.Errorf("join tables (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOneToManyIsNoJoinTable(t *testing.T) {
	s := mustParse(t, pg+"model A {\n  id Int @id\n  bs B[]\n}\nmodel B {\n  id Int @id\n  aId Int\n  a A @relation(fields: [aId], references: [id])\n}\n")
	if len(s.Tables) != 2 {
		t.Errorf("got %d tables, want 2", len(s.Tables))
	}
}

func TestViewsIgnoredModelsAndCompositeTypes(t *testing.T) {
	s := mustParse(t, `datasource db {
  provider = "mongodb"
}
type Address {
  street String
  zip    String @map("postal_code")
}
model User {
  id      String   @id @map("_id") @db.ObjectId
  address Address?
  past    Address[]
}
model Legacy {
  id Int @id
  @@ignore
}
view Summary {
  userId String @unique
}
`)
	if len(s.CompositeTypes) != 1 || s.CompositeType("Address") == nil {
		t.Fatalf("composite types: %+v", s.CompositeTypes)
	}
	if _, err := s.Table("Address"); !errors.Is(err, ErrNotFound) {
		t.Errorf("composite type is a table: %v", err)
	}
	wantAddress := []*Column{
		{Name: "street", FieldName: "street", Type: "String", Kind: ScalarColumn},
		{Name: "postal_code", FieldName: "zip", Type: "String", Kind: ScalarColumn},
	}
	if diff := cmp.Diff(wantAddress, s.CompositeType("Address").Columns, ignorePositions); diff != "" {
		t.Errorf("Address (-want +got):\n%s", diff)
	}
	user := mustTable(t, s, "User")
	addr, err := user.Column("address")
	if err != nil || addr.Kind != CompositeColumn || !addr.Optional {
		t.Errorf("address column: %+v, %v", addr, err)
	}
	if user.PrimaryKey[0] != "_id" {
		t.Errorf("primary key %v", user.PrimaryKey)
	}
	if legacy := mustTable(t, s, "Legacy"); !legacy.Ignored {
		t.Error("Legacy is not flagged Ignored")
	}
	summary := mustTable(t, s, "Summary")
	if !summary.IsView || summary.PrimaryKey != nil {
		t.Errorf("Summary: view %v, key %v", summary.IsView, summary.PrimaryKey)
	}
}

func TestUniqueColumns(t *testing.T) {
	s := mustParse(t, pg+`model A {
  id    Int @id
  a     Int @unique(map: "a_key")
  b     Int
  c     Int
  d     Int
  @@unique([b])
  @@unique([c, d], name: "cd")
}
`)
	tbl := mustTable(t, s, "A")
	for _, c := range tbl.Columns {
		want := c.FieldName == "a" || c.FieldName == "b"
		if c.Unique != want {
			t.Errorf("column %s: Unique %v, want %v", c.Name, c.Unique, want)
		}
	}
	want := []*Index{
		{Name: "a_key", Columns: []string{"a"}, Unique: true},
		{Columns: []string{"b"}, Unique: true},
		{Columns: []string{"c", "d"}, Unique: true},
	}
	if diff := cmp.Diff(want, tbl.Indexes, ignorePositions); diff != "" {
		t.Errorf("indexes (-want +got):\n%s", diff)
	}
}

func TestNativeTypes(t *testing.T) {
	tests := []struct {
		name      string
		attribute string
		want      string
	}{
		{name: "without_arguments", attribute: "@db.Uuid", want: "Uuid"},
		{name: "empty_parentheses", attribute: "@db.Text()", want: "Text"},
		{name: "one_argument", attribute: "@db.VarChar(255)", want: "VarChar(255)"},
		{name: "two_arguments_with_space", attribute: "@db.Decimal(10, 2)", want: "Decimal(10,2)"},
		{name: "constant_argument", attribute: "@db.NVarChar(Max)", want: "NVarChar(Max)"},
		{name: "string_argument", attribute: `@db.Char("5")`, want: "Char(5)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, pg+"model A {\n  id Int @id\n  x String "+tt.attribute+"\n}\n")
			c, _ := mustTable(t, s, "A").Column("x")
			if c.NativeType != tt.want {
				t.Errorf("native type %q, want %q", c.NativeType, tt.want)
			}
		})
	}
}

func TestNativeTypeWithoutDatasource(t *testing.T) {
	s := mustParse(t, "model A {\n  id String @id @anything.Uuid\n}\n")
	if c, _ := mustTable(t, s, "A").Column("id"); c.NativeType != "Uuid" {
		t.Errorf("native type %q", c.NativeType)
	}
}

func TestUnsupportedColumns(t *testing.T) {
	s := mustParse(t, pg+"model A {\n  id Int @id\n  g Unsupported(\"geometry(Point, 4326)\")? @map(\"geom\")\n}\n")
	c, err := mustTable(t, s, "A").Column("geom")
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != UnsupportedColumn || c.Type != "Unsupported" || c.Unsupported != "geometry(Point, 4326)" || !c.Optional {
		t.Errorf("column %+v", c)
	}
}

func TestMultiSchemaEnums(t *testing.T) {
	s := mustParse(t, `datasource db {
  provider = "postgresql"
  schemas  = ["auth"]
}
enum Role {
  USER
  @@schema("auth")
}
`)
	e, err := s.Enum("Role")
	if err != nil || e.Schema != "auth" {
		t.Errorf("enum %+v, %v", e, err)
	}
}

func TestQualifiedName(t *testing.T) {
	if got := (&Table{Name: "t"}).QualifiedName(); got != "t" {
		t.Errorf("got %s", got)
	}
	if got := (&Table{Name: "t", Schema: "s"}).QualifiedName(); got != "s.t" {
		t.Errorf("got %s", got)
	}
}

func TestBlockAndColumnKindNames(t *testing.T) {
	for kind, want := range map[BlockKind]string{
		DatasourceBlock: "datasource", GeneratorBlock: "generator", ModelBlock: "model",
		ViewBlock: "view", TypeBlock: "type", EnumBlock: "enum", 0: "block",
	} {
		if kind.String() != want {
			t.Errorf("BlockKind %d = %s, want %s", kind, kind, want)
		}
	}
	for kind, want := range map[ColumnKind]string{
		ScalarColumn: "scalar", EnumColumn: "enum", CompositeColumn: "composite", UnsupportedColumn: "unsupported", 0: "unknown",
	} {
		if kind.String() != want {
			t.Errorf("ColumnKind %d = %s, want %s", kind, kind, want)
		}
	}
}
