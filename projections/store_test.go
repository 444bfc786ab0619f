package projections_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/projections"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const env = "env1"

var (
	base   = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	nextID atomic.Int64
)

// ev builds the common fields; each call gets a fresh event id and a later
// time than the one before.
func ev(commandID string) events.Meta {
	n := nextID.Add(1)
	return events.Meta{
		EventID:       fmt.Sprintf("ev-%d", n),
		EnvironmentID: env,
		CommandID:     commandID,
		At:            base.Add(time.Duration(n) * time.Second),
	}
}

func requested(commandID string) events.ConnectionRequested {
	return events.ConnectionRequested{
		Meta:               ev(commandID),
		Engine:             "debezium",
		ConnectorName:      "cdcq-" + env,
		SlotName:           "cdcq_env1",
		PublicationName:    "cdcq_env1",
		ConnectionRedacted: "postgres://app:xxxxx@db:5432/app",
		ConnectionSealed:   "v1:sealed-" + commandID,
	}
}

func observed(status jobs.Status, reason string) events.ConnectionObserved {
	return events.ConnectionObserved{Meta: ev(""), Capture: capture(status, reason)}
}

func capture(status jobs.Status, reason string) jobs.CaptureStatus {
	return jobs.CaptureStatus{
		Status:    status,
		Reason:    reason,
		Connector: &jobs.ConnectorState{Name: "cdcq-" + env, State: string(status), Tasks: []jobs.TaskState{{ID: 0, State: string(status)}}},
		Slot:      &jobs.SlotState{Name: "cdcq_env1", Exists: true, Active: status == jobs.StatusRunning, RetainedWALBytes: 1024},
	}
}

func queryRequested(commandID, queryID string) events.CachedQueryRequested {
	return events.CachedQueryRequested{
		Meta:         ev(commandID),
		QueryID:      queryID,
		PipelineName: "cdcq-" + env + "-" + queryID,
		SQLQuery:     "SELECT count(*) FROM orders",
		Engine:       "flink",
	}
}

func queryObserved(queryID string, status jobs.Status, reason, jobID string) events.CachedQueryObserved {
	return events.CachedQueryObserved{Meta: ev(""), QueryID: queryID, Status: status, Reason: reason, JobID: jobID}
}

// newStore gives a Store over a fresh, migrated database, and the pool.
func newStore(t *testing.T) (*projections.Store, *pgxpool.Pool) {
	t.Helper()
	_, pool := pgtest.NewJobState(t)
	s, err := projections.NewStore(pool)
	if err != nil {
		t.Fatal(err)
	}
	return s, pool
}

func applyAll(t *testing.T, s *projections.Store, evs ...events.Event) {
	t.Helper()
	for _, e := range evs {
		if err := s.Apply(t.Context(), e); err != nil {
			t.Fatalf("Apply %s: %v", e.EventName(), err)
		}
	}
}

func connection(t *testing.T, s *projections.Store) projections.ConnectionView {
	t.Helper()
	v, err := s.Connection(t.Context(), env)
	if err != nil {
		t.Fatalf("Connection: %v", err)
	}
	return v
}

func TestNewStore_refuses_nil_pool(t *testing.T) {
	if _, err := projections.NewStore(nil); err == nil {
		t.Fatal("NewStore(nil) succeeded")
	}
}

