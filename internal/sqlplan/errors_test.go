package sqlplan

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// marker shows, in a test query, where the error must point; it is
// removed before compiling.
const marker = "§"

// markedPosition removes the marker from sql and returns the line and
// column (in characters) it stood at.
func markedPosition(t *testing.T, sql string) (string, int, int) {
	t.Helper()
	i := strings.Index(sql, marker)
	if i < 0 {
		return sql, 0, 0
	}
	line, col := 1, 1
	for _, r := range sql[:i] {
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return sql[:i] + sql[i+len(marker):], line, col
}

// TestCompile_rejects checks each construct Compile refuses: the error is
// an *Error that says what is wrong (wantMsg is a substring), where it is
// (the § marker), and, for unknown names, what was probably meant.
func TestCompile_rejects(t *testing.T) {
	tests := []struct {
		name    string
		schema  string
		sql     string
		wantMsg string
		suggest string
	}{
		// Not an aggregate query.
		{name: "no_aggregate_no_group_by", sql: `§SELECT id, name FROM customers`, wantMsg: "not an aggregate query"},
		{name: "no_aggregate_after_comment", sql: "-- daily report\n  §select id from customers where tier = 'GOLD'", wantMsg: "not an aggregate query"},
		{name: "aggregate_in_where_only", sql: `§SELECT id FROM customers WHERE id > 1`, wantMsg: "not an aggregate query"},

		// Window functions.
		{name: "window_function", sql: `SELECT status, §sum(total) OVER (PARTITION BY status) FROM "Order" GROUP BY status`, wantMsg: "window functions are not supported: sum(...) OVER"},
		{name: "window_function_row_number", sql: `SELECT count(*), §row_number() OVER () FROM customers`, wantMsg: "window functions are not supported"},
		{name: "window_clause", sql: `SELECT count(*) FROM customers §WINDOW w AS (ORDER BY id)`, wantMsg: "window functions are not supported"},

		// Subqueries.
		{name: "subquery_in_from", sql: `SELECT count(*) FROM §(SELECT * FROM customers) s`, wantMsg: "subqueries in FROM are not supported"},
		{name: "subquery_in_where_in", sql: `SELECT count(*) FROM customers WHERE id §IN (SELECT customer_id FROM "Order")`, wantMsg: "subqueries are not supported"},
		{name: "subquery_exists", sql: `SELECT count(*) FROM customers c WHERE §EXISTS (SELECT 1 FROM "Order" o WHERE o.customer_id = c.id)`, wantMsg: "subqueries are not supported"},
		{name: "subquery_in_select", sql: `SELECT §(SELECT count(*) FROM "Order"), count(*) FROM customers`, wantMsg: "subqueries are not supported"},
		{name: "subquery_in_having", sql: "SELECT tier FROM customers GROUP BY tier\nHAVING count(*) > §(SELECT 1)", wantMsg: "subqueries are not supported"},
		{name: "function_in_from", sql: `SELECT count(*) FROM §generate_series(1, 10) g`, wantMsg: "functions in FROM are not supported"},

		// Set operations.
		{name: "union", sql: "SELECT count(*) FROM customers\n§UNION\nSELECT count(*) FROM \"Order\"", wantMsg: "UNION is not supported"},
		{name: "union_all", sql: `SELECT count(*) FROM customers §UNION ALL SELECT count(*) FROM "Order"`, wantMsg: "UNION is not supported"},
		{name: "intersect", sql: `SELECT tier FROM customers GROUP BY tier §INTERSECT SELECT tier FROM customers GROUP BY tier`, wantMsg: "INTERSECT is not supported"},
		{name: "except", sql: `SELECT tier FROM customers GROUP BY tier §EXCEPT SELECT tier FROM customers GROUP BY tier`, wantMsg: "EXCEPT is not supported"},

		// LIMIT and OFFSET.
		{name: "limit", sql: `SELECT status, count(*) FROM "Order" GROUP BY status §LIMIT 10`, wantMsg: "LIMIT is not supported"},
		{name: "offset", sql: `SELECT status, count(*) FROM "Order" GROUP BY status §OFFSET 5`, wantMsg: "OFFSET is not supported"},
		{name: "offset_before_limit", sql: `SELECT status, count(*) FROM "Order" GROUP BY status §OFFSET 5 LIMIT 10`, wantMsg: "OFFSET is not supported"},
		{name: "limit_then_offset", sql: `SELECT status, count(*) FROM "Order" GROUP BY status §LIMIT 10 OFFSET 5`, wantMsg: "LIMIT is not supported"},
		{name: "fetch_first_without_count", sql: "SELECT status, count(*) FROM \"Order\" GROUP BY status §FETCH FIRST ROW ONLY", wantMsg: "LIMIT is not supported"},
		{name: "fetch_first", sql: "SELECT status, count(*) FROM \"Order\" GROUP BY status\n§FETCH FIRST 3 ROWS ONLY", wantMsg: "LIMIT is not supported"},

		// Functions whose value is not determined by the data.
		{name: "now", sql: `SELECT count(*) FROM "Order" WHERE created_at > §now() - interval '1 day'`, wantMsg: "now() is not allowed: it returns the current time"},
		{name: "random", sql: `SELECT sum(§random() * total) FROM "Order"`, wantMsg: "random() is not allowed"},
		{name: "current_timestamp", sql: `SELECT count(*) FROM "Order" WHERE shipped_at < §CURRENT_TIMESTAMP`, wantMsg: "CURRENT_TIMESTAMP is not allowed"},
		{name: "current_date", sql: `SELECT count(*) FROM products WHERE launched_on = §current_date`, wantMsg: "CURRENT_DATE is not allowed"},
		{name: "clock_timestamp", sql: `SELECT count(*) FROM "Order" WHERE shipped_at < §clock_timestamp()`, wantMsg: "clock_timestamp() is not allowed"},
		{name: "gen_random_uuid", sql: `SELECT count(*) FROM products WHERE id <> §gen_random_uuid()`, wantMsg: "gen_random_uuid() is not allowed"},
		{name: "current_user", sql: `SELECT count(*) FROM customers WHERE name = §current_user`, wantMsg: "CURRENT_USER is not allowed: it depends on the session"},

		// Joins.
		{name: "left_join", sql: `SELECT count(*) FROM customers c §LEFT JOIN "Order" o ON o.customer_id = c.id`, wantMsg: "LEFT JOIN is not supported"},
		{name: "left_outer_join", sql: `SELECT count(*) FROM customers c §LEFT OUTER JOIN "Order" o ON o.customer_id = c.id`, wantMsg: "LEFT JOIN is not supported"},
		{name: "right_join", sql: `SELECT count(*) FROM customers c §RIGHT JOIN "Order" o ON o.customer_id = c.id`, wantMsg: "RIGHT JOIN is not supported"},
		{name: "full_join", sql: "SELECT count(*) FROM customers c\n  §FULL JOIN \"Order\" o ON o.customer_id = c.id", wantMsg: "FULL JOIN is not supported"},
		{name: "natural_join", sql: `SELECT count(*) FROM "Order" §NATURAL JOIN shipments`, wantMsg: "NATURAL JOIN is not supported"},
		{name: "cross_join", sql: `SELECT count(*) FROM customers CROSS JOIN §"Order"`, wantMsg: `table "Order" is not joined to the others`},
		{name: "comma_join_without_equality", sql: `SELECT count(*) FROM customers c, §"Order" o WHERE o.total > 5`, wantMsg: `"Order" (o) is not joined to the others by an equality`},
		{name: "non_equi_join", sql: `SELECT count(*) FROM customers c JOIN "Order" o ON §o.customer_id < c.id`, wantMsg: "only equi-joins"},
		{name: "join_on_expressions", sql: `SELECT count(*) FROM customers c JOIN "Order" o ON §c.id + 0 = o.customer_id`, wantMsg: "only equi-joins"},
		{name: "join_with_or", sql: `SELECT count(*) FROM customers c JOIN "Order" o ON §o.customer_id = c.id OR o.id = c.id`, wantMsg: "only equi-joins"},
		{name: "join_condition_uses_later_table", sql: `SELECT count(*) FROM customers c JOIN "Order" o ON §i.order_id = o.id JOIN order_items i ON i.order_id = o.id`, wantMsg: `missing FROM-clause entry for table "i"`},
		{name: "join_condition_uses_table_outside_join", sql: `SELECT count(*) FROM order_items i, customers c JOIN "Order" o ON o.customer_id = c.id AND §i.order_id = o.id`, wantMsg: `table "i" cannot be used in this JOIN condition`},
		{name: "join_incompatible_types", sql: `SELECT count(*) FROM customers c JOIN products p ON c.id §= p.id`, wantMsg: "cannot join c.id (integer) with p.id (uuid)"},
		{name: "duplicate_alias", sql: `SELECT count(*) FROM customers c JOIN "Order" §c ON c.id = c.id`, wantMsg: `table name "c" specified more than once`},
		{name: "same_table_twice_without_alias", sql: `SELECT count(*) FROM shipments JOIN §shipments ON true`, wantMsg: `table name "shipments" specified more than once`},
		{name: "using_unknown_column", sql: `SELECT count(*) FROM customers JOIN "Order" §USING (email)`, wantMsg: `column "email" named in USING does not exist in the right side`},

		// DISTINCT.
		{name: "distinct", sql: `SELECT §DISTINCT status FROM "Order"`, wantMsg: "SELECT DISTINCT is not supported"},
		{name: "distinct_on", sql: `SELECT §DISTINCT ON (status) status, count(*) FROM "Order" GROUP BY status`, wantMsg: "DISTINCT ON is not supported"},

		// Grouping.
		{name: "ungrouped_column", sql: `SELECT §name, count(*) FROM customers GROUP BY country`, wantMsg: `column "customers.name" must appear in the GROUP BY clause or be used in an aggregate function`},
		{name: "ungrouped_qualified_column", sql: "SELECT c.country, §o.total, count(*)\nFROM customers c JOIN \"Order\" o ON o.customer_id = c.id\nGROUP BY c.country", wantMsg: `column "o.total" must appear in the GROUP BY clause`},
		{name: "ungrouped_without_group_by", sql: `SELECT §status, count(*) FROM "Order"`, wantMsg: `column "Order.status" must appear in the GROUP BY clause`},
		{name: "ungrouped_inside_expression", sql: `SELECT status, count(*) + §id FROM "Order" GROUP BY status`, wantMsg: "must appear in the GROUP BY clause"},
		{name: "ungrouped_in_having", sql: `SELECT status FROM "Order" GROUP BY status HAVING §total > 5`, wantMsg: "must appear in the GROUP BY clause"},
		{name: "ungrouped_in_order_by", sql: `SELECT status, count(*) FROM "Order" GROUP BY status ORDER BY §total`, wantMsg: "must appear in the GROUP BY clause"},
		{name: "key_of_other_table_does_not_help", sql: `SELECT c.id, §o.total, count(*) FROM customers c JOIN "Order" o ON o.customer_id = c.id GROUP BY c.id`, wantMsg: `column "o.total" must appear`},
		{name: "nested_aggregate", sql: `SELECT sum(§count(*)) FROM customers`, wantMsg: "aggregate function calls cannot be nested"},
		{name: "aggregate_in_where", sql: `SELECT count(*) FROM "Order" WHERE §sum(total) > 5`, wantMsg: "aggregate functions are not allowed in WHERE"},
		{name: "aggregate_in_group_by", sql: `SELECT count(*) FROM "Order" GROUP BY §count(*)`, wantMsg: "aggregate functions are not allowed in GROUP BY"},
		{name: "aggregate_in_group_by_position", sql: `SELECT §count(*) FROM "Order" GROUP BY 1`, wantMsg: "aggregate functions are not allowed in GROUP BY"},
		{name: "aggregate_in_join_condition", sql: `SELECT count(*) FROM customers c JOIN "Order" o ON o.customer_id = c.id AND §count(*) > 1`, wantMsg: "aggregate functions are not allowed in JOIN condition"},
		{name: "grouping_sets", sql: `SELECT status, count(*) FROM "Order" GROUP BY §ROLLUP (status)`, wantMsg: "GROUPING SETS, ROLLUP and CUBE are not supported"},
		{name: "group_by_position_out_of_range", sql: `SELECT status, count(*) FROM "Order" GROUP BY §3`, wantMsg: "GROUP BY position 3 is not in the select list"},
		{name: "order_by_position_out_of_range", sql: `SELECT status, count(*) FROM "Order" GROUP BY status ORDER BY §0`, wantMsg: "ORDER BY position 0 is not in the select list"},
		{name: "output_alias_in_where", sql: `SELECT sum(total) AS revenue FROM "Order" WHERE §revenue > 0`, wantMsg: "output column names (AS revenue) cannot be used in WHERE"},

		// Statements.
		{name: "multiple_statements", sql: "SELECT count(*) FROM customers;\n§SELECT count(*) FROM \"Order\"", wantMsg: "only one statement is allowed"},
		{name: "multiple_statements_after_comment", sql: `SELECT count(*) FROM customers; /* next */ §select 1`, wantMsg: "only one statement is allowed"},
		{name: "insert", sql: `§INSERT INTO customers (id) VALUES (1)`, wantMsg: "only a SELECT query can be cached, not INSERT"},
		{name: "update", sql: `  §UPDATE customers SET name = 'x'`, wantMsg: "not UPDATE"},
		{name: "delete", sql: `§DELETE FROM customers`, wantMsg: "not DELETE"},
		{name: "create_table", sql: `§CREATE TABLE t (id int)`, wantMsg: "not CREATE TABLE"},
		{name: "explain", sql: `§EXPLAIN SELECT count(*) FROM customers`, wantMsg: "not EXPLAIN"},
		{name: "set", sql: `§SET search_path = public`, wantMsg: "not SET"},
		{name: "with", sql: `§WITH x AS (SELECT 1) SELECT count(*) FROM customers`, wantMsg: "WITH (common table expressions) is not supported"},
		{name: "select_into", sql: `SELECT count(*) §INTO totals FROM customers`, wantMsg: "SELECT INTO is not supported"},
		{name: "values", sql: `§VALUES (1), (2)`, wantMsg: "VALUES is not supported"},
		{name: "for_update", sql: `SELECT count(*) FROM customers §FOR UPDATE`, wantMsg: "FOR UPDATE and FOR SHARE are not supported"},
		{name: "no_from", sql: `§SELECT count(*)`, wantMsg: "the query reads no table"},
		{name: "select_star", sql: `SELECT §*, count(*) FROM customers GROUP BY id`, wantMsg: "SELECT * is not supported"},
		{name: "empty", sql: `§`, wantMsg: "empty query"},
		{name: "only_comment", sql: "-- nothing\n§", wantMsg: "empty query"},

		// Syntax.
		{name: "syntax_error", sql: `SELECT count(* §FROM customers`, wantMsg: `syntax error at or near "FROM"`},
		{name: "syntax_error_second_line", sql: "SELECT count(*)\nFROM customers\nWHERE §AND id = 1", wantMsg: `syntax error at or near "AND"`},
		{name: "syntax_error_at_end", sql: `SELECT count(*) FROM customers WHERE§`, wantMsg: "syntax error at end of input"},
		{name: "unterminated_string", sql: `SELECT count(*) FROM customers WHERE name = §'abc`, wantMsg: "unterminated quoted string"},
		{name: "reserved_word_as_table", sql: `SELECT count(*) FROM §Order`, wantMsg: `Order is a reserved word in SQL: to name the table or column write it in double quotes, as "Order"`},
		{name: "position_counts_characters", sql: "SELECT 'été', sum(§totl) FROM \"Order\"", wantMsg: `unknown column "totl"`, suggest: "total"},
		{name: "nul_character", sql: "SELECT count(*) FROM customers§\x00", wantMsg: "NUL character"},
		{name: "invalid_utf8", sql: "SELECT count(*) FROM customers WHERE name = '§\xff'", wantMsg: "not valid UTF-8"},

		// Names.
		{name: "unknown_table", sql: `SELECT count(*) FROM §custmers`, wantMsg: `unknown table "custmers"`, suggest: "customers"},
		{name: "unknown_table_prisma_name", sql: `SELECT count(*) FROM §OrderItems`, wantMsg: `unknown table "orderitems"`, suggest: "order_items"},
		{name: "unknown_table_no_suggestion", sql: `SELECT count(*) FROM §warehouses`, wantMsg: `unknown table "warehouses"`},
		{name: "unknown_schema", schema: "multi.prisma", sql: `SELECT count(*) FROM §billng.invoices`, wantMsg: `unknown schema "billng"`, suggest: "billing"},
		{name: "unknown_table_in_schema", schema: "multi.prisma", sql: `SELECT count(*) FROM auth.§invoice`, wantMsg: `unknown table "invoice" in schema auth`},
		{name: "unknown_column", sql: `SELECT sum(§totl) FROM "Order"`, wantMsg: `unknown column "totl" in table "Order"`, suggest: "total"},
		{name: "unknown_column_qualified", sql: `SELECT sum(o.§totl) FROM "Order" o`, wantMsg: `unknown column "totl" in table "Order" (o)`, suggest: "total"},
		{name: "unknown_column_in_where_second_line", sql: "SELECT count(*)\n  FROM customers\n WHERE §emial LIKE '%@x'", wantMsg: `unknown column "emial"`, suggest: "email"},
		{name: "unknown_column_prisma_typo", sql: `SELECT sum(§unitPrise) FROM order_items`, wantMsg: `unknown column "unitprise"`, suggest: "unitPrice"},
		{name: "column_in_other_table", sql: `SELECT sum(c.§total) FROM customers c JOIN "Order" o ON o.customer_id = c.id`, wantMsg: `table "Order" (o) has it`, suggest: "o.total"},
		{name: "unknown_qualifier", sql: `SELECT sum(§x.total) FROM "Order" o`, wantMsg: `missing FROM-clause entry for table "x"`},
		{name: "unknown_qualifier_typo", sql: `SELECT sum(§ordrs.total) FROM "Order" orders`, wantMsg: `missing FROM-clause entry for table "ordrs"`, suggest: "orders"},
		{name: "table_name_instead_of_alias", sql: `SELECT sum(§customers.id) FROM customers c`, wantMsg: `invalid reference to table customers: the query calls it "c"`, suggest: "c"},
		{name: "relation_field_is_not_a_column", sql: `SELECT count(§customer) FROM "Order"`, wantMsg: `unknown column "customer"`, suggest: "customerId"},
		{name: "ambiguous_column", sql: `SELECT §id, count(*) FROM customers c JOIN "Order" o ON o.customer_id = c.id GROUP BY 1`, wantMsg: `column reference "id" is ambiguous: it could be c.id or o.id`},
		{name: "ambiguous_table_in_two_schemas", schema: "multi.prisma", sql: `SELECT count(*) FROM §events`, wantMsg: `table name "events" is ambiguous: it matches "auth.events" and "billing.events"`},
		{name: "ambiguous_column_by_case", schema: "multi.prisma", sql: `SELECT sum(§code) FROM "Item"`, wantMsg: `column name "code" is ambiguous in table "Item": it matches "Code" and "CODE"; write the exact name in double quotes`},
		{name: "quoted_name_is_exact", sql: `SELECT count(*) FROM §"Customers"`, wantMsg: `unknown table "Customers"`, suggest: "customers"},
		{name: "table_without_primary_key", sql: `SELECT count(*) FROM §page_views`, wantMsg: "table page_views has no primary key"},
		{name: "view", sql: `SELECT sum(total) FROM §customer_totals`, wantMsg: "customer_totals is a view"},
		{name: "unknown_type", sql: `SELECT sum(total::§numerc) FROM "Order"`, wantMsg: "unknown type numerc", suggest: "numeric"},

		// Values and types.
		{name: "invalid_enum_label", sql: `SELECT count(*) FROM "Order" WHERE status = §'PAID'`, wantMsg: `invalid input value for enum order_status: "PAID"`, suggest: "paid"},
		{name: "invalid_enum_label_in_list", sql: `SELECT count(*) FROM "Order" WHERE status IN ('paid', §'shiped')`, wantMsg: `invalid input value for enum order_status: "shiped"`, suggest: "shipped"},
		{name: "invalid_integer_literal", sql: `SELECT count(*) FROM customers WHERE id = §'abc'`, wantMsg: `invalid input syntax for type integer: "abc"`},
		{name: "integer_literal_out_of_range", sql: `SELECT count(*) FROM order_items WHERE quantity = §'70000'`, wantMsg: `value "70000" is out of range for type smallint`},
		{name: "invalid_uuid_literal", sql: `SELECT count(*) FROM products WHERE id = §'not-a-uuid'`, wantMsg: `invalid input syntax for type uuid`},
		{name: "invalid_boolean_literal", sql: `SELECT count(*) FROM products WHERE active = §'maybe'`, wantMsg: `invalid input syntax for type boolean`},
		{name: "timestamptz_literal_without_zone", sql: `SELECT count(*) FROM "Order" WHERE shipped_at > §'2024-01-01'`, wantMsg: "has no time zone offset"},
		{name: "date_trunc_on_timestamptz", sql: `SELECT §date_trunc('day', shipped_at), count(*) FROM "Order" GROUP BY 1`, wantMsg: "date_trunc on timestamptz depends on the session time zone"},
		{name: "date_trunc_unknown_unit", sql: `SELECT date_trunc(§'mnth', created_at), count(*) FROM "Order" GROUP BY 1`, wantMsg: `unit "mnth" not recognized`, suggest: "month"},
		{name: "extract_on_timestamptz", sql: `SELECT §extract(hour FROM shipped_at), count(*) FROM "Order" GROUP BY 1`, wantMsg: "depends on the session time zone"},
		{name: "cast_timestamptz_to_date", sql: `SELECT shipped_at§::date, count(*) FROM "Order" GROUP BY 1`, wantMsg: "cannot cast timestamptz(3) to date"},
		{name: "compare_timestamp_with_timestamptz", sql: `SELECT count(*) FROM "Order" WHERE created_at §< shipped_at`, wantMsg: "operator does not exist: timestamp(3) < timestamptz(3): the conversion between timestamp (or date) and timestamptz depends on the session time zone"},
		{name: "timestamptz_plus_interval", sql: `SELECT count(*) FROM "Order" WHERE shipped_at §+ interval '1 day' > '2024-01-01Z 00:00'`, wantMsg: "depends on the session time zone"},
		{name: "compare_text_with_integer", sql: `SELECT count(*) FROM customers WHERE email §= 5`, wantMsg: "operator does not exist: text = integer"},
		{name: "sum_of_text", sql: `SELECT §sum(email) FROM customers`, wantMsg: "function sum(text) does not exist"},
		{name: "min_of_boolean", sql: `SELECT §min(active) FROM products`, wantMsg: "function min(boolean) does not exist"},
		{name: "where_not_boolean", sql: `SELECT count(*) FROM customers WHERE §id`, wantMsg: "argument of WHERE must be type boolean, not type integer"},
		{name: "and_not_boolean", sql: `SELECT count(*) FROM customers WHERE id > 1 AND §name`, wantMsg: "argument of AND must be type boolean, not type text"},
		{name: "case_types_mismatch", sql: `SELECT max(CASE WHEN id > 1 THEN name ELSE §id END) FROM customers`, wantMsg: "CASE types text and integer cannot be matched"},
		{name: "lower_of_enum", sql: `SELECT §lower(status), count(*) FROM "Order" GROUP BY 1`, wantMsg: "function lower(order_status) does not exist"},
		{name: "round_double_with_digits", sql: `SELECT §round(sum(unit_price), 2) FROM order_items`, wantMsg: "round with a number of digits needs numeric"},
		{name: "modulo_of_double", sql: `SELECT sum(unit_price §% 2) FROM order_items`, wantMsg: "operator does not exist: double precision % integer: cast the operands to numeric"},
		{name: "duplicate_output_name", sql: `SELECT count(*), §count(id) FROM customers`, wantMsg: `two output columns are named "count"`},
		{name: "parameter", sql: `SELECT count(*) FROM customers WHERE id = §$1`, wantMsg: "query parameters ($1) are not supported"},
		{name: "too_many_operators", sql: `SELECT sum(1` + strings.Repeat("+1", 3998) + "§+1" + strings.Repeat("+1", 22000) + `) FROM "Order"`, wantMsg: "the query is too complex: it has more than 4000 operators and keywords"},
		{name: "too_many_casts", sql: `SELECT count(*) FROM "Order" WHERE id` + strings.Repeat("::int", 10000) + " > 0", wantMsg: "the query is too complex"},
		{name: "deeply_nested", sql: `SELECT sum(total` + strings.Repeat(" + 1", 300) + `) FROM "Order"`, wantMsg: "nested too deeply"},

		// Aggregates.
		{name: "unsupported_aggregate", sql: `SELECT §string_agg(name, ',') FROM customers`, wantMsg: "aggregate string_agg is not supported: cdcq maintains count, sum, avg, min and max"},
		{name: "stddev", sql: `SELECT tier, §stddev(id) FROM customers GROUP BY tier`, wantMsg: "aggregate stddev is not supported"},
		{name: "filter_clause", sql: `SELECT count(*) §FILTER (WHERE tier = 'GOLD') FROM customers`, wantMsg: "FILTER is not supported: put the condition inside the aggregate"},
		{name: "aggregate_order_by", sql: `SELECT max(name ORDER BY §id) FROM customers`, wantMsg: "ORDER BY inside an aggregate is not supported"},
		{name: "sum_distinct", sql: `SELECT §sum(DISTINCT total) FROM "Order"`, wantMsg: "sum(DISTINCT ...) is not supported; only count(DISTINCT ...)"},
		{name: "sum_star", sql: `SELECT §sum(*) FROM "Order"`, wantMsg: "sum(*) is not allowed"},

		// Functions and operators.
		{name: "unsupported_function", sql: `SELECT count(*) FROM customers WHERE §md5(email) = 'x'`, wantMsg: "function md5 is not supported; the supported functions are abs, ceil"},
		{name: "function_typo", sql: `SELECT §lowr(email), count(*) FROM customers GROUP BY 1`, wantMsg: "function lowr is not supported", suggest: "lower"},
		{name: "like_escape", sql: `SELECT count(*) FROM customers WHERE name LIKE 'a!%' §ESCAPE '!'`, wantMsg: "LIKE ... ESCAPE is not supported"},
		{name: "similar_to", sql: `SELECT count(*) FROM customers WHERE name §SIMILAR TO 'a%'`, wantMsg: "SIMILAR TO is not supported"},
		{name: "any_array", sql: `SELECT count(*) FROM customers WHERE id §= ANY('{1,2}')`, wantMsg: "= ANY/ALL (array) is not supported: use IN"},
		{name: "between_symmetric", sql: `SELECT count(*) FROM "Order" WHERE total §BETWEEN SYMMETRIC 1 AND 2`, wantMsg: "BETWEEN SYMMETRIC is not supported"},
		{name: "json_operator", sql: `SELECT count(*) FROM products WHERE attributes §->> 'color' = 'red'`, wantMsg: "operator ->> is not supported"},
		{name: "array_constructor", sql: `SELECT count(*) FROM customers WHERE id = §ARRAY[1]`, wantMsg: "ARRAY[...] is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sql, line, col := markedPosition(t, tt.sql)
			schema := tt.schema
			if schema == "" {
				schema = "shop.prisma"
			}
			p, err := Compile(loadSchema(t, schema), sql)
			if err == nil {
				t.Fatalf("Compile accepted the query:\n%s", p)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", e.Message, tt.wantMsg)
			}
			if line > 0 && (e.Line != line || e.Column != col) {
				t.Errorf("position = %d:%d, want %d:%d (%s)", e.Line, e.Column, line, col, e.Message)
			}
			if e.Suggestion != tt.suggest {
				t.Errorf("suggestion = %q, want %q", e.Suggestion, tt.suggest)
			}
			if e.Offset < 0 || e.Offset > len(sql) {
				t.Errorf("offset %d outside the query", e.Offset)
			}
			prefix := strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Column) + ": "
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("Error() = %q, want it to start with %q", err.Error(), prefix)
			}
		})
	}
}

