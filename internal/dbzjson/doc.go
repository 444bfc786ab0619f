// Package dbzjson encodes captured PostgreSQL rows as Kafka record keys and
// values that a consumer cannot tell from those of Debezium's PostgreSQL
// connector as cdcq configures it (internal/debezium): JsonConverter with
// schemas.enable=false, decimal.handling.mode=string,
// time.precision.mode=isostring, binary.handling.mode=base64,
// interval.handling.mode=numeric (the default), tombstones on delete,
// truncate events, topic.prefix=<environmentId>, plugin pgoutput.
//
// It owns the byte format of the embedded capture engine's output: topic
// names, the key object, the change event envelope (before, after, source,
// op, ts_ms, ts_us, ts_ns, transaction), the PostgreSQL source block and the
// JSON form of every column value. Delivery, tombstones and ordering belong
// to the caller (internal/capture); a tombstone is simply a record whose
// value is nil.
//
// Among cdcq packages it imports only the formatting rules it shares with
// the incremental engine: internal/floattext (Java's float text) and
// internal/civil (calendar, date and clock text). internal/pgtest is used
// by its tests only.
//
// # Input
//
// Column values arrive in PostgreSQL's text output format, as pgoutput sends
// them and as a simple-protocol query returns them. The text depends on
// session settings; the encoder assumes the engine's connections use
//
//	DateStyle=ISO, IntervalStyle=postgres, TimeZone=UTC, extra_float_digits=3,
//	bytea_output=hex, lc_monetary with '.' as decimal point (C or en_US)
//
// and a UTF-8 database (Debezium supports no other encoding). Offsets other
// than UTC in timestamptz and timetz text are still handled correctly.
//
// # Output
//
// Each PostgreSQL type maps to the JSON that Debezium's converters and
// Kafka's JsonConverter produce for it. DEBEZIUM.md in this directory lists
// every mapping with the Debezium documentation or source it follows, and
// says where the documentation is silent and what was chosen instead.
//
// # Speed
//
// NewEncoder compiles a Relation once into per-column codecs; encoding a row
// appends straight into one []byte without reflection, encoding/json or
// per-value allocations. The free functions Key and Envelope keep an
// Encoder per *Relation in a small cache.
package dbzjson
