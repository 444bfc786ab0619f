package pgsource_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/pgsource"
	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/internal/sourcepolicy"
)

// withHost is dsn with its host part replaced and a password added.
func withHost(t *testing.T, dsn, host string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = host
	u.User = url.UserPassword(u.User.Username(), "s3cret-pw-123")
	return u.String()
}

func client(t *testing.T, rules sourcepolicy.Rules) *pgsource.Client {
	t.Helper()
	p, err := sourcepolicy.New(rules)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pgsource.New(pgsource.Config{Policy: p, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDefaultPolicyRefusesLocalTargets points the default client at the
// test server (listening on 127.0.0.1) under every spelling of a local
// address: none connects, and the reason names the rule.
func TestDefaultPolicyRefusesLocalTargets(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	u, _ := url.Parse(dsn)
	port := u.Port()
	strict, err := pgsource.New(pgsource.Config{ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ host, rule string }{
		{"127.0.0.1:" + port, "loopback"},
		{"localhost:" + port, "loopback"},
		{"[::1]:" + port, "loopback"},
		{"[::ffff:127.0.0.1]:" + port, "loopback"},
		{"0.0.0.0:" + port, "unspecified"},
		{"169.254.169.254:80", "link-local"},
		{"[fe80::1]:" + port, "link-local"},
	} {
		t.Run(tt.host, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := strict.SlotState(ctx, withHost(t, dsn, tt.host), "cdcq_x")
			if err == nil {
				t.Fatal("connected")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tt.rule) || !strings.Contains(err.Error(), "CDCQ_SOURCE_ALLOW") {
				t.Errorf("error does not name the %s rule and CDCQ_SOURCE_ALLOW", tt.rule)
			}
			if !jobs.IsTerminal(err) {
				t.Errorf("a policy refusal is not terminal")
			}
			if strings.Contains(err.Error(), "s3cret-pw-123") {
				t.Errorf("error leaks the password")
			}
		})
	}
}

// TestNumericHostForms tries the decimal and octal spellings of 127.0.0.1
// that some resolvers accept: whatever the resolver makes of them, the
// connection is refused or fails, never made.
func TestNumericHostForms(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	u, _ := url.Parse(dsn)
	strict, _ := pgsource.New(pgsource.Config{ConnectTimeout: 5 * time.Second})
	for _, host := range []string{"2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1"} {
		t.Run(host, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := strict.SlotState(ctx, withHost(t, dsn, host+":"+u.Port()), "cdcq_x")
			if err == nil {
				t.Fatal("connected")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), "loopback") && !strings.Contains(err.Error(), "cannot reach") {
				t.Errorf("unexpected reason")
			}
		})
	}
}

func TestAllowAndDenyLists(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := client(t, sourcepolicy.Rules{Allow: []string{"loopback"}}).SlotState(ctx, dsn, "cdcq_x"); err != nil {
		t.Fatalf("allow loopback: %v", err)
	}
	if _, err := client(t, sourcepolicy.Rules{Allow: []string{"127.0.0.0/8"}}).SlotState(ctx, dsn, "cdcq_x"); err != nil {
		t.Fatalf("allow 127.0.0.0/8: %v", err)
	}
	_, err := client(t, sourcepolicy.Rules{Allow: []string{"loopback"}, Deny: []string{"127.0.0.1"}}).SlotState(ctx, dsn, "cdcq_x")
	if err == nil || !strings.Contains(err.Error(), `CDCQ_SOURCE_DENY entry "127.0.0.1"`) {
		t.Fatalf("deny wins over allow: error = %v", err)
	}
}

// TestJobStateDatabaseIsRefused: the test databases live on the job-state
// database's server, so even with loopback allowed they are refused, until
// the operator allows jobstate.
func TestJobStateDatabaseIsRefused(t *testing.T) {
	jobState, _ := pgtest.NewJobState(t)
	dsn := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := client(t, sourcepolicy.Rules{Allow: []string{"loopback"}, JobStateURL: jobState}).SlotState(ctx, dsn, "cdcq_x")
	if err == nil || !strings.Contains(err.Error(), "job-state database") {
		t.Fatalf("error = %v, want a refusal naming the job-state database", err)
	}
	if _, err := client(t, sourcepolicy.Rules{Allow: []string{"loopback", "jobstate"}, JobStateURL: jobState}).SlotState(ctx, dsn, "cdcq_x"); err != nil {
		t.Fatalf("allow jobstate: %v", err)
	}
}

// TestUnreachableReasonsAreAlike: a closed port and a host that does not
// exist read the same, apart from the address itself.
func TestUnreachableReasonsAreAlike(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	c := client(t, sourcepolicy.Rules{Allow: []string{"loopback"}})
	reason := func(hostPort string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// The default sslmode (prefer): pgx asks for TLS first.
		conn := strings.Replace(withHost(t, dsn, hostPort), "sslmode=disable", "", 1)
		_, err := c.SlotState(ctx, conn, "cdcq_x")
		if err == nil {
			t.Fatalf("%s: connected", hostPort)
		}
		if jobs.IsTerminal(err) {
			t.Errorf("%s: unreachable is terminal outside a create: %v", hostPort, err)
		}
		msg := strings.ReplaceAll(err.Error(), hostPort, "HOST:PORT")
		return msg
	}
	// Something that is not PostgreSQL (an HTTP server) answering on a
	// port reads the same too, with the default sslmode (prefer), whose
	// TLS request such a server turns down.
	httpLike, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer httpLike.Close()
	go func() {
		for {
			c, err := httpLike.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				io.Copy(io.Discard, c) // until the client gives up
			}()
		}
	}()
	a, b, h := reason(closed), reason("no-such-host.invalid:5432"), reason(httpLike.Addr().String())
	if a != b || a != h {
		t.Fatalf("reasons differ:\n closed port:  %s\n missing host: %s\n not PostgreSQL: %s", a, b, h)
	}
	if !strings.Contains(a, "cannot reach a PostgreSQL server at HOST:PORT") {
		t.Fatalf("reason = %s", a)
	}
	// With sslmode=require the refused TLS request is the reason to give.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.SlotState(ctx, strings.Replace(withHost(t, dsn, httpLike.Addr().String()), "sslmode=disable", "sslmode=require", 1), "cdcq_x")
	if err == nil || !strings.Contains(err.Error(), "does not accept TLS, and sslmode=require requires it") {
		t.Fatalf("sslmode=require against a server without TLS: %v", err)
	}
}
