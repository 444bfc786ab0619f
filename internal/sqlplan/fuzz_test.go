package sqlplan

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCompile checks that Compile never panics, that every error is an
// *Error inside the query, and that every plan it returns is well formed.
func FuzzCompile(f *testing.F) {
	seeds := []string{
		`SELECT count(*) FROM customers`,
		`SELECT status, sum(total), avg(total) FROM "Order" WHERE total > 10 GROUP BY status HAVING count(*) > 1 ORDER BY 2 DESC`,
		`SELECT c.name, count(DISTINCT o.id) FROM customers c JOIN "Order" o ON o.customer_id = c.id GROUP BY c.id`,
		`SELECT p.sku, sum(i.quantity * i.unit_price) FROM order_items i, products p WHERE i.product_id = p.id GROUP BY 1`,
		`SELECT CASE WHEN total > 100 THEN 'big' ELSE 'small' END AS size, count(*) FROM "Order" GROUP BY size`,
		`SELECT date_trunc('week', created_at), min(shipped_at), max(discount) FROM "Order" GROUP BY 1`,
		`SELECT tier, count(*) FROM customers WHERE email LIKE '%@x.com' AND country IN ('DE', 'FR') GROUP BY tier`,
		`SELECT count(*) FROM "Order" WHERE status = 'paid' AND created_at BETWEEN '2024-01-01' AND '2024-12-31'`,
		`SELECT sum(total) OVER () FROM "Order"`,
		`SELECT count(*) FROM customers c LEFT JOIN "Order" o ON o.customer_id = c.id`,
		`SELECT count(*) FROM (SELECT 1) s`,
		`SELECT id FROM customers`,
		`SELECT count(*) FROM customers; SELECT 1`,
		`SELECT coalesce(sum(total), 0)::numeric(12,2), extract(epoch FROM max(shipped_at)) FROM "Order"`,
		`SELECT order_id, count(*) FROM order_items JOIN shipments USING (order_id) GROUP BY order_id`,
		`SELECT count(*) FROM "Order" WHERE shipped_at IS DISTINCT FROM NULL AND (total > 1) IS TRUE`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	// The queries of the golden files.
	files, _ := filepath.Glob(filepath.Join("testdata", "plans", "*.golden"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		sql, _, _ := strings.Cut(strings.TrimPrefix(string(data), "-- "), "\nsources:")
		f.Add(sql)
	}
	schema := loadSchema(f, "shop.prisma")
	f.Fuzz(func(t *testing.T, sql string) {
		p, err := Compile(schema, sql)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if e.Line < 1 || e.Column < 1 || e.Offset < 0 || e.Offset > len(sql) {
				t.Fatalf("error position %d:%d (offset %d) outside the query: %v", e.Line, e.Column, e.Offset, e)
			}
			if line, col := position(sql, e.Offset); line != e.Line || col != e.Column {
				t.Fatalf("error at %d:%d, but offset %d is %d:%d", e.Line, e.Column, e.Offset, line, col)
			}
			if e.Message == "" {
				t.Fatal("empty message")
			}
			return
		}
		if !utf8.ValidString(sql) {
			t.Fatal("accepted invalid UTF-8")
		}
		if err := checkPlan(p); err != nil {
			t.Fatalf("invalid plan for %q: %v\n%s", sql, err, p)
		}
		_ = p.String()
		_ = p.GroupKeyNames()
		n, err := Normalize(sql)
		if err != nil || n != p.Normalized {
			t.Fatalf("Normalize = %q, %v; plan has %q", n, err, p.Normalized)
		}
	})
}
