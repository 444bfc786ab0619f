package serving

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
)

// groupKey is a result row's key, decoded for ordering: the values of its
// grouping columns in GROUP BY order. Rows are served in key order:
// grouping value by grouping value, numbers by value, strings by their
// bytes, false before true, NULL last (as ORDER BY does by default),
// and finally by the key's text, so that the order is total.
type groupKey struct {
	raw     []byte // the record key as written
	queryID string
	group   []byte // its "group" object, or nil without GROUP BY
	values  []any  // json.Number, string, bool or nil
}

// parseKey decodes a result record key:
// {"query_id":"<id>","group":{<name>: <value>, ...}}. conv, when not nil,
// renders the i-th grouping value as served (see shape).
func parseKey(raw []byte, conv []convert) (groupKey, error) {
	k := groupKey{raw: raw}
	var top struct {
		QueryID string          `json:"query_id"`
		Group   json.RawMessage `json:"group"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		return k, fmt.Errorf("result key %q: %w", raw, err)
	}
	k.queryID = top.QueryID
	if len(top.Group) == 0 || string(top.Group) == "null" {
		return k, nil
	}
	dec := json.NewDecoder(bytes.NewReader(top.Group))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return k, fmt.Errorf("result key %s: group is not an object", raw)
	}
	group := []byte{'{'}
	for i := 0; dec.More(); i++ {
		name, err := dec.Token()
		if err != nil {
			return k, fmt.Errorf("result key %s: %w", raw, err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return k, fmt.Errorf("result key %s: %w", raw, err)
		}
		if i < len(conv) && conv[i] != nil {
			if v, err = conv[i](v); err != nil {
				return k, fmt.Errorf("result key %s: %w", raw, err)
			}
		}
		var value any
		vd := json.NewDecoder(bytes.NewReader(v))
		vd.UseNumber()
		if err := vd.Decode(&value); err != nil {
			return k, fmt.Errorf("result key %s: %w", raw, err)
		}
		switch value.(type) {
		case json.Number, string, bool, nil:
		default:
			return k, fmt.Errorf("result key %s: a grouping value is not a scalar", raw)
		}
		k.values = append(k.values, value)
		if i > 0 {
			group = append(group, ',')
		}
		nameJSON, _ := json.Marshal(name)
		group = append(append(append(group, nameJSON...), ':'), v...)
	}
	k.group = append(group, '}')
	return k, nil
}

// compareKeys orders keys (see groupKey).
func compareKeys(a, b *groupKey) int {
	for i := 0; i < len(a.values) && i < len(b.values); i++ {
		if c := compareValues(a.values[i], b.values[i]); c != 0 {
			return c
		}
	}
	if c := len(a.values) - len(b.values); c != 0 {
		return c
	}
	return bytes.Compare(a.raw, b.raw)
}

func rank(v any) int {
	switch v.(type) {
	case bool:
		return 0
	case json.Number:
		return 1
	case string:
		return 2
	default: // nil
		return 3
	}
}

func compareValues(a, b any) int {
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra - rb
	}
	switch x := a.(type) {
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case json.Number:
		return compareNumbers(string(x), string(b.(json.Number)))
	case string:
		return bytes.Compare([]byte(x), []byte(b.(string)))
	}
	return 0
}

// compareNumbers compares JSON numbers by value, exactly.
func compareNumbers(a, b string) int {
	if a == b {
		return 0
	}
	fa, errA := strconv.ParseFloat(a, 64)
	fb, errB := strconv.ParseFloat(b, 64)
	if errA == nil && errB == nil && fa != fb {
		if fa < fb {
			return -1
		}
		return 1
	}
	// Equal as float64 (or out of its range): compare exactly.
	ra, okA := new(big.Rat).SetString(a)
	rb, okB := new(big.Rat).SetString(b)
	if okA && okB {
		if c := ra.Cmp(rb); c != 0 {
			return c
		}
	}
	return bytes.Compare([]byte(a), []byte(b))
}

// A Cursor is a position in a result's stream of changes: every change up
// to version Version, and, when Key is set, the changes of version Version
// up to that key in key order. Its text is "<version>" or
// "<version>.<key>", the key as unpadded base64url; SSE event ids are
// cursors.
type Cursor struct {
	Version int64
	Key     *groupKey
	// token is a key as a client gave it, decoded by Subscribe against
	// the query's result.
	token string
}

// String is the cursor's text.
func (c Cursor) String() string {
	s := strconv.FormatInt(c.Version, 10)
	if c.Key != nil {
		s += "." + encodeKey(c.Key.raw)
	}
	return s
}

// ErrBadCursor says a position given by a client cannot be read.
var ErrBadCursor = errors.New("bad position")

// ParseCursor reads a cursor's text.
func ParseCursor(s string) (Cursor, error) {
	v, key, hasKey := bytes.Cut([]byte(s), []byte{'.'})
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < 0 {
		return Cursor{}, fmt.Errorf("%w %q: want a version (a whole number) or an event id", ErrBadCursor, s)
	}
	c := Cursor{Version: n}
	if hasKey {
		if len(key) == 0 {
			return Cursor{}, fmt.Errorf("%w %q: no key after the dot", ErrBadCursor, s)
		}
		c.token = string(key)
	}
	return c, nil
}

// after says whether the change of key k at version v comes after c.
func (c Cursor) after(v int64, k *groupKey) bool {
	switch {
	case v != c.Version:
		return v > c.Version
	case c.Key == nil:
		return false
	}
	return compareKeys(k, c.Key) > 0
}
