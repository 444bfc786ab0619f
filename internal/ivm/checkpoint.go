package ivm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// A checkpoint is what the engine must keep to go on after a restart
// without reading its sources' history again: every stored source row and
// the snapshot bookkeeping of each source (Query.applySnapshotAware). The
// groups, their aggregate states and the join indexes are not in it:
// RestoreState rebuilds them by applying the rows again, which is about as
// fast as reading a serialised form of them would be and cannot disagree
// with the rows (float sums are exact, so the order rows are added in does
// not matter).
//
// The format is binary: the magic, then per source its bookkeeping and
// rows, each value tagged with its kind. It is only ever read by the same
// plan (the caller keeps a fingerprint of the plan next to it, see
// CheckpointVersion).

// CheckpointVersion names the checkpoint format; a caller that keys
// checkpoints by plan includes it, so that a checkpoint written by an
// engine of another format is never read.
const CheckpointVersion = "ivm-checkpoint-1"

var checkpointMagic = []byte("CDCQIVM1")

// WriteState writes the query's state (see "A checkpoint" above) to w. It
// must not be called while a batch is half applied; between ApplyBatch
// calls it is always consistent.
func (q *Query) WriteState(w io.Writer) error {
	return q.State().Write(w)
}

// State is the query's state at one moment, as State took it: the rows'
// values are shared with the query (values are immutable, and a stored
// row's values are replaced, never changed in place), so taking it costs
// one pass over the rows, and writing it can run in another goroutine
// while the query goes on.
type State struct {
	sources []stateSource
}

type stateSource struct {
	snapLSN, snapTx int64
	gen             uint32
	resetting       bool
	width           int
	rows            []stateRow
}

type stateRow struct {
	vals Row
	gen  uint32
}

// State takes the query's state for Write. Like WriteState, not while a
// batch is half applied.
func (q *Query) State() *State {
	st := &State{sources: make([]stateSource, len(q.sources))}
	for i, s := range q.sources {
		rows := make([]stateRow, 0, len(s.rows))
		for _, r := range s.rows {
			rows = append(rows, stateRow{vals: r.vals, gen: r.gen})
		}
		st.sources[i] = stateSource{snapLSN: s.snapLSN, snapTx: s.snapTx, gen: s.gen, resetting: s.resetting, width: s.width, rows: rows}
	}
	return st
}

