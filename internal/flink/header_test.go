package flink_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cdcq/cdcq/internal/flink"
	"github.com/cdcq/cdcq/internal/flink/flinkfake"
)

// TestHeaderOnEveryRequest: the configured Authorization header goes with
// every request to the SQL Gateway and to the JobManager.
func TestHeaderOnEveryRequest(t *testing.T) {
	s := flinkfake.NewServer(t)
	const auth = "Basic Zmxpbms6cHc="
	header := http.Header{"Authorization": {auth}}
	gw, err := flink.NewGateway(flink.GatewayConfig{URL: s.GatewayURL, Header: header})
	if err != nil {
		t.Fatal(err)
	}
	jm, err := flink.NewJobManager(flink.JobManagerConfig{URL: s.JobManagerURL, Header: header})
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
	flinkfake.CheckAuthorization(t, "gateway", s.Gateway.Requests(), auth)
	flinkfake.CheckAuthorization(t, "jobmanager", s.JobManager.Requests(), auth)
}

// An error answer that repeats the request's headers (a proxy in front of
// Flink) does not bring the credentials into the error.
func TestHeaderValuesAreNotInErrors(t *testing.T) {
	const auth = "Basic Zmxpbms6c2VjcmV0"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"errors":["not authorized: %s"]}`, r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	jm, err := flink.NewJobManager(flink.JobManagerConfig{URL: srv.URL, Header: http.Header{"Authorization": {auth}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = jm.Job(context.Background(), "0123456789abcdef0123456789abcdef")
	if err == nil || !strings.Contains(err.Error(), "not authorized") {
		t.Fatalf("err = %v, want the server's error", err)
	}
	if strings.Contains(err.Error(), "Zmxpbms6c2VjcmV0") {
		t.Errorf("error repeats the credentials: %v", err)
	}
}
