package handlers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/projections"
)

// fakeSequencer numbers commands per environment, once per command id, as
// inbox.Inbox does.
type fakeSequencer struct {
	mu   sync.Mutex
	last map[string]int64
	seqs map[string]int64
	err  error
}

func (f *fakeSequencer) Sequence(_ context.Context, env, commandID string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	if f.seqs == nil {
		f.last, f.seqs = map[string]int64{}, map[string]int64{}
	}
	if n, ok := f.seqs[commandID]; ok {
		return n, nil
	}
	f.last[env]++
	f.seqs[commandID] = f.last[env]
	return f.last[env], nil
}

// Every event a command causes carries the command's id and its number
// among the environment's commands; a retried command keeps its number.
func TestWorkerNumbersCommandsInItsEvents(t *testing.T) {
	rec := &recorder{}
	s := newSealer(t)
	p := &fakeProcessor{}
	w, err := NewWorker(WorkerConfig{Capture: &fakeCapture{status: jobs.CaptureStatus{Status: jobs.StatusRunning}},
		Processor: p, Events: rec, Sealer: s, Bindings: &memBindings{}, Sequencer: &fakeSequencer{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	meta := func(id, env string) commands.Meta { return commands.Meta{CommandID: id, EnvironmentID: env} }
	cmds := []commands.Command{
		commands.CreateDatabaseConnection{Meta: meta("c1", "env1"), Connection: connection(s, "env1")},
		commands.CreateDatabaseConnection{Meta: meta("x1", "env2"), Connection: connection(s, "env2")},
		commands.DeleteDatabaseConnection{Meta: meta("d1", "env1"), Connection: connection(s, "env1")},
		commands.CreateCachedQuery{Meta: meta("q1", "env1"), Connection: connection(s, "env1"), QueryID: "q_1",
			Schema: testSchema, SQLQuery: "SELECT id, count(*) FROM a GROUP BY id"},
		commands.DeleteCachedQuery{Meta: meta("dq1", "env1"), QueryID: "q_1"},
		// Carried out again (a redelivery): the same number.
		commands.DeleteDatabaseConnection{Meta: meta("d1", "env1"), Connection: connection(s, "env1")},
	}
	for _, c := range cmds {
		if err := w.Handle(ctx, c); err != nil {
			t.Fatalf("%s: %v", c.CommandName(), err)
		}
	}
	want := map[string]int64{"c1": 1, "x1": 1, "d1": 2, "q1": 3, "dq1": 4}
	if len(rec.events) == 0 {
		t.Fatal("no events")
	}
	for _, e := range rec.events {
		m := e.EventMeta()
		if n, ok := want[m.CommandID]; !ok || m.CommandSeq != n {
			t.Errorf("%s of command %s in %s carries number %d, want %d", e.EventName(), m.CommandID, m.EnvironmentID, m.CommandSeq, n)
		}
	}
}

// Without a number there is nothing to order by: the command is retried,
// and nothing is published meanwhile.
func TestWorkerRetriesWhenTheCommandCannotBeNumbered(t *testing.T) {
	rec := &recorder{}
	s := newSealer(t)
	c := &fakeCapture{}
	w, err := NewWorker(WorkerConfig{Capture: c, Processor: &fakeProcessor{}, Events: rec, Sealer: s, Bindings: &memBindings{},
		Sequencer: &fakeSequencer{err: errors.New("job-state database unavailable")}})
	if err != nil {
		t.Fatal(err)
	}
	err = w.Handle(context.Background(), commands.CreateDatabaseConnection{
		Meta: commands.Meta{CommandID: "c1", EnvironmentID: "env1"}, Connection: connection(s, "env1")})
	if err == nil || jobs.IsTerminal(err) {
		t.Fatalf("err = %v, want a retriable error", err)
	}
	if len(rec.events) != 0 || len(c.calls) != 0 {
		t.Errorf("events %v, capture calls %v: nothing may happen before the command is numbered", rec.names(), c.calls)
	}
}

// The poller's observations belong to the command whose state it read.
func TestStatusPollerObservationsNameTheCommandTheyObservedUnder(t *testing.T) {
	s := newSealer(t)
	conns := []projections.ActiveConnection{{EnvironmentID: "env1", ConnectorName: "cdcq-env1", SlotName: "cdcq_env1",
		ConnectionSealed: s.Seal(plainConn, "env1"), CommandID: "c7", CommandSeq: 7, Last: jobs.CaptureStatus{Status: jobs.StatusPending}}}
	qs := []projections.ActiveQuery{{QueryID: "q1", EnvironmentID: "env1", PipelineName: "cdcq-env1-q1", Engine: "fakeproc",
		CommandID: "c5", CommandSeq: 5, Last: jobs.QueryStatus{Status: jobs.StatusPending, JobState: "SCHEDULED"}}}
	rec := &recorder{}
	p, err := NewStatusPoller(StatusPollerConfig{
		Connections: listFunc(func(context.Context) ([]projections.ActiveConnection, error) { return conns, nil }),
		Queries:     queryListFunc(func(context.Context) ([]projections.ActiveQuery, error) { return qs, nil }),
		Capture:     &fakeCapture{status: jobs.CaptureStatus{Status: jobs.StatusRunning}}, Processor: &fakeProcessor{},
		Events: rec, Sealer: s, Now: func() time.Time { return time.Unix(1700000000, 0) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range rec.events {
		m := e.EventMeta()
		got = append(got, fmt.Sprintf("%s %s/%d", e.EventName(), m.CommandID, m.CommandSeq))
	}
	if fmt.Sprint(got) != "[ConnectionObserved c7/7 CachedQueryObserved c5/5]" {
		t.Errorf("published %v", got)
	}
}

// The projection keeps the status of a query whose job ran when an
// observation of the same command says PENDING (a Flink job restarting
// after a failover); the poller compares with what the projection keeps,
// so it does not publish the same observation every round.
func TestStatusPollerComparesAsTheProjectionKeeps(t *testing.T) {
	restarting := jobs.QueryStatus{Status: jobs.StatusPending, Reason: "Flink job job-1 is RESTARTING after a failure: x",
		JobID: "job-1", JobState: "RESTARTING"}
	tests := []struct {
		name    string
		last    jobs.QueryStatus
		publish bool
	}{
		{"running_job_recorded_as_restarting", jobs.QueryStatus{Status: jobs.StatusRunning, JobID: "job-1", JobState: "RESTARTING"}, false},
		{"running_job_not_yet_restarting", jobs.QueryStatus{Status: jobs.StatusRunning, JobID: "job-1", JobState: "RUNNING"}, true},
		{"pending_job", jobs.QueryStatus{Status: jobs.StatusPending, JobID: "job-1", JobState: "RESTARTING"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			qs := []projections.ActiveQuery{{QueryID: "q1", EnvironmentID: "env1", PipelineName: "cdcq-env1-q1",
				Engine: "fakeproc", CommandSeq: 3, Last: tt.last}}
			rec := &recorder{}
			p, err := NewStatusPoller(StatusPollerConfig{
				Connections: listFunc(func(context.Context) ([]projections.ActiveConnection, error) { return nil, nil }),
				Queries:     queryListFunc(func(context.Context) ([]projections.ActiveQuery, error) { return qs, nil }),
				Capture:     &fakeCapture{}, Processor: &observingProcessor{observed: restarting}, Events: rec, Sealer: newSealer(t),
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Poll(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := len(rec.events) == 1; got != tt.publish {
				t.Errorf("published %v, want an event: %v", rec.names(), tt.publish)
			}
		})
	}
}

// A rejected command has no place among the environment's commands.
func TestRejectedCommandIsNotNumbered(t *testing.T) {
	rec := &recorder{}
	seq := &fakeSequencer{}
	w, err := NewWorker(WorkerConfig{Capture: &fakeCapture{}, Processor: &fakeProcessor{}, Events: rec,
		Sealer: newSealer(t), Bindings: &memBindings{}, Sequencer: seq})
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage("m1", []byte(`{"commandId":"c1"}`))
	msg.Metadata.Set(commands.NameHeader, commands.NameCreateDatabaseConnection)
	msg.Metadata.Set(commands.CommandIDHeader, "c1")
	msg.Metadata.Set(commands.EnvironmentHeader, "env1")
	if err := w.HandleMessage(msg); err == nil {
		t.Fatal("a malformed command was accepted")
	}
	if len(rec.events) != 1 || rec.events[0].EventMeta().CommandSeq != 0 {
		t.Fatalf("events %v", rec.events)
	}
	if len(seq.seqs) != 0 {
		t.Errorf("numbered %v", seq.seqs)
	}
}
