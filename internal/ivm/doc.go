// Package ivm is cdcq's embedded incremental engine: it keeps the result of
// a cached query (a compiled sqlplan.Plan) up to date from the changes of
// the tables it reads, one change at a time, without ever recomputing it
// from scratch, and produces the result records both engines write to the
// result topic.
//
// It owns the in-memory state of a query (the rows of every source by
// primary key, join indexes, per-group aggregate state and the rows last
// reported), the reading of Debezium change records into typed values
// (Decoder, DecodeChange) and the JSON of result records (ResultEncoder).
// Kafka, Postgres, HTTP endpoints and restarts belong to the runtime around
// it. Among cdcq packages it imports only internal/sqlplan and the
// formatting rules it shares with the capture, internal/floattext (Java's
// and PostgreSQL's float text) and internal/civil (calendar, date and clock
// text); its tests also use internal/dbzjson (to write records as the
// capture does), internal/pgtest and internal/prismaschema.
//
// # Use
//
//	q, err := ivm.New(plan)   // refuses what it cannot maintain exactly, saying what
//	enc := q.ResultEncoder(queryID)
//	initial, _ := q.Flush()   // the row of a query without GROUP BY, before any change
//	changes, err := q.ApplyTopicRecord(source.Topic, key, value) // one Debezium record
//	for _, c := range changes {
//		produce(enc.EncodeKey(c), enc.EncodeValue(c)) // nil value: tombstone
//	}
//
// ApplyTopicRecord applies a record to every source that reads its table
// (two for a self-join); ApplyRecord and Apply take one source's record or
// decoded Change; ApplyBatch applies many changes and returns the net
// result changes (one per group whose row differs from what was last
// reported). Snapshot returns the current result, Rows the same sorted by
// key. A Query is not safe for concurrent use.
//
// A change that fails (a division by zero in WHERE, say) changes nothing
// and is reported as a *ChangeError; the query stays consistent with the
// changes applied. When HAVING or an output fails for a group, the group
// keeps its last reported row and the error is returned.
//
// A record that no longer fits the columns the plan reads, because its
// table was altered (a used column renamed, dropped or given another
// type), is refused by the decoder with a *SchemaError, and nothing of it
// is applied: read as it is, the missing column would be NULL and the
// result wrong. The query cannot go on with that table; the caller stops
// it. Added columns and columns the query does not read change nothing.
//
// # Changes
//
// Every source row is kept by primary key, so changes need no before
// image: an update or delete retracts the row stored under the key (tables
// with REPLICA IDENTITY DEFAULT work: their updates have no before image
// and their deletes only the key). Inserts and snapshot reads (op "r")
// replace the row stored under their key, and a delete of a key the engine
// does not hold does nothing, so replaying records after a crash
// (duplicates, in order, of the current snapshot or later; see
// Snapshots) leaves the result as it was. An update whose
// before image has another key moves the row. A truncate (op "t")
// retracts every row of the source. Tombstones decode to OpNone and change
// nothing. An update that changes nothing the query reads is dropped
// early. Unchanged TOASTed values (Debezium's
// "__debezium_unavailable_value") keep the value the stored row had.
//
// # Snapshots
//
// A capture killed in the middle of its initial snapshot snapshots again
// when it restarts, from a later position, and streams from there: the
// topic keeps the abandoned snapshot's records, and rows deleted between
// the two positions get no delete record (what Debezium 3.6 does, as
// internal/service's TestClusterDebeziumSnapshotKilledAndRestarted
// records). The engine therefore reads a new snapshot of a table as the
// whole table. The snapshot reads (op "r") of one snapshot share one
// source.lsn and txId, the snapshot's position and transaction
// (Change.LSN, Change.TxID; source.snapshot gives Change.Snapshot). A
// snapshot read whose lsn is above the source's last snapshot's, or equal
// with another transaction (Debezium takes the WAL write position, which
// asynchronous commits can leave unmoved), begins a new snapshot; if the
// source holds rows then, its generation advances, and every row a record
// writes from then on is stamped with it. When the table's snapshot ends
// (its record marked last_in_data_collection or last, or else the first
// record of the table that is not a snapshot read), the rows of older
// generations, which the new snapshot did not read, are retracted. The
// first snapshot, on an
// empty source, and streaming change nothing of this; a rebuild from the
// start of the topic goes through the same steps and gets the same
// result. Snapshot reads without an lsn, and of incremental snapshots
// (source.snapshot "incremental"), only replace rows by key.
//
// Limits: a table that is empty when the new snapshot reads it has no
// records in it, so its old rows stay until their keys are written again;
// and a table whose snapshot has no end marker (a one-row table read first
// is marked "first" only) keeps its old rows until its next streamed
// change. A replay must not re-send an older snapshot's records after a
// newer one began (no capture does: a restart snapshots anew).
//
// # Maintenance
//
// WHERE conjuncts that read one source are checked when its rows arrive;
// rows that fail them are stored (for their key) but never joined. Joins
// are inner equi-joins: every source has hash indexes on the columns that
// join it to the others, and a change of one source is joined with the
// current state of the others in an order planned per source (the delta
// rule applied one change at a time, so changes of several sides in one
// batch are each joined with the other sides as they are at that point,
// and no pair counts twice). Each joined tuple that passes the rest of
// WHERE adds to, or retracted subtracts from, its group: count(*),
// count(x), an exact sum (int128 for integers, exact decimal for numeric,
// an exact binary sum for floats, so a deleted value leaves no rounding
// behind), a counted ordered multiset for min and max (deleting the
// current minimum finds the next one), per-value counts for
// count(DISTINCT x). avg is the sum divided by the count when the row is
// reported. HAVING and the outputs are evaluated when a group is reported;
// a group that stops satisfying HAVING is reported deleted and comes back
// when it satisfies it again. A group whose last row goes is deleted and
// its state freed; a query without GROUP BY keeps its one row (count 0,
// other aggregates NULL).
//
// Memory follows the data, not its history: the used columns of the
// source rows, join index entries, and per group its state and last
// reported row. Maps and buckets are rebuilt smaller when most of their
// entries are gone (Go maps keep their size otherwise).
//
// # Values and semantics
//
// Values are typed (Value): integers, exact decimals, floats, booleans,
// strings, bytes and temporal values held as integers (days, microseconds).
// Results are PostgreSQL's for the same query on the same data, as the
// tests check against a real server (TestDifferential,
// TestScalarsAgainstPostgres):
//
//   - numeric is exact, with PostgreSQL's display scales: a sum has the
//     largest scale among the values summed (tracked under deletes), a
//     product the sum of the scales, a quotient and avg the scale
//     select_div_scale picks (at least 16 significant digits and no less
//     than either input's scale), rounded half away from zero; NaN and
//     ±Infinity follow PostgreSQL's rules.
//   - sum of smallint or integer is bigint, of bigint numeric; avg of
//     integers and numeric is numeric; sum of real is real; avg of floats
//     is double precision.
//   - integer arithmetic checks the range of its type and truncates
//     division toward zero; division by zero is an error; float arithmetic
//     reports overflow and underflow like PostgreSQL; casts round numeric
//     half away from zero and floats half to even; float to numeric goes
//     through 15 (real: 6) significant digits.
//   - NULL: aggregates other than count(*) skip NULLs; sum, avg, min and
//     max of no values are NULL; NULL group keys form one group; NULL
//     never joins; WHERE, HAVING, CASE, IN and BETWEEN use three-valued
//     logic.
//   - Strings compare byte by byte: the C collation, which is how cdcq's
//     servers are initialised (initdb --locale=C) and how the Flink engine
//     compares. char(n) ignores trailing blanks in comparisons, grouping,
//     length and casts to text, and keeps them in LIKE, as PostgreSQL does.
//     lower, upper and ILIKE change ASCII letters only (the C locale).
//   - Floats: NaN equals NaN and sorts above everything, -0 equals 0; text
//     output is PostgreSQL's shortest form (date_part computes in double
//     precision as PostgreSQL does).
//   - AT TIME ZONE resolves a wall-clock time missing or repeated at a
//     daylight saving change to the later instant, as PostgreSQL does.
//
// Refused by New, with a message: interval, timetz, arrays and types the
// plan only names (money, inet, ...), except as the argument of count(x),
// coalesce or IS [NOT] NULL; json and jsonb in comparisons, grouping,
// count(DISTINCT) and min/max (jsonb equality is not the equality of its
// text); ordering enums (the plan does not carry the label order); extract
// fields outside extractFields (julian, timezone fields); time zones other
// than UTC and region names (Europe/Paris), whose meaning PostgreSQL
// decides with its own abbreviation and POSIX rules; casts the engine does
// not implement (text to enum, for one).
//
// Known differences: where a group holds equal values written differently
// (numeric 1.0 and 1.00), the key or min/max shown is the first one the
// engine saw, where PostgreSQL shows the one its plan meets first. Float
// sums are the exact sum rounded once, where PostgreSQL adds in row order
// (they differ in the last bits, and more for sum of real, which
// PostgreSQL accumulates in single precision); a float sum of zero is 0,
// never -0. An integer sum beyond the range of bigint fails when reported
// rather than when added. Debezium writes time '24:00:00' as midnight, so
// it reads back as 00:00:00.
//
// # Result records
//
// ResultEncoder writes the key {"query_id", group key columns} and the
// value with all columns, named and ordered as internal/flinksql's sink so
// the two engines are interchangeable; see ResultEncoder for the JSON of
// each type. Unlike the Flink engine, NULL group keys are allowed (Flink
// refuses them as primary key columns): the key then holds null.
package ivm
