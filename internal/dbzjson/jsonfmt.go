package dbzjson

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// JSON text the way Kafka's JsonConverter (Jackson) writes it.

const hexUpper = "0123456789ABCDEF"

// needsEscape marks the ASCII bytes Jackson escapes in strings: control
// characters, '"' and '\\'. Non-ASCII text is written as raw UTF-8.
var needsEscape = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// appendString appends s as a JSON string. Jackson writes the short escapes
// \b \t \n \f \r, \uXXXX with upper-case hex for the other control
// characters, and everything else as is. Invalid UTF-8 (which a UTF-8
// database does not produce) becomes U+FFFD, as Java's decoder does.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if !needsEscape[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendEscape(dst, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendEscape(dst []byte, c byte) []byte {
	switch c {
	case '"':
		return append(dst, '\\', '"')
	case '\\':
		return append(dst, '\\', '\\')
	case '\b':
		return append(dst, '\\', 'b')
	case '\t':
		return append(dst, '\\', 't')
	case '\n':
		return append(dst, '\\', 'n')
	case '\f':
		return append(dst, '\\', 'f')
	case '\r':
		return append(dst, '\\', 'r')
	}
	return append(dst, '\\', 'u', '0', '0', hexUpper[c>>4], hexUpper[c&0xF])
}

// appendJavaFloat appends f the way Jackson writes a Java float (bits 32)
// or double (bits 64): NaN and the infinities as the strings "NaN",
// "Infinity" and "-Infinity" (QUOTE_NON_NUMERIC_NUMBERS is on by default),
// everything else as Float.toString/Double.toString of JDK 19 and later.
func appendJavaFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	return appendJavaFloatDigits(dst, f, bits)
}

// appendJavaFloatDigits formats a finite value like Java's
// Double.toString/Float.toString: the shortest decimal that rounds back to
// the value (when that has one digit, the closest two-digit decimal, as the
// JDK 19 specification says), in plain notation with at least one fraction
// digit for 1e-3 <= |f| < 1e7 and in computerized scientific notation
// ("1.0E7", "1.2E-5") otherwise.
func appendJavaFloatDigits(dst []byte, f float64, bits int) []byte {
	if f == 0 {
		if math.Signbit(f) {
			return append(dst, "-0.0"...)
		}
		return append(dst, "0.0"...)
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, bits)
	digits, exp, neg := splitExp(e)
	if len(digits) == 1 {
		// JDK 19+: among one- and two-digit decimals that round to f, the
		// closest. That differs from the one-digit one only for values such
		// as Float.MIN_VALUE (1.4E-45, not 1.0E-45).
		var buf2 [32]byte
		e2 := strconv.AppendFloat(buf2[:0], f, 'e', 1, bits)
		if d2, exp2, neg2 := splitExp(e2); d2[1] != '0' && roundTrips(e2Text(d2, exp2), f, bits) {
			digits, exp, neg = d2, exp2, neg2
		}
	}
	if neg {
		dst = append(dst, '-')
	}
	if exp >= -3 && exp < 7 {
		if exp < 0 {
			dst = append(dst, '0', '.')
			for i := -1; i > exp; i-- {
				dst = append(dst, '0')
			}
			return append(dst, digits...)
		}
		intLen := exp + 1
		if len(digits) <= intLen {
			dst = append(dst, digits...)
			for i := len(digits); i < intLen; i++ {
				dst = append(dst, '0')
			}
			return append(dst, '.', '0')
		}
		dst = append(dst, digits[:intLen]...)
		dst = append(dst, '.')
		return append(dst, digits[intLen:]...)
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

// splitExp splits strconv's 'e' format ("-1.2345e+06") into its significant
// digits without the point ("12345"), the decimal exponent and the sign.
// The digits alias the input.
func splitExp(e []byte) (digits []byte, exp int, neg bool) {
	if e[0] == '-' {
		neg = true
		e = e[1:]
	}
	ePos := len(e) - 1
	for e[ePos] != 'e' {
		ePos--
	}
	mant := e[:ePos]
	if len(mant) > 1 { // "d.ddd": drop the point in place
		copy(mant[1:], mant[2:])
		mant = mant[:len(mant)-1]
	}
	x, sign := 0, 1
	for _, c := range e[ePos+1:] {
		switch {
		case c == '-':
			sign = -1
		case c >= '0' && c <= '9':
			x = x*10 + int(c-'0')
		}
	}
	return mant, sign * x, neg
}

// e2Text rebuilds "d.dEx" from two digits and an exponent.
func e2Text(d []byte, exp int) string {
	return string(d[0]) + "." + string(d[1]) + "e" + strconv.Itoa(exp)
}

func roundTrips(s string, f float64, bits int) bool {
	g, err := strconv.ParseFloat(s, bits)
	return err == nil && math.Abs(g) == math.Abs(f)
}

// appendJavaBigDecimal appends the decimal number in PostgreSQL's numeric
// text (an optional '-', digits, an optional '.' and digits) as Java's
// BigDecimal.toString writes it, which is what Debezium puts into a
// decimal.handling.mode=string field: plain notation unless the adjusted
// exponent is below -6, then scientific ("1E-7", "0E-8", "1.5E-7"). It
// reports false when s is not such a number.
func appendJavaBigDecimal(dst []byte, s string) ([]byte, bool) {
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	intPart, frac := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			intPart, frac = s[:i], s[i+1:]
			break
		}
	}
	if intPart == "" && frac == "" || !allDigits(intPart) || !allDigits(frac) {
		return dst, false
	}
	scale := len(frac)
	// The unscaled value's digits without leading zeros: its precision.
	lead := 0
	for lead < len(intPart) && intPart[lead] == '0' {
		lead++
	}
	coeffInt := intPart[lead:]
	coeffFrac := frac
	if coeffInt == "" {
		i := 0
		for i < len(coeffFrac) && coeffFrac[i] == '0' {
			i++
		}
		coeffFrac = coeffFrac[i:]
	}
	precision := len(coeffInt) + len(coeffFrac)
	zero := precision == 0
	if zero {
		precision = 1
	}
	adjusted := precision - 1 - scale
	if neg && !zero {
		dst = append(dst, '-')
	}
	if adjusted >= -6 {
		// Plain: the integer part (at least "0"), then the scale's digits.
		if coeffInt == "" {
			dst = append(dst, '0')
		} else {
			dst = append(dst, coeffInt...)
		}
		if scale > 0 {
			dst = append(dst, '.')
			dst = append(dst, frac...)
		}
		return dst, true
	}
	// Scientific: only reached with no integer digits (adjusted < -6).
	if zero {
		dst = append(dst, '0')
	} else {
		dst = append(dst, coeffFrac[0])
		if len(coeffFrac) > 1 {
			dst = append(dst, '.')
			dst = append(dst, coeffFrac[1:]...)
		}
	}
	dst = append(dst, 'E')
	return strconv.AppendInt(dst, int64(adjusted), 10), true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