func TestApply_connection_rules(t *testing.T) {
	type want struct {
		status    jobs.Status
		reason    string
		observed  bool // connector and slot recorded
		sealed    string
		queryStat map[string]jobs.Status
	}
	tests := []struct {
		name   string
		events func() []events.Event
		want   want
	}{
		{
			name:   "requested_creates_pending",
			events: func() []events.Event { return []events.Event{requested("c1")} },
			want:   want{status: jobs.StatusPending, sealed: "v1:sealed-c1"},
		},
		{
			name: "observed_sets_status_and_observation",
			events: func() []events.Event {
				return []events.Event{requested("c1"), observed(jobs.StatusRunning, "")}
			},
			want: want{status: jobs.StatusRunning, observed: true, sealed: "v1:sealed-c1"},
		},
		{
			name: "observed_failure_keeps_reason",
			events: func() []events.Event {
				return []events.Event{requested("c1"), observed(jobs.StatusFailed, "task 0 failed")}
			},
			want: want{status: jobs.StatusFailed, reason: "task 0 failed", observed: true, sealed: "v1:sealed-c1"},
		},
		{
			name: "requested_by_new_command_resets_to_pending",
			events: func() []events.Event {
				return []events.Event{requested("c1"), observed(jobs.StatusFailed, "boom"), requested("c2")}
			},
			want: want{status: jobs.StatusPending, sealed: "v1:sealed-c2"},
		},
		{
			name: "requested_redelivered_keeps_state",
			events: func() []events.Event {
				return []events.Event{requested("c1"), observed(jobs.StatusRunning, ""), requested("c1")}
			},
			want: want{status: jobs.StatusRunning, observed: true, sealed: "v1:sealed-c1"},
		},
		{
			name: "requested_without_command_id_resets_to_pending",
			events: func() []events.Event {
				return []events.Event{requested(""), observed(jobs.StatusRunning, ""), requested("")}
			},
			want: want{status: jobs.StatusPending, sealed: "v1:sealed-"},
		},
		{
			name: "failed_sets_reason",
			events: func() []events.Event {
				return []events.Event{requested("c1"), events.ConnectionFailed{Meta: ev("c1"), Reason: "bad password"}}
			},
			want: want{status: jobs.StatusFailed, reason: "bad password", sealed: "v1:sealed-c1"},
		},
		{
			name: "failed_before_requested_records_the_failure",
			events: func() []events.Event {
				return []events.Event{events.ConnectionFailed{Meta: ev("c1"), Reason: "does not open with this key"}}
			},
			want: want{status: jobs.StatusFailed, reason: "does not open with this key"},
		},
		{
			name: "deleting",
			events: func() []events.Event {
				return []events.Event{requested("c1"), observed(jobs.StatusRunning, ""), events.ConnectionDeleting{Meta: ev("d1")}}
			},
			want: want{status: jobs.StatusDeleting, observed: true, sealed: "v1:sealed-c1"},
		},
		{
			name: "observed_while_deleting_is_ignored",
			events: func() []events.Event {
				return []events.Event{requested("c1"), events.ConnectionDeleting{Meta: ev("d1")}, observed(jobs.StatusRunning, "")}
			},
			want: want{status: jobs.StatusDeleting, sealed: "v1:sealed-c1"},
		},
		{
			name: "deleted_deletes_queries_and_drops_sealed_connection",
			events: func() []events.Event {
				return []events.Event{
					requested("c1"), queryRequested("q1", "qa"), queryObserved("qa", jobs.StatusRunning, "", "job-a"),
					queryRequested("q2", "qb"), observed(jobs.StatusRunning, ""),
					events.ConnectionDeleting{Meta: ev("d1")}, events.ConnectionDeleted{Meta: ev("d1")},
				}
			},
			want: want{status: jobs.StatusDeleted, queryStat: map[string]jobs.Status{"qa": jobs.StatusDeleted, "qb": jobs.StatusDeleted}},
		},
		{
			name: "observed_after_deleted_is_ignored",
			events: func() []events.Event {
				return []events.Event{
					requested("c1"), queryRequested("q1", "qa"),
					events.ConnectionDeleted{Meta: ev("d1")},
					observed(jobs.StatusRunning, ""), queryObserved("qa", jobs.StatusRunning, "", "job-a"),
				}
			},
			want: want{status: jobs.StatusDeleted, queryStat: map[string]jobs.Status{"qa": jobs.StatusDeleted}},
		},
		{
			name: "requested_after_deleted_starts_again",
			events: func() []events.Event {
				return []events.Event{requested("c1"), events.ConnectionDeleted{Meta: ev("d1")}, requested("c1")}
			},
			want: want{status: jobs.StatusPending, sealed: "v1:sealed-c1"},
		},
		{
			name: "query_requested_is_pending",
			events: func() []events.Event {
				return []events.Event{requested("q1"), queryRequested("q1", "qa")}
			},
			want: want{status: jobs.StatusPending, sealed: "v1:sealed-q1", queryStat: map[string]jobs.Status{"qa": jobs.StatusPending}},
		},
		{
			name: "query_observed_sets_status",
			events: func() []events.Event {
				return []events.Event{requested("q1"), queryRequested("q1", "qa"), queryObserved("qa", jobs.StatusFailed, "bad plan", "")}
			},
			want: want{status: jobs.StatusPending, sealed: "v1:sealed-q1", queryStat: map[string]jobs.Status{"qa": jobs.StatusFailed}},
		},
		{
			name: "query_requested_redelivered_keeps_state",
			events: func() []events.Event {
				return []events.Event{
					requested("q1"), queryRequested("q1", "qa"), queryObserved("qa", jobs.StatusRunning, "", "job-a"),
					queryRequested("q1", "qa"),
				}
			},
			want: want{status: jobs.StatusPending, sealed: "v1:sealed-q1", queryStat: map[string]jobs.Status{"qa": jobs.StatusRunning}},
		},
		{
			name: "query_requested_by_new_command_resets_to_pending",
			events: func() []events.Event {
				return []events.Event{
					requested("q1"), queryRequested("q1", "qa"), queryObserved("qa", jobs.StatusRunning, "", "job-a"),
					queryRequested("q2", "qa"),
				}
			},
			want: want{status: jobs.StatusPending, sealed: "v1:sealed-q1", queryStat: map[string]jobs.Status{"qa": jobs.StatusPending}},
		},
		{
			name: "rejected_command_leaves_connection_alone",
			events: func() []events.Event {
				return []events.Event{
					requested("c1"), observed(jobs.StatusRunning, ""),
					events.CommandRejected{Meta: ev("x1"), CommandName: "CreateCachedQuery", Reason: "body is not JSON"},
				}
			},
			want: want{status: jobs.StatusRunning, observed: true, sealed: "v1:sealed-c1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, pool := newStore(t)
			applyAll(t, s, tt.events()...)
			v := connection(t, s)
			if v.Status != tt.want.status || v.Reason != tt.want.reason {
				t.Errorf("status, reason = %s, %q; want %s, %q", v.Status, v.Reason, tt.want.status, tt.want.reason)
			}
			if got := v.Connector != nil && v.Slot != nil && v.ObservedAt != nil; got != tt.want.observed {
				t.Errorf("observation recorded = %v, want %v (connector %+v, slot %+v, observedAt %v)",
					got, tt.want.observed, v.Connector, v.Slot, v.ObservedAt)
			}
			var sealed string
			if err := pool.QueryRow(t.Context(), `SELECT connection_sealed FROM connections WHERE environment_id = $1`, env).Scan(&sealed); err != nil {
				t.Fatal(err)
			}
			if sealed != tt.want.sealed {
				t.Errorf("connection_sealed = %q, want %q", sealed, tt.want.sealed)
			}
			got := map[string]jobs.Status{}
			for _, q := range v.CachedQueries {
				got[q.ID] = q.Status
			}
			if len(got) != len(tt.want.queryStat) {
				t.Errorf("queries = %v, want %v", got, tt.want.queryStat)
			}
			for id, st := range tt.want.queryStat {
				if got[id] != st {
					t.Errorf("query %s status = %s, want %s", id, got[id], st)
				}
			}
		})
	}
}

