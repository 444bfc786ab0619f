package service

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/handlers"
	"github.com/cdcq/cdcq/internal/jobs"
)

// countingCapture is an in-memory capture engine that counts calls per
// environment, to check how often commands are carried out.
type countingCapture struct {
	mu      sync.Mutex
	ensures map[string]int
	deletes map[string]int
}

func newCountingCapture() *countingCapture {
	return &countingCapture{ensures: map[string]int{}, deletes: map[string]int{}}
}

func (c *countingCapture) Engine() string { return "counting" }

func (c *countingCapture) Ensure(_ context.Context, spec handlers.CaptureSpec) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ensures[spec.EnvironmentID]++
	return nil
}

func (c *countingCapture) Observe(_ context.Context, spec handlers.CaptureSpec) (jobs.CaptureStatus, error) {
	return jobs.CaptureStatus{Status: jobs.StatusRunning}, nil
}

func (c *countingCapture) Delete(_ context.Context, spec handlers.CaptureSpec) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deletes[spec.EnvironmentID]++
	return nil
}

func (c *countingCapture) counts() (map[string]int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, d := map[string]int{}, map[string]int{}
	for k, v := range c.ensures {
		e[k] = v
	}
	for k, v := range c.deletes {
		d[k] = v
	}
	return e, d
}

const sourceConn = "postgres://alice:pw@127.0.0.1:5432/shop"

// refusingCapture fails every create terminally, as an engine does for a
// configuration it cannot use.
type refusingCapture struct{ *countingCapture }

const refusal = "wal_level is replica; set wal_level=logical and restart the server"

func (*refusingCapture) Ensure(context.Context, handlers.CaptureSpec) error {
	return jobs.Terminalf(refusal)
}

// Observe says what a real engine says of a capture it refused: not the
// counting capture's RUNNING, which the status poller would record over
// the failure.
func (*refusingCapture) Observe(context.Context, handlers.CaptureSpec) (jobs.CaptureStatus, error) {
	return jobs.CaptureStatus{Status: jobs.StatusFailed, Reason: refusal}, nil
}

func TestTerminalCaptureFailureFailsJobWithReason(t *testing.T) {
	s := startSystem(t, WorkerDeps{Capture: &refusingCapture{newCountingCapture()}, Processor: noProcessor{}})
	res := s.postForm("/createDatabaseConnection", map[string]string{"connectionString": sourceConn, "environmentId": "env1"})
	if res.status != http.StatusCreated || res.header.Get("Location") != "/connections/env1" {
		t.Fatalf("create: %d %v %s", res.status, res.header, res.body)
	}
	m := s.waitForStatus(sourceConn, "env1", "FAILED", func(m map[string]any) bool { return m["status"] == "FAILED" })
	if reason, _ := m["reason"].(string); reason != refusal {
		t.Fatalf("reason = %q", reason)
	}
	if m["id"] != "env1" || m["name"] != "cdcq-env1" {
		t.Fatalf("id/name = %v/%v", m["id"], m["name"])
	}

	res = s.postJSON("/createCachedQuery", map[string]string{"connectionString": sourceConn, "environmentId": "env1",
		"schema": "model a {\n  id Int @id\n}\n", "sqlQuery": "SELECT count(*) FROM a"})
	if res.status != http.StatusCreated || !strings.HasPrefix(res.header.Get("Location"), "/cachedQueries/q_") {
		t.Fatalf("createCachedQuery: %d %v %s", res.status, res.header, res.body)
	}
	s.waitForStatus(sourceConn, "env1", "query FAILED", func(m map[string]any) bool {
		qs, _ := m["cachedQueries"].([]any)
		if len(qs) != 1 {
			return false
		}
		q := qs[0].(map[string]any)
		reason, _ := q["reason"].(string)
		return q["status"] == "FAILED" && strings.Contains(reason, "wal_level is replica")
	})
}

