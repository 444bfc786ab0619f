package sourcepolicy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

func mustNew(t *testing.T, r Rules) *Policy {
	t.Helper()
	p, err := New(r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func check(p *Policy, addr string) error {
	return p.Check(context.Background(), "", netip.MustParseAddrPort(addr))
}

func TestStrictRefusesLocalAddresses(t *testing.T) {
	refused := map[string]string{
		"127.0.0.1:5432":              "loopback",
		"127.1.2.3:5432":              "loopback",
		"[::1]:5432":                  "loopback",
		"[::ffff:127.0.0.1]:5432":     "loopback",
		"169.254.169.254:80":          "link-local",
		"[fe80::1]:5432":              "link-local",
		"[::ffff:169.254.169.254]:80": "link-local",
		"0.0.0.0:5432":                "unspecified",
		"0.1.2.3:5432":                "unspecified",
		"[::]:5432":                   "unspecified",
		"239.1.2.3:5432":              "multicast",
		"224.0.0.1:5432":              "multicast",
		"[ff02::1]:5432":              "multicast",
		"[::127.0.0.1]:5432":          "IPv4-compatible",
	}
	for addr, rule := range refused {
		err := check(Strict(), addr)
		var re *RefusedError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), rule) {
			t.Errorf("%s: error = %v, want a refusal naming %s", addr, err, rule)
		}
	}
	for _, addr := range []string{"10.1.2.3:5432", "192.168.1.10:5432", "203.0.113.7:5432", "[2001:db8::1]:5432"} {
		if err := check(Strict(), addr); err != nil {
			t.Errorf("%s refused: %v", addr, err)
		}
	}
}

func TestRefusalNamesTheVariable(t *testing.T) {
	err := check(Strict(), "127.0.0.1:5432")
	if err == nil || !strings.Contains(err.Error(), "CDCQ_SOURCE_ALLOW=loopback") {
		t.Fatalf("error = %v, want it to say how to allow loopback", err)
	}
}

func TestAllowAndDeny(t *testing.T) {
	p := mustNew(t, Rules{Allow: []string{"loopback", "169.254.10.0/24"}, Deny: []string{"127.0.0.2", "10.0.0.0/8"}})
	for addr, ok := range map[string]bool{
		"127.0.0.1:5432":       true,
		"[::1]:5432":           true,
		"127.0.0.2:5432":       false, // deny wins over allow
		"169.254.10.5:5432":    true,
		"169.254.169.254:80":   false,
		"10.2.3.4:5432":        false,
		"192.168.0.1:5432":     true,
		"[::ffff:10.0.0.1]:80": false,
	} {
		err := check(p, addr)
		if (err == nil) != ok {
			t.Errorf("%s: error = %v, want allowed=%v", addr, err, ok)
		}
	}
	if err := check(p, "10.2.3.4:5432"); err == nil || !strings.Contains(err.Error(), `CDCQ_SOURCE_DENY entry "10.0.0.0/8"`) {
		t.Errorf("deny error = %v, want it to name the entry", err)
	}
}

func TestHostNameEntries(t *testing.T) {
	p := mustNew(t, Rules{Allow: []string{"localhost"}})
	if err := check(p, "127.0.0.1:5432"); err != nil {
		t.Errorf("allow localhost: 127.0.0.1 refused: %v", err)
	}
	p = mustNew(t, Rules{Allow: []string{"loopback"}, Deny: []string{"localhost"}})
	if err := check(p, "127.0.0.1:5432"); err == nil {
		t.Errorf("deny localhost: 127.0.0.1 allowed")
	}
}

func TestJobStateDatabase(t *testing.T) {
	url := "postgres://cdcq:pw@127.0.0.1:7432/cdcq"
	p := mustNew(t, Rules{Allow: []string{"loopback"}, JobStateURL: url})
	if err := check(p, "127.0.0.1:7432"); err == nil || !strings.Contains(err.Error(), "job-state") {
		t.Errorf("job-state address: error = %v, want a refusal naming the job-state database", err)
	}
	if err := check(p, "127.0.0.1:5432"); err != nil {
		t.Errorf("another port on the same host refused: %v", err)
	}
	p = mustNew(t, Rules{Allow: []string{"loopback"}, JobStateURL: "postgres://cdcq:pw@localhost:7432/cdcq"})
	addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", "localhost")
	if err != nil || len(addrs) == 0 {
		t.Fatalf("resolve localhost: %v", err)
	}
	for _, a := range addrs {
		if err := p.Check(context.Background(), "", netip.AddrPortFrom(a, 7432)); err == nil {
			t.Errorf("job-state database named localhost: %s allowed", a)
		}
	}
	p = mustNew(t, Rules{Allow: []string{"loopback", "jobstate"}, JobStateURL: url})
	if err := check(p, "127.0.0.1:7432"); err != nil {
		t.Errorf("allow jobstate: refused: %v", err)
	}
	p = mustNew(t, Rules{Allow: []string{"loopback", "jobstate"}, Deny: []string{"jobstate"}, JobStateURL: url})
	if err := check(p, "127.0.0.1:7432"); err == nil || !strings.Contains(err.Error(), "denied by CDCQ_SOURCE_DENY") || strings.Contains(err.Error(), "can allow") {
		t.Errorf("deny jobstate wins over allow jobstate: error = %v, want a refusal naming the deny entry", err)
	}
	p = mustNew(t, Rules{Allow: []string{"10.0.0.0/8"}, JobStateURL: "postgres://cdcq:pw@10.0.0.5:5432,10.0.0.6:5433/cdcq"})
	if err := check(p, "10.0.0.6:5433"); err == nil {
		t.Errorf("second host of a multi-host job-state URL allowed")
	}
	p = mustNew(t, Rules{JobStateURL: "host=db.internal port=6000 user=cdcq password=pw dbname=cdcq"})
	if len(p.jobState) != 1 || p.jobState[0].host != "db.internal" || p.jobState[0].port != 6000 {
		t.Errorf("keyword/value job-state URL read as %+v", p.jobState)
	}
}

