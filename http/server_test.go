package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/secret"
)

func TestHealthz(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RequireAuth, c.Tokens = true, []string{"t0k"} })
	res := h.do(t, rawRequest(http.MethodGet, "/healthz", "", ""))
	if res.status != http.StatusOK || strings.TrimSpace(string(res.body)) != `{"status":"ok"}` {
		t.Errorf("healthz = %d %s", res.status, res.body)
	}
}

func TestAuth(t *testing.T) {
	const token = "tok-3f9a"
	tests := []struct {
		name          string
		requireAuth   bool
		authorization string
		req           func() *http.Request
		wantStatus    int
	}{
		{name: "not_required", requireAuth: false, req: createRequest, wantStatus: http.StatusCreated},
		{name: "missing_header", requireAuth: true, req: createRequest, wantStatus: http.StatusUnauthorized},
		{name: "wrong_token", requireAuth: true, authorization: "Bearer nope", req: createRequest, wantStatus: http.StatusUnauthorized},
		{name: "token_prefix", requireAuth: true, authorization: "Bearer " + token[:4], req: createRequest, wantStatus: http.StatusUnauthorized},
		{name: "basic_scheme", requireAuth: true, authorization: "Basic " + token, req: createRequest, wantStatus: http.StatusUnauthorized},
		{name: "empty_bearer", requireAuth: true, authorization: "Bearer ", req: createRequest, wantStatus: http.StatusUnauthorized},
		{name: "accepted", requireAuth: true, authorization: "Bearer " + token, req: createRequest, wantStatus: http.StatusCreated},
		{name: "accepted_second_token_lowercase_scheme", requireAuth: true, authorization: "bearer other-token", req: createRequest, wantStatus: http.StatusCreated},
		{name: "get_connection_needs_token", requireAuth: true, req: func() *http.Request { return rawRequest(http.MethodGet, "/connections/env-1", "", "") }, wantStatus: http.StatusUnauthorized},
		{name: "get_cached_query_needs_token", requireAuth: true, req: func() *http.Request { return rawRequest(http.MethodGet, "/cachedQueries/q_1", "", "") }, wantStatus: http.StatusUnauthorized},
		{name: "check_job_status_needs_token", requireAuth: true, req: func() *http.Request {
			return formRequest("/checkJobStatus", connectionFieldsFor(testEnv))
		}, wantStatus: http.StatusUnauthorized},
		{name: "auth_before_validation", requireAuth: true, req: func() *http.Request {
			return rawRequest(http.MethodPost, "/createDatabaseConnection", "text/plain", "x")
		}, wantStatus: http.StatusUnauthorized},
		{name: "healthz_open", requireAuth: true, req: func() *http.Request { return rawRequest(http.MethodGet, "/healthz", "", "") }, wantStatus: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) {
				c.RequireAuth = tt.requireAuth
				c.Tokens = []string{token, "other-token"}
			})
			req := tt.req()
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}
			res := h.do(t, req)
			if tt.wantStatus == http.StatusUnauthorized {
				wantError(t, res, http.StatusUnauthorized, CodeUnauthorized, "")
				if got := res.header.Get("WWW-Authenticate"); got != "Bearer" {
					t.Errorf("WWW-Authenticate = %q, want Bearer", got)
				}
				if n := len(h.pub.published()); n != 0 {
					t.Errorf("published %d commands without a valid token", n)
				}
				return
			}
			if res.status != tt.wantStatus {
				t.Errorf("status = %d, want %d; body %s", res.status, tt.wantStatus, res.body)
			}
		})
	}
}

func createRequest() *http.Request {
	return formRequest("/createDatabaseConnection", connectionFieldsFor(testEnv))
}

