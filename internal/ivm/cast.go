package ivm

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/cdcq/cdcq/internal/civil"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

// castFn returns the conversion of a non-NULL value from one type to
// another, as PostgreSQL's cast does.
func castFn(from, to sqlplan.Type) (func(Value) (Value, error), error) {
	fk, err := kindOf(from)
	if err != nil && !(from.Kind == sqlplan.KindJSON || from.Kind == sqlplan.KindJSONB) {
		return nil, err
	}
	tk, err := kindOf(to)
	if err != nil {
		return nil, err
	}
	none := fmt.Errorf("cast from %s to %s is not supported by the embedded engine", from, to)
	switch tk {
	case kindInt:
		lo, hi, msg := intRange(to.Kind)
		rangeErr := errors.New(msg)
		switch fk {
		case kindInt:
			return func(v Value) (Value, error) {
				if v.i < lo || v.i > hi {
					return Value{}, rangeErr
				}
				return v, nil
			}, nil
		case kindNumeric:
			return func(v Value) (Value, error) {
				if v.form == formNaN {
					return Value{}, fmt.Errorf("cannot convert NaN to %s", to.Kind)
				}
				if v.form != formFinite {
					return Value{}, fmt.Errorf("cannot convert infinity to %s", to.Kind)
				}
				n, ok := decToInt64(v.dec())
				if !ok || n < lo || n > hi {
					return Value{}, rangeErr
				}
				return IntValue(n), nil
			}, nil
		case kindFloat4, kindFloat8:
			return func(v Value) (Value, error) {
				f := math.RoundToEven(v.float())
				// float64(hi) rounds up for bigint; the bound is exclusive
				// then, as in PostgreSQL's FLOAT8_FITS_IN_INT64.
				if math.IsNaN(f) || f < float64(lo) || f >= -float64(lo) || f > float64(hi) {
					return Value{}, rangeErr
				}
				return IntValue(int64(f)), nil
			}, nil
		case kindBool:
			if to.Kind == sqlplan.KindInteger {
				return func(v Value) (Value, error) { return IntValue(v.i), nil }, nil
			}
		case kindText, kindChar:
			return func(v Value) (Value, error) { return parseText(to, v.trimmed()) }, nil
		}
	case kindNumeric:
		coerce := func(d dec) (Value, error) {
			if to.Precision != sqlplan.NoPrecision {
				var err error
				if d, err = decCoerce(d, to.Precision, to.Scale); err != nil {
					return Value{}, err
				}
			}
			return numericValue(d), nil
		}
		switch fk {
		case kindInt, kindNumeric:
			return func(v Value) (Value, error) { return coerce(v.dec()) }, nil
		case kindFloat4, kindFloat8:
			digits := 15
			if fk == kindFloat4 {
				digits = 6
			}
			return func(v Value) (Value, error) {
				d, err := decFromFloat(v.float(), digits)
				if err != nil {
					return Value{}, err
				}
				return coerce(d)
			}, nil
		case kindText, kindChar:
			return func(v Value) (Value, error) { return parseText(to, v.trimmed()) }, nil
		}
	case kindFloat4, kindFloat8:
		toFloat := func(f float64, exact bool) (Value, error) {
			if tk == kindFloat8 {
				return Float8Value(f), nil
			}
			r := float32(f)
			if exact {
				// PostgreSQL reads the text with strtof: round once.
				g, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'g', -1, 64), 32)
				r = float32(g)
			}
			if math.IsInf(float64(r), 0) && !math.IsInf(f, 0) {
				return Value{}, errFloatOverflow
			}
			if r == 0 && f != 0 {
				return Value{}, errFloatUnderflow
			}
			return float4Value(r), nil
		}
		switch fk {
		case kindInt:
			return func(v Value) (Value, error) { return toFloat(float64(v.i), false) }, nil
		case kindNumeric:
			return func(v Value) (Value, error) {
				if tk == kindFloat4 && v.form == formFinite {
					g, err := strconv.ParseFloat(v.dec().String(), 32)
					if err != nil {
						return Value{}, errFloatOverflow
					}
					return toFloat(g, false)
				}
				return toFloat(decToFloat(v.dec()), false)
			}, nil
		case kindFloat4, kindFloat8:
			return func(v Value) (Value, error) { return toFloat(v.float(), false) }, nil
		case kindText, kindChar:
			return func(v Value) (Value, error) { return parseText(to, v.trimmed()) }, nil
		}
	case kindBool:
		switch fk {
		case kindBool:
			return func(v Value) (Value, error) { return v, nil }, nil
		case kindInt:
			if from.Kind == sqlplan.KindInteger {
				return func(v Value) (Value, error) { return BoolValue(v.i != 0), nil }, nil
			}
		case kindText, kindChar:
			return func(v Value) (Value, error) { return parseText(to, v.trimmed()) }, nil
		}
	case kindText:
		if to.Kind == sqlplan.KindEnum || to.Kind == sqlplan.KindJSON || to.Kind == sqlplan.KindJSONB {
			if fk == kindText && from.Kind == to.Kind && from.Name == to.Name {
				return func(v Value) (Value, error) { return v, nil }, nil
			}
			return nil, none
		}
		if to.Kind == sqlplan.KindUUID {
			if from.Kind == sqlplan.KindUUID {
				return func(v Value) (Value, error) { return v, nil }, nil
			}
			if fk == kindText || fk == kindChar {
				return func(v Value) (Value, error) {
					u, ok := sqlplan.CanonicalUUID(v.trimmed())
					if !ok {
						return Value{}, fmt.Errorf("invalid input syntax for type uuid: %q", v.trimmed())
					}
					return TextValue(u), nil
				}, nil
			}
			return nil, none
		}
		limit := -1
		if to.Kind == sqlplan.KindVarchar && to.Precision != sqlplan.NoPrecision {
			limit = to.Precision
		}
		return func(v Value) (Value, error) {
			s, err := castText(v)
			if err != nil {
				return Value{}, err
			}
			return TextValue(truncateChars(s, limit)), nil
		}, nil
	case kindChar:
		n := to.Precision
		return func(v Value) (Value, error) {
			s, err := castText(v)
			if err != nil {
				return Value{}, err
			}
			if n != sqlplan.NoPrecision {
				s = padChar(truncateChars(s, n), n)
			}
			return charValue(s), nil
		}, nil
	case kindDate:
		switch fk {
		case kindDate:
			return func(v Value) (Value, error) { return v, nil }, nil
		case kindTimestamp:
			return func(v Value) (Value, error) {
				if v.form != formFinite {
					return Value{k: kindDate, form: v.form}, nil
				}
				d, _ := civil.SplitMicros(v.i)
				return dateValue(d), nil
			}, nil
		case kindText, kindChar:
			return func(v Value) (Value, error) { return parseText(to, v.trimmed()) }, nil
		}
	case kindTimestamp:
		round := timeRounder(to)
		switch fk {
		case kindTimestamp:
			return func(v Value) (Value, error) { return round(v), nil }, nil
		case kindDate:
			return func(v Value) (Value, error) { return dateToTimestamp(v), nil }, nil
		case kindText, kindChar:
			return func(v Value) (Value, error) {
				w, err := parseText(to, v.trimmed())
				return round(w), err
			}, nil
		}
	case kindTimestamptz:
		round := timeRounder(to)
		if fk == kindTimestamptz {
			return func(v Value) (Value, error) { return round(v), nil }, nil
		}
	case kindTime:
		round := timeRounder(to)
		switch fk {
		case kindTime:
			return func(v Value) (Value, error) { return round(v), nil }, nil
		case kindTimestamp:
			return func(v Value) (Value, error) {
				if v.form != formFinite {
					return Value{}, errors.New("cannot convert an infinite timestamp to time")
				}
				_, tod := civil.SplitMicros(v.i)
				return round(Value{k: kindTime, i: tod}), nil
			}, nil
		case kindText, kindChar:
			return func(v Value) (Value, error) {
				w, err := parseText(to, v.trimmed())
				return round(w), err
			}, nil
		}
	case kindBytes:
		if fk == kindBytes {
			return func(v Value) (Value, error) { return v, nil }, nil
		}
	}
	return nil, none
}

