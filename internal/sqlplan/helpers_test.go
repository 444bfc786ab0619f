package sqlplan

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cdcq/cdcq/internal/prismaschema"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var schemas sync.Map // file name -> *prismaschema.Schema

// loadSchema parses testdata/<name>.
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

// golden compares got with testdata/<path>, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	path = filepath.Join("testdata", path)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("plan differs from %s (run go test -update to accept):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

// checkPlan verifies what the consumers of a plan rely on.
func checkPlan(p *Plan) error {
	if len(p.Sources) == 0 {
		return errors.New("no sources")
	}
	aliases := map[string]bool{}
	for i, s := range p.Sources {
		if aliases[s.Alias] {
			return fmt.Errorf("alias %s twice", s.Alias)
		}
		aliases[s.Alias] = true
		if len(s.PrimaryKey) == 0 {
			return fmt.Errorf("source %d has no primary key", i)
		}
		if s.Topic != s.Schema+"."+s.Name || s.Schema == "" {
			return fmt.Errorf("source %d: topic %q, schema %q, name %q", i, s.Topic, s.Schema, s.Name)
		}
		for _, k := range s.PrimaryKey {
			if col := s.Column(k); col == nil || !col.Key {
				return fmt.Errorf("source %d: key column %s missing from Columns", i, k)
			}
		}
	}
	var check func(e Expr, grouped bool) error
	check = func(e Expr, grouped bool) error {
		var err error
		Walk(e, func(x Expr) bool {
			if err != nil {
				return false
			}
			t := x.ResultType()
			if t.IsUnknown() {
				err = fmt.Errorf("%s has unknown type", x)
				return false
			}
			switch x := x.(type) {
			case *ColumnRef:
				if grouped {
					err = fmt.Errorf("column %s in a group expression", x)
				} else if x.Source < 0 || x.Source >= len(p.Sources) {
					err = fmt.Errorf("%s: bad source", x)
				} else if col := p.Sources[x.Source].Column(x.Column); col == nil || col.Type != x.Type {
					err = fmt.Errorf("%s: not among the source's columns with type %s", x, x.Type)
				}
			case *AggRef:
				if !grouped || x.Index < 0 || x.Index >= len(p.Aggregates) || p.Aggregates[x.Index].Type != x.Type {
					err = fmt.Errorf("bad %s", x)
				}
			case *GroupRef:
				if !grouped || x.Index < 0 || x.Index >= len(p.GroupBy) || p.GroupBy[x.Index].ResultType() != x.Type {
					err = fmt.Errorf("bad %s", x)
				}
			case *Binary:
				switch x.Op {
				case OpEq, OpNe, OpLt, OpLe, OpGt, OpGe:
					if needsCast(x.L.ResultType(), x.R.ResultType()) {
						err = fmt.Errorf("%s compares %s with %s", x, x.L.ResultType(), x.R.ResultType())
					}
				case OpAnd, OpOr:
					if x.L.ResultType() != boolType || x.R.ResultType() != boolType {
						err = fmt.Errorf("%s: non-boolean operand", x)
					}
				}
			}
			return true
		})
		return err
	}
	for _, j := range p.Joins {
		if j.Left.Source >= j.Right.Source {
			return fmt.Errorf("join %s = %s out of order", j.Left, j.Right)
		}
		if err := check(j.Left, false); err != nil {
			return err
		}
		if err := check(j.Right, false); err != nil {
			return err
		}
	}
	if p.Filter != nil {
		if p.Filter.ResultType() != boolType {
			return fmt.Errorf("filter is %s", p.Filter.ResultType())
		}
		if err := check(p.Filter, false); err != nil {
			return err
		}
	}
	for _, g := range p.GroupBy {
		if err := check(g, false); err != nil {
			return err
		}
	}
	for _, a := range p.Aggregates {
		if (a.Arg == nil) != (a.Func == CountStar) {
			return fmt.Errorf("aggregate %s: argument mismatch", a)
		}
		if a.Arg != nil {
			if err := check(a.Arg, false); err != nil {
				return err
			}
		}
	}
	if p.Having != nil {
		if p.Having.ResultType() != boolType {
			return fmt.Errorf("having is %s", p.Having.ResultType())
		}
		if err := check(p.Having, true); err != nil {
			return err
		}
	}
	names := map[string]bool{}
	for _, o := range p.Outputs {
		if names[o.Name] {
			return fmt.Errorf("output %s twice", o.Name)
		}
		names[o.Name] = true
		if o.Type != o.Expr.ResultType() {
			return fmt.Errorf("output %s: type %s, expression %s", o.Name, o.Type, o.Expr.ResultType())
		}
		if err := check(o.Expr, true); err != nil {
			return err
		}
	}
	for _, k := range p.OrderBy {
		if err := check(k.Expr, true); err != nil {
			return err
		}
	}
	// Every source is reachable through the joins.
	reached := map[int]bool{0: true}
	for changed := true; changed; {
		changed = false
		for _, j := range p.Joins {
			if reached[j.Left.Source] != reached[j.Right.Source] {
				reached[j.Left.Source], reached[j.Right.Source] = true, true
				changed = true
			}
		}
	}
	if len(reached) != len(p.Sources) {
		return fmt.Errorf("sources not connected by joins")
	}
	return nil
}