func TestApply_observation_without_connection_is_ignored(t *testing.T) {
	s, _ := newStore(t)
	applyAll(t, s, observed(jobs.StatusRunning, ""), events.ConnectionDeleting{Meta: ev("d1")}, events.ConnectionDeleted{Meta: ev("d1")})
	if _, err := s.Connection(t.Context(), env); !errors.Is(err, projections.ErrNotFound) {
		t.Fatalf("Connection error = %v, want ErrNotFound", err)
	}
	evs, err := s.Events(t.Context(), env, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 {
		t.Errorf("history has %d events, want 3 (ignored events are still recorded)", len(evs))
	}
}

func TestApply_redelivered_request_keeps_query_job_id(t *testing.T) {
	s, _ := newStore(t)
	applyAll(t, s, requested("q1"), queryRequested("q1", "qa"),
		queryObserved("qa", jobs.StatusRunning, "", "job-a"),
		queryObserved("qa", jobs.StatusFailed, "lost a task", ""))
	q, err := s.CachedQuery(t.Context(), "qa")
	if err != nil {
		t.Fatal(err)
	}
	if q.Status != jobs.StatusFailed || q.Reason != "lost a task" || q.JobID != "job-a" {
		t.Errorf("query = %s %q job %q; want FAILED \"lost a task\" job \"job-a\"", q.Status, q.Reason, q.JobID)
	}
}

func TestApply_exactly_once_per_event_id(t *testing.T) {
	s, pool := newStore(t)
	ctx := t.Context()
	running := observed(jobs.StatusRunning, "")
	applyAll(t, s, requested("c1"), running, requested("c2"))
	before := connection(t, s)

	// A redelivered observation must not undo the newer request.
	if err := s.Apply(ctx, running); err != nil {
		t.Fatalf("re-Apply: %v", err)
	}
	if err := s.Apply(ctx, &running); err != nil { // as events.Decode returns it
		t.Fatalf("re-Apply pointer: %v", err)
	}
	after := connection(t, s)
	if after.Status != jobs.StatusPending || !after.UpdatedAt.Equal(before.UpdatedAt) || after.Connector != nil {
		t.Errorf("re-applied event changed the connection: before %s %v, after %s %v connector %+v",
			before.Status, before.UpdatedAt, after.Status, after.UpdatedAt, after.Connector)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM job_events WHERE event_id = $1`, running.EventID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("job_events has %d rows for the event, want 1", n)
	}
}

func TestApply_concurrent_duplicates_apply_once(t *testing.T) {
	s, pool := newStore(t)
	ctx := t.Context()
	rejected := events.CommandRejected{Meta: ev("x1"), CommandName: "CreateCachedQuery", Reason: "bad"}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = s.Apply(ctx, rejected) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Apply #%d: %v", i, err)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM rejected_commands`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("rejected_commands has %d rows, want 1", n)
	}
}

func TestApply_bad_events(t *testing.T) {
	noID := requested("c1")
	noID.EventID = ""
	noEnv := requested("c1")
	noEnv.EnvironmentID = ""
	noQuery := queryRequested("q1", "")
	tests := []struct {
		name string
		ev   events.Event
	}{
		{name: "nil", ev: nil},
		{name: "nil_pointer", ev: (*events.ConnectionDeleted)(nil)},
		{name: "no_event_id", ev: noID},
		{name: "no_environment_id", ev: noEnv},
		{name: "no_query_id", ev: noQuery},
		{name: "unknown_capture_status", ev: observed("EXPLODED", "")},
		{name: "unknown_query_status", ev: queryObserved("qa", "MAYBE", "", "")},
	}
	s, pool := newStore(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Apply(t.Context(), tt.ev)
			if !errors.Is(err, projections.ErrBadEvent) {
				t.Errorf("Apply error = %v, want ErrBadEvent", err)
			}
		})
	}
	var n int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM job_events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("bad events left %d rows in job_events", n)
	}
}

