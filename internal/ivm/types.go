package ivm

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cdcq/cdcq/internal/sqlplan"
)

// kindOf returns how values of a plan type are held, or an error for the
// types the engine does not compute with.
func kindOf(t sqlplan.Type) (kind, error) {
	if t.Array {
		return 0, fmt.Errorf("type %s: arrays are not supported by the embedded engine", t)
	}
	switch t.Kind {
	case sqlplan.KindSmallint, sqlplan.KindInteger, sqlplan.KindBigint:
		return kindInt, nil
	case sqlplan.KindNumeric:
		return kindNumeric, nil
	case sqlplan.KindReal:
		return kindFloat4, nil
	case sqlplan.KindDouble:
		return kindFloat8, nil
	case sqlplan.KindBoolean:
		return kindBool, nil
	case sqlplan.KindText, sqlplan.KindVarchar, sqlplan.KindUUID, sqlplan.KindEnum,
		sqlplan.KindJSON, sqlplan.KindJSONB:
		return kindText, nil
	case sqlplan.KindChar:
		return kindChar, nil
	case sqlplan.KindBytea:
		return kindBytes, nil
	case sqlplan.KindDate:
		return kindDate, nil
	case sqlplan.KindTimestamp:
		return kindTimestamp, nil
	case sqlplan.KindTimestamptz:
		return kindTimestamptz, nil
	case sqlplan.KindTime:
		return kindTime, nil
	case sqlplan.KindInterval:
		return 0, fmt.Errorf("type interval is not supported by the embedded engine (Debezium sends intervals as microseconds, which loses months and days)")
	case sqlplan.KindTimetz:
		return 0, fmt.Errorf("type timetz is not supported by the embedded engine (Debezium sends it shifted to UTC, which loses its offset)")
	}
	return 0, fmt.Errorf("type %s is not supported by the embedded engine", t)
}

// equatable reports whether the engine compares values of t for equality
// exactly as PostgreSQL does. json has no equality, and jsonb's (numbers by
// value inside documents) is not the equality of its text.
func equatable(t sqlplan.Type) bool {
	if _, err := kindOf(t); err != nil {
		return false
	}
	return t.Kind != sqlplan.KindJSON && t.Kind != sqlplan.KindJSONB
}

// orderable reports whether the engine orders values of t as PostgreSQL
// does. Enums order by their declaration, which the plan does not carry.
func orderable(t sqlplan.Type) bool {
	return equatable(t) && t.Kind != sqlplan.KindEnum
}

// intRange returns the bounds of an integer type.
func intRange(k sqlplan.Kind) (int64, int64, string) {
	switch k {
	case sqlplan.KindSmallint:
		return math.MinInt16, math.MaxInt16, "smallint out of range"
	case sqlplan.KindInteger:
		return math.MinInt32, math.MaxInt32, "integer out of range"
	}
	return math.MinInt64, math.MaxInt64, "bigint out of range"
}

// parseText reads PostgreSQL's text form of a value of type t.
func parseText(t sqlplan.Type, s string) (Value, error) {
	k, err := kindOf(t)
	if err != nil {
		return Value{}, err
	}
	bad := func() error { return fmt.Errorf("invalid input syntax for type %s: %q", t.Base(), s) }
	switch k {
	case kindInt:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return Value{}, bad()
		}
		lo, hi, msg := intRange(t.Kind)
		if n < lo || n > hi {
			return Value{}, fmt.Errorf("value %q is out of range: %s", s, msg)
		}
		return IntValue(n), nil
	case kindNumeric:
		d, err := parseDec(s)
		if err != nil {
			return Value{}, bad()
		}
		if t.Precision != sqlplan.NoPrecision {
			if d, err = decCoerce(d, t.Precision, t.Scale); err != nil {
				return Value{}, err
			}
		}
		return numericValue(d), nil
	case kindFloat4, kindFloat8:
		f, ok := parseFloatText(s)
		if !ok {
			return Value{}, bad()
		}
		if k == kindFloat4 {
			return float4Value(float32(f)), nil
		}
		return Float8Value(f), nil
	case kindBool:
		b, ok := parseBoolText(s)
		if !ok {
			return Value{}, bad()
		}
		return BoolValue(b), nil
	case kindText:
		return TextValue(s), nil
	case kindChar:
		return charValue(padChar(s, t.Precision)), nil
	case kindBytes:
		if !strings.HasPrefix(s, `\x`) {
			return Value{}, fmt.Errorf("bytea text %q: only the hex format is read", s)
		}
		b, err := hex.DecodeString(s[2:])
		if err != nil {
			return Value{}, bad()
		}
		return Value{k: kindBytes, s: string(b)}, nil
	case kindDate:
		return parseDateText(s)
	case kindTimestamp:
		return parseTimestampText(s, false)
	case kindTimestamptz:
		return parseTimestampText(s, true)
	case kindTime:
		return parseTimeText(s)
	}
	return Value{}, bad()
}

// parseFloatText reads float input, with PostgreSQL's spellings of the
// special values.
func parseFloatText(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "nan":
		return math.NaN(), true
	case "infinity", "+infinity", "inf", "+inf":
		return math.Inf(1), true
	case "-infinity", "-inf":
		return math.Inf(-1), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return f, true
}

// parseBoolText accepts what boolin accepts: t, true, yes, on, 1 and
// their opposites (unique prefixes of the words, in any case).
func parseBoolText(s string) (bool, bool) {
	l := strings.ToLower(strings.TrimSpace(s))
	switch l {
	case "":
		return false, false
	case "1", "on":
		return true, true
	case "0", "of", "off":
		return false, true
	}
	if strings.HasPrefix("true", l) || strings.HasPrefix("yes", l) {
		return true, true
	}
	if strings.HasPrefix("false", l) || strings.HasPrefix("no", l) {
		return false, true
	}
	return false, false
}

// padChar pads s with blanks to n characters (char(n) input); n is
// NoPrecision for bpchar, which is not padded.
func padChar(s string, n int) string {
	if n == sqlplan.NoPrecision {
		return s
	}
	c := utf8.RuneCountInString(s)
	if c >= n {
		return s
	}
	return s + strings.Repeat(" ", n-c)
}

// ParseValue reads PostgreSQL's text form of a value of type t, as psql
// prints it or a literal holds it (DateStyle ISO; timestamptz with an
// offset; bytea in hex).
func ParseValue(t sqlplan.Type, text string) (Value, error) { return parseText(t, text) }
