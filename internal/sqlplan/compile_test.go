package sqlplan

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

// TestCompile_golden compiles accepted queries and compares the plan dump
// with testdata/plans/<name>.golden.
func TestCompile_golden(t *testing.T) {
	tests := []struct {
		name   string
		schema string // default shop.prisma
		sql    string
	}{
		{name: "count_star_one_row", sql: `SELECT count(*) FROM customers`},
		{name: "group_by_join_filter_having_order", sql: `
			SELECT c.name, count(*), sum(o.total) AS revenue
			FROM customers c JOIN "Order" o ON o.customer_id = c.id
			WHERE o.status = 'paid'
			GROUP BY c.name
			HAVING sum(o.total) > 100
			ORDER BY revenue DESC`},
		{name: "comma_join_equality_in_where", sql: `
			SELECT p.sku, sum(i.quantity) AS units
			FROM order_items i, products p
			WHERE i.product_id = p.id AND p.active
			GROUP BY p.sku`},
		{name: "three_way_join_on_and_where", sql: `
			SELECT c.country, count(DISTINCT i.product_id) AS products
			FROM customers c
			JOIN "Order" o ON o.customer_id = c.id AND o.status <> 'pending'
			JOIN order_items i ON i.order_id = o.id
			WHERE c.country IS NOT NULL
			GROUP BY c.country`},
		{name: "join_using_merges_column", sql: `
			SELECT order_id, count(*), max(carrier)
			FROM order_items JOIN shipments USING (order_id)
			GROUP BY order_id`},
		{name: "repeated_join_equality_once", sql: `
			SELECT count(*) FROM customers c JOIN "Order" o ON o.customer_id = c.id
			WHERE c.id = o.customer_id`},
		{name: "cross_source_filter_after_join", sql: `
			SELECT count(*) FROM "Order" o JOIN shipments s ON s.order_id = o.id
			WHERE s.shipped_on > o.created_at`},
		{name: "prisma_names_unquoted", sql: `
			SELECT orderId, sum(unitPrice * quantity) AS revenue
			FROM OrderItem GROUP BY orderId`},
		{name: "prisma_names_quoted", sql: `
			SELECT "customerId", count(*) FROM "Order" GROUP BY "customerId"`},
		{name: "database_names_any_case", sql: `SELECT Country, COUNT(*) FROM CUSTOMERS GROUP BY COUNTRY`},
		{name: "group_by_primary_key_allows_other_columns", sql: `
			SELECT c.id, c.name, c.email, count(o.id) AS orders
			FROM customers c JOIN "Order" o ON o."customerId" = c.id
			GROUP BY c.id`},
		{name: "group_by_position_and_output_name", sql: `
			SELECT date_trunc('month', created_at) AS month, status, sum(total)
			FROM "Order" GROUP BY month, 2`},
		{name: "group_by_expression_reused_in_select", sql: `
			SELECT lower(email), upper(lower(email)), count(*) FROM customers GROUP BY lower(email)`},
		{name: "expressions_in_where", sql: `
			SELECT count(*) FROM "Order"
			WHERE status IN ('paid', 'shipped')
			  AND total BETWEEN 10 AND 99.5
			  AND NOT (discount IS NULL OR discount = 0)
			  AND created_at >= '2024-01-01'
			  AND shipped_at < '2024-06-01 00:00:00+00'
			  AND customer_id NOT IN (1, 2, 3)`},
		{name: "like_ilike_and_concat", sql: `
			SELECT count(*) FROM customers
			WHERE email LIKE '%@example.com' AND name NOT ILIKE 'test%' AND (name || ' ' || email) <> ''`},
		{name: "case_coalesce_nullif_greatest", sql: `
			SELECT
			  sum(CASE WHEN status = 'paid' THEN total ELSE 0 END) AS paid,
			  sum(CASE status WHEN 'shipped' THEN 1 END) AS shipped,
			  avg(coalesce(discount, 0)) AS avg_discount,
			  max(nullif(total, 0)) AS biggest,
			  min(greatest(total, 1)) AS smallest
			FROM "Order"`},
		{name: "casts_and_typed_literals", sql: `
			SELECT sum(total::integer) AS a, sum(CAST(quantity AS bigint)) AS b, count(*) n
			FROM "Order" o JOIN order_items i ON i.order_id = o.id
			WHERE o.created_at > DATE '2024-01-01' AND i.quantity > '2'::smallint`},
		{name: "date_functions", sql: `
			SELECT date_trunc('day', shipped_at AT TIME ZONE 'UTC') AS day,
			       extract(year FROM created_at) AS year,
			       date_part('dow', created_at) AS dow,
			       count(*)
			FROM "Order" GROUP BY 1, 2, 3`},
		{name: "numeric_functions", sql: `
			SELECT round(avg(total), 2) AS a, round(sum(unit_price)) AS b, abs(min(quantity)), ceil(max(unit_price)), floor(sum(total))
			FROM "Order" o JOIN order_items i ON o.id = i.order_id`},
		{name: "is_distinct_and_boolean_tests", sql: `
			SELECT count(*) FROM products
			WHERE active IS TRUE AND (weight > 1) IS NOT FALSE AND sku IS DISTINCT FROM 'x'`},
		{name: "having_on_group_key_and_aggregate", sql: `
			SELECT tier, count(*) FROM customers GROUP BY tier
			HAVING tier <> 'GOLD' AND count(*) > 10 AND min(created_at) > '2020-01-01T00:00:00Z'`},
		{name: "same_aggregate_computed_once", sql: `
			SELECT status, sum(total) AS s, sum(total) / count(*) AS mean
			FROM "Order" GROUP BY status HAVING sum(total) > 0`},
		{name: "group_by_without_aggregate", sql: `SELECT status FROM "Order" GROUP BY status`},
		{name: "self_join", sql: `
			SELECT a.carrier, count(*) FROM shipments a JOIN shipments b ON a.order_id = b.order_id
			WHERE a.id < b.id GROUP BY a.carrier`},
		{name: "order_by_variants", sql: `
			SELECT status, count(*) FROM "Order" GROUP BY status
			ORDER BY 2 DESC, status NULLS FIRST, sum(total)`},
		{name: "schema_qualified_tables", schema: "multi.prisma", sql: `
			SELECT a.status, sum(i.amount)
			FROM auth.accounts a JOIN billing.invoices i ON i.account_id = a.id
			WHERE a.status = 'active'
			GROUP BY a.status`},
		{name: "unqualified_prefers_public", schema: "multi.prisma", sql: `SELECT sum(amount) FROM invoices`},
		{name: "quoted_names_are_exact", schema: "multi.prisma", sql: `
			SELECT "Value", "VALUE", count(*) FROM "Item" GROUP BY 1, 2`},
		{name: "unquoted_folds_like_postgres", schema: "multi.prisma", sql: `
			SELECT value, count(*) FROM ITEM GROUP BY value`},
		{name: "prisma_unsupported_field", sql: `SELECT max(duration) FROM shipments`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			schema := tt.schema
			if schema == "" {
				schema = "shop.prisma"
			}
			p, err := Compile(loadSchema(t, schema), tt.sql)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if err := checkPlan(p); err != nil {
				t.Fatalf("invalid plan: %v\n%s", err, p)
			}
			golden(t, "plans/"+tt.name+".golden", "-- "+strings.TrimSpace(tt.sql)+"\n"+p.String())
		})
	}
}

