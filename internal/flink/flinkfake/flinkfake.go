// Package flinkfake is an in-process fake of the two Flink REST APIs cdcq
// drives: the SQL Gateway's REST endpoint (Gateway) and the JobManager's
// REST API (JobManager). It answers with the paths, status codes and bodies
// of Flink's published OpenAPI specifications and of its REST handlers,
// keeps sessions and jobs in memory, and lets a test script what a real
// cluster does to a client: statements Flink rejects (with the exception
// chain the gateway prints), server errors and slow answers, job states,
// failures with stack traces, cancel and stop.
//
// A Gateway wired to a JobManager (New, NewServer) turns every INSERT it
// executes into a job named by the session's pipeline.name, the way the
// real gateway submits a job to its cluster.
//
// Served endpoints, gateway (under /v1 to /v4):
//
//	GET    /info, /api_versions
//	POST   /sessions                                    {"sessionHandle"}
//	DELETE /sessions/{s}                                {"status":"CLOSED"}
//	POST   /sessions/{s}/heartbeat
//	POST   /sessions/{s}/statements                     {"operationHandle"}
//	GET    /sessions/{s}/operations/{o}/status          {"status"}
//	POST   /sessions/{s}/operations/{o}/cancel          {"status"}
//	DELETE /sessions/{s}/operations/{o}/close           {"status"}
//	GET    /sessions/{s}/operations/{o}/result/{token}?rowFormat=JSON
//
// JobManager (also under /v1):
//
//	GET    /jobs/overview                               {"jobs":[...]}
//	GET    /jobs/{id}
//	GET    /jobs/{id}/exceptions                        {"exceptionHistory":{...}}
//	PATCH  /jobs/{id}?mode=cancel                       202
//	POST   /jobs/{id}/stop                              202 {"request-id"}
//
// Errors have Flink's body {"errors":["..."]}.
//
// This package must not import other cdcq packages: it models the wire
// protocol, not cdcq's client of it.
package flinkfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Failure is a scripted error answer.
type Failure struct {
	// Status is the HTTP status.
	Status int
	// Errors is the body's errors array; empty sends the status text.
	Errors []string
	// Method limits the failure to requests with this method; empty
	// matches every method.
	Method string
	// PathContains limits the failure to paths holding this text (for
	// example "/statements"); empty matches every path.
	PathContains string
}

// ServiceUnavailable is the 503 the JobManager's REST handlers answer
// while no leader is elected; a proxy in front of the gateway answers the
// same way when the gateway is down.
var ServiceUnavailable = Failure{Status: http.StatusServiceUnavailable,
	Errors: []string{"Service temporarily unavailable due to an ongoing leader election. Please refresh."}}

// Request is one request a fake received. Body holds the raw request body
// (SQL text may hold credentials: it is for assertions in tests only).
type Request struct {
	Method string
	// Path is the unescaped path, e.g. /v2/sessions.
	Path  string
	Query url.Values
	Body  []byte
	// Authorization is the request's Authorization header (for tests of
	// the clients' credentials).
	Authorization string
}

// CheckAuthorization fails tb unless reqs is not empty and every request
// carried the Authorization header want; who names the service.
func CheckAuthorization(tb testing.TB, who string, reqs []Request, want string) {
	tb.Helper()
	if len(reqs) == 0 {
		tb.Errorf("the %s received no request", who)
	}
	for i, r := range reqs {
		if r.Authorization != want {
			tb.Errorf("%s request %d (%s %s): Authorization %q, want %q", who, i, r.Method, r.Path, r.Authorization, want)
		}
	}
}

// Server serves a Gateway and a JobManager on two loopback ports.
type Server struct {
	Gateway    *Gateway
	JobManager *JobManager
	// GatewayURL and JobManagerURL are the base URLs to give the clients.
	GatewayURL    string
	JobManagerURL string
}

// New returns a Gateway that submits its INSERT jobs to a new JobManager.
func New() (*Gateway, *JobManager) {
	jm := NewJobManager()
	return NewGateway(jm), jm
}

// NewServer starts a wired Gateway and JobManager and stops them when the
// test ends.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	gw, jm := New()
	gs := httptest.NewServer(gw)
	tb.Cleanup(gs.Close)
	js := httptest.NewServer(jm)
	tb.Cleanup(js.Close)
	return &Server{Gateway: gw, JobManager: jm, GatewayURL: gs.URL, JobManagerURL: js.URL}
}

// scripted is a Failure with a count of uses left.
type scripted struct {
	f Failure
	n int
}

// takeFailure uses one matching scripted failure, if any.
func takeFailure(list *[]scripted, method, path string) (Failure, bool) {
	for i := range *list {
		s := &(*list)[i]
		if s.f.Method != "" && s.f.Method != method {
			continue
		}
		if s.f.PathContains != "" && !strings.Contains(path, s.f.PathContains) {
			continue
		}
		s.n--
		fail := s.f
		if s.n == 0 {
			*list = append((*list)[:i], (*list)[i+1:]...)
		}
		return fail, true
	}
	return Failure{}, false
}

func writeFailure(w http.ResponseWriter, f Failure) {
	errs := f.Errors
	if len(errs) == 0 {
		errs = []string{http.StatusText(f.Status)}
	}
	writeJSON(w, f.Status, errorBody{Errors: errs})
}

type errorBody struct {
	Errors []string `json:"errors"`
}

// writeHandlerError answers the way Flink (1.16+) reports a
// RestHandlerException: one entry holding the exception's printed trace.
func writeHandlerError(w http.ResponseWriter, status int, class, message string) {
	trace := class + ": " + message + "\n\tat org.apache.flink.runtime.rest.handler.AbstractRestHandler.respondToRequest(AbstractRestHandler.java:83)\n"
	writeJSON(w, status, errorBody{Errors: []string{trace}})
}

// writeInternalError answers the way Flink reports an unhandled exception.
func writeInternalError(w http.ResponseWriter, trace string) {
	writeJSON(w, http.StatusInternalServerError, errorBody{Errors: []string{
		"Internal server error.",
		"<Exception on server side:\n" + trace + "\nEnd of exception on server side>",
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	defer r.Body.Close()
	return io.ReadAll(io.LimitReader(r.Body, 4<<20))
}

// splitPath splits an escaped path into unescaped segments.
func splitPath(r *http.Request) []string {
	raw := strings.Trim(r.URL.EscapedPath(), "/")
	if raw == "" {
		return nil
	}
	parts := strings.Split(raw, "/")
	for i, p := range parts {
		if u, err := url.PathUnescape(p); err == nil {
			parts[i] = u
		}
	}
	return parts
}

// delay waits d unless the client gives up first; false means it gave up.
func delay(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// uuid returns a random version-4 UUID, the form of the gateway's handles.
func uuid() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
