package ivm

import (
	"math"
	"math/big"
	"math/bits"
)

// exactSum keeps the exact sum of float64 values, so that deleting a value
// restores exactly the sum of the others (a float accumulator would keep
// the rounding of values long gone, and lose small values entirely next to
// a huge one that was later deleted). The sum is acc × 2^base; base is the
// lowest bit any added value had, so the integer stays as small as the
// values need. Non-finite values are counted apart.
type exactSum struct {
	acc             big.Int
	base            int // valid when hasBase
	hasBase         bool
	nan, pinf, ninf int64
}

// add adds sign × f to the sum.
func (s *exactSum) add(f float64, sign int, scratch *big.Int) {
	switch {
	case math.IsNaN(f):
		s.nan += int64(sign)
		return
	case math.IsInf(f, 1):
		s.pinf += int64(sign)
		return
	case math.IsInf(f, -1):
		s.ninf += int64(sign)
		return
	case f == 0:
		return
	}
	b := math.Float64bits(f)
	e := int((b >> 52) & 0x7ff)
	m := b & (1<<52 - 1)
	if e == 0 {
		e = 1
	} else {
		m |= 1 << 52
	}
	e -= 1075 // f = m × 2^e
	tz := bits.TrailingZeros64(m)
	m >>= tz
	e += tz
	if !s.hasBase {
		s.base, s.hasBase = e, true
	} else if e < s.base {
		s.acc.Lsh(&s.acc, uint(s.base-e))
		s.base = e
	}
	scratch.SetUint64(m)
	if e > s.base {
		scratch.Lsh(scratch, uint(e-s.base))
	}
	neg := f < 0
	if sign < 0 {
		neg = !neg
	}
	if neg {
		s.acc.Sub(&s.acc, scratch)
	} else {
		s.acc.Add(&s.acc, scratch)
	}
	if s.acc.Sign() == 0 {
		// Start afresh, so that the integer does not keep the width of
		// values that are gone.
		s.hasBase = false
	}
}

// value returns the sum rounded to the nearest float64 (float32 when
// bitSize is 32), with IEEE rules for the non-finite values.
func (s *exactSum) value(bitSize int) float64 {
	switch {
	case s.nan > 0 || s.pinf > 0 && s.ninf > 0:
		return math.NaN()
	case s.pinf > 0:
		return math.Inf(1)
	case s.ninf > 0:
		return math.Inf(-1)
	case !s.hasBase || s.acc.Sign() == 0:
		return 0
	}
	var f big.Float
	f.SetInt(&s.acc)
	f.SetMantExp(&f, s.base)
	if bitSize == 32 {
		v, _ := f.Float32()
		return float64(v)
	}
	v, _ := f.Float64()
	return v
}

// mean returns sum/n rounded to the nearest float64.
func (s *exactSum) mean(n int64) float64 {
	switch {
	case s.nan > 0 || s.pinf > 0 && s.ninf > 0:
		return math.NaN()
	case s.pinf > 0:
		return math.Inf(1)
	case s.ninf > 0:
		return math.Inf(-1)
	case !s.hasBase || s.acc.Sign() == 0:
		return 0
	}
	var f, d big.Float
	f.SetPrec(200).SetInt(&s.acc)
	f.SetMantExp(&f, s.base)
	d.SetPrec(200).SetInt64(n)
	f.Quo(&f, &d)
	v, _ := f.Float64()
	return v
}
