package dbzjson

import (
	"unicode/utf16"
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

// appendString appends s as a JSON string as Kafka's JsonConverter writes
// it (Jackson's UTF8JsonGenerator): the short escapes \b \t \n \f \r,
// \uXXXX with upper-case hex for the other control characters, a
// character outside the Basic Multilingual Plane as the \uXXXX escapes of
// its UTF-16 surrogate pair ("😀" is "\uD83D\uDE00"), and everything else
// as is. Invalid UTF-8 (which a UTF-8 database does not produce) becomes
// U+FFFD, as Java's decoder does.
func appendString(dst []byte, s string) []byte { return appendJSONString(dst, s, true) }

// appendJSONString is appendString; escapeSupplementary false writes
// characters outside the BMP as UTF-8, as Jackson's character-based
// generator does (Debezium's hstore JSON text).
func appendJSONString(dst []byte, s string, escapeSupplementary bool) []byte {
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
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...)
			i++
			start = i
			continue
		case r > 0xFFFF && escapeSupplementary:
			dst = append(dst, s[start:i]...)
			hi, lo := utf16.EncodeRune(r)
			dst = appendUnicodeEscape(dst, hi)
			dst = appendUnicodeEscape(dst, lo)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendUnicodeEscape(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hexUpper[r>>12&0xF], hexUpper[r>>8&0xF], hexUpper[r>>4&0xF], hexUpper[r&0xF])
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

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