func TestHandle(t *testing.T) {
	tests := []struct {
		name    string
		event   string
		body    string
		wantBad bool
	}{
		{name: "unknown_name", event: "Exploded", body: `{}`, wantBad: true},
		{name: "body_not_json", event: events.NameConnectionRequested, body: `{"eventId":`, wantBad: true},
		{name: "missing_event_id", event: events.NameConnectionDeleting, body: `{"environmentId":"env1"}`, wantBad: true},
		{name: "valid", event: events.NameCommandRejected,
			body: `{"eventId":"e1","environmentId":"env1","commandId":"c1","at":"2026-03-01T12:00:00Z","commandName":"CreateDatabaseConnection","reason":"no environmentId"}`},
	}
	s, _ := newStore(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Handle(t.Context(), tt.event, []byte(tt.body))
			if got := errors.Is(err, projections.ErrBadEvent); got != tt.wantBad {
				t.Errorf("Handle error = %v; bad event = %v, want %v", err, got, tt.wantBad)
			}
			if !tt.wantBad && err != nil {
				t.Errorf("Handle: %v", err)
			}
		})
	}
	v := connection(t, s)
	if len(v.RejectedCommands) != 1 || v.RejectedCommands[0].CommandID != "c1" {
		t.Errorf("rejected commands = %+v, want the one handled", v.RejectedCommands)
	}
}

func TestApply_database_failure_is_not_a_bad_event(t *testing.T) {
	s, pool := newStore(t)
	pool.Close()
	err := s.Apply(t.Context(), requested("c1"))
	if err == nil {
		t.Fatal("Apply on a closed pool succeeded")
	}
	if errors.Is(err, projections.ErrBadEvent) {
		t.Errorf("database failure reported as a bad event: %v", err)
	}
}

func TestApply_recorded_at_event_time(t *testing.T) {
	s, _ := newStore(t)
	r := requested("c1")
	o := observed(jobs.StatusRunning, "")
	applyAll(t, s, r, o)
	v := connection(t, s)
	if !v.CreatedAt.Equal(r.At) || !v.UpdatedAt.Equal(o.At) || v.ObservedAt == nil || !v.ObservedAt.Equal(o.At) {
		t.Errorf("created %v updated %v observed %v; want %v, %v, %v", v.CreatedAt, v.UpdatedAt, v.ObservedAt, r.At, o.At, o.At)
	}
}