// TestCompile_types checks the result types of outputs against
// PostgreSQL's rules.
func TestCompile_types(t *testing.T) {
	tests := []struct {
		name string
		expr string // an output expression over "Order" o, order_items i, products p, shipments s
		want string
	}{
		{"count_is_bigint", "count(*)", "bigint"},
		{"count_column_is_bigint", "count(o.discount)", "bigint"},
		{"count_distinct_is_bigint", "count(DISTINCT p.sku)", "bigint"},
		{"sum_smallint_is_bigint", "sum(i.quantity)", "bigint"},
		{"sum_integer_is_bigint", "sum(o.id)", "bigint"},
		{"sum_bigint_is_numeric", "sum(p.stock)", "numeric"},
		{"sum_numeric_is_numeric", "sum(o.total)", "numeric"},
		{"sum_real_is_real", "sum(p.weight)", "real"},
		{"sum_double_is_double", "sum(i.unit_price)", "double precision"},
		{"avg_integer_is_numeric", "avg(i.quantity)", "numeric"},
		{"avg_bigint_is_numeric", "avg(p.stock)", "numeric"},
		{"avg_real_is_double", "avg(p.weight)", "double precision"},
		{"avg_numeric_is_numeric", "avg(o.total)", "numeric"},
		{"min_numeric_drops_modifiers", "min(o.total)", "numeric"},
		{"max_varchar_is_text", "max(p.sku)", "text"},
		{"max_date", "max(p.launched_on)", "date"},
		{"min_timestamp", "min(o.created_at)", "timestamp"},
		{"max_timestamptz", "max(o.shipped_at)", "timestamptz"},
		{"min_enum", "min(o.status)", "order_status"},
		{"max_time", "max(p.opens_at)", "time"},
		{"sum_interval", "sum(s.duration)", "interval"},
		{"integer_division_stays_integer", "sum(i.quantity / 2)", "bigint"},
		{"integer_division_output", "min(o.id / 2)", "integer"},
		{"smallint_plus_smallint", "min(i.quantity + i.quantity)", "smallint"},
		{"smallint_plus_integer", "min(i.quantity + o.id)", "integer"},
		{"integer_plus_bigint", "min(o.id + p.stock)", "bigint"},
		{"integer_times_numeric", "min(o.id * o.total)", "numeric"},
		{"integer_plus_real_is_double", "min(o.id + p.weight)", "double precision"},
		{"real_plus_real_is_real", "min(p.weight + p.weight)", "real"},
		{"numeric_plus_double", "min(o.total + i.unit_price)", "double precision"},
		{"numeric_literal", "min(o.id * 1.5)", "numeric"},
		{"bigint_literal", "min(o.id + 3000000000)", "bigint"},
		{"date_minus_date_is_integer", "max(p.launched_on - s.shipped_on)", "integer"},
		{"date_plus_integer_is_date", "max(p.launched_on + 7)", "date"},
		{"date_plus_interval_is_timestamp", "max(p.launched_on + interval '1 day')", "timestamp"},
		{"timestamp_minus_timestamp_is_interval", "max(o.created_at - o.created_at)", "interval"},
		{"timestamptz_minus_timestamptz_is_interval", "max(o.shipped_at - o.shipped_at)", "interval"},
		{"timestamp_plus_literal_interval", "max(o.created_at + '1 hour')", "timestamp"},
		{"interval_times_number", "max(s.duration * 2)", "interval"},
		{"extract_is_numeric", "max(extract(month FROM o.created_at))", "numeric"},
		{"date_part_is_double", "max(date_part('month', o.created_at))", "double precision"},
		{"at_time_zone_of_timestamptz_is_timestamp", "max(o.shipped_at AT TIME ZONE 'Europe/Paris')", "timestamp"},
		{"at_time_zone_of_timestamp_is_timestamptz", "max(o.created_at AT TIME ZONE 'UTC')", "timestamptz"},
		{"round_integer_is_double", "round(sum(o.id))", "double precision"},
		{"round_numeric_digits", "round(avg(o.total), 1)", "numeric"},
		{"length_is_integer", "max(length(p.sku))", "integer"},
		{"concat_is_text", "max(p.sku || 'x')", "text"},
		{"case_promotes", "sum(CASE WHEN p.active THEN p.stock ELSE 0.5 END)", "numeric"},
		{"case_of_literals_is_text", "max(CASE WHEN p.active THEN 'yes' ELSE 'no' END)", "text"},
		{"coalesce_common_type", "max(coalesce(o.discount, o.id))", "numeric"},
		{"literal_output_is_text", "'hello'", "text"},
		{"integer_output", "1", "integer"},
		{"explicit_cast", "sum(o.total)::numeric(12,2)", "numeric(12,2)"},
		{"cast_to_varchar", "max(o.status::varchar(10))", "text"},
		{"cast_enum_to_text", "max(o.status::text)", "text"},
		{"comparison_is_boolean", "sum(o.total) > 10", "boolean"},
	}
	schema := loadSchema(t, "shop.prisma")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sql := "SELECT " + tt.expr + ` AS x, count(*) AS n FROM "Order" o JOIN order_items i ON i.order_id = o.id
				JOIN products p ON p.id = i.product_id JOIN shipments s ON s.order_id = o.id`
			p, err := Compile(schema, sql)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if err := checkPlan(p); err != nil {
				t.Fatalf("invalid plan: %v\n%s", err, p)
			}
			if got := p.Outputs[0].Type.String(); got != tt.want {
				t.Errorf("type of %s = %s, want %s", tt.expr, got, tt.want)
			}
		})
	}
}

