package dbzjson

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"

	"github.com/cdcq/cdcq/internal/floattext"
)

var errSyntax = errors.New("not in PostgreSQL's text output format")

func appendInt(dst []byte, v int64) []byte { return strconv.AppendInt(dst, v, 10) }

// append writes the JSON for one non-NULL value given in text form.
func (c *codec) append(dst []byte, s string) ([]byte, error) {
	switch c.kind {
	case kString:
		return appendString(dst, s), nil
	case kNull:
		return append(dst, "null"...), nil
	case kEmptyArray:
		return append(dst, "[]"...), nil
	case kBool:
		switch s {
		case "t", "true":
			return append(dst, "true"...), nil
		case "f", "false":
			return append(dst, "false"...), nil
		}
		return dst, errSyntax
	case kInt:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return dst, errSyntax
		}
		return appendInt(dst, v), nil
	case kOID:
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return dst, errSyntax
		}
		return appendInt(dst, int64(v)), nil
	case kFloat4, kFloat8:
		bits := 64
		if c.kind == kFloat4 {
			bits = 32
		}
		f, err := strconv.ParseFloat(s, bits)
		if err != nil {
			return dst, errSyntax
		}
		return floattext.AppendJacksonJSON(dst, f, bits), nil
	case kNumeric:
		return appendNumeric(dst, s)
	case kMoney:
		return appendMoney(dst, s)
	case kBytea:
		return appendByteaBase64(dst, s)
	case kBitBool:
		if s == "" {
			// A varbit(1) holding no bits: Integer.valueOf("", 2) fails
			// and Debezium writes null.
			return append(dst, "null"...), nil
		}
		for i := 0; i < len(s); i++ {
			switch s[i] {
			case '1':
				return append(dst, "true"...), nil
			case '0':
			default:
				return dst, errSyntax
			}
		}
		return append(dst, "false"...), nil
	case kBitBytes:
		return appendBits(dst, s)
	case kDate:
		return appendDate(dst, s)
	case kDateJDBC:
		return appendDateJDBC(dst, s)
	case kTimeJDBC:
		return appendTimeJDBC(dst, s)
	case kTimetzJDBC:
		return appendTimetzJDBC(dst, s)
	case kTimestampJDBC:
		return appendTimestampJDBC(dst, s)
	case kTimestamptzJDBC:
		return appendTimestamptzJDBC(dst, s, int(c.frac))
	case kPoint:
		return appendPoint(dst, s)
	case kHstore:
		return appendHstore(dst, s)
	case kTime:
		return appendTime(dst, s)
	case kTimetz:
		return appendTimetz(dst, s)
	case kTimestamp:
		return appendTimestamp(dst, s)
	case kTimestamptz:
		return appendTimestamptz(dst, s, int(c.frac))
	case kInterval:
		return appendInterval(dst, s)
	case kArray:
		return appendArray(dst, s, c)
	}
	return appendString(dst, s), nil
}

// appendNumeric writes numeric text as Debezium's string mode does:
// SpecialValueDecimal's BigDecimal.toPlainString, which is PostgreSQL's
// text itself (numeric_out never writes an exponent, and the text already
// has the column's scale), and the special values as the names of
// SpecialValueDecimal's constants.
func appendNumeric(dst []byte, s string) ([]byte, error) {
	switch s {
	case "NaN":
		return append(dst, `"NAN"`...), nil
	case "Infinity":
		return append(dst, `"POSITIVE_INFINITY"`...), nil
	case "-Infinity":
		return append(dst, `"NEGATIVE_INFINITY"`...), nil
	}
	if !isDecimal(s) {
		return dst, errSyntax
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), nil
}

// isNumericSpecial reports whether numeric text is NaN or an infinity.
func isNumericSpecial(s string) bool {
	return s == "NaN" || s == "Infinity" || s == "-Infinity"
}

// isDecimal reports whether s is an optional '-', digits and an optional
// fraction, with at least one digit.
func isDecimal(s string) bool {
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	digits, point := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !point:
			point = true
		default:
			return false
		}
	}
	return digits > 0
}

// appendMoney writes money text ("$1,234.56", "-$0.50") the way Debezium's
// string mode does: the amount parsed into a BigDecimal without currency
// symbol and group separators, written with toPlainString.
func appendMoney(dst []byte, s string) ([]byte, error) {
	// The sign may stand before or after the currency symbol ("-$1.00",
	// "$-1.00") or be parentheses, depending on lc_monetary.
	neg := strings.ContainsAny(s, "-(")
	var buf [48]byte
	num := buf[:0]
	seenPoint := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			num = append(num, c)
		case c == '.':
			if seenPoint {
				return dst, errSyntax
			}
			seenPoint = true
			num = append(num, c)
		}
	}
	if len(num) == 0 || (len(num) == 1 && seenPoint) {
		return dst, errSyntax
	}
	intPart, frac := num, []byte(nil)
	for i, c := range num {
		if c == '.' {
			intPart, frac = num[:i], num[i+1:]
		}
	}
	for len(intPart) > 0 && intPart[0] == '0' {
		intPart = intPart[1:]
	}
	zero := len(intPart) == 0 && allZero(frac)
	dst = append(dst, '"')
	if neg && !zero {
		dst = append(dst, '-')
	}
	if len(intPart) == 0 {
		dst = append(dst, '0')
	} else {
		dst = append(dst, intPart...)
	}
	if seenPoint && len(frac) > 0 {
		dst = append(dst, '.')
		dst = append(dst, frac...)
	}
	return append(dst, '"'), nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != '0' {
			return false
		}
	}
	return true
}

// appendByteaBase64 decodes bytea's hex output ("\x0a0b") and writes the
// bytes base64-encoded (binary.handling.mode=base64, java.util.Base64's
// basic encoder: standard alphabet with padding).
func appendByteaBase64(dst []byte, s string) ([]byte, error) {
	if len(s) < 2 || s[0] != '\\' || s[1] != 'x' || len(s)%2 != 0 {
		return dst, errSyntax
	}
	hex := s[2:]
	mark := len(dst)
	dst = append(dst, '"')
	var chunk [768]byte // a multiple of 3, so only the last chunk is padded
	for len(hex) > 0 {
		n := 0
		for n < len(chunk) && len(hex) > 0 {
			hi, ok1 := unhex(hex[0])
			lo, ok2 := unhex(hex[1])
			if !ok1 || !ok2 {
				return dst[:mark], errSyntax
			}
			chunk[n] = hi<<4 | lo
			n++
			hex = hex[2:]
		}
		dst = base64.StdEncoding.AppendEncode(dst, chunk[:n])
	}
	return append(dst, '"'), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// appendBits writes a bit string as io.debezium.data.Bits: the bits read as
// one binary number (first character most significant), stored
// little-endian in as few bytes as hold its highest set bit (so '00' is no
// bytes at all), then base64 as JsonConverter writes BYTES.
func appendBits(dst []byte, s string) ([]byte, error) {
	var small [64]byte
	var out []byte
	if n := (len(s) + 7) / 8; n <= len(small) {
		out = small[:n]
	} else {
		out = make([]byte, n)
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '1':
			bit := len(s) - 1 - i
			out[bit/8] |= 1 << (bit % 8)
		case '0':
		default:
			return dst, errSyntax
		}
	}
	for len(out) > 0 && out[len(out)-1] == 0 {
		out = out[:len(out)-1]
	}
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, out)
	return append(dst, '"'), nil
}
