package ivm

import (
	"errors"
	"math/big"
	"math/bits"

	"github.com/cdcq/cdcq/internal/sqlplan"
)

// Aggregates keep per-group state that a retraction can undo exactly:
// counts, exact sums (an int128 for integers, exact decimals for numeric,
// an exact binary sum for floats), a counted ordered multiset for MIN and
// MAX and per-value counts for COUNT(DISTINCT). Aggregates of one argument
// share a state where they can: sum and avg one sum, min and max one
// multiset.

// stateKind is the kind of per-group state.
type stateKind uint8

const (
	stCount    stateKind = iota + 1 // non-NULL values
	stIntSum                        // int128 sum of integers
	stNumSum                        // exact numeric sum
	stFloatSum                      // exact sum of floats
	stOrdered                       // counted ordered multiset
	stDistinct                      // per-value counts
)

// stateSpec describes one state every group has.
type stateSpec struct {
	kind stateKind
	arg  int // argument slot
	// fixedScale is set when every value of a numeric argument has the
	// same display scale (numeric(p,s)), so the sum need not count scales.
	fixedScale bool
}

// aggState is one group's state for a stateSpec.
type aggState interface {
	// add adds (sign 1) or retracts (sign -1) a non-NULL value.
	add(v Value, sign int64, q *Query)
}

func newState(spec stateSpec) aggState {
	switch spec.kind {
	case stCount:
		return &countState{}
	case stIntSum:
		return &intSumState{}
	case stNumSum:
		return &numSumState{fixed: spec.fixedScale}
	case stFloatSum:
		return &floatSumState{}
	case stOrdered:
		return &orderedState{}
	case stDistinct:
		return &distinctState{}
	}
	panic("ivm: unknown state kind")
}

type countState struct{ n int64 }

func (s *countState) add(_ Value, sign int64, _ *Query) { s.n += sign }

// intSumState is an int128 sum (hi:lo, two's complement) and a count.
type intSumState struct {
	n  int64
	lo uint64
	hi int64
}

func (s *intSumState) add(v Value, sign int64, _ *Query) {
	s.n += sign
	x := v.i
	if sign < 0 {
		// Subtract x: add -x as an int128, which also handles MinInt64.
		lo, borrow := bits.Sub64(s.lo, uint64(x), 0)
		hi := s.hi - (x >> 63) - int64(borrow)
		s.lo, s.hi = lo, hi
		return
	}
	lo, carry := bits.Add64(s.lo, uint64(x), 0)
	s.hi += (x >> 63) + int64(carry)
	s.lo = lo
}

// dec returns the sum as a decimal of scale 0.
func (s *intSumState) dec() dec {
	if (s.hi == 0 && s.lo <= 1<<63-1) || (s.hi == -1 && s.lo >= 1<<63) {
		return dec{c: int64(s.lo)}
	}
	b := new(big.Int).SetInt64(s.hi)
	b.Lsh(b, 64)
	b.Add(b, new(big.Int).SetUint64(s.lo))
	return dec{b: b}
}

// numSumState is an exact numeric sum. PostgreSQL shows a sum with the
// largest display scale among the values summed, so unless the argument
// has a fixed scale the state counts the values of each scale.
type numSumState struct {
	n               int64
	sum             dec
	nan, pinf, ninf int64
	fixed           bool
	scales          []int64
}

func (s *numSumState) add(v Value, sign int64, _ *Query) {
	s.n += sign
	switch v.form {
	case formNaN:
		s.nan += sign
		return
	case formPosInf:
		s.pinf += sign
		return
	case formNegInf:
		s.ninf += sign
		return
	}
	d := v.dec()
	if sign < 0 {
		d = decNeg(d)
	}
	s.sum = decAdd(s.sum, d)
	if !s.fixed {
		sc := int(v.scale)
		for len(s.scales) <= sc {
			s.scales = append(s.scales, 0)
		}
		s.scales[sc] += sign
		// Keep the slice as short as the largest scale in use.
		for len(s.scales) > 0 && s.scales[len(s.scales)-1] == 0 {
			s.scales = s.scales[:len(s.scales)-1]
		}
	}
}