func TestNew_config(t *testing.T) {
	sealer, err := secret.NewSealer(make([]byte, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	valid := func() Config {
		return Config{Commands: &fakePublisher{}, Status: &fakeStatus{}, Bindings: &fakeStatus{}, Sealer: sealer}
	}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{name: "defaults", mutate: func(*Config) {}},
		{name: "auth_with_tokens", mutate: func(c *Config) { c.RequireAuth, c.Tokens = true, []string{"a"} }},
		{name: "auth_without_tokens", mutate: func(c *Config) { c.RequireAuth = true }, wantErr: "Tokens is empty"},
		{name: "empty_token", mutate: func(c *Config) { c.Tokens = []string{"a", " "} }, wantErr: "Tokens[1] is empty"},
		{name: "no_publisher", mutate: func(c *Config) { c.Commands = nil }, wantErr: "Commands is nil"},
		{name: "no_status", mutate: func(c *Config) { c.Status = nil }, wantErr: "Status is nil"},
		{name: "no_bindings", mutate: func(c *Config) { c.Bindings = nil }, wantErr: "Bindings is nil"},
		{name: "no_sealer", mutate: func(c *Config) { c.Sealer = nil }, wantErr: "Sealer is nil"},
		{name: "negative_body_limit", mutate: func(c *Config) { c.BodyLimit = -1 }, wantErr: "BodyLimit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.mutate(&cfg)
			srv, err := New(cfg)
			if tt.wantErr == "" {
				if err != nil || srv == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestPanicRecovered(t *testing.T) {
	h := newHarness(t)
	h.pub.panics = true
	res := h.do(t, createRequest())
	wantError(t, res, http.StatusInternalServerError, CodeInternal, "")
	if strings.Contains(string(res.body), "exploded") {
		t.Errorf("500 body leaks the panic: %s", res.body)
	}
	lines := h.logs.lines(t)
	if len(lines) != 1 || lines[0]["status"] != float64(500) || !strings.Contains(lines[0]["error"].(string), "publisher exploded") {
		t.Errorf("log = %v", lines)
	}
	// The server keeps serving.
	h.pub.panics = false
	if res := h.do(t, createRequest()); res.status != http.StatusCreated {
		t.Errorf("after a panic: status %d", res.status)
	}
}

func TestRequestLog(t *testing.T) {
	h := newHarness(t)
	h.do(t, formRequest("/createCachedQuery", cachedQueryFieldsFor(testEnv, testSQL)))
	h.do(t, rawRequest(http.MethodPost, "/createDatabaseConnection", "text/plain", "x"))

	lines := h.logs.lines(t)
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want one per request: %s", len(lines), h.logs)
	}
	ok := lines[0]
	for _, k := range []string{"method", "path", "status", "duration", "environment_id", "query_id", "command", "command_id"} {
		if _, found := ok[k]; !found {
			t.Errorf("log line lacks %q: %v", k, ok)
		}
	}
	if ok["method"] != "POST" || ok["path"] != "/createCachedQuery" || ok["status"] != float64(201) ||
		ok["environment_id"] != testEnv || ok["command"] != commands.NameCreateCachedQuery {
		t.Errorf("log line = %v", ok)
	}
	bad := lines[1]
	if bad["status"] != float64(400) {
		t.Errorf("log line = %v", bad)
	}
	if _, found := bad["environment_id"]; found {
		t.Errorf("environment_id logged for a request that never named a valid one: %v", bad)
	}
}

// TestNoSecretLeaks sends a connection string with a known password to
// every endpoint, in accepted and refused requests, and looks for the
// password in every answer, every log line and every published command.
func TestNoSecretLeaks(t *testing.T) {
	h := newHarness(t)
	h.status.conns[testEnv] = storedView(testConnRedacted)
	other := "postgres://mallory:" + testPassword + "@elsewhere/shop"
	requests := []*http.Request{
		formRequest("/createDatabaseConnection", connectionFieldsFor(testEnv)),
		jsonRequest("/createDatabaseConnection", connectionFieldsFor(testEnv), "application/json"),
		formRequest("/createCachedQuery", cachedQueryFieldsFor(testEnv, testSQL)),
		formRequest("/deleteDatabaseConnection", connectionFieldsFor(testEnv)),
		formRequest("/checkJobStatus", connectionFieldsFor(testEnv)),
		formRequest("/checkJobStatus", map[string]string{"connectionString": other, "environmentId": testEnv}),
		formRequest("/checkJobStatus", connectionFieldsFor("env-unknown")),
		formRequest("/createDatabaseConnection", map[string]string{"connectionString": testConnString, "environmentId": "bad.env"}),
		formRequest("/createDatabaseConnection", map[string]string{"connectionString": "postgres://alice:" + testPassword + "@db:0/shop", "environmentId": testEnv}),
		formRequest("/createDatabaseConnection", map[string]string{"connectionString": "host=db password=" + testPassword, "environmentId": testEnv}),
		rawRequest(http.MethodPost, "/createDatabaseConnection", "application/x-www-form-urlencoded",
			"connectionString=postgres://alice:"+testPassword+"@db/shop?sslmode=disable&x=y&environmentId=env-1"),
		rawRequest(http.MethodPost, "/createDatabaseConnection", "application/json",
			`{"connectionString":"postgres://alice:`+testPassword+`@db/shop","environmentId":`),
		rawRequest(http.MethodPost, "/createDatabaseConnection", "text/plain", "connectionString=postgres://alice:"+testPassword+"@db/shop"),
		rawRequest(http.MethodGet, "/connections/"+testEnv+"?connectionString=postgres://alice:"+testPassword+"@db/shop", "", ""),
		rawRequest(http.MethodGet, "/connections/postgres:%2F%2Falice:"+testPassword+"@db", "", ""),
	}
	for _, req := range requests {
		res := h.do(t, req)
		if strings.Contains(string(res.body), testPassword) || strings.Contains(res.header.Get("Location"), testPassword) {
			t.Errorf("%s %s: answer %d repeats the password: %s", req.Method, req.URL.Path, res.status, res.body)
		}
	}
	// Publish failures are logged with their cause.
	h.pub.err = errors.New("kafka: write failed for " + testConnString)
	h.do(t, formRequest("/createDatabaseConnection", connectionFieldsFor(testEnv)))
	h.pub.err = nil

	if strings.Contains(h.logs.String(), testPassword) {
		t.Errorf("the log repeats the password:\n%s", h.logs)
	}
	cmds := h.pub.published()
	if len(cmds) != 4 {
		t.Fatalf("published %d commands, want 4", len(cmds))
	}
	for _, cmd := range cmds {
		body, err := commands.Encode(cmd)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(body), testPassword) {
			t.Errorf("published %s carries the plaintext password: %s", cmd.CommandName(), body)
		}
		if !strings.Contains(string(body), `"sealed":"v2:`) || !strings.Contains(string(body), testConnRedacted) {
			t.Errorf("published %s lacks the sealed or redacted connection: %s", cmd.CommandName(), body)
		}
	}
}

// TestShutdown_drains_in_flight_requests holds a request inside Publish,
// shuts down, and checks that the request still gets its answer.
func TestShutdown_drains_in_flight_requests(t *testing.T) {
	h := newHarness(t)
	h.pub.entered = make(chan struct{}, 1)
	h.pub.release = make(chan struct{})
	ln := listen(t)
	served := make(chan error, 1)
	go func() { served <- h.srv.Serve(ln) }()

	type result struct {
		status int
		err    error
	}
	answered := make(chan result, 1)
	go func() {
		body := "connectionString=" + urlEncode(testConnString) + "&environmentId=" + testEnv
		res, err := http.Post("http://"+ln.Addr().String()+"/createDatabaseConnection", "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			answered <- result{err: err}
			return
		}
		defer res.Body.Close()
		_, _ = io.Copy(io.Discard, res.Body)
		answered <- result{status: res.StatusCode}
	}()
	<-h.pub.entered

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdown <- h.srv.Shutdown(ctx)
	}()
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) while a request was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(h.pub.release)

	if r := <-answered; r.err != nil || r.status != http.StatusCreated {
		t.Errorf("in-flight request: status %d, err %v", r.status, r.err)
	}
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
