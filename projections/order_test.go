package projections_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/jobs"
)

// Events of numbered commands (events.Meta.CommandSeq), for environment
// env of store_test.go unless said otherwise.

func numbered(envID, commandID string, seq int64) events.Meta {
	m := ev(commandID)
	m.EnvironmentID, m.CommandSeq = envID, seq
	return m
}

func nRequested(envID, commandID string, seq int64) events.ConnectionRequested {
	r := requested(commandID)
	r.Meta = numbered(envID, commandID, seq)
	return r
}

func nObserved(envID, commandID string, seq int64, status jobs.Status, reason string) events.ConnectionObserved {
	return events.ConnectionObserved{Meta: numbered(envID, commandID, seq), Capture: capture(status, reason)}
}

func nFailed(envID, commandID string, seq int64, reason string) events.ConnectionFailed {
	return events.ConnectionFailed{Meta: numbered(envID, commandID, seq), Reason: reason}
}

func nDeleting(envID, commandID string, seq int64) events.ConnectionDeleting {
	return events.ConnectionDeleting{Meta: numbered(envID, commandID, seq)}
}

func nDeleted(envID, commandID string, seq int64) events.ConnectionDeleted {
	return events.ConnectionDeleted{Meta: numbered(envID, commandID, seq)}
}

func nQueryRequested(envID, commandID string, seq int64, queryID string) events.CachedQueryRequested {
	r := queryRequested(commandID, queryID)
	r.Meta = numbered(envID, commandID, seq)
	r.PipelineName = "cdcq-" + envID + "-" + queryID
	return r
}

func nQueryObserved(envID, commandID string, seq int64, queryID string, status jobs.Status, reason string) events.CachedQueryObserved {
	return events.CachedQueryObserved{Meta: numbered(envID, commandID, seq), QueryID: queryID, Status: status, Reason: reason, JobID: "job-" + commandID}
}

func nQueryDeleted(envID, commandID string, seq int64, queryID string) events.CachedQueryDeleted {
	return events.CachedQueryDeleted{Meta: numbered(envID, commandID, seq), QueryID: queryID}
}

// rowState is what a row says: its status and reason, and the command it
// reflects.
type rowState struct {
	status  jobs.Status
	reason  string
	command string
	seq     int64
}

func connectionRow(t *testing.T, pool *pgxpool.Pool, envID string) rowState {
	t.Helper()
	var r rowState
	err := pool.QueryRow(t.Context(), `SELECT status, reason, last_command_id, command_seq FROM connections
		WHERE environment_id = $1`, envID).Scan(&r.status, &r.reason, &r.command, &r.seq)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	return r
}

func queryRow(t *testing.T, pool *pgxpool.Pool, queryID string) rowState {
	t.Helper()
	var r rowState
	err := pool.QueryRow(t.Context(), `SELECT status, reason, last_command_id, command_seq FROM cached_queries
		WHERE query_id = $1`, queryID).Scan(&r.status, &r.reason, &r.command, &r.seq)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	return r
}

