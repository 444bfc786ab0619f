package dbzjson

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
)

// Column of a captured table.
type Column struct {
	Name     string
	TypeOID  uint32 // pg_type oid of the column type
	TypeName string // format_type(...) e.g. "numeric(10,2)", "character varying(20)", "integer[]", "mood" (an enum)
	// TypeMod is atttypmod (-1 when none). For an array column it is the
	// element's modifier, as PostgreSQL stores it. For a domain column whose
	// own atttypmod is -1 the engine may pass the domain's typtypmod, which is
	// what Debezium inherits ("the generated schema inherits that defined
	// length or scale").
	TypeMod int32
	// Kind classifies special types the OID alone does not: 'e' enum, 'a' array (ElemOID set), 'b' base, 'd' domain (BaseOID set)
	Kind byte
	// ElemOID is the element type of an array column.
	ElemOID uint32
	// ElemKind classifies an array's element type as Kind does ('e' enum,
	// 'd' domain, 'b' anything else; 0 is taken as 'b'). Debezium writes
	// arrays of enums and leaves out arrays of domains.
	ElemKind byte
	// BaseOID is the type a domain is based on, with chains of domains
	// already resolved to the first non-domain type (pg_type.typbasetype
	// followed to its end).
	BaseOID uint32
	Key     bool // part of the primary key (or replica identity)
	// KeyPos is the column's position in the primary key (1 for its first
	// column). Debezium lists the key's fields in the primary key's order;
	// key columns without one (0) follow in column order.
	KeyPos int
}

// Relation is a captured table.
type Relation struct {
	Schema, Table string
	Columns       []Column
}

// Value is a column value in PostgreSQL's text output format; nil is SQL NULL.
type Value = *string

// UnavailableValuePlaceholder is Debezium's default
// unavailable.value.placeholder, written for TOASTed values that pgoutput
// did not send.
const UnavailableValuePlaceholder = "__debezium_unavailable_value"

// Unchanged marks a TOASTed value that pgoutput did not send ('u'); encoded as Debezium's unavailable-value placeholder "__debezium_unavailable_value".
// It is recognised by identity: pass this very pointer.
var Unchanged Value = func() *string { s := UnavailableValuePlaceholder; return &s }()

// Connector is the source.connector value of every event.
const Connector = "postgresql"

// VersionPrefix starts source.version. Debezium writes its own release
// ("3.1.0.Final"); cdcq writes "cdcq-" followed by the cdcq version, e.g.
// "cdcq-0.4.2", so that a consumer can tell which engine captured an event
// if it ever needs to. DefaultVersion is written when Source.Version is
// empty.
const (
	VersionPrefix  = "cdcq-"
	DefaultVersion = VersionPrefix + "dev"
)

// Version returns the source.version for a cdcq release.
func Version(cdcqVersion string) string { return VersionPrefix + cdcqVersion }

// Source is the metadata written into an event's source block.
type Source struct {
	Version string // e.g. "cdcq-<version>" (see VersionPrefix); "" writes DefaultVersion
	Name    string // topic prefix = environmentId
	TsMs    int64  // commit time (ms)
	// TsUs is the commit time in microseconds, written as ts_us and (times
	// 1000) ts_ns. Zero derives both from TsMs.
	TsUs int64
	// Snapshot is "true", "first", "first_in_data_collection",
	// "last_in_data_collection", "last", "false" or "incremental" (Debezium
	// 2+'s SnapshotRecord values); "" writes "false".
	Snapshot      string
	DB            string
	Schema, Table string // "" takes the Relation's names (Envelope only)
	TxID          int64  // 0 = null
	LSN           int64  // 0 = null
	Sequence      string // Debezium's ["<last committed lsn>","<current lsn>"] string, "" = null; see Sequence
	// Origin and OriginLSN are the replication origin of a streamed
	// transaction that another server replicated into the source (the
	// origin's name and its commit LSN there, from pgoutput's Origin
	// message); "" and 0 write null.
	Origin    string
	OriginLSN int64
}

// SnapshotMarker returns source.snapshot for a record read during the
// initial snapshot, as Debezium 2+ marks them: "first" for the first record
// of the snapshot, "last" for its final record, "first_in_data_collection"
// and "last_in_data_collection" for the first and last record of every
// other table, "true" for the rest. (Streamed changes are "false".)
func SnapshotMarker(firstTable, lastTable, firstInTable, lastInTable bool) string {
	switch {
	case lastInTable && lastTable:
		return "last"
	case firstInTable && firstTable:
		return "first"
	case lastInTable:
		return "last_in_data_collection"
	case firstInTable:
		return "first_in_data_collection"
	}
	return "true"
}