func TestNewNamesBadEntries(t *testing.T) {
	for _, tt := range []struct {
		r    Rules
		want string
	}{
		{Rules{Allow: []string{"10.0.0.0/33"}}, `CDCQ_SOURCE_ALLOW entry "10.0.0.0/33"`},
		{Rules{Deny: []string{"bad host!"}}, `CDCQ_SOURCE_DENY entry "bad host!"`},
		{Rules{Allow: []string{"fe80::1%eth0"}}, `CDCQ_SOURCE_ALLOW entry "fe80::1%eth0"`},
		{Rules{JobStateURL: "postgres://u:s3cret@h:notaport/db"}, "CDCQ_DATABASE_URL"},
	} {
		_, err := New(tt.r)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) error = %v, want it to contain %s", tt.r, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error %q repeats a password", err)
		}
	}
}

// TestDialFuncChecksResolvedAddress dials a name that resolves to
// loopback: the check sees the address, not the name.
func TestDialFuncChecksResolvedAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ctx := context.Background()

	dial := Strict().DialFunc("localhost", time.Second)
	for _, addr := range []string{"localhost:" + port, "127.0.0.1:" + port} {
		if c, err := dial(ctx, "tcp", addr); err == nil {
			c.Close()
			t.Errorf("strict policy dialed %s", addr)
		} else if !IsRefused(err) {
			t.Errorf("dial %s: error = %v, want a policy refusal", addr, err)
		}
	}
	if _, err := dial(ctx, "unix", "/tmp/.s.PGSQL.5432"); !IsRefused(err) {
		t.Errorf("unix socket: error = %v, want a policy refusal", err)
	}

	allow := mustNew(t, Rules{Allow: []string{"loopback"}})
	c, err := allow.DialFunc("localhost", time.Second)(ctx, "tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatalf("allow loopback: dial refused: %v", err)
	}
	c.Close()
}

func TestCheckHost(t *testing.T) {
	ctx := context.Background()
	if err := Strict().CheckHost(ctx, "localhost", 5432); !IsRefused(err) {
		t.Errorf("localhost: error = %v, want a policy refusal", err)
	}
	if err := Strict().CheckHost(ctx, "169.254.169.254", 80); !IsRefused(err) {
		t.Errorf("metadata address: error = %v, want a policy refusal", err)
	}
	err := Strict().CheckHost(ctx, "no-such-host.invalid", 5432)
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) {
		t.Errorf("missing host: error = %v, want a DNS error", err)
	}
	if err := Strict().CheckHost(ctx, "203.0.113.7", 5432); err != nil {
		t.Errorf("public address refused: %v", err)
	}
}

// A deny entry or a job-state host that cannot be resolved might cover the
// address: the check refuses, naming what did not resolve. An allow entry
// that cannot be resolved allows nothing.
func TestUnresolvableNamesFailClosed(t *testing.T) {
	p := mustNew(t, Rules{Deny: []string{"gone.invalid"}})
	if err := check(p, "10.1.2.3:5432"); err == nil || !strings.Contains(err.Error(), `CDCQ_SOURCE_DENY entry "gone.invalid" cannot be resolved`) {
		t.Errorf("unresolvable deny entry: error = %v, want a refusal naming it", err)
	}
	p = mustNew(t, Rules{JobStateURL: "postgres://cdcq:pw@jobstate.invalid:5432/cdcq"})
	if err := check(p, "10.1.2.3:5432"); err == nil || !strings.Contains(err.Error(), "job-state database's host cannot be resolved") {
		t.Errorf("unresolvable job-state host: error = %v, want a refusal", err)
	}
	if err := check(p, "10.1.2.3:6000"); err != nil {
		t.Errorf("another port than the job-state database's refused: %v", err)
	}
	p = mustNew(t, Rules{Allow: []string{"local-db.invalid"}})
	if err := check(p, "127.0.0.1:5432"); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("unresolvable allow entry: error = %v, want the loopback refusal", err)
	}
}
