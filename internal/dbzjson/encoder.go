package dbzjson

import (
	"fmt"
	"slices"
	"sync/atomic"
)

// Encoder writes the keys and envelopes of one relation. It is built once
// per relation (and again after a schema change) and is safe for concurrent
// use.
type Encoder struct {
	schema, table string
	columns       []Column // a copy, to notice a Relation changed in place
	cols          []columnCodec
	keyCols       []int
	// Sizes of the last outputs, so that the next one is allocated once.
	keyHint, envHint atomic.Int64
}

type columnCodec struct {
	field []byte // "name":
	codec *codec
}

// NewEncoder compiles rel's columns into codecs for streamed changes, which
// Debezium reads from pgoutput's text. Columns of types Debezium has no
// schema for are left out of the records, as Debezium leaves them out
// (DEBEZIUM.md).
func NewEncoder(rel *Relation) *Encoder { return newEncoder(rel, false) }

// NewSnapshotEncoder compiles rel's columns into codecs for rows of the
// initial snapshot, which Debezium reads through JDBC: a few values (dates,
// name columns) come out differently from the streamed ones (DEBEZIUM.md).
func NewSnapshotEncoder(rel *Relation) *Encoder { return newEncoder(rel, true) }

func newEncoder(rel *Relation, snapshot bool) *Encoder {
	e := &Encoder{
		schema:  rel.Schema,
		table:   rel.Table,
		columns: append([]Column(nil), rel.Columns...),
		cols:    make([]columnCodec, len(rel.Columns)),
	}
	for i, c := range rel.Columns {
		e.cols[i] = columnCodec{field: append(appendString(nil, c.Name), ':'), codec: newColumnCodec(c, snapshot)}
		if e.cols[i].codec.kind == kOmit {
			continue
		}
		if c.Key {
			e.keyCols = append(e.keyCols, i)
		}
	}
	// The primary key's order; columns without a position after, in
	// column order (a stable sort keeps it).
	slices.SortStableFunc(e.keyCols, func(a, b int) int {
		pa, pb := rel.Columns[a].KeyPos, rel.Columns[b].KeyPos
		switch {
		case pa == pb:
			return 0
		case pa == 0:
			return 1
		case pb == 0:
			return -1
		}
		return pa - pb
	})
	e.keyHint.Store(64)
	e.envHint.Store(512)
	return e
}

// matches reports whether the encoder was built from rel as it is now.
func (e *Encoder) matches(rel *Relation) bool {
	if rel.Schema != e.schema || rel.Table != e.table || len(rel.Columns) != len(e.columns) {
		return false
	}
	for i := range e.columns {
		if rel.Columns[i] != e.columns[i] {
			return false
		}
	}
	return true
}

// Key encodes the record key: a JSON object of the key columns (in the
// primary key's order, Column.KeyPos) from the row. Returns nil for a table without key columns.
func (e *Encoder) Key(row []Value) ([]byte, error) {
	if len(e.keyCols) == 0 {
		return nil, nil
	}
	b, err := e.AppendKey(make([]byte, 0, e.keyHint.Load()), row)
	if err != nil {
		return nil, err
	}
	e.keyHint.Store(int64(len(b)))
	return b, nil
}

