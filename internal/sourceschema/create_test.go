package sourceschema

import (
	"testing"
)

// TestCheckCreatePrismaMigrate checks queries over the tables prisma
// migrate creates from a schema (testdata/shop.sql from shop.prisma): the
// schema describes them, with Prisma's default types (DateTime as
// timestamp(3), Decimal as numeric(65,30)), @map and @@map, enums, a
// second schema, lists and an implicit many-to-many table.
func TestCheckCreatePrismaMigrate(t *testing.T) {
	schema := readFile(t, "testdata/shop.prisma")
	conn := newConn(t, readFile(t, "testdata/shop.sql"))
	queries := []string{
		`SELECT c.region, o.status, count(*) AS orders, sum(o.total) AS revenue, avg(o.discount) AS discount,
			max(o.placed_at) AS last_order, min(o.shipped_at) AS first_shipment, count(o.note) AS notes,
			sum(o.weight) AS weight, count(DISTINCT c.email) AS customers, count(CASE WHEN c.vip THEN 1 END) AS vip_orders,
			min(c.created_at) AS first_customer, count(o.tags) AS tagged
		FROM orders o JOIN customers c ON c.id = o.customer_id
		GROUP BY c.region, o.status`,
		`SELECT o.currency, sum(li.price * li.quantity) AS amount, max(li.sku) AS sku, count(li.line) AS lines
		FROM line_items li JOIN orders o ON o.id = li.order_id GROUP BY o.currency`,
		`SELECT kind, count(*) AS n, max(at) AS last, count(payload) AS payloads FROM audit.events GROUP BY kind`,
		`SELECT c.name, count(*) AS products FROM "_CategoryToProduct" cp JOIN categories c ON c.id = cp."A" GROUP BY c.name`,
	}
	for _, sql := range queries {
		plan := compile(t, schema, sql)
		db := readPlan(t, conn, plan)
		checkProblems(t, CheckCreate(plan, db, Options{}))
		checkProblems(t, CheckCreate(plan, db, Options{ExactTypes: true}))
		// Prisma leaves the replica identity at DEFAULT.
		var wants []want
		for _, n := range Tables(plan) {
			wants = append(wants, want{n.String(), "", []string{"table " + n.String() + " has REPLICA IDENTITY DEFAULT"}})
		}
		checkProblems(t, CheckCreate(plan, db, flink), wants...)
	}
	exec(t, conn,
		`ALTER TABLE orders REPLICA IDENTITY FULL`, `ALTER TABLE customers REPLICA IDENTITY FULL`,
		`ALTER TABLE line_items REPLICA IDENTITY FULL`, `ALTER TABLE audit.events REPLICA IDENTITY FULL`,
		`ALTER TABLE categories REPLICA IDENTITY FULL`, `ALTER TABLE "_CategoryToProduct" REPLICA IDENTITY FULL`)
	for _, sql := range queries {
		plan := compile(t, schema, sql)
		checkProblems(t, CheckCreate(plan, readPlan(t, conn, plan), flink))
	}
}

// TestCheckCreatePrismaDbPull checks queries over a database written by
// hand (testdata/legacy.sql) with the schema prisma db pull makes of it
// (testdata/legacy.prisma): domains, unconstrained numeric, timestamptz
// without precision, char(n), varchar arrays, inet, bit(4), a composite
// primary key.
func TestCheckCreatePrismaDbPull(t *testing.T) {
	schema := readFile(t, "testdata/legacy.prisma")
	conn := newConn(t, readFile(t, "testdata/legacy.sql"))
	queries := []string{
		`SELECT state, count(*) AS n, sum(net) AS net, sum(tax) AS tax, sum(gross) AS gross, sum(lines) AS lines,
			min(issued_on) AS first_day, max(issued_at) AS last_issued, max(due) AS due, max(created) AS created,
			count(DISTINCT customer_code) AS customers, count(meta) AS metas, count(client_ip) AS ips, count(flags) AS flags,
			sum(rate) AS rate, sum(priority) AS priority, count(DISTINCT token) AS tokens, count(attachment) AS attachments,
			count(labels) AS labelled, max(number) AS last_number
		FROM sales.invoices GROUP BY state`,
		`SELECT p.method, i.state, sum(p.amount) AS paid, max(p.paid_at) AS last_payment
		FROM payments p JOIN sales.invoices i ON i.id = p.invoice_id GROUP BY p.method, i.state`,
	}
	for _, sql := range queries {
		plan := compile(t, schema, sql)
		db := readPlan(t, conn, plan)
		checkProblems(t, CheckCreate(plan, db, Options{}))
		checkProblems(t, CheckCreate(plan, db, Options{ExactTypes: true}))
	}
}

