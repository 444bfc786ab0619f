package sourceschema

import (
	"context"
	"testing"
)

const runSchema = `
datasource db {
  provider = "postgresql"
}

enum OrderStatus {
  NEW
  PAID

  @@map("order_status")
}

model Order {
  id       Int         @id
  region   String
  status   OrderStatus
  note     String?
  total    Decimal     @db.Decimal(12, 2)
  qty      Int
  code     String      @db.VarChar(20)
  placedAt DateTime    @map("placed_at")
  unread   String?

  @@map("orders")
}
`

const runQuery = `SELECT region, status, sum(total) AS total, sum(qty) AS qty, count(code) AS codes, max(placed_at) AS last, count(note) AS notes
FROM orders GROUP BY region, status`

// runTable creates the table of runSchema as prisma migrate would, with a
// row in it and REPLICA IDENTITY FULL.
var runTable = []string{
	`CREATE TYPE order_status AS ENUM ('NEW', 'PAID')`,
	`CREATE TABLE orders (
		id        integer NOT NULL,
		region    text NOT NULL,
		status    order_status NOT NULL,
		note      text,
		total     numeric(12,2) NOT NULL,
		qty       integer NOT NULL,
		code      varchar(20) NOT NULL,
		placed_at timestamp(3) NOT NULL,
		unread    text,
		CONSTRAINT orders_pkey PRIMARY KEY (id)
	)`,
	`ALTER TABLE orders REPLICA IDENTITY FULL`,
	`INSERT INTO orders VALUES (1, 'north', 'PAID', 'first', 12.50, 3, 'A1', '2024-05-01 10:00:00.123', NULL)`,
}

var flink = Options{ExactTypes: true, NeedBeforeImages: true}

