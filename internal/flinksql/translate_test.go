package flinksql_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdcq/cdcq/internal/flinksql"
	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	env     = "env1"
	queryID = "q_0123456789abcdef0123"
)

func options() flinksql.Options {
	return flinksql.Options{
		EnvironmentID:    env,
		QueryID:          queryID,
		PipelineName:     names.PipelineName(env, queryID),
		BootstrapServers: "kafka:19092",
	}
}

// Plans are built by hand, the way sqlplan.Compile builds them for the SQL
// in each comment, so that these tests pin the translation alone.

var (
	tInt      = sqlplan.TypeOf(sqlplan.KindInteger)
	tBigint   = sqlplan.TypeOf(sqlplan.KindBigint)
	tText     = sqlplan.TypeOf(sqlplan.KindText)
	tNumeric  = sqlplan.TypeOf(sqlplan.KindNumeric)
	tBool     = sqlplan.TypeOf(sqlplan.KindBoolean)
	tMoney    = sqlplan.NumericType(10, 2)
	tCreated  = sqlplan.TimestampType(3)
	tDate     = sqlplan.TypeOf(sqlplan.KindDate)
	tDouble   = sqlplan.TypeOf(sqlplan.KindDouble)
	tInterval = sqlplan.TypeOf(sqlplan.KindInterval)
)

func col(name string, t sqlplan.Type, key, nullable bool) sqlplan.SourceColumn {
	return sqlplan.SourceColumn{Name: name, Type: t, Key: key, Nullable: nullable}
}

func ordersSource(alias string) sqlplan.Source {
	return sqlplan.Source{
		Alias: alias, Schema: "public", Name: "orders", Topic: "public.orders",
		Columns: []sqlplan.SourceColumn{
			col("id", tInt, true, false),
			col("customer_id", tInt, false, false),
			col("status", tText, false, false),
			col("total", tMoney, false, true),
			col("created_at", tCreated, false, false),
		},
		PrimaryKey: []string{"id"},
	}
}

func customersSource(alias string) sqlplan.Source {
	return sqlplan.Source{
		Alias: alias, Schema: "public", Name: "customers", Topic: "public.customers",
		Columns: []sqlplan.SourceColumn{
			col("id", tInt, true, false),
			col("name", tText, false, false),
			col("region", tText, false, true),
		},
		PrimaryKey: []string{"id"},
	}
}

func ref(src int, name string, t sqlplan.Type) *sqlplan.ColumnRef {
	return &sqlplan.ColumnRef{Source: src, Column: name, Type: t}
}

func num(v string, t sqlplan.Type) *sqlplan.Const { return &sqlplan.Const{Value: v, Type: t} }
func str(v string) *sqlplan.Const {
	return &sqlplan.Const{Value: "'" + strings.ReplaceAll(v, "'", "''") + "'", Type: tText}
}

func bin(op sqlplan.Op, l, r sqlplan.Expr, t sqlplan.Type) *sqlplan.Binary {
	return &sqlplan.Binary{Op: op, L: l, R: r, Type: t}
}

// singleTable:
//
//	SELECT status, count(*), sum(total) AS revenue
//	FROM orders WHERE total > 10 AND created_at >= '2024-01-01'
//	GROUP BY status
func singleTable() *sqlplan.Plan {
	total := ref(0, "total", tMoney)
	return &sqlplan.Plan{
		Sources: []sqlplan.Source{ordersSource("orders")},
		Filter: bin(sqlplan.OpAnd,
			bin(sqlplan.OpGt, total, num("10", tMoney), tBool),
			bin(sqlplan.OpGe, ref(0, "created_at", tCreated), num("'2024-01-01 00:00:00'", tCreated), tBool),
			tBool),
		GroupBy: []sqlplan.Expr{ref(0, "status", tText)},
		Aggregates: []sqlplan.Aggregate{
			{Func: sqlplan.CountStar, Type: tBigint},
			{Func: sqlplan.Sum, Arg: total, Type: tNumeric},
		},
		Outputs: []sqlplan.Output{
			{Name: "status", Expr: &sqlplan.GroupRef{Index: 0, Type: tText}, Type: tText},
			{Name: "count", Expr: &sqlplan.AggRef{Index: 0, Type: tBigint}, Type: tBigint},
			{Name: "revenue", Expr: &sqlplan.AggRef{Index: 1, Type: tNumeric}, Type: tNumeric},
		},
	}
}