// AppendKey appends the key object for row to dst. With no key columns it
// appends nothing.
func (e *Encoder) AppendKey(dst []byte, row []Value) ([]byte, error) {
	if len(e.keyCols) == 0 {
		return dst, nil
	}
	if len(row) != len(e.cols) {
		return dst, e.widthError(len(row))
	}
	dst = append(dst, '{')
	for n, i := range e.keyCols {
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, e.cols[i].field...)
		var err error
		if dst, err = e.appendValue(dst, i, row[i]); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// Envelope encodes the record value. before/after may be nil (no image).
// tsMs is the processing time.
func (e *Encoder) Envelope(op Op, before, after []Value, src Source, tsMs int64) ([]byte, error) {
	b, err := e.AppendEnvelope(make([]byte, 0, e.envHint.Load()+64), op, before, after, src, tsMs)
	if err != nil {
		return nil, err
	}
	e.envHint.Store(int64(len(b)))
	return b, nil
}

// AppendEnvelope appends the envelope to dst. Creates and reads (snapshot)
// need after and updates need after; deletes must have no after.
func (e *Encoder) AppendEnvelope(dst []byte, op Op, before, after []Value, src Source, tsMs int64) ([]byte, error) {
	if src.Schema == "" {
		src.Schema = e.schema
	}
	if src.Table == "" {
		src.Table = e.table
	}
	switch op {
	case OpRead, OpCreate, OpUpdate:
		if after == nil {
			return dst, fmt.Errorf("dbzjson: %s.%s: op %q needs an after image", e.schema, e.table, op)
		}
	case OpDelete:
		if after != nil {
			return dst, fmt.Errorf("dbzjson: %s.%s: a delete has no after image", e.schema, e.table)
		}
	case OpTruncate:
		return appendTruncate(dst, src, tsMs)
	default:
		return dst, fmt.Errorf("dbzjson: unknown op %q", op)
	}
	var err error
	dst = append(dst, `{"before":`...)
	if dst, err = e.appendRow(dst, before); err != nil {
		return dst, err
	}
	dst = append(dst, `,"after":`...)
	if dst, err = e.appendRow(dst, after); err != nil {
		return dst, err
	}
	dst = append(dst, `,"source":`...)
	if dst, err = appendSource(dst, &src); err != nil {
		return dst, err
	}
	return appendTail(dst, op, tsMs), nil
}

func (e *Encoder) appendRow(dst []byte, row []Value) ([]byte, error) {
	if row == nil {
		return append(dst, "null"...), nil
	}
	if len(row) != len(e.cols) {
		return dst, e.widthError(len(row))
	}
	dst = append(dst, '{')
	first := true
	for i := range e.cols {
		if e.cols[i].codec.kind == kOmit {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, e.cols[i].field...)
		var err error
		if dst, err = e.appendValue(dst, i, row[i]); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

func (e *Encoder) appendValue(dst []byte, i int, v Value) ([]byte, error) {
	switch {
	case v == nil:
		return append(dst, "null"...), nil
	case v == Unchanged:
		return append(dst, e.cols[i].codec.unchanged...), nil
	}
	mark := len(dst)
	out, err := e.cols[i].codec.append(dst, *v)
	if err != nil {
		c := e.columns[i]
		return dst[:mark], fmt.Errorf("dbzjson: %s.%s column %q of type %s: %w", e.schema, e.table, c.Name, c.TypeName, err)
	}
	return out, nil
}

func (e *Encoder) widthError(n int) error {
	return fmt.Errorf("dbzjson: %s.%s has %d columns, row has %d values", e.schema, e.table, len(e.cols), n)
}

func appendTruncate(dst []byte, src Source, tsMs int64) ([]byte, error) {
	if src.Schema == "" || src.Table == "" {
		return dst, fmt.Errorf("dbzjson: a truncate event needs the schema and table in its source")
	}
	dst = append(dst, `{"before":null,"after":null,"source":`...)
	var err error
	if dst, err = appendSource(dst, &src); err != nil {
		return dst, err
	}
	return appendTail(dst, OpTruncate, tsMs), nil
}

// appendTail writes the transaction block (null:
// provide.transaction.metadata is off), op and the processing time in the
// three units Debezium 2.6+ writes, in the order of Debezium's envelope
// schema (3.x puts transaction right after source).
func appendTail(dst []byte, op Op, tsMs int64) []byte {
	dst = append(dst, `,"transaction":null,"op":"`...)
	dst = append(dst, byte(op))
	dst = append(dst, `","ts_ms":`...)
	dst = appendInt(dst, tsMs)
	dst = append(dst, `,"ts_us":`...)
	dst = appendInt(dst, tsMs*1000)
	dst = append(dst, `,"ts_ns":`...)
	return append(appendInt(dst, tsMs*1_000_000), '}')
}

var snapshotValues = map[string]bool{
	"true": true, "first": true, "first_in_data_collection": true,
	"last_in_data_collection": true, "last": true, "false": true, "incremental": true,
}

// appendSource writes io.debezium.connector.postgresql.Source: the common
// fields (version, connector, name, ts_ms, snapshot, db, sequence, ts_us,
// ts_ns) then PostgreSQL's (schema, table, txId, lsn, xmin, origin,
// origin_lsn).
func appendSource(dst []byte, src *Source) ([]byte, error) {
	snapshot := src.Snapshot
	if snapshot == "" {
		snapshot = "false"
	} else if !snapshotValues[snapshot] {
		return dst, fmt.Errorf("dbzjson: source snapshot %q is not one of Debezium's values", snapshot)
	}
	version := src.Version
	if version == "" {
		version = DefaultVersion
	}
	tsUs := src.TsUs
	if tsUs == 0 {
		tsUs = src.TsMs * 1000
	}
	dst = append(dst, `{"version":`...)
	dst = appendString(dst, version)
	dst = append(dst, `,"connector":"`+Connector+`","name":`...)
	dst = appendString(dst, src.Name)
	dst = append(dst, `,"ts_ms":`...)
	dst = appendInt(dst, src.TsMs)
	dst = append(dst, `,"snapshot":"`...)
	dst = append(dst, snapshot...)
	dst = append(dst, `","db":`...)
	dst = appendString(dst, src.DB)
	dst = append(dst, `,"sequence":`...)
	if src.Sequence == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendString(dst, src.Sequence)
	}
	dst = append(dst, `,"ts_us":`...)
	dst = appendInt(dst, tsUs)
	dst = append(dst, `,"ts_ns":`...)
	dst = appendInt(dst, tsUs*1000)
	dst = append(dst, `,"schema":`...)
	dst = appendString(dst, src.Schema)
	dst = append(dst, `,"table":`...)
	dst = appendString(dst, src.Table)
	dst = append(dst, `,"txId":`...)
	dst = appendNullableInt(dst, src.TxID)
	dst = append(dst, `,"lsn":`...)
	dst = appendNullableInt(dst, src.LSN)
	dst = append(dst, `,"xmin":null,"origin":`...)
	if src.Origin == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendString(dst, src.Origin)
	}
	dst = append(dst, `,"origin_lsn":`...)
	return append(appendNullableInt(dst, src.OriginLSN), '}'), nil
}

func appendNullableInt(dst []byte, v int64) []byte {
	if v == 0 {
		return append(dst, "null"...)
	}
	return appendInt(dst, v)
}