func TestCheckRunning(t *testing.T) {
	plan := compile(t, runSchema, runQuery)
	tests := []struct {
		name  string
		setup []string // DDL before the previous observation
		ddl   []string
		opts  Options
		want  []want
		// noPrev is what CheckRunning finds without the previous
		// observation, when noPrevDiffers; else it is want.
		noPrev        []want
		noPrevDiffers bool
	}{
		// Compatible changes.
		{name: "add_column", ddl: []string{`ALTER TABLE orders ADD COLUMN extra int`}, opts: flink},
		{name: "add_table", ddl: []string{`CREATE TABLE other (id int PRIMARY KEY)`}, opts: flink},
		{name: "drop_unread_column", ddl: []string{`ALTER TABLE orders DROP COLUMN unread`}, opts: flink},
		{name: "rename_unread_column", ddl: []string{`ALTER TABLE orders RENAME COLUMN unread TO spare`}, opts: flink},
		{name: "set_not_null", ddl: []string{`ALTER TABLE orders ALTER COLUMN note SET NOT NULL`}, opts: flink},
		{name: "enum_gains_value", ddl: []string{`ALTER TYPE order_status ADD VALUE 'VOID'`}, opts: flink},
		{name: "enum_type_renamed", ddl: []string{`ALTER TYPE order_status RENAME TO order_state`},
			noPrevDiffers: true, noPrev: []want{{"orders", "status", []string{"changed type from order_status to order_state"}}}},
		{name: "domain_of_same_type", ddl: []string{`CREATE DOMAIN amount AS numeric(12,2)`, `ALTER TABLE orders ALTER COLUMN total TYPE amount`}, opts: flink},
		{name: "add_primary_key", setup: []string{`ALTER TABLE orders DROP CONSTRAINT orders_pkey`},
			ddl: []string{`ALTER TABLE orders ADD PRIMARY KEY (id)`}, opts: flink},
		{name: "replica_identity_default_embedded", ddl: []string{`ALTER TABLE orders REPLICA IDENTITY DEFAULT`}},

		// Columns the query reads.
		{name: "drop_read_column", ddl: []string{`ALTER TABLE orders DROP COLUMN note`},
			want: []want{{"orders", "note", []string{"column orders.note was renamed or dropped"}}}},
		{name: "rename_read_column", ddl: []string{`ALTER TABLE orders RENAME COLUMN note TO remark`},
			want:          []want{{"orders", "note", []string{"column orders.note was renamed to remark"}}},
			noPrevDiffers: true, noPrev: []want{{"orders", "note", []string{"column orders.note was renamed or dropped"}}}},
		// A renamed key column is one problem, not also a changed key.
		{name: "rename_key_column", ddl: []string{`ALTER TABLE orders RENAME COLUMN id TO order_id`},
			want:          []want{{"orders", "id", []string{"column orders.id was renamed to order_id"}}},
			noPrevDiffers: true, noPrev: []want{
				{"orders", "id", []string{"column orders.id was renamed or dropped"}},
				{"orders", "", []string{"primary key of table orders changed from (id) to (order_id)"}},
			}},
		{name: "replace_read_column", ddl: []string{`ALTER TABLE orders RENAME COLUMN note TO old_note`, `ALTER TABLE orders ADD COLUMN note text`},
			want:          []want{{"orders", "note", []string{"column orders.note was dropped or renamed, and a new column took its name"}}},
			noPrevDiffers: true},
		{name: "drop_not_null", ddl: []string{`ALTER TABLE orders ALTER COLUMN region DROP NOT NULL`},
			want: []want{{"orders", "region", []string{"column orders.region now allows NULL", "required"}}}},

		// numeric
		{name: "numeric_more_precision", ddl: []string{`ALTER TABLE orders ALTER COLUMN total TYPE numeric(14,2)`}},
		{name: "numeric_more_precision_flink", ddl: []string{`ALTER TABLE orders ALTER COLUMN total TYPE numeric(14,2)`}, opts: flink,
			want: []want{{"orders", "total", []string{"changed type from numeric(12,2) to numeric(14,2)", "DECIMAL(12, 2)", "cannot hold every numeric(14,2) value"}}}},
		{name: "numeric_larger_scale", ddl: []string{`ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,3)`}},
		{name: "numeric_larger_scale_flink", ddl: []string{`ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,3)`}, opts: flink,
			want: []want{{"orders", "total", []string{"changed type from numeric(12,2) to numeric(12,3)", "DECIMAL(12, 2)"}}}},
		{name: "numeric_smaller_scale", ddl: []string{`ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,1)`},
			want: []want{{"orders", "total", []string{"column orders.total changed type from numeric(12,2) to numeric(12,1)"}}}},
		{name: "numeric_unconstrained", ddl: []string{`ALTER TABLE orders ALTER COLUMN total TYPE numeric`}},
		{name: "numeric_unconstrained_flink", ddl: []string{`ALTER TABLE orders ALTER COLUMN total TYPE numeric`}, opts: flink,
			want: []want{{"orders", "total", []string{"changed type from numeric(12,2) to numeric:", "DECIMAL(12, 2)"}}}},
		{name: "numeric_to_text", ddl: []string{`ALTER TABLE orders ALTER COLUMN total TYPE text`},
			want: []want{{"orders", "total", []string{"column orders.total changed type from numeric(12,2) to text"}}}},
		// Judged against the previous observation, not the plan: (12,4)
		// was fine after (12,2), (12,3) rounds what (12,4) held.
		{name: "numeric_smaller_scale_than_previous", setup: []string{`ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,4)`},
			ddl:           []string{`ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,3)`},
			want:          []want{{"orders", "total", []string{"changed type from numeric(12,4) to numeric(12,3)"}}},
			noPrevDiffers: true},

		// integers
		{name: "integer_to_bigint", ddl: []string{`ALTER TABLE orders ALTER COLUMN qty TYPE bigint`}},
		{name: "integer_to_bigint_flink", ddl: []string{`ALTER TABLE orders ALTER COLUMN qty TYPE bigint`}, opts: flink,
			want: []want{{"orders", "qty", []string{"changed type from integer to bigint", "reads it as integer, which cannot hold every bigint value"}}}},
		{name: "integer_to_smallint_flink", ddl: []string{`ALTER TABLE orders ALTER COLUMN qty TYPE smallint`}, opts: flink},
		{name: "integer_to_numeric", ddl: []string{`ALTER TABLE orders ALTER COLUMN qty TYPE numeric(10,0)`},
			want: []want{{"orders", "qty", []string{"changed type from integer to numeric(10,0)"}}}},
		{name: "integer_to_text", ddl: []string{`ALTER TABLE orders ALTER COLUMN qty TYPE text`},
			want: []want{{"orders", "qty", []string{"changed type from integer to text"}}}},

		// strings
		{name: "varchar_longer", ddl: []string{`ALTER TABLE orders ALTER COLUMN code TYPE varchar(40)`}, opts: flink},
		{name: "varchar_longer_then_text", setup: []string{`ALTER TABLE orders ALTER COLUMN code TYPE varchar(40)`},
			ddl: []string{`ALTER TABLE orders ALTER COLUMN code TYPE text`}, opts: flink},
		{name: "varchar_shorter", ddl: []string{`ALTER TABLE orders ALTER COLUMN code TYPE varchar(10)`}, opts: flink},
		{name: "text_to_char", ddl: []string{`ALTER TABLE orders ALTER COLUMN region TYPE char(10)`},
			want: []want{{"orders", "region", []string{"column orders.region changed type from text to character(10)"}}}},
		{name: "varchar_to_char", ddl: []string{`ALTER TABLE orders ALTER COLUMN code TYPE char(20)`},
			want:          []want{{"orders", "code", []string{"changed type from character varying(20) to character(20)"}}},
			noPrevDiffers: true, noPrev: []want{{"orders", "code", []string{"changed type from varchar(20) to character(20)"}}}},

		// time
		{name: "timestamp_more_digits", ddl: []string{`ALTER TABLE orders ALTER COLUMN placed_at TYPE timestamp(6)`}},
		{name: "timestamp_more_digits_flink", ddl: []string{`ALTER TABLE orders ALTER COLUMN placed_at TYPE timestamp(6)`}, opts: flink,
			want:          []want{{"orders", "placed_at", []string{"changed type from timestamp(3) without time zone to timestamp(6) without time zone", "3 fractional-second digits"}}},
			noPrevDiffers: true, noPrev: []want{{"orders", "placed_at", []string{"changed type from timestamp(3) to timestamp(6) without time zone", "3 fractional-second digits"}}}},
		{name: "timestamp_fewer_digits", ddl: []string{`ALTER TABLE orders ALTER COLUMN placed_at TYPE timestamp(0)`},
			want: []want{{"orders", "placed_at", []string{"to timestamp(0) without time zone"}}}},
		{name: "timestamp_to_timestamptz", ddl: []string{`ALTER TABLE orders ALTER COLUMN placed_at TYPE timestamptz(3)`},
			want: []want{{"orders", "placed_at", []string{"to timestamp(3) with time zone"}}}},

		// enums
		{name: "enum_to_text", ddl: []string{`ALTER TABLE orders ALTER COLUMN status TYPE text`},
			want: []want{{"orders", "status", []string{"changed type from order_status to text"}}}},
		{name: "enum_value_renamed", ddl: []string{`ALTER TYPE order_status RENAME VALUE 'PAID' TO 'paid'`},
			want:          []want{{"orders", "status", []string{"enum type of column orders.status no longer has the value 'PAID'"}}},
			noPrevDiffers: true},

		// tables
		{name: "drop_table", ddl: []string{`DROP TABLE orders`},
			want: []want{{"orders", "", []string{"table orders was dropped or renamed"}}}},
		{name: "rename_table", ddl: []string{`ALTER TABLE orders RENAME TO orders_v2`},
			want:          []want{{"orders", "", []string{"table orders was renamed to orders_v2"}}},
			noPrevDiffers: true, noPrev: []want{{"orders", "", []string{"table orders was dropped or renamed"}}}},
		{name: "move_table", ddl: []string{`CREATE SCHEMA archive`, `ALTER TABLE orders SET SCHEMA archive`},
			want:          []want{{"orders", "", []string{"table orders was renamed to archive.orders"}}},
			noPrevDiffers: true, noPrev: []want{{"orders", "", []string{"table orders was dropped or renamed"}}}},
		{name: "recreate_table", ddl: []string{`DROP TABLE orders`, runTable[1], runTable[2]}, opts: flink,
			want:          []want{{"orders", "", []string{"table orders was dropped and created again"}}},
			noPrevDiffers: true},

		// primary key and replica identity
		{name: "drop_primary_key", ddl: []string{`ALTER TABLE orders DROP CONSTRAINT orders_pkey`},
			want: []want{{"orders", "", []string{"table orders no longer has a primary key"}}}},
		{name: "primary_key_on_other_columns", ddl: []string{`ALTER TABLE orders DROP CONSTRAINT orders_pkey`, `ALTER TABLE orders ADD PRIMARY KEY (region, id)`},
			want: []want{{"orders", "", []string{"the primary key of table orders changed from (id) to (region, id)"}}}},
		{name: "replica_identity_default_flink", ddl: []string{`ALTER TABLE orders REPLICA IDENTITY DEFAULT`}, opts: flink,
			want: []want{{"orders", "", []string{"the replica identity of table orders changed from FULL to DEFAULT", "the engine needs FULL"}}},
			// Unknown before: the capture may not have set FULL yet.
			noPrevDiffers: true, noPrev: nil},
		{name: "replica_identity_nothing_flink", ddl: []string{`ALTER TABLE orders REPLICA IDENTITY NOTHING`}, opts: Options{NeedBeforeImages: true},
			want:          []want{{"orders", "", []string{"changed from FULL to NOTHING"}}},
			noPrevDiffers: true, noPrev: nil},

		// Several problems at once, in the plan's column order, then the
		// table's.
		{name: "several", ddl: []string{
			`ALTER TABLE orders DROP CONSTRAINT orders_pkey`,
			`ALTER TABLE orders ALTER COLUMN qty TYPE text`,
			`ALTER TABLE orders DROP COLUMN region`,
		}, want: []want{
			{"orders", "region", []string{"was renamed or dropped"}},
			{"orders", "qty", []string{"changed type from integer to text"}},
			{"orders", "", []string{"no longer has a primary key"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			conn := newConn(t, runTable...)
			if ps := CheckCreate(plan, readPlan(t, conn, plan), tt.opts); len(ps) > 0 {
				t.Fatalf("the table before the change: %v", ps)
			}
			exec(t, conn, tt.setup...)
			names := Tables(plan)
			previous, err := Read(ctx, conn, names)
			if err != nil {
				t.Fatal(err)
			}
			exec(t, conn, tt.ddl...)
			current, err := Reread(ctx, conn, names, previous)
			if err != nil {
				t.Fatal(err)
			}
			checkProblems(t, CheckRunning(plan, previous, current, tt.opts), tt.want...)
			noPrev := tt.want
			if tt.noPrevDiffers {
				noPrev = tt.noPrev
			}
			t.Run("without_previous", func(t *testing.T) {
				checkProblems(t, CheckRunning(plan, nil, current, tt.opts), noPrev...)
			})
		})
	}
}