// join:
//
//	SELECT c.name, count(*) AS orders, avg(o.total) AS average
//	FROM orders o JOIN customers c ON o.customer_id = c.id
//	WHERE c.region = 'EU'
//	GROUP BY c.id, c.name
func join() *sqlplan.Plan {
	return &sqlplan.Plan{
		Sources: []sqlplan.Source{ordersSource("o"), customersSource("c")},
		Joins:   []sqlplan.Join{{Left: ref(0, "customer_id", tInt), Right: ref(1, "id", tInt)}},
		Filter:  bin(sqlplan.OpEq, ref(1, "region", tText), str("EU"), tBool),
		GroupBy: []sqlplan.Expr{ref(1, "id", tInt), ref(1, "name", tText)},
		Aggregates: []sqlplan.Aggregate{
			{Func: sqlplan.CountStar, Type: tBigint},
			{Func: sqlplan.Avg, Arg: ref(0, "total", tMoney), Type: tNumeric},
		},
		Outputs: []sqlplan.Output{
			{Name: "name", Expr: &sqlplan.GroupRef{Index: 1, Type: tText}, Type: tText},
			{Name: "orders", Expr: &sqlplan.AggRef{Index: 0, Type: tBigint}, Type: tBigint},
			{Name: "average", Expr: &sqlplan.AggRef{Index: 1, Type: tNumeric}, Type: tNumeric},
		},
	}
}

// having:
//
//	SELECT customer_id, sum(total) AS spent, max(created_at) AS last_order
//	FROM orders GROUP BY customer_id
//	HAVING sum(total) > 100 AND count(*) >= 2
func having() *sqlplan.Plan {
	total := ref(0, "total", tMoney)
	return &sqlplan.Plan{
		Sources: []sqlplan.Source{ordersSource("orders")},
		GroupBy: []sqlplan.Expr{ref(0, "customer_id", tInt)},
		Aggregates: []sqlplan.Aggregate{
			{Func: sqlplan.Sum, Arg: total, Type: tNumeric},
			{Func: sqlplan.Max, Arg: ref(0, "created_at", tCreated), Type: sqlplan.TimestampType(sqlplan.NoPrecision)},
			{Func: sqlplan.CountStar, Type: tBigint},
		},
		Having: bin(sqlplan.OpAnd,
			bin(sqlplan.OpGt, &sqlplan.AggRef{Index: 0, Type: tNumeric}, num("100", tNumeric), tBool),
			bin(sqlplan.OpGe, &sqlplan.AggRef{Index: 2, Type: tBigint}, num("2", tBigint), tBool),
			tBool),
		Outputs: []sqlplan.Output{
			{Name: "customer_id", Expr: &sqlplan.GroupRef{Index: 0, Type: tInt}, Type: tInt},
			{Name: "spent", Expr: &sqlplan.AggRef{Index: 0, Type: tNumeric}, Type: tNumeric},
			{Name: "last_order", Expr: &sqlplan.AggRef{Index: 1, Type: sqlplan.TimestampType(sqlplan.NoPrecision)}, Type: sqlplan.TimestampType(sqlplan.NoPrecision)},
		},
	}
}

