package prismaschema

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokenKind int

const (
	tokEOF       tokenKind = iota
	tokNewline             // end of a line; blank reports a line with nothing on it
	tokIdent               // name, keyword or constant
	tokString              // "..." ; text holds the unescaped contents
	tokNumber              // -?digits(.digits)?
	tokAttr                // @name or @prefix.name; text holds the name without "@"
	tokBlockAttr           // @@name; text holds the name without "@@"
	tokDoc                 // /// comment; text holds the trimmed contents
	tokLBrace
	tokRBrace
	tokLParen
	tokRParen
	tokLBracket
	tokRBracket
	tokComma
	tokColon
	tokEquals
	tokQuestion
)

var punctuation = map[byte]tokenKind{
	'{': tokLBrace, '}': tokRBrace, '(': tokLParen, ')': tokRParen,
	'[': tokLBracket, ']': tokRBracket, ',': tokComma, ':': tokColon,
	'=': tokEquals, '?': tokQuestion,
}

type token struct {
	kind  tokenKind
	text  string // see tokenKind
	raw   string // the source text of the token
	pos   Position
	start int // byte offsets of the token in the source
	end   int
	blank bool // tokNewline only: the line held no token and no comment
}

// describe names a token for "found ..." in error messages.
func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of file"
	case tokNewline:
		return "end of line"
	case tokDoc:
		return "doc comment"
	case tokString:
		raw := t.raw
		if utf8.RuneCountInString(raw) > 40 {
			raw = string([]rune(raw)[:37]) + "..."
		}
		return "string " + raw
	}
	return strconv.Quote(t.raw)
}

// lexer turns source text into tokens on demand. A lexical error stops it:
// it records the error and returns tokEOF from then on.
type lexer struct {
	src      string
	off      int
	line     int
	col      int
	lineUsed bool // the current line has a token or a comment
	err      *Error
	filename string
}

func newLexer(filename string, src []byte) *lexer {
	s := string(src)
	s = strings.TrimPrefix(s, "\uFEFF")
	return &lexer{src: s, line: 1, col: 1, filename: filename}
}

func (l *lexer) pos() Position { return Position{Line: l.line, Column: l.col} }

func (l *lexer) peekByte(ahead int) byte {
	if l.off+ahead < len(l.src) {
		return l.src[l.off+ahead]
	}
	return 0
}

// advance moves past one character, which must not be a newline.
func (l *lexer) advance() {
	_, size := utf8.DecodeRuneInString(l.src[l.off:])
	l.off += size
	l.col++
}

func (l *lexer) fail(pos Position, format string, args ...any) token {
	if l.err == nil {
		l.err = &Error{Filename: l.filename, Pos: pos, Msg: fmt.Sprintf(format, args...)}
	}
	l.off = len(l.src)
	return token{kind: tokEOF, pos: pos, start: l.off, end: l.off}
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isIdentChar(c byte) bool {
	return isLetter(c) || isDigit(c) || c == '_'
}

func (l *lexer) next() token {
	if l.err != nil {
		return token{kind: tokEOF, pos: l.pos(), start: len(l.src), end: len(l.src)}
	}
	// Skip spaces and plain comments.
	for l.off < len(l.src) {
		c := l.src[l.off]
		if c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' {
			l.advance()
			continue
		}
		if c == '/' && l.peekByte(1) == '/' && l.peekByte(2) != '/' {
			l.lineUsed = true
			for l.off < len(l.src) && l.src[l.off] != '\n' {
				l.advance()
			}
			continue
		}
		break
	}
	start, pos := l.off, l.pos()
	if l.off >= len(l.src) {
		return token{kind: tokEOF, pos: pos, start: start, end: start}
	}
	c := l.src[l.off]
	tok := token{pos: pos, start: start}
	switch {
	case c == '\n':
		tok.kind, tok.blank = tokNewline, !l.lineUsed
		l.off++
		l.line++
		l.col = 1
		l.lineUsed = false
		tok.end, tok.raw = l.off, "\n"
		return tok
	case c == '/' && l.peekByte(1) == '/':
		// Doc comment: "///" up to the end of the line.
		for l.off < len(l.src) && l.src[l.off] != '\n' {
			l.advance()
		}
		tok.kind = tokDoc
		tok.text = strings.TrimSpace(strings.TrimSuffix(l.src[start+3:l.off], "\r"))
	case isLetter(c):
		for l.off < len(l.src) && isIdentChar(l.src[l.off]) {
			l.advance()
		}
		tok.kind, tok.text = tokIdent, l.src[start:l.off]
	case isDigit(c) || c == '-' && isDigit(l.peekByte(1)):
		l.advance()
		for isDigit(l.peekByte(0)) {
			l.advance()
		}
		if l.peekByte(0) == '.' && isDigit(l.peekByte(1)) {
			l.advance()
			for isDigit(l.peekByte(0)) {
				l.advance()
			}
		}
		if isIdentChar(l.peekByte(0)) || l.peekByte(0) == '.' {
			return l.fail(pos, "malformed number %q", l.src[start:l.off+1])
		}
		tok.kind, tok.text = tokNumber, l.src[start:l.off]
	case c == '"':
		return l.lexString(pos)
	case c == '@':
		return l.lexAttribute(pos)
	default:
		k, ok := punctuation[c]
		if !ok {
			r, _ := utf8.DecodeRuneInString(l.src[l.off:])
			return l.fail(pos, "unexpected character %q", r)
		}
		l.advance()
		tok.kind = k
	}
	l.lineUsed = true
	tok.end = l.off
	tok.raw = l.src[start:l.off]
	return tok
}

