// Package sqlplan compiles the SQL of a cached query into the logical plan
// that both stream processors execute: the Flink SQL translator and cdcq's
// embedded incremental engine consume the same *Plan.
//
// It owns the SQL dialect cdcq accepts, its checking (names, types, and
// whether a query can be maintained incrementally), the plan types, the
// PostgreSQL type model with the mapping from Prisma column types, and the
// normalised query text the query id is derived from. It parses with
// PostgreSQL's own parser (pganalyze/pg_query_go) and among cdcq packages
// imports only internal/prismaschema.
//
// # Accepted queries
//
// One SELECT over tables of the Prisma schema that aggregates: it has
// count(*), count(x), count(DISTINCT x), sum, avg, min or max, or GROUP BY
// (a query without GROUP BY gives exactly one row). It may have WHERE with
// comparisons, AND/OR/NOT, IN, BETWEEN, IS [NOT] NULL, LIKE/ILIKE, and IS
// [NOT] DISTINCT FROM and IS [NOT] TRUE/FALSE/UNKNOWN (both rewritten with
// CASE, coalesce and IS NULL, so engines see only the Expr node set); HAVING;
// ORDER BY (recorded, not maintained); inner equi-joins, written JOIN ... ON, JOIN ... USING or
// as a comma join with the equality in WHERE; aliases; arithmetic, CASE,
// casts and the immutable functions listed on Func. GROUP BY items may be
// expressions, output column names or positions, and, as in PostgreSQL,
// grouping by a table's primary key allows its other columns in SELECT.
//
// Rejected, each with an *Error that says what and where: no aggregate and
// no GROUP BY, window functions, subqueries anywhere, UNION/INTERSECT/EXCEPT,
// WITH, LIMIT, OFFSET, DISTINCT and DISTINCT ON, FILTER and ORDER BY inside
// aggregates, aggregates other than the five, outer, natural and cross joins
// (every table must be joined to the others by an equality), functions whose
// value changes over time or between calls (now(), current_timestamp,
// random(), ...), and operations whose result depends on the session time
// zone (date_trunc or extract on timestamptz, casts between timestamptz and
// timestamp, date or text, timestamptz literals without an offset): write AT
// TIME ZONE to make the zone part of the query. Tables need a primary key,
// since change data capture identifies rows by it; views are refused.
//
// # Names
//
// Table, column, schema and enum names resolve against the Prisma schema.
// A quoted identifier ("OrderItem") is exact: it matches a database name,
// else a Prisma model or field name, with the same spelling. An unquoted
// identifier tries, in order: the database name equal to the identifier
// folded to lower case (exactly what PostgreSQL does, so every query that
// runs on the database means the same here); a database name equal ignoring
// case; a Prisma model or field name equal ignoring case. The first rule
// that matches decides; if it matches two names (tables "order" and "ORDER"
// for an unquoted ORDER), the error asks for the exact name in quotes.
// So unquoted Order finds the model Order whose table is "Order", and
// customerId finds the field customerId mapped to customer_id. An
// unqualified table name found in several schemas prefers public, like the
// default search_path. Aliases and column qualifiers compare like
// PostgreSQL (folded), then ignoring case. Unknown names give an *Error
// naming them, with the closest known name as Suggestion.
//
// # Limits
//
// Queries are at most MaxQueryBytes long with at most 4000 operators and
// keywords, and expressions nest at most 200 deep: pg_query serialises parse
// trees recursively in C, where a stack overflow would end the process.
// Its measured margin assumes 8 MB thread stacks (glibc's default); a musl
// build with small thread stacks would need a lower limit.
//
// Output columns are named as PostgreSQL would, except that a column
// reference is named by the column's database name (its Prisma field name
// would not be a column of the result of the same query on the database).
package sqlplan
