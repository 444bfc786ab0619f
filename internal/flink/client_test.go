package flink_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/flink"
	"github.com/cdcq/cdcq/internal/flink/flinkfake"
)

// The contract suite: cdcq's clients against servers that speak Flink's
// documented REST APIs (flinkfake, itself pinned to the wire format in its
// own tests).

func clients(t *testing.T, s *flinkfake.Server) (*flink.Gateway, *flink.JobManager) {
	t.Helper()
	gw, err := flink.NewGateway(flink.GatewayConfig{URL: s.GatewayURL, PollInterval: time.Millisecond, MaxPollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	jm, err := flink.NewJobManager(flink.JobManagerConfig{URL: s.JobManagerURL})
	if err != nil {
		t.Fatal(err)
	}
	return gw, jm
}

func TestRunStatementsAndReadJobID(t *testing.T) {
	s := flinkfake.NewServer(t)
	s.Gateway.SetStatusPolls(3)
	gw, jm := clients(t, s)
	ctx := context.Background()

	sh, err := gw.OpenSession(ctx, flink.SessionOptions{Name: "cdcq-env1-q_1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{"SET 'pipeline.name' = 'cdcq-env1-q_1'", "CREATE TEMPORARY TABLE t (a INT) WITH ('connector' = 'datagen')"} {
		res, err := gw.Run(ctx, sh, flink.Statement{SQL: st})
		if err != nil {
			t.Fatalf("%s: %v", st, err)
		}
		if res.JobID != "" || res.Kind != "SUCCESS" || len(res.Rows) != 1 {
			t.Fatalf("%s: result %+v", st, res)
		}
	}
	res, err := gw.Run(ctx, sh, flink.Statement{SQL: "INSERT INTO sink SELECT a FROM t"})
	if err != nil {
		t.Fatal(err)
	}
	jobs := s.JobManager.JobsNamed("cdcq-env1-q_1")
	if len(jobs) != 1 || res.JobID != jobs[0].ID {
		t.Fatalf("job id %q, jobs %+v", res.JobID, s.JobManager.Jobs())
	}
	if err := gw.Heartbeat(ctx, sh); err != nil {
		t.Fatal(err)
	}
	if err := gw.CloseSession(ctx, sh); err != nil {
		t.Fatal(err)
	}
	sess, _ := s.Gateway.Session(sh)
	if !sess.Closed || len(sess.Statements) != 3 {
		t.Fatalf("session %+v", sess)
	}
	// Status was polled until FINISHED: 3 RUNNING answers per statement.
	polls := 0
	for _, r := range s.Gateway.Requests() {
		if strings.HasSuffix(r.Path, "/status") {
			polls++
		}
	}
	if polls != 3*4 {
		t.Fatalf("%d status requests, want 12", polls)
	}

	details, err := jm.Job(ctx, res.JobID)
	if err != nil || details.State != flink.JobRunning || details.Name != "cdcq-env1-q_1" {
		t.Fatalf("job details %+v, %v", details, err)
	}
}

func TestRejectedStatementIsTerminalWithFlinksMessage(t *testing.T) {
	s := flinkfake.NewServer(t)
	s.Gateway.FailStatement(flinkfake.StatementFailure{Contains: "FROM nope",
		Chain: flinkfake.ValidationError("From line 1, column 15 to line 1, column 18", "Object 'nope' not found")})
	gw, _ := clients(t, s)
	ctx := context.Background()
	sh, err := gw.OpenSession(ctx, flink.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = gw.Run(ctx, sh, flink.Statement{SQL: "INSERT INTO sink SELECT * FROM nope"})
	var oe *flink.OperationError
	if !errors.As(err, &oe) {
		t.Fatalf("error %v (%T), want *OperationError", err, err)
	}
	want := "ValidationException: SQL validation failed. From line 1, column 15 to line 1, column 18: Object 'nope' not found"
	if oe.Status != flink.OpError || oe.Reason != want {
		t.Fatalf("status %s reason %q, want %q", oe.Status, oe.Reason, want)
	}
	if flink.IsRetriable(err) {
		t.Fatal("a rejected statement is retriable")
	}
	if !strings.Contains(oe.Trace, "SqlValidatorException: Object 'nope' not found") {
		t.Fatalf("trace lacks the root cause:\n%s", oe.Trace)
	}
}

func TestStatementFailingOnConnectionIsRetriable(t *testing.T) {
	s := flinkfake.NewServer(t)
	s.Gateway.FailStatement(flinkfake.StatementFailure{Contains: "INSERT", Chain: flinkfake.ConnectionRefused(), Times: 1})
	gw, _ := clients(t, s)
	ctx := context.Background()
	sh, _ := gw.OpenSession(ctx, flink.SessionOptions{})
	_, err := gw.Run(ctx, sh, flink.Statement{SQL: "INSERT INTO sink SELECT 1"})
	if err == nil || !flink.IsRetriable(err) {
		t.Fatalf("error %v: want a retriable error", err)
	}
	if !strings.Contains(err.Error(), "TableException: Failed to execute sql (caused by ConnectException: Connection refused") {
		t.Fatalf("error %q", err)
	}
	// The script was used once: the same statement now runs.
	if _, err := gw.Run(ctx, sh, flink.Statement{SQL: "INSERT INTO sink SELECT 1"}); err != nil {
		t.Fatal(err)
	}
}

func TestStatementRejectedOnSubmit(t *testing.T) {
	s := flinkfake.NewServer(t)
	s.Gateway.FailStatement(flinkfake.StatementFailure{Contains: "CREATE", OnSubmit: true,
		Chain: []string{"org.apache.flink.table.api.SqlParserException: SQL parse failed. Encountered \"TABEL\" at line 1, column 8."}})
	gw, _ := clients(t, s)
	ctx := context.Background()
	sh, _ := gw.OpenSession(ctx, flink.SessionOptions{})
	_, err := gw.Run(ctx, sh, flink.Statement{SQL: "CREATE TABEL x"})
	var oe *flink.OperationError
	if !errors.As(err, &oe) || flink.IsRetriable(err) || !strings.HasPrefix(oe.Reason, "SqlParserException: SQL parse failed.") {
		t.Fatalf("error %v", err)
	}
}

func TestServerErrorsAndTimeoutsAreRetriable(t *testing.T) {
	s := flinkfake.NewServer(t)
	gw, jm := clients(t, s)
	ctx := context.Background()

	s.Gateway.FailNext(1, flinkfake.Failure{Status: http.StatusServiceUnavailable, Errors: []string{"gateway restarting"}})
	_, err := gw.OpenSession(ctx, flink.SessionOptions{})
	var ae *flink.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 503 || !flink.IsRetriable(err) || !strings.Contains(err.Error(), "gateway restarting") {
		t.Fatalf("503: %v", err)
	}

	s.JobManager.FailNext(1, flinkfake.ServiceUnavailable)
	if _, err := jm.Jobs(ctx); !flink.IsRetriable(err) {
		t.Fatalf("jobmanager 503: %v", err)
	}

	// A statement in a session the gateway no longer knows: the gateway's
	// own failure, not the statement's.
	_, err = gw.Run(ctx, "5a8ab3b9-0f1c-4d0e-9b7e-1b2f3c4d5e6f", flink.Statement{SQL: "SELECT 1"})
	if !errors.As(err, &ae) || ae.StatusCode != 500 || !flink.IsRetriable(err) || !strings.Contains(ae.Message(), "does not exist") {
		t.Fatalf("unknown session: %v", err)
	}

	slow, err := flink.NewGateway(flink.GatewayConfig{URL: s.GatewayURL, RequestTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Gateway.SetLatency(200 * time.Millisecond)
	_, err = slow.OpenSession(ctx, flink.SessionOptions{})
	var te *flink.TransportError
	if !errors.As(err, &te) || !flink.IsRetriable(err) {
		t.Fatalf("timeout: %v (%T)", err, err)
	}
}

func TestOperationStillRunningIsCanceled(t *testing.T) {
	s := flinkfake.NewServer(t)
	s.Gateway.SetStatusPolls(1 << 20)
	gw, err := flink.NewGateway(flink.GatewayConfig{URL: s.GatewayURL, OperationTimeout: 30 * time.Millisecond,
		PollInterval: time.Millisecond, MaxPollInterval: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sh, _ := gw.OpenSession(ctx, flink.SessionOptions{})
	_, err = gw.Run(ctx, sh, flink.Statement{SQL: "INSERT INTO sink SELECT 1"})
	var oe *flink.OperationError
	if !errors.As(err, &oe) || !oe.Retriable() || !strings.Contains(oe.Reason, "canceled") {
		t.Fatalf("error %v", err)
	}
	cancels := 0
	for _, r := range s.Gateway.Requests() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/cancel") {
			cancels++
		}
	}
	if cancels != 1 {
		t.Fatalf("%d cancel requests, want 1", cancels)
	}
}

func TestJobIDFromTheResultColumn(t *testing.T) {
	// Gateways before Flink 1.18 send no jobID member: the id is only in
	// the "job id" column.
	const jid = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/statements"):
			_, _ = w.Write([]byte(`{"operationHandle":"op"}`))
		case strings.HasSuffix(r.URL.Path, "/status"):
			_, _ = w.Write([]byte(`{"status":"FINISHED"}`))
		case strings.HasSuffix(r.URL.Path, "/result/0"):
			_, _ = w.Write([]byte(`{"resultType":"PAYLOAD","isQueryResult":false,"resultKind":"SUCCESS_WITH_CONTENT","results":{"columns":[{"name":"job id","logicalType":{"type":"VARCHAR","nullable":true,"length":2147483647}}],"data":[{"kind":"INSERT","fields":["` + jid + `"]}]},"nextResultUri":"/v1/sessions/s/operations/op/result/1"}`))
		default:
			_, _ = w.Write([]byte(`{"resultType":"EOS","isQueryResult":false,"resultKind":"SUCCESS_WITH_CONTENT","results":{"columns":[],"data":[]}}`))
		}
	}))
	defer srv.Close()
	gw, err := flink.NewGateway(flink.GatewayConfig{URL: srv.URL, APIVersion: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := gw.Run(context.Background(), "s", flink.Statement{SQL: "INSERT INTO x SELECT 1"})
	if err != nil || res.JobID != jid {
		t.Fatalf("result %+v, %v", res, err)
	}
}

func TestJobManagerJobsExceptionsCancelStop(t *testing.T) {
	s := flinkfake.NewServer(t)
	_, jm := clients(t, s)
	ctx := context.Background()
	running := s.JobManager.AddJob("cdcq-env1-q_1", "RUNNING")
	failed := s.JobManager.AddJob("cdcq-env1-q_2", "RUNNING")
	trace := "org.apache.flink.runtime.JobException: Recovery is suppressed by NoRestartBackoffTimeStrategy\n\tat a.B.c(B.java:1)\nCaused by: java.io.IOException: Failed to deserialize consumer record.\n\tat d.E.f(E.java:2)"
	if err := s.JobManager.FailJob(failed, trace); err != nil {
		t.Fatal(err)
	}

	jobs, err := jm.Jobs(ctx)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("jobs %+v, %v", jobs, err)
	}
	if jobs[0].ID != running || jobs[0].State != flink.JobRunning || jobs[0].EndTime != -1 || jobs[0].StartTime == 0 {
		t.Fatalf("first job %+v", jobs[0])
	}
	if jobs[1].State != flink.JobFailed || !flink.GloballyTerminal(jobs[1].State) {
		t.Fatalf("second job %+v", jobs[1])
	}

	for _, legacy := range []bool{false, true} {
		s.JobManager.SetLegacyExceptions(legacy)
		ex, err := jm.JobExceptions(ctx, failed, 5)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := ex.Latest()
		if !ok || got != trace {
			t.Fatalf("legacy=%t: latest %q", legacy, got)
		}
		if got := flink.Summarize(flink.ParseTrace(got)); got != "IOException: Failed to deserialize consumer record." {
			t.Fatalf("summary %q", got)
		}
	}
	if r := s.JobManager.RequestsTo(http.MethodGet, "/jobs/"+failed+"/exceptions"); len(r) != 2 || r[0].Query.Get("maxExceptions") != "5" {
		t.Fatalf("exceptions requests %+v", r)
	}

	if err := jm.CancelJob(ctx, running); err != nil {
		t.Fatal(err)
	}
	if j, _ := s.JobManager.Job(running); j.State != "CANCELED" {
		t.Fatalf("after cancel: %+v", j)
	}
	err = jm.CancelJob(ctx, running)
	var ae *flink.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusConflict || flink.IsRetriable(err) {
		t.Fatalf("second cancel: %v", err)
	}
	if err := jm.CancelJob(ctx, "00000000000000000000000000000000"); !flink.IsNotFound(err) {
		t.Fatalf("cancel of an unknown job: %v", err)
	}
	if _, err := jm.Job(ctx, "00000000000000000000000000000000"); !flink.IsNotFound(err) || flink.IsRetriable(err) {
		t.Fatalf("unknown job: %v", err)
	}

	stop := s.JobManager.AddJob("cdcq-env1-q_3", "RUNNING")
	trigger, err := jm.StopJob(ctx, stop, flink.StopOptions{TargetDirectory: "file:///savepoints"})
	if err != nil || len(trigger) != 32 {
		t.Fatalf("stop: %q, %v", trigger, err)
	}
	if r := s.JobManager.RequestsTo(http.MethodPost, "/jobs/"+stop+"/stop"); len(r) != 1 || string(r[0].Body) != `{"targetDirectory":"file:///savepoints","drain":false}` {
		t.Fatalf("stop request %+v", r)
	}
}

func TestErrorsHoldNoCredentials(t *testing.T) {
	gw, err := flink.NewGateway(flink.GatewayConfig{URL: "http://cdcq:hunter2-secret@127.0.0.1:1", RequestTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = gw.OpenSession(context.Background(), flink.SessionOptions{})
	if err == nil || !flink.IsRetriable(err) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     flink.GatewayConfig
		wantErr string
	}{
		{name: "ok", cfg: flink.GatewayConfig{URL: "http://gw:8083"}},
		{name: "missing_url", cfg: flink.GatewayConfig{}, wantErr: "URL is required"},
		{name: "not_http", cfg: flink.GatewayConfig{URL: "gw:8083"}, wantErr: "http://"},
		{name: "query", cfg: flink.GatewayConfig{URL: "http://gw:8083/?a=1"}, wantErr: "query"},
		{name: "bad_version", cfg: flink.GatewayConfig{URL: "http://gw:8083", APIVersion: "2"}, wantErr: "APIVersion"},
		{name: "negative", cfg: flink.GatewayConfig{URL: "http://gw:8083", OperationTimeout: -time.Second}, wantErr: "negative"},
		{name: "poll_order", cfg: flink.GatewayConfig{URL: "http://gw:8083", PollInterval: time.Second, MaxPollInterval: time.Millisecond}, wantErr: "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := flink.NewGateway(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
	if _, err := flink.NewJobManager(flink.JobManagerConfig{}); err == nil {
		t.Fatal("JobManager without URL accepted")
	}
}
