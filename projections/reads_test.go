package projections_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cdcq/cdcq/internal/connstr"
	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/secret"
	"github.com/cdcq/cdcq/projections"
)

func TestConnection_JSON_keeps_the_original_fields(t *testing.T) {
	s, _ := newStore(t)
	applyAll(t, s, requested("c1"), observed(jobs.StatusRunning, ""), queryRequested("c1", "qa"),
		queryObserved("qa", jobs.StatusRunning, "", "job-a"))
	body, err := json.Marshal(connection(t, s))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{
		"id": env, "name": "cdcq-" + env, "status": "RUNNING", "environmentId": env,
		"engine": "debezium", "connection": "postgres://app:xxxxx@db:5432/app",
		"slotName": "cdcq_env1", "publicationName": "cdcq_env1",
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
	for _, key := range []string{"connector", "slot", "observedAt", "createdAt", "updatedAt"} {
		if got[key] == nil {
			t.Errorf("%s missing from %s", key, body)
		}
	}
	if strings.Contains(string(body), "sealed") {
		t.Errorf("view carries the sealed connection: %s", body)
	}
	queries, _ := got["cachedQueries"].([]any)
	if len(queries) != 1 {
		t.Fatalf("cachedQueries = %v, want one", got["cachedQueries"])
	}
	q := queries[0].(map[string]any)
	for key, want := range map[string]any{"id": "qa", "name": "cdcq-env1-qa", "status": "RUNNING", "jobId": "job-a"} {
		if q[key] != want {
			t.Errorf("cachedQueries[0].%s = %v, want %v", key, q[key], want)
		}
	}
}

func TestConnection_without_queries_lists_none_not_null(t *testing.T) {
	s, _ := newStore(t)
	applyAll(t, s, requested("c1"))
	body, err := json.Marshal(connection(t, s))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"cachedQueries":[]`) {
		t.Errorf("want \"cachedQueries\":[] in %s", body)
	}
}

func TestConnection_not_found(t *testing.T) {
	s, _ := newStore(t)
	if _, err := s.Connection(t.Context(), "nobody"); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("Connection error = %v, want ErrNotFound", err)
	}
}

func TestConnection_queries_in_creation_order(t *testing.T) {
	s, _ := newStore(t)
	applyAll(t, s, requested("c1"), queryRequested("c1", "zz"), queryRequested("c2", "aa"), queryRequested("c3", "mm"))
	var ids []string
	for _, q := range connection(t, s).CachedQueries {
		ids = append(ids, q.ID)
	}
	if strings.Join(ids, ",") != "zz,aa,mm" {
		t.Errorf("query order = %v, want [zz aa mm]", ids)
	}
}

func TestConnection_rejected_commands(t *testing.T) {
	s, _ := newStore(t)
	var last events.CommandRejected
	for i := range 12 {
		last = events.CommandRejected{Meta: ev(fmt.Sprintf("x%d", i)), CommandName: "CreateCachedQuery", Reason: fmt.Sprintf("reason %d", i)}
		applyAll(t, s, last)
	}
	other := events.CommandRejected{Meta: ev("y"), CommandName: "CreateCachedQuery", Reason: "elsewhere"}
	other.EnvironmentID = "env2"
	applyAll(t, s, other)

	// No connection was ever requested: the rejections are the job.
	v := connection(t, s)
	if v.ID != env || v.Status != jobs.StatusFailed || !strings.Contains(v.Reason, "reason 11") {
		t.Errorf("view = id %q status %s reason %q; want %s FAILED naming the latest rejection", v.ID, v.Status, v.Reason, env)
	}
	if len(v.RejectedCommands) != 10 {
		t.Fatalf("%d rejected commands, want the last 10", len(v.RejectedCommands))
	}
	if first := v.RejectedCommands[0]; first.CommandID != "x11" || !first.At.Equal(last.At) {
		t.Errorf("first rejected = %+v, want the newest (x11 at %v)", first, last.At)
	}
	if v.RejectedCommands[9].CommandID != "x2" {
		t.Errorf("last listed = %s, want x2", v.RejectedCommands[9].CommandID)
	}

	// Once requested, the connection's own state is reported, rejections listed.
	applyAll(t, s, requested("c1"))
	v = connection(t, s)
	if v.Status != jobs.StatusPending || v.Reason != "" || len(v.RejectedCommands) != 10 {
		t.Errorf("after request: status %s reason %q, %d rejected; want PENDING, no reason, 10", v.Status, v.Reason, len(v.RejectedCommands))
	}
}

func TestCachedQuery(t *testing.T) {
	s, _ := newStore(t)
	applyAll(t, s, requested("c1"), queryRequested("c1", "qa"), queryObserved("qa", jobs.StatusRunning, "", "job-a"))
	q, err := s.CachedQuery(t.Context(), "qa")
	if err != nil {
		t.Fatal(err)
	}
	want := projections.QueryView{ID: "qa", Name: "cdcq-env1-qa", Status: jobs.StatusRunning, EnvironmentID: env,
		Engine: "flink", SQLQuery: "SELECT count(*) FROM orders", JobID: "job-a", CreatedAt: q.CreatedAt, UpdatedAt: q.UpdatedAt}
	if q != want {
		t.Errorf("CachedQuery = %+v\nwant %+v", q, want)
	}
	if q.CreatedAt.IsZero() || !q.UpdatedAt.After(q.CreatedAt) {
		t.Errorf("createdAt %v, updatedAt %v: want set, updated after created", q.CreatedAt, q.UpdatedAt)
	}
	if _, err := s.CachedQuery(t.Context(), "nope"); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("CachedQuery(nope) error = %v, want ErrNotFound", err)
	}
}

func TestActiveConnections(t *testing.T) {
	s, _ := newStore(t)
	forEnv := func(e events.Event, environmentID string) events.Event {
		switch x := e.(type) {
		case events.ConnectionRequested:
			x.EnvironmentID = environmentID
			return x
		case events.ConnectionObserved:
			x.EnvironmentID = environmentID
			return x
		case events.ConnectionDeleting:
			x.EnvironmentID = environmentID
			return x
		case events.ConnectionDeleted:
			x.EnvironmentID = environmentID
			return x
		case events.ConnectionFailed:
			x.EnvironmentID = environmentID
			return x
		}
		t.Fatalf("unexpected %T", e)
		return nil
	}
	embedded := requested("n1")
	embedded.Engine = "none"
	running := observed(jobs.StatusRunning, "")
	applyAll(t, s,
		forEnv(requested("a1"), "a-running"), forEnv(running, "a-running"),
		forEnv(requested("b1"), "b-deleted"), forEnv(events.ConnectionDeleted{Meta: ev("b2")}, "b-deleted"),
		forEnv(embedded, "c-engine-none"),
		forEnv(requested("d1"), "d-deleting"), forEnv(events.ConnectionDeleting{Meta: ev("d2")}, "d-deleting"),
		forEnv(requested("e1"), "e-pending"),
		forEnv(events.ConnectionFailed{Meta: ev("f1"), Reason: "never requested"}, "f-failed-early"),
	)
	got, err := s.ActiveConnections(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range got {
		ids = append(ids, a.EnvironmentID)
	}
	if strings.Join(ids, ",") != "a-running,d-deleting,e-pending" {
		t.Fatalf("active = %v, want [a-running d-deleting e-pending]", ids)
	}
	a := got[0]
	if a.ConnectorName != "cdcq-env1" || a.SlotName != "cdcq_env1" || a.PublicationName != "cdcq_env1" || a.ConnectionSealed != "v1:sealed-a1" {
		t.Errorf("active[0] = %+v", a)
	}
	if !a.Last.Equal(running.Capture) {
		t.Errorf("Last = %+v, want the recorded observation %+v", a.Last, running.Capture)
	}
	if e := got[2]; !e.Last.Equal(jobs.CaptureStatus{Status: jobs.StatusPending}) || e.Last.Connector != nil || e.Last.Slot != nil {
		t.Errorf("pending Last = %+v, want PENDING without observation", e.Last)
	}
}

func TestEvents(t *testing.T) {
	s, _ := newStore(t)
	r := requested("c1")
	o := observed(jobs.StatusRunning, "")
	applyAll(t, s, r, o, events.ConnectionDeleting{Meta: ev("d1")})

	got, err := s.Events(t.Context(), env, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != events.NameConnectionDeleting || got[1].Name != events.NameConnectionObserved {
		t.Fatalf("Events(limit 2) = %+v, want Deleting then Observed", got)
	}
	if !got[1].At.Equal(o.At) || got[1].EventID != o.EventID {
		t.Errorf("observed event = %+v, want id %s at %v", got[1], o.EventID, o.At)
	}
	decoded, err := events.Decode(got[1].Name, got[1].Payload)
	if err != nil {
		t.Fatalf("payload does not decode: %v", err)
	}
	if obs := decoded.(*events.ConnectionObserved); !obs.Capture.Equal(o.Capture) {
		t.Errorf("payload capture = %+v, want %+v", obs.Capture, o.Capture)
	}

	all, err := s.Events(t.Context(), env, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("Events(0) returned %d, want 3", len(all))
	}
	req := all[2]
	if req.Name != events.NameConnectionRequested || req.CommandID != "c1" {
		t.Errorf("oldest event = %+v, want the request of c1", req)
	}
	if strings.Contains(string(req.Payload), r.ConnectionSealed) {
		t.Errorf("history keeps the sealed connection: %s", req.Payload)
	}
	if !strings.Contains(string(req.Payload), r.ConnectionRedacted) {
		t.Errorf("history lost the redacted connection: %s", req.Payload)
	}
}

// The plaintext connection string exists only in this test: the event
// carries it sealed and redacted, and no table may contain the password.
func TestSealed_connection_never_stored_in_plain_text(t *testing.T) {
	const password = "Zq7-very-secret-pw-4815162342"
	plain := "postgres://admin:" + password + "@db.example.com:5432/shop?sslmode=require"
	sealer, err := secret.NewSealer(make([]byte, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := connstr.Parse(plain)
	if err != nil {
		t.Fatal(err)
	}
	r := requested("c1")
	r.ConnectionSealed = sealer.Seal(plain, r.EnvironmentID)
	r.ConnectionRedacted = conn.Redacted()
	if strings.Contains(r.ConnectionRedacted, password) || strings.Contains(r.ConnectionSealed, password) {
		t.Fatal("test setup: redacted or sealed form contains the password")
	}

	s, pool := newStore(t)
	ctx := t.Context()
	body, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handle(ctx, r.EventName(), body); err != nil {
		t.Fatal(err)
	}
	applyAll(t, s, observed(jobs.StatusRunning, ""), queryRequested("c1", "qa"),
		events.CommandRejected{Meta: ev("x1"), CommandName: "CreateDatabaseConnection", Reason: "bad"})

	var sealed, redacted string
	if err := pool.QueryRow(ctx, `SELECT connection_sealed, connection_redacted FROM connections WHERE environment_id = $1`, env).
		Scan(&sealed, &redacted); err != nil {
		t.Fatal(err)
	}
	if sealed != r.ConnectionSealed || redacted != r.ConnectionRedacted {
		t.Errorf("stored sealed %q redacted %q; want the event's %q, %q", sealed, redacted, r.ConnectionSealed, r.ConnectionRedacted)
	}
	if opened, err := sealer.Open(sealed, r.EnvironmentID); err != nil || opened != plain {
		t.Errorf("stored sealed value does not open to the connection string (err %v)", err)
	}

	rows, err := pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(tables) < 4 {
		t.Fatalf("found tables %v, want at least the four read-model tables", tables)
	}
	dumped := 0
	for _, table := range tables {
		var dump string
		if err := pool.QueryRow(ctx, fmt.Sprintf(`SELECT coalesce(string_agg(t::text, E'\n'), '') FROM %q t`, table)).Scan(&dump); err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		dumped += len(dump)
		if strings.Contains(dump, password) {
			t.Errorf("table %s contains the plaintext password", table)
		}
	}
	if dumped == 0 {
		t.Fatal("dumped nothing: the search proves nothing")
	}
}

func TestActiveQueries(t *testing.T) {
	s, _ := newStore(t)
	q1 := queryRequested("c1", "q1")
	q1.Schema = "model a { id Int @id }"
	q2 := queryRequested("c2", "q2")
	q2.Engine = "none"
	failed := queryObserved("q1", jobs.StatusFailed, "job failed", "jid-1")
	failed.JobState = "FAILED"
	failed.RootException = "java.lang.ArithmeticException: / by zero\n\tat ..."
	applyAll(t, s, requested("c0"), q1, q2, failed)
	got, err := s.ActiveQueries(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("active queries = %+v, want only q1 (q2 has no engine)", got)
	}
	q := got[0]
	if q.QueryID != "q1" || q.Schema != q1.Schema || q.SQLQuery != q1.SQLQuery || q.PipelineName != q1.PipelineName {
		t.Errorf("query = %+v", q)
	}
	want := jobs.QueryStatus{Status: jobs.StatusFailed, Reason: "job failed", JobID: "jid-1", JobState: "FAILED", RootException: failed.RootException}
	if q.Last != want {
		t.Errorf("last = %+v, want %+v", q.Last, want)
	}
	v, err := s.CachedQuery(t.Context(), "q1")
	if err != nil {
		t.Fatal(err)
	}
	if v.JobState != "FAILED" || v.RootException != failed.RootException {
		t.Errorf("view = %+v", v)
	}
	applyAll(t, s, events.ConnectionDeleted{Meta: ev("c9")})
	if got, _ := s.ActiveQueries(t.Context()); len(got) != 0 {
		t.Errorf("queries of a deleted connection still active: %+v", got)
	}
	// Its job is gone with it, as after DELETE /cachedQueries/{id}.
	if v, err := s.CachedQuery(t.Context(), "q1"); err != nil || v.Status != jobs.StatusDeleted || v.JobState != "" {
		t.Errorf("query of a deleted connection: status %s, job state %q (%v)", v.Status, v.JobState, err)
	}
}

func TestConnection_shows_the_whole_capture_observation(t *testing.T) {
	s, _ := newStore(t)
	c := capture(jobs.StatusRunning, "")
	c.Snapshot = &jobs.SnapshotProgress{RowsCopied: 10, RowsEstimate: 20}
	c.Lag = &jobs.StreamLag{Bytes: 512, Seconds: 0.25}
	c.LastError = "replication connection lost"
	c.Warnings = []string{"table public.t has no before-images"}
	applyAll(t, s, requested("c1"), events.ConnectionObserved{Meta: ev(""), Capture: c})
	v := connection(t, s)
	if v.Snapshot == nil || v.Snapshot.RowsCopied != 10 || v.Lag == nil || v.Lag.Bytes != 512 || v.LastError != c.LastError || len(v.Warnings) != 1 {
		t.Errorf("view = %+v", v)
	}
	active, err := s.ActiveConnections(t.Context())
	if err != nil || len(active) != 1 {
		t.Fatalf("active = %+v, %v", active, err)
	}
	if !active[0].Last.Equal(c) {
		t.Errorf("last observation = %+v, want %+v", active[0].Last, c)
	}
}
