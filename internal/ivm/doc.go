// Package ivm is cdcq's embedded incremental engine: it keeps the result of
// a cached query (a compiled sqlplan.Plan) up to date from the changes of
// the tables it reads, one change at a time, without ever recomputing it
// from scratch, and produces the result records both engines write to the
// result topic.
//
// It owns the in-memory state of a query (the rows of every source by
// primary key, join indexes, per-group aggregate state and the rows last
// reported), the reading of Debezium change records into typed values
// (Decoder, DecodeChange) and the JSON of result records
// (ResultEncoder). Kafka, Postgres, HTTP and restarts belong to the
// runtime around it. Among cdcq packages it imports only internal/sqlplan
// (its tests also use internal/dbzjson, internal/pgtest and
// internal/prismaschema).
//
// # Use
//
//	q, err := ivm.New(plan)                     // refuses what it cannot maintain exactly
//	initial, _ := q.Flush()                     // the row of a query without GROUP BY
//	changes, err := q.ApplyRecord(source, key, value) // decode + apply one Debezium record
//	enc := q.ResultEncoder(queryID)
//	for _, c := range changes {
//		produce(enc.EncodeKey(c), enc.EncodeValue(c)) // nil value: tombstone
//	}
//
// ApplyBatch applies many changes and returns the net result changes (one
// per group that changed). Snapshot returns the current result. A Query is
// not safe for concurrent use.
//
// # Changes
//
// Every source row is kept by primary key, so changes need no before
// image: an update or delete retracts the row stored under the key (tables
// with REPLICA IDENTITY DEFAULT work). Inserts and snapshot reads replace
// the row stored under their key, and a delete of a key the engine does not
// hold does nothing, so replaying records after a crash (duplicates, in
// order) changes nothing. A truncate retracts every row of the source. An
// update that changes nothing the query reads is dropped early. Unchanged
// TOASTed values (Debezium's "__debezium_unavailable_value") keep the
// value the stored row had.
//
// # Maintenance
//
// WHERE conjuncts that read one source are checked when its rows arrive;
// rows that fail them are stored (for their key) but never joined. Joins
// are inner equi-joins: every source has hash indexes on the columns that
// join it to the others, and a change of one source is joined with the
// current state of the others in an order planned per source (the delta
// rule applied one change at a time, which handles changes of several
// sides in one batch exactly). Each joined tuple that passes the rest of
// WHERE adds to (or, retracted, subtracts from) its group: count(*),
// count(x), an exact sum (int128 for integers, exact decimal for numeric,
// an exact binary sum for floats, so a deleted value leaves no rounding
// behind), a counted ordered multiset for min and max (so deleting the
// current minimum finds the next one), per-value counts for
// count(DISTINCT x). avg is the sum divided by the count at the time the
// row is reported. HAVING and the outputs are evaluated when a group is
// reported; a group that stops satisfying HAVING is reported deleted and
// comes back when it satisfies it again. A group whose last row goes is
// deleted and its state freed; a query without GROUP BY keeps its one row
// (count 0, other aggregates NULL).
//
// Memory is proportional to the data: the rows of the sources (only the
// columns the plan uses), the index entries, and per group its state and
// last reported row; nothing is kept per change.
//
// # Semantics
//
// Results are PostgreSQL's for the same query on the same data, as the
// differential test checks against a real server:
//
//   - numeric is exact, with PostgreSQL's display scales: a sum has the
//     largest scale among the values summed (tracked under deletes), a
//     product the sum of the scales, a quotient and avg the scale of
//     select_div_scale (at least 16 significant digits and no less than
//     either input's scale), rounded half away from zero; NaN and
//     ±Infinity follow PostgreSQL's rules.
//   - sum of smallint/integer is bigint, of bigint numeric; avg of integers
//     and numeric is numeric; sum of real is real; avg of floats double.
//   - integer arithmetic checks the range of its type and truncates
//     division toward zero; division by zero is an error; float
//     arithmetic reports overflow and underflow as PostgreSQL does.
//   - NULL: aggregates other than count(*) skip NULLs; sum, avg, min and
//     max of no values are NULL; NULL group keys form one group; NULL
//     never joins; WHERE, HAVING, CASE, IN and BETWEEN use three-valued
//     logic.
//   - Strings compare byte by byte: the C collation, which is how cdcq's
//     servers (initdb --locale=C) and the Flink engine compare. char(n)
//     ignores trailing blanks in comparisons, grouping and casts to text,
//     and keeps them in LIKE, as PostgreSQL does. lower, upper and ILIKE
//     change the case of ASCII letters only (the C locale).
//   - Floats: NaN equals NaN and sorts above everything, -0 equals 0.
//
// Not supported, refused by New with a message: interval, timetz, arrays
// and types the plan only names (money, inet, ...), except as the argument
// of count(x) or IS [NOT] NULL; json and jsonb in comparisons, grouping and
// min/max (their equality is not that of their text); ordering of enums
// (the plan does not carry the label order); date_trunc and extract fields
// outside the lists in this package (julian, timezone fields), and time
// zones other than UTC and region names (Europe/Paris).
//
// Known differences: when a group's rows hold equal values written
// differently (numeric 1.0 and 1.00), the key or min/max shown is the
// first one the engine saw, where PostgreSQL shows the one its plan meets
// first. Float sums are exact sums rounded once, where PostgreSQL adds in
// row order (they differ in the last bits; sum of real more). Integer sums
// beyond the range of bigint fail when reported rather than when added.
//
// # Result records
//
// See ResultEncoder: the key is {"query_id", group key columns} and the
// value all columns, named and ordered as internal/flinksql's sink, so the
// two engines are interchangeable.
package ivm
