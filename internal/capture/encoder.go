package capture

import (
	"fmt"

	"github.com/cdcq/cdcq/internal/dbzjson"
)

// encoder writes one relation's records: key and value share one
// allocation, sized by the previous record.
type encoder struct {
	rel  *dbzjson.Relation
	enc  *dbzjson.Encoder
	hint int
}

// newEncoder returns the encoder of streamed changes, or with snapshot of
// snapshot rows: Debezium reads those through JDBC, which writes a few
// values differently (dbzjson.NewSnapshotEncoder).
func newEncoder(rel *dbzjson.Relation, snapshot bool) *encoder {
	enc := dbzjson.NewEncoder
	if snapshot {
		enc = dbzjson.NewSnapshotEncoder
	}
	return &encoder{rel: rel, enc: enc(rel), hint: 512}
}

// record encodes the key of keyRow (nil for a table without a primary key)
// and the envelope.
func (e *encoder) record(keyRow []dbzjson.Value, op dbzjson.Op, before, after []dbzjson.Value, src dbzjson.Source, tsMs int64) (key, val []byte, err error) {
	buf := make([]byte, 0, e.hint)
	buf, err = e.enc.AppendKey(buf, keyRow)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key of a change to %s.%s: %w", e.rel.Schema, e.rel.Table, err)
	}
	k := len(buf)
	buf, err = e.enc.AppendEnvelope(buf, op, before, after, src, tsMs)
	if err != nil {
		return nil, nil, fmt.Errorf("encode a change to %s.%s: %w", e.rel.Schema, e.rel.Table, err)
	}
	e.hint = len(buf) + len(buf)/8
	if k > 0 {
		key = buf[:k:k]
	}
	return key, buf[k:], nil
}
