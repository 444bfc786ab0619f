package serving

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/cdcq/cdcq/internal/cachedquery"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

// Column is one column of a result: its name and PostgreSQL type, as the
// query's SELECT list gives them.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// shape turns result records into served rows: the columns the query
// selects, in its order, and nothing else (the records also carry the
// query id and grouping keys the query does not select).
type shape struct {
	columns []Column
	// fields are the record value's field of each column; heads are the
	// served object's `"name":` of each column; conv renders a column's
	// value as served (nil: as written).
	fields []string
	heads  [][]byte
	conv   []convert
	// keyConv renders the grouping values of record keys likewise.
	keyConv []convert
}

func newShape(schema, sql string) (*shape, error) {
	c, err := cachedquery.Compile(schema, sql)
	if err != nil {
		return nil, fmt.Errorf("compile the cached query: %w", err)
	}
	s := &shape{}
	for _, o := range c.Plan.Outputs {
		// Both engines name an output's field in the record value after
		// the output (sqlplan.Plan.GroupKeyNames gives a grouping key
		// that is selected its output's name).
		s.columns = append(s.columns, Column{Name: o.Name, Type: typeName(o.Type)})
		s.fields = append(s.fields, o.Name)
		head, _ := json.Marshal(o.Name)
		s.heads = append(s.heads, append(head, ':'))
		conv := converterFor(o.Type)
		if scale := numericScale(c.Plan, o); scale > 0 {
			conv = padScale(scale)
		}
		s.conv = append(s.conv, conv)
	}
	for _, g := range c.Plan.GroupBy {
		t := g.ResultType()
		conv := converterFor(t)
		if t.Kind == sqlplan.KindNumeric && t.Precision != sqlplan.NoPrecision && t.Scale > 0 {
			conv = padScale(t.Scale)
		}
		s.keyConv = append(s.keyConv, conv)
	}
	return s, nil
}

// typeName names a type as PostgreSQL's format_type does (what psql's
// \gdesc shows for the same query).
func typeName(t sqlplan.Type) string {
	mod := func(base string) string {
		if t.Precision == sqlplan.NoPrecision {
			return base
		}
		return fmt.Sprintf("%s(%d)", base, t.Precision)
	}
	zoned := func(base, zone string) string { return mod(base) + " " + zone }
	switch t.Kind {
	case sqlplan.KindNumeric:
		if t.Precision == sqlplan.NoPrecision {
			return "numeric"
		}
		return fmt.Sprintf("numeric(%d,%d)", t.Precision, t.Scale)
	case sqlplan.KindVarchar:
		return mod("character varying")
	case sqlplan.KindChar:
		return mod("character")
	case sqlplan.KindTime:
		return zoned("time", "without time zone")
	case sqlplan.KindTimetz:
		return zoned("time", "with time zone")
	case sqlplan.KindTimestamp:
		return zoned("timestamp", "without time zone")
	case sqlplan.KindTimestamptz:
		return zoned("timestamp", "with time zone")
	}
	return t.String()
}

// key decodes a record key with its grouping values as served.
func (s *shape) key(raw []byte) (groupKey, error) { return parseKey(raw, s.keyConv) }

// clientKey decodes a key a client gave back (a page token, an event id):
// it must be a key of this query's result.
func (s *shape) clientKey(queryID, token string) (groupKey, error) {
	bad := fmt.Errorf("%q is not a row token or event id from this result", token)
	raw, err := decodeKey(token)
	if err != nil {
		return groupKey{}, bad
	}
	k, err := s.key(raw)
	if err != nil || k.queryID != queryID || len(k.values) != len(s.keyConv) {
		return groupKey{}, bad
	}
	return k, nil
}

// A convert renders a value of a result record (as both engines write it,
// in the format of Flink's JSON) as the API serves it: as PostgreSQL's
// to_json renders it, where the two differ.
type convert func(json.RawMessage) (json.RawMessage, error)

func converterFor(t sqlplan.Type) convert {
	switch t.Kind {
	case sqlplan.KindBytea:
		return byteaHex
	case sqlplan.KindTimestamptz:
		return utcOffset
	case sqlplan.KindReal:
		return floatText(32)
	case sqlplan.KindDouble:
		return floatText(64)
	}
	return nil
}

