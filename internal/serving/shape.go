package serving

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/cdcq/cdcq/internal/cachedquery"
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
	// served object's `"name":` of each column.
	fields []string
	heads  [][]byte
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
		s.columns = append(s.columns, Column{Name: o.Name, Type: o.Type.String()})
		s.fields = append(s.fields, o.Name)
		head, _ := json.Marshal(o.Name)
		s.heads = append(s.heads, append(head, ':'))
	}
	return s, nil
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
		if err := json.Compact(&b, v); err != nil {
			return nil, fmt.Errorf("field %q: %w", f, err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