func TestError_format(t *testing.T) {
	e := &Error{Line: 1, Column: 27, Message: `unknown column "totl" in table orders`, Suggestion: "total"}
	want := `1:27: unknown column "totl" in table orders; did you mean "total"?`
	if got := e.Error(); got != want {
		t.Errorf("Error() = %s, want %s", got, want)
	}
	e.Suggestion = ""
	if got := e.Error(); got != `1:27: unknown column "totl" in table orders` {
		t.Errorf("Error() without suggestion = %s", got)
	}
}

func TestCompile_errorPositionExamples(t *testing.T) {
	schema := loadSchema(t, "shop.prisma")
	tests := []struct {
		sql  string
		want string
	}{
		{"SELECT sum(totl) FROM \"Order\"", `1:12: unknown column "totl" in table "Order"; did you mean "total"?`},
		{"SELECT count(*)\n  FROM custmers", `2:8: unknown table "custmers"; did you mean "customers"?`},
		{"SELECT count(*) FROM \"Order\"\nWHERE created_at > now()", "2:20: now() is not allowed"},
		{"\tSELECT id FROM customers", "1:2: not an aggregate query"},
	}
	for _, tt := range tests {
		_, err := Compile(schema, tt.sql)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Compile(%q) error = %v, want prefix %q", tt.sql, err, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct {
		name       string
		candidates []string
		want       string
	}{
		{"totl", []string{"id", "total", "status"}, "total"},
		{"ordres", []string{"orders", "order_items"}, "orders"},
		{"CUSTOMERS", []string{"customers"}, "customers"},
		{"x", []string{"id", "total"}, ""},
		{"warehouse", []string{"customers", "orders"}, ""},
		{"stat", []string{"state", "status"}, "state"},
	}
	for _, tt := range tests {
		if got := suggest(tt.name, tt.candidates); got != tt.want {
			t.Errorf("suggest(%q, %v) = %q, want %q", tt.name, tt.candidates, got, tt.want)
		}
	}
}