// A late event of an older command never overwrites what a newer command
// did; within one command the status only moves forward.
func TestApply_numbered_commands_are_ordered(t *testing.T) {
	const e = env
	tests := []struct {
		name   string
		events []events.Event
		conn   rowState
		query  rowState // zero: no query row
	}{
		{
			// The reported bug: a create carried out late (by a worker that
			// lost its partition) after the newer delete.
			name: "late_request_of_older_create_after_delete",
			events: []events.Event{
				nRequested(e, "c1", 1), nObserved(e, "c1", 1, jobs.StatusRunning, ""),
				nDeleting(e, "d2", 2), nDeleted(e, "d2", 2),
				nRequested(e, "c1", 1), nObserved(e, "c1", 1, jobs.StatusRunning, ""),
			},
			conn: rowState{status: jobs.StatusDeleted, command: "d2", seq: 2},
		},
		{
			name: "newer_create_after_delete_starts_again",
			events: []events.Event{
				nRequested(e, "c1", 1), nDeleting(e, "d2", 2), nDeleted(e, "d2", 2), nRequested(e, "c3", 3),
			},
			conn: rowState{status: jobs.StatusPending, command: "c3", seq: 3},
		},
		{
			name: "late_delete_of_older_command_after_create",
			events: []events.Event{
				nRequested(e, "c2", 2), nObserved(e, "c2", 2, jobs.StatusRunning, ""),
				nDeleting(e, "d1", 1), nDeleted(e, "d1", 1), nFailed(e, "d1", 1, "delete: boom"),
			},
			conn: rowState{status: jobs.StatusRunning, command: "c2", seq: 2},
		},
		{
			name: "poller_observation_under_older_command",
			events: []events.Event{
				nRequested(e, "c1", 1), nObserved(e, "c1", 1, jobs.StatusRunning, ""),
				nRequested(e, "c2", 2),
				nObserved(e, "c1", 1, jobs.StatusFailed, "connector is gone"),
			},
			conn: rowState{status: jobs.StatusPending, command: "c2", seq: 2},
		},
		{
			// The embedded capture still marked deleted by the older delete,
			// observed before the new create reached the engine.
			name: "observation_never_starts_a_delete",
			events: []events.Event{
				nDeleting(e, "d1", 1), nRequested(e, "c2", 2),
				nObserved(e, "c2", 2, jobs.StatusDeleting, "the embedded capture was deleted"),
				nObserved(e, "c2", 2, jobs.StatusRunning, ""),
			},
			conn: rowState{status: jobs.StatusRunning, command: "c2", seq: 2},
		},
		{
			name: "pending_after_running_keeps_the_status",
			events: []events.Event{
				nRequested(e, "c1", 1), nObserved(e, "c1", 1, jobs.StatusRunning, ""),
				nObserved(e, "c1", 1, jobs.StatusPending, "starting"),
			},
			conn: rowState{status: jobs.StatusRunning, command: "c1", seq: 1},
		},
		{
			name: "failed_then_running_within_a_command",
			events: []events.Event{
				nRequested(e, "c1", 1), nObserved(e, "c1", 1, jobs.StatusFailed, "task 0 failed"),
				nObserved(e, "c1", 1, jobs.StatusRunning, ""),
			},
			conn: rowState{status: jobs.StatusRunning, command: "c1", seq: 1},
		},
		{
			name: "observation_while_deleting_is_ignored",
			events: []events.Event{
				nRequested(e, "c1", 1), nDeleting(e, "d2", 2), nObserved(e, "d2", 2, jobs.StatusRunning, ""),
			},
			conn: rowState{status: jobs.StatusDeleting, command: "d2", seq: 2},
		},
		{
			name: "delete_failure_after_deleting",
			events: []events.Event{
				nRequested(e, "c1", 1), nDeleting(e, "d2", 2), nFailed(e, "d2", 2, "delete: permission denied"),
			},
			conn: rowState{status: jobs.StatusFailed, reason: "delete: permission denied", command: "d2", seq: 2},
		},
		{
			name: "delete_carried_out_again_after_it_finished",
			events: []events.Event{
				nRequested(e, "c1", 1), nDeleting(e, "d2", 2), nDeleted(e, "d2", 2),
				nDeleting(e, "d2", 2), nFailed(e, "d2", 2, "delete: the slot is gone"),
			},
			conn: rowState{status: jobs.StatusDeleted, command: "d2", seq: 2},
		},
		{
			name: "redelivered_request_keeps_the_state",
			events: []events.Event{
				nRequested(e, "c1", 1), nObserved(e, "c1", 1, jobs.StatusRunning, ""), nRequested(e, "c1", 1),
			},
			conn: rowState{status: jobs.StatusRunning, command: "c1", seq: 1},
		},
		{
			name: "older_failure_after_newer_request",
			events: []events.Event{
				nRequested(e, "c2", 2), nFailed(e, "c1", 1, "does not open with this key"),
			},
			conn: rowState{status: jobs.StatusPending, command: "c2", seq: 2},
		},
		{
			name: "query_late_observation_after_connection_deleted",
			events: []events.Event{
				nRequested(e, "q1", 1), nQueryRequested(e, "q1", 1, "qa"),
				nDeleting(e, "d2", 2), nDeleted(e, "d2", 2),
				nQueryObserved(e, "q1", 1, "qa", jobs.StatusRunning, ""),
			},
			conn:  rowState{status: jobs.StatusDeleted, command: "d2", seq: 2},
			query: rowState{status: jobs.StatusDeleted, command: "d2", seq: 2},
		},
		{
			// The engine still has the query's results marked deleted by
			// the older delete: the new query must not be stuck DELETED.
			name: "query_observation_never_deletes",
			events: []events.Event{
				nRequested(e, "q1", 1), nQueryRequested(e, "q1", 1, "qa"), nDeleted(e, "d2", 2),
				nRequested(e, "q3", 3), nQueryRequested(e, "q3", 3, "qa"),
				nQueryObserved(e, "q3", 3, "qa", jobs.StatusDeleted, ""),
				nQueryObserved(e, "q3", 3, "qa", jobs.StatusRunning, ""),
			},
			conn:  rowState{status: jobs.StatusPending, command: "q3", seq: 3},
			query: rowState{status: jobs.StatusRunning, command: "q3", seq: 3},
		},
		{
			name: "query_older_request_after_newer_delete",
			events: []events.Event{
				nRequested(e, "q1", 1), nQueryRequested(e, "q1", 1, "qa"), nQueryDeleted(e, "dq2", 2, "qa"),
				nQueryRequested(e, "q1", 1, "qa"), nQueryObserved(e, "q1", 1, "qa", jobs.StatusRunning, ""),
			},
			conn:  rowState{status: jobs.StatusPending, command: "q1", seq: 1},
			query: rowState{status: jobs.StatusDeleted, command: "dq2", seq: 2},
		},
		{
			name: "query_delete_failure_observed_under_the_delete",
			events: []events.Event{
				nRequested(e, "q1", 1), nQueryRequested(e, "q1", 1, "qa"), nQueryObserved(e, "q1", 1, "qa", jobs.StatusRunning, ""),
				nQueryObserved(e, "dq2", 2, "qa", jobs.StatusFailed, "delete: no such job"),
				nQueryObserved(e, "q1", 1, "qa", jobs.StatusRunning, ""),
			},
			conn:  rowState{status: jobs.StatusPending, command: "q1", seq: 1},
			query: rowState{status: jobs.StatusFailed, reason: "delete: no such job", command: "dq2", seq: 2},
		},
		{
			name: "query_restarting_keeps_running",
			events: []events.Event{
				nRequested(e, "q1", 1), nQueryRequested(e, "q1", 1, "qa"), nQueryObserved(e, "q1", 1, "qa", jobs.StatusRunning, ""),
				nQueryObserved(e, "q1", 1, "qa", jobs.StatusPending, "Flink job is RESTARTING"),
			},
			conn:  rowState{status: jobs.StatusPending, command: "q1", seq: 1},
			query: rowState{status: jobs.StatusRunning, command: "q1", seq: 1},
		},
		{
			// Events from before numbering follow the old rules, also on
			// a numbered row.
			name: "unnumbered_events_as_before",
			events: []events.Event{
				nRequested(e, "c1", 1), nObserved(e, "c1", 1, jobs.StatusRunning, ""),
				events.ConnectionDeleted{Meta: ev("d2")}, requested("c1"),
			},
			conn: rowState{status: jobs.StatusPending, command: "c1", seq: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, pool := newStore(t)
			applyAll(t, s, tt.events...)
			if got := connectionRow(t, pool, e); got != tt.conn {
				t.Errorf("connection = %+v, want %+v", got, tt.conn)
			}
			if got := queryRow(t, pool, "qa"); got != tt.query {
				t.Errorf("query = %+v, want %+v", got, tt.query)
			}
		})
	}
}

