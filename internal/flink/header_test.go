package flink_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/cdcq/cdcq/internal/flink"
	"github.com/cdcq/cdcq/internal/flink/flinkfake"
)

// authRecorder serves h and keeps the Authorization header of every
// request.
type authRecorder struct {
	h    http.Handler
	mu   sync.Mutex
	seen []string
}

func (a *authRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, r.Header.Get("Authorization"))
	a.mu.Unlock()
	a.h.ServeHTTP(w, r)
}

func (a *authRecorder) check(t *testing.T, who, want string) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) == 0 {
		t.Fatalf("%s received no request", who)
	}
	for i, got := range a.seen {
		if got != want {
			t.Errorf("%s request %d: Authorization %q, want %q", who, i, got, want)
		}
	}
}

// TestHeaderOnEveryRequest: the configured Authorization header goes with
// every request to the SQL Gateway and to the JobManager.
func TestHeaderOnEveryRequest(t *testing.T) {
	s := flinkfake.NewServer(t)
	gwRec, jmRec := &authRecorder{h: s.Gateway}, &authRecorder{h: s.JobManager}
	gwSrv, jmSrv := httptest.NewServer(gwRec), httptest.NewServer(jmRec)
	defer gwSrv.Close()
	defer jmSrv.Close()
	const auth = "Basic Zmxpbms6cHc="
	header := http.Header{"Authorization": {auth}}
	gw, err := flink.NewGateway(flink.GatewayConfig{URL: gwSrv.URL, Header: header})
	if err != nil {
		t.Fatal(err)
	}
	jm, err := flink.NewJobManager(flink.JobManagerConfig{URL: jmSrv.URL, Header: header})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sh, err := gw.OpenSession(ctx, flink.SessionOptions{Name: "cdcq-env1-q_1"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := gw.Run(ctx, sh, flink.Statement{SQL: "INSERT INTO sink SELECT a FROM t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.CloseSession(ctx, sh); err != nil {
		t.Fatal(err)
	}
	if _, err := jm.Job(ctx, res.JobID); err != nil {
		t.Fatal(err)
	}
	if err := jm.CancelJob(ctx, res.JobID); err != nil {
		t.Fatal(err)
	}
	gwRec.check(t, "gateway", auth)
	jmRec.check(t, "jobmanager", auth)
}
