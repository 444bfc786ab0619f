package ivm

import (
	"errors"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
	"sync"
)

// dec is an exact decimal number with PostgreSQL numeric's semantics: the
// value coef × 10^-scale, where scale is the display scale (dscale) and is
// never negative, plus the special values NaN, +Infinity and -Infinity.
// The coefficient lives in c unless it does not fit an int64; then b holds
// it. A big.Int held by a dec is never modified.
type dec struct {
	form  uint8
	scale int32
	c     int64
	b     *big.Int
}

// Forms of numeric and temporal values.
const (
	formFinite uint8 = iota
	formNaN
	formPosInf
	formNegInf
)

// maxDisplayScale is PostgreSQL's NUMERIC_MAX_DISPLAY_SCALE.
const maxDisplayScale = 1000

var (
	errDivByZero  = errors.New("division by zero")
	errBadNumeric = errors.New("invalid input syntax for type numeric")
)

var pow10 = func() [19]int64 {
	var p [19]int64
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

var bigPow10Cache [64]*big.Int

// bigPow10 returns 10^n; the result must not be modified.
func bigPow10(n int) *big.Int {
	if n < len(bigPow10Cache) {
		if p := bigPow10Cache[n]; p != nil {
			return p
		}
		p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
		bigPow10Cache[n] = p
		return p
	}
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

func init() {
	for i := range bigPow10Cache {
		bigPow10(i)
	}
}

// decInt returns the integer n as a decimal of scale 0.
func decInt(n int64) dec { return dec{c: n} }

// decFromBig returns coef × 10^-scale, in the int64 form when it fits.
func decFromBig(coef *big.Int, scale int32) dec {
	if coef.IsInt64() {
		return dec{c: coef.Int64(), scale: scale}
	}
	return dec{b: coef, scale: scale}
}

func (d dec) finite() bool { return d.form == formFinite }

// coef returns the coefficient as a big.Int (possibly d.b itself: do not
// modify it).
func (d dec) coef() *big.Int {
	if d.b != nil {
		return d.b
	}
	return big.NewInt(d.c)
}

func (d dec) sign() int {
	switch d.form {
	case formPosInf:
		return 1
	case formNegInf:
		return -1
	case formNaN:
		return 0
	}
	if d.b != nil {
		return d.b.Sign()
	}
	switch {
	case d.c > 0:
		return 1
	case d.c < 0:
		return -1
	}
	return 0
}

// mulPow10 returns c × 10^n and whether it fit an int64.
func mulPow10(c int64, n int32) (int64, bool) {
	if c == 0 {
		return 0, true
	}
	if n < 0 || n >= int32(len(pow10)) {
		return 0, false
	}
	hi, lo := bits.Mul64(uabs(c), uint64(pow10[n]))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	if c < 0 {
		return -int64(lo), true
	}
	return int64(lo), true
}

func uabs(c int64) uint64 {
	if c < 0 {
		return uint64(-c)
	}
	return uint64(c)
}

// rescaled returns the coefficient of d at a scale s >= d.scale, as a new
// big.Int.
func (d dec) rescaledBig(s int32) *big.Int {
	r := new(big.Int).Set(d.coef())
	if s > d.scale {
		r.Mul(r, bigPow10(int(s-d.scale)))
	}
	return r
}

// withScale returns d with its display scale raised to s (s >= d.scale);
// the value does not change.
func (d dec) withScale(s int32) dec {
	if s <= d.scale || !d.finite() {
		return d
	}
	if d.b == nil {
		if c, ok := mulPow10(d.c, s-d.scale); ok {
			return dec{c: c, scale: s}
		}
	}
	return decFromBig(d.rescaledBig(s), s)
}

// decAdd returns a+b with PostgreSQL's special-value rules; the display
// scale is the larger of the two.
func decAdd(a, b dec) dec {
	if !a.finite() || !b.finite() {
		return specialAdd(a.form, b.form)
	}
	s := max(a.scale, b.scale)
	if a.b == nil && b.b == nil {
		x, ok1 := mulPow10(a.c, s-a.scale)
		y, ok2 := mulPow10(b.c, s-b.scale)
		if ok1 && ok2 {
			sum := x + y
			// Overflow happened when both operands have the sign the
			// result does not.
			if (x >= 0) == (y >= 0) && (sum >= 0) != (x >= 0) {
				return decFromBig(new(big.Int).Add(big.NewInt(x), big.NewInt(y)), s)
			}
			return dec{c: sum, scale: s}
		}
	}
	return decFromBig(new(big.Int).Add(a.rescaledBig(s), b.rescaledBig(s)), s)
}

func specialAdd(a, b uint8) dec {
	switch {
	case a == formNaN || b == formNaN:
		return dec{form: formNaN}
	case a == formPosInf && b == formNegInf, a == formNegInf && b == formPosInf:
		return dec{form: formNaN}
	case a == formPosInf || b == formPosInf:
		return dec{form: formPosInf}
	}
	return dec{form: formNegInf}
}

func decNeg(a dec) dec {
	switch a.form {
	case formPosInf:
		return dec{form: formNegInf}
	case formNegInf:
		return dec{form: formPosInf}
	case formNaN:
		return a
	}
	if a.b == nil && a.c != math.MinInt64 {
		return dec{c: -a.c, scale: a.scale}
	}
	return decFromBig(new(big.Int).Neg(a.coef()), a.scale)
}

func decSub(a, b dec) dec { return decAdd(a, decNeg(b)) }

func decAbs(a dec) dec {
	if a.sign() < 0 {
		return decNeg(a)
	}
	return a
}

// decMul returns a×b; the display scale is the sum of the two, as in
// PostgreSQL.
func decMul(a, b dec) (dec, error) {
	if !a.finite() || !b.finite() {
		switch {
		case a.form == formNaN || b.form == formNaN:
			return dec{form: formNaN}, nil
		}
		sa, sb := a.sign(), b.sign()
		if sa == 0 || sb == 0 {
			return dec{form: formNaN}, nil
		}
		if sa*sb > 0 {
			return dec{form: formPosInf}, nil
		}
		return dec{form: formNegInf}, nil
	}
	s := a.scale + b.scale
	if s > maxDisplayScale {
		// PostgreSQL rounds a product's scale down to the maximum.
		p := decFromBig(new(big.Int).Mul(a.coef(), b.coef()), s)
		return decRound(p, maxDisplayScale), nil
	}
	if a.b == nil && b.b == nil {
		hi, lo := bits.Mul64(uabs(a.c), uabs(b.c))
		if hi == 0 && lo <= math.MaxInt64 {
			r := int64(lo)
			if (a.c < 0) != (b.c < 0) {
				r = -r
			}
			return dec{c: r, scale: s}, nil
		}
	}
	return decFromBig(new(big.Int).Mul(a.coef(), b.coef()), s), nil
}

// decCmp orders decimals as PostgreSQL does: -Infinity below every number,
// +Infinity above, NaN above everything and equal to itself.
func decCmp(a, b dec) int {
	ra, rb := formRank(a), formRank(b)
	if ra != rb || ra != 1 {
		return cmpInt(int64(ra), int64(rb))
	}
	if a.b == nil && b.b == nil {
		if a.scale == b.scale {
			return cmpInt(a.c, b.c)
		}
		s := max(a.scale, b.scale)
		x, ok1 := mulPow10(a.c, s-a.scale)
		y, ok2 := mulPow10(b.c, s-b.scale)
		if ok1 && ok2 {
			return cmpInt(x, y)
		}
	}
	s := max(a.scale, b.scale)
	return a.rescaledBig(s).Cmp(b.rescaledBig(s))
}

// formRank orders the forms: -Infinity, finite, +Infinity, NaN.
func formRank(d dec) int {
	switch d.form {
	case formNegInf:
		return 0
	case formPosInf:
		return 2
	case formNaN:
		return 3
	}
	return 1
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// digitPosition returns p such that 10^p <= |coef| < 10^(p+1), i.e. the
// number of decimal digits of coef minus one. coef is not zero.
func digitCount(d dec) int {
	if d.b == nil {
		u := uabs(d.c)
		n := 1
		for u >= 10 {
			u /= 10
			n++
		}
		return n
	}
	return len(new(big.Int).Abs(d.b).String())
}

// weightAndFirst returns PostgreSQL's normalized weight (position of the
// most significant base-10000 digit relative to the decimal point) and the
// value of that digit, as select_div_scale computes them; zero gives 0, 0.
func weightAndFirst(d dec) (int, int64) {
	if d.sign() == 0 {
		return 0, 0
	}
	n := digitCount(d)
	p := n - 1 - int(d.scale) // 10^p <= |v| < 10^(p+1)
	w := floorDiv(p, 4)
	shift := int(d.scale) + 4*w
	if d.b == nil {
		u := uabs(d.c)
		switch {
		case shift >= len(pow10):
			return w, 0 // cannot happen: the digit is < 10^4
		case shift >= 0:
			return w, int64(u / uint64(pow10[shift]))
		default:
			return w, int64(u) * pow10[-shift] // |coef| < 10^4 here
		}
	}
	abs := new(big.Int).Abs(d.b)
	if shift >= 0 {
		abs.Quo(abs, bigPow10(shift))
	} else {
		abs.Mul(abs, bigPow10(-shift))
	}
	return w, abs.Int64()
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// divScale is PostgreSQL's select_div_scale: enough digits for 16
// significant digits of the quotient, and no fewer than either input's
// display scale.
func divScale(a, b dec) int32 {
	w1, f1 := weightAndFirst(a)
	w2, f2 := weightAndFirst(b)
	qweight := w1 - w2
	if f1 <= f2 {
		qweight--
	}
	rscale := 16 - qweight*4
	rscale = max(rscale, int(a.scale), int(b.scale), 0)
	return int32(min(rscale, maxDisplayScale))
}

// decDiv returns a/b as PostgreSQL's numeric division does: the scale
// chosen by select_div_scale, rounded half away from zero.
func decDiv(a, b dec) (dec, error) {
	if !a.finite() || !b.finite() {
		switch {
		case a.form == formNaN || b.form == formNaN:
			return dec{form: formNaN}, nil
		case !a.finite() && !b.finite():
			return dec{form: formNaN}, nil
		case !b.finite(): // finite / ±Infinity
			return dec{}, nil
		}
		switch b.sign() {
		case 0:
			return dec{}, errDivByZero
		case 1:
			return dec{form: a.form}, nil
		}
		return decNeg(dec{form: a.form}), nil
	}
	if b.sign() == 0 {
		return dec{}, errDivByZero
	}
	return decQuo(a, b, divScale(a, b)), nil
}

// decQuo returns a/b rounded half away from zero at scale rscale; b is a
// non-zero finite number.
func decQuo(a, b dec, rscale int32) dec {
	// a/b = (ca × 10^-sa) / (cb × 10^-sb); at scale r the coefficient is
	// ca × 10^(r - sa + sb) / cb.
	e := int(rscale) - int(a.scale) + int(b.scale)
	if a.b == nil && b.b == nil && e >= 0 && e < len(pow10) {
		if q, ok := quo128(a.c, pow10[e], b.c); ok {
			return dec{c: q, scale: rscale}
		}
	}
	sc := bigScratchPool.Get().(*bigScratch)
	defer bigScratchPool.Put(sc)
	num, den := sc.setCoef(&sc.a, a), sc.setCoef(&sc.b, b)
	if e >= 0 {
		num.Mul(num, bigPow10(e))
	} else {
		den.Mul(den, bigPow10(-e))
	}
	q := new(big.Int)
	q.QuoRem(num, den, &sc.r)
	roundHalfAway(q, &sc.r, (num.Sign() < 0) != (den.Sign() < 0), den)
	return decFromBig(q, rscale)
}

// bigScratch holds big.Ints reused by divisions, so that only the result
// is allocated.
type bigScratch struct{ a, b, r big.Int }

var bigScratchPool = sync.Pool{New: func() any { return new(bigScratch) }}

func (*bigScratch) setCoef(z *big.Int, d dec) *big.Int {
	if d.b != nil {
		return z.Set(d.b)
	}
	return z.SetInt64(d.c)
}

// roundHalfAway adjusts a truncated quotient q with remainder r (r is
// modified) away from zero when |r| >= |den|/2.
func roundHalfAway(q, r *big.Int, negative bool, den *big.Int) {
	if r.Sign() == 0 {
		return
	}
	r.Abs(r).Lsh(r, 1)
	if r.CmpAbs(den) < 0 {
		return
	}
	if negative {
		q.Sub(q, bigOne)
	} else {
		q.Add(q, bigOne)
	}
}

var bigOne = big.NewInt(1)

// quo128 computes round_half_away(x × m / y) in 128-bit arithmetic; m > 0,
// y != 0. It reports false when the result does not fit an int64.
func quo128(x, m, y int64) (int64, bool) {
	neg := (x < 0) != (y < 0)
	hi, lo := bits.Mul64(uabs(x), uint64(m))
	uy := uabs(y)
	if hi >= uy {
		return 0, false
	}
	q, r := bits.Div64(hi, lo, uy)
	// Round half away from zero: compare 2r with y without overflow.
	if r >= uy-r {
		q++
	}
	if q > math.MaxInt64 {
		return 0, false
	}
	if neg {
		return -int64(q), true
	}
	return int64(q), true
}

// quoRoundHalfAway returns num/den rounded half away from zero.
func quoRoundHalfAway(num, den *big.Int) *big.Int {
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	roundHalfAway(q, r, (num.Sign() < 0) != (den.Sign() < 0), den)
	return q
}

// decRound rounds d to s digits after the point, half away from zero, as
// round(numeric, s) does; a negative s rounds to the left of the point.
// The display scale becomes max(s, 0).
func decRound(d dec, s int32) dec {
	if !d.finite() {
		return d
	}
	rs := max(s, 0)
	if s >= d.scale {
		return d.withScale(rs)
	}
	drop := d.scale - s // digits to remove, > 0
	var q dec
	if d.b == nil && drop < int32(len(pow10)) {
		p := pow10[drop]
		c := d.c / p
		r := d.c % p
		if uabs(r) >= uint64(p)-uabs(r) {
			if d.c < 0 {
				c--
			} else {
				c++
			}
		}
		q = dec{c: c}
	} else {
		q = decFromBig(quoRoundHalfAway(new(big.Int).Set(d.coef()), bigPow10(int(drop))), 0)
	}
	// q is the value in units of 10^-s; bring it to scale rs.
	if s < 0 {
		return decScaleBy(q, -s, 0)
	}
	q.scale = s
	return q
}

// decScaleBy returns coef(q) × 10^n at the given scale.
func decScaleBy(q dec, n int32, scale int32) dec {
	if q.b == nil {
		if c, ok := mulPow10(q.c, n); ok {
			return dec{c: c, scale: scale}
		}
	}
	return decFromBig(new(big.Int).Mul(q.coef(), bigPow10(int(n))), scale)
}

// decTrunc truncates d toward zero to s >= 0 digits.
func decTrunc(d dec, s int32) dec {
	if !d.finite() || s >= d.scale {
		return d
	}
	drop := d.scale - s
	if d.b == nil && drop < int32(len(pow10)) {
		return dec{c: d.c / pow10[drop], scale: s}
	}
	return decFromBig(new(big.Int).Quo(d.coef(), bigPow10(int(drop))), s)
}

// decFloor and decCeil round to an integer (scale 0) downward and upward.
func decFloor(d dec) dec {
	t := decTrunc(d, 0)
	if d.finite() && d.sign() < 0 && decCmp(t, d) != 0 {
		return decAdd(t, decInt(-1))
	}
	return t
}

func decCeil(d dec) dec {
	t := decTrunc(d, 0)
	if d.finite() && d.sign() > 0 && decCmp(t, d) != 0 {
		return decAdd(t, decInt(1))
	}
	return t
}

// decMod is numeric's %: the remainder of truncated division, with the
// sign of a; its display scale is the larger of the two.
func decMod(a, b dec) (dec, error) {
	if !a.finite() || !b.finite() {
		switch {
		case a.form == formNaN || b.form == formNaN:
			return dec{form: formNaN}, nil
		case !a.finite():
			return dec{form: formNaN}, nil
		}
		return a, nil // finite % ±Infinity
	}
	if b.sign() == 0 {
		return dec{}, errDivByZero
	}
	s := max(a.scale, b.scale)
	x, y := a.rescaledBig(s), b.rescaledBig(s)
	return decFromBig(x.Rem(x, y), s), nil
}

// decToInt64 rounds d half away from zero to an integer.
func decToInt64(d dec) (int64, bool) {
	if !d.finite() {
		return 0, false
	}
	r := decRound(d, 0)
	if r.b != nil {
		return 0, false
	}
	return r.c, true
}

// decToFloat returns the nearest float64, as PostgreSQL's numeric to
// double precision conversion does (it parses the text).
func decToFloat(d dec) float64 {
	switch d.form {
	case formNaN:
		return math.NaN()
	case formPosInf:
		return math.Inf(1)
	case formNegInf:
		return math.Inf(-1)
	}
	if d.b == nil && d.scale == 0 && uabs(d.c) < 1<<53 {
		return float64(d.c)
	}
	f, _ := strconv.ParseFloat(d.String(), 64)
	return f
}

// decFromFloat converts a float as PostgreSQL's float8_numeric (digits
// 15) and float4_numeric (digits 6) do: through printf's %.*g.
func decFromFloat(f float64, digits int) (dec, error) {
	switch {
	case math.IsNaN(f):
		return dec{form: formNaN}, nil
	case math.IsInf(f, 1):
		return dec{form: formPosInf}, nil
	case math.IsInf(f, -1):
		return dec{form: formNegInf}, nil
	}
	s := strconv.FormatFloat(f, 'e', digits-1, 64)
	mant, exp, _ := strings.Cut(s, "e")
	mant = strings.TrimRight(strings.TrimRight(mant, "0"), ".")
	e, _ := strconv.Atoi(exp)
	d, err := parseDec(mant)
	if err != nil {
		return dec{}, err
	}
	return decShift(d, e), nil
}

// decShift returns d × 10^e, adjusting the display scale as numeric_in
// does for an exponent.
func decShift(d dec, e int) dec {
	if e == 0 || !d.finite() {
		return d
	}
	ns := int(d.scale) - e
	if ns >= 0 {
		return dec{c: d.c, b: d.b, scale: int32(ns)}
	}
	return decScaleBy(dec{c: d.c, b: d.b}, int32(-ns), 0)
}

// parseDec reads PostgreSQL numeric input ("-12.50", "1e3", ".5", "NaN",
// "Infinity") and Java BigDecimal.toString output ("1E-7", "0E-8"), plus
// Debezium's names for the special values.
func parseDec(s string) (dec, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "nan":
		return dec{form: formNaN}, nil
	case "infinity", "+infinity", "inf", "+inf", "positive_infinity":
		return dec{form: formPosInf}, nil
	case "-infinity", "-inf", "negative_infinity":
		return dec{form: formNegInf}, nil
	}
	i := 0
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	var c uint64
	var b *big.Int
	digits, frac := 0, 0
	seenPoint := false
	for ; i < len(s); i++ {
		ch := s[i]
		if ch == '.' {
			if seenPoint {
				return dec{}, errBadNumeric
			}
			seenPoint = true
			continue
		}
		if ch < '0' || ch > '9' {
			break
		}
		digits++
		if seenPoint {
			frac++
		}
		v := uint64(ch - '0')
		if b == nil && c <= (math.MaxInt64-9)/10 {
			c = c*10 + v
			continue
		}
		if b == nil {
			b = new(big.Int).SetUint64(c)
		}
		b.Mul(b, big.NewInt(10)).Add(b, big.NewInt(int64(v)))
	}
	if digits == 0 {
		return dec{}, errBadNumeric
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > 1000000 || e < -1000000 {
			return dec{}, errBadNumeric
		}
		exp = e
		i = len(s)
	}
	if i != len(s) {
		return dec{}, errBadNumeric
	}
	var d dec
	if b != nil {
		if neg {
			b.Neg(b)
		}
		d = decFromBig(b, int32(frac))
	} else {
		v := int64(c)
		if neg {
			v = -v
		}
		d = dec{c: v, scale: int32(frac)}
	}
	d = decShift(d, exp)
	if d.scale > maxDisplayScale {
		d = decRound(d, maxDisplayScale)
	}
	return d, nil
}

// String returns PostgreSQL's text output: plain notation with exactly
// scale digits after the point.
func (d dec) String() string { return string(d.appendText(nil)) }

func (d dec) appendText(dst []byte) []byte {
	switch d.form {
	case formNaN:
		return append(dst, "NaN"...)
	case formPosInf:
		return append(dst, "Infinity"...)
	case formNegInf:
		return append(dst, "-Infinity"...)
	}
	var digits []byte
	var buf [24]byte
	neg := false
	if d.b == nil {
		digits = strconv.AppendUint(buf[:0], uabs(d.c), 10)
		neg = d.c < 0
	} else {
		digits = new(big.Int).Abs(d.b).Append(buf[:0], 10)
		neg = d.b.Sign() < 0
	}
	if neg {
		dst = append(dst, '-')
	}
	s := int(d.scale)
	if s == 0 {
		return append(dst, digits...)
	}
	if len(digits) <= s {
		dst = append(dst, '0', '.')
		for i := len(digits); i < s; i++ {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	dst = append(dst, digits[:len(digits)-s]...)
	dst = append(dst, '.')
	return append(dst, digits[len(digits)-s:]...)
}

// normalized strips trailing zeros of the fraction: equal numbers give
// identical normalized forms (for hashing).
func (d dec) normalized() dec {
	if !d.finite() {
		return dec{form: d.form}
	}
	if d.sign() == 0 {
		return dec{}
	}
	if d.b == nil {
		for d.scale > 0 && d.c%10 == 0 {
			d.c /= 10
			d.scale--
		}
		return d
	}
	c := new(big.Int).Set(d.b)
	r := new(big.Int)
	ten := big.NewInt(10)
	for d.scale > 0 {
		q, m := new(big.Int).QuoRem(c, ten, r)
		if m.Sign() != 0 {
			break
		}
		c = q
		d.scale--
	}
	return decFromBig(c, d.scale)
}

// decCoerce applies the type modifier numeric(precision, scale): rounds to
// scale and fails when the integer part needs more than precision-scale
// digits.
func decCoerce(d dec, precision, scale int) (dec, error) {
	if !d.finite() {
		if d.form == formNaN {
			return d, nil
		}
		return dec{}, errors.New("numeric field overflow: a field with precision " + strconv.Itoa(precision) + ", scale " + strconv.Itoa(scale) + " cannot hold an infinite value")
	}
	r := decRound(d, int32(scale))
	if r.sign() != 0 {
		intDigits := digitCount(r) - scale
		if intDigits > precision-scale {
			return dec{}, errors.New("numeric field overflow: a field with precision " + strconv.Itoa(precision) + ", scale " + strconv.Itoa(scale) + " must round to an absolute value less than 10^" + strconv.Itoa(precision-scale))
		}
	}
	return r, nil
}