// countDistinct:
//
//	SELECT count(DISTINCT customer_id) AS customers, count(*) AS orders,
//	       sum(total) / count(*) AS per_order
//	FROM orders WHERE status IN ('paid', 'shipped')
func countDistinct() *sqlplan.Plan {
	return &sqlplan.Plan{
		Sources: []sqlplan.Source{ordersSource("orders")},
		Filter:  &sqlplan.In{X: ref(0, "status", tText), List: []sqlplan.Expr{str("paid"), str("shipped")}},
		Aggregates: []sqlplan.Aggregate{
			{Func: sqlplan.CountDistinct, Arg: ref(0, "customer_id", tInt), Type: tBigint},
			{Func: sqlplan.CountStar, Type: tBigint},
			{Func: sqlplan.Sum, Arg: ref(0, "total", tMoney), Type: tNumeric},
		},
		Outputs: []sqlplan.Output{
			{Name: "customers", Expr: &sqlplan.AggRef{Index: 0, Type: tBigint}, Type: tBigint},
			{Name: "orders", Expr: &sqlplan.AggRef{Index: 1, Type: tBigint}, Type: tBigint},
			{Name: "per_order", Expr: bin(sqlplan.OpDiv,
				&sqlplan.AggRef{Index: 2, Type: tNumeric},
				&sqlplan.Cast{X: &sqlplan.AggRef{Index: 1, Type: tBigint}, Type: tNumeric, Implicit: true},
				tNumeric), Type: tNumeric},
		},
	}
}

// everyType lists a column of each type the translation knows.
var everyType = []struct {
	name string
	t    sqlplan.Type
}{
	{"c_smallint", sqlplan.TypeOf(sqlplan.KindSmallint)},
	{"c_integer", tInt},
	{"c_bigint", tBigint},
	{"c_numeric_10_2", tMoney},
	{"c_numeric", tNumeric},
	{"c_numeric_65_30", sqlplan.NumericType(65, 30)},
	{"c_real", sqlplan.TypeOf(sqlplan.KindReal)},
	{"c_double", tDouble},
	{"c_boolean", tBool},
	{"c_text", tText},
	{"c_varchar", sqlplan.VarcharType(20)},
	{"c_char", sqlplan.CharType(3)},
	{"c_uuid", sqlplan.TypeOf(sqlplan.KindUUID)},
	{"c_date", tDate},
	{"c_time", sqlplan.TimeType(sqlplan.NoPrecision)},
	{"c_timestamp", tCreated},
	{"c_timestamp_default", sqlplan.TimestampType(sqlplan.NoPrecision)},
	{"c_timestamptz", sqlplan.TimestamptzType(6)},
	{"c_timetz", sqlplan.TimetzType(sqlplan.NoPrecision)},
	{"c_json", sqlplan.TypeOf(sqlplan.KindJSON)},
	{"c_jsonb", sqlplan.TypeOf(sqlplan.KindJSONB)},
	{"c_bytea", sqlplan.TypeOf(sqlplan.KindBytea)},
	{"c_enum", sqlplan.EnumType("public", "Status")},
	{"c_inet", sqlplan.OtherType("inet")},
	{"c_text_array", sqlplan.ArrayType(tText)},
	{"c_integer_array", sqlplan.ArrayType(tInt)},
	{"c_numeric_array", sqlplan.ArrayType(tMoney)},
}

// columnTypes groups by a column of every type and takes min and max of
// two:
//
//	SELECT c_smallint, ..., c_numeric_array, count(*), min(c_date) AS first_day,
//	       max(c_timestamptz) AS last_change
//	FROM everything GROUP BY c_smallint, ..., c_numeric_array
func columnTypes() *sqlplan.Plan {
	src := sqlplan.Source{Alias: "everything", Schema: "app", Name: "everything", Topic: "app.everything",
		PrimaryKey: []string{"id"}}
	src.Columns = append(src.Columns, col("id", tBigint, true, false))
	p := &sqlplan.Plan{}
	for i, c := range everyType {
		src.Columns = append(src.Columns, col(c.name, c.t, false, false))
		p.GroupBy = append(p.GroupBy, ref(0, c.name, c.t))
		p.Outputs = append(p.Outputs, sqlplan.Output{Name: c.name, Expr: &sqlplan.GroupRef{Index: i, Type: c.t}, Type: c.t})
	}
	p.Sources = []sqlplan.Source{src}
	tz := sqlplan.TimestamptzType(6)
	p.Aggregates = []sqlplan.Aggregate{
		{Func: sqlplan.CountStar, Type: tBigint},
		{Func: sqlplan.Min, Arg: ref(0, "c_date", tDate), Type: tDate},
		{Func: sqlplan.Max, Arg: ref(0, "c_timestamptz", tz), Type: tz.Base()},
	}
	p.Outputs = append(p.Outputs,
		sqlplan.Output{Name: "count", Expr: &sqlplan.AggRef{Index: 0, Type: tBigint}, Type: tBigint},
		sqlplan.Output{Name: "first_day", Expr: &sqlplan.AggRef{Index: 1, Type: tDate}, Type: tDate},
		sqlplan.Output{Name: "last_change", Expr: &sqlplan.AggRef{Index: 2, Type: tz.Base()}, Type: tz.Base()},
	)
	return p
}