// The observation held back from the status is still recorded: the
// capture's details are the newest, and the poller, which compares with
// them, does not publish the same observation again.
func TestApply_held_observation_keeps_details(t *testing.T) {
	s, _ := newStore(t)
	retrying := capture(jobs.StatusPending, "retrying after: connection refused")
	retrying.LastError = "connection refused"
	applyAll(t, s, nRequested(env, "c1", 1), nObserved(env, "c1", 1, jobs.StatusRunning, ""),
		events.ConnectionObserved{Meta: numbered(env, "c1", 1), Capture: retrying})
	v := connection(t, s)
	if v.Status != jobs.StatusRunning || v.Reason != "" || v.LastError != "connection refused" {
		t.Errorf("status %s, reason %q, last error %q", v.Status, v.Reason, v.LastError)
	}
	active, err := s.ActiveConnections(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 1 || !active[0].Last.Equal(retrying) || active[0].CommandID != "c1" || active[0].CommandSeq != 1 {
		t.Errorf("active = %+v", active)
	}
}

// Whatever order the events of an environment's commands arrive in (a
// command's own events in order, each command first carried out before the
// next, but status observations trailing behind and commands carried out
// again late by a worker that lost its partition), every state the rows
// take is ordered, and the last command decides the end.
func TestApply_any_delivery_order_is_monotonic(t *testing.T) {
	s, pool := newStore(t)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 14))
	t.Logf("seed %d", seed)
	for round := range 100 {
		envID := fmt.Sprintf("order%d", round)
		queryID := "q_" + envID
		kinds := []string{"create", "delete", "query"}
		var cmds []string
		for range 2 + rng.IntN(6) {
			cmds = append(cmds, kinds[rng.IntN(len(kinds))])
		}
		// Each command's events as its handler publishes them.
		var lists [][]events.Event
		for i, kind := range cmds {
			id, seq := fmt.Sprintf("%s-%d", kind, i+1), int64(i+1)
			var l []events.Event
			switch kind {
			case "create":
				l = []events.Event{nRequested(envID, id, seq), nObserved(envID, id, seq, jobs.StatusPending, "starting"),
					nObserved(envID, id, seq, jobs.StatusRunning, "")}
			case "query":
				l = []events.Event{nQueryRequested(envID, id, seq, queryID), nRequested(envID, id, seq),
					nObserved(envID, id, seq, jobs.StatusRunning, ""), nQueryObserved(envID, id, seq, queryID, jobs.StatusPending, ""),
					nQueryObserved(envID, id, seq, queryID, jobs.StatusRunning, "")}
			case "delete":
				l = []events.Event{nDeleting(envID, id, seq), nDeleted(envID, id, seq)}
			}
			lists = append(lists, l)
		}
		// In order, command after command.
		var stream []events.Event
		for _, l := range lists {
			stream = append(stream, l...)
		}
		// Observations by the poller of what it saw under some command,
		// published after it read that command's state in a row; the
		// engine may say anything, including what an older command left.
		for range rng.IntN(10) {
			i := rng.IntN(len(cmds))
			id, seq := fmt.Sprintf("%s-%d", cmds[i], i+1), int64(i+1)
			statuses := []jobs.Status{jobs.StatusPending, jobs.StatusRunning, jobs.StatusFailed, jobs.StatusDeleting, jobs.StatusDeleted}
			st := statuses[rng.IntN(len(statuses))]
			if cmds[i] == "query" && rng.IntN(2) == 0 {
				// The query's row reflects the query's command from its
				// first event on.
				stream = insertAfter(rng, stream, lists[i][0], nQueryObserved(envID, id, seq, queryID, st, "polled"))
				continue
			}
			first := lists[i][0]
			if cmds[i] == "query" {
				first = lists[i][1] // the connection's request
			}
			stream = insertAfter(rng, stream, first, nObserved(envID, id, seq, st, "polled"))
		}
		// Commands carried out again, late: new event ids, same command.
		for range rng.IntN(3) {
			i := rng.IntN(len(cmds))
			pos := indexOf(stream, lists[i][0])
			for _, e := range lists[i] {
				pos += 1 + rng.IntN(len(stream)-pos)
				stream = slices.Insert(stream, pos, reissue(e))
			}
		}

		var connHist, queryHist []rowState
		for _, e := range stream {
			applyAll(t, s, e)
			connHist = appendChanged(connHist, connectionRow(t, pool, envID))
			queryHist = appendChanged(queryHist, queryRow(t, pool, queryID))
		}
		for what, hist := range map[string][]rowState{"connection": connHist, "query": queryHist} {
			if problem := ordered(hist); problem != "" {
				t.Fatalf("round %d, commands %v: %s %s\nhistory %+v", round, cmds, what, problem, hist)
			}
		}
		wantConn, wantQuery := lastSay(cmds)
		gotConn, gotQuery := connectionRow(t, pool, envID), queryRow(t, pool, queryID)
		for _, got := range []*rowState{&gotConn, &gotQuery} {
			if got.status == jobs.StatusFailed && got.reason == "polled" {
				got.status = jobs.StatusRunning // the engine's word on a started job
			}
		}
		if gotConn.status != wantConn.status || gotConn.command != wantConn.command ||
			gotQuery.status != wantQuery.status || gotQuery.command != wantQuery.command {
			t.Fatalf("round %d, commands %v: ends with connection %+v, query %+v; want %+v, %+v",
				round, cmds, gotConn, gotQuery, wantConn, wantQuery)
		}
	}
}

