package ivm

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/internal/prismaschema"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var schemas sync.Map // file name -> *prismaschema.Schema

func loadSchema(t testing.TB, name string) *prismaschema.Schema {
	t.Helper()
	if s, ok := schemas.Load(name); ok {
		return s.(*prismaschema.Schema)
	}
	src, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	s, err := prismaschema.Parse(name, src)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	schemas.Store(name, s)
	return s
}

// compilePlan compiles sql against testdata/<schema>.
func compilePlan(t testing.TB, schema, sql string) *sqlplan.Plan {
	t.Helper()
	p, err := sqlplan.Compile(loadSchema(t, schema), sql)
	if err != nil {
		t.Fatalf("compile %q: %v", sql, err)
	}
	return p
}

// newQuery compiles sql against the unit schema and builds its query.
func newQuery(t testing.TB, sql string) *Query {
	t.Helper()
	q, err := New(compilePlan(t, "unit.prisma", sql))
	if err != nil {
		t.Fatalf("New(%q): %v", sql, err)
	}
	return q
}

// M gives column values by database name, as PostgreSQL text; missing
// columns are NULL.
type M map[string]string

// mkRow builds a row of a source from column texts; columns the plan does
// not read are dropped, as the decoder drops them.
func mkRow(t testing.TB, q *Query, src int, vals M) Row {
	t.Helper()
	s := &q.plan.Sources[src]
	row := make(Row, len(s.Columns))
	for i, c := range s.Columns {
		text, ok := vals[c.Name]
		if !ok {
			continue
		}
		v, err := ParseValue(c.Type, text)
		if err != nil {
			t.Fatalf("column %s: %v", c.Name, err)
		}
		row[i] = v
	}
	return row
}

// keyOnly keeps the primary key values of a row, as a REPLICA IDENTITY
// DEFAULT delete sends it.
func keyOnly(q *Query, src int, r Row) Row {
	out := make(Row, len(r))
	for _, i := range q.sources[src].pk {
		out[i] = r[i]
	}
	return out
}

// step is one change of a unit test, in text form.
type step struct {
	op   Op
	src  int
	vals M // after image (insert, update) or key (delete)
	// before is an update's before image (REPLICA IDENTITY FULL, or the
	// old key of a key change); without it updates have none. Deletes
	// always send only the key (REPLICA IDENTITY DEFAULT).
	before M
}

func ins(src int, vals M) step { return step{op: OpInsert, src: src, vals: vals} }
func upd(src int, vals M) step { return step{op: OpUpdate, src: src, vals: vals} }
func del(src int, key M) step  { return step{op: OpDelete, src: src, vals: key} }
func trunc(src int) step       { return step{op: OpTruncate, src: src} }

func (s step) change(t testing.TB, q *Query) Change {
	t.Helper()
	switch s.op {
	case OpInsert, OpUpdate:
		ch := Change{Op: s.op, After: mkRow(t, q, s.src, s.vals)}
		if s.before != nil {
			ch.Before = mkRow(t, q, s.src, s.before)
		}
		return ch
	case OpDelete:
		r := mkRow(t, q, s.src, s.vals)
		return Change{Op: OpDelete, Before: keyOnly(q, s.src, r)}
	}
	return Change{Op: s.op}
}

func run(t testing.TB, q *Query, steps ...step) []ResultChange {
	t.Helper()
	var all []ResultChange
	for i, s := range steps {
		out, err := q.Apply(s.src, s.change(t, q))
		if err != nil {
			t.Fatalf("step %d (%s %v): %v", i, s.op, s.vals, err)
		}
		all = append(all, out...)
	}
	return all
}

// rowsText renders the result as one line per row: the outputs joined by
// " | ".
func rowsText(q *Query) []string {
	var out []string
	for _, r := range q.Rows() {
		out = append(out, lineOf(r.Row))
	}
	return out
}

func lineOf(r Row) string {
	parts := make([]string, len(r))
	for i, v := range r {
		parts[i] = v.String()
	}
	return strings.Join(parts, " | ")
}

// changesText renders result changes: "+ row" or "- key".
func changesText(cs []ResultChange) []string {
	var out []string
	for _, c := range cs {
		if c.Row == nil {
			out = append(out, "- "+lineOf(c.Key))
		} else {
			out = append(out, "+ "+lineOf(c.Row))
		}
	}
	return out
}

type sourceColumn = sqlplan.SourceColumn

// compileForRefusal compiles sql against the unit schema, returning
// sqlplan's error rather than failing.
func compileForRefusal(t testing.TB, sql string) (*sqlplan.Plan, error) {
	t.Helper()
	return sqlplan.Compile(loadSchema(t, "unit.prisma"), sql)
}
