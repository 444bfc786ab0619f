package sqlplan

import (
	"errors"
	"testing"
)

func TestNormalize_equalVariants(t *testing.T) {
	tests := []struct {
		name string
		a, b string
	}{
		{"whitespace", "SELECT count(*) FROM customers WHERE id = 1", "SELECT   count( * )\n\tFROM customers\n WHERE id=1"},
		{"keyword_case", "SELECT count(*) FROM customers WHERE id = 1", "select COUNT(*) from customers where ID = 1"},
		{"unquoted_identifier_case", "SELECT sum(total) FROM orders", "SELECT SUM(Total) FROM ORDERS"},
		{"line_comment", "SELECT count(*) FROM customers", "SELECT count(*) -- how many\nFROM customers"},
		{"block_comment", "SELECT count(*) FROM customers", "/* report */ SELECT /* all */ count(*) FROM customers"},
		{"trailing_semicolon", "SELECT count(*) FROM customers", "SELECT count(*) FROM customers;"},
		{"redundant_parentheses", "SELECT count(*) FROM t WHERE a = 1 AND b = 2", "SELECT count(*) FROM t WHERE ((a = 1) AND (b = 2))"},
		{"as_keyword", "SELECT count(*) AS n FROM t x", "SELECT count(*) n FROM t AS x"},
		{"not_equal_spellings", "SELECT count(*) FROM t WHERE a <> 1", "SELECT count(*) FROM t WHERE a != 1"},
		{"inner_keyword", "SELECT count(*) FROM a JOIN b ON a.x = b.y", "SELECT count(*) FROM a INNER JOIN b ON a.x = b.y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			na, err := Normalize(tt.a)
			if err != nil {
				t.Fatal(err)
			}
			nb, err := Normalize(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if na != nb {
				t.Errorf("Normalize differs:\n%s\n%s", na, nb)
			}
			again, err := Normalize(na)
			if err != nil || again != na {
				t.Errorf("Normalize is not idempotent: %q -> %q (%v)", na, again, err)
			}
		})
	}
}

func TestNormalize_differentQueries(t *testing.T) {
	tests := []struct {
		name string
		a, b string
	}{
		{"integer_constant", "SELECT count(*) FROM t WHERE id = 1", "SELECT count(*) FROM t WHERE id = 2"},
		{"string_constant", "SELECT count(*) FROM t WHERE s = 'paid'", "SELECT count(*) FROM t WHERE s = 'Paid'"},
		{"decimal_constant", "SELECT count(*) FROM t WHERE x > 1.5", "SELECT count(*) FROM t WHERE x > 1.50"},
		{"string_whitespace", "SELECT count(*) FROM t WHERE s = 'a b'", "SELECT count(*) FROM t WHERE s = 'a  b'"},
		{"quoted_identifier", `SELECT count(*) FROM "Orders"`, "SELECT count(*) FROM Orders"},
		{"operator", "SELECT count(*) FROM t WHERE x > 1", "SELECT count(*) FROM t WHERE x >= 1"},
		{"grouping", "SELECT count(*) FROM t WHERE a + b * c > 0", "SELECT count(*) FROM t WHERE (a + b) * c > 0"},
		{"aggregate", "SELECT sum(x) FROM t", "SELECT avg(x) FROM t"},
		{"alias", "SELECT count(*) AS a FROM t", "SELECT count(*) AS b FROM t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			na, err := Normalize(tt.a)
			if err != nil {
				t.Fatal(err)
			}
			nb, err := Normalize(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if na == nb {
				t.Errorf("both normalise to %s", na)
			}
		})
	}
}

func TestNormalize_errors(t *testing.T) {
	tests := []struct {
		name, sql, want string
	}{
		{"syntax_error", "SELECT count(* FROM t", `1:16: syntax error at or near "FROM"`},
		{"two_statements", "SELECT 1;\nSELECT 2", "2:1: only one statement is allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Normalize(tt.sql)
			var e *Error
			if !errors.As(err, &e) || len(err.Error()) < len(tt.want) || err.Error()[:len(tt.want)] != tt.want {
				t.Errorf("Normalize error = %v, want %q...", err, tt.want)
			}
		})
	}
}

func TestCompile_normalizedMatchesNormalize(t *testing.T) {
	schema := loadSchema(t, "shop.prisma")
	for _, sql := range []string{
		"select count(*) from customers -- all",
		"SELECT status, sum(total) AS revenue FROM \"Order\" WHERE total > 10 GROUP BY status",
	} {
		p, err := Compile(schema, sql)
		if err != nil {
			t.Fatal(err)
		}
		n, err := Normalize(sql)
		if err != nil {
			t.Fatal(err)
		}
		if p.Normalized != n {
			t.Errorf("Plan.Normalized = %q, Normalize = %q", p.Normalized, n)
		}
	}
}

func TestPlan_groupKeyNames(t *testing.T) {
	schema := loadSchema(t, "shop.prisma")
	tests := []struct {
		sql  string
		want []string
	}{
		{`SELECT status, count(*) FROM "Order" GROUP BY status`, []string{"status"}},
		{`SELECT count(*) AS group_0 FROM "Order" GROUP BY status, customer_id`, []string{"_group_1", "_group_2"}},
		{`SELECT count(*) AS _group_1 FROM "Order" GROUP BY status, customer_id`, []string{"__group_1", "_group_2"}},
		{`SELECT customer_id AS c, count(*) FROM "Order" GROUP BY status, customer_id`, []string{"_group_1", "c"}},
		{`SELECT count(*) FROM "Order"`, []string{}},
	}
	for _, tt := range tests {
		p, err := Compile(schema, tt.sql)
		if err != nil {
			t.Fatal(err)
		}
		got := p.GroupKeyNames()
		if len(got) != len(tt.want) {
			t.Errorf("%s: GroupKeyNames = %v, want %v", tt.sql, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: GroupKeyNames = %v, want %v", tt.sql, got, tt.want)
				break
			}
		}
	}
}
