package ivm

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/cdcq/cdcq/internal/civil"
	"github.com/cdcq/cdcq/internal/floattext"
)

// kind is how a Value is represented. Several PostgreSQL types share a
// kind: the integer types are all kindInt, and text, varchar, uuid, enum
// labels and json text are all kindText (compared byte by byte, which is
// PostgreSQL's order for them under the C collation).
type kind uint8

const (
	kindNull kind = iota
	kindBool
	kindInt         // smallint, integer, bigint: i
	kindNumeric     // numeric: i or b, scale, form
	kindFloat4      // real: i holds the float64 bits of a float32 value
	kindFloat8      // double precision: i holds the float64 bits
	kindText        // text, varchar, uuid, enum, json(b): s
	kindChar        // char(n), bpchar: s with its padding; compared without trailing blanks
	kindBytes       // bytea: s holds the bytes
	kindDate        // days since 1970-01-01 in i; form for ±infinity
	kindTimestamp   // microseconds since 1970-01-01 00:00:00 in i; form for ±infinity
	kindTimestamptz // microseconds since the Unix epoch (UTC) in i; form for ±infinity
	kindTime        // microseconds since midnight in i
	kindUnavailable // an unchanged TOASTed value Debezium did not send
)

// Value is one SQL value of a row or a result: NULL (the zero Value), or a
// value of one of the PostgreSQL types the engine computes with. Values
// are immutable and cheap to copy.
type Value struct {
	k     kind
	form  uint8 // numeric and temporal: formFinite, formNaN, formPosInf, formNegInf
	scale int32 // numeric display scale
	i     int64
	s     string
	b     *big.Int // numeric coefficient that does not fit i
}

// Row is the values of a source row (Source.Columns order), of a group key
// (Plan.GroupBy order) or of a result row (Plan.Outputs order).
type Row []Value

// IsNull reports whether v is SQL NULL.
func (v Value) IsNull() bool { return v.k == kindNull }

// Null is SQL NULL.
var Null = Value{}

// IntValue returns an integer (smallint, integer or bigint) value.
func IntValue(n int64) Value { return Value{k: kindInt, i: n} }

// BoolValue returns a boolean value.
func BoolValue(b bool) Value {
	if b {
		return Value{k: kindBool, i: 1}
	}
	return Value{k: kindBool}
}

// TextValue returns a text value.
func TextValue(s string) Value { return Value{k: kindText, s: s} }

// Float8Value returns a double precision value.
func Float8Value(f float64) Value { return Value{k: kindFloat8, i: int64(math.Float64bits(f))} }

func float4Value(f float32) Value {
	return Value{k: kindFloat4, i: int64(math.Float64bits(float64(f)))}
}

func numericValue(d dec) Value {
	return Value{k: kindNumeric, form: d.form, scale: d.scale, i: d.c, b: d.b}
}

func charValue(s string) Value { return Value{k: kindChar, s: s} }

func (v Value) dec() dec {
	if v.k == kindInt {
		return dec{c: v.i}
	}
	return dec{form: v.form, scale: v.scale, c: v.i, b: v.b}
}

func (v Value) float() float64 {
	switch v.k {
	case kindFloat4, kindFloat8:
		return math.Float64frombits(uint64(v.i))
	case kindInt:
		return float64(v.i)
	case kindNumeric:
		return decToFloat(v.dec())
	}
	return math.NaN()
}

func (v Value) bool() bool { return v.i != 0 }

// trimmed returns a char value without its trailing blanks, which
// PostgreSQL ignores when it compares or casts bpchar.
func (v Value) trimmed() string {
	if v.k == kindChar {
		return strings.TrimRight(v.s, " ")
	}
	return v.s
}

// String returns the value in PostgreSQL's text output format (as psql
// shows it with DateStyle ISO and TimeZone UTC), or "NULL".
func (v Value) String() string {
	if v.k == kindNull {
		return "NULL"
	}
	return string(v.appendText(nil))
}

// appendText writes PostgreSQL's text output of a non-NULL value.
func (v Value) appendText(dst []byte) []byte {
	switch v.k {
	case kindBool:
		if v.bool() {
			return append(dst, 't')
		}
		return append(dst, 'f')
	case kindInt:
		return strconv.AppendInt(dst, v.i, 10)
	case kindNumeric:
		return v.dec().appendText(dst)
	case kindFloat4:
		return floattext.AppendPostgres(dst, v.float(), 32)
	case kindFloat8:
		return floattext.AppendPostgres(dst, v.float(), 64)
	case kindText, kindChar:
		return append(dst, v.s...)
	case kindBytes:
		dst = append(dst, `\x`...)
		return hex.AppendEncode(dst, []byte(v.s))
	case kindDate:
		return appendDateText(dst, v)
	case kindTimestamp:
		return appendTimestampText(dst, v, false)
	case kindTimestamptz:
		return appendTimestampText(dst, v, true)
	case kindTime:
		return civil.AppendClock(dst, v.i, 0)
	case kindUnavailable:
		return append(dst, "__debezium_unavailable_value"...)
	}
	return dst
}

// GoString is for debugging output in tests.
func (v Value) GoString() string {
	if v.k == kindNull {
		return "NULL"
	}
	return fmt.Sprintf("%s(%s)", kindName(v.k), v.String())
}

func kindName(k kind) string {
	return [...]string{"null", "bool", "int", "numeric", "real", "double", "text", "char", "bytea",
		"date", "timestamp", "timestamptz", "time", "unavailable"}[k]
}

