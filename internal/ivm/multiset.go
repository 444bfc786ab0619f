package ivm

import "slices"

// multiset is a counted ordered multiset of non-NULL values: what MIN and
// MAX need to stay right when their current value is deleted. Values live
// in sorted chunks of at most chunkMax entries, so that an insert or a
// delete moves at most one chunk's entries, the chunk directory stays
// small, and memory is about one entry per distinct value.
//
// Inserts go to pending first, unsorted, with the least and greatest of
// them at hand, and reach the chunks in one sorted merge when pending has
// grown as large as the chunks (or before a retraction): a snapshot, which
// only inserts, then costs a sort of a small contiguous buffer per merge
// instead of a search and a shift in a chunk per row. Of equal values (a
// numeric 1.0 and 1.00), the one that came first is kept, as without
// pending.
type multiset struct {
	chunks [][]msEntry
	n      int // distinct values in chunks

	pending []msEntry // counts > 0, in arrival order
	lo, hi  int       // indexes in pending of its first least and greatest values
}

type msEntry struct {
	v     Value
	count int64
}

const (
	chunkMax = 128
	// chunkFill is how full a merge leaves the chunks it writes.
	chunkFill = chunkMax * 3 / 4
	// pending takes as many inserts as the chunks hold distinct values
	// before a merge, but at least pendingMin and at most pendingMax.
	pendingMin = 64
	pendingMax = 4096
	// A merge inserts pending's values one by one, rather than rewriting
	// the chunks, when they are at most pendingInsertMax or far fewer than
	// the chunks' values.
	pendingInsertMax = 8
)

// search returns the chunk that holds v or where it belongs, and v's
// position in it.
func (m *multiset) search(v Value) (int, int, bool) {
	lo, hi := 0, len(m.chunks)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		c := m.chunks[mid]
		if compare(c[len(c)-1].v, v) < 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	ci := lo
	if ci == len(m.chunks) {
		ci--
		return ci, len(m.chunks[ci]), false
	}
	c := m.chunks[ci]
	lo, hi = 0, len(c)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if compare(c[mid].v, v) < 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return ci, lo, lo < len(c) && compare(c[lo].v, v) == 0
}

// add changes v's count by delta (±1).
func (m *multiset) add(v Value, delta int64) {
	if delta > 0 {
		m.pending = append(m.pending, msEntry{cloneValue(v), delta})
		i := len(m.pending) - 1
		switch {
		case i == 0:
			m.lo, m.hi = 0, 0
		case compare(v, m.pending[m.lo].v) < 0:
			m.lo = i
		case compare(v, m.pending[m.hi].v) > 0:
			m.hi = i
		}
		if len(m.pending) >= min(max(pendingMin, m.n), pendingMax) {
			m.merge()
		}
		return
	}
	m.merge()
	m.addSorted(v, delta, false)
}

// merge moves pending into the chunks.
func (m *multiset) merge() {
	if len(m.pending) == 0 {
		return
	}
	p := m.pending
	// Stable, and inserted in that order: of equal values, the first to
	// arrive is kept.
	if len(p) > pendingInsertMax {
		slices.SortStableFunc(p, func(a, b msEntry) int { return compare(a.v, b.v) })
	}
	if len(p) <= pendingInsertMax || len(p)*16 < m.n {
		for _, e := range p {
			m.addSorted(e.v, e.count, true)
		}
	} else {
		m.rewrite(p)
	}
	clear(p)
	if cap(p) > 4*pendingMin {
		m.pending = nil
	} else {
		m.pending = p[:0]
	}
}