// timeRounder rounds a time or timestamp to the precision of a type
// (time(p), timestamp(p)), half up as PostgreSQL's AdjustTimestampForTypmod.
func timeRounder(t sqlplan.Type) func(Value) Value {
	if t.Precision == sqlplan.NoPrecision || t.Precision >= 6 {
		return func(v Value) Value { return v }
	}
	unit := pow10[6-t.Precision]
	return func(v Value) Value {
		if v.form != formFinite || v.IsNull() {
			return v
		}
		if v.i >= 0 {
			v.i = (v.i + unit/2) / unit * unit
		} else {
			v.i = -((-v.i + unit/2) / unit * unit)
		}
		if v.k == kindTime && v.i > civil.MicrosPerDay {
			v.i = civil.MicrosPerDay
		}
		return v
	}
}

// castText is the text a value casts to: its output form, except that
// booleans read true/false and char loses its trailing blanks.
func castText(v Value) (string, error) {
	switch v.k {
	case kindBool:
		if v.bool() {
			return "true", nil
		}
		return "false", nil
	case kindChar:
		return v.trimmed(), nil
	case kindText:
		return v.s, nil
	}
	return string(v.appendText(nil)), nil
}

// truncateChars keeps the first n characters of s (n < 0 keeps all).
func truncateChars(s string, n int) string {
	if n < 0 {
		return s
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}
