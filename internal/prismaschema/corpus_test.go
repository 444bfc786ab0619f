package prismaschema

import (
	"strings"
	"testing"
)

// TestInvalidCorpusErrors parses every schema of testdata/invalid; each
// starts with a comment "// error: LINE:COL: MESSAGE" naming the first error
// this package must report.
func TestInvalidCorpusErrors(t *testing.T) {
	files := readCorpus(t, "testdata/invalid")
	if len(files) == 0 {
		t.Fatal("testdata/invalid holds no schemas")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(f.name, ".prisma"), func(t *testing.T) {
			first, _, _ := strings.Cut(f.text, "\n")
			want, ok := strings.CutPrefix(first, "// error: ")
			if !ok {
				t.Fatalf("first line %q does not start with // error: ", first)
			}
			_, err := Parse(f.name, []byte(f.text))
			errs := Errors(err)
			if len(errs) == 0 {
				t.Fatalf("no error; want %s", want)
			}
			if got := errs[0].Error(); got != f.name+":"+want {
				t.Errorf("first error\n got: %s\nwant: %s:%s\nall errors:\n%v", got, f.name, want, err)
			}
		})
	}
}

// TestValidCorpusParses parses every schema of testdata/schemas without
// Node: the reference comparison needs npm, this test does not.
func TestValidCorpusParses(t *testing.T) {
	for _, f := range readCorpus(t, "testdata/schemas") {
		s, err := Parse(f.name, []byte(f.text))
		if err != nil {
			t.Errorf("%s: %v", f.name, err)
			continue
		}
		if len(s.Tables) == 0 {
			t.Errorf("%s: no tables", f.name)
		}
	}
}