// rewrite merges sorted entries (equal values adjacent) into the chunks,
// writing new ones of chunkFill entries.
func (m *multiset) rewrite(p []msEntry) {
	var out [][]msEntry
	var cur []msEntry
	n := 0
	put := func(e msEntry) {
		if len(cur) > 0 && compare(cur[len(cur)-1].v, e.v) == 0 {
			cur[len(cur)-1].count += e.count
			return
		}
		if len(cur) == chunkFill {
			out = append(out, cur)
			cur = nil
		}
		if cur == nil {
			cur = make([]msEntry, 0, chunkMax)
		}
		cur = append(cur, e)
		n++
	}
	ci, i, j := 0, 0, 0
	for ci < len(m.chunks) || j < len(p) {
		var e msEntry
		switch {
		case ci == len(m.chunks):
			e = p[j]
			j++
		case j == len(p) || compare(m.chunks[ci][i].v, p[j].v) <= 0:
			// The chunks' value first when equal: it came first.
			e = m.chunks[ci][i]
			if i++; i == len(m.chunks[ci]) {
				ci, i = ci+1, 0
			}
		default:
			e = p[j]
			j++
		}
		put(e)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	m.chunks, m.n = out, n
}

// addSorted changes v's count in the chunks by delta; owned says that v
// is a copy of its own already.
func (m *multiset) addSorted(v Value, delta int64, owned bool) {
	own := func(v Value) Value {
		if owned {
			return v
		}
		return cloneValue(v)
	}
	if len(m.chunks) == 0 {
		if delta > 0 {
			v = own(v)
			m.chunks = append(m.chunks, append(make([]msEntry, 0, 4), msEntry{v, delta}))
			m.n = 1
		}
		return
	}
	ci, i, found := m.search(v)
	c := m.chunks[ci]
	if found {
		c[i].count += delta
		if c[i].count > 0 {
			return
		}
		copy(c[i:], c[i+1:])
		c[len(c)-1] = msEntry{}
		c = c[:len(c)-1]
		m.n--
		if len(c) == 0 {
			copy(m.chunks[ci:], m.chunks[ci+1:])
			m.chunks[len(m.chunks)-1] = nil
			m.chunks = shrinkSlice(m.chunks[:len(m.chunks)-1])
			return
		}
		m.chunks[ci] = c
		return
	}
	if delta <= 0 {
		return // removing a value that is not there: nothing to do
	}
	c = append(c, msEntry{})
	copy(c[i+1:], c[i:])
	c[i] = msEntry{own(v), delta}
	m.n++
	if len(c) > chunkMax {
		half := len(c) / 2
		right := make([]msEntry, len(c)-half, chunkMax)
		copy(right, c[half:])
		for j := half; j < len(c); j++ {
			c[j] = msEntry{}
		}
		c = c[:half]
		m.chunks = append(m.chunks, nil)
		copy(m.chunks[ci+2:], m.chunks[ci+1:])
		m.chunks[ci+1] = right
	}
	m.chunks[ci] = c
}

// shrinkMap returns m, or a copy of it when it holds less than a quarter
// of the most it held (Go maps keep their memory after deletes), so that
// memory follows the data rather than its history. peak tracks the most.
func shrinkMap[K comparable, V any](m map[K]V, peak *int) map[K]V {
	n := len(m)
	if n > *peak {
		*peak = n
	}
	if *peak < 64 || n >= *peak/4 {
		return m
	}
	out := make(map[K]V, n)
	for k, v := range m {
		out[k] = v
	}
	*peak = n
	return out
}

// shrinkSlice returns s with less capacity when it uses less than a
// quarter of it.
func shrinkSlice[T any](s []T) []T {
	if cap(s) <= 32 || len(s) >= cap(s)/4 {
		return s
	}
	return append(make([]T, 0, 2*len(s)), s...)
}

func (m *multiset) min() Value {
	if len(m.chunks) == 0 {
		if len(m.pending) == 0 {
			return Value{}
		}
		return m.pending[m.lo].v
	}
	v := m.chunks[0][0].v
	if len(m.pending) > 0 && compare(m.pending[m.lo].v, v) < 0 {
		return m.pending[m.lo].v
	}
	return v
}

func (m *multiset) max() Value {
	if len(m.chunks) == 0 {
		if len(m.pending) == 0 {
			return Value{}
		}
		return m.pending[m.hi].v
	}
	c := m.chunks[len(m.chunks)-1]
	v := c[len(c)-1].v
	if len(m.pending) > 0 && compare(m.pending[m.hi].v, v) > 0 {
		return m.pending[m.hi].v
	}
	return v
}
