package serving

import (
	"encoding/base64"
	"fmt"
	"sort"
	"sync"

	"github.com/cdcq/cdcq/internal/results"
	"github.com/cdcq/cdcq/projections"
)

// Snapshot is a query's result at one version. It never changes: a change
// makes a new Snapshot and closes the old one's Changed channel.
type Snapshot struct {
	View    projections.QueryView
	Columns []Column
	// Found is false while the query has no result yet (it is starting).
	Found    bool
	Progress results.Progress
	// Version is the position of the result: the last write that changed
	// its rows, state, source position or error.
	Version int64
	// Serving says the rows are served: the result is LIVE, or STALE with
	// the rows of the last correct state. Otherwise the rows are not a
	// complete result.
	Serving bool

	shape   *shape
	rows    []*row // in key order
	changed chan struct{}

	allOnce sync.Once
	all     []byte
}

// ETag is the snapshot's entity tag, the same in every API process: the
// result's version and that of the query's projected job state.
func (s *Snapshot) ETag() string { return etag(s.Version, s.View) }

// Changed is closed when a newer snapshot replaces this one.
func (s *Snapshot) Changed() <-chan struct{} { return s.changed }

// Len is the number of rows served.
func (s *Snapshot) Len() int {
	if !s.Serving {
		return 0
	}
	return len(s.rows)
}

// Rows is the served rows as a JSON array in key order, "null" when none
// are served. It is encoded once per snapshot.
func (s *Snapshot) Rows() []byte {
	s.allOnce.Do(func() { s.all = s.encode(s.rows) })
	return s.all
}

func (s *Snapshot) encode(rows []*row) []byte {
	if !s.Serving {
		return []byte("null")
	}
	n := 2
	for _, r := range rows {
		n += len(r.body) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, r := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, r.body...)
	}
	return append(b, ']')
}

// Page returns up to limit rows after the row whose key is after (a
// token from an earlier page; "" for the first page), in key order, and
// the token of the page's last row when more rows follow ("" otherwise).
func (s *Snapshot) Page(after string, limit int) (rows []byte, next string, err error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("limit %d: want at least 1", limit)
	}
	if !s.Serving {
		return []byte("null"), "", nil
	}
	start := 0
	if after != "" {
		k, err := s.shape.clientKey(s.View.ID, after)
		if err != nil {
			return nil, "", fmt.Errorf("after: %w", err)
		}
		start = sort.Search(len(s.rows), func(i int) bool { return compareKeys(&s.rows[i].key, &k) > 0 })
	}
	end := len(s.rows)
	if limit < end-start {
		end = start + limit
	}
	if end < len(s.rows) && end > start {
		next = encodeKey(s.rows[end-1].key.raw)
	}
	return s.encode(s.rows[start:end]), next, nil
}

func encodeKey(raw []byte) string { return base64.RawURLEncoding.EncodeToString(raw) }

func decodeKey(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
