package handlers

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/secret"
	"github.com/cdcq/cdcq/projections"
)

const plainConn = "postgres://alice:s3cret@db:5432/shop"

const testSchema = `model a {
  id Int @id
}
`

// recorder is an EventPublisher that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	events []events.Event
	err    error
}

func (r *recorder) Publish(_ context.Context, evs ...events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.events = append(r.events, evs...)
	return nil
}

func (r *recorder) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.EventName())
	}
	return out
}

// fakeCapture answers with scripted errors and records calls.
type fakeCapture struct {
	ensureErr, deleteErr, observeErr error
	status                           jobs.CaptureStatus
	calls                            []string
	specs                            []CaptureSpec
}

func (f *fakeCapture) Engine() string { return "fake" }
func (f *fakeCapture) Ensure(_ context.Context, s CaptureSpec) error {
	f.calls, f.specs = append(f.calls, "ensure"), append(f.specs, s)
	return f.ensureErr
}
func (f *fakeCapture) Observe(_ context.Context, s CaptureSpec) (jobs.CaptureStatus, error) {
	f.calls = append(f.calls, "observe")
	return f.status, f.observeErr
}
func (f *fakeCapture) Delete(_ context.Context, s CaptureSpec) error {
	f.calls, f.specs = append(f.calls, "delete"), append(f.specs, s)
	return f.deleteErr
}

type fakeProcessor struct {
	ensureErr, deleteErr error
	calls                []string
	queries              []QuerySpec
}

func (f *fakeProcessor) Engine() string { return "fakeproc" }
func (f *fakeProcessor) EnsureQuery(_ context.Context, q QuerySpec) (jobs.QueryStatus, error) {
	f.calls, f.queries = append(f.calls, "ensure"), append(f.queries, q)
	return jobs.QueryStatus{Status: jobs.StatusRunning, JobID: "job-1"}, f.ensureErr
}
func (f *fakeProcessor) ObserveQuery(_ context.Context, q QuerySpec) (jobs.QueryStatus, error) {
	return jobs.QueryStatus{Status: jobs.StatusRunning, JobID: "job-1"}, nil
}
func (f *fakeProcessor) DeleteQuery(_ context.Context, q QuerySpec) error {
	f.calls = append(f.calls, "delete query "+q.PipelineName)
	return f.deleteErr
}
func (f *fakeProcessor) DeleteEnvironment(_ context.Context, env string) error {
	f.calls = append(f.calls, "delete "+env)
	return f.deleteErr
}

