package flinksql

import (
	"errors"
	"testing"
)

func TestLikePattern(t *testing.T) {
	tests := []struct {
		name, pg, want string
	}{
		{"plain", "pa%", "pa%"},
		{"escaped_percent", `100\%`, "100!%"},
		{"escaped_underscore", `a\_b`, "a!_b"},
		{"escaped_backslash", `a\\b`, `a\b`},
		{"escaped_ordinary", `\a`, "a"},
		{"literal_bang", "hi!%", "hi!!%"},
		{"escaped_bang", `hi\!`, "hi!!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := likePattern(tt.pg)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("likePattern(%q) = %q, want %q", tt.pg, got, tt.want)
			}
		})
	}
	var ue *UnsupportedError
	if _, err := likePattern(`ends\`); !errors.As(err, &ue) {
		t.Fatalf("trailing escape: %v, want an UnsupportedError", err)
	}
}
