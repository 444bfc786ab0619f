package connstr

import (
	"os"
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

// TestParseRefusesParameters checks that a caller cannot name another
// server, user or database through parameters, nor make the driver read
// files, however the parameter is spelled.
func TestParseRefusesParameters(t *testing.T) {
	const base = "postgres://alice:s3cret@db.example.com:5432/shop"
	tests := []struct {
		query, want string
	}{
		{"host=169.254.169.254", `"host"`},
		{"h%6Fst=127.0.0.1", `"host"`},
		{"HOST=127.0.0.1", `"HOST"`},
		{"hostaddr=127.0.0.1", `"hostaddr"`},
		{"port=6432", `"port"`},
		{"user=postgres", `"user"`},
		{"dbname=postgres", `"dbname"`},
		{"database=postgres", `"database"`},
		{"passfile=/etc/passwd", `"passfile"`},
		{"sslkey=/etc/cdcq/key.pem", `"sslkey"`},
		{"sslcert=/etc/cdcq/cert.pem", `"sslcert"`},
		{"sslrootcert=/etc/ssl/ca.pem", `"sslrootcert"`},
		{"servicefile=/tmp/evil.conf", `"servicefile"`},
		{"service=prod", `"service"`},
		{"options=-c%20default_transaction_read_only%3Don", `"options"`},
		{"target_session_attrs=read-write", `"target_session_attrs"`},
		{"ssl=true", `"ssl"`},
		{"sslmode=require&sslmode=disable", "more than once"},
		{"sslm%6Fde=require&sslmode=disable", "more than once"},
		{"sslmode=bogus", `"sslmode" with a value`},
		{"connect_timeout=-1", `"connect_timeout" with a value`},
		{"a%00b=1", "unusual name"},
		{"%zz=1", "bad percent-escape"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			_, err := Parse(base + "?" + tt.query)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(...?%s) error = %v, want it to contain %s", tt.query, err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error %q repeats the password", err)
			}
		})
	}
}

func TestParseRefusesOtherForms(t *testing.T) {
	for _, in := range []string{
		"host=db.example.com user=alice password=s3cret dbname=shop",
		"postgres://alice:s3cret@h1,h2/shop",
		"postgres://alice:s3cret@h1:5432,h2:5432/shop",
		"postgres://alice:s3cret@%2Ftmp/shop",
		"postgres://alice:s3cret@[fe80::1%25eth0]/shop",
		"postgres://alice:s3cret@db.example.com/shop#frag",
		"postgres://alice:s3cret@db example.com/shop",
	} {
		_, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) accepted it", in)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Parse(%q) error %q repeats the password", in, err)
		}
	}
}

func TestParseAcceptsSafeParameters(t *testing.T) {
	c, err := Parse("postgres://alice:s3cret@db.example.com/shop?sslmode=verify-full&connect_timeout=5&application_name=etl&channel_binding=require")
	if err != nil {
		t.Fatal(err)
	}
	want := "postgres://alice:***@db.example.com:5432/shop?application_name=etl&channel_binding=require&connect_timeout=5&sslmode=verify-full"
	if got := c.Redacted(); got != want {
		t.Errorf("Redacted() = %q, want %q", got, want)
	}
}

// TestDriverConfigIgnoresEnvironment checks that the PG* variables and the
// home directory of cdcq's own process do not reach a source connection.
func TestDriverConfigIgnoresEnvironment(t *testing.T) {
	dir := t.TempDir()
	passfile := dir + "/pgpass"
	if err := os.WriteFile(passfile, []byte("*:*:*:*:worker-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir+"/.postgresql", 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"postgresql.crt", "postgresql.key", "root.crt"} {
		if err := os.WriteFile(dir+"/.postgresql/"+f, []byte("not a certificate"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("HOME", dir)
	t.Setenv("PGHOST", "127.0.0.1")
	t.Setenv("PGHOSTADDR", "127.0.0.1")
	t.Setenv("PGPORT", "1")
	t.Setenv("PGUSER", "worker")
	t.Setenv("PGDATABASE", "jobstate")
	t.Setenv("PGPASSWORD", "worker-secret")
	t.Setenv("PGPASSFILE", passfile)
	t.Setenv("PGSSLKEY", dir+"/.postgresql/postgresql.key")
	t.Setenv("PGSSLCERT", dir+"/.postgresql/postgresql.crt")
	t.Setenv("PGSSLROOTCERT", dir+"/.postgresql/root.crt")
	t.Setenv("PGSSLMODE", "disable")
	t.Setenv("PGOPTIONS", "-c default_transaction_read_only=on")
	t.Setenv("PGTARGETSESSIONATTRS", "read-write")
	t.Setenv("PGAPPNAME", "worker")
	t.Setenv("PGCONNECT_TIMEOUT", "1")

	c, err := Parse("postgres://alice@db.example.com/shop")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := c.DriverConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "db.example.com" || cfg.Port != 5432 || cfg.User != "alice" || cfg.Database != "shop" {
		t.Errorf("config names %s:%d user %s database %s, want db.example.com:5432 alice shop", cfg.Host, cfg.Port, cfg.User, cfg.Database)
	}
	if cfg.Password != "" {
		t.Errorf("password taken from the worker's environment or passfile")
	}
	if cfg.TLSConfig == nil {
		t.Errorf("PGSSLMODE=disable applied: no TLS attempt")
	} else if len(cfg.TLSConfig.Certificates) > 0 || cfg.TLSConfig.RootCAs != nil {
		t.Errorf("client certificate or root CA taken from the worker's home directory")
	}
	if cfg.ValidateConnect != nil {
		t.Errorf("PGTARGETSESSIONATTRS applied")
	}
	if len(cfg.RuntimeParams) != 0 {
		t.Errorf("runtime parameters %v, want none", cfg.RuntimeParams)
	}
	if cfg.ConnectTimeout != 0 {
		t.Errorf("PGCONNECT_TIMEOUT applied: connect timeout %v", cfg.ConnectTimeout)
	}
	// The driver accepts no key beyond the known ones, also from a Conn
	// not built by Parse.
	forged := c
	forged.Params = map[string]string{"hostaddr": "127.0.0.1"}
	if _, err := forged.DriverConfig(); err == nil {
		t.Error("a parameter outside the accepted ones reached the driver")
	}

	t.Setenv("PGSERVICE", "prod")
	if _, err := c.DriverConfig(); err == nil || !strings.Contains(err.Error(), "PGSERVICE") {
		t.Errorf("with PGSERVICE set: error = %v, want one naming PGSERVICE", err)
	}
}