// TestCompile_names checks which table and column a name resolves to.
func TestCompile_names(t *testing.T) {
	tests := []struct {
		name       string
		schema     string
		from, col  string
		wantTable  string // schema.table
		wantColumn string
	}{
		{name: "database_names", from: "order_items", col: "order_id", wantTable: "public.order_items", wantColumn: "order_id"},
		{name: "database_names_upper_case", from: "ORDER_ITEMS", col: "ORDER_ID", wantTable: "public.order_items", wantColumn: "order_id"},
		{name: "database_names_quoted", from: `"order_items"`, col: `"order_id"`, wantTable: "public.order_items", wantColumn: "order_id"},
		{name: "prisma_names_unquoted", from: "OrderItem", col: "orderId", wantTable: "public.order_items", wantColumn: "order_id"},
		{name: "prisma_names_lower_case", from: "orderitem", col: "orderid", wantTable: "public.order_items", wantColumn: "order_id"},
		{name: "prisma_names_quoted", from: `"OrderItem"`, col: `"orderId"`, wantTable: "public.order_items", wantColumn: "order_id"},
		{name: "camel_case_table_quoted", from: `"Order"`, col: `"customer_id"`, wantTable: "public.Order", wantColumn: "customer_id"},
		{name: "camel_case_table_by_prisma_field", from: `"Order"`, col: "customerId", wantTable: "public.Order", wantColumn: "customer_id"},
		{name: "schema_qualified", schema: "multi.prisma", from: "billing.invoices", col: "amount", wantTable: "billing.invoices", wantColumn: "amount"},
		{name: "schema_qualified_prisma_name", schema: "multi.prisma", from: "billing.Invoice", col: "accountId", wantTable: "billing.invoices", wantColumn: "account_id"},
		{name: "public_preferred", schema: "multi.prisma", from: "invoices", col: "amount", wantTable: "public.invoices", wantColumn: "amount"},
		{name: "public_qualified", schema: "multi.prisma", from: "public.invoices", col: "amount", wantTable: "public.invoices", wantColumn: "amount"},
		{name: "unquoted_exact_fold_wins", schema: "multi.prisma", from: "item", col: "value", wantTable: "public.item", wantColumn: "value"},
		{name: "unquoted_upper_folds_to_lower", schema: "multi.prisma", from: "ITEM", col: "VALUE", wantTable: "public.item", wantColumn: "value"},
		{name: "quoted_camel_case_exact", schema: "multi.prisma", from: `"Item"`, col: `"Value"`, wantTable: "public.Item", wantColumn: "Value"},
		{name: "quoted_prisma_field_exact", schema: "multi.prisma", from: `"Item"`, col: `"VALUE"`, wantTable: "public.Item", wantColumn: "value_upper"},
		{name: "unquoted_prisma_model_with_mapped_table", schema: "multi.prisma", from: "Upper", col: "value_upper", wantTable: "public.Item", wantColumn: "value_upper"},
		{name: "quoted_prisma_field", schema: "multi.prisma", from: `"Item"`, col: `"value_upper"`, wantTable: "public.Item", wantColumn: "value_upper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			schema := tt.schema
			if schema == "" {
				schema = "shop.prisma"
			}
			p, err := Compile(loadSchema(t, schema), "SELECT count(t."+tt.col+") FROM "+tt.from+" t")
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			s := p.Sources[0]
			if got := s.Schema + "." + s.Name; got != tt.wantTable {
				t.Errorf("table = %s, want %s", got, tt.wantTable)
			}
			ref := p.Aggregates[0].Arg.(*ColumnRef)
			if ref.Column != tt.wantColumn {
				t.Errorf("column = %s, want %s", ref.Column, tt.wantColumn)
			}
		})
	}
}

