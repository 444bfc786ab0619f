package httpapi

import "testing"

func TestScrub(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "url_password", in: "dial postgres://alice:pw@db:5432/shop failed", want: "dial postgres://alice:***@db:5432/shop failed"},
		{name: "password_with_at", in: "postgres://alice:p@ss@db/shop", want: "postgres://alice:***@db/shop"},
		{name: "no_password", in: "postgres://alice@db/shop", want: "postgres://alice@db/shop"},
		{name: "two_urls", in: "a://u:x@h/ b://v:y@k/", want: "a://u:***@h/ b://v:***@k/"},
		{name: "plain_text", in: "connection refused", want: "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scrub(tt.in); got != tt.want {
				t.Errorf("scrub(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