// Sequence formats source.sequence the way Debezium does: a JSON array of
// the last committed LSN and the event's LSN, both as decimal strings, a
// zero LSN written as null. For example Sequence(24023119, 24023128) is
// ["24023119","24023128"] and Sequence(0, 24023128) is [null,"24023128"].
func Sequence(lastCommittedLSN, lsn uint64) string {
	b := make([]byte, 0, 48)
	b = append(b, '[')
	b = appendLSNString(b, lastCommittedLSN)
	b = append(b, ',')
	b = appendLSNString(b, lsn)
	b = append(b, ']')
	return string(b)
}

func appendLSNString(b []byte, lsn uint64) []byte {
	if lsn == 0 {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = strconv.AppendUint(b, lsn, 10)
	return append(b, '"')
}

// Op is an event's operation.
type Op byte // 'r' read (snapshot), 'c', 'u', 'd', 't'

// Operations, as Debezium writes them in the op field.
const (
	OpRead     Op = 'r'
	OpCreate   Op = 'c'
	OpUpdate   Op = 'u'
	OpDelete   Op = 'd'
	OpTruncate Op = 't'
)

// Topic returns "<prefix>.<schema>.<table>".
//
// Like Debezium's default topic naming strategy, every character that Kafka
// does not allow in a topic name (anything but ASCII letters, digits, '.',
// '_' and '-') is replaced by '_', one per UTF-16 code unit as Java counts
// them.
func Topic(prefix string, rel *Relation) string {
	name := prefix + "." + rel.Schema + "." + rel.Table
	for i := 0; i < len(name); i++ {
		if !validTopicByte(name[i]) {
			return sanitizeTopic(name)
		}
	}
	return name
}

func validTopicByte(c byte) bool {
	return c == '.' || c == '_' || c == '-' ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func sanitizeTopic(name string) string {
	b := make([]byte, 0, len(name))
	for _, r := range name {
		switch {
		case r < 0x80 && validTopicByte(byte(r)):
			b = append(b, byte(r))
		case r > 0xFFFF:
			b = append(b, '_', '_') // a surrogate pair in Java
		default:
			b = append(b, '_')
		}
	}
	return string(b)
}

// Key encodes the record key: a JSON object of the key columns (in primary-key order, see Column.KeyPos) from the row (after for c/u/r, before or the old key for d). Returns nil for a table without key columns (Debezium then writes a null key).
func Key(rel *Relation, row []Value) ([]byte, error) {
	return cachedEncoder(rel).Key(row)
}

// Envelope encodes the record value. before/after may be nil (no image). tsMs is the processing time.
func Envelope(rel *Relation, op Op, before, after []Value, src Source, tsMs int64) ([]byte, error) {
	return cachedEncoder(rel).Envelope(op, before, after, src, tsMs)
}

// TruncateEnvelope encodes a truncate event (op "t", before/after null).
// Debezium gives it a null key. src must name the schema and table.
func TruncateEnvelope(src Source, tsMs int64) ([]byte, error) {
	b := make([]byte, 0, 384)
	return appendTruncate(b, src, tsMs)
}

// DeleteEnvelopeRaw encodes a delete (op "d") whose before image is
// already encoded: the after image of an earlier record of the same row, as
// a JSON object. The capture writes such deletes for rows that a topic
// still holds but that a new snapshot no longer found. src must name the
// schema and table.
func DeleteEnvelopeRaw(before []byte, src Source, tsMs int64) ([]byte, error) {
	if src.Schema == "" || src.Table == "" {
		return nil, fmt.Errorf("dbzjson: a delete event needs the schema and table in its source")
	}
	if len(before) == 0 || before[0] != '{' {
		return nil, fmt.Errorf("dbzjson: the before image of a delete of %s.%s is not a JSON object", src.Schema, src.Table)
	}
	dst := make([]byte, 0, len(before)+448)
	dst = append(dst, `{"before":`...)
	dst = append(dst, before...)
	dst = append(dst, `,"after":null,"source":`...)
	var err error
	if dst, err = appendSource(dst, &src); err != nil {
		return nil, err
	}
	return appendTail(dst, OpDelete, tsMs), nil
}

// The free functions keep compiled encoders per *Relation. An entry is
// checked against the relation on every use, so a Relation mutated in place
// (a schema change) gets a fresh encoder. The cache is emptied when it grows
// past encoderCacheMax entries, which bounds what relations that the engine
// has replaced can pin.
const encoderCacheMax = 4096

var (
	encoderCache     sync.Map // *Relation -> *Encoder
	encoderCacheSize atomic.Int64
)

func cachedEncoder(rel *Relation) *Encoder {
	if v, ok := encoderCache.Load(rel); ok {
		if e := v.(*Encoder); e.matches(rel) {
			return e
		}
	}
	e := NewEncoder(rel)
	if _, loaded := encoderCache.Swap(rel, e); !loaded {
		if encoderCacheSize.Add(1) > encoderCacheMax {
			encoderCache.Clear()
			encoderCacheSize.Store(0)
		}
	}
	return e
}
