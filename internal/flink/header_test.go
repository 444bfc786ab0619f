package flink_test

import (
	"context"
	"net/http"
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