// expressions:
//
//	SELECT CASE WHEN total >= 100 THEN 'big' ELSE 'small' END AS size,
//	       date_trunc('month', created_at) AS month,
//	       count(*) FILTER-free, sum(total * 2), greatest(min(total), 0) ...
//	FROM orders o JOIN orders p ON o.customer_id = p.customer_id
//	WHERE o.status ILIKE 'pa%' AND o.created_at > '2024-01-01' + interval '1 day'
//	  AND NOT (o.total BETWEEN 1 AND 5) AND o.total IS NOT NULL
//	GROUP BY 1, 2
func expressions() *sqlplan.Plan {
	total := ref(0, "total", tMoney)
	size := &sqlplan.Case{
		Whens: []sqlplan.When{{Cond: bin(sqlplan.OpGe, total, num("100", tMoney), tBool), Result: str("big")}},
		Else:  str("small"), Type: tText,
	}
	month := &sqlplan.Func{Name: "date_trunc", Args: []sqlplan.Expr{str("month"), ref(0, "created_at", tCreated)},
		Type: sqlplan.TimestampType(sqlplan.NoPrecision)}
	dayAfter := bin(sqlplan.OpAdd, num("'2024-01-01'", tDate), num("'1 day'", tInterval), sqlplan.TimestampType(sqlplan.NoPrecision))
	filter := bin(sqlplan.OpAnd,
		bin(sqlplan.OpAnd,
			bin(sqlplan.OpILike, ref(0, "status", tText), str("pa%"), tBool),
			bin(sqlplan.OpGt, &sqlplan.Cast{X: ref(0, "created_at", tCreated), Type: sqlplan.TimestampType(sqlplan.NoPrecision), Implicit: true}, dayAfter, tBool),
			tBool),
		bin(sqlplan.OpAnd,
			&sqlplan.Unary{Op: sqlplan.OpNot, X: &sqlplan.Between{X: total, Lo: num("1", tMoney), Hi: num("5", tMoney)}, Type: tBool},
			&sqlplan.IsNull{X: total, Not: true},
			tBool),
		tBool)
	return &sqlplan.Plan{
		Sources: []sqlplan.Source{ordersSource("o"), ordersSource("p")},
		Joins:   []sqlplan.Join{{Left: ref(0, "customer_id", tInt), Right: ref(1, "customer_id", tInt)}},
		Filter:  filter,
		GroupBy: []sqlplan.Expr{size, month},
		Aggregates: []sqlplan.Aggregate{
			{Func: sqlplan.Sum, Arg: bin(sqlplan.OpMul, total, num("2", tMoney), tNumeric), Type: tNumeric},
			{Func: sqlplan.Min, Arg: total, Type: tNumeric},
			{Func: sqlplan.Avg, Arg: ref(1, "id", tInt), Type: tNumeric},
			{Func: sqlplan.Count, Arg: &sqlplan.Func{Name: "nullif", Args: []sqlplan.Expr{ref(1, "status", tText), str("void")}, Type: tText}, Type: tBigint},
		},
		Outputs: []sqlplan.Output{
			{Name: "size", Expr: &sqlplan.GroupRef{Index: 0, Type: tText}, Type: tText},
			{Name: "month", Expr: &sqlplan.GroupRef{Index: 1, Type: sqlplan.TimestampType(sqlplan.NoPrecision)}, Type: sqlplan.TimestampType(sqlplan.NoPrecision)},
			{Name: "doubled", Expr: &sqlplan.AggRef{Index: 0, Type: tNumeric}, Type: tNumeric},
			{Name: "greatest", Expr: &sqlplan.Func{Name: "greatest", Args: []sqlplan.Expr{
				&sqlplan.AggRef{Index: 1, Type: tNumeric}, num("0", tNumeric)}, Type: tNumeric}, Type: tNumeric},
			{Name: "avg_id", Expr: &sqlplan.Func{Name: "round", Args: []sqlplan.Expr{&sqlplan.AggRef{Index: 2, Type: tNumeric}, num("2", tInt)}, Type: tNumeric}, Type: tNumeric},
			{Name: "valid", Expr: &sqlplan.AggRef{Index: 3, Type: tBigint}, Type: tBigint},
			{Name: "label", Expr: bin(sqlplan.OpConcat, &sqlplan.GroupRef{Index: 0, Type: tText}, str("-orders"), tText), Type: tText},
		},
	}
}

