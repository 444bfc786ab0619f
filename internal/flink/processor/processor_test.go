package processor_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcq/cdcq/handlers"
	"github.com/cdcq/cdcq/internal/flink"
	"github.com/cdcq/cdcq/internal/flink/flinkfake"
	"github.com/cdcq/cdcq/internal/flink/processor"
	"github.com/cdcq/cdcq/internal/flinksql"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

const (
	env       = "env1"
	queryID   = "q_00112233445566778899"
	bootstrap = "kafka:19092"
	// jaas is not a real credential; tests check it never leaks.
	jaas = `org.apache.kafka.common.security.plain.PlainLoginModule required username="cdcq" password="pw-must-not-leak-91c2";`
)

// countPlan is SELECT status, count(*) FROM orders GROUP BY status.
func countPlan() *sqlplan.Plan {
	text := sqlplan.TypeOf(sqlplan.KindText)
	bigint := sqlplan.TypeOf(sqlplan.KindBigint)
	return &sqlplan.Plan{
		Sources: []sqlplan.Source{{
			Alias: "orders", Schema: "public", Name: "orders", Topic: "public.orders",
			Columns: []sqlplan.SourceColumn{
				{Name: "id", Type: sqlplan.TypeOf(sqlplan.KindInteger), Key: true},
				{Name: "status", Type: text},
			},
			PrimaryKey: []string{"id"},
		}},
		GroupBy:    []sqlplan.Expr{&sqlplan.ColumnRef{Source: 0, Column: "status", Type: text}},
		Aggregates: []sqlplan.Aggregate{{Func: sqlplan.CountStar, Type: bigint}},
		Outputs: []sqlplan.Output{
			{Name: "status", Expr: &sqlplan.GroupRef{Index: 0, Type: text}, Type: text},
			{Name: "count", Expr: &sqlplan.AggRef{Index: 0, Type: bigint}, Type: bigint},
		},
	}
}

func spec(env, query string) handlers.QuerySpec {
	return handlers.QuerySpec{
		EnvironmentID: env,
		QueryID:       query,
		PipelineName:  names.PipelineName(env, query),
		SQLQuery:      "SELECT status, count(*) FROM orders GROUP BY status",
		Plan:          countPlan(),
	}
}

func cfg() processor.Config {
	return processor.Config{
		KafkaBootstrapServers: bootstrap,
		KafkaProperties:       map[string]string{"sasl.jaas.config": jaas},
	}
}

func newProcessor(t *testing.T) (*processor.Processor, *flinkfake.Server) {
	t.Helper()
	s := flinkfake.NewServer(t)
	return processorOn(t, s, cfg()), s
}

