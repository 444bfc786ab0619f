package dbzjson

import (
	"errors"
	"sync"
	"unsafe"
)

// PostgreSQL array literals as array_out writes them (and array_in reads
// them): an optional dimension decoration "[1:3]=" when a lower bound is
// not 1, then '{', elements separated by the type's delimiter, '}'. An
// element is NULL, an unquoted string (no delimiter, braces, quotes,
// backslashes or surrounding white space) or a double-quoted string in
// which backslash escapes the next character. Nested braces are further
// dimensions.

var errArray = errors.New("malformed array literal")

type arrayToken uint8

const (
	tokEnd arrayToken = iota
	tokOpen
	tokClose
	tokElem
	tokNull
)

// arrayScanner walks an array literal token by token. An element's text
// is valid until the next call to next; it aliases the input unless the
// element had escapes, in which case it is unescaped into scratch.
type arrayScanner struct {
	s       string
	i       int
	delim   byte
	depth   int
	wantVal bool // after '{' or a delimiter: an element or '{' comes next
	leaf    int  // depth of the elements, once one was seen: all must share it
	started bool
	scratch *[]byte
}

func newArrayScanner(s string, delim byte) arrayScanner {
	sc := arrayScanner{s: s, delim: delim}
	if len(s) > 0 && s[0] == '[' { // dimension decoration
		for i := 0; i < len(s); i++ {
			if s[i] == '=' {
				sc.i = i + 1
				break
			}
		}
	}
	return sc
}

func isArraySpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func (sc *arrayScanner) skipSpace() {
	for sc.i < len(sc.s) && isArraySpace(sc.s[sc.i]) {
		sc.i++
	}
}

func (sc *arrayScanner) next() (arrayToken, string, error) {
	sc.skipSpace()
	if !sc.started {
		if sc.i >= len(sc.s) || sc.s[sc.i] != '{' {
			return tokEnd, "", errArray
		}
		sc.started = true
		sc.i++
		sc.depth = 1
		sc.wantVal = true
		return tokOpen, "", nil
	}
	if sc.depth == 0 {
		if sc.i != len(sc.s) {
			return tokEnd, "", errArray
		}
		return tokEnd, "", nil
	}
	if sc.i >= len(sc.s) {
		return tokEnd, "", errArray
	}
	c := sc.s[sc.i]
	if !sc.wantVal {
		switch c {
		case '}':
			sc.i++
			sc.depth--
			return tokClose, "", nil
		case sc.delim:
			sc.i++
			sc.wantVal = true
			sc.skipSpace()
			if sc.i >= len(sc.s) || sc.s[sc.i] == '}' || sc.s[sc.i] == sc.delim {
				return tokEnd, "", errArray
			}
			return sc.next()
		}
		return tokEnd, "", errArray
	}
	switch c {
	case '{':
		sc.i++
		sc.depth++
		if sc.leaf != 0 && sc.depth > sc.leaf {
			return tokEnd, "", errArray
		}
		return tokOpen, "", nil
	case '}':
		// Only an empty array ("{}") gets here: a delimiter followed by
		// '}' was refused above.
		sc.i++
		sc.depth--
		sc.wantVal = false
		return tokClose, "", nil
	}
	if sc.leaf == 0 {
		sc.leaf = sc.depth
	} else if sc.leaf != sc.depth {
		return tokEnd, "", errArray
	}
	sc.wantVal = false
	if c == '"' {
		return sc.quoted()
	}
	return sc.unquoted()
}

func (sc *arrayScanner) quoted() (arrayToken, string, error) {
	start := sc.i + 1
	for j := start; j < len(sc.s); j++ {
		switch sc.s[j] {
		case '"':
			sc.i = j + 1
			return tokElem, sc.s[start:j], nil
		case '\\':
			return sc.quotedEscaped(start)
		}
	}
	return tokEnd, "", errArray
}

func (sc *arrayScanner) quotedEscaped(start int) (arrayToken, string, error) {
	buf := sc.buffer()
	for j := start; j < len(sc.s); j++ {
		switch c := sc.s[j]; c {
		case '"':
			sc.i = j + 1
			*sc.scratch = buf
			return tokElem, unsafe.String(unsafe.SliceData(buf), len(buf)), nil
		case '\\':
			j++
			if j >= len(sc.s) {
				return tokEnd, "", errArray
			}
			buf = append(buf, sc.s[j])
		default:
			buf = append(buf, c)
		}
	}
	*sc.scratch = buf
	return tokEnd, "", errArray
}