func newSealer(t *testing.T) *secret.Sealer {
	t.Helper()
	k, _ := secret.ParseKey(secret.NewKey())
	s, err := secret.NewSealer(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTestWorker(t *testing.T, c *fakeCapture, p *fakeProcessor) (*Worker, *recorder, *secret.Sealer) {
	t.Helper()
	rec := &recorder{}
	s := newSealer(t)
	w, err := NewWorker(WorkerConfig{Capture: c, Processor: p, Events: rec, Sealer: s, Bindings: &memBindings{},
		Now: func() time.Time { return time.Unix(1700000000, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	return w, rec, s
}

func connection(s *secret.Sealer, env string) commands.Connection {
	return commands.Connection{Sealed: s.Seal(plainConn, env), Redacted: "postgres://alice:***@db:5432/shop"}
}

func TestNewWorkerRefusesMissingDependencies(t *testing.T) {
	if _, err := NewWorker(WorkerConfig{}); err == nil {
		t.Fatal("NewWorker accepted an empty config")
	}
}

func TestCreateDatabaseConnection(t *testing.T) {
	transient := errors.New("connect: 503")
	tests := []struct {
		name       string
		ensureErr  error
		badSeal    bool
		wantErr    error
		wantEvents string
		wantReason string
	}{
		{name: "created", wantEvents: "ConnectionRequested ConnectionObserved"},
		{name: "terminal_engine_error_fails_job_and_acks", ensureErr: jobs.Terminalf("bad config: slot.name"), wantEvents: "ConnectionRequested ConnectionFailed", wantReason: "bad config: slot.name"},
		{name: "transient_engine_error_is_returned_for_retry", ensureErr: transient, wantErr: transient, wantEvents: "ConnectionRequested"},
		{name: "unopenable_connection_fails_job", badSeal: true, wantEvents: "ConnectionFailed", wantReason: "CDCQ_SECRET_KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeCapture{ensureErr: tt.ensureErr, status: jobs.CaptureStatus{Status: jobs.StatusRunning}}
			w, rec, s := newTestWorker(t, c, &fakeProcessor{})
			conn := connection(s, "env-1")
			if tt.badSeal {
				conn.Sealed = newSealer(t).Seal(plainConn, "env-1")
			}
			err := w.Handle(context.Background(), commands.CreateDatabaseConnection{
				Meta: commands.Meta{CommandID: "c1", EnvironmentID: "env-1"}, Connection: conn})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := strings.Join(rec.names(), " "); got != tt.wantEvents {
				t.Fatalf("events = %s, want %s", got, tt.wantEvents)
			}
			if tt.wantReason != "" {
				failed := rec.events[len(rec.events)-1].(events.ConnectionFailed)
				if !strings.Contains(failed.Reason, tt.wantReason) {
					t.Errorf("reason = %q", failed.Reason)
				}
			}
			if len(c.specs) > 0 {
				sp := c.specs[0]
				if sp.ConnectionString != plainConn || sp.ConnectorName != "cdcq-env-1" || !strings.HasPrefix(sp.SlotName, "cdcq_env_1_") || sp.TopicPrefix != "env-1" {
					t.Errorf("spec = %+v", sp)
				}
			}
			for _, e := range rec.events {
				if e.EventMeta().EventID == "" || e.Environment() != "env-1" {
					t.Errorf("event %s meta = %+v", e.EventName(), e.EventMeta())
				}
				if r, ok := e.(events.ConnectionRequested); ok && (r.ConnectionSealed != conn.Sealed || strings.Contains(r.ConnectionRedacted, "s3cret")) {
					t.Errorf("requested event carries %+v", r)
				}
			}
		})
	}
}

func TestDeleteDatabaseConnection(t *testing.T) {
	transient := errors.New("source database unreachable")
	tests := []struct {
		name       string
		deleteErr  error
		procErr    error
		wantErr    error
		wantEvents string
	}{
		{name: "deleted", wantEvents: "ConnectionDeleting ConnectionDeleted"},
		{name: "transient_failure_retried", deleteErr: transient, wantErr: transient, wantEvents: "ConnectionDeleting"},
		{name: "terminal_failure_recorded", deleteErr: jobs.Terminalf("permission denied to drop slot"), wantEvents: "ConnectionDeleting ConnectionFailed"},
		{name: "processor_transient_failure_retried", procErr: transient, wantErr: transient, wantEvents: "ConnectionDeleting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeCapture{deleteErr: tt.deleteErr}
			p := &fakeProcessor{deleteErr: tt.procErr}
			w, rec, s := newTestWorker(t, c, p)
			err := w.Handle(context.Background(), commands.DeleteDatabaseConnection{
				Meta: commands.Meta{CommandID: "c2", EnvironmentID: "env1"}, Connection: connection(s, "env1")})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := strings.Join(rec.names(), " "); got != tt.wantEvents {
				t.Fatalf("events = %s, want %s", got, tt.wantEvents)
			}
			if len(p.calls) == 0 || p.calls[0] != "delete env1" {
				t.Errorf("processor calls = %v; query jobs must be stopped before the capture goes", p.calls)
			}
		})
	}
}

func TestCreateCachedQuery(t *testing.T) {
	tests := []struct {
		name       string
		captureErr error
		procErr    error
		wantStatus jobs.Status
		wantReason string
		wantQuery  bool
		sql        string
	}{
		{name: "running", wantStatus: jobs.StatusRunning, wantQuery: true},
		{name: "capture_failure_fails_query", captureErr: jobs.Terminalf("no capture engine"), wantStatus: jobs.StatusFailed, wantReason: "capture: no capture engine"},
		{name: "processor_failure_fails_query", procErr: jobs.Terminalf("SQL error at 1:8"), wantStatus: jobs.StatusFailed, wantReason: "SQL error at 1:8", wantQuery: true},
		{name: "query_that_does_not_compile_fails_before_capture", sql: "SELECT count(*) FROM b", wantStatus: jobs.StatusFailed, wantReason: "sqlQuery 1:22"},
	}
	for _, tt := range tests {
		if tt.sql == "" {
			tt.sql = "SELECT count(*) FROM a"
		}
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeCapture{ensureErr: tt.captureErr}
			p := &fakeProcessor{ensureErr: tt.procErr}
			w, rec, s := newTestWorker(t, c, p)
			err := w.Handle(context.Background(), commands.CreateCachedQuery{
				Meta: commands.Meta{CommandID: "c3", EnvironmentID: "env1"}, Connection: connection(s, "env1"),
				QueryID: "q_1", Schema: testSchema, SQLQuery: tt.sql})
			if err != nil {
				t.Fatal(err)
			}
			last := rec.events[len(rec.events)-1].(events.CachedQueryObserved)
			if last.Status != tt.wantStatus || !strings.Contains(last.Reason, tt.wantReason) || last.QueryID != "q_1" {
				t.Errorf("last event = %+v", last)
			}
			if rec.events[0].EventName() != events.NameCachedQueryRequested {
				t.Errorf("first event = %s", rec.events[0].EventName())
			}
			if !tt.wantQuery && tt.captureErr == nil && len(c.calls) > 0 {
				t.Errorf("capture called (%v) for a query that does not compile", c.calls)
			}
			if (len(p.queries) == 1) != tt.wantQuery {
				t.Fatalf("processor queries = %v", p.queries)
			}
			if tt.wantQuery && (p.queries[0].PipelineName != "cdcq-env1-q_1" || p.queries[0].Capture.ConnectionString != plainConn || p.queries[0].Plan == nil) {
				t.Errorf("query spec = %+v", p.queries[0])
			}
		})
	}
}

func TestHandleMessageRejectsWhatCannotBeDecoded(t *testing.T) {
	w, rec, s := newTestWorker(t, &fakeCapture{}, &fakeProcessor{})
	good, _ := commands.Encode(commands.CreateDatabaseConnection{Meta: commands.Meta{CommandID: "c1", EnvironmentID: "env1"}, Connection: connection(s, "env1")})
	tests := []struct {
		name    string
		headers map[string]string
		body    string
		reason  string
	}{
		{name: "no_name_header", headers: map[string]string{"environment_id": "env1"}, body: string(good), reason: "name header is missing"},
		{name: "not_json", headers: map[string]string{"name": "CreateDatabaseConnection", "environment_id": "env1"}, body: "{", reason: "not valid JSON"},
		{name: "command_id_header_differs", headers: map[string]string{"name": "CreateDatabaseConnection", "command_id": "other"}, body: string(good), reason: "header command_id"},
		{name: "environment_header_differs", headers: map[string]string{"name": "CreateDatabaseConnection", "environment_id": "env2"}, body: string(good), reason: "header environment_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.events = nil
			msg := message.NewMessage("m1", []byte(tt.body))
			for k, v := range tt.headers {
				msg.Metadata.Set(k, v)
			}
			err := w.HandleMessage(msg)
			if !commands.IsDecodeError(err) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("err = %v, want a DecodeError about %q", err, tt.reason)
			}
			if len(rec.events) != 1 {
				t.Fatalf("events = %v", rec.names())
			}
			rej := rec.events[0].(events.CommandRejected)
			if !strings.Contains(rej.Reason, tt.reason) {
				t.Errorf("rejected reason = %q", rej.Reason)
			}
		})
	}
}

