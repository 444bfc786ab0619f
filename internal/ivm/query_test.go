package ivm

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cdcq/cdcq/internal/dbzjson"
)

// TestAggregates runs short change sequences and compares the whole
// result afterwards with what PostgreSQL returns for the same rows.
func TestAggregates(t *testing.T) {
	tests := []struct {
		name  string
		sql   string
		steps []step
		want  []string
	}{
		{
			name: "count_sum_avg_per_group",
			sql:  "SELECT region, count(*), sum(amount), avg(amount), sum(qty) AS sq, avg(qty) AS aq FROM sales GROUP BY region",
			steps: []step{
				ins(0, M{"id": "1", "region": "eu", "amount": "10.50", "qty": "1"}),
				ins(0, M{"id": "2", "region": "eu", "amount": "2.25", "qty": "2"}),
				ins(0, M{"id": "3", "region": "us", "amount": "1.00", "qty": "4"}),
			},
			want: []string{
				"eu | 2 | 12.75 | 6.3750000000000000 | 3 | 1.5000000000000000",
				"us | 1 | 1.00 | 1.00000000000000000000 | 4 | 4.0000000000000000",
			},
		},
		{
			name: "min_deleted_finds_next",
			sql:  "SELECT region, min(amount), max(amount) FROM sales GROUP BY region",
			steps: []step{
				ins(0, M{"id": "1", "region": "eu", "amount": "5.00"}),
				ins(0, M{"id": "2", "region": "eu", "amount": "3.00"}),
				ins(0, M{"id": "3", "region": "eu", "amount": "9.00"}),
				ins(0, M{"id": "4", "region": "eu", "amount": "3.00"}),
				del(0, M{"id": "2"}),
				del(0, M{"id": "3"}),
			},
			want: []string{"eu | 3.00 | 5.00"},
		},
		{
			name: "min_deleted_twice_value_gone",
			sql:  "SELECT min(amount), max(amount) FROM sales",
			steps: []step{
				ins(0, M{"id": "1", "amount": "5.00"}),
				ins(0, M{"id": "2", "amount": "3.00"}),
				ins(0, M{"id": "4", "amount": "3.00"}),
				del(0, M{"id": "2"}),
				del(0, M{"id": "4"}),
			},
			want: []string{"5.00 | 5.00"},
		},
		{
			name: "max_updated_down",
			sql:  "SELECT region, max(qty), min(qty) FROM sales GROUP BY region",
			steps: []step{
				ins(0, M{"id": "1", "region": "eu", "qty": "7"}),
				ins(0, M{"id": "2", "region": "eu", "qty": "3"}),
				upd(0, M{"id": "1", "region": "eu", "qty": "1"}),
			},
			want: []string{"eu | 3 | 1"},
		},
		{
			name: "null_heavy",
			sql:  "SELECT region, count(*), count(qty) AS cq, sum(qty), avg(amount), min(product), max(weight), count(DISTINCT product) AS cd FROM sales GROUP BY region",
			steps: []step{
				ins(0, M{"id": "1"}),
				ins(0, M{"id": "2", "qty": "3"}),
				ins(0, M{"id": "3", "region": "eu"}),
				ins(0, M{"id": "4", "region": "eu", "product": "b"}),
				ins(0, M{"id": "5", "region": "eu", "product": "a", "weight": "2.5"}),
			},
			want: []string{
				"eu | 3 | 0 | NULL | NULL | a | 2.5 | 2",
				"NULL | 2 | 1 | 3 | NULL | NULL | NULL | 0",
			},
		},
		{
			name: "no_group_by_empty",
			sql:  "SELECT count(*), count(qty) AS cq, sum(qty), avg(amount), min(at), max(product) FROM sales",
			steps: []step{
				ins(0, M{"id": "1", "qty": "2"}),
				del(0, M{"id": "1"}),
			},
			want: []string{"0 | 0 | NULL | NULL | NULL | NULL"},
		},
		{
			name: "count_distinct",
			sql:  "SELECT count(DISTINCT region) AS a, count(DISTINCT rate) AS b, count(DISTINCT code) AS c FROM sales",
			steps: []step{
				ins(0, M{"id": "1", "region": "eu", "rate": "1.0", "code": "ab"}),
				ins(0, M{"id": "2", "region": "eu", "rate": "1.00", "code": "ab  "}),
				ins(0, M{"id": "3", "region": "us", "rate": "2"}),
				ins(0, M{"id": "4", "region": "us"}),
				del(0, M{"id": "3"}),
			},
			want: []string{"2 | 1 | 1"},
		},
		{
			name: "numeric_sum_scale_follows_deletes",
			sql:  "SELECT sum(rate), avg(rate) FROM sales",
			steps: []step{
				ins(0, M{"id": "1", "rate": "1.5"}),
				ins(0, M{"id": "2", "rate": "2.125"}),
				ins(0, M{"id": "3", "rate": "3"}),
				del(0, M{"id": "2"}),
			},
			want: []string{"4.5 | 2.2500000000000000"},
		},
		{
			name: "sum_of_bigint_is_numeric_and_exact",
			sql:  "SELECT sum(big), avg(big), sum(small) AS s FROM sales",
			steps: []step{
				ins(0, M{"id": "1", "big": "9223372036854775807", "small": "32767"}),
				ins(0, M{"id": "2", "big": "9223372036854775807", "small": "32767"}),
				ins(0, M{"id": "3", "big": "1", "small": "1"}),
			},
			want: []string{"18446744073709551615 | 6148914691236517205 | 65535"},
		},
		{
			name: "float_sum_survives_huge_value_deleted",
			sql:  "SELECT sum(weight), avg(weight) FROM sales",
			steps: []step{
				ins(0, M{"id": "1", "weight": "1e300"}),
				ins(0, M{"id": "2", "weight": "0.1"}),
				ins(0, M{"id": "3", "weight": "0.2"}),
				del(0, M{"id": "1"}),
			},
			want: []string{"0.30000000000000004 | 0.15000000000000002"},
		},
		{
			name: "float_nan_and_infinity",
			sql:  "SELECT region, sum(weight), max(weight), min(weight) FROM sales GROUP BY region",
			steps: []step{
				ins(0, M{"id": "1", "region": "a", "weight": "Infinity"}),
				ins(0, M{"id": "2", "region": "a", "weight": "-Infinity"}),
				ins(0, M{"id": "3", "region": "b", "weight": "NaN"}),
				ins(0, M{"id": "4", "region": "b", "weight": "1"}),
				ins(0, M{"id": "5", "region": "c", "weight": "Infinity"}),
				ins(0, M{"id": "6", "region": "c", "weight": "2"}),
			},
			want: []string{
				"a | NaN | Infinity | -Infinity",
				"b | NaN | NaN | 1",
				"c | Infinity | Infinity | 2",
			},
		},
		{
			name: "real_sum_is_real",
			sql:  "SELECT sum(light), avg(light) FROM sales",
			steps: []step{
				ins(0, M{"id": "1", "light": "1.1"}),
				ins(0, M{"id": "2", "light": "2.2"}),
			},
			want: []string{"3.3000002 | 1.6500000357627869"},
		},
		{
			name: "having_filters_groups",
			sql:  "SELECT region, count(*) FROM sales GROUP BY region HAVING count(*) > 1",
			steps: []step{
				ins(0, M{"id": "1", "region": "eu"}),
				ins(0, M{"id": "2", "region": "eu"}),
				ins(0, M{"id": "3", "region": "us"}),
			},
			want: []string{"eu | 2"},
		},
		{
			name: "where_three_valued",
			sql:  "SELECT count(*) FROM sales WHERE NOT (qty > 1) OR region IN ('eu', NULL)",
			steps: []step{
				ins(0, M{"id": "1", "qty": "0"}),                  // true
				ins(0, M{"id": "2", "qty": "5", "region": "eu"}),  // true
				ins(0, M{"id": "3", "qty": "5", "region": "us"}),  // false OR NULL
				ins(0, M{"id": "4", "region": "us"}),              // NULL OR NULL
				ins(0, M{"id": "5", "qty": "5"}),                  // false OR NULL
				ins(0, M{"id": "6", "qty": "-1", "region": "us"}), // true
			},
			want: []string{"3"},
		},
		{
			name: "between_and_not_between_three_valued",
			sql: `SELECT sum(CASE WHEN qty BETWEEN 1 AND 5 THEN 1 ELSE 0 END) AS inside,
				sum(CASE WHEN qty NOT BETWEEN 1 AND 5 THEN 1 ELSE 0 END) AS outside,
				count(*) FROM sales`,
			steps: []step{
				ins(0, M{"id": "1", "qty": "3"}),
				ins(0, M{"id": "2", "qty": "9"}),
				ins(0, M{"id": "3", "qty": "-1"}),
				ins(0, M{"id": "4"}),
			},
			want: []string{"1 | 2 | 4"},
		},
		{
			name: "case_and_integer_division",
			sql: `SELECT CASE WHEN qty > 10 THEN 'big' WHEN qty IS NULL THEN NULL ELSE 'small' END AS size,
				sum(qty / 2) AS a, sum(qty % 3) AS b, sum(amount * qty) AS c, sum(-qty) AS d FROM sales GROUP BY 1`,
			steps: []step{
				ins(0, M{"id": "1", "qty": "7", "amount": "1.25"}),
				ins(0, M{"id": "2", "qty": "-7", "amount": "1.25"}),
				ins(0, M{"id": "3", "qty": "15", "amount": "0.10"}),
				ins(0, M{"id": "4"}),
			},
			want: []string{"big | 7 | 0 | 1.50 | -15", "small | 0 | 0 | 0.00 | 0", "NULL | NULL | NULL | NULL | NULL"},
		},
		{
			name: "like_lower_substring_concat",
			sql: `SELECT lower(substring(product from 1 for 2)) AS p, count(*), max(product || '!')
				FROM sales WHERE product LIKE 'A%' OR product ILIKE '%_x' GROUP BY 1`,
			steps: []step{
				ins(0, M{"id": "1", "product": "Apple"}),
				ins(0, M{"id": "2", "product": "APEX"}),
				ins(0, M{"id": "3", "product": "box"}),
				ins(0, M{"id": "4", "product": "x"}),
				ins(0, M{"id": "5", "product": "a%"}),
			},
			want: []string{"ap | 2 | Apple!", "bo | 1 | box!"},
		},
		{
			name: "char_ignores_trailing_blanks",
			sql:  "SELECT code, count(*), max(length(code)) FROM sales GROUP BY code",
			steps: []step{
				ins(0, M{"id": "1", "code": "ab"}),
				ins(0, M{"id": "2", "code": "ab "}),
				ins(0, M{"id": "3", "code": "b"}),
			},
			want: []string{"ab   | 2 | 2", "b    | 1 | 1"},
		},
		{
			name: "dates_and_timestamps",
			sql: `SELECT date_trunc('month', at) AS m, extract(year FROM at) AS y, count(*), min(day), max(at), min(day + 1) AS next
				FROM sales GROUP BY 1, 2`,
			steps: []step{
				ins(0, M{"id": "1", "at": "2024-03-15 10:00:00.5", "day": "2024-03-15"}),
				ins(0, M{"id": "2", "at": "2024-03-01 00:00:00", "day": "2024-02-29"}),
				ins(0, M{"id": "3", "at": "2023-12-31 23:59:59.999999"}),
			},
			want: []string{
				"2023-12-01 00:00:00 | 2023 | 1 | NULL | 2023-12-31 23:59:59.999999 | NULL",
				"2024-03-01 00:00:00 | 2024 | 2 | 2024-02-29 | 2024-03-15 10:00:00.5 | 2024-03-01",
			},
		},
		{
			name: "boolean_group_and_count",
			sql:  "SELECT flag, count(*), sum(CASE WHEN flag THEN 1 ELSE 0 END) FROM sales GROUP BY flag",
			steps: []step{
				ins(0, M{"id": "1", "flag": "t"}),
				ins(0, M{"id": "2", "flag": "f"}),
				ins(0, M{"id": "3"}),
				ins(0, M{"id": "4", "flag": "true"}),
			},
			want: []string{"f | 1 | 0", "t | 2 | 2", "NULL | 1 | 0"},
		},
		{
			name: "truncate_clears_source",
			sql:  "SELECT region, count(*) FROM sales GROUP BY region",
			steps: []step{
				ins(0, M{"id": "1", "region": "eu"}),
				ins(0, M{"id": "2", "region": "us"}),
				trunc(0),
				ins(0, M{"id": "3", "region": "us"}),
			},
			want: []string{"us | 1"},
		},
		{
			name: "json_column_counted",
			sql:  "SELECT count(doc) AS docs, count(*) FROM sales WHERE doc IS NOT NULL OR id > 1",
			steps: []step{
				ins(0, M{"id": "1", "doc": `{"a": 1}`}),
				ins(0, M{"id": "2"}),
				ins(0, M{"id": "3", "doc": `[]`}),
			},
			want: []string{"2 | 3"},
		},
		{
			name: "two_table_join",
			sql: `SELECT sh.region, count(*), sum(s.amount) FROM sales s JOIN shops sh ON sh.id = s.shop_id
				GROUP BY sh.region`,
			steps: []step{
				ins(0, M{"id": "1", "shop_id": "10", "amount": "1.00"}),
				ins(0, M{"id": "2", "shop_id": "10", "amount": "2.00"}),
				ins(0, M{"id": "3", "shop_id": "20", "amount": "4.00"}),
				ins(0, M{"id": "4", "amount": "8.00"}),
				ins(1, M{"id": "10", "region": "eu"}),
				ins(1, M{"id": "20", "region": "us"}),
				ins(1, M{"id": "30", "region": "us"}),
				upd(1, M{"id": "10", "region": "us"}),
				upd(0, M{"id": "3", "shop_id": "30", "amount": "4.00"}),
				del(1, M{"id": "20"}),
			},
			want: []string{"us | 3 | 7.00"},
		},
		{
			name: "three_table_join",
			sql: `SELECT r.name, count(*), sum(l.qty * l.price), count(DISTINCT s.id) AS sales
				FROM regions r JOIN shops sh ON sh.region = r.code JOIN sales s ON s.shop_id = sh.id
				JOIN lines l ON l.sale_id = s.id GROUP BY r.name`,
			steps: []step{
				ins(0, M{"code": "eu", "name": "Europe"}),
				ins(1, M{"id": "1", "region": "eu"}),
				ins(1, M{"id": "2", "region": "eu"}),
				ins(2, M{"id": "100", "shop_id": "1"}),
				ins(2, M{"id": "101", "shop_id": "2"}),
				ins(3, M{"sale_id": "100", "no": "1", "qty": "2", "price": "1.50"}),
				ins(3, M{"sale_id": "100", "no": "2", "qty": "1", "price": "10.00"}),
				ins(3, M{"sale_id": "101", "no": "1", "qty": "3", "price": "1.00"}),
				ins(0, M{"code": "us", "name": "America"}),
				upd(1, M{"id": "2", "region": "us"}),
				del(3, M{"sale_id": "100", "no": "2"}),
			},
			want: []string{"America | 1 | 3.00 | 1", "Europe | 1 | 3.00 | 1"},
		},
		{
			name: "null_never_joins",
			sql:  "SELECT count(*) FROM sales s JOIN regions r ON r.code = s.region",
			steps: []step{
				ins(1, M{"code": "eu", "name": "Europe"}),
				ins(0, M{"id": "1"}),
				ins(0, M{"id": "2", "region": "eu"}),
				ins(0, M{"id": "3", "region": "us"}),
			},
			want: []string{"1"},
		},
		{
			name: "join_with_cross_source_filter",
			sql: `SELECT count(*), sum(s.qty) FROM sales s JOIN shops sh ON sh.id = s.shop_id
				WHERE s.region = sh.region OR sh.city IS NULL`,
			steps: []step{
				ins(1, M{"id": "1", "region": "eu", "city": "Paris"}),
				ins(1, M{"id": "2", "region": "us"}),
				ins(0, M{"id": "1", "shop_id": "1", "region": "eu", "qty": "1"}),
				ins(0, M{"id": "2", "shop_id": "1", "region": "us", "qty": "2"}),
				ins(0, M{"id": "3", "shop_id": "2", "region": "eu", "qty": "4"}),
				upd(1, M{"id": "1", "region": "us", "city": "Paris"}),
			},
			want: []string{"2 | 6"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQuery(t, tt.sql)
			run(t, q, tt.steps...)
			got := rowsText(q)
			if !slices.Equal(got, tt.want) {
				t.Errorf("result\n got: %q\nwant: %q", got, tt.want)
			}
			assertConsistent(t, q)
		})
	}
}

