package service

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cdcq/cdcq/handlers"
	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/jobs"
)

// Without API tokens, cdcq dev serves only on loopback addresses.
func TestDevListensOnLoopbackWithoutTokens(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		tokens bool
		ok     bool
	}{
		{"127.0.0.1:7000", false, true},
		{"[::1]:7000", false, true},
		{"localhost:7000", false, true},
		{"127.8.9.10:7000", false, true},
		{":7000", false, false},
		{"0.0.0.0:7000", false, false},
		{"[::]:7000", false, false},
		{"192.0.2.10:7000", false, false},
		{"[::ffff:192.0.2.10]:7000", false, false},
		{"0.0.0.0:7000", true, true},
		{":7000", true, true},
		{"no-port", false, false},
	} {
		err := checkDevListen(tc.addr, tc.tokens)
		if (err == nil) != tc.ok {
			t.Errorf("checkDevListen(%q, tokens %v) = %v, want ok %v", tc.addr, tc.tokens, err, tc.ok)
		}
		if err != nil && tc.addr != "no-port" && !strings.Contains(err.Error(), "CDCQ_API_TOKENS") {
			t.Errorf("error %q does not say how to listen there", err)
		}
	}
}

// What cdcq dev prints has no password, also when the job-state database
// is given with one.
func TestDevPrintsNoPassword(t *testing.T) {
	const password = "pw-5e1f9c"
	for _, url := range []string{
		"postgres://cdcq:" + password + "@db.example.com:5432/cdcq?sslmode=require",
		"postgres://cdcq:pw%2D5e1f9c@db.example.com/cdcq",
		"host=db.example.com password=" + password,
	} {
		var out bytes.Buffer
		inf := &Infra{DatabaseURL: url, Brokers: []string{"127.0.0.1:9092"}}
		printDev(&out, config.Config{SecretKey: "set"}, inf, "127.0.0.1:7000", WorkerDeps{Capture: namedEngine("embedded"), Processor: namedEngine("embedded")})
		if strings.Contains(out.String(), password) || strings.Contains(out.String(), "5e1f9c") {
			t.Errorf("printed a password:\n%s", out.String())
		}
		if strings.HasPrefix(url, "postgres://") && !strings.Contains(out.String(), "cdcq:***@db.example.com") {
			t.Errorf("job-state URL not shown redacted:\n%s", out.String())
		}
	}
}

// The banner's API address is one a client can use: a listener on every
// interface reports 0.0.0.0 or ::, which curl cannot reach as written.
func TestDevPrintsAReachableAPIAddress(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:7000": "http://127.0.0.1:7000 (",
		"[::1]:7000":     "http://[::1]:7000 (",
		"[::]:7000":      "http://127.0.0.1:7000 (listening on every interface)",
		"0.0.0.0:7000":   "http://127.0.0.1:7000 (listening on every interface)",
	} {
		var out bytes.Buffer
		inf := &Infra{DatabaseURL: "postgres://cdcq@db.example.com/cdcq", Brokers: []string{"127.0.0.1:9092"}}
		printDev(&out, config.Config{SecretKey: "set"}, inf, addr, WorkerDeps{Capture: namedEngine("embedded"), Processor: namedEngine("embedded")})
		if !strings.Contains(out.String(), "API:        "+want) {
			t.Errorf("listening on %s, printed:\n%s\nwant the API at %s", addr, out.String(), want)
		}
	}
}

// namedEngine is a capture and processor that only has a name.
type namedEngine string

func (n namedEngine) Engine() string { return string(n) }

func (namedEngine) Ensure(context.Context, handlers.CaptureSpec) error { return nil }
func (namedEngine) Observe(context.Context, handlers.CaptureSpec) (jobs.CaptureStatus, error) {
	return jobs.CaptureStatus{}, nil
}
func (namedEngine) Delete(context.Context, handlers.CaptureSpec) error { return nil }
func (namedEngine) EnsureQuery(context.Context, handlers.QuerySpec) (jobs.QueryStatus, error) {
	return jobs.QueryStatus{}, nil
}
func (namedEngine) ObserveQuery(context.Context, handlers.QuerySpec) (jobs.QueryStatus, error) {
	return jobs.QueryStatus{}, nil
}
func (namedEngine) DeleteQuery(context.Context, handlers.QuerySpec) error { return nil }
func (namedEngine) DeleteEnvironment(context.Context, string) error       { return nil }
