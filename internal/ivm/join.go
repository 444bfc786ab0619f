package ivm

import (
	"fmt"

	"github.com/cdcq/cdcq/internal/sqlplan"
)

// srow is a stored source row.
type srow struct {
	vals Row
	// pos is the row's position in its bucket of each of its source's
	// join indexes; -1 when it is not in that index (it failed the
	// source's own filter, or a join column is NULL).
	pos []int32
	// pass records whether the row satisfies the conjuncts of WHERE that
	// read only its source. Rows that do not never join or count.
	pass bool
	// gen is the source's generation when a record last wrote the row
	// (see sourceState.gen).
	gen uint32
}

// sourceState is everything the engine keeps about one source.
type sourceState struct {
	index    int
	src      *sqlplan.Source
	width    int
	pk       []int // column index of each primary key column
	rows     map[string]*srow
	rowsPeak int
	// filter is the conjunction of the WHERE conjuncts that read only
	// this source; nil when there are none.
	filter evalFn
	// indexes are the join indexes other sources probe.
	indexes []*joinIndex
	// steps say how to extend a change of this source to full joined
	// tuples: one step per other source, each probing an index of a
	// source not yet bound with values of the bound ones.
	steps []joinStep
	// key scratch
	keyBuf, keyBuf2 []byte

	// Snapshots of the source's table (see Query.applySnapshotAware).
	// snapLSN and snapTx name the last snapshot its records showed (its
	// source.lsn and txId; 0 for none). gen counts the snapshots that
	// began while rows were stored; every row written is stamped with it.
	// While resetting, a new snapshot is under way: when it ends, the rows
	// it did not write (gen older than the source's) are gone from the
	// table.
	snapLSN, snapTx int64
	gen             uint32
	resetting       bool
}

// joinIndex indexes the rows of a source by the values of some columns:
// the columns that join it to the sources bound before it in some join
// order.
type joinIndex struct {
	slot    int // position in the source's indexes (and in srow.pos)
	cols    []int
	conv    []func(Value) Value // per column: conversion to the join's common type, or nil
	buckets map[string][]*srow
	peak    int
}

// joinStep binds source target by probing index with the values of
// columns of sources bound earlier.
type joinStep struct {
	target int
	index  *joinIndex
	probe  []probeCol
}

type probeCol struct {
	source, col int
	conv        func(Value) Value
}

// joinConversions returns how to bring the values of two joined columns
// to a common representation, so that equal values (as PostgreSQL's = on
// the two types decides) get equal keys. appendKey already makes integers
// and integral numerics, char and text, and -0 and 0 agree.
func joinConversions(l, r sqlplan.Type) (func(Value) Value, func(Value) Value, error) {
	if !equatable(l) || !equatable(r) {
		return nil, nil, fmt.Errorf("a join on %s and %s", l, r)
	}
	toFloat := func(v Value) Value { return Float8Value(v.float()) }
	toTimestamp := func(v Value) Value { return dateToTimestamp(v) }
	switch {
	case l.IsNumeric() && r.IsNumeric():
		switch {
		case l.IsFloat() && r.IsFloat():
			return nil, nil, nil
		case l.IsFloat():
			return nil, toFloat, nil
		case r.IsFloat():
			return toFloat, nil, nil
		}
		return nil, nil, nil
	case l.IsString() && r.IsString():
		return nil, nil, nil
	case l.Kind == sqlplan.KindDate && r.Kind == sqlplan.KindTimestamp:
		return toTimestamp, nil, nil
	case l.Kind == sqlplan.KindTimestamp && r.Kind == sqlplan.KindDate:
		return nil, toTimestamp, nil
	case l.Kind == r.Kind && l.Name == r.Name && l.Schema == r.Schema:
		return nil, nil, nil
	}
	return nil, nil, fmt.Errorf("a join on %s and %s", l, r)
}

// edge is one join equality, seen from both ends.
type edge struct {
	a, b         int // sources
	colA, colB   int // column indexes
	convA, convB func(Value) Value
}

// planJoins builds the indexes and, for every source, the order in which
// a change of it is joined with the others.
func planJoins(plan *sqlplan.Plan, sources []*sourceState, colIndex []map[string]int) error {
	var edges []edge
	for _, j := range plan.Joins {
		l, r := j.Left, j.Right
		li, lok := colIndex[l.Source][l.Column]
		ri, rok := colIndex[r.Source][r.Column]
		if !lok || !rok {
			return fmt.Errorf("join %s = %s: column not among the sources' columns", l, r)
		}
		cl, cr, err := joinConversions(l.Type, r.Type)
		if err != nil {
			return fmt.Errorf("the embedded engine cannot maintain %s", err)
		}
		edges = append(edges, edge{l.Source, r.Source, li, ri, cl, cr})
	}
	n := len(sources)
	for s := range sources {
		bound := make([]bool, n)
		bound[s] = true
		var steps []joinStep
		for len(steps) < n-1 {
			// Pick the unbound source with the most equalities to the
			// bound ones (ties: the first), so that cycles become part of
			// the probed key.
			best, bestCount := -1, 0
			for t := 0; t < n; t++ {
				if bound[t] {
					continue
				}
				c := 0
				for _, e := range edges {
					if e.a == t && bound[e.b] || e.b == t && bound[e.a] {
						c++
					}
				}
				if c > bestCount {
					best, bestCount = t, c
				}
			}
			if best < 0 {
				return fmt.Errorf("the sources are not all joined by equalities")
			}
			var cols []int
			var convs []func(Value) Value
			var probe []probeCol
			for _, e := range edges {
				switch {
				case e.a == best && bound[e.b]:
					cols = append(cols, e.colA)
					convs = append(convs, e.convA)
					probe = append(probe, probeCol{e.b, e.colB, e.convB})
				case e.b == best && bound[e.a]:
					cols = append(cols, e.colB)
					convs = append(convs, e.convB)
					probe = append(probe, probeCol{e.a, e.colA, e.convA})
				}
			}
			idx := sources[best].indexFor(cols, convs)
			steps = append(steps, joinStep{target: best, index: idx, probe: probe})
			bound[best] = true
		}
		sources[s].steps = steps
	}
	return nil
}

