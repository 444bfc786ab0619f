package ivm

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"

	"github.com/cdcq/cdcq/internal/floattext"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

// QueryIDColumn is the result key column that holds the cached query's id
// (the same name the Flink engine's sink uses).
const QueryIDColumn = sqlplan.QueryIDColumn

// ResultEncoder writes result changes as the records of the result topic,
// byte for byte the way both engines write them:
//
//   - key: {"query_id":"<id>","group":{<key column>: <value>, ...}}, one
//     key column per GROUP BY item (named by sqlplan's GroupKeyNames), NULL
//     included; just {"query_id":"<id>"} without GROUP BY.
//   - value: {"query_id":"<id>", <key columns>..., <other outputs>...}: all
//     columns, the key columns first, then the outputs that are not key
//     columns in SELECT order; nil (a tombstone) when the group left the
//     result.
//
// Values are written as Flink's JSON format writes them: integers as
// numbers; numeric as a plain JSON number with PostgreSQL's scale (12.50,
// never 1.25E+1), its NaN and infinities as the strings "NaN",
// "Infinity", "-Infinity"; real and double precision as Java's
// Float.toString/Double.toString do (1.5, 1.0E7, "NaN"); booleans as
// true/false; text, varchar, char (with its padding), uuid and enum labels
// as strings; bytea as a base64 string; date "2024-01-02", time
// "04:05:06.789", timestamp "2024-01-02T03:04:05.123", timestamptz
// "2024-01-02T03:04:05.123Z" (fractions without trailing zeros; PostgreSQL's
// infinities as "infinity" and "-infinity"); NULL as null.
type ResultEncoder struct {
	queryID  []byte // "query_id":"<id>"
	keyField [][]byte
	// valueCols are the value's columns after query_id: key columns
	// (fromKey >= 0) and outputs (fromOutput >= 0).
	valueCols []valueCol
}

type valueCol struct {
	field      []byte
	fromKey    int
	fromOutput int
}

// ResultEncoder returns the encoder of the query's result records for the
// cached query queryID.
func (q *Query) ResultEncoder(queryID string) *ResultEncoder {
	return NewResultEncoder(q.plan, queryID)
}

// NewResultEncoder returns the encoder of plan's result records.
func NewResultEncoder(plan *sqlplan.Plan, queryID string) *ResultEncoder {
	names := plan.GroupKeyNames()
	e := &ResultEncoder{}
	e.queryID = appendJSONString(append(appendJSONString(nil, QueryIDColumn), ':'), queryID)
	keyOutput := map[int]bool{}
	for i, name := range names {
		f := append(appendJSONString(nil, name), ':')
		e.keyField = append(e.keyField, f)
		e.valueCols = append(e.valueCols, valueCol{field: f, fromKey: i, fromOutput: -1})
		for j, o := range plan.Outputs {
			if o.Name == name {
				if ref, ok := o.Expr.(*sqlplan.GroupRef); ok && ref.Index == i {
					keyOutput[j] = true
				}
			}
		}
	}
	for j, o := range plan.Outputs {
		if keyOutput[j] {
			continue
		}
		f := append(appendJSONString(nil, o.Name), ':')
		e.valueCols = append(e.valueCols, valueCol{field: f, fromKey: -1, fromOutput: j})
	}
	return e
}

// AppendKey appends the record key of a group.
func (e *ResultEncoder) AppendKey(dst []byte, key Row) []byte {
	dst = append(dst, '{')
	dst = append(dst, e.queryID...)
	if len(e.keyField) == 0 {
		return append(dst, '}')
	}
	dst = append(dst, groupField...)
	for i, f := range e.keyField {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, f...)
		dst = appendJSONValue(dst, key[i])
	}
	return append(dst, '}', '}')
}

// groupField opens the key's group object (flinksql.GroupKeyField).
var groupField = []byte(`,"group":{`)

// AppendValue appends the record value of a group's row (row must not be
// nil: a tombstone has no value).
func (e *ResultEncoder) AppendValue(dst []byte, key, row Row) []byte {
	dst = append(dst, '{')
	dst = append(dst, e.queryID...)
	for _, c := range e.valueCols {
		dst = append(dst, ',')
		dst = append(dst, c.field...)
		if c.fromKey >= 0 {
			dst = appendJSONValue(dst, key[c.fromKey])
		} else {
			dst = appendJSONValue(dst, row[c.fromOutput])
		}
	}
	return append(dst, '}')
}

// EncodeKey returns the record key of a result change.
func (e *ResultEncoder) EncodeKey(rc ResultChange) []byte {
	return e.AppendKey(make([]byte, 0, 64), rc.Key)
}

// EncodeValue returns the record value of a result change: nil for a
// tombstone.
func (e *ResultEncoder) EncodeValue(rc ResultChange) []byte {
	if rc.Row == nil {
		return nil
	}
	return e.AppendValue(make([]byte, 0, 128), rc.Key, rc.Row)
}

// appendJSONValue writes a value as Flink's JSON format does (see
// ResultEncoder).
func appendJSONValue(dst []byte, v Value) []byte {
	switch v.k {
	case kindNull:
		return append(dst, "null"...)
	case kindBool:
		if v.bool() {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case kindInt:
		return strconv.AppendInt(dst, v.i, 10)
	case kindNumeric:
		if v.form != formFinite {
			dst = append(dst, '"')
			dst = v.dec().appendText(dst)
			return append(dst, '"')
		}
		return v.dec().appendText(dst)
	case kindFloat4:
		return floattext.AppendJacksonJSON(dst, v.float(), 32)
	case kindFloat8:
		return floattext.AppendJacksonJSON(dst, v.float(), 64)
	case kindText, kindChar:
		return appendJSONString(dst, v.s)
	case kindBytes:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, []byte(v.s))
		return append(dst, '"')
	case kindDate, kindTime, kindTimestamp, kindTimestamptz:
		dst = append(dst, '"')
		dst = appendISO(dst, v)
		return append(dst, '"')
	}
	return append(dst, "null"...)
}

// appendJSONString writes s as a JSON string the way Jackson does: ", \
// and control characters escaped (\b \t \n \f \r, others \u00XX), every
// other character as UTF-8 (invalid bytes as U+FFFD).
func appendJSONString(dst []byte, s string) []byte {
	const hexDigits = "0123456789ABCDEF"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c >= 0x20:
				dst = append(dst, c)
			case c == '\b':
				dst = append(dst, '\\', 'b')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\f':
				dst = append(dst, '\\', 'f')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}
