package handlers

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/projections"
)

// scriptedCapture reports a status per environment that tests change while
// the poller runs, and counts observations.
type scriptedCapture struct {
	notifies bool
	mu       sync.Mutex
	status   map[string]jobs.Status
	observed map[string]int
}

func newScriptedCapture(notifies bool, status map[string]jobs.Status) *scriptedCapture {
	return &scriptedCapture{notifies: notifies, status: status, observed: map[string]int{}}
}

func (f *scriptedCapture) Engine() string                            { return "scripted" }
func (f *scriptedCapture) Ensure(context.Context, CaptureSpec) error { return nil }
func (f *scriptedCapture) Delete(context.Context, CaptureSpec) error { return nil }
func (f *scriptedCapture) NotifiesStatus() bool                      { return f.notifies }
func (f *scriptedCapture) set(env string, s jobs.Status) {
	f.mu.Lock()
	f.status[env] = s
	f.mu.Unlock()
}
func (f *scriptedCapture) count(env string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.observed[env]
}
func (f *scriptedCapture) Observe(_ context.Context, s CaptureSpec) (jobs.CaptureStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.observed[s.EnvironmentID]++
	return jobs.CaptureStatus{Status: f.status[s.EnvironmentID]}, nil
}

// scriptedProcessor reports one status for every query and nudges.
type scriptedProcessor struct {
	mu     sync.Mutex
	status jobs.QueryStatus
}

func (f *scriptedProcessor) Engine() string       { return "scriptedproc" }
func (f *scriptedProcessor) NotifiesStatus() bool { return true }
func (f *scriptedProcessor) EnsureQuery(ctx context.Context, q QuerySpec) (jobs.QueryStatus, error) {
	return f.ObserveQuery(ctx, q)
}
func (f *scriptedProcessor) ObserveQuery(context.Context, QuerySpec) (jobs.QueryStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status, nil
}
func (f *scriptedProcessor) DeleteQuery(context.Context, QuerySpec) error    { return nil }
func (f *scriptedProcessor) DeleteEnvironment(context.Context, string) error { return nil }