func (sc *arrayScanner) unquoted() (arrayToken, string, error) {
	start, escaped := sc.i, false
	j := start
	for ; j < len(sc.s); j++ {
		c := sc.s[j]
		if c == sc.delim || c == '}' {
			break
		}
		switch c {
		case '{', '"':
			return tokEnd, "", errArray
		case '\\':
			escaped = true
			j++
		}
	}
	if j > len(sc.s) {
		return tokEnd, "", errArray
	}
	sc.i = j
	text := sc.s[start:j]
	// Trailing white space is not part of an unquoted element (unless
	// escaped, which the slow path handles).
	if !escaped {
		for len(text) > 0 && isArraySpace(text[len(text)-1]) {
			text = text[:len(text)-1]
		}
		if len(text) == 4 && (text[0]|0x20) == 'n' && (text[1]|0x20) == 'u' && (text[2]|0x20) == 'l' && (text[3]|0x20) == 'l' {
			return tokNull, "", nil
		}
		if text == "" {
			return tokEnd, "", errArray
		}
		return tokElem, text, nil
	}
	buf := sc.buffer()
	keep := 0 // length up to the last escaped or non-space byte
	for k := 0; k < len(text); k++ {
		c := text[k]
		if c == '\\' {
			k++
			buf = append(buf, text[k])
			keep = len(buf)
			continue
		}
		buf = append(buf, c)
		if !isArraySpace(c) {
			keep = len(buf)
		}
	}
	buf = buf[:keep]
	*sc.scratch = buf
	return tokElem, unsafe.String(unsafe.SliceData(buf), len(buf)), nil
}

// buffer returns the scratch buffer emptied, taking one from the pool on
// first use. The caller returns it with releaseScratch.
func (sc *arrayScanner) buffer() []byte {
	if sc.scratch == nil {
		sc.scratch = scratchPool.Get().(*[]byte)
	}
	return (*sc.scratch)[:0]
}

var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

func (sc *arrayScanner) release() {
	if sc.scratch != nil {
		if cap(*sc.scratch) <= 64<<10 {
			scratchPool.Put(sc.scratch)
		}
		sc.scratch = nil
	}
}

// appendArray writes an array literal as a JSON array whose elements are
// written by c.elem. Debezium's converters take one-dimensional arrays:
// each element of a multi-dimensional one is itself an array, which the
// element converter cannot convert, so Debezium writes null for it (for
// numbers, booleans, dates and times) or a Java object's name (for text,
// "[Ljava.lang.String;@1b6d3586"), which cdcq cannot reproduce; cdcq writes
// null for every element of a multi-dimensional array. A numeric array
// holding NaN or an infinity (c.nullOnSpecial) and an enum array holding
// NULL (c.nullOnNull) are null as a whole, as Debezium writes them.
func appendArray(dst []byte, s string, c *codec) ([]byte, error) {
	sc := newArrayScanner(s, c.delim)
	defer sc.release()
	mark := len(dst)
	first := true
	for {
		tok, text, err := sc.next()
		if err != nil {
			return dst[:mark], err
		}
		switch tok {
		case tokEnd:
			return dst, nil
		case tokOpen:
			if sc.depth > 1 {
				return appendOuterNulls(dst[:mark], s, c.delim)
			}
			dst = append(dst, '[')
			first = true
			continue
		case tokClose:
			dst = append(dst, ']')
		case tokNull:
			if c.nullOnNull {
				return append(dst[:mark], "null"...), sc.rest()
			}
			if !first {
				dst = append(dst, ',')
			}
			dst = append(dst, "null"...)
		case tokElem:
			if c.nullOnSpecial && isNumericSpecial(text) {
				return append(dst[:mark], "null"...), sc.rest()
			}
			if !first {
				dst = append(dst, ',')
			}
			if dst, err = c.elem.append(dst, text); err != nil {
				return dst[:mark], err
			}
		}
		first = false
	}
}

// rest checks that the rest of the literal is well formed.
func (sc *arrayScanner) rest() error {
	for {
		tok, _, err := sc.next()
		if err != nil || tok == tokEnd {
			return err
		}
	}
}

// appendOuterNulls writes a multi-dimensional array as Debezium does: a
// null for each element of its first dimension.
func appendOuterNulls(dst []byte, s string, delim byte) ([]byte, error) {
	sc := newArrayScanner(s, delim)
	defer sc.release()
	n := 0
	for {
		tok, _, err := sc.next()
		if err != nil {
			return dst, err
		}
		if tok == tokEnd {
			break
		}
		if tok == tokOpen && sc.depth == 2 {
			n++
		}
	}
	dst = append(dst, '[')
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, "null"...)
	}
	return append(dst, ']'), nil
}