// indexFor returns the source's index on cols, creating it.
func (s *sourceState) indexFor(cols []int, conv []func(Value) Value) *joinIndex {
next:
	for _, ix := range s.indexes {
		if len(ix.cols) != len(cols) {
			continue
		}
		for i := range cols {
			if ix.cols[i] != cols[i] || (ix.conv[i] == nil) != (conv[i] == nil) {
				continue next
			}
		}
		return ix
	}
	ix := &joinIndex{slot: len(s.indexes), cols: cols, conv: conv, buckets: map[string][]*srow{}}
	s.indexes = append(s.indexes, ix)
	return ix
}

// indexKey appends the key of row r in index ix; false when a column is
// NULL (NULL never joins).
func (ix *joinIndex) indexKey(dst []byte, r *srow) ([]byte, bool) {
	for i, c := range ix.cols {
		v := r.vals[c]
		if v.IsNull() {
			return dst, false
		}
		if ix.conv[i] != nil {
			v = ix.conv[i](v)
		}
		dst = appendKey(dst, v)
	}
	return dst, true
}

// insertRow stores r under key and adds it to the join indexes.
func (s *sourceState) insertRow(key string, r *srow) {
	s.rows[key] = r
	s.rowsPeak = max(s.rowsPeak, len(s.rows))
	if len(s.indexes) == 0 {
		return
	}
	r.pos = make([]int32, len(s.indexes))
	for _, ix := range s.indexes {
		r.pos[ix.slot] = -1
		if !r.pass {
			continue
		}
		var ok bool
		s.keyBuf, ok = ix.indexKey(s.keyBuf[:0], r)
		if !ok {
			continue
		}
		ix.add(s.keyBuf, r)
	}
}

// add appends r to the bucket of key.
func (ix *joinIndex) add(key []byte, r *srow) {
	b := ix.buckets[string(key)]
	r.pos[ix.slot] = int32(len(b))
	ix.buckets[string(key)] = append(b, r)
	ix.peak = max(ix.peak, len(ix.buckets))
}

// removeRow deletes the row stored under key.
func (s *sourceState) removeRow(key string, r *srow) {
	delete(s.rows, key)
	s.rows = shrinkMap(s.rows, &s.rowsPeak)
	for _, ix := range s.indexes {
		if r.pos[ix.slot] < 0 {
			continue
		}
		s.keyBuf, _ = ix.indexKey(s.keyBuf[:0], r)
		s.unindex(ix, r, s.keyBuf)
	}
}

// replaceRow gives a stored row new values in place (an update that keeps
// the primary key), moving it between join buckets only when its join key
// or its filter result changed.
func (s *sourceState) replaceRow(r *srow, vals Row, pass bool) {
	for _, ix := range s.indexes {
		p := r.pos[ix.slot]
		var oldKey []byte
		if p >= 0 {
			oldKey, _ = ix.indexKey(s.keyBuf[:0], r)
			s.keyBuf = oldKey
		}
		newOK := false
		var newKey []byte
		if pass {
			tmp := srow{vals: vals}
			newKey, newOK = ix.indexKey(s.keyBuf2[:0], &tmp)
			s.keyBuf2 = newKey
		}
		if p >= 0 && newOK && string(oldKey) == string(newKey) {
			continue // same bucket, same place
		}
		if p >= 0 {
			s.unindex(ix, r, oldKey)
		}
		if newOK {
			ix.add(newKey, r)
		}
	}
	r.vals, r.pass = vals, pass
}

// unindex removes r from its bucket of ix, whose key is key.
func (s *sourceState) unindex(ix *joinIndex, r *srow, key []byte) {
	p := r.pos[ix.slot]
	b := ix.buckets[string(key)]
	last := len(b) - 1
	if int(p) != last {
		moved := b[last]
		b[p] = moved
		moved.pos[ix.slot] = p
	}
	b[last] = nil
	if last == 0 {
		delete(ix.buckets, string(key))
		ix.buckets = shrinkMap(ix.buckets, &ix.peak)
	} else {
		ix.buckets[string(key)] = shrinkSlice(b[:last])
	}
	r.pos[ix.slot] = -1
}

// clear forgets every row.
func (s *sourceState) clear() {
	s.rows, s.rowsPeak = map[string]*srow{}, 0
	for _, ix := range s.indexes {
		ix.buckets, ix.peak = map[string][]*srow{}, 0
	}
}