// value returns the sum as PostgreSQL shows it, and false for NULL.
func (s *numSumState) value() (dec, bool) {
	switch {
	case s.n == 0:
		return dec{}, false
	case s.nan > 0 || s.pinf > 0 && s.ninf > 0:
		return dec{form: formNaN}, true
	case s.pinf > 0:
		return dec{form: formPosInf}, true
	case s.ninf > 0:
		return dec{form: formNegInf}, true
	}
	d := s.sum
	if !s.fixed {
		scale := int32(max(len(s.scales)-1, 0))
		if d.scale > scale {
			d = decRound(d, scale) // exact: the digits beyond are zero
		} else {
			d = d.withScale(scale)
		}
	}
	return d, true
}

type floatSumState struct {
	n int64
	s exactSum
}

func (s *floatSumState) add(v Value, sign int64, q *Query) {
	s.n += sign
	s.s.add(v.float(), int(sign), &q.bigScratch)
}

type orderedState struct{ ms multiset }

func (s *orderedState) add(v Value, sign int64, _ *Query) { s.ms.add(v, sign) }

type distinctState struct {
	counts map[string]int64
	peak   int
}

func (s *distinctState) add(v Value, sign int64, q *Query) {
	q.distinctBuf = appendKey(q.distinctBuf[:0], v)
	if s.counts == nil {
		s.counts = map[string]int64{}
	}
	n := s.counts[string(q.distinctBuf)] + sign
	if n <= 0 {
		delete(s.counts, string(q.distinctBuf))
		s.counts = shrinkMap(s.counts, &s.peak)
		return
	}
	s.counts[string(q.distinctBuf)] = n
	s.peak = max(s.peak, len(s.counts))
}

// aggOutput computes one of the plan's aggregates from a group's states.
type aggOutput struct {
	fn      sqlplan.AggFunc
	state   int // index into the group's states; -1 for count(*)
	argType sqlplan.Type
	result  sqlplan.Type
}

var errBigintRange = errors.New("bigint out of range")

// value returns the aggregate's current value in group g.
func (a *aggOutput) value(g *group) (Value, error) {
	if a.fn == sqlplan.CountStar {
		return IntValue(g.rows), nil
	}
	st := g.states[a.state]
	switch a.fn {
	case sqlplan.Count:
		return IntValue(st.(*countState).n), nil
	case sqlplan.CountDistinct:
		return IntValue(int64(len(st.(*distinctState).counts))), nil
	case sqlplan.Min:
		return st.(*orderedState).ms.min(), nil
	case sqlplan.Max:
		return st.(*orderedState).ms.max(), nil
	}
	switch st := st.(type) {
	case *intSumState:
		if st.n == 0 {
			return Value{}, nil
		}
		sum := st.dec()
		if a.fn == sqlplan.Avg {
			d, err := decDiv(sum, decInt(st.n))
			return numericValue(d), err
		}
		if a.result.Kind == sqlplan.KindBigint {
			if sum.b != nil {
				return Value{}, errBigintRange
			}
			return IntValue(sum.c), nil
		}
		return numericValue(sum), nil
	case *numSumState:
		sum, ok := st.value()
		if !ok {
			return Value{}, nil
		}
		if a.fn == sqlplan.Avg {
			d, err := decDiv(sum, decInt(st.n))
			return numericValue(d), err
		}
		return numericValue(sum), nil
	case *floatSumState:
		if st.n == 0 {
			return Value{}, nil
		}
		if a.fn == sqlplan.Avg {
			return Float8Value(st.s.mean(st.n)), nil
		}
		if a.result.Kind == sqlplan.KindReal {
			return float4Value(float32(st.s.value(32))), nil
		}
		return Float8Value(st.s.value(64)), nil
	}
	return Value{}, errors.New("ivm: aggregate state does not match its function")
}