func TestGolden(t *testing.T) {
	// after_truncate starts the orders source after a truncate.
	afterTruncate := options()
	afterTruncate.StartOffsets = map[string]map[int32]int64{"public.orders": {0: 1234}}
	tests := []struct {
		name string
		plan *sqlplan.Plan
		opts flinksql.Options
	}{
		{"single_table", singleTable(), options()},
		{"join", join(), options()},
		{"having", having(), options()},
		{"count_distinct", countDistinct(), options()},
		{"column_types", columnTypes(), options()},
		{"expressions", expressions(), options()},
		{"join_after_truncate", join(), afterTruncate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stmts, err := flinksql.Translate(tt.plan, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := []byte(flinksql.Script(stmts))
			path := filepath.Join("testdata", tt.name+".golden.sql")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Fatalf("generated SQL differs from %s (run go test -update if the change is intended)\n got:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}

func TestStatementOrder(t *testing.T) {
	opts := options()
	opts.Settings = map[string]string{"parallelism.default": "2", "execution.checkpointing.interval": "10 s"}
	opts.KafkaProperties = map[string]string{"security.protocol": "SASL_SSL"}
	stmts, err := flinksql.Translate(join(), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"SET 'pipeline.name' = 'cdcq-env1-q_0123456789abcdef0123'",
		"SET 'table.exec.source.cdc-events-duplicate' = 'true'",
		"SET 'table.local-time-zone' = 'UTC'",
		"SET 'execution.checkpointing.interval' = '10 s'",
		"SET 'parallelism.default' = '2'",
		"CREATE TEMPORARY TABLE `public.customers`",
		"CREATE TEMPORARY TABLE `public.orders`",
		"CREATE TEMPORARY TABLE `cdcq_result`",
		"INSERT INTO `cdcq_result`",
	}
	if len(stmts) != len(want) {
		t.Fatalf("%d statements, want %d:\n%s", len(stmts), len(want), flinksql.Script(stmts))
	}
	for i, w := range want {
		if !strings.HasPrefix(stmts[i], w) {
			t.Fatalf("statement %d starts %q, want %q", i, firstLine(stmts[i]), w)
		}
	}
	for _, i := range []int{5, 6, 7} {
		if !strings.Contains(stmts[i], "'properties.security.protocol' = 'SASL_SSL'") {
			t.Fatalf("statement %d lacks the Kafka property:\n%s", i, stmts[i])
		}
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func TestResultTopicContract(t *testing.T) {
	stmts, err := flinksql.Translate(join(), options())
	if err != nil {
		t.Fatal(err)
	}
	sink := stmts[len(stmts)-2]
	for _, want := range []string{
		"`key_query_id` STRING NOT NULL,\n  `key_group` ROW<`_group_1` INT, `name` STRING> NOT NULL,\n" +
			"  `query_id` STRING,\n  `_group_1` INT,\n  `name` STRING,\n  `orders` BIGINT,\n  `average` DECIMAL(38, 16),\n",
		"PRIMARY KEY (`key_query_id`, `key_group`) NOT ENFORCED",
		"'key.fields-prefix' = 'key_'",
		"'connector' = 'upsert-kafka'",
		"'topic' = '" + names.ResultTopic(env) + "'",
		"'key.format' = 'json'",
		"'value.format' = 'json'",
		"'value.fields-include' = 'EXCEPT_KEY'",
	} {
		if !strings.Contains(sink, want) {
			t.Fatalf("sink lacks %q:\n%s", want, sink)
		}
	}
	// A query without GROUP BY is keyed by the query id alone.
	stmts, err = flinksql.Translate(countDistinct(), options())
	if err != nil {
		t.Fatal(err)
	}
	if sink := stmts[len(stmts)-2]; !strings.Contains(sink, "PRIMARY KEY (`key_query_id`) NOT ENFORCED") {
		t.Fatalf("global query's sink:\n%s", sink)
	}
}

func TestRefusals(t *testing.T) {
	nullableKey := having()
	nullableKey.GroupBy = []sqlplan.Expr{ref(0, "total", tMoney)}
	nullableKey.Outputs[0] = sqlplan.Output{Name: "total", Expr: &sqlplan.GroupRef{Index: 0, Type: tMoney}, Type: tMoney}

	notNullByFilter := having()
	notNullByFilter.GroupBy = []sqlplan.Expr{ref(0, "total", tMoney)}
	notNullByFilter.Filter = &sqlplan.IsNull{X: ref(0, "total", tMoney), Not: true}

	coalesced := having()
	coalesced.GroupBy = []sqlplan.Expr{&sqlplan.Func{Name: "coalesce", Args: []sqlplan.Expr{ref(0, "total", tMoney), num("0", tMoney)}, Type: tNumeric}}

	reserved := singleTable()
	reserved.Outputs[1].Name = "query_id"

	interval := singleTable()
	interval.Sources[0].Columns = append(interval.Sources[0].Columns, col("duration", tInterval, false, false))
	interval.Aggregates[1] = sqlplan.Aggregate{Func: sqlplan.Max, Arg: ref(0, "duration", tInterval), Type: tInterval}
	interval.Outputs[2].Type = tInterval

	week := singleTable()
	week.GroupBy[0] = &sqlplan.Func{Name: "date_trunc", Args: []sqlplan.Expr{str("week"), ref(0, "created_at", tCreated)}, Type: tCreated}

	tests := []struct {
		name    string
		plan    *sqlplan.Plan
		wantErr string
	}{
		// A NULL group key is a group of its own inside the key's ROW.
		{name: "nullable_group_key", plan: nullableKey},
		{name: "not_null_by_filter", plan: notNullByFilter},
		{name: "coalesced_key", plan: coalesced},
		{name: "reserved_output_name", plan: reserved, wantErr: "named query_id"},
		{name: "interval_column", plan: interval, wantErr: "interval"},
		{name: "date_trunc_week", plan: week, wantErr: "date_trunc('week'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := flinksql.Translate(tt.plan, options())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ue *flinksql.UnsupportedError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want an UnsupportedError containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*flinksql.Options)
		wantErr string
	}{
		{name: "missing", mutate: func(o *flinksql.Options) { o.BootstrapServers, o.QueryID = "", "" }, wantErr: "QueryID, BootstrapServers"},
		{name: "group_id_property", mutate: func(o *flinksql.Options) { o.KafkaProperties = map[string]string{"group.id": "x"} }, wantErr: "group.id"},
		{name: "pipeline_setting", mutate: func(o *flinksql.Options) { o.Settings = map[string]string{"pipeline.name": "x"} }, wantErr: "pipeline.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := options()
			tt.mutate(&o)
			if _, err := flinksql.Translate(singleTable(), o); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestQuoting(t *testing.T) {
	p := singleTable()
	p.Sources[0].Topic = "we`ird.ord'ers"
	p.Outputs[0].Name = "it's `odd`"
	opts := options()
	opts.EnvironmentID = "env-1"
	stmts, err := flinksql.Translate(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	script := flinksql.Script(stmts)
	for _, want := range []string{
		"CREATE TEMPORARY TABLE `we``ird.ord'ers`",
		`'topic-pattern' = 'env\-1\.we\` + "`" + `ird\.ord\''ers'`,
		"AS `it's ``odd```",
	} {
		if !strings.Contains(script, want) {
			t.Fatalf("script lacks %q:\n%s", want, script)
		}
	}
}