// assertConsistent replays the query's stored rows into a fresh query and
// checks that it gives the same result: incremental maintenance must end
// where computing from the current data ends.
func assertConsistent(t *testing.T, q *Query) {
	t.Helper()
	fresh, err := New(q.plan)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range q.sources {
		for _, r := range s.rows {
			if _, err := fresh.Apply(i, Change{Op: OpInsert, After: slices.Clone(r.vals)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := fresh.Flush(); err != nil {
		t.Fatal(err)
	}
	got, want := rowsText(q), rowsText(fresh)
	if !slices.Equal(got, want) {
		t.Errorf("incremental result differs from the result of the same rows inserted afresh\nincremental: %q\n     afresh: %q", got, want)
	}
	if q.Groups() != fresh.Groups() {
		t.Errorf("incremental state keeps %d groups, afresh %d", q.Groups(), fresh.Groups())
	}
}

// TestResultChanges checks the changes reported, not just the end state.
func TestResultChanges(t *testing.T) {
	tests := []struct {
		name  string
		sql   string
		setup []step
		steps []step
		want  []string
	}{
		{
			name:  "group_disappears_tombstone",
			sql:   "SELECT region, count(*) FROM sales GROUP BY region",
			setup: []step{ins(0, M{"id": "1", "region": "eu"}), ins(0, M{"id": "2", "region": "us"})},
			steps: []step{del(0, M{"id": "1"})},
			want:  []string{"- eu"},
		},
		{
			name:  "group_moves",
			sql:   "SELECT region, count(*) FROM sales GROUP BY region",
			setup: []step{ins(0, M{"id": "1", "region": "eu"})},
			steps: []step{upd(0, M{"id": "1", "region": "us"})},
			want:  []string{"- eu", "+ us | 1"},
		},
		{
			name: "having_flips_out_and_back",
			sql:  "SELECT region, sum(qty) FROM sales GROUP BY region HAVING sum(qty) >= 10",
			setup: []step{
				ins(0, M{"id": "1", "region": "eu", "qty": "6"}),
				ins(0, M{"id": "2", "region": "eu", "qty": "6"}),
			},
			steps: []step{
				upd(0, M{"id": "2", "region": "eu", "qty": "1"}),
				upd(0, M{"id": "1", "region": "eu", "qty": "8"}),
				upd(0, M{"id": "1", "region": "eu", "qty": "9"}),
				upd(0, M{"id": "1", "region": "eu", "qty": "3"}),
				upd(0, M{"id": "1", "region": "eu", "qty": "2"}),
			},
			want: []string{"- eu", "+ eu | 10", "- eu"},
		},
		{
			name: "no_group_by_row_never_deleted",
			sql:  "SELECT count(*), sum(qty) FROM sales",
			setup: []step{
				ins(0, M{"id": "1", "qty": "6"}),
			},
			steps: []step{del(0, M{"id": "1"})},
			want:  []string{"+ 0 | NULL"},
		},
		{
			name: "no_group_by_having",
			sql:  "SELECT count(*) FROM sales HAVING count(*) > 1",
			steps: []step{
				ins(0, M{"id": "1"}),
				ins(0, M{"id": "2"}),
				del(0, M{"id": "1"}),
			},
			want: []string{"+ 2", "- "},
		},
		{
			name:  "duplicate_insert_is_idempotent",
			sql:   "SELECT region, count(*), sum(qty) FROM sales GROUP BY region",
			setup: []step{ins(0, M{"id": "1", "region": "eu", "qty": "2"})},
			steps: []step{
				ins(0, M{"id": "1", "region": "eu", "qty": "2"}),
				ins(0, M{"id": "1", "region": "eu", "qty": "2"}),
			},
			want: nil,
		},
		{
			name:  "replayed_insert_replaces_row",
			sql:   "SELECT region, count(*), sum(qty) FROM sales GROUP BY region",
			setup: []step{ins(0, M{"id": "1", "region": "eu", "qty": "2"})},
			steps: []step{ins(0, M{"id": "1", "region": "eu", "qty": "5"})},
			want:  []string{"+ eu | 1 | 5"},
		},
		{
			name:  "delete_of_unknown_key_is_noop",
			sql:   "SELECT count(*) FROM sales",
			setup: []step{ins(0, M{"id": "1"})},
			steps: []step{del(0, M{"id": "2"}), del(0, M{"id": "1"}), del(0, M{"id": "1"})},
			want:  []string{"+ 0"},
		},
		{
			name:  "update_without_before_image_retracts_stored_row",
			sql:   "SELECT region, sum(qty) FROM sales GROUP BY region",
			setup: []step{ins(0, M{"id": "1", "region": "eu", "qty": "2"}), ins(0, M{"id": "2", "region": "eu", "qty": "3"})},
			steps: []step{upd(0, M{"id": "1", "region": "us", "qty": "7"})},
			want:  []string{"+ eu | 3", "+ us | 7"},
		},
		{
			name:  "update_of_primary_key",
			sql:   "SELECT count(*), sum(qty) FROM sales",
			setup: []step{ins(0, M{"id": "1", "qty": "2"})},
			steps: []step{{op: OpUpdate, src: 0, vals: M{"id": "5", "qty": "3"}, before: M{"id": "1"}}},
			want:  []string{"+ 1 | 3"},
		},
		{
			name:  "unrelated_update_reports_nothing",
			sql:   "SELECT region, count(*) FROM sales GROUP BY region",
			setup: []step{ins(0, M{"id": "1", "region": "eu"}), ins(0, M{"id": "2", "region": "eu"})},
			steps: []step{upd(0, M{"id": "1", "region": "eu"})},
			want:  nil,
		},
		{
			name:  "rows_failing_where_do_not_count",
			sql:   "SELECT count(*) FROM sales WHERE qty > 0",
			setup: []step{ins(0, M{"id": "1", "qty": "2"})},
			steps: []step{upd(0, M{"id": "1", "qty": "0"}), upd(0, M{"id": "1", "qty": "-1"}), upd(0, M{"id": "1", "qty": "1"})},
			want:  []string{"+ 0", "+ 1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQuery(t, tt.sql)
			if _, err := q.Flush(); err != nil {
				t.Fatal(err)
			}
			run(t, q, tt.setup...)
			got := changesText(run(t, q, tt.steps...))
			if !slices.Equal(got, tt.want) {
				t.Errorf("changes\n got: %q\nwant: %q", got, tt.want)
			}
			assertConsistent(t, q)
		})
	}
}

func TestInitialRowWithoutGroupBy(t *testing.T) {
	q := newQuery(t, "SELECT count(*), sum(amount), max(product) FROM sales")
	out, err := q.Flush()
	if err != nil {
		t.Fatal(err)
	}
	if got := changesText(out); !slices.Equal(got, []string{"+ 0 | NULL | NULL"}) {
		t.Errorf("initial changes: %q", got)
	}
	if out, _ := q.Flush(); len(out) != 0 {
		t.Errorf("second flush reported %q", changesText(out))
	}
	grouped := newQuery(t, "SELECT region, count(*) FROM sales GROUP BY region")
	if out, _ := grouped.Flush(); len(out) != 0 {
		t.Errorf("a grouped query reported %q before any change", changesText(out))
	}
}

func TestApplyBatchCoalesces(t *testing.T) {
	q := newQuery(t, "SELECT region, count(*), sum(qty) FROM sales GROUP BY region")
	run(t, q, ins(0, M{"id": "1", "region": "eu", "qty": "1"}), ins(0, M{"id": "9", "region": "gone", "qty": "1"}))
	steps := []step{
		ins(0, M{"id": "2", "region": "eu", "qty": "2"}),
		ins(0, M{"id": "3", "region": "us", "qty": "3"}),
		del(0, M{"id": "3"}),                                // us appears and goes within the batch
		upd(0, M{"id": "2", "region": "eu", "qty": "4"}),    // eu changes twice
		del(0, M{"id": "9"}),                                // gone disappears
		ins(0, M{"id": "4", "region": "new", "qty": "1"}),   // new appears
		upd(0, M{"id": "4", "region": "new", "qty": "5"}),   // and changes
		ins(0, M{"id": "5", "region": "same", "qty": "1"}),  // same appears
		del(0, M{"id": "5"}),                                // and goes
		ins(0, M{"id": "10", "region": "flip", "qty": "1"}), // ends as it started? no: it is new
	}
	batch := make([]SourceChange, len(steps))
	for i, s := range steps {
		batch[i] = SourceChange{Source: s.src, Change: s.change(t, q)}
	}
	out, err := q.ApplyBatch(batch)
	if err != nil {
		t.Fatal(err)
	}
	got := changesText(out)
	slices.Sort(got)
	want := []string{"+ eu | 2 | 5", "+ flip | 1 | 1", "+ new | 1 | 5", "- gone"}
	if !slices.Equal(got, want) {
		t.Errorf("batch changes\n got: %q\nwant: %q", got, want)
	}
}

func TestBatchOfBothJoinSides(t *testing.T) {
	// Changes of both sides of a join in one batch: each is joined with
	// the other side as it is at that point, so nothing counts twice.
	q := newQuery(t, "SELECT count(*), sum(s.qty) FROM sales s JOIN shops sh ON sh.id = s.shop_id")
	steps := []step{
		ins(0, M{"id": "1", "shop_id": "1", "qty": "1"}),
		ins(1, M{"id": "1", "region": "eu"}),
		ins(0, M{"id": "2", "shop_id": "1", "qty": "2"}),
		ins(1, M{"id": "2", "region": "eu"}),
		upd(0, M{"id": "2", "shop_id": "2", "qty": "2"}),
		del(1, M{"id": "1"}),
		ins(1, M{"id": "1", "region": "us"}),
	}
	batch := make([]SourceChange, len(steps))
	for i, s := range steps {
		batch[i] = SourceChange{Source: s.src, Change: s.change(t, q)}
	}
	out, err := q.ApplyBatch(batch)
	if err != nil {
		t.Fatal(err)
	}
	if got := changesText(out); !slices.Equal(got, []string{"+ 2 | 3"}) {
		t.Errorf("changes: %q", got)
	}
	assertConsistent(t, q)
}

func TestFailedChangeChangesNothing(t *testing.T) {
	q := newQuery(t, "SELECT region, sum(100 / qty) FROM sales GROUP BY region")
	run(t, q, ins(0, M{"id": "1", "region": "eu", "qty": "4"}))
	ch := Change{Op: OpUpdate, After: mkRow(t, q, 0, M{"id": "1", "region": "us", "qty": "0"})}
	_, err := q.Apply(0, ch)
	var ce *ChangeError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "division by zero") {
		t.Fatalf("error = %v, want a *ChangeError for division by zero", err)
	}
	if got := rowsText(q); !slices.Equal(got, []string{"eu | 25"}) {
		t.Errorf("after the failed change: %q", got)
	}
	run(t, q, upd(0, M{"id": "1", "region": "us", "qty": "5"}))
	if got := rowsText(q); !slices.Equal(got, []string{"us | 20"}) {
		t.Errorf("after the next change: %q", got)
	}
	assertConsistent(t, q)
}

func TestOutputErrorKeepsLastRow(t *testing.T) {
	q := newQuery(t, "SELECT region, count(*) / count(qty) AS r FROM sales GROUP BY region")
	run(t, q, ins(0, M{"id": "1", "region": "eu", "qty": "4"}))
	_, err := q.Apply(0, Change{Op: OpInsert, After: mkRow(t, q, 0, M{"id": "1", "region": "eu"})})
	if err == nil || !strings.Contains(err.Error(), "division by zero") {
		t.Fatalf("error = %v, want division by zero", err)
	}
	if got := rowsText(q); !slices.Equal(got, []string{"eu | 1"}) {
		t.Errorf("result: %q", got)
	}
	out := run(t, q, ins(0, M{"id": "2", "region": "eu", "qty": "6"}))
	if got := changesText(out); !slices.Equal(got, []string{"+ eu | 2"}) {
		t.Errorf("changes: %q", got)
	}
}

func TestUnavailableToastValueKeepsStored(t *testing.T) {
	q := newQuery(t, "SELECT product, count(*) FROM sales GROUP BY product")
	run(t, q, ins(0, M{"id": "1", "product": "long text"}))
	after := mkRow(t, q, 0, M{"id": "1"})
	after[slices.IndexFunc(q.plan.Sources[0].Columns, func(c sourceColumn) bool { return c.Name == "product" })] = Value{k: kindUnavailable}
	out, err := q.Apply(0, Change{Op: OpUpdate, After: after})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 0 {
		t.Errorf("changes: %q", changesText(out))
	}
	if got := rowsText(q); !slices.Equal(got, []string{"long text | 1"}) {
		t.Errorf("result: %q", got)
	}
}

// An update keeping an unchanged TOAST value of a row never seen fails,
// unless SkipUnseenUnavailable is on (a new snapshot is awaited): then it
// is skipped, counted, and changes nothing; a seen row's such update still
// applies, and turning it off fails again.
func TestUnavailableToastValueOfUnseenRow(t *testing.T) {
	q := newQuery(t, "SELECT product, count(*) FROM sales GROUP BY product")
	unseen := func(id string) Change {
		after := mkRow(t, q, 0, M{"id": id})
		after[slices.IndexFunc(q.plan.Sources[0].Columns, func(c sourceColumn) bool { return c.Name == "product" })] = Value{k: kindUnavailable}
		return Change{Op: OpUpdate, After: after}
	}
	if _, err := q.Apply(0, unseen("7")); err == nil || !strings.Contains(err.Error(), "never seen") {
		t.Fatalf("error = %v, want one saying the row was never seen", err)
	}
	q.SkipUnseenUnavailable(true)
	run(t, q, ins(0, M{"id": "1", "product": "long text"}))
	out, err := q.Apply(0, unseen("7"))
	if err != nil {
		t.Fatalf("skipping: %v", err)
	}
	if len(out) != 0 {
		t.Errorf("changes of a skipped update: %q", changesText(out))
	}
	if _, err := q.Apply(0, unseen("1")); err != nil {
		t.Fatal(err)
	}
	if got := rowsText(q); !slices.Equal(got, []string{"long text | 1"}) {
		t.Errorf("result: %q", got)
	}
	if n := q.SkipUnseenUnavailable(false); n != 1 {
		t.Errorf("skipped %d updates, want 1", n)
	}
	if _, err := q.Apply(0, unseen("8")); err == nil {
		t.Error("no error once skipping is off")
	}
}

func TestNewRefusesWhatItCannotMaintain(t *testing.T) {
	tests := []struct {
		name, sql, want string
	}{
		{"group_by_json", "SELECT doc::text, count(*) FROM sales GROUP BY doc", "group by"},
		{"min_of_json", "SELECT count(*) FROM sales WHERE doc::jsonb = doc::jsonb", "cannot"},
		{"output_named_query_id", "SELECT count(*) AS query_id FROM sales", "query_id"},
		{"time_zone_abbreviation", "SELECT count(*) FROM sales WHERE (at AT TIME ZONE 'PST') IS NOT NULL", "time zone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := compileForRefusal(t, tt.sql)
			if err != nil {
				t.Skipf("sqlplan refuses it already: %v", err)
			}
			_, err = New(p)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), tt.want) {
				t.Errorf("New error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestSelfJoinThroughTopicRecords(t *testing.T) {
	q := newQuery(t, `SELECT a.region, count(*) AS pairs, sum(b.qty) AS qty
		FROM sales a JOIN sales b ON b.shop_id = a.shop_id GROUP BY a.region`)
	if got := q.SourcesReading("public.sales"); !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("SourcesReading = %v", got)
	}
	record := func(op dbzjson.Op, id, region, shop, qty string) ([]byte, []byte) {
		row := []dbzjson.Value{ptr(id), ptr(region), nil, ptr(shop), ptr(qty), nil, nil, nil}
		var before, after []dbzjson.Value
		if op == dbzjson.OpDelete {
			before = []dbzjson.Value{ptr(id), nil, nil, nil, nil, nil, nil, nil}
		} else {
			after = row
		}
		key, err := dbzjson.Key(benchSales, row)
		if err != nil {
			t.Fatal(err)
		}
		value, err := dbzjson.Envelope(benchSales, op, before, after, dbzjson.Source{Name: "env"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		return key, value
	}
	apply := func(op dbzjson.Op, id, region, shop, qty string) {
		t.Helper()
		key, value := record(op, id, region, shop, qty)
		if _, err := q.ApplyTopicRecord("public.sales", key, value); err != nil {
			t.Fatal(err)
		}
	}
	apply(dbzjson.OpCreate, "1", "eu", "7", "1")
	apply(dbzjson.OpCreate, "2", "us", "7", "10")
	apply(dbzjson.OpCreate, "3", "eu", "8", "100")
	apply(dbzjson.OpUpdate, "2", "eu", "7", "20")
	apply(dbzjson.OpCreate, "4", "us", "8", "1000")
	apply(dbzjson.OpDelete, "3", "", "", "")
	// Pairs with equal shop: shop 7 {1 eu, 2 eu}: 4 pairs, qty 2*(1+20);
	// shop 8 {4 us}: 1 pair, qty 1000.
	if got := rowsText(q); !slices.Equal(got, []string{"eu | 4 | 42", "us | 1 | 1000"}) {
		t.Errorf("result: %q", got)
	}
	if out, err := q.ApplyTopicRecord("public.shops", nil, []byte(`{"op":"t"}`)); err != nil || len(out) != 0 {
		t.Errorf("a record of another table gave %q, %v", changesText(out), err)
	}
	assertConsistent(t, q)
}

func TestStateFollowsData(t *testing.T) {
	q := newQuery(t, `SELECT s.region, count(*), count(DISTINCT s.qty) AS qtys, max(s.product) AS p
		FROM sales s JOIN shops sh ON sh.id = s.shop_id GROUP BY s.region`)
	for i := 0; i < 50; i++ {
		run(t, q, ins(1, M{"id": strconv.Itoa(i), "region": "r"}))
	}
	const n = 4000
	for i := 0; i < n; i++ {
		id := strconv.Itoa(i)
		run(t, q, ins(0, M{"id": id, "region": strconv.Itoa(i % 500), "shop_id": strconv.Itoa(i % 50), "qty": id, "product": id}))
	}
	for i := 0; i < n; i++ {
		run(t, q, del(0, M{"id": strconv.Itoa(i)}))
	}
	if q.Groups() != 0 || q.Len(0) != 0 {
		t.Fatalf("after deleting every row: %d groups, %d rows", q.Groups(), q.Len(0))
	}
	// The maps were rebuilt small (Go maps keep their memory otherwise).
	s := q.sources[0]
	if s.rowsPeak > 64 || q.groupsPeak > 64 {
		t.Errorf("peaks after deleting everything: rows %d, groups %d", s.rowsPeak, q.groupsPeak)
	}
	for _, ix := range q.sources[1].indexes {
		if len(ix.buckets) != 50 {
			t.Errorf("shops index has %d buckets, want 50", len(ix.buckets))
		}
	}
}