// Two workers in one consumer group split the partitions, and every
// command is carried out exactly once.
func TestTwoWorkersCarryOutEachCommandOnce(t *testing.T) {
	a, b := newCountingCapture(), newCountingCapture()
	s := startSystem(t,
		WorkerDeps{Capture: a, Processor: noProcessor{}},
		WorkerDeps{Capture: b, Processor: noProcessor{}},
	)
	const n = 40
	for i := 0; i < n; i++ {
		env := fmt.Sprintf("env%d", i)
		body := map[string]string{"connectionString": sourceConn, "environmentId": env}
		var res response
		if i%2 == 0 {
			res = s.postForm("/createDatabaseConnection", body)
		} else {
			res = s.postJSON("/createDatabaseConnection", body)
		}
		if res.status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", env, res.status, res.body)
		}
		if res := s.postJSON("/deleteDatabaseConnection", body); res.status != http.StatusAccepted {
			t.Fatalf("delete %s: %d %s", env, res.status, res.body)
		}
	}
	for i := 0; i < n; i++ {
		env := fmt.Sprintf("env%d", i)
		s.waitForStatus(sourceConn, env, env+" DELETED", func(m map[string]any) bool { return m["status"] == "DELETED" })
	}
	ea, da := a.counts()
	eb, db := b.counts()
	if len(ea) == 0 || len(eb) == 0 {
		t.Errorf("work not split: worker A created %d environments, worker B %d", len(ea), len(eb))
	}
	for i := 0; i < n; i++ {
		env := fmt.Sprintf("env%d", i)
		if got := ea[env] + eb[env]; got != 1 {
			t.Errorf("%s: created %d times, want 1", env, got)
		}
		if got := da[env] + db[env]; got != 1 {
			t.Errorf("%s: deleted %d times, want 1", env, got)
		}
		if ea[env] != da[env] {
			t.Errorf("%s: create and delete handled by different workers; per-environment order is not kept", env)
		}
	}
}

// A message that is not a valid command goes to the dead-letter topic with
// its reason, shows up in checkJobStatus, and the worker carries on.
func TestMalformedCommandIsDeadLettered(t *testing.T) {
	capture := newCountingCapture()
	s := startSystem(t, WorkerDeps{Capture: capture, Processor: noProcessor{}})
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.inf.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	bad := []*kgo.Record{
		{Topic: s.inf.Names.Commands, Key: []byte("env7"), Value: []byte(`{"commandId": "c-bad-1", "environmentId": "env7"`),
			Headers: []kgo.RecordHeader{{Key: "name", Value: []byte("CreateDatabaseConnection")}, {Key: "environment_id", Value: []byte("env7")}, {Key: "command_id", Value: []byte("c-bad-1")}}},
		{Topic: s.inf.Names.Commands, Key: []byte("env7"), Value: []byte(`{}`),
			Headers: []kgo.RecordHeader{{Key: "name", Value: []byte("DropEverything")}, {Key: "environment_id", Value: []byte("env7")}}},
	}
	if err := cl.ProduceSync(context.Background(), bad...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// A valid command for the same environment, after the bad ones, is
	// still carried out.
	if res := s.postForm("/createDatabaseConnection", map[string]string{"connectionString": sourceConn, "environmentId": "env7"}); res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	m := s.waitForStatus(sourceConn, "env7", "RUNNING with two rejected commands", func(m map[string]any) bool {
		rc, _ := m["rejectedCommands"].([]any)
		return m["status"] == "RUNNING" && len(rc) == 2
	})
	rc := m["rejectedCommands"].([]any)
	reasons := fmt.Sprint(rc)
	if !strings.Contains(reasons, "not valid JSON") || !strings.Contains(reasons, "unknown command name") {
		t.Errorf("rejected command reasons = %s", reasons)
	}
	var dead []*kgo.Record
	waitFor(t, 10*time.Second, "two dead letters", func() bool {
		dead = s.records(s.inf.Names.CommandsDead)
		return len(dead) == 2
	})
	for _, r := range dead {
		if header(r, "reason_poisoned") == "" {
			t.Errorf("dead letter without reason: %s", r.Value)
		}
		if string(r.Key) != "env7" {
			t.Errorf("dead letter key = %q", r.Key)
		}
	}
	if e, _ := capture.counts(); e["env7"] != 1 {
		t.Errorf("env7 created %d times, want 1", e["env7"])
	}
}

// A cached query whose SQL does not resolve against its schema is answered
// with 422 and the position, and nothing is published.
func TestCreateCachedQueryRejectsUnknownColumn(t *testing.T) {
	s := startSystem(t, WorkerDeps{Capture: newCountingCapture(), Processor: noProcessor{}})
	schema := "model Order {\n  id    Int @id\n  total Int\n  @@map(\"orders\")\n}\n"
	res := s.postJSON("/createCachedQuery", map[string]string{"connectionString": sourceConn, "environmentId": "env1",
		"schema": schema, "sqlQuery": "SELECT sum(totl)\nFROM orders"})
	if res.status != http.StatusUnprocessableEntity {
		t.Fatalf("status = %d %s", res.status, res.body)
	}
	e := res.json(t)["error"].(map[string]any)
	if e["field"] != "sqlQuery" || e["line"] != float64(1) || e["column"] != float64(12) || !strings.Contains(e["message"].(string), `did you mean "total"`) {
		t.Errorf("error = %v", e)
	}
	if recs := s.records(s.inf.Names.Commands); len(recs) != 0 {
		t.Errorf("%d commands published", len(recs))
	}
}