// insertAfter inserts e at a random place after first.
func insertAfter(rng *rand.Rand, stream []events.Event, first, e events.Event) []events.Event {
	i := indexOf(stream, first)
	return slices.Insert(stream, i+1+rng.IntN(len(stream)-i), e)
}

func indexOf(stream []events.Event, e events.Event) int {
	return slices.IndexFunc(stream, func(x events.Event) bool { return x.EventMeta().EventID == e.EventMeta().EventID })
}

// reissue gives an event a new id, as a command carried out again does.
func reissue(e events.Event) events.Event {
	id := ev("").EventID
	switch e := e.(type) {
	case events.ConnectionRequested:
		e.EventID = id
		return e
	case events.ConnectionObserved:
		e.EventID = id
		return e
	case events.ConnectionDeleting:
		e.EventID = id
		return e
	case events.ConnectionDeleted:
		e.EventID = id
		return e
	case events.CachedQueryRequested:
		e.EventID = id
		return e
	case events.CachedQueryObserved:
		e.EventID = id
		return e
	}
	panic(fmt.Sprintf("reissue %T", e))
}

func appendChanged(hist []rowState, r rowState) []rowState {
	if r.command == "" || (len(hist) > 0 && hist[len(hist)-1] == r) {
		return hist
	}
	return append(hist, r)
}

