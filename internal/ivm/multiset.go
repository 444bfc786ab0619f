package ivm

import "sort"

// multiset is a counted ordered multiset of non-NULL values: what MIN and
// MAX need to stay right when their current value is deleted. Values live
// in sorted chunks of at most chunkMax entries, so that an insert or a
// delete moves at most one chunk's entries, the chunk directory stays
// small, and memory is about one entry per distinct value.
type multiset struct {
	chunks [][]msEntry
	n      int // distinct values
}

type msEntry struct {
	v     Value
	count int64
}

const chunkMax = 128

// search returns the chunk that holds v or where it belongs, and v's
// position in it.
func (m *multiset) search(v Value) (int, int, bool) {
	ci := sort.Search(len(m.chunks), func(i int) bool {
		c := m.chunks[i]
		return compare(c[len(c)-1].v, v) >= 0
	})
	if ci == len(m.chunks) {
		ci--
		return ci, len(m.chunks[ci]), false
	}
	c := m.chunks[ci]
	i := sort.Search(len(c), func(i int) bool { return compare(c[i].v, v) >= 0 })
	return ci, i, i < len(c) && compare(c[i].v, v) == 0
}

// add changes v's count by delta (±1).
func (m *multiset) add(v Value, delta int64) {
	if len(m.chunks) == 0 {
		if delta > 0 {
			m.chunks = append(m.chunks, append(make([]msEntry, 0, 4), msEntry{cloneValue(v), delta}))
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
	c[i] = msEntry{cloneValue(v), delta}
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
		return Value{}
	}
	return m.chunks[0][0].v
}

func (m *multiset) max() Value {
	if len(m.chunks) == 0 {
		return Value{}
	}
	c := m.chunks[len(m.chunks)-1]
	return c[len(c)-1].v
}