// observedConnection returns the status of the last ConnectionObserved of
// env that rec holds, "" if none.
func observedConnection(rec *recorder, env string) jobs.Status {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out jobs.Status
	for _, e := range rec.events {
		if o, ok := e.(events.ConnectionObserved); ok && o.EnvironmentID == env {
			out = o.Capture.Status
		}
	}
	return out
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runPoller runs p until the test ends.
func runPoller(t *testing.T, p *StatusPoller) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// With rounds an hour apart, a change shows only when the engine nudges
// the poller, and then at once; the nudge has only that environment
// observed.
func TestStatusPollerNudgeObservesOneEnvironmentAtOnce(t *testing.T) {
	s := newSealer(t)
	conns := []projections.ActiveConnection{
		{EnvironmentID: "env1", SlotName: "cdcq_env1", ConnectionSealed: s.Seal(plainConn, "env1"), Last: jobs.CaptureStatus{Status: jobs.StatusPending}},
		{EnvironmentID: "env2", SlotName: "cdcq_env2", ConnectionSealed: s.Seal(plainConn, "env2"), Last: jobs.CaptureStatus{Status: jobs.StatusPending}},
	}
	capt := newScriptedCapture(true, map[string]jobs.Status{"env1": jobs.StatusPending, "env2": jobs.StatusPending})
	rec := &recorder{}
	p, err := NewStatusPoller(StatusPollerConfig{
		Connections: listFunc(func(context.Context) ([]projections.ActiveConnection, error) { return conns, nil }),
		Capture:     capt, Events: rec, Sealer: s, Interval: time.Hour, PendingInterval: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	runPoller(t, p)
	eventually(t, 5*time.Second, "the first round", func() bool { return capt.count("env1") == 1 && capt.count("env2") == 1 })

	capt.set("env1", jobs.StatusRunning)
	time.Sleep(300 * time.Millisecond)
	if got := observedConnection(rec, "env1"); got != "" {
		t.Fatalf("published %s before any nudge or round", got)
	}
	if n := capt.count("env1"); n != 1 {
		t.Fatalf("env1 observed %d times without a nudge; a capture that nudges is not polled faster", n)
	}
	nudged := time.Now()
	p.Nudge("env1")
	eventually(t, 5*time.Second, "env1 RUNNING after the nudge", func() bool { return observedConnection(rec, "env1") == jobs.StatusRunning })
	t.Logf("published %s after the nudge", time.Since(nudged).Round(time.Millisecond))
	if n := capt.count("env2"); n != 1 {
		t.Errorf("env2 observed %d times; the nudge was for env1 only", n)
	}

	// "" is every environment.
	capt.set("env2", jobs.StatusFailed)
	p.Nudge("")
	eventually(t, 5*time.Second, "env2 FAILED after nudging everything", func() bool { return observedConnection(rec, "env2") == jobs.StatusFailed })
}

// A nudge that arrives before the projection has the job's first event
// (the worker that starts the query records it) is followed up until the
// projection has it, without waiting for the round.
func TestStatusPollerFollowsUpNudgeUntilTheProjectionHasTheJob(t *testing.T) {
	s := newSealer(t)
	var mu sync.Mutex
	last := jobs.QueryStatus{Status: jobs.StatusPending} // a worker is starting it
	list := queryListFunc(func(context.Context) ([]projections.ActiveQuery, error) {
		mu.Lock()
		defer mu.Unlock()
		return []projections.ActiveQuery{{QueryID: "q1", EnvironmentID: "env1", PipelineName: "cdcq-env1-q1", Engine: "scriptedproc", Last: last}}, nil
	})
	proc := &scriptedProcessor{status: jobs.QueryStatus{Status: jobs.StatusRunning, JobState: "LIVE"}}
	rec := &recorder{}
	p, err := NewStatusPoller(StatusPollerConfig{
		Connections: listFunc(func(context.Context) ([]projections.ActiveConnection, error) { return nil, nil }),
		Queries:     list, Capture: newScriptedCapture(true, nil), Processor: proc,
		Events: rec, Sealer: s, Interval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	runPoller(t, p)
	time.Sleep(100 * time.Millisecond) // the first round, which skips q1
	p.Nudge("env1")
	time.Sleep(2 * followUpEvery)
	if n := len(rec.names()); n != 0 {
		t.Fatalf("published %v while the projection did not have the job yet", rec.names())
	}
	mu.Lock()
	last = jobs.QueryStatus{Status: jobs.StatusPending, JobState: "STARTING"} // the worker's event arrived
	mu.Unlock()
	eventually(t, 5*time.Second, "q1 LIVE", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, e := range rec.events {
			if o, ok := e.(events.CachedQueryObserved); ok && o.JobState == "LIVE" && o.Status == jobs.StatusRunning {
				return true
			}
		}
		return false
	})
}

// An engine that cannot nudge (Kafka Connect, Flink) has its pending jobs
// observed every PendingInterval, for FastPollFor: the ones the poller saw
// pending, and the ones the projection has as PENDING (a worker just
// created them).
func TestStatusPollerPollsPendingJobsOfEnginesThatDoNotNudge(t *testing.T) {
	s := newSealer(t)
	rec := &recorder{}
	var mu sync.Mutex
	envs := []string{"env1", "env2"}
	initial := map[string]jobs.Status{"env1": jobs.StatusPending, "env2": jobs.StatusRunning, "env3": jobs.StatusPending}
	// The projection: what the worker recorded, then what the poller
	// published.
	list := listFunc(func(context.Context) ([]projections.ActiveConnection, error) {
		mu.Lock()
		defer mu.Unlock()
		var out []projections.ActiveConnection
		for _, env := range envs {
			last := initial[env]
			if o := observedConnection(rec, env); o != "" {
				last = o
			}
			out = append(out, projections.ActiveConnection{EnvironmentID: env, SlotName: "cdcq_" + env,
				ConnectionSealed: s.Seal(plainConn, env), Last: jobs.CaptureStatus{Status: last}})
		}
		return out, nil
	})
	capt := newScriptedCapture(false, map[string]jobs.Status{"env1": jobs.StatusPending, "env2": jobs.StatusRunning, "env3": jobs.StatusRunning})
	p, err := NewStatusPoller(StatusPollerConfig{
		Connections: list, Capture: capt, Events: rec, Sealer: s, Interval: time.Hour,
		PendingInterval: 20 * time.Millisecond, FastPollFor: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	runPoller(t, p)
	eventually(t, 5*time.Second, "env1 observed again while pending", func() bool { return capt.count("env1") >= 3 })
	capt.set("env1", jobs.StatusRunning)
	eventually(t, 5*time.Second, "env1 RUNNING", func() bool { return observedConnection(rec, "env1") == jobs.StatusRunning })

	// A connection a worker created after the round, PENDING in the
	// projection, whose connector runs by now.
	mu.Lock()
	envs = append(envs, "env3")
	mu.Unlock()
	eventually(t, 5*time.Second, "env3 RUNNING", func() bool { return observedConnection(rec, "env3") == jobs.StatusRunning })
	if n := capt.count("env2"); n != 1 {
		t.Errorf("env2, running, observed %d times; only pending jobs are polled faster", n)
	}

	// A job pending for longer than FastPollFor waits for the rounds.
	capt.set("env1", jobs.StatusPending)
	p.Nudge("env1") // a round would do too
	n := capt.count("env1")
	eventually(t, 5*time.Second, "env1 observed again while pending again", func() bool { return capt.count("env1") >= n+3 })
	time.Sleep(2500 * time.Millisecond)
	before := capt.count("env1")
	time.Sleep(500 * time.Millisecond)
	if after := capt.count("env1"); after != before {
		t.Errorf("env1 observed %d more times after FastPollFor", after-before)
	}
}

// Right after a create, Kafka Connect may not list the connector yet: the
// create records PENDING, not FAILED, and the poller says nothing of the
// missing connector while it is young; a connector missing for longer
// than FastPollFor is FAILED.
func TestJustCreatedConnectorNotListedYetIsPending(t *testing.T) {
	gone := jobs.CaptureStatus{Status: jobs.StatusFailed, Reason: "connector cdcq-env-1 does not exist in Kafka Connect", Gone: true}
	w, rec, s := newTestWorker(t, &fakeCapture{status: gone}, &fakeProcessor{})
	if err := w.Handle(context.Background(), commands.CreateDatabaseConnection{
		Meta: commands.Meta{CommandID: "c1", EnvironmentID: "env-1"}, Connection: connection(s, "env-1")}); err != nil {
		t.Fatal(err)
	}
	if got := observedConnection(rec, "env-1"); got != jobs.StatusPending {
		t.Fatalf("create recorded %s, want PENDING", got)
	}

	now := time.Unix(1700000000, 0)
	rec = &recorder{}
	p, err := NewStatusPoller(StatusPollerConfig{
		Connections: listFunc(func(context.Context) ([]projections.ActiveConnection, error) {
			return []projections.ActiveConnection{{EnvironmentID: "env-1", ConnectorName: "cdcq-env-1",
				ConnectionSealed: s.Seal(plainConn, "env-1"), Last: jobs.CaptureStatus{Status: jobs.StatusPending}}}, nil
		}),
		Capture: &fakeCapture{status: gone}, Events: rec, Sealer: s, FastPollFor: time.Minute,
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := p.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
		now = now.Add(10 * time.Second)
	}
	if n := len(rec.names()); n != 0 {
		t.Fatalf("published %v for a connector created %s ago", rec.names(), 20*time.Second)
	}
	now = now.Add(time.Minute)
	if err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := observedConnection(rec, "env-1"); got != jobs.StatusFailed {
		t.Fatalf("a connector missing for over a minute: published %v, want FAILED", rec.names())
	}
}

// polledProcessor reports one status for every query and cannot nudge, as
// Flink.
type polledProcessor struct{ scriptedProcessor }

func (*polledProcessor) NotifiesStatus() bool { return false }

// A Flink job the worker recorded as PENDING (its job just submitted) is
// observed every PendingInterval until it runs, without waiting for the
// round.
func TestStatusPollerPollsPendingQueryJobsOfProcessorsThatDoNotNudge(t *testing.T) {
	s := newSealer(t)
	rec := &recorder{}
	var mu sync.Mutex
	var qs []projections.ActiveQuery
	proc := &polledProcessor{scriptedProcessor{status: jobs.QueryStatus{Status: jobs.StatusPending, JobID: "j1", JobState: "CREATED"}}}
	p, err := NewStatusPoller(StatusPollerConfig{
		Connections: listFunc(func(context.Context) ([]projections.ActiveConnection, error) { return nil, nil }),
		Queries: queryListFunc(func(context.Context) ([]projections.ActiveQuery, error) {
			mu.Lock()
			defer mu.Unlock()
			return qs, nil
		}),
		Capture: newScriptedCapture(true, nil), Processor: proc, Events: rec, Sealer: s,
		Interval: time.Hour, PendingInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	runPoller(t, p)
	time.Sleep(100 * time.Millisecond) // the first round, with no query yet
	mu.Lock()
	qs = []projections.ActiveQuery{{QueryID: "q1", EnvironmentID: "env1", PipelineName: "cdcq-env1-q1", Engine: "scriptedproc",
		Last: jobs.QueryStatus{Status: jobs.StatusPending, JobID: "j1", JobState: "CREATED"}}}
	mu.Unlock()
	proc.mu.Lock()
	proc.status = jobs.QueryStatus{Status: jobs.StatusRunning, JobID: "j1", JobState: "RUNNING"}
	proc.mu.Unlock()
	eventually(t, 5*time.Second, "q1 RUNNING", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, e := range rec.events {
			if o, ok := e.(events.CachedQueryObserved); ok && o.QueryID == "q1" && o.Status == jobs.StatusRunning {
				return true
			}
		}
		return false
	})
}

// fingerprintedCapture is a capture that cannot nudge but lists its
// connectors' states in one call.
type fingerprintedCapture struct {
	*scriptedCapture
	listed int
}

func (f *fingerprintedCapture) StateFingerprints(context.Context) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listed++
	out := map[string]string{}
	for env, s := range f.status {
		out[env] = string(s)
	}
	return out, nil
}

// With rounds an hour apart, a RUNNING connector of an engine that cannot
// push that fails is observed within the fast-poll period through the
// engine's state listing, and only its environment is observed.
func TestStatusPollerSeesRunningJobsFailThroughStateListing(t *testing.T) {
	s := newSealer(t)
	conns := []projections.ActiveConnection{
		{EnvironmentID: "env1", SlotName: "cdcq_env1", ConnectionSealed: s.Seal(plainConn, "env1"), Last: jobs.CaptureStatus{Status: jobs.StatusRunning}},
		{EnvironmentID: "env2", SlotName: "cdcq_env2", ConnectionSealed: s.Seal(plainConn, "env2"), Last: jobs.CaptureStatus{Status: jobs.StatusRunning}},
	}
	capt := &fingerprintedCapture{scriptedCapture: newScriptedCapture(false, map[string]jobs.Status{"env1": jobs.StatusRunning, "env2": jobs.StatusRunning})}
	rec := &recorder{}
	p, err := NewStatusPoller(StatusPollerConfig{
		Connections: listFunc(func(context.Context) ([]projections.ActiveConnection, error) { return conns, nil }),
		Capture:     capt, Events: rec, Sealer: s, Interval: time.Hour, PendingInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	runPoller(t, p)
	eventually(t, 5*time.Second, "the first round", func() bool { return capt.count("env1") == 1 && capt.count("env2") == 1 })
	time.Sleep(200 * time.Millisecond)
	if n := capt.count("env1"); n != 1 {
		t.Fatalf("env1 observed %d times while nothing changed", n)
	}
	failed := time.Now()
	capt.set("env1", jobs.StatusFailed)
	eventually(t, 5*time.Second, "env1 FAILED", func() bool { return observedConnection(rec, "env1") == jobs.StatusFailed })
	t.Logf("published FAILED %s after the change", time.Since(failed).Round(time.Millisecond))
	if n := capt.count("env2"); n != 1 {
		t.Errorf("env2 observed %d times; only env1 changed", n)
	}
}
