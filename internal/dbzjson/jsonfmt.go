package dbzjson

import (
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
