package ivm

import (
	"math"
	"math/big"
	"math/bits"
	"strconv"
)

// appendPGFloat writes a float as PostgreSQL 12+ prints it with the
// default extra_float_digits (1): the shortest digits that read back to
// the same value, in exponent form when the decimal exponent is below -4
// or at least 15 (6 for real).
func appendPGFloat(dst []byte, f float64, bitSize int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	limit := 15
	if bitSize == 32 {
		limit = 6
	}
	if f == 0 {
		if math.Signbit(f) {
			return append(dst, "-0"...)
		}
		return append(dst, '0')
	}
	var buf [32]byte
	digits, exp, neg := strictShortestDigits(buf[:0], f, bitSize)
	if neg {
		dst = append(dst, '-')
	}
	if exp < -4 || exp >= limit {
		dst = append(dst, digits[0])
		if len(digits) > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'e')
		if exp < 0 {
			dst = append(dst, '-')
			exp = -exp
		} else {
			dst = append(dst, '+')
		}
		if exp < 10 {
			dst = append(dst, '0')
		}
		return strconv.AppendInt(dst, int64(exp), 10)
	}
	return appendPlainDigits(dst, digits, exp, false)
}

// appendJavaFloat writes a float as Java's Double.toString (bitSize 64) or
// Float.toString (32) do (JDK 19+): shortest digits; plain with at least
// one fraction digit for 10^-3 <= |f| < 10^7, else d.dddE±n. This is how
// Flink's JSON format (through Jackson) writes DOUBLE and FLOAT.
func appendJavaFloat(dst []byte, f float64, bitSize int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	if f == 0 {
		if math.Signbit(f) {
			return append(dst, "-0.0"...)
		}
		return append(dst, "0.0"...)
	}
	var buf [32]byte
	digits, exp, neg := shortestDigits(buf[:0], f, bitSize)
	if neg {
		dst = append(dst, '-')
	}
	if exp >= -3 && exp < 7 {
		return appendPlainDigits(dst, digits, exp, true)
	}
	dst = append(dst, digits[0], '.')
	if len(digits) > 1 {
		dst = append(dst, digits[1:]...)
	} else {
		dst = append(dst, '0')
	}
	dst = append(dst, 'E')
	return strconv.AppendInt(dst, int64(exp), 10)
}

// shortestDigits returns the shortest decimal digits of |f| that read back
// as f, and the decimal exponent of the first digit.
func shortestDigits(dst []byte, f float64, bitSize int) ([]byte, int, bool) {
	neg := f < 0
	if neg {
		f = -f
	}
	s := strconv.AppendFloat(dst, f, 'e', -1, bitSize)
	// s is d[.ddd]e±XX
	i := len(s) - 1
	for s[i] != 'e' {
		i--
	}
	exp, _ := strconv.Atoi(string(s[i+1:]))
	mant := s[:i]
	out := mant[:1]
	if len(mant) > 2 {
		out = append(out, mant[2:]...)
	}
	return out, exp, neg
}

// strictShortestDigits is shortestDigits for PostgreSQL's Ryu, which only
// takes a decimal that lies strictly between the float's rounding bounds:
// where the shortest decimal is exactly halfway to a neighbouring float
// (it reads back as f only by round-half-even), PostgreSQL prints more
// digits.
func strictShortestDigits(dst []byte, f float64, bitSize int) ([]byte, int, bool) {
	digits, exp, neg := shortestDigits(dst, f, bitSize)
	if !onRoundingBound(digits, exp, f, bitSize) {
		return digits, exp, neg
	}
	maxDigits := 17
	if bitSize == 32 {
		maxDigits = 9
	}
	a := math.Abs(f)
	for n := len(digits) + 1; n <= maxDigits; n++ {
		s := strconv.AppendFloat(dst[:0], a, 'e', n-1, bitSize)
		i := len(s) - 1
		for s[i] != 'e' {
			i--
		}
		e, _ := strconv.Atoi(string(s[i+1:]))
		d := append(append([]byte(nil), s[0]), s[2:i]...)
		for len(d) > 1 && d[len(d)-1] == '0' {
			d = d[:len(d)-1]
		}
		if !onRoundingBound(d, e, f, bitSize) {
			return d, e, neg
		}
	}
	return digits, exp, neg
}

// onRoundingBound reports whether digits × 10^(exp-len+1) is exactly
// halfway between |f| and one of its neighbours.
func onRoundingBound(digits []byte, exp int, f float64, bitSize int) bool {
	a := math.Abs(f)
	var lo, hi float64
	if bitSize == 32 {
		lo = float64(math.Nextafter32(float32(a), 0))
		hi = float64(math.Nextafter32(float32(a), math.MaxFloat32))
	} else {
		lo, hi = math.Nextafter(a, 0), math.Nextafter(a, math.MaxFloat64)
	}
	var r big.Rat
	if _, ok := r.SetString(string(digits) + "e" + strconv.Itoa(exp-len(digits)+1)); !ok {
		return false
	}
	var x, mid big.Rat
	x.SetFloat64(a)
	for _, n := range []float64{lo, hi} {
		if math.IsInf(n, 0) || n == a {
			continue
		}
		mid.SetFloat64(n)
		mid.Add(&mid, &x)
		mid.Quo(&mid, big.NewRat(2, 1))
		if mid.Cmp(&r) == 0 {
			return true
		}
	}
	return false
}

// appendPlainDigits writes digits × 10^(exp-len+1) in plain notation;
// withFraction forces ".0" on integers.
func appendPlainDigits(dst, digits []byte, exp int, withFraction bool) []byte {
	if exp < 0 {
		dst = append(dst, '0', '.')
		for i := 0; i < -exp-1; i++ {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	if exp+1 >= len(digits) {
		dst = append(dst, digits...)
		for i := len(digits); i <= exp; i++ {
			dst = append(dst, '0')
		}
		if withFraction {
			dst = append(dst, '.', '0')
		}
		return dst
	}
	dst = append(dst, digits[:exp+1]...)
	dst = append(dst, '.')
	return append(dst, digits[exp+1:]...)
}

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