// identical reports whether a and b are the same value written the same
// way (1.5 and 1.50 are equal but not identical). Result rows are only
// re-emitted when they are not identical to what was emitted before.
func identical(a, b Value) bool {
	if a.k != b.k || a.form != b.form || a.scale != b.scale || a.i != b.i || a.s != b.s {
		return false
	}
	if (a.b == nil) != (b.b == nil) {
		return false
	}
	return a.b == nil || a.b.Cmp(b.b) == 0
}

func identicalRows(a, b Row) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !identical(a[i], b[i]) {
			return false
		}
	}
	return true
}

// compare orders two non-NULL values of one type family as PostgreSQL
// does: numbers by value (NaN above everything, equal to itself; -0 equals
// 0), strings byte by byte (the C collation), char without trailing
// blanks, temporal values by time with -infinity and infinity at the ends.
func compare(a, b Value) int {
	if a.k == b.k {
		switch a.k {
		case kindInt, kindBool, kindTime:
			return cmpInt(a.i, b.i)
		case kindNumeric:
			return decCmp(a.dec(), b.dec())
		case kindFloat4, kindFloat8:
			return cmpFloat(a.float(), b.float())
		case kindText, kindBytes:
			return strings.Compare(a.s, b.s)
		case kindChar:
			return strings.Compare(a.trimmed(), b.trimmed())
		case kindDate, kindTimestamp, kindTimestamptz:
			if a.form != b.form {
				return cmpInt(int64(temporalRank(a.form)), int64(temporalRank(b.form)))
			}
			return cmpInt(a.i, b.i)
		}
		return 0
	}
	switch {
	case isFloat(a.k) || isFloat(b.k):
		return cmpFloat(a.float(), b.float())
	case isNumber(a.k) && isNumber(b.k):
		return decCmp(a.dec(), b.dec())
	case isString(a.k) && isString(b.k):
		return strings.Compare(a.trimmed(), b.trimmed())
	case a.k == kindDate && b.k == kindTimestamp || a.k == kindTimestamp && b.k == kindDate:
		return compare(dateToTimestamp(a), dateToTimestamp(b))
	}
	return cmpInt(int64(a.k), int64(b.k))
}

func isFloat(k kind) bool  { return k == kindFloat4 || k == kindFloat8 }
func isNumber(k kind) bool { return k == kindInt || k == kindNumeric || isFloat(k) }
func isString(k kind) bool { return k == kindText || k == kindChar }

func temporalRank(form uint8) int {
	switch form {
	case formNegInf:
		return 0
	case formPosInf:
		return 2
	}
	return 1
}

// cmpFloat orders floats as PostgreSQL's float comparison: NaN is equal
// to itself and above everything else.
func cmpFloat(a, b float64) int {
	an, bn := math.IsNaN(a), math.IsNaN(b)
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compareNullsLast orders NULL after every value, as ORDER BY does by
// default.
func compareNullsLast(a, b Value) int {
	switch {
	case a.IsNull() && b.IsNull():
		return 0
	case a.IsNull():
		return 1
	case b.IsNull():
		return -1
	}
	return compare(a, b)
}

// appendKey writes an encoding of v such that two values get the same
// bytes exactly when PostgreSQL considers them equal (NULL equal to NULL,
// as in GROUP BY and DISTINCT). It is self-delimiting, so keys of several
// values can be concatenated.
func appendKey(dst []byte, v Value) []byte {
	switch v.k {
	case kindNull:
		return append(dst, 0)
	case kindBool:
		return append(dst, 1, byte(v.i))
	case kindInt:
		dst = append(dst, 2)
		return binary.BigEndian.AppendUint64(dst, uint64(v.i))
	case kindNumeric:
		d := v.dec().normalized()
		if d.finite() && d.scale == 0 && d.b == nil {
			// Integral numerics hash like integers, so that a join
			// between integer and numeric columns finds its matches.
			dst = append(dst, 2)
			return binary.BigEndian.AppendUint64(dst, uint64(d.c))
		}
		dst = append(dst, 3, d.form)
		dst = binary.AppendUvarint(dst, uint64(d.scale))
		if d.b != nil {
			t := d.b.Text(16)
			dst = binary.AppendUvarint(dst, uint64(len(t)))
			return append(dst, t...)
		}
		dst = append(dst, 0)
		return binary.BigEndian.AppendUint64(dst, uint64(d.c))
	case kindFloat4, kindFloat8:
		f := v.float()
		switch {
		case f == 0:
			f = 0 // -0 equals 0
		case math.IsNaN(f):
			f = math.NaN()
		}
		dst = append(dst, 4)
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(f))
	case kindText, kindChar, kindBytes:
		s := v.trimmed()
		dst = append(dst, 5)
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		return append(dst, s...)
	case kindDate, kindTimestamp, kindTimestamptz, kindTime:
		dst = append(dst, 6+byte(v.k), v.form)
		return binary.BigEndian.AppendUint64(dst, uint64(v.i))
	}
	return append(dst, 0xff)
}

// cloneValue copies the string of a value, so that keeping it does not
// keep the memory of the row it came from.
func cloneValue(v Value) Value {
	if v.s != "" {
		v.s = strings.Clone(v.s)
	}
	return v
}

// rowText is the text of a row, for messages.
func rowText(r Row) string {
	var b bytes.Buffer
	b.WriteByte('(')
	for i, v := range r {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v.String())
	}
	b.WriteByte(')')
	return b.String()
}