// createSchema is runSchema with a field of each kind the create checks
// name: a mapped one (placedAt), an enum, an optional one.
const createSchema = runSchema

func TestCheckCreate(t *testing.T) {
	plan := compile(t, createSchema, runQuery)
	tests := []struct {
		name string
		ddl  []string // applied to runTable
		opts Options
		want []want
	}{
		{name: "as_created", opts: flink},
		{name: "missing_table", ddl: []string{`DROP TABLE orders`},
			want: []want{{"orders", "", []string{"table orders (Prisma model Order) does not exist"}}}},
		{name: "missing_column", ddl: []string{`ALTER TABLE orders DROP COLUMN region`},
			want: []want{{"orders", "region", []string{"column orders.region does not exist"}}}},
		{name: "missing_mapped_column", ddl: []string{`ALTER TABLE orders RENAME COLUMN placed_at TO "placedAt"`},
			want: []want{{"orders", "placed_at", []string{"column orders.placed_at (Prisma field Order.placedAt) does not exist"}}}},
		{name: "extra_columns", ddl: []string{`ALTER TABLE orders ADD COLUMN extra jsonb NOT NULL DEFAULT '{}'`}, opts: flink},
		{name: "string_on_integer", ddl: []string{`ALTER TABLE orders ALTER COLUMN region TYPE integer USING 7`},
			want: []want{{"orders", "region", []string{"column orders.region is integer, but the Prisma schema declares text (String)"}}}},
		{name: "int_on_text", ddl: []string{`ALTER TABLE orders ALTER COLUMN qty TYPE text`},
			want: []want{{"orders", "qty", []string{"column orders.qty is text, but the Prisma schema declares integer (Int)"}}}},
		{name: "string_on_varchar", ddl: []string{`ALTER TABLE orders ALTER COLUMN region TYPE varchar(40)`}, opts: flink},
		{name: "varchar_on_text", ddl: []string{`ALTER TABLE orders ALTER COLUMN code TYPE text`}, opts: flink},
		{name: "string_on_char", ddl: []string{`ALTER TABLE orders ALTER COLUMN region TYPE char(8)`},
			want: []want{{"orders", "region", []string{"column orders.region is character(8), but the Prisma schema declares text (String)"}}}},
		{name: "int_on_bigint", ddl: []string{`ALTER TABLE orders ALTER COLUMN qty TYPE bigint`}},
		{name: "int_on_bigint_flink", ddl: []string{`ALTER TABLE orders ALTER COLUMN qty TYPE bigint`}, opts: flink,
			want: []want{{"orders", "qty", []string{"column orders.qty is bigint and the Prisma schema declares integer (Int)", "cannot hold every bigint value"}}}},
		{name: "decimal_on_smaller_scale", ddl: []string{`ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,1)`},
			want: []want{{"orders", "total", []string{"column orders.total is numeric(12,1), but the Prisma schema declares numeric(12,2) (Decimal @db.Decimal(12,2))"}}}},
		{name: "decimal_on_unconstrained", ddl: []string{`ALTER TABLE orders ALTER COLUMN total TYPE numeric`}},
		{name: "decimal_on_unconstrained_flink", ddl: []string{`ALTER TABLE orders ALTER COLUMN total TYPE numeric`}, opts: flink,
			want: []want{{"orders", "total", []string{"column orders.total is numeric and the Prisma schema declares numeric(12,2)", "DECIMAL(12, 2)"}}}},
		{name: "datetime_on_microseconds", ddl: []string{`ALTER TABLE orders ALTER COLUMN placed_at TYPE timestamp`}},
		{name: "datetime_on_microseconds_flink", ddl: []string{`ALTER TABLE orders ALTER COLUMN placed_at TYPE timestamp`}, opts: flink,
			want: []want{{"orders", "placed_at", []string{"column orders.placed_at is timestamp without time zone and the Prisma schema declares timestamp(3) (Order.placedAt DateTime)", "3 fractional-second digits"}}}},
		{name: "datetime_on_timestamptz", ddl: []string{`ALTER TABLE orders ALTER COLUMN placed_at TYPE timestamptz(3)`},
			want: []want{{"orders", "placed_at", []string{"column orders.placed_at is timestamp(3) with time zone, but the Prisma schema declares timestamp(3) (Order.placedAt DateTime)"}}}},
		{name: "enum_on_text", ddl: []string{`ALTER TABLE orders ALTER COLUMN status TYPE text`},
			want: []want{{"orders", "status", []string{"column orders.status is text, but the Prisma schema declares order_status (OrderStatus)"}}}},
		{name: "enum_of_other_name", ddl: []string{`ALTER TYPE order_status RENAME TO status`},
			want: []want{{"orders", "status", []string{"column orders.status is status, but the Prisma schema declares order_status (OrderStatus)"}}}},
		{name: "required_on_nullable", ddl: []string{`ALTER TABLE orders ALTER COLUMN region DROP NOT NULL`},
			want: []want{{"orders", "region", []string{"column orders.region allows NULL, but the Prisma field is required (String, not String?)"}}}},
		{name: "required_mapped_on_nullable", ddl: []string{`ALTER TABLE orders ALTER COLUMN placed_at DROP NOT NULL`},
			want: []want{{"orders", "placed_at", []string{"column orders.placed_at allows NULL, but the Prisma field Order.placedAt is required (DateTime, not DateTime?)"}}}},
		{name: "optional_on_not_null", ddl: []string{`ALTER TABLE orders ALTER COLUMN note SET NOT NULL`}, opts: flink},
		{name: "no_primary_key", ddl: []string{`ALTER TABLE orders DROP CONSTRAINT orders_pkey`},
			want: []want{{"orders", "", []string{"table orders has no primary key, but the Prisma schema says (id)"}}}},
		{name: "other_primary_key", ddl: []string{`ALTER TABLE orders DROP CONSTRAINT orders_pkey`, `ALTER TABLE orders ADD PRIMARY KEY (id, region)`},
			want: []want{{"orders", "", []string{"the primary key of table orders is (id, region), but the Prisma schema says (id)"}}}},
		{name: "replica_identity_default", ddl: []string{`ALTER TABLE orders REPLICA IDENTITY DEFAULT`}, opts: Options{ExactTypes: true}},
		{name: "replica_identity_default_flink", ddl: []string{`ALTER TABLE orders REPLICA IDENTITY DEFAULT`}, opts: flink,
			want: []want{{"orders", "", []string{"table orders has REPLICA IDENTITY DEFAULT; the engine needs REPLICA IDENTITY FULL"}}}},
		{name: "generated_column", ddl: []string{`ALTER TABLE orders DROP COLUMN qty`, `ALTER TABLE orders ADD COLUMN qty integer NOT NULL GENERATED ALWAYS AS (id * 2) STORED`},
			want: []want{{"orders", "qty", []string{"column orders.qty is a generated column"}}}},
		{name: "several", ddl: []string{
			`ALTER TABLE orders DROP CONSTRAINT orders_pkey`,
			`ALTER TABLE orders ALTER COLUMN region DROP NOT NULL`,
			`ALTER TABLE orders ALTER COLUMN region TYPE char(5)`,
			`ALTER TABLE orders DROP COLUMN code`,
			`ALTER TABLE orders REPLICA IDENTITY NOTHING`,
		}, opts: flink, want: []want{
			{"orders", "region", []string{"is character(5)"}},
			{"orders", "region", []string{"allows NULL"}},
			{"orders", "code", []string{"column orders.code does not exist"}},
			{"orders", "", []string{"has no primary key"}},
			{"orders", "", []string{"REPLICA IDENTITY NOTHING"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conn := newConn(t, runTable...)
			exec(t, conn, tt.ddl...)
			checkProblems(t, CheckCreate(plan, readPlan(t, conn, plan), tt.opts), tt.want...)
		})
	}
}
