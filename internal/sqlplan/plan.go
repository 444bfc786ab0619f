package sqlplan

import (
	"regexp"
	"strconv"

	"github.com/cdcq/cdcq/internal/prismaschema"
)

// Plan is the logical plan of one cached query. Both the Flink translator
// and the embedded incremental engine consume it; it holds everything they
// need, so neither has to look at the SQL text again.
//
// Evaluation order, as in PostgreSQL:
//
//  1. Read every Source (a change stream keyed by its primary key).
//  2. Inner-join them on every Join equality. The sources always form one
//     connected graph through Joins (Compile rejects cross joins), so an
//     engine may join them in any order it likes.
//  3. Keep the joined rows where Filter is true (not false, not NULL).
//  4. Group the rows by the values of GroupBy. Without GroupBy there is
//     exactly one group, which exists even when no row is left: count is
//     0 and the other aggregates are NULL in it, as in PostgreSQL.
//  5. Compute Aggregates per group.
//  6. Keep the groups where Having is true.
//  7. Compute Outputs per group.
//
// Expressions in Joins, Filter, GroupBy and the arguments of Aggregates are
// row expressions: they use ColumnRef and never AggRef or GroupRef.
// Expressions in Having, Outputs and OrderBy are group expressions: they use
// GroupRef, AggRef and constants, and never ColumnRef.
type Plan struct {
	// SQL is the query as given to Compile.
	SQL string
	// Normalized is Normalize(SQL): the text the query id is derived from.
	Normalized string
	// Sources are the table references of the FROM clause, in the order
	// they are written. ColumnRef.Source indexes this slice.
	Sources []Source
	// Joins are the inner-join equalities, from JOIN ... ON, JOIN ...
	// USING and equalities in WHERE between columns of two sources.
	Joins []Join
	// Filter is the conjunction of every other condition of WHERE and of
	// JOIN ... ON, in the order written; nil when there is none. It may
	// compare columns of several sources: apply it after the joins (or push
	// down the conjuncts that use one source; see Conjuncts and Sources).
	Filter Expr
	// GroupBy are the grouping keys. The result rows of a grouped query are
	// identified by their key values. Keys that only a primary key makes
	// legal (PostgreSQL's functional dependency: GROUP BY c.id allows
	// SELECT c.name) are appended after the keys of the GROUP BY clause.
	GroupBy []Expr
	// Aggregates are the distinct aggregate calls of the query; AggRef.Index
	// indexes this slice. Identical calls are computed once.
	Aggregates []Aggregate
	// Having is the HAVING condition, nil when there is none.
	Having Expr
	// Outputs are the result columns, in SELECT order. Their names are
	// unique.
	Outputs []Output
	// OrderBy is the ORDER BY clause. It does not change which rows the
	// result holds, so the engines ignore it; readers of the result may
	// sort by it.
	OrderBy []SortKey
}

// QueryIDColumn is the first key column of result records: the cached
// query's id.
const QueryIDColumn = "query_id"

// GroupKeyNames names the grouping keys in the key of result records, which
// both engines build the same way, after QueryIDColumn: a key is named like
// the first output that is exactly that key; otherwise "_group_<n>" (n
// counting from 1), with more leading underscores while an output or
// another key has the name.
func (p *Plan) GroupKeyNames() []string {
	taken := map[string]bool{QueryIDColumn: true}
	for _, o := range p.Outputs {
		taken[o.Name] = true
	}
	used := map[int]bool{}
	names := make([]string, len(p.GroupBy))
	for i := range p.GroupBy {
		for j, o := range p.Outputs {
			if g, ok := o.Expr.(*GroupRef); ok && g.Index == i && !used[j] {
				used[j] = true
				names[i] = o.Name
				break
			}
		}
		if names[i] != "" {
			continue
		}
		name := "_group_" + strconv.Itoa(i+1)
		for taken[name] {
			name = "_" + name
		}
		taken[name] = true
		names[i] = name
	}
	return names
}