func TestCompile_outputNames(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want string
	}{
		{"aggregates", `SELECT count(*), sum(total), avg(total), min(total), max(total) FROM "Order"`, "count sum avg min max"},
		{"aliases", `SELECT count(*) AS n, sum(total) "Total" FROM "Order"`, "n Total"},
		{"column_by_database_name", `SELECT customerId, count(*) AS n FROM "Order" GROUP BY customerId`, "customer_id n"},
		{"cast_keeps_inner_name", `SELECT count(*)::integer, status::text FROM "Order" GROUP BY status`, "count status"},
		{"cast_of_literal_takes_type_name", `SELECT '1'::integer, count(*) FROM "Order"`, "int4 count"},
		{"case_and_functions", `SELECT CASE WHEN count(*) > 1 THEN 1 END, coalesce(sum(total), 0), round(avg(total)) FROM "Order"`, "case coalesce round"},
		{"expression_without_name", `SELECT count(*) + 1, count(*) FROM "Order"`, "?column? count"},
	}
	schema := loadSchema(t, "shop.prisma")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(schema, tt.sql)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			var names []string
			for _, o := range p.Outputs {
				names = append(names, o.Name)
			}
			if got := strings.Join(names, " "); got != tt.want {
				t.Errorf("names = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCompile_schemaErrors(t *testing.T) {
	if _, err := Compile(nil, "SELECT 1"); err == nil {
		t.Error("nil schema accepted")
	}
	s := *loadSchema(t, "shop.prisma")
	ds := *s.Datasource
	ds.Provider = "mysql"
	s.Datasource = &ds
	_, err := Compile(&s, "SELECT count(*) FROM customers")
	var e *Error
	if err == nil || errors.As(err, &e) || !strings.Contains(err.Error(), "mysql") {
		t.Errorf("mysql schema: err = %v, want a schema error naming the provider", err)
	}
}

// TestCompile_concurrent compiles from several goroutines at once, as the
// HTTP handlers do; run it with -race.
func TestCompile_concurrent(t *testing.T) {
	schema := loadSchema(t, "shop.prisma")
	queries := []string{
		`SELECT status, sum(total) FROM "Order" GROUP BY status`,
		`SELECT c.name, count(*) FROM customers c JOIN "Order" o ON o.customer_id = c.id GROUP BY c.id`,
		`SELECT id FROM customers`,
	}
	want := make([]string, len(queries))
	for i, q := range queries {
		if p, err := Compile(schema, q); err == nil {
			want[i] = p.String()
		} else {
			want[i] = err.Error()
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 20; n++ {
				i := (g + n) % len(queries)
				var got string
				if p, err := Compile(schema, queries[i]); err == nil {
					got = p.String()
				} else {
					got = err.Error()
				}
				if got != want[i] {
					errs <- got
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for got := range errs {
		t.Errorf("concurrent Compile gave a different result:\n%s", got)
	}
}