// Write writes the state in the checkpoint format RestoreState reads.
func (st *State) Write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.Write(checkpointMagic)
	var buf []byte
	buf = binary.AppendUvarint(buf[:0], uint64(len(st.sources)))
	bw.Write(buf)
	for _, s := range st.sources {
		buf = binary.AppendVarint(buf[:0], s.snapLSN)
		buf = binary.AppendVarint(buf, s.snapTx)
		buf = binary.AppendUvarint(buf, uint64(s.gen))
		resetting := byte(0)
		if s.resetting {
			resetting = 1
		}
		buf = append(buf, resetting)
		buf = binary.AppendUvarint(buf, uint64(s.width))
		buf = binary.AppendUvarint(buf, uint64(len(s.rows)))
		bw.Write(buf)
		for _, r := range s.rows {
			buf = binary.AppendUvarint(buf[:0], uint64(r.gen))
			for _, v := range r.vals {
				buf = appendStateValue(buf, v)
			}
			if _, err := bw.Write(buf); err != nil {
				return fmt.Errorf("ivm: write state: %w", err)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("ivm: write state: %w", err)
	}
	return nil
}

// appendStateValue appends v: its kind, then what that kind keeps.
func appendStateValue(dst []byte, v Value) []byte {
	dst = append(dst, byte(v.k))
	switch v.k {
	case kindNull, kindUnavailable:
	case kindBool, kindInt, kindTime:
		dst = binary.AppendVarint(dst, v.i)
	case kindFloat4, kindFloat8:
		dst = binary.LittleEndian.AppendUint64(dst, uint64(v.i))
	case kindDate, kindTimestamp, kindTimestamptz:
		dst = append(dst, v.form)
		dst = binary.AppendVarint(dst, v.i)
	case kindNumeric:
		dst = append(dst, v.form)
		dst = binary.AppendVarint(dst, int64(v.scale))
		if v.b == nil {
			dst = append(dst, 0)
			dst = binary.AppendVarint(dst, v.i)
		} else {
			sign := byte(1)
			if v.b.Sign() < 0 {
				sign = 2
			}
			dst = append(dst, sign)
			mag := v.b.Bytes()
			dst = binary.AppendUvarint(dst, uint64(len(mag)))
			dst = append(dst, mag...)
		}
	default: // kindText, kindChar, kindBytes
		dst = binary.AppendUvarint(dst, uint64(len(v.s)))
		dst = append(dst, v.s...)
	}
	return dst
}

// errBadState says a checkpoint is not one this plan wrote.
var errBadState = errors.New("ivm: the checkpoint does not fit the query")

// RestoreState reads a state WriteState wrote for the same plan into a
// query that has applied nothing yet, and reports its result as the one
// last reported (the next Flush returns only later changes; Snapshot
// returns the restored result). On an error the query must be thrown
// away.
func (q *Query) RestoreState(r io.Reader) error {
	for _, s := range q.sources {
		if len(s.rows) > 0 {
			return errors.New("ivm: restore into a query that already applied changes")
		}
	}
	br := bufio.NewReaderSize(r, 1<<20)
	magic := make([]byte, len(checkpointMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != string(checkpointMagic) {
		return fmt.Errorf("%w: no checkpoint header", errBadState)
	}
	d := stateReader{r: br}
	if n := d.uvarint(); d.err == nil && n != uint64(len(q.sources)) {
		return fmt.Errorf("%w: %d sources, the query has %d", errBadState, n, len(q.sources))
	}
	for _, s := range q.sources {
		snapLSN, snapTx := d.varint(), d.varint()
		gen := uint32(d.uvarint())
		resetting := d.byte() == 1
		width, n := d.uvarint(), d.uvarint()
		if d.err != nil {
			return d.err
		}
		if width != uint64(s.width) {
			return fmt.Errorf("%w: %s has %d columns, the checkpoint %d", errBadState, s.src.Alias, s.width, width)
		}
		if n > uint64(len(s.rows)) {
			// Room for the rows at once (a wrong count only costs memory
			// until the end of the data shows it wrong).
			s.rows = make(map[string]*srow, min(n, reserveMax))
		}
		for range n {
			rowGen := uint32(d.uvarint())
			row := make(Row, s.width)
			for i := range row {
				row[i] = d.value()
			}
			if d.err != nil {
				return d.err
			}
			// upsert stamps the row with the source's generation.
			s.gen = rowGen
			if err := q.upsert(s, Change{Op: OpInsert, After: row}); err != nil {
				return fmt.Errorf("ivm: restore a row of %s: %w", s.src.Alias, err)
			}
		}
		s.snapLSN, s.snapTx, s.gen, s.resetting = snapLSN, snapTx, gen, resetting
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: data after the last source", errBadState)
	}
	if _, err := q.Flush(); err != nil {
		return fmt.Errorf("ivm: restore: %w", err)
	}
	return nil
}

// stateReader reads the pieces of a checkpoint, keeping the first error.
type stateReader struct {
	r   *bufio.Reader
	err error
	buf []byte
}

func (d *stateReader) fail(err error) {
	if d.err == nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		d.err = fmt.Errorf("%w: %v", errBadState, err)
	}
}

func (d *stateReader) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(d.r)
	if err != nil {
		d.fail(err)
	}
	return v
}

func (d *stateReader) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(d.r)
	if err != nil {
		d.fail(err)
	}
	return v
}

func (d *stateReader) byte() byte {
	if d.err != nil {
		return 0
	}
	b, err := d.r.ReadByte()
	if err != nil {
		d.fail(err)
	}
	return b
}

// bytes reads n bytes into a buffer reused by the next call.
func (d *stateReader) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > 1<<30 {
		d.fail(fmt.Errorf("a value of %d bytes", n))
		return nil
	}
	if uint64(cap(d.buf)) < n {
		d.buf = make([]byte, n)
	}
	b := d.buf[:n]
	if _, err := io.ReadFull(d.r, b); err != nil {
		d.fail(err)
		return nil
	}
	return b
}

// value reads one value appendStateValue wrote.
func (d *stateReader) value() Value {
	k := kind(d.byte())
	v := Value{k: k}
	switch k {
	case kindNull, kindUnavailable:
	case kindBool, kindInt, kindTime:
		v.i = d.varint()
	case kindFloat4, kindFloat8:
		if b := d.bytes(8); b != nil {
			v.i = int64(binary.LittleEndian.Uint64(b))
		}
	case kindDate, kindTimestamp, kindTimestamptz:
		v.form = d.byte()
		v.i = d.varint()
	case kindNumeric:
		v.form = d.byte()
		v.scale = int32(d.varint())
		switch sign := d.byte(); sign {
		case 0:
			v.i = d.varint()
		case 1, 2:
			v.b = new(big.Int).SetBytes(d.bytes(d.uvarint()))
			if sign == 2 {
				v.b.Neg(v.b)
			}
		default:
			d.fail(fmt.Errorf("a numeric with sign tag %d", sign))
		}
	case kindText, kindChar, kindBytes:
		v.s = string(d.bytes(d.uvarint()))
	default:
		d.fail(fmt.Errorf("unknown value kind %d", k))
	}
	return v
}
