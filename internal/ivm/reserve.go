package ivm

// reserveMax caps Reserve: an estimate can be far off.
const reserveMax = 1 << 22

// Reserve makes room in the row state of plan.Sources[source] for about n
// rows (the capture's estimate of its table), so that a snapshot of a
// large table does not grow it step by step. It does nothing once the
// state holds a quarter of that already; rows held are kept.
func (q *Query) Reserve(source int, n int64) {
	if source < 0 || source >= len(q.sources) {
		return
	}
	n = min(n, reserveMax)
	s := q.sources[source]
	if n < 1024 || int64(len(s.rows)) >= n/4 {
		return
	}
	rows := make(map[string]*srow, n)
	for k, r := range s.rows {
		rows[k] = r
	}
	s.rows = rows
}