// numericScale is the scale PostgreSQL writes a numeric output with when
// the plan tells it: a column's numeric(p,s), and its sum, min and max,
// have scale s. 0 when the plan does not tell (avg, expressions): values
// are then served as the engine wrote them.
func numericScale(p *sqlplan.Plan, o sqlplan.Output) int {
	if o.Type.Kind != sqlplan.KindNumeric {
		return 0
	}
	if o.Type.Precision != sqlplan.NoPrecision {
		return o.Type.Scale
	}
	var t sqlplan.Type
	switch e := o.Expr.(type) {
	case *sqlplan.GroupRef:
		t = p.GroupBy[e.Index].ResultType()
	case *sqlplan.AggRef:
		a := p.Aggregates[e.Index]
		if a.Arg == nil || (a.Func != sqlplan.Sum && a.Func != sqlplan.Min && a.Func != sqlplan.Max) {
			return 0
		}
		t = a.Arg.ResultType()
	default:
		return 0
	}
	if t.Kind == sqlplan.KindNumeric && t.Precision != sqlplan.NoPrecision {
		return t.Scale
	}
	return 0
}

// padScale writes a numeric with at least scale digits after the point,
// as PostgreSQL does for a value of a numeric(p,scale) column: Flink's
// JSON format drops trailing zeros (2.250 becomes 2.25).
func padScale(scale int) convert {
	return func(v json.RawMessage) (json.RawMessage, error) {
		if len(v) == 0 || v[0] == '"' || v[0] == 'n' || bytes.ContainsAny(v, "eE") {
			return v, nil
		}
		have := 0
		if dot := bytes.IndexByte(v, '.'); dot >= 0 {
			have = len(v) - dot - 1
		}
		if have >= scale {
			return v, nil
		}
		out := make([]byte, 0, len(v)+scale-have+1)
		out = append(out, v...)
		if have == 0 && bytes.IndexByte(v, '.') < 0 {
			out = append(out, '.')
		}
		for range scale - have {
			out = append(out, '0')
		}
		return out, nil
	}
}

// byteaHex turns base64 ("AQI=") into PostgreSQL's hex format ("\\x0102").
func byteaHex(v json.RawMessage) (json.RawMessage, error) {
	var s *string
	if err := json.Unmarshal(v, &s); err != nil || s == nil {
		return v, err
	}
	b, err := base64.StdEncoding.DecodeString(*s)
	if err != nil {
		return nil, fmt.Errorf("bytea value %s is not base64: %w", v, err)
	}
	out := make([]byte, 0, 5+2*len(b))
	out = append(out, `"\\x`...)
	out = hex.AppendEncode(out, b)
	return append(out, '"'), nil
}

// utcOffset writes a UTC timestamp's zone as PostgreSQL does: +00:00, not Z.
func utcOffset(v json.RawMessage) (json.RawMessage, error) {
	if bytes.HasSuffix(v, []byte(`Z"`)) {
		out := append(bytes.Clone(v[:len(v)-2]), `+00:00"`...)
		return out, nil
	}
	return v, nil
}

// floatText writes a float as PostgreSQL's to_json does: its shortest
// decimal text without an exponent (1.0E7 is 10000000, 100.0 is 100).
// NaN and the infinities stay strings.
func floatText(bits int) convert {
	return func(v json.RawMessage) (json.RawMessage, error) {
		if len(v) == 0 || v[0] == '"' || v[0] == 'n' {
			return v, nil
		}
		f, err := strconv.ParseFloat(string(v), bits)
		if err != nil {
			return nil, fmt.Errorf("float value %s: %w", v, err)
		}
		return strconv.AppendFloat(nil, f, 'f', -1, bits), nil
	}
}

// row renders a record value as the served row: a JSON object with the
// columns in SELECT order. Values are copied as the record holds them, so
// an exact numeric keeps its text (12.50).
func (s *shape) row(value []byte) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(value, &fields); err != nil {
		return nil, fmt.Errorf("result row is not a JSON object: %w", err)
	}
	var b bytes.Buffer
	b.Grow(len(value))
	b.WriteByte('{')
	for i, f := range s.fields {
		v, ok := fields[f]
		if !ok {
			return nil, fmt.Errorf("result row has no field %q", f)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(s.heads[i])
		if conv := s.conv[i]; conv != nil {
			var err error
			if v, err = conv(v); err != nil {
				return nil, fmt.Errorf("field %q: %w", f, err)
			}
		}
		if err := json.Compact(&b, v); err != nil {
			return nil, fmt.Errorf("field %q: %w", f, err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
