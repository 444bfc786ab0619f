// Package flinksql translates a cached query's logical plan (sqlplan.Plan)
// into the Flink SQL statements that keep its result up to date on a Flink
// cluster: session settings, one source table per captured table, the
// result sink, and the INSERT that runs as the query's job. The text is
// reviewed: golden files under testdata/ show it for every kind of query
// and every column type.
//
// It owns the Flink side of two contracts: how Debezium's change topics
// are read, and the format of the result topic, which cdcq's embedded
// engine writes the same way.
//
// This package imports sqlplan (the plan) and names (topic names) only; it
// must not import the handlers, the Flink REST client or any engine.
//
// # Statements
//
// In order, each one executed on its own through the SQL Gateway:
//
//	SET 'pipeline.name' = '<pipeline name>'        the job's name, cdcq-<env>-<query id>
//	SET 'table.exec.source.cdc-events-duplicate' = 'true'
//	SET 'table.local-time-zone' = 'UTC'
//	SET '<key>' = '<value>'                         Options.Settings, sorted by key
//	CREATE TEMPORARY TABLE `<schema>.<table>` ...   one per captured table the query reads
//	CREATE TEMPORARY TABLE `cdcq_result` ...        the result sink
//	INSERT INTO `cdcq_result` SELECT ...
//
// Temporary tables live in the session only, so nothing is left in a
// catalog and a resubmission declares them afresh.
//
// # Change topics (sources)
//
// Each source reads the topic "<environmentId>.<schema>.<table>" with the
// kafka connector from the earliest offset, through the debezium-json
// format. The topic is named by 'topic-pattern' (the exact name, quoted as
// a regular expression) rather than 'topic': Debezium creates a table's
// topic with its first change, and a pattern lets the job start before
// that and pick the topic up at the next partition discovery (every 30 s).
// The consumer group is the pipeline name. Debezium delivers at least
// once; 'table.exec.source.cdc-events-duplicate' with the table's primary
// key (PRIMARY KEY ... NOT ENFORCED, from the plan) makes Flink drop
// duplicates. Debezium's tombstones are skipped by the format.
//
// Debezium is configured by cdcq (internal/debezium) with
// decimal.handling.mode=string, time.precision.mode=isostring and
// binary.handling.mode=base64. Flink's JSON format reads those as follows:
//
//   - numeric: a JSON string such as "12.30"; the format parses the text
//     as a BigDecimal and rounds it (HALF_UP) to the column's scale; a
//     value with more integer digits than the type allows becomes NULL.
//   - bytea: a base64 string; the format decodes it into BYTES.
//   - timestamptz: "2024-01-02T03:04:05.123456Z", read as TIMESTAMP_LTZ(p)
//     ('debezium-json.timestamp-format.standard' = 'ISO-8601' expects the
//     trailing Z for TIMESTAMP_LTZ).
//   - timestamp: Debezium's isostring mode writes it with a trailing Z as
//     well ("2024-01-02T03:04:05.1Z"), which Flink's TIMESTAMP parser
//     refuses; the source declares it TIMESTAMP_LTZ(p) and the query casts
//     it to TIMESTAMP(p), which with the session time zone UTC gives back
//     the wall-clock value.
//   - date ("2024-01-02Z") and time ("04:05:06.789Z"): declared STRING and
//     converted with TRY_CAST after dropping the Z; PostgreSQL's ±infinity
//     dates become NULL.
//
// Flink's debezium-json format needs the before-image of updates and
// deletes: captured tables need REPLICA IDENTITY FULL, or an update fails
// the job (cdcq's Debezium configuration and its embedded capture set it).
// A TRUNCATE event (Debezium's op "t") fails the job too: the format knows
// only c, r, u and d. Options.StartOffsets lets a job start after a
// table's last truncate instead, where the table's state begins anew.
//
// # Result topic
//
// The result goes to the topic named by the environmentId (names.
// ResultTopic) through the upsert-kafka connector:
//
//	'key.format' = 'json', 'key.fields-prefix' = 'key_', 'value.format' = 'json',
//	'value.fields-include' = 'EXCEPT_KEY',
//	'<key|value>.json.timestamp-format.standard' = 'ISO-8601',
//	'<key|value>.json.encode.decimal-as-plain-number' = 'true'
//
// The record key identifies the query and the group:
//
//	{"query_id": "q_...", "group": {"<key 1>": <value>, "<key 2>": <value>, ...}}
//
// with one field per GROUP BY key, in GROUP BY order, named like the
// output column that is exactly that key, or _group_<n> (n counting from 1,
// with more leading underscores if an output already has that name) for a
// key that is not an output. A query without GROUP BY, whose one result row
// always exists (count 0 and NULL aggregates over no rows, as in
// PostgreSQL), is keyed by {"query_id": "q_..."} alone.
//
// The record value is the result row, one field per column:
//
//  1. query_id: the cached query's id.
//  2. The group keys, as in the key's group object.
//  3. The other output columns, in SELECT order, under their output names.
//
// When a group disappears (its last row deleted, or HAVING no longer true)
// its key gets a tombstone (a null value).
//
// The sink declares the key as two columns, key_query_id STRING and
// key_group ROW<...> (the prefix keeps them apart from the value's
// columns; it gains leading underscores if an output name starts with it),
// with PRIMARY KEY (key_query_id, key_group) NOT ENFORCED. Flink makes
// primary key columns NOT NULL; the group ROW never is, while its fields
// may be: a NULL group key is a group of its own, as in PostgreSQL.
//
// The query groups by the query id and the group ROW, so that its upsert
// key is exactly the sink's primary key: otherwise Flink writes every
// update as a tombstone followed by the new row. For that the query id is
// computed from a column of the first source (COALESCE(NULLIF(id, col),
// id)), which Flink cannot fold into a constant and drop from the
// grouping.
//
// Column types (PostgreSQL type as the plan gives it, Flink SQL type in the
// sink, JSON value):
//
//	smallint, integer, bigint       SMALLINT, INT, BIGINT            number
//	numeric(p,s), p <= 38           DECIMAL(p,s)                     number, plain notation
//	numeric(p,s), p > 38            DECIMAL(38, min(s,16))           (Prisma's default Decimal is numeric(65,30))
//	numeric                         DECIMAL(38,16)                   (Flink's maximum precision is 38)
//	real, double precision          FLOAT, DOUBLE                    number
//	boolean                         BOOLEAN                          true/false
//	text, varchar(n), char(n)       STRING                           string
//	uuid, json, jsonb, enum         STRING                           string (json as its text)
//	date                            DATE                             "2024-01-02"
//	time(p)                         TIME(min(p,3))                   "04:05:06.789"
//	timestamp(p)                    TIMESTAMP(p), p defaults to 6    "2024-01-02T03:04:05.123"
//	timestamptz(p)                  TIMESTAMP_LTZ(p)                 "2024-01-02T03:04:05.123Z"
//	timetz                          STRING                           Debezium's text, "12:05:11Z"
//	bytea                           BYTES                            base64 string
//	other types (inet, money, ...)  STRING                           Debezium's value as text
//	t[]                             ARRAY<T>                         array
//
// interval values, and arrays of date, time or timestamp types, have no
// translation and are refused. Aggregates keep PostgreSQL's result types:
// sum and avg cast their argument first (sum(integer) is bigint, avg(bigint)
// numeric), so Flink neither overflows an INT sum nor truncates an average.
//
// # Known differences from PostgreSQL
//
// Strings compare by code point (PostgreSQL's "C" collation), not by the
// database's locale. A cast of double precision to an integer rounds half
// away from zero (PostgreSQL rounds half to even). Casts to text format
// booleans as TRUE/FALSE. Integer overflow wraps instead of failing.
package flinksql
