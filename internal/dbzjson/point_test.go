package dbzjson

import "testing"

func TestAppendPointRefusesMalformedText(t *testing.T) {
	got, err := appendPoint(nil, "(1,2)")
	if err != nil || string(got) != `{"x":1.0,"y":2.0,"wkb":"AQEAAAAAAAAAAADwPwAAAAAAAABA","srid":null}` {
		t.Fatalf("(1,2): %s, %v", got, err)
	}
	for _, bad := range []string{"1,2)", "(1,2", "(1)", "(a,2)"} {
		if _, err := appendPoint(nil, bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}
