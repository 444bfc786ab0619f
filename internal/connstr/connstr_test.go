package connstr

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantErr  string
		redacted string
	}{
		{name: "full", in: "postgres://alice:s3cret@db.example.com:6543/shop?sslmode=require", redacted: "postgres://alice:***@db.example.com:6543/shop?sslmode=require"},
		{name: "postgresql_scheme_default_port", in: "postgresql://alice:pw@localhost/shop", redacted: "postgres://alice:***@localhost:5432/shop"},
		{name: "no_password", in: "postgres://alice@localhost/shop", redacted: "postgres://alice@localhost:5432/shop"},
		{name: "escaped_password", in: "postgres://alice:p%40ss%2Fw@localhost/shop", redacted: "postgres://alice:***@localhost:5432/shop"},
		{name: "empty", in: "", wantErr: "is empty"},
		{name: "keyword_form", in: "host=localhost user=alice password=s3cret dbname=shop", wantErr: "must be a URL"},
		{name: "no_host", in: "postgres://alice:s3cret@/shop", wantErr: "has no host"},
		{name: "no_user", in: "postgres://localhost/shop", wantErr: "has no user name"},
		{name: "no_database", in: "postgres://alice:s3cret@localhost:5432", wantErr: "has no database"},
		{name: "bad_port", in: "postgres://alice:s3cret@localhost:99999/shop", wantErr: "port"},
		{name: "several_hosts", in: "postgres://alice:s3cret@h1:5432,h2:5432/shop", wantErr: "several hosts"},
		{name: "password_param", in: "postgres://alice@localhost/shop?password=s3cret", wantErr: "query parameter"},
		{name: "bad_escape", in: "postgres://alice:s3cret%zz@localhost/shop", wantErr: "not a valid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error %q repeats the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got := c.Redacted(); got != tt.redacted {
				t.Errorf("Redacted() = %q, want %q", got, tt.redacted)
			}
			again, err := Parse(c.String())
			if err != nil || again.Password != c.Password || again.Host != c.Host {
				t.Errorf("String() does not round-trip: %+v, %v", again, err)
			}
		})
	}
}