// memInbox is an Inbox in memory.
type memInbox map[string]bool

func (m memInbox) Handled(_ context.Context, id string) (bool, error) { return m[id], nil }
func (m memInbox) MarkHandled(_ context.Context, id, _, _ string) error {
	m[id] = true
	return nil
}

func TestDeduplicateSkipsHandledCommands(t *testing.T) {
	calls := 0
	failNext := true
	h := Deduplicate(memInbox{})(func(msg *message.Message) ([]*message.Message, error) {
		calls++
		if failNext {
			failNext = false
			return nil, errors.New("transient")
		}
		return nil, nil
	})
	msg := message.NewMessage("m", nil)
	msg.Metadata.Set(commands.CommandIDHeader, "c1")
	if _, err := h(msg); err == nil {
		t.Fatal("failure swallowed")
	}
	for i := 0; i < 3; i++ {
		if _, err := h(msg); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 2 {
		t.Fatalf("handler ran %d times, want 2 (one failure, one success, then skipped)", calls)
	}
}

type listFunc func(ctx context.Context) ([]projections.ActiveConnection, error)

func (f listFunc) ActiveConnections(ctx context.Context) ([]projections.ActiveConnection, error) {
	return f(ctx)
}

func TestStatusPollerPublishesOnlyChanges(t *testing.T) {
	s := newSealer(t)
	running := jobs.CaptureStatus{Status: jobs.StatusRunning, Slot: &jobs.SlotState{Name: "cdcq_env1", Exists: true}}
	conns := []projections.ActiveConnection{
		{EnvironmentID: "env1", ConnectorName: "cdcq-env1", SlotName: "cdcq_env1", ConnectionSealed: s.Seal(plainConn, "env1"), Last: running},
		{EnvironmentID: "env2", ConnectorName: "cdcq-env2", SlotName: "cdcq_env2", ConnectionSealed: s.Seal(plainConn, "env2"), Last: jobs.CaptureStatus{Status: jobs.StatusPending}},
		{EnvironmentID: "env3", ConnectionSealed: "v1:garbage"},
	}
	rec := &recorder{}
	p, err := NewStatusPoller(StatusPollerConfig{
		Connections: listFunc(func(context.Context) ([]projections.ActiveConnection, error) { return conns, nil }),
		Capture:     &fakeCapture{status: running},
		Events:      rec, Sealer: s,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	var envs []string
	for _, e := range rec.events {
		envs = append(envs, e.Environment()+"="+string(e.(events.ConnectionObserved).Capture.Status))
	}
	if got := strings.Join(envs, " "); got != "env2=RUNNING env3=FAILED" {
		t.Fatalf("published %s, want env2=RUNNING env3=FAILED", got)
	}
}

type queryListFunc func(ctx context.Context) ([]projections.ActiveQuery, error)

func (f queryListFunc) ActiveQueries(ctx context.Context) ([]projections.ActiveQuery, error) {
	return f(ctx)
}

func TestStatusPollerObservesQueries(t *testing.T) {
	s := newSealer(t)
	running := jobs.QueryStatus{Status: jobs.StatusRunning, JobID: "job-1"}
	qs := []projections.ActiveQuery{
		{QueryID: "q1", EnvironmentID: "env1", PipelineName: "cdcq-env1-q1", Engine: "fakeproc", Last: running},
		{QueryID: "q2", EnvironmentID: "env1", PipelineName: "cdcq-env1-q2", Engine: "fakeproc", Last: jobs.QueryStatus{Status: jobs.StatusPending, JobState: "SCHEDULED"}},
		{QueryID: "q3", EnvironmentID: "env1", PipelineName: "cdcq-env1-q3", Engine: "other"},
	}
	rec := &recorder{}
	p, err := NewStatusPoller(StatusPollerConfig{
		Connections: listFunc(func(context.Context) ([]projections.ActiveConnection, error) { return nil, nil }),
		Queries:     queryListFunc(func(context.Context) ([]projections.ActiveQuery, error) { return qs, nil }),
		Capture:     &fakeCapture{}, Processor: &fakeProcessor{}, Events: rec, Sealer: s,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 1 {
		t.Fatalf("events = %v, want one for q2", rec.names())
	}
	if o := rec.events[0].(events.CachedQueryObserved); o.QueryID != "q2" || o.Status != jobs.StatusRunning || o.JobID != "job-1" {
		t.Errorf("event = %+v", o)
	}
}

func TestDeleteCachedQuery(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantErr    bool
		wantEvents string
	}{
		{name: "deleted", wantEvents: "CachedQueryDeleted"},
		{name: "transient_failure_retried", err: errors.New("flink 503"), wantErr: true},
		{name: "terminal_failure_recorded", err: jobs.Terminalf("no such job"), wantEvents: "CachedQueryObserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakeProcessor{deleteErr: tt.err}
			w, rec, _ := newTestWorker(t, &fakeCapture{}, p)
			err := w.Handle(context.Background(), commands.DeleteCachedQuery{Meta: commands.Meta{CommandID: "c5", EnvironmentID: "env1"}, QueryID: "q_1"})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if got := strings.Join(rec.names(), " "); got != tt.wantEvents {
				t.Errorf("events = %q, want %q", got, tt.wantEvents)
			}
			if len(p.calls) != 1 || p.calls[0] != "delete query cdcq-env1-q_1" {
				t.Errorf("processor calls = %v", p.calls)
			}
		})
	}
}

func TestStatusPollerLeavesQueriesBeingStartedAlone(t *testing.T) {
	s := newSealer(t)
	qs := []projections.ActiveQuery{
		{QueryID: "q1", EnvironmentID: "env1", PipelineName: "cdcq-env1-q1", Engine: "fakeproc", Last: jobs.QueryStatus{Status: jobs.StatusPending}},
		{QueryID: "q2", EnvironmentID: "env1", PipelineName: "cdcq-env1-q2", Engine: "fakeproc", Last: jobs.QueryStatus{Status: jobs.StatusPending, JobState: "SCHEDULED"}},
	}
	rec := &recorder{}
	p, err := NewStatusPoller(StatusPollerConfig{
		Connections: listFunc(func(context.Context) ([]projections.ActiveConnection, error) { return nil, nil }),
		Queries:     queryListFunc(func(context.Context) ([]projections.ActiveQuery, error) { return qs, nil }),
		Capture:     &fakeCapture{}, Processor: &fakeProcessor{}, Events: rec, Sealer: s,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 1 || rec.events[0].(events.CachedQueryObserved).QueryID != "q2" {
		t.Fatalf("events = %v, want one for q2 only", rec.names())
	}
}

// observingProcessor answers ObserveQuery with a fixed status and asks for
// a restart when told to.
type observingProcessor struct {
	fakeProcessor
	observed jobs.QueryStatus
	restart  bool
}

func (o *observingProcessor) ObserveQuery(context.Context, QuerySpec) (jobs.QueryStatus, error) {
	return o.observed, nil
}

func (o *observingProcessor) NeedsRestart(s jobs.QueryStatus) bool {
	return o.restart && s == o.observed
}

func TestStatusPollerKeepsSpecificReasons(t *testing.T) {
	noJob := jobs.QueryStatus{Status: jobs.StatusFailed, Reason: "no Flink job named cdcq-env1-q1"}
	tests := []struct {
		name string
		last jobs.QueryStatus
	}{
		{"failed_before_any_job", jobs.QueryStatus{Status: jobs.StatusFailed, Reason: "the Flink engine cannot run this query: ..."}},
		{"failed_job_gone", jobs.QueryStatus{Status: jobs.StatusFailed, JobID: "job-1", JobState: "FAILED", Reason: "Flink job job-1 FAILED: ArithmeticException"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			qs := []projections.ActiveQuery{{QueryID: "q1", EnvironmentID: "env1", PipelineName: "cdcq-env1-q1", Engine: "fakeproc", Last: tt.last}}
			rec := &recorder{}
			p, err := NewStatusPoller(StatusPollerConfig{
				Connections: listFunc(func(context.Context) ([]projections.ActiveConnection, error) { return nil, nil }),
				Queries:     queryListFunc(func(context.Context) ([]projections.ActiveQuery, error) { return qs, nil }),
				Capture:     &fakeCapture{}, Processor: &observingProcessor{observed: noJob}, Events: rec, Sealer: newSealer(t),
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Poll(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(rec.events) != 0 {
				t.Fatalf("events = %v: the reason on record was replaced", rec.names())
			}
		})
	}
}

func TestStatusPollerRestartsWhatTheProcessorAsks(t *testing.T) {
	stuck := jobs.QueryStatus{Status: jobs.StatusPending, JobID: "job-1", JobState: "RESTARTING", Reason: "the source table public.orders was truncated"}
	qs := []projections.ActiveQuery{{QueryID: "q1", EnvironmentID: "env1", PipelineName: "cdcq-env1-q1", Engine: "fakeproc",
		Schema: testSchema, SQLQuery: "SELECT id, count(*) FROM a GROUP BY id",
		Last: jobs.QueryStatus{Status: jobs.StatusRunning, JobID: "job-1", JobState: "RUNNING"}}}
	rec := &recorder{}
	proc := &observingProcessor{observed: stuck, restart: true}
	p, err := NewStatusPoller(StatusPollerConfig{
		Connections: listFunc(func(context.Context) ([]projections.ActiveConnection, error) { return nil, nil }),
		Queries:     queryListFunc(func(context.Context) ([]projections.ActiveQuery, error) { return qs, nil }),
		Capture:     &fakeCapture{}, Processor: proc, Events: rec, Sealer: newSealer(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(proc.queries) != 1 || proc.queries[0].Plan == nil {
		t.Fatalf("EnsureQuery calls %v, want one with the compiled plan", proc.calls)
	}
	if len(rec.events) != 2 {
		t.Fatalf("events = %v, want the stuck observation and the restart's", rec.names())
	}
	if o := rec.events[0].(events.CachedQueryObserved); o.Reason != stuck.Reason {
		t.Errorf("first event %+v", o)
	}
	if o := rec.events[1].(events.CachedQueryObserved); o.Status != jobs.StatusRunning {
		t.Errorf("second event %+v", o)
	}
}

// memLocker is an EnvironmentLocker in memory.
type memLocker struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (l *memLocker) LockEnvironment(ctx context.Context, env string) (context.Context, func(), error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*sync.Mutex{}
	}
	m := l.locks[env]
	if m == nil {
		m = &sync.Mutex{}
		l.locks[env] = m
	}
	l.mu.Unlock()
	m.Lock()
	return ctx, m.Unlock, nil
}

// lockedInbox is a memInbox safe for concurrent use.
type lockedInbox struct {
	mu sync.Mutex
	m  memInbox
}

func (i *lockedInbox) Handled(ctx context.Context, id string) (bool, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.m.Handled(ctx, id)
}

func (i *lockedInbox) MarkHandled(ctx context.Context, id, name, env string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.m.MarkHandled(ctx, id, name, env)
}

// A command redelivered to a second worker while the first still carries
// it out waits for the first, is then found handled and skipped, and the
// environment's next command runs only after it: nothing of an older
// command happens after a newer one. Another environment is not held up.
func TestOnePerEnvironmentOrdersRedeliveredCommands(t *testing.T) {
	locker, in := &memLocker{}, &lockedInbox{m: memInbox{}}
	var mu sync.Mutex
	var done []string
	release := make(chan struct{})
	started := make(chan struct{})
	h := OnePerEnvironment(locker)(Deduplicate(in)(func(msg *message.Message) ([]*message.Message, error) {
		id := msg.Metadata.Get(commands.CommandIDHeader)
		if id == "c1" {
			close(started)
			<-release // the first worker is slow with c1
		}
		mu.Lock()
		done = append(done, id)
		mu.Unlock()
		return nil, nil
	}))
	msg := func(env, id string) *message.Message {
		m := message.NewMessage(id, nil)
		m.Metadata.Set(commands.CommandIDHeader, id)
		m.Metadata.Set(commands.EnvironmentHeader, env)
		return m
	}
	var wg sync.WaitGroup
	run := func(m *message.Message) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h(m); err != nil {
				t.Error(err)
			}
		}()
	}
	run(msg("e1", "c1")) // worker A
	<-started
	second := make(chan struct{})
	wg.Add(1)
	go func() { // worker B, after the rebalance: c1 again, then c2
		defer wg.Done()
		defer close(second)
		for _, id := range []string{"c1", "c2"} {
			if _, err := h(msg("e1", id)); err != nil {
				t.Error(err)
			}
		}
	}()
	if _, err := h(msg("e2", "x1")); err != nil { // another environment
		t.Fatal(err)
	}
	select {
	case <-second:
		t.Fatal("worker B went on while worker A still carried out c1")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	wg.Wait()
	if want := []string{"x1", "c1", "c2"}; !slices.Equal(done, want) {
		t.Fatalf("carried out %v, want %v", done, want)
	}
}

// While the projection has not caught up with an observation, the next
// rounds do not publish it again.
func TestStatusPollerPublishesAnObservationOnce(t *testing.T) {
	s := newSealer(t)
	qs := []projections.ActiveQuery{{QueryID: "q2", EnvironmentID: "env1", PipelineName: "cdcq-env1-q2", Engine: "fakeproc",
		Last: jobs.QueryStatus{Status: jobs.StatusPending, JobState: "SCHEDULED"}}}
	rec := &recorder{}
	now := time.Unix(1000, 0)
	p, err := NewStatusPoller(StatusPollerConfig{
		Connections: listFunc(func(context.Context) ([]projections.ActiveConnection, error) { return nil, nil }),
		Queries:     queryListFunc(func(context.Context) ([]projections.ActiveQuery, error) { return qs, nil }),
		Capture:     &fakeCapture{}, Processor: &fakeProcessor{}, Events: rec, Sealer: s,
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := p.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
	}
	if len(rec.events) != 1 {
		t.Fatalf("events = %v, want one observation while the projection lags", rec.names())
	}
	// Still not projected long after: published again.
	now = now.Add(republishAfter)
	if err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 2 {
		t.Fatalf("events = %v, want the observation again after %s", rec.names(), republishAfter)
	}
}

// A capture that failed with a reason and left no connector keeps its
// reason: "no connector" says less.
func TestStatusPollerKeepsTheReasonOfAFailedCapture(t *testing.T) {
	s := newSealer(t)
	refused := jobs.CaptureStatus{Status: jobs.StatusFailed, Reason: "Connector configuration is invalid: topic.prefix is reserved"}
	gone := jobs.CaptureStatus{Status: jobs.StatusFailed, Reason: "connector cdcq-env1 does not exist in Kafka Connect", Gone: true}
	for _, tc := range []struct {
		last      jobs.CaptureStatus
		published bool
	}{
		{last: refused, published: false},
		{last: jobs.CaptureStatus{Status: jobs.StatusRunning}, published: true}, // deleted outside cdcq: said
	} {
		rec := &recorder{}
		p, err := NewStatusPoller(StatusPollerConfig{
			Connections: listFunc(func(context.Context) ([]projections.ActiveConnection, error) {
				return []projections.ActiveConnection{{EnvironmentID: "env1", ConnectorName: "cdcq-env1",
					ConnectionSealed: s.Seal(plainConn, "env1"), Last: tc.last}}, nil
			}),
			Capture: &fakeCapture{status: gone}, Events: rec, Sealer: s,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := len(rec.events) == 1; got != tc.published {
			t.Errorf("last %s %q: published %v, want %v", tc.last.Status, tc.last.Reason, rec.names(), tc.published)
		}
	}
}