var rank = map[jobs.Status]int{jobs.StatusPending: 0, jobs.StatusRunning: 1, jobs.StatusPaused: 1, jobs.StatusFailed: 1,
	jobs.StatusDeleting: 2, jobs.StatusDeleted: 3}

// ordered says what is out of order in a row's history, or "".
func ordered(hist []rowState) string {
	for i := 1; i < len(hist); i++ {
		a, b := hist[i-1], hist[i]
		switch {
		case b.seq < a.seq:
			return fmt.Sprintf("command %d after command %d", b.seq, a.seq)
		case b.seq == a.seq && b.command != a.command:
			return fmt.Sprintf("command %d is %s and %s", a.seq, a.command, b.command)
		case b.seq == a.seq && rank[b.status] < rank[a.status] && (b.status != jobs.StatusFailed || a.status == jobs.StatusDeleted):
			return fmt.Sprintf("%s after %s within command %d", b.status, a.status, a.seq)
		}
	}
	return ""
}

// lastSay is what the commands, carried out in order, leave.
func lastSay(cmds []string) (conn, query rowState) {
	for i, kind := range cmds {
		id := fmt.Sprintf("%s-%d", kind, i+1)
		switch kind {
		case "create":
			conn = rowState{status: jobs.StatusRunning, command: id}
		case "query":
			conn = rowState{status: jobs.StatusRunning, command: id}
			query = rowState{status: jobs.StatusRunning, command: id}
		case "delete":
			if conn.command != "" {
				conn = rowState{status: jobs.StatusDeleted, command: id}
			}
			if query.status == jobs.StatusRunning {
				query = rowState{status: jobs.StatusDeleted, command: id}
			}
		}
	}
	return conn, query
}

// A query stopped because its source's schema changed keeps its reason
// against later observations of the same command (Flink's canceled job),
// and a newer command still applies.
func TestApply_schema_change_failure_is_kept(t *testing.T) {
	s, pool := newStore(t)
	const q = "q_schema"
	broken := nQueryObserved(env, "c1", 1, q, jobs.StatusFailed, "column orders.region was renamed to area; create the cached query again with the new schema")
	broken.JobState = jobs.JobStateSchemaChanged
	canceled := nQueryObserved(env, "c1", 1, q, jobs.StatusFailed, "Flink job job-c1 is CANCELED: it was canceled")
	canceled.JobState = "CANCELED"
	applyAll(t, s, nRequested(env, "c1", 1), nQueryRequested(env, "c1", 1, q),
		nQueryObserved(env, "c1", 1, q, jobs.StatusRunning, ""), canceled, broken, canceled,
		nQueryObserved(env, "c1", 1, q, jobs.StatusRunning, ""))
	if r := queryRow(t, pool, q); r.status != jobs.StatusFailed || r.reason != broken.Reason {
		t.Fatalf("after later observations: %+v", r)
	}
	applyAll(t, s, nQueryRequested(env, "c2", 2, q))
	if r := queryRow(t, pool, q); r.status != jobs.StatusPending || r.command != "c2" {
		t.Fatalf("after a newer create: %+v", r)
	}
}
