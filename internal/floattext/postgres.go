package floattext

import (
	"math"
	"math/big"
	"strconv"
)

// AppendPostgres appends f as PostgreSQL 12 and later print a float8
// (bitSize 64) or float4 (32) with the default extra_float_digits (1): the
// shortest digits that read back to the same value, in exponent form
// ("1e-05", "1.5e+15") when the decimal exponent is below -4 or at least
// 15 (6 for float4); NaN, Infinity, -Infinity, 0, -0.
func AppendPostgres(dst []byte, f float64, bitSize int) []byte {
	if dst, ok := appendSpecial(dst, f, "0"); ok {
		return dst
	}
	limit := 15
	if bitSize == 32 {
		limit = 6
	}
	var buf [32]byte
	digits, exp := strictShortestDigits(buf[:0], f, bitSize)
	if f < 0 {
		dst = append(dst, '-')
	}
	if exp >= -4 && exp < limit {
		return appendPlain(dst, digits, exp, false)
	}
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

// strictShortestDigits is shortestDigits for PostgreSQL's Ryu, which only
// takes a decimal that lies strictly between the float's rounding bounds:
// where the shortest decimal is exactly halfway to a neighbouring float
// (it reads back as f only by round-half-even), PostgreSQL prints more
// digits (2e23 is 1.9999999999999998e+23).
func strictShortestDigits(dst []byte, f float64, bitSize int) ([]byte, int) {
	digits, exp := shortestDigits(dst, f, bitSize)
	if !onRoundingBound(digits, exp, f, bitSize) {
		return digits, exp
	}
	maxDigits := 17
	if bitSize == 32 {
		maxDigits = 9
	}
	for n := len(digits) + 1; n <= maxDigits; n++ {
		var buf [32]byte
		d, e := precisionDigits(buf[:0], f, n, bitSize)
		if !onRoundingBound(d, e, f, bitSize) {
			return append(digits[:0], d...), e
		}
	}
	return digits, exp
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
