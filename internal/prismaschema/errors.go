package prismaschema

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Position is a place in a schema file. Line and Column start at 1; Column
// counts characters, not bytes.
type Position struct {
	Line   int
	Column int
}

func (p Position) String() string {
	return fmt.Sprintf("%d:%d", p.Line, p.Column)
}

// before reports whether p comes before q in the file.
func (p Position) before(q Position) bool {
	if p.Line != q.Line {
		return p.Line < q.Line
	}
	return p.Column < q.Column
}

// Error is one problem found in a schema, syntactic or semantic.
type Error struct {
	Filename string
	Pos      Position
	Msg      string
}

// Error renders the problem the way compilers do: "schema.prisma:12:5: msg".
// An empty Filename is shown as "schema.prisma".
func (e *Error) Error() string {
	name := e.Filename
	if name == "" {
		name = "schema.prisma"
	}
	return fmt.Sprintf("%s:%d:%d: %s", name, e.Pos.Line, e.Pos.Column, e.Msg)
}

// ErrorList holds every problem found in a schema, ordered by position.
// Parsing stops at the first syntax error; semantic errors are all reported.
type ErrorList []*Error

// Error renders one problem per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find the individual *Error values.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

func (l ErrorList) sort() {
	sort.SliceStable(l, func(i, j int) bool { return l[i].Pos.before(l[j].Pos) })
}

// err returns l as an error, or nil when it is empty.
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	l.sort()
	return l
}

// Errors returns the individual problems in err, which Parse or ParseFile
// returned, or nil when err holds none.
func Errors(err error) []*Error {
	var list ErrorList
	if errors.As(err, &list) {
		return list
	}
	var one *Error
	if errors.As(err, &one) {
		return []*Error{one}
	}
	return nil
}
