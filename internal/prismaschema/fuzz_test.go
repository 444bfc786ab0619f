package prismaschema

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary text to Parse. It must never panic; an error must
// point into the text; a schema must be self-consistent.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/schemas", "testdata/invalid"} {
		paths, err := filepath.Glob(filepath.Join(dir, "*.prisma"))
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(pg + "model A {\n  id Int @id @default(\"\\u00e9\\n\")\n}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := Parse("fuzz.prisma", src)
		if err != nil {
			checkErrorPositions(t, src, err)
			return
		}
		checkSchema(t, s)
	})
}

func checkErrorPositions(t *testing.T, src []byte, err error) {
	t.Helper()
	errs := Errors(err)
	if len(errs) == 0 {
		t.Fatalf("error without a position: %v", err)
	}
	lines := bytes.Count(src, []byte("\n")) + 1
	for _, e := range errs {
		if e.Pos.Line < 1 || e.Pos.Line > lines || e.Pos.Column < 1 {
			t.Fatalf("error at %s is outside the %d lines of the text: %v", e.Pos, lines, e)
		}
		if e.Msg == "" {
			t.Fatalf("error at %s without a message", e.Pos)
		}
	}
}

func checkSchema(t *testing.T, s *Schema) {
	t.Helper()
	for _, tbl := range s.Tables {
		if tbl.Name == "" {
			t.Fatalf("table of model %q has no name", tbl.ModelName)
		}
		for _, key := range tbl.PrimaryKey {
			c, err := tbl.Column(key)
			if err != nil || !c.ID {
				t.Fatalf("table %s: primary key column %q: %v", tbl.Name, key, err)
			}
		}
		for _, c := range tbl.Columns {
			if c.Name == "" || c.FieldName == "" || c.Type == "" {
				t.Fatalf("table %s has a column without a name or type: %+v", tbl.Name, c)
			}
			if c.Default != nil {
				checkValueRoundTrip(t, c.Default)
			}
		}
		for _, idx := range tbl.Indexes {
			for _, name := range idx.Columns {
				if _, err := tbl.Column(name); err != nil {
					t.Fatalf("table %s: index column: %v", tbl.Name, err)
				}
			}
		}
	}
}

// checkValueRoundTrip requires that a value, rendered and parsed again,
// renders the same.
func checkValueRoundTrip(t *testing.T, v *Value) {
	t.Helper()
	text := v.String()
	f, err := ParseFile("roundtrip.prisma", []byte("generator g {\n  x = "+text+"\n}\n"))
	if err != nil {
		t.Fatalf("rendered value %s does not parse: %v", text, err)
	}
	if got := f.Blocks[0].Properties[0].Value.String(); got != text {
		t.Fatalf("value %s renders as %s after a round trip", text, got)
	}
}
