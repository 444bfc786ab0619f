package flinksql_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cdcq/cdcq/internal/flinksql"
	"github.com/cdcq/cdcq/internal/prismaschema"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

const shopSchema = `
datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

enum Status {
  pending
  paid
  shipped
}

model Customer {
  id      Int      @id
  name    String
  region  String?
  joined  DateTime @db.Date
  orders  Order[]

  @@map("customers")
}

model Order {
  id         Int      @id
  customerId Int      @map("customer_id")
  status     Status
  total      Decimal  @db.Decimal(10, 2)
  weight     Float?
  createdAt  DateTime @default(now()) @map("created_at")
  paidAt     DateTime? @db.Timestamptz(6) @map("paid_at")
  tags       String[]
  customer   Customer @relation(fields: [customerId], references: [id])

  @@map("orders")
}
`

// TestCompiledPlans translates plans from sqlplan.Compile, so that the
// translator keeps up with what the compiler produces (casts it inserts,
// constants in its spelling). The golden files pin the text; this pins
// that compiled queries translate at all.
func TestCompiledPlans(t *testing.T) {
	schema, err := prismaschema.Parse("shop.prisma", []byte(shopSchema))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		sql     string
		want    []string // fragments of the script
		wantErr string   // an UnsupportedError containing this
	}{
		{name: "single_table", sql: "SELECT status, count(*), sum(total) AS revenue FROM orders WHERE total > 10 GROUP BY status",
			want: []string{"CAST(ROW(`orders`.`status`) AS ROW<`status` STRING>) AS `grp`", "SUM(`x2`)", "PRIMARY KEY (`key_query_id`, `key_group`)"}},
		{name: "join", sql: "SELECT c.name, count(*) AS n, avg(o.total) FROM orders o JOIN customers c ON o.customer_id = c.id WHERE c.region = 'EU' GROUP BY c.id, c.name",
			want: []string{"JOIN `public.customers` AS `c` ON", "AVG(`x2`)"}},
		{name: "having", sql: "SELECT customer_id, sum(total) AS spent FROM orders GROUP BY customer_id HAVING sum(total) > 100 AND count(*) >= 2",
			want: []string{"\nWHERE ((`a1` > "}},
		{name: "count_distinct", sql: "SELECT count(DISTINCT customer_id) AS customers, count(*) FROM orders WHERE status IN ('paid', 'shipped')",
			want: []string{"COUNT(DISTINCT `x1`)", "UNION ALL", "PRIMARY KEY (`key_query_id`) NOT ENFORCED"}},
		{name: "expressions", sql: "SELECT CASE WHEN total >= 100 THEN 'big' ELSE 'small' END AS size, date_trunc('month', created_at) AS month, count(*), max(paid_at), min(joined) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at > '2024-01-01' AND weight IS NOT NULL AND c.name ILIKE 'a%' GROUP BY 1, 2",
			want: []string{"FLOOR(", "TO MONTH)", "LOWER(`c`.`name`) LIKE LOWER('a%') ESCAPE '!'"}},
		{name: "group_by_date_and_array", sql: "SELECT joined, count(*) FROM customers GROUP BY joined",
			want: []string{"CAST(ROW(TRY_CAST(REPLACE(`customers`.`joined`, 'Z', '') AS DATE)) AS ROW<`joined` DATE>) AS `grp`"}},
		// NULL is a group of its own: the key is a ROW, whose fields may be NULL.
		{name: "nullable_key", sql: "SELECT region, count(*) FROM customers GROUP BY region",
			want: []string{"`key_group` ROW<`region` STRING> NOT NULL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := sqlplan.Compile(schema, tt.sql)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			stmts, err := flinksql.Translate(plan, options())
			if tt.wantErr != "" {
				var ue *flinksql.UnsupportedError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want an UnsupportedError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			script := flinksql.Script(stmts)
			for _, w := range tt.want {
				if !strings.Contains(script, w) {
					t.Fatalf("script lacks %q:\n%s", w, script)
				}
			}
		})
	}
}
