package sourceschema

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/cachedquery"
	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newConn connects to a fresh database on the shared test server and runs
// the statements in it.
func newConn(t *testing.T, statements ...string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	exec(t, conn, statements...)
	return conn
}

func exec(t *testing.T, conn *pgx.Conn, statements ...string) {
	t.Helper()
	for _, s := range statements {
		if _, err := conn.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func compile(t *testing.T, schema, sql string) *sqlplan.Plan {
	t.Helper()
	c, err := cachedquery.Compile(schema, sql)
	if err != nil {
		t.Fatalf("compile %q: %v", sql, err)
	}
	return c.Plan
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readPlan(t *testing.T, conn *pgx.Conn, plan *sqlplan.Plan) map[Name]*Table {
	t.Helper()
	db, err := Read(context.Background(), conn, Tables(plan))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// want is an expected problem: its table and column, and words its
// message contains.
type want struct {
	table  string // Name.String()
	column string
	words  []string
}

// checkProblems fails unless got are exactly the wanted problems, in
// order.
func checkProblems(t *testing.T, got []Problem, wants ...want) {
	t.Helper()
	ok := len(got) == len(wants)
	for i := 0; ok && i < len(got); i++ {
		w := wants[i]
		ok = got[i].Table.String() == w.table && got[i].Column == w.column
		for _, word := range w.words {
			ok = ok && strings.Contains(got[i].Message, word)
		}
		ok = ok && got[i].Message == strings.TrimSuffix(got[i].Message, ".") && got[i].Error() == got[i].Message
	}
	if ok {
		return
	}
	var b strings.Builder
	for _, p := range got {
		b.WriteString("\n\t" + p.Table.String() + " " + p.Column + ": " + p.Message)
	}
	b.WriteString("\nwant:")
	for _, w := range wants {
		b.WriteString("\n\t" + w.table + " " + w.column + ": " + strings.Join(w.words, " … "))
	}
	t.Errorf("problems:%s", b.String())
}
