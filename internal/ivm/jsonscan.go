package ivm

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner reads the JSON of Debezium records without building a tree and
// without allocating: values the engine does not need are skipped.
type scanner struct {
	b []byte
	i int
}

var errJSONEnd = errors.New("unexpected end of JSON")

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("JSON at byte %d: %s", s.i, fmt.Sprintf(format, args...))
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end).
func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		if s.i >= len(s.b) {
			return errJSONEnd
		}
		return s.errorf("expected %q, found %q", c, s.b[s.i])
	}
	s.i++
	return nil
}

// literal consumes one of true, false, null.
func (s *scanner) literal(word string) bool {
	if s.peek() != word[0] || len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// rawString reads a string and returns its bytes between the quotes, and
// whether it holds escapes (then appendUnescaped decodes it). Control
// characters inside strings are not rejected.
func (s *scanner) rawString() ([]byte, bool, error) {
	if err := s.expect('"'); err != nil {
		return nil, false, err
	}
	start := s.i
	escaped := false
	// Most strings of a record are short (field names, numbers as text):
	// a plain loop over their first bytes is quicker than the calls below.
	for end := min(len(s.b), s.i+24); s.i < end; s.i++ {
		switch s.b[s.i] {
		case '"':
			raw := s.b[start:s.i]
			s.i++
			return raw, escaped, nil
		case '\\':
			escaped = true
			s.i++ // the character it escapes
		}
	}
	if s.i > len(s.b) {
		return nil, false, errJSONEnd
	}
	for {
		j := bytes.IndexByte(s.b[s.i:], '"')
		if j < 0 {
			return nil, false, errJSONEnd
		}
		k := bytes.IndexByte(s.b[s.i:s.i+j], '\\')
		if k < 0 {
			s.i += j
			break
		}
		escaped = true
		s.i += k + 2 // the backslash and the character it escapes
		if s.i > len(s.b) {
			return nil, false, errJSONEnd
		}
	}
	raw := s.b[start:s.i]
	s.i++
	return raw, escaped, nil
}

// appendUnescaped appends the string content raw (with escapes) to dst,
// decoded.
func appendUnescaped(dst, raw []byte) ([]byte, error) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(raw) {
			return dst, errJSONEnd
		}
		switch raw[i] {
		case '"', '\\', '/':
			dst = append(dst, raw[i])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(raw[i+1:])
			if !ok {
				return dst, errors.New("bad \\u escape in JSON string")
			}
			i += 4
			if utf16.IsSurrogate(r) {
				d := utf8.RuneError
				if i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					if r2, ok := hex4(raw[i+3:]); ok {
						if d = utf16.DecodeRune(r, r2); d != utf8.RuneError {
							i += 6
						}
					}
				}
				r = d
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, fmt.Errorf("bad escape \\%c in JSON string", raw[i])
		}
	}
	return dst, nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// number reads a JSON number and returns its text.
func (s *scanner) number() ([]byte, error) {
	s.ws()
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			s.i++
			continue
		}
		break
	}
	if s.i == start {
		if s.i >= len(s.b) {
			return nil, errJSONEnd
		}
		return nil, s.errorf("expected a number, found %q", s.b[s.i])
	}
	return s.b[start:s.i], nil
}

// skip consumes one value of any type.
func (s *scanner) skip() error {
	switch c := s.peek(); c {
	case '"':
		_, _, err := s.rawString()
		return err
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '{', '[':
				depth++
				s.i++
			case '}', ']':
				depth--
				s.i++
				if depth == 0 {
					return nil
				}
			case '"':
				if _, _, err := s.rawString(); err != nil {
					return err
				}
			default:
				s.i++
			}
		}
		return errJSONEnd
	case 't':
		if s.literal("true") {
			return nil
		}
	case 'f':
		if s.literal("false") {
			return nil
		}
	case 'n':
		if s.literal("null") {
			return nil
		}
	case 0:
		return errJSONEnd
	default:
		_, err := s.number()
		return err
	}
	return s.errorf("invalid value")
}

// objectFields calls fn for every field of an object; fn must consume the
// field's value. The name is valid only during the call.
func (s *scanner) objectFields(fn func(name []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	var nameBuf []byte
	for {
		raw, escaped, err := s.rawString()
		if err != nil {
			return err
		}
		name := raw
		if escaped {
			if nameBuf, err = appendUnescaped(nameBuf[:0], raw); err != nil {
				return err
			}
			name = nameBuf
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := fn(name); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		case 0:
			return errJSONEnd
		default:
			return s.errorf("expected ',' or '}'")
		}
	}
}