// processorOn returns a processor with configuration c on the fake s.
func processorOn(t *testing.T, s *flinkfake.Server, c processor.Config) *processor.Processor {
	t.Helper()
	gw, err := flink.NewGateway(flink.GatewayConfig{URL: s.GatewayURL, PollInterval: time.Millisecond, MaxPollInterval: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	jm, err := flink.NewJobManager(flink.JobManagerConfig{URL: s.JobManagerURL})
	if err != nil {
		t.Fatal(err)
	}
	p, err := processor.New(gw, jm, c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEnsureQuerySubmitsTheStatementsInOrder(t *testing.T) {
	p, s := newProcessor(t)
	sp := spec(env, queryID)
	st, err := p.EnsureQuery(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	sessions := s.Gateway.Sessions()
	if len(sessions) != 1 || !sessions[0].Closed || sessions[0].Name != sp.PipelineName {
		t.Fatalf("sessions %+v", sessions)
	}
	want, err := flinksql.Translate(sp.Plan, flinksql.Options{EnvironmentID: env, QueryID: queryID,
		PipelineName: sp.PipelineName, BootstrapServers: bootstrap, KafkaProperties: cfg().KafkaProperties,
		Settings: map[string]string{processor.CheckpointIntervalSetting: processor.DefaultCheckpointInterval}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sessions[0].Statements, want) {
		t.Fatalf("statements:\n%s\nwant:\n%s", flinksql.Script(sessions[0].Statements), flinksql.Script(want))
	}
	jobsNamed := s.JobManager.JobsNamed(sp.PipelineName)
	if len(jobsNamed) != 1 {
		t.Fatalf("jobs %+v", s.JobManager.Jobs())
	}
	wantStatus := jobs.QueryStatus{Status: jobs.StatusRunning, JobID: jobsNamed[0].ID, JobState: "RUNNING"}
	if st != wantStatus {
		t.Fatalf("status %+v, want %+v", st, wantStatus)
	}
}

func TestEnsureQueryIsIdempotent(t *testing.T) {
	p, s := newProcessor(t)
	ctx := context.Background()
	first, err := p.EnsureQuery(ctx, spec(env, queryID))
	if err != nil {
		t.Fatal(err)
	}
	second, err := p.EnsureQuery(ctx, spec(env, queryID))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Gateway.Sessions()) != 1 || len(s.JobManager.Jobs()) != 1 {
		t.Fatalf("second call submitted again: %d sessions, %d jobs", len(s.Gateway.Sessions()), len(s.JobManager.Jobs()))
	}
	if second != first {
		t.Fatalf("second status %+v, first %+v", second, first)
	}
}

func TestEnsureQueryResubmitsAFailedJob(t *testing.T) {
	p, s := newProcessor(t)
	sp := spec(env, queryID)
	old := s.JobManager.AddJob(sp.PipelineName, "RUNNING")
	if err := s.JobManager.FailJob(old, "java.lang.RuntimeException: boom"); err != nil {
		t.Fatal(err)
	}
	st, err := p.EnsureQuery(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	if st.JobID == old || st.Status != jobs.StatusRunning || len(s.JobManager.JobsNamed(sp.PipelineName)) != 2 {
		t.Fatalf("status %+v, jobs %+v", st, s.JobManager.Jobs())
	}
}

func TestEnsureQueryReportsAJobStillStarting(t *testing.T) {
	p, s := newProcessor(t)
	s.Gateway.SetNewJobState("CREATED")
	st, err := p.EnsureQuery(context.Background(), spec(env, queryID))
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != jobs.StatusPending || st.JobState != "CREATED" || st.JobID == "" || !strings.Contains(st.Reason, "is CREATED") {
		t.Fatalf("status %+v", st)
	}
}

func TestSQLErrorFailsTheQueryWithFlinksMessage(t *testing.T) {
	p, s := newProcessor(t)
	s.Gateway.FailStatement(flinkfake.StatementFailure{
		Contains: "CREATE TEMPORARY TABLE `cdcq_result`",
		Chain: []string{
			"org.apache.flink.table.api.ValidationException: Unable to create a sink for writing table 'default_catalog.default_database.cdcq_result'.\n\nTable options are:\n\n'properties.sasl.jaas.config'='" + jaas + "'",
			"org.apache.flink.table.api.ValidationException: Could not find any factory for identifier 'upsert-kafka' that implements 'org.apache.flink.table.factories.DynamicTableFactory' in the classpath.",
		},
	})
	_, err := p.EnsureQuery(context.Background(), spec(env, queryID))
	if !jobs.IsTerminal(err) {
		t.Fatalf("error %v: want terminal", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"Flink rejected statement 6 of 7 (CREATE TEMPORARY TABLE `cdcq_result`)",
		"Could not find any factory for identifier 'upsert-kafka'",
	} {
		if !strings.Contains(msg, want) {
			t.Fatalf("error %q lacks %q", msg, want)
		}
	}
	var se *processor.StatementError
	if strings.Contains(msg, "pw-must-not-leak") {
		t.Fatalf("error leaks the password: %s", msg)
	}
	if !errors.As(err, &se) || strings.Contains(se.Err.Trace, "pw-must-not-leak") || !strings.Contains(se.Err.Trace, "'properties.sasl.jaas.config'='***'") {
		t.Fatalf("statement error %+v: the trace must be there, with the password masked", se)
	}
	if sess := s.Gateway.Sessions(); len(sess) != 1 || !sess[0].Closed {
		t.Fatalf("session not closed after the error: %+v", sess)
	}
	if len(s.JobManager.Jobs()) != 0 {
		t.Fatal("a job was submitted")
	}
}

func TestServerErrorsAreRetried(t *testing.T) {
	tests := []struct {
		name   string
		script func(*flinkfake.Server)
	}{
		{name: "open_session_503", script: func(s *flinkfake.Server) {
			s.Gateway.FailNext(1, flinkfake.Failure{Status: http.StatusServiceUnavailable, PathContains: "/sessions"})
		}},
		{name: "statement_503", script: func(s *flinkfake.Server) {
			s.Gateway.FailNext(1, flinkfake.Failure{Status: http.StatusServiceUnavailable, PathContains: "/statements"})
		}},
		{name: "jobmanager_unreachable_on_insert", script: func(s *flinkfake.Server) {
			s.Gateway.FailStatement(flinkfake.StatementFailure{Contains: "INSERT", Chain: flinkfake.ConnectionRefused(), Times: 1})
		}},
		{name: "job_list_503", script: func(s *flinkfake.Server) {
			s.JobManager.FailNext(1, flinkfake.ServiceUnavailable)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, s := newProcessor(t)
			tt.script(s)
			_, err := p.EnsureQuery(context.Background(), spec(env, queryID))
			if err == nil || jobs.IsTerminal(err) {
				t.Fatalf("error %v: want a retriable error", err)
			}
			for _, sess := range s.Gateway.Sessions() {
				if !sess.Closed {
					t.Fatalf("session %s left open", sess.Handle)
				}
			}
			// The retry succeeds.
			st, err := p.EnsureQuery(context.Background(), spec(env, queryID))
			if err != nil || st.Status != jobs.StatusRunning {
				t.Fatalf("retry: %+v, %v", st, err)
			}
		})
	}
}

func TestSessionClosedWhenTheCallerGivesUp(t *testing.T) {
	p, s := newProcessor(t)
	s.Gateway.SetStatusPolls(1 << 20)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := p.EnsureQuery(ctx, spec(env, queryID))
	if err == nil || jobs.IsTerminal(err) {
		t.Fatalf("error %v: want a retriable error", err)
	}
	if sess := s.Gateway.Sessions(); len(sess) != 1 || !sess[0].Closed {
		t.Fatalf("sessions %+v", sess)
	}
}

func TestUntranslatableQueryIsTerminal(t *testing.T) {
	p, s := newProcessor(t)
	sp := spec(env, queryID)
	sp.Plan.Outputs[len(sp.Plan.Outputs)-1].Name = "query_id" // the result topic's own column
	_, err := p.EnsureQuery(context.Background(), sp)
	var ue *flinksql.UnsupportedError
	if !jobs.IsTerminal(err) || !errors.As(err, &ue) {
		t.Fatalf("error %v", err)
	}
	sp.Plan = nil
	if _, err := p.EnsureQuery(context.Background(), sp); !jobs.IsTerminal(err) || !strings.Contains(err.Error(), "no compiled plan") {
		t.Fatalf("error %v", err)
	}
	if len(s.Gateway.Sessions()) != 0 {
		t.Fatal("a session was opened for a query that cannot run")
	}
}

func TestObserveQuery(t *testing.T) {
	p, s := newProcessor(t)
	ctx := context.Background()
	sp := spec(env, queryID)

	st, err := p.ObserveQuery(ctx, sp)
	if err != nil || st.Status != jobs.StatusFailed || st.Reason != "no Flink job named "+sp.PipelineName {
		t.Fatalf("no job: %+v, %v", st, err)
	}

	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixMilli())
	s.JobManager.SetClock(func() time.Time { return time.UnixMilli(clock.Add(1000)) })
	old := s.JobManager.AddJob(sp.PipelineName, "CANCELED")
	current := s.JobManager.AddJob(sp.PipelineName, "RUNNING")
	st, err = p.ObserveQuery(ctx, sp)
	if err != nil || st.Status != jobs.StatusRunning || st.JobID != current || st.JobState != "RUNNING" {
		t.Fatalf("running: %+v, %v (old job %s)", st, err, old)
	}

	trace := "org.apache.flink.runtime.JobException: Recovery is suppressed by NoRestartBackoffTimeStrategy\n" +
		"\tat org.apache.flink.runtime.executiongraph.failover.ExecutionFailureHandler.handleFailure(ExecutionFailureHandler.java:219)\n" +
		"Caused by: java.io.IOException: Failed to deserialize consumer record due to\n" +
		"\tat org.apache.flink.connector.kafka.source.reader.KafkaRecordEmitter.emitRecord(KafkaRecordEmitter.java:56)\n" +
		"Caused by: java.lang.IllegalStateException: The \"before\" field of UPDATE message is null, if you are using Debezium Postgres Connector, please check the Postgres table has been set REPLICA IDENTITY to FULL level.\n" +
		"\tat org.apache.flink.formats.json.debezium.DebeziumJsonDeserializationSchema.deserialize(DebeziumJsonDeserializationSchema.java:159)"
	if err := s.JobManager.FailJob(current, trace); err != nil {
		t.Fatal(err)
	}
	for _, legacy := range []bool{false, true} {
		s.JobManager.SetLegacyExceptions(legacy)
		st, err = p.ObserveQuery(ctx, sp)
		if err != nil {
			t.Fatal(err)
		}
		wantReason := "Flink job " + current + " FAILED: IOException: Failed to deserialize consumer record due to (caused by IllegalStateException: The \"before\" field of UPDATE message is null, if you are using Debezium Postgres Connector, please check the Postgres table has been set REPLICA IDENTITY to FULL level.)"
		if st.Status != jobs.StatusFailed || st.JobState != "FAILED" || st.RootException != trace || st.Reason != wantReason {
			t.Fatalf("legacy=%t failed:\n%+v\nwant reason %q", legacy, st, wantReason)
		}
	}

	if err := s.JobManager.SetJobState(current, "RESTARTING"); err != nil {
		t.Fatal(err)
	}
	st, _ = p.ObserveQuery(ctx, sp)
	if st.Status != jobs.StatusPending || !strings.Contains(st.Reason, "is RESTARTING after a failure: IOException") {
		t.Fatalf("restarting: %+v", st)
	}

	s.JobManager.FailNext(1, flinkfake.ServiceUnavailable)
	if _, err := p.ObserveQuery(ctx, sp); err == nil || jobs.IsTerminal(err) {
		t.Fatalf("503: %v", err)
	}
}

func TestDeleteEnvironmentCancelsOnlyThatEnvironment(t *testing.T) {
	p, s := newProcessor(t)
	jm := s.JobManager
	mine := jm.AddJob(names.PipelineName("env1", "q_1"), "RUNNING")
	restarting := jm.AddJob(names.PipelineName("env1", "q_2"), "RESTARTING")
	failed := jm.AddJob(names.PipelineName("env1", "q_3"), "FAILED")
	longerEnv := jm.AddJob(names.PipelineName("env1-b", "q_4"), "RUNNING")
	other := jm.AddJob(names.PipelineName("env2", "q_5"), "RUNNING")
	foreign := jm.AddJob("insert-into_default_catalog.default_database.sink", "RUNNING")

	if err := p.DeleteEnvironment(context.Background(), "env1"); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{mine: "CANCELED", restarting: "CANCELED", failed: "FAILED", longerEnv: "RUNNING", other: "RUNNING", foreign: "RUNNING"}
	for id, state := range want {
		if j, _ := jm.Job(id); j.State != state {
			t.Fatalf("job %s (%s) is %s, want %s", id, j.Name, j.State, state)
		}
	}
	cancels := 0
	for _, r := range jm.Requests() {
		if r.Method == http.MethodPatch {
			cancels++
		}
	}
	if cancels != 2 {
		t.Fatalf("%d cancel requests, want 2", cancels)
	}
	// Again: nothing left to cancel.
	if err := p.DeleteEnvironment(context.Background(), "env1"); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteEnvironment(context.Background(), "env9"); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteEnvironmentToleratesRaces(t *testing.T) {
	p, s := newProcessor(t)
	id := s.JobManager.AddJob(names.PipelineName("env1", "q_1"), "RUNNING")
	// The job ends between the listing and the cancel: Flink answers 409.
	s.JobManager.FailNext(1, flinkfake.Failure{Status: http.StatusConflict, Method: http.MethodPatch,
		Errors: []string{"org.apache.flink.runtime.rest.handler.RestHandlerException: Job cancellation failed because the job has already reached another terminal state (FINISHED).\n\tat x.Y.z(Y.java:1)"}})
	if err := p.DeleteEnvironment(context.Background(), "env1"); err != nil {
		t.Fatal(err)
	}
	s.JobManager.FailNext(1, flinkfake.Failure{Status: http.StatusServiceUnavailable, Method: http.MethodPatch})
	if err := p.DeleteEnvironment(context.Background(), "env1"); err == nil || jobs.IsTerminal(err) {
		t.Fatalf("503 on cancel: %v, want retriable", err)
	}
	if err := p.DeleteEnvironment(context.Background(), "env1"); err != nil {
		t.Fatal(err)
	}
	if j, _ := s.JobManager.Job(id); j.State != "CANCELED" {
		t.Fatalf("job %+v", j)
	}
}

func TestNewRefusesBadDependencies(t *testing.T) {
	s := flinkfake.NewServer(t)
	gw, _ := flink.NewGateway(flink.GatewayConfig{URL: s.GatewayURL})
	jm, _ := flink.NewJobManager(flink.JobManagerConfig{URL: s.JobManagerURL})
	if _, err := processor.New(nil, jm, cfg()); err == nil {
		t.Fatal("nil gateway accepted")
	}
	if _, err := processor.New(gw, nil, cfg()); err == nil {
		t.Fatal("nil jobmanager accepted")
	}
	if _, err := processor.New(gw, jm, processor.Config{}); err == nil {
		t.Fatal("missing bootstrap servers accepted")
	}
	p, err := processor.New(gw, jm, cfg())
	if err != nil || p.Engine() != "flink" {
		t.Fatalf("%v, %v", p, err)
	}
}
