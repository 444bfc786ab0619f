package ivm

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/cdcq/cdcq/internal/sqlplan"
)

// Op is what a Change does to its source.
type Op uint8

// The operations. The zero Op (OpNone) changes nothing: it is what a
// tombstone record decodes to.
const (
	OpNone Op = iota
	// OpInsert inserts a row, or replaces the row with its primary key
	// (Debezium "c" and the snapshot's "r"): replaying a change after a
	// restart is harmless.
	OpInsert
	// OpUpdate replaces the row with the before image's primary key (or
	// the after image's, when there is no before image) by After.
	OpUpdate
	// OpDelete deletes the row with the primary key of Before (or Key); a
	// key the engine does not hold is ignored.
	OpDelete
	// OpTruncate deletes every row of the source.
	OpTruncate
)

func (o Op) String() string {
	switch o {
	case OpNone:
		return "none"
	case OpInsert:
		return "insert"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	case OpTruncate:
		return "truncate"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Change is one change to a source. Rows hold a value for each of the
// source's Columns (Source.Columns order).
//
// The engine keeps every row it has seen by primary key, so it never
// needs a before image's other columns: a delete or an update retracts the
// row stored under the before image's key. That is what makes tables with
// REPLICA IDENTITY DEFAULT work (Debezium sends no before image for their
// updates and only the key for their deletes).
type Change struct {
	Op Op
	// Before identifies the old row by its primary key columns (other
	// columns are not read; DecodeChange fills only the key columns). Nil
	// when the record has no before image.
	Before Row
	// After is the new row, for OpInsert and OpUpdate. Apply keeps it:
	// do not modify it afterwards.
	After Row
	// Key holds the primary key values (Source.PrimaryKey order) from the
	// record key; Apply uses it for a delete without a before image.
	// DecodeChange sets it for deletes.
	Key Row
	// Snapshot says whether the change is a snapshot read and where in
	// its snapshot (source.snapshot of an "r" record); LSN and TxID are
	// the record's source.lsn and source.txId (0 when absent), which name
	// the snapshot. DecodeChange sets them for snapshot reads only; Apply
	// uses them to notice a new snapshot of a table (see the package
	// documentation, "Snapshots").
	Snapshot SnapshotPos
	LSN      int64
	TxID     int64
}

// SnapshotPos is a record's place in a snapshot of its table, from
// Debezium's source.snapshot.
type SnapshotPos uint8

const (
	// NotSnapshot: a streamed change ("false", or no marker), or a read
	// of an incremental snapshot ("incremental"), which Debezium
	// interleaves with streamed changes.
	NotSnapshot SnapshotPos = iota
	// InSnapshot: a record of a snapshot other than its table's last
	// ("true", "first", "first_in_data_collection").
	InSnapshot
	// SnapshotEnd: the table's last record in the snapshot
	// ("last_in_data_collection", "last").
	SnapshotEnd
)

// snapshotPos reads a source.snapshot value.
func snapshotPos(marker []byte) SnapshotPos {
	switch string(marker) {
	case "true", "first", "first_in_data_collection":
		return InSnapshot
	case "last", "last_in_data_collection":
		return SnapshotEnd
	}
	return NotSnapshot
}

// SchemaError reports a change record that does not fit the columns the
// plan reads from its table: the table's schema changed under the query
// (ALTER TABLE ... RENAME COLUMN, DROP COLUMN, ALTER COLUMN ... TYPE).
// Decode returns it, and no Change, for a record whose after image lacks a
// field for one of the source's Columns, whose before image or key lacks a
// primary key field, or that holds a value that does not read as its
// column's type. Fields the plan does not read (an added column, say) are
// no problem, nor is a field that is present with null.
//
// The record cannot be applied correctly: a missing column would read as
// NULL and move the row into the wrong group. A caller that gets one should
// stop the query before applying anything more of its table.
type SchemaError struct {
	Topic string // the source's Topic, "<schema>.<table>"
	// Table is the table's name, qualified by its schema unless that is
	// public.
	Table  string
	Column string // the column's database name
	// Problem says what is wrong with the column, following "change record
	// of <Table> ".
	Problem string
	// Err is the error reading the value, for a value that does not read
	// as its column's type; nil for a missing field.
	Err error
}

func (e *SchemaError) Error() string {
	msg := "change record of " + e.Table + " " + e.Problem
	if e.Err != nil {
		msg += " (" + e.Err.Error() + ")"
	}
	return msg
}

func (e *SchemaError) Unwrap() error { return e.Err }

// Decoder reads the Debezium records of one source of a plan. It is not
// safe for concurrent use.
type Decoder struct {
	src     *sqlplan.Source
	table   string // the table as SchemaError names it
	width   int
	fields  map[string]int
	codecs  []colCodec
	pk      []int // column index of each primary key column
	isKey   []bool
	seen    []uint64 // the columns the image being read has a field for, a bit each
	arena   []byte
	strRefs []strRef
}

// image is which part of a record a row object is.
type image uint8

const (
	afterImage  image = iota // all of the source's Columns are read
	beforeImage              // only the primary key columns are read
	keyImage                 // the record key: only the primary key columns
)

type colCodec struct {
	k      kind
	typ    sqlplan.Type
	opaque bool // a type the engine only tests for NULL: the value is kept as its JSON text
}

type strRef struct{ col, start, end int }

// NewDecoder returns a decoder for plan.Sources[source].
func NewDecoder(plan *sqlplan.Plan, source int) (*Decoder, error) {
	if source < 0 || source >= len(plan.Sources) {
		return nil, fmt.Errorf("ivm: source %d does not exist (the plan has %d)", source, len(plan.Sources))
	}
	src := &plan.Sources[source]
	d := &Decoder{
		src:    src,
		width:  len(src.Columns),
		fields: make(map[string]int, len(src.Columns)),
		codecs: make([]colCodec, len(src.Columns)),
		isKey:  make([]bool, len(src.Columns)),
		seen:   make([]uint64, (len(src.Columns)+63)/64),
		table:  src.Name,
	}
	if src.Schema != "" && src.Schema != "public" {
		d.table = src.Schema + "." + src.Name
	}
	for i, c := range src.Columns {
		d.fields[c.Name] = i
		k, err := kindOf(c.Type)
		d.codecs[i] = colCodec{k: k, typ: c.Type, opaque: err != nil}
	}
	for _, name := range src.PrimaryKey {
		i, ok := d.fields[name]
		if !ok {
			return nil, fmt.Errorf("ivm: source %s: primary key column %s is not among its columns", src.Alias, name)
		}
		d.pk = append(d.pk, i)
		d.isKey[i] = true
	}
	return d, nil
}

// DecodeChange reads one Debezium record of plan.Sources[source]: key is
// the record key (the primary key object), value the change event
// envelope, both JSON as Debezium's JsonConverter (schemas.enable=false,
// or true: a "payload" wrapper is read through) and internal/dbzjson write
// them. A tombstone (nil value) gives a Change with OpNone. Only the
// source's Columns are read; other fields are skipped. For many records
// use a Decoder (or Query.Decode), built once.
//
// A record that does not fit the source's columns (its table's schema
// changed) gives a *SchemaError and no Change.
func DecodeChange(plan *sqlplan.Plan, source int, key, value []byte) (Change, error) {
	d, err := NewDecoder(plan, source)
	if err != nil {
		return Change{}, err
	}
	return d.Decode(key, value)
}

// Decode reads one record; see DecodeChange.
func (d *Decoder) Decode(key, value []byte) (Change, error) {
	if value == nil {
		return Change{}, nil
	}
	var ch Change
	var op byte
	sc := scanner{b: value}
	if sc.literal("null") {
		return Change{}, nil
	}
	var source []byte
	if err := d.envelope(&sc, &ch, &op, &source, 0); err != nil {
		if se, ok := err.(*SchemaError); ok {
			return Change{}, se
		}
		return Change{}, fmt.Errorf("decode %s record: %w", d.src.Topic, err)
	}
	if op != 't' && key != nil {
		if err := d.checkKey(key); err != nil {
			return Change{}, err
		}
	}
	switch op {
	case 'r':
		ch.Op = OpInsert
		// Only snapshot reads need the source block: streamed changes
		// skip it.
		if source != nil {
			if err := readSnapshotSource(source, &ch); err != nil {
				return Change{}, fmt.Errorf("decode %s record: source: %w", d.src.Topic, err)
			}
		}
	case 'c':
		ch.Op = OpInsert
	case 'u':
		ch.Op = OpUpdate
	case 'd':
		ch.Op = OpDelete
		if key != nil {
			k, err := d.decodeKey(key)
			if err != nil {
				if se, ok := err.(*SchemaError); ok {
					return Change{}, se
				}
				return Change{}, fmt.Errorf("decode %s record key: %w", d.src.Topic, err)
			}
			ch.Key = k
		}
		if ch.Before == nil && ch.Key == nil {
			return Change{}, fmt.Errorf("decode %s record: a delete with neither a before image nor a key", d.src.Topic)
		}
	case 't':
		ch = Change{Op: OpTruncate}
	case 0:
		return Change{}, fmt.Errorf("decode %s record: no op field", d.src.Topic)
	default:
		return Change{}, fmt.Errorf("decode %s record: unknown op %q", d.src.Topic, op)
	}
	if (ch.Op == OpInsert || ch.Op == OpUpdate) && ch.After == nil {
		return Change{}, fmt.Errorf("decode %s record: op %q without an after image", d.src.Topic, op)
	}
	return ch, nil
}

// envelope reads the envelope's images and op, and leaves in source the
// source block's JSON (nil when there is none).
func (d *Decoder) envelope(sc *scanner, ch *Change, op *byte, source *[]byte, depth int) error {
	return sc.objectFields(func(name []byte) error {
		switch string(name) {
		case "source":
			if sc.peek() != '{' {
				return sc.skip()
			}
			start := sc.i
			if err := sc.skip(); err != nil {
				return err
			}
			*source = sc.b[start:sc.i]
			return nil
		case "before":
			row, err := d.row(sc, beforeImage)
			ch.Before = row
			return err
		case "after":
			row, err := d.row(sc, afterImage)
			ch.After = row
			return err
		case "op":
			raw, _, err := sc.rawString()
			if err != nil {
				return err
			}
			if len(raw) != 1 {
				return fmt.Errorf("unknown op %q", raw)
			}
			*op = raw[0]
			return nil
		case "payload":
			if depth == 0 && sc.peek() == '{' {
				return d.envelope(sc, ch, op, source, depth+1)
			}
		}
		return sc.skip()
	})
}

// readSnapshotSource reads source.snapshot, source.lsn and source.txId of
// a snapshot read into ch. A boolean snapshot (Debezium before 2.0 wrote
// true) counts as a snapshot record.
func readSnapshotSource(source []byte, ch *Change) error {
	sc := scanner{b: source}
	return sc.objectFields(func(name []byte) error {
		switch string(name) {
		case "snapshot":
			switch {
			case sc.literal("true"):
				ch.Snapshot = InSnapshot
				return nil
			case sc.peek() == '"':
				raw, _, err := sc.rawString()
				ch.Snapshot = snapshotPos(raw)
				return err
			}
		case "lsn":
			return readSourceInt(&sc, "lsn", &ch.LSN)
		case "txId":
			return readSourceInt(&sc, "txId", &ch.TxID)
		}
		return sc.skip()
	})
}

// readSourceInt reads an integer field of the source block; null and
// other values leave dst as it is.
func readSourceInt(sc *scanner, field string, dst *int64) error {
	if c := sc.peek(); c != '-' && (c < '0' || c > '9') {
		return sc.skip()
	}
	raw, err := sc.number()
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(str(raw), 10, 64)
	if err != nil {
		return fmt.Errorf("%s %q: %w", field, raw, err)
	}
	*dst = n
	return nil
}

// row reads a row object (or null): all of the source's Columns for the
// after image, only the primary key columns for the others. An object
// without a field for one of them is a *SchemaError.
func (d *Decoder) row(sc *scanner, img image) (Row, error) {
	if sc.literal("null") {
		return nil, nil
	}
	keyOnly := img != afterImage
	row := make(Row, d.width)
	d.arena = d.arena[:0]
	d.strRefs = d.strRefs[:0]
	clear(d.seen)
	seen := 0
	err := sc.objectFields(func(name []byte) error {
		i, ok := d.fields[string(name)]
		if !ok || keyOnly && !d.isKey[i] {
			return sc.skip()
		}
		if w, bit := i>>6, uint64(1)<<(i&63); d.seen[w]&bit == 0 {
			d.seen[w] |= bit
			seen++
		}
		start := sc.i
		v, err := d.value(sc, i)
		if err != nil {
			return d.valueError(sc.b, start, i, err)
		}
		if v.k == kindNull && img == afterImage && !d.src.Columns[i].Nullable {
			c := d.src.Columns[i].Name
			return &SchemaError{Topic: d.src.Topic, Table: d.table, Column: c,
				Problem: "has NULL in column " + c + ", which the Prisma schema declares required: the column allows NULL now"}
		}
		row[i] = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	want := d.width
	if keyOnly {
		want = len(d.pk)
	}
	if seen != want {
		return nil, d.missingField(img)
	}
	if len(d.strRefs) > 0 {
		all := string(d.arena)
		for _, r := range d.strRefs {
			row[r.col].s = all[r.start:r.end]
		}
	}
	return row, nil
}

// missingField returns the *SchemaError for an image without a field for
// one of the columns it must have (the first in the source's order).
func (d *Decoder) missingField(img image) error {
	col := ""
	for i, c := range d.src.Columns {
		if d.seen[i>>6]&(1<<(i&63)) == 0 && (img == afterImage || d.isKey[i]) {
			col = c.Name
			break
		}
	}
	var problem string
	switch img {
	case afterImage:
		problem = "has no field " + col + ": the column was renamed or dropped"
	case beforeImage:
		problem = "has a before image without the key field " + col + ": the column was renamed or dropped"
	default:
		problem = "has a key without the field " + col + ": the column was renamed or dropped"
	}
	return &SchemaError{Topic: d.src.Topic, Table: d.table, Column: col, Problem: problem}
}

// valueError returns the error for the value of column col at b[start:]
// that d.value could not read. A well-formed JSON value that does not read
// as the column's type means the column's type changed: that is a
// *SchemaError wrapping err. Malformed JSON is not.
func (d *Decoder) valueError(b []byte, start, col int, err error) error {
	name := d.src.Columns[col].Name
	sc := scanner{b: b, i: start}
	sc.ws()
	from := sc.i
	if sc.skip() != nil {
		return fmt.Errorf("column %s: %w", name, err)
	}
	raw := b[from:sc.i]
	if raw[0] == '"' {
		if _, uerr := appendUnescaped(nil, raw[1:len(raw)-1]); uerr != nil {
			return fmt.Errorf("column %s: %w", name, err)
		}
	}
	const maxShown = 40
	shown := string(raw)
	if len(raw) > maxShown {
		n := maxShown
		for n > 0 && !utf8.RuneStart(raw[n]) {
			n--
		}
		shown = string(raw[:n]) + "..."
	}
	return &SchemaError{
		Topic:   d.src.Topic,
		Table:   d.table,
		Column:  name,
		Problem: "has value " + shown + " for column " + name + ", which does not read as " + d.codecs[col].typ.String() + ": the column's type changed?",
		Err:     err,
	}
}

// decodeKey reads the record key into primary key order.
func (d *Decoder) decodeKey(key []byte) (Row, error) {
	sc := scanner{b: key}
	if sc.literal("null") {
		return nil, nil
	}
	if sc.peek() == '{' {
		if inner, _ := keyPayload(key); inner != nil {
			sc = scanner{b: inner}
		}
	}
	full, err := d.row(&sc, keyImage)
	if err != nil || full == nil {
		return nil, err
	}
	out := make(Row, len(d.pk))
	for j, i := range d.pk {
		out[j] = full[i]
	}
	return out, nil
}

// checkKey refuses a record key whose fields are not the source's primary
// key columns: the table's primary key changed (or was dropped, which
// leaves records without a key). It allocates nothing.
func (d *Decoder) checkKey(key []byte) error {
	sc := scanner{b: key}
	if sc.literal("null") {
		return &SchemaError{Topic: d.src.Topic, Table: d.table,
			Problem: "has no key: the table's primary key was dropped"}
	}
	var other []byte
	fields := 0
	check := func(sc *scanner) error {
		return sc.objectFields(func(name []byte) error {
			fields++
			if i, ok := d.fields[string(name)]; (!ok || !d.isKey[i]) && other == nil {
				other = name
			}
			return sc.skip()
		})
	}
	if sc.peek() != '{' {
		return nil // not an object: Decode reads it as before
	}
	inner, nullPayload := keyPayload(key)
	switch {
	case nullPayload:
		return &SchemaError{Topic: d.src.Topic, Table: d.table,
			Problem: "has no key: the table's primary key was dropped"}
	case inner != nil:
		sc = scanner{b: inner}
	}
	if err := check(&sc); err != nil {
		return nil // malformed: decodeKey reports it where it reads the key
	}
	switch {
	case other != nil:
		return &SchemaError{Topic: d.src.Topic, Table: d.table, Column: string(other),
			Problem: "has a key with the field " + string(other) + ", which is not in the primary key (" + strings.Join(d.src.PrimaryKey, ", ") + "): the table's primary key changed"}
	case fields < len(d.pk):
		return &SchemaError{Topic: d.src.Topic, Table: d.table,
			Problem: "has a key without every primary key field (" + strings.Join(d.src.PrimaryKey, ", ") + "): the table's primary key changed"}
	}
	return nil
}

// keyPayload reads the "payload" of a key object that a schemas.enable=true
// converter wrapped: the inner object, or null (nullPayload). Both are
// empty for a key that is not so wrapped.
func keyPayload(key []byte) (inner []byte, nullPayload bool) {
	sc := scanner{b: key}
	_ = sc.objectFields(func(name []byte) error {
		if string(name) == "payload" {
			switch {
			case sc.literal("null"):
				nullPayload = true
				return nil
			case sc.peek() == '{':
				start := sc.i
				if err := sc.skip(); err != nil {
					return err
				}
				inner = key[start:sc.i]
				return nil
			}
		}
		return sc.skip()
	})
	return inner, nullPayload
}

// fractionDigits counts the digits after the point of a plain decimal
// number; ok is false for other text (NaN, Infinity, an exponent).
func fractionDigits(raw []byte) (int, bool) {
	dot := -1
	for i, c := range raw {
		switch {
		case c == '.':
			dot = i
		case c >= '0' && c <= '9', c == '-' && i == 0:
		default:
			return 0, false
		}
	}
	if dot < 0 {
		return 0, true
	}
	return len(raw) - dot - 1, true
}

// str is a transient string view of b, for parsers that do not keep it.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// value reads one column value.
func (d *Decoder) value(sc *scanner, col int) (Value, error) {
	c := &d.codecs[col]
	switch sc.peek() {
	case 'n':
		if sc.literal("null") {
			return Value{}, nil
		}
	case 0:
		return Value{}, errJSONEnd
	}
	if c.opaque {
		start := sc.i
		if err := sc.skip(); err != nil {
			return Value{}, err
		}
		d.strRefs = append(d.strRefs, strRef{col, len(d.arena), len(d.arena) + sc.i - start})
		d.arena = append(d.arena, sc.b[start:sc.i]...)
		return Value{k: kindText}, nil
	}
	switch c.k {
	case kindInt:
		// Debezium writes integers as JSON numbers only: a string is a
		// column whose type changed.
		raw, err := sc.number()
		if err != nil {
			return Value{}, err
		}
		n, err := strconv.ParseInt(str(raw), 10, 64)
		if err != nil {
			return Value{}, fmt.Errorf("integer %q: %w", raw, err)
		}
		return IntValue(n), nil
	case kindBool:
		switch {
		case sc.literal("true"):
			return BoolValue(true), nil
		case sc.literal("false"):
			return BoolValue(false), nil
		}
		return Value{}, sc.errorf("expected a boolean")
	case kindNumeric:
		quoted := sc.peek() == '"'
		raw, err := d.scalarText(sc)
		if err != nil {
			return Value{}, err
		}
		if t := c.typ; quoted && t.Precision != sqlplan.NoPrecision && t.Scale > 0 {
			// Debezium (decimal.handling.mode=string) writes a
			// numeric(p,s) value with exactly s fractional digits; fewer
			// means the column's scale was
			// lowered, which rounded every stored value.
			if digits, ok := fractionDigits(raw); ok && digits < t.Scale {
				return Value{}, fmt.Errorf("numeric %q has %d fractional digits, fewer than the column's %d", raw, digits, t.Scale)
			}
		}
		v, err := parseDec(str(raw))
		if err != nil {
			return Value{}, fmt.Errorf("numeric %q: %w", raw, err)
		}
		return numericValue(v), nil
	case kindFloat4, kindFloat8:
		raw, err := d.scalarText(sc)
		if err != nil {
			return Value{}, err
		}
		bitSize := 64
		if c.k == kindFloat4 {
			bitSize = 32
		}
		f, err := strconv.ParseFloat(str(raw), bitSize)
		if err != nil {
			var ok bool
			if f, ok = parseFloatText(str(raw)); !ok {
				return Value{}, fmt.Errorf("float %q: %w", raw, err)
			}
		}
		if c.k == kindFloat4 {
			return float4Value(float32(f)), nil
		}
		return Float8Value(f), nil
	}
	// The remaining kinds are JSON strings.
	raw, escaped, err := sc.rawString()
	if err != nil {
		return Value{}, err
	}
	if string(raw) == "__debezium_unavailable_value" {
		return Value{k: kindUnavailable}, nil
	}
	switch c.k {
	case kindText, kindChar:
		start := len(d.arena)
		if escaped {
			if d.arena, err = appendUnescaped(d.arena, raw); err != nil {
				return Value{}, err
			}
		} else {
			d.arena = append(d.arena, raw...)
		}
		d.strRefs = append(d.strRefs, strRef{col, start, len(d.arena)})
		return Value{k: c.k}, nil
	case kindBytes:
		start := len(d.arena)
		n := base64.StdEncoding.DecodedLen(len(raw))
		d.arena = append(d.arena, make([]byte, n)...)
		m, err := base64.StdEncoding.Decode(d.arena[start:], raw)
		if err != nil {
			return Value{}, fmt.Errorf("bytea %q: %w", raw, err)
		}
		d.arena = d.arena[:start+m]
		d.strRefs = append(d.strRefs, strRef{col, start, start + m})
		return Value{k: kindBytes}, nil
	case kindDate:
		return parseDbzDate(string(raw))
	case kindTime:
		return parseDbzTime(str(raw))
	case kindTimestamp, kindTimestamptz:
		return parseDbzTimestamp(str(raw), c.k)
	}
	return Value{}, fmt.Errorf("unexpected JSON string for a %s column", c.typ)
}

// scalarText returns the text of a number, or of a string (the special
// float and numeric values).
func (d *Decoder) scalarText(sc *scanner) ([]byte, error) {
	if sc.peek() == '"' {
		raw, _, err := sc.rawString()
		return raw, err
	}
	return sc.number()
}