// Source is a table the query reads.
type Source struct {
	// Alias is the name the query gives the table: its alias, or the
	// table's database name when it has none. Aliases are unique within a
	// plan.
	Alias string
	// Table is the Prisma model (or implicit many-to-many join table) the
	// source reads.
	Table *prismaschema.Table
	// Schema is the table's database schema; "public" when the Prisma schema
	// names none.
	Schema string
	// Name is the table's database name.
	Name string
	// Topic is the Debezium topic suffix "<schema>.<table>"; the topic is
	// "<environmentId>.<Topic>".
	Topic string
	// Columns are the columns the query uses, and always the primary key
	// columns, in the order the table declares them.
	Columns []SourceColumn
	// PrimaryKey lists the database names of the primary key columns, in
	// key order. It is never empty: Compile rejects tables without one.
	PrimaryKey []string
}

// Column returns the used column with the given database name, or nil.
func (s *Source) Column(name string) *SourceColumn {
	for i := range s.Columns {
		if s.Columns[i].Name == name {
			return &s.Columns[i]
		}
	}
	return nil
}

// SourceColumn is a column a source provides.
type SourceColumn struct {
	Name     string // database name
	Type     Type
	Nullable bool // Prisma optional (?) field
	Key      bool // part of the primary key
}

// Join is one inner-join equality between columns of two sources:
// Left.Source < Right.Source. The two columns have comparable types of one
// family (both integers of possibly different widths, both strings, the
// same enum, ...); compare them by value. NULL never equals anything.
type Join struct {
	Left, Right *ColumnRef
}

// AggFunc is an aggregate function.
type AggFunc uint8

// The aggregate functions cdcq maintains.
const (
	CountStar     AggFunc = iota + 1 // count(*): rows in the group
	Count                            // count(x): rows where x is not NULL
	CountDistinct                    // count(DISTINCT x): distinct non-NULL values of x
	Sum                              // sum(x): NULL when no x is non-NULL
	Avg                              // avg(x): NULL when no x is non-NULL
	Min                              // min(x)
	Max                              // max(x)
)

// String returns the SQL name: count, sum, avg, min, max (count(*) and
// count(DISTINCT) also read "count").
func (f AggFunc) String() string {
	switch f {
	case CountStar, Count, CountDistinct:
		return "count"
	case Sum:
		return "sum"
	case Avg:
		return "avg"
	case Min:
		return "min"
	case Max:
		return "max"
	}
	return "aggfunc?"
}

// Aggregate is one aggregate call.
type Aggregate struct {
	Func AggFunc
	// Arg is the row expression aggregated; nil for CountStar.
	Arg Expr
	// Type is the result type, exactly as PostgreSQL gives it: count is
	// bigint; sum of smallint or integer is bigint, of bigint or numeric is
	// numeric, of real is real, of double precision is double precision, of
	// interval is interval; avg of an integer kind or numeric is numeric, of
	// real or double precision is double precision, of interval is
	// interval; min and max have the argument's type without its modifiers
	// (text for varchar). Arg.ResultType() still carries the modifiers, for
	// engines that need a precision (numeric(10,2)).
	Type Type
}

// Output is one result column.
type Output struct {
	// Name is the column alias, or the name PostgreSQL would give the
	// column: the column's database name for a column reference, the
	// function name for a call (count, sum, avg, min, max, coalesce, ...),
	// "case" for CASE, "?column?" otherwise.
	Name string
	// Expr is a group expression.
	Expr Expr
	Type Type
}

// SortKey is one ORDER BY item.
type SortKey struct {
	// Expr is a group expression.
	Expr Expr
	Desc bool
	// NullsFirst is explicit: PostgreSQL's default puts NULLs last in
	// ascending and first in descending order.
	NullsFirst bool
}

var sourceRefRE = regexp.MustCompile(`\bs(\d+)\.`)

// WithAliases rewrites the s0.column references that expressions' String
// gives into the sources' aliases (alias.column), as the query names them,
// for messages to people.
func (p *Plan) WithAliases(text string) string {
	return sourceRefRE.ReplaceAllStringFunc(text, func(m string) string {
		i, _ := strconv.Atoi(m[1 : len(m)-1])
		if i < len(p.Sources) {
			return QuoteIdent(p.Sources[i].Alias) + "."
		}
		return m
	})
}