func (l *lexer) lexAttribute(pos Position) token {
	start := l.off
	kind := tokAttr
	l.advance()
	if l.peekByte(0) == '@' {
		kind = tokBlockAttr
		l.advance()
	}
	at := l.src[start:l.off]
	if !isLetter(l.peekByte(0)) {
		return l.fail(pos, "expected attribute name after %q", at)
	}
	nameStart := l.off
	for isIdentChar(l.peekByte(0)) {
		l.advance()
	}
	if l.peekByte(0) == '.' {
		l.advance()
		if !isLetter(l.peekByte(0)) {
			return l.fail(pos, "expected attribute name after %q", l.src[start:l.off])
		}
		for isIdentChar(l.peekByte(0)) {
			l.advance()
		}
	}
	l.lineUsed = true
	return token{kind: kind, text: l.src[nameStart:l.off], raw: l.src[start:l.off], pos: pos, start: start, end: l.off}
}

func (l *lexer) lexString(pos Position) token {
	start := l.off
	l.advance() // opening quote
	var b strings.Builder
	for {
		if l.off >= len(l.src) || l.src[l.off] == '\n' {
			return l.fail(pos, "string is not terminated before the end of the line")
		}
		c := l.src[l.off]
		if c == '"' {
			l.advance()
			break
		}
		if c != '\\' {
			r, size := utf8.DecodeRuneInString(l.src[l.off:])
			if r == utf8.RuneError && size == 1 {
				return l.fail(l.pos(), "string holds invalid UTF-8")
			}
			b.WriteString(l.src[l.off : l.off+size])
			l.advance()
			continue
		}
		escPos := l.pos()
		l.advance()
		if l.off >= len(l.src) || l.src[l.off] == '\n' {
			return l.fail(pos, "string is not terminated before the end of the line")
		}
		e, _ := utf8.DecodeRuneInString(l.src[l.off:])
		l.advance()
		switch e {
		case '"', '\\', '/':
			b.WriteRune(e)
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if l.off+4 > len(l.src) {
				return l.fail(escPos, `escape \u needs four hexadecimal digits`)
			}
			n, err := strconv.ParseUint(l.src[l.off:l.off+4], 16, 32)
			if err != nil {
				return l.fail(escPos, `escape \u needs four hexadecimal digits`)
			}
			for i := 0; i < 4; i++ {
				l.advance()
			}
			b.WriteRune(rune(n))
		default:
			return l.fail(escPos, "unknown escape sequence \\%c in string", e)
		}
	}
	l.lineUsed = true
	return token{kind: tokString, text: b.String(), raw: l.src[start:l.off], pos: pos, start: start, end: l.off}
}
