package sqlplan

import (
	"fmt"
	"strconv"
)

// Error is a problem with the query: a syntax error, a name that does not
// resolve, a type error, or a construct cdcq cannot maintain. The HTTP
// layer answers it with 422 and its position. Compile stops at the first
// problem it finds and returns it.
type Error struct {
	// Line and Column locate the problem, both starting at 1. Column counts
	// characters (not bytes); a tab counts as one.
	Line, Column int
	// Offset is the byte offset of the problem in the query text.
	Offset int
	// Message says what is wrong, without the position.
	Message string
	// Suggestion is the name the query probably meant ("total" for
	// "totl"), or "".
	Suggestion string
}

// Error renders the problem as "line:column: message", followed by the
// suggestion as a question.
func (e *Error) Error() string {
	s := strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Column) + ": " + e.Message
	if e.Suggestion != "" {
		s += "; did you mean " + strconv.Quote(e.Suggestion) + "?"
	}
	return s
}

// errorAt builds an Error at byte offset off of src. A negative offset
// (unknown) places it at the start.
func errorAt(src string, off int, format string, args ...any) *Error {
	line, col := position(src, off)
	if off < 0 {
		off = 0
	}
	return &Error{Line: line, Column: col, Offset: min(off, len(src)), Message: fmt.Sprintf(format, args...)}
}

// position converts a byte offset into a 1-based line and character column.
func position(src string, off int) (line, col int) {
	if off < 0 {
		off = 0
	}
	if off > len(src) {
		off = len(src)
	}
	line, col = 1, 1
	for _, r := range src[:off] {
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

// byteOffset converts a 1-based character position (PostgreSQL's cursor
// position) into a byte offset.
func byteOffset(src string, charPos int) int {
	if charPos <= 1 {
		return 0
	}
	n := 1
	for i := range src {
		if n == charPos {
			return i
		}
		n++
	}
	return len(src)
}
