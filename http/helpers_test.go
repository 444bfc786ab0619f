package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/connstr"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/secret"
	"github.com/cdcq/cdcq/projections"
)

// testPassword must never appear in a response or a log line.
const testPassword = "Sup3r-S3cret_pw"

// testConnString is a valid connection string whose normalised form
// (connstr's String) is testConnStringNormalized.
const (
	testConnString           = "postgresql://alice:" + testPassword + "@db.example.com/shop?sslmode=disable"
	testConnStringNormalized = "postgres://alice:" + testPassword + "@db.example.com:5432/shop?sslmode=disable"
	testConnRedacted         = "postgres://alice:***@db.example.com:5432/shop?sslmode=disable"
	testEnv                  = "env-1"
	testSchema               = "model User {\n  id Int @id\n  country String\n}"
	testSQL                  = "SELECT country, count(*)\n  FROM \"User\"  GROUP BY country"
)

var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

type fakePublisher struct {
	mu      sync.Mutex
	cmds    []commands.Command
	err     error
	panics  bool
	release chan struct{} // when set, Publish waits for it
	entered chan struct{} // when set, Publish signals on it first
}

func (f *fakePublisher) Publish(ctx context.Context, cmd commands.Command) error {
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.release != nil {
		<-f.release
	}
	if f.panics {
		panic("publisher exploded")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.cmds = append(f.cmds, cmd)
	return nil
}

func (f *fakePublisher) published() []commands.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]commands.Command(nil), f.cmds...)
}

type fakeStatus struct {
	conns   map[string]projections.ConnectionView
	queries map[string]projections.QueryView
	err     error
}

func (f *fakeStatus) Connection(_ context.Context, env string) (projections.ConnectionView, error) {
	if f.err != nil {
		return projections.ConnectionView{}, f.err
	}
	v, ok := f.conns[env]
	if !ok {
		return v, fmt.Errorf("connection %s: %w", env, projections.ErrNotFound)
	}
	return v, nil
}

func (f *fakeStatus) CachedQuery(_ context.Context, id string) (projections.QueryView, error) {
	if f.err != nil {
		return projections.QueryView{}, f.err
	}
	v, ok := f.queries[id]
	if !ok {
		return v, fmt.Errorf("query %s: %w", id, projections.ErrNotFound)
	}
	return v, nil
}

// Binding makes fakeStatus the workers' bindings too: an environment that
// has a view, not DELETED, is bound (established) to its connection.
func (f *fakeStatus) Binding(_ context.Context, env string) (connstr.Conn, bool, bool, error) {
	if f.err != nil {
		return connstr.Conn{}, false, false, f.err
	}
	v, ok := f.conns[env]
	if !ok || v.Status == jobs.StatusDeleted {
		return connstr.Conn{}, false, false, nil
	}
	c, err := connstr.Parse(v.Connection)
	return c, true, err == nil, err
}

// syncBuffer collects log output written from server goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the JSON log records.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

type harness struct {
	srv    *Server
	pub    *fakePublisher
	status *fakeStatus
	sealer *secret.Sealer
	logs   *syncBuffer
}

func newHarness(t *testing.T, mutate ...func(*Config)) *harness {
	t.Helper()
	sealer, err := secret.NewSealer(bytes.Repeat([]byte{7}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		pub:    &fakePublisher{},
		status: &fakeStatus{conns: map[string]projections.ConnectionView{}, queries: map[string]projections.QueryView{}},
		sealer: sealer,
		logs:   &syncBuffer{},
	}
	ids := 0
	var idMu sync.Mutex
	cfg := Config{
		Commands: h.pub,
		Status:   h.status,
		Bindings: h.status,
		Sealer:   sealer,
		Logger:   slog.New(slog.NewJSONHandler(h.logs, nil)),
		Now:      func() time.Time { return testNow },
		NewID: func() string {
			idMu.Lock()
			defer idMu.Unlock()
			ids++
			return fmt.Sprintf("cmd-%d", ids)
		},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	h.srv, err = New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (h *harness) do(t *testing.T, req *http.Request) response {
	t.Helper()
	res, err := h.srv.App().Test(req, 10_000)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: body}
}

// encoding builds a POST request with fields in one body encoding.
type encoding struct {
	name  string
	build func(path string, fields map[string]string) *http.Request
}

var encodings = []encoding{
	{name: "form", build: formRequest},
	{name: "json", build: func(path string, f map[string]string) *http.Request {
		return jsonRequest(path, f, "application/json")
	}},
	{name: "json_with_charset", build: func(path string, f map[string]string) *http.Request {
		return jsonRequest(path, f, "application/json; charset=UTF-8")
	}},
}

// formRequest encodes fields as curl --data-urlencode would.
func formRequest(path string, fields map[string]string) *http.Request {
	v := url.Values{}
	for k, val := range fields {
		v.Set(k, val)
	}
	return rawRequest(http.MethodPost, path, "application/x-www-form-urlencoded", v.Encode())
}

func jsonRequest(path string, fields map[string]string, contentType string) *http.Request {
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	return rawRequest(http.MethodPost, path, contentType, string(b))
}

func rawRequest(method, path, contentType, body string) *http.Request {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	return req
}

func connectionFieldsFor(env string) map[string]string {
	return map[string]string{"connectionString": testConnString, "environmentId": env}
}

func cachedQueryFieldsFor(env, sql string) map[string]string {
	return map[string]string{"connectionString": testConnString, "environmentId": env, "schema": testSchema, "sqlQuery": sql}
}

func decodeAs[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("body %s is not the expected JSON: %v", body, err)
	}
	return v
}

// wantError checks an error answer's status, code and field.
func wantError(t *testing.T, res response, status int, code, field string) ErrorDetail {
	t.Helper()
	if res.status != status {
		t.Fatalf("status = %d, want %d; body %s", res.status, status, res.body)
	}
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	e := decodeAs[ErrorResponse](t, res.body).Error
	if e.Code != code || e.Field != field {
		t.Errorf("error = %+v, want code %q field %q", e, code, field)
	}
	if e.Message == "" {
		t.Errorf("error has no message: %s", res.body)
	}
	return e
}

// serve runs the server on a loopback port until the test ends and returns
// its base URL.
func (h *harness) serve(t *testing.T) string {
	t.Helper()
	ln := listen(t)
	done := make(chan error, 1)
	go func() { done <- h.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func urlEncode(s string) string { return url.QueryEscape(s) }

// wantRefused checks that res is the error status/code/field with a
// message containing wantMessage, that it does not repeat the test
// password, and that nothing was published.
func wantRefused(t *testing.T, h *harness, res response, status int, code, field, wantMessage string) {
	t.Helper()
	e := wantError(t, res, status, code, field)
	if !strings.Contains(e.Message, wantMessage) {
		t.Errorf("message %q does not contain %q", e.Message, wantMessage)
	}
	if strings.Contains(string(res.body), testPassword) {
		t.Errorf("answer repeats the password: %s", res.body)
	}
	if n := len(h.pub.published()); n != 0 {
		t.Errorf("published %d commands on a refused request", n)
	}
}
