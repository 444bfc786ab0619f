package cachedquery

import (
	"errors"
	"strings"
	"testing"
)

const schema = `datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

model Order {
  id         Int     @id
  customerId Int     @map("customer_id")
  total      Decimal @db.Decimal(10, 2)
  createdAt  DateTime @map("created_at")
  tags       String[]
  note       String?

  @@map("orders")
}
`

func TestCompile(t *testing.T) {
	tests := []struct {
		name      string
		schema    string
		sql       string
		wantField string
		wantLine  int
		wantMsg   string
	}{
		{name: "valid", schema: schema, sql: "SELECT customer_id, sum(total) FROM orders GROUP BY customer_id"},
		{name: "schema_syntax_error", schema: "model A {\n  id Int @id\n  name\n}\n", sql: "SELECT count(*) FROM a", wantField: FieldSchema, wantLine: 3},
		{name: "unknown_column_suggests", schema: schema, sql: "SELECT customer_id,\n  sum(totl) FROM orders GROUP BY customer_id", wantField: FieldSQLQuery, wantLine: 2, wantMsg: `did you mean "total"`},
		{name: "not_an_aggregate", schema: schema, sql: "SELECT id FROM orders", wantField: FieldSQLQuery, wantLine: 1},
		// Accepted only if both engines run it: Flink has no week truncation,
		// the embedded engine no arrays.
		{name: "flink_cannot_run", schema: schema, sql: "SELECT date_trunc('week', created_at) AS week, count(*) FROM orders GROUP BY 1",
			wantField: FieldSQLQuery, wantLine: 1, wantMsg: "the Flink engine cannot run this query"},
		{name: "embedded_cannot_run", schema: schema, sql: "SELECT tags, count(*) FROM orders GROUP BY tags",
			wantField: FieldSQLQuery, wantLine: 1, wantMsg: "the embedded engine cannot maintain this query"},
		{name: "nullable_group_key", schema: schema, sql: "SELECT note, count(*) FROM orders GROUP BY note"},
		// The message names the column as the query does, not as the plan
		// numbers its sources.
		{name: "engine_refusal_names_columns", schema: schema, sql: "SELECT note, count(*) FROM orders o WHERE note LIKE note GROUP BY note",
			wantField: FieldSQLQuery, wantLine: 1, wantMsg: "pattern that is not a constant (o.note)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Compile(tt.schema, tt.sql)
			if tt.wantField == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Plan == nil || c.Normalized == "" {
					t.Fatalf("compiled = %+v", c)
				}
				return
			}
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("err = %v, want a *Problem", err)
			}
			if p.Field != tt.wantField || p.Line != tt.wantLine || p.Column < 1 || !strings.Contains(p.Message, tt.wantMsg) {
				t.Errorf("problem = %+v", p)
			}
		})
	}
}

func TestNormalizedIgnoresFormatting(t *testing.T) {
	a, err := Compile(schema, "SELECT customer_id, SUM(total) FROM orders GROUP BY customer_id")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Compile(schema, "select customer_id,\n\tsum(total) -- revenue\nfrom orders group by customer_id")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compile(schema, "SELECT customer_id, SUM(total) FROM orders WHERE total > 1 GROUP BY customer_id")
	if err != nil {
		t.Fatal(err)
	}
	if a.Normalized != b.Normalized {
		t.Errorf("formatting changed the normalised text:\n%s\n%s", a.Normalized, b.Normalized)
	}
	if a.Normalized == c.Normalized {
		t.Error("different queries normalise to the same text")
	}
}
