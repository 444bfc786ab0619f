// Package floattext writes floating-point numbers as other systems write
// them as text: Java's Double.toString and Float.toString (and Jackson's
// JSON numbers, which are made of them), and PostgreSQL's float8out and
// float4out. Every cdcq package that must reproduce one of these texts
// calls this package instead of formatting floats itself.
//
// Java's rule is the one of JDK 19 and later (Raffaello Giulietti's
// shortest decimal, JDK-4511638), which Debezium 3.x images (Java 21)
// write. JDK 17 and earlier print a few rare doubles with more digits
// ("1.9999999999999998E23" for 2e23, "8.409999999999999E21" for 8.41e21,
// "1.0E-323" for 9.9E-324) and many floats with one digit more than needed
// ("7.0000008E7" for 7.000001E7, about one random bit pattern in twelve):
// text from a JVM before 19 differs from this package's on those values.
//
// testdata/java.txt holds Double.toString and Float.toString of JDK 25 for
// a few thousand values, testdata/postgres.txt float8out and float4out of
// PostgreSQL 15; the tests check every line.
//
// This package must not import other cdcq packages.
package floattext

import (
	"math"
	"strconv"
)

// AppendJava appends f as Java's Double.toString does (bitSize 64) or, for
// a float32 value held in f, as Float.toString does (bitSize 32): the
// decimal with the fewest digits that rounds back to f (when one digit is
// enough, the closest decimal of one or two digits), in plain notation
// with at least one fraction digit for 10^-3 <= |f| < 10^7 ("0.001",
// "100.0", "1234567.5") and in computerized scientific notation otherwise
// ("1.0E7", "9.9E-4", "4.9E-324"); NaN, Infinity, -Infinity, 0.0, -0.0.
func AppendJava(dst []byte, f float64, bitSize int) []byte {
	if dst, ok := appendSpecial(dst, f, "0.0"); ok {
		return dst
	}
	var buf [32]byte
	digits, exp := shortestDigits(buf[:0], f, bitSize)
	if len(digits) == 1 {
		// Java takes the closest of the decimals of one or two digits that
		// round to f: 1.4E-45 rather than 1.0E-45 for Float.MIN_VALUE.
		var buf2 [32]byte
		d2, exp2 := precisionDigits(buf2[:0], f, 2, bitSize)
		if roundsTo(d2, exp2, f, bitSize) {
			digits, exp = d2, exp2
		}
	}
	if f < 0 {
		dst = append(dst, '-')
	}
	if exp >= -3 && exp < 7 {
		return appendPlain(dst, digits, exp, true)
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

// AppendJacksonJSON appends f as a JSON number the way Jackson's
// JsonGenerator writes a Java double (bitSize 64) or float (32) with its
// defaults, which Kafka's JsonConverter and Flink's JSON format keep:
// AppendJava's text, except that NaN and the infinities are quoted
// ("NaN", "Infinity", "-Infinity"; QUOTE_NON_NUMERIC_NUMBERS).
func AppendJacksonJSON(dst []byte, f float64, bitSize int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		dst = append(dst, '"')
		dst = AppendJava(dst, f, bitSize)
		return append(dst, '"')
	}
	return AppendJava(dst, f, bitSize)
}

// appendSpecial appends NaN, Infinity and -Infinity, which Java and
// PostgreSQL spell alike, and a zero of either sign spelled as zero; ok is
// false, and nothing is appended, for any other value.
func appendSpecial(dst []byte, f float64, zero string) (_ []byte, ok bool) {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...), true
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...), true
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...), true
	case f == 0:
		if math.Signbit(f) {
			dst = append(dst, '-')
		}
		return append(dst, zero...), true
	}
	return dst, false
}

// shortestDigits returns the fewest significant decimal digits of |f|
// (no point, no trailing zeros) that read back as f (bitSize 32: as
// float32(f)), the closest such decimal when there are several, and the
// decimal exponent of the first digit. f must be finite and not zero.
func shortestDigits(dst []byte, f float64, bitSize int) ([]byte, int) {
	digits, exp := splitE(strconv.AppendFloat(dst, math.Abs(f), 'e', -1, bitSize))
	if significandIsPowerOfTwo(f, bitSize) {
		// Where two shortest decimals are equally close, Go 1.26's
		// Dragonbox takes the upper one for a float32 power of two (for
		// 2^-12, 2.4414063e-04 where Java and PostgreSQL write
		// 2.4414062E-4), not the even one. The correctly rounded decimal
		// of as many digits is the closest, the even one on a tie.
		var buf [32]byte
		if c, e := precisionDigits(buf[:0], f, len(digits), bitSize); roundsTo(c, e, f, bitSize) {
			digits = append(digits[:0], c...)
			exp = e
		}
	}
	return digits, exp
}

// significandIsPowerOfTwo reports whether f (a float32 value for bitSize
// 32) is a normal number with no significand bits besides the implicit
// one: the numbers whose lower neighbour is nearer than the upper one.
func significandIsPowerOfTwo(f float64, bitSize int) bool {
	if bitSize == 32 {
		b := math.Float32bits(float32(f))
		return b&(1<<23-1) == 0 && b&0x7f800000 > 1<<23
	}
	b := math.Float64bits(f)
	return b&(1<<52-1) == 0 && b&0x7ff0000000000000 > 1<<52
}

// precisionDigits is shortestDigits for the decimal of n significant
// digits closest to |f|, without its trailing zeros.
func precisionDigits(dst []byte, f float64, n, bitSize int) ([]byte, int) {
	d, exp := splitE(strconv.AppendFloat(dst, math.Abs(f), 'e', n-1, bitSize))
	for len(d) > 1 && d[len(d)-1] == '0' {
		d = d[:len(d)-1]
	}
	return d, exp
}

// splitE splits strconv's unsigned 'e' format ("1.2345e+06") into the
// digits without the point ("12345"), which alias e, and the exponent.
func splitE(e []byte) ([]byte, int) {
	i := len(e) - 1
	for e[i] != 'e' {
		i--
	}
	exp, sign := 0, 1
	for _, c := range e[i+1:] {
		switch {
		case c == '-':
			sign = -1
		case c >= '0' && c <= '9':
			exp = exp*10 + int(c-'0')
		}
	}
	mant := e[:i]
	if len(mant) > 1 { // "d.ddd": drop the point in place
		copy(mant[1:], mant[2:])
		mant = mant[:len(mant)-1]
	}
	return mant, sign * exp
}

// roundsTo reports whether the decimal digits × 10^(exp-len+1) reads back
// as |f| (bitSize 32: as float32).
func roundsTo(digits []byte, exp int, f float64, bitSize int) bool {
	var buf [40]byte
	s := append(buf[:0], digits...)
	s = append(s, 'e')
	s = strconv.AppendInt(s, int64(exp-len(digits)+1), 10)
	g, err := strconv.ParseFloat(string(s), bitSize)
	return err == nil && g == math.Abs(f)
}

// appendPlain writes digits × 10^(exp-len+1) in plain notation;
// withFraction writes ".0" after an integer.
func appendPlain(dst, digits []byte, exp int, withFraction bool) []byte {
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
