package handlers

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/secret"
)

// memBindings is Bindings in memory.
type memBindings struct {
	mu sync.Mutex
	m  map[string]Binding
}

func (b *memBindings) Bound(_ context.Context, env string) (Binding, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	x, ok := b.m[env]
	return x, ok, nil
}

func (b *memBindings) Bind(_ context.Context, env, sealed string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]Binding{}
	}
	x := b.m[env]
	x.Sealed = sealed
	b.m[env] = x
	return nil
}

func (b *memBindings) Establish(_ context.Context, env string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if x, ok := b.m[env]; ok {
		x.Established = true
		b.m[env] = x
	}
	return nil
}

func (b *memBindings) Unbind(_ context.Context, env string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, env)
	return nil
}

// bindingRig is a worker on fakes with in-memory bindings.
type bindingRig struct {
	w   *Worker
	c   *fakeCapture
	p   *fakeProcessor
	rec *recorder
	s   *secret.Sealer
	b   *memBindings
}

func newBindingRig(t *testing.T, c *fakeCapture) bindingRig {
	t.Helper()
	r := bindingRig{c: c, p: &fakeProcessor{}, rec: &recorder{}, s: newSealer(t), b: &memBindings{}}
	var err error
	r.w, err = NewWorker(WorkerConfig{Capture: c, Processor: r.p, Events: r.rec, Sealer: r.s, Bindings: r.b})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sealedConn(s *secret.Sealer, env, plain string) commands.Connection {
	return commands.Connection{Sealed: s.Seal(plain, env), Redacted: "(redacted)"}
}

// An environment stays bound to the database it was created with: a create
// or a cached query naming another database is rejected and touches
// nothing, a delete acts on the bound database, and a new password for the
// same database rotates the stored one.
func TestEnvironmentIsBoundToItsDatabase(t *testing.T) {
	const (
		first   = "postgres://alice:pw1@db:5432/shop"
		rotated = "postgres://alice:pw2@db:5432/shop?sslmode=require"
	)
	ctx := context.Background()
	r := newBindingRig(t, &fakeCapture{status: jobs.CaptureStatus{Status: jobs.StatusRunning}})
	w, c, p, rec, s, b := r.w, r.c, r.p, r.rec, r.s, r.b
	meta := func(id string) commands.Meta { return commands.Meta{CommandID: id, EnvironmentID: "env1"} }
	if err := w.Handle(ctx, commands.CreateDatabaseConnection{Meta: meta("c1"), Connection: sealedConn(s, "env1", first)}); err != nil {
		t.Fatal(err)
	}
	if bound, _, _ := b.Bound(ctx, "env1"); bound.Sealed == "" || !bound.Established {
		t.Fatalf("create left the binding %+v, want it established", bound)
	}

	for _, other := range []struct{ conn, differ string }{
		{"postgres://alice:pw1@other:5432/shop", "host"},
		{"postgres://alice:pw1@db:5433/shop", "port"},
		{"postgres://alice:pw1@db:5432/crm", "database"},
		{"postgres://bob:pw1@db:5432/shop", "user"},
	} {
		rec.events, c.calls, c.specs = nil, nil, nil
		for _, cmd := range []commands.Command{
			commands.CreateDatabaseConnection{Meta: meta("x-" + other.differ), Connection: sealedConn(s, "env1", other.conn)},
			commands.DeleteDatabaseConnection{Meta: meta("y-" + other.differ), Connection: sealedConn(s, "env1", other.conn)},
		} {
			if err := w.Handle(ctx, cmd); err != nil {
				t.Fatalf("%s naming another %s: %v", cmd.CommandName(), other.differ, err)
			}
		}
		if got := strings.Join(rec.names(), " "); got != "CommandRejected CommandRejected" {
			t.Fatalf("another %s: events %q, want two CommandRejected", other.differ, got)
		}
		if len(c.calls) != 0 || len(p.calls) != 0 {
			t.Fatalf("another %s: the engines were called: capture %v, processor %v", other.differ, c.calls, p.calls)
		}
		for _, ev := range rec.events {
			if r := reasonOf(ev); !strings.Contains(r, "its "+other.differ+" differs") || !strings.Contains(r, "delete the environment first") ||
				strings.Contains(r, "pw1") {
				t.Errorf("reason %q", r)
			}
		}
	}

	// A new password for the same database rotates the stored one.
	rec.events, c.calls, c.specs = nil, nil, nil
	if err := w.Handle(ctx, commands.CreateDatabaseConnection{Meta: meta("c2"), Connection: sealedConn(s, "env1", rotated)}); err != nil {
		t.Fatal(err)
	}
	if len(c.specs) != 1 || c.specs[0].ConnectionString != rotated {
		t.Fatalf("rotation ensured %d specs", len(c.specs))
	}
	bound, _, _ := b.Bound(ctx, "env1")
	if plain, err := s.Open(bound.Sealed, "env1"); err != nil || plain != rotated {
		t.Fatalf("stored connection after rotation does not open to the new one (err %v)", err)
	}

	// A delete acts on the bound connection string, not the command's
	// (which names the same database with an old password), then unbinds.
	rec.events, c.calls, c.specs = nil, nil, nil
	if err := w.Handle(ctx, commands.DeleteDatabaseConnection{Meta: meta("d1"), Connection: sealedConn(s, "env1", first)}); err != nil {
		t.Fatal(err)
	}
	if len(c.specs) != 1 || c.specs[0].ConnectionString != rotated {
		t.Fatalf("delete did not act on the bound connection string")
	}
	if _, ok, _ := b.Bound(ctx, "env1"); ok {
		t.Fatal("delete left the environment bound")
	}
	// Deleted, the environment may capture another database.
	rec.events = nil
	if err := w.Handle(ctx, commands.CreateDatabaseConnection{Meta: meta("c3"), Connection: sealedConn(s, "env1", "postgres://bob:x@other:5432/crm")}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rec.names(), " "); got != "ConnectionRequested ConnectionObserved" {
		t.Fatalf("create after delete: events %q", got)
	}
}

// A cached query naming another database fails without touching the
// capture, and says why.
func TestCachedQueryForAnotherDatabaseIsRejected(t *testing.T) {
	ctx := context.Background()
	r := newBindingRig(t, &fakeCapture{status: jobs.CaptureStatus{Status: jobs.StatusRunning}})
	w, c, p, rec, s, b := r.w, r.c, r.p, r.rec, r.s, r.b
	b.Bind(ctx, "env1", s.Seal("postgres://alice:pw@db:5432/shop", "env1"))
	b.Establish(ctx, "env1")
	err := w.Handle(ctx, commands.CreateCachedQuery{Meta: commands.Meta{CommandID: "q1", EnvironmentID: "env1"},
		Connection: sealedConn(s, "env1", "postgres://alice:pw@db:5432/crm"), QueryID: "q_1",
		Schema: testSchema, SQLQuery: "SELECT count(*) FROM a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.calls) != 0 || len(p.calls) != 0 {
		t.Fatalf("engines called: capture %v, processor %v", c.calls, p.calls)
	}
	if got := strings.Join(rec.names(), " "); got != "CachedQueryRequested CommandRejected CachedQueryObserved" {
		t.Fatalf("events %q", got)
	}
}

// A sealed value copied from another environment's command does not open.
func TestSealedValueOfAnotherEnvironmentFailsTheCommand(t *testing.T) {
	ctx := context.Background()
	r := newBindingRig(t, &fakeCapture{})
	w, c, rec, s := r.w, r.c, r.rec, r.s
	stolen := sealedConn(s, "tenant_a", "postgres://alice:pw@db:5432/shop")
	if err := w.Handle(ctx, commands.CreateDatabaseConnection{Meta: commands.Meta{CommandID: "c1", EnvironmentID: "tenant_b"}, Connection: stolen}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rec.names(), " "); got != "ConnectionFailed" || len(c.calls) != 0 {
		t.Fatalf("events %q, capture calls %v", got, c.calls)
	}
	if r := reasonOf(rec.events[0]); !strings.Contains(r, "malformed") || !strings.Contains(r, "another environment") {
		t.Fatalf("reason %q", r)
	}
}

// reasonOf is the reason an event carries, if it carries one.
func reasonOf(ev events.Event) string {
	switch e := ev.(type) {
	case events.CommandRejected:
		return e.Reason
	case events.ConnectionFailed:
		return e.Reason
	}
	return ""
}

// A create that failed before the engine took it up (a host that cannot
// be reached) leaves nothing in the source: a create naming another
// database replaces its binding. A retryable failure may have left
// something, so it establishes the binding.
func TestFailedCreateGivesWayToAnotherDatabase(t *testing.T) {
	ctx := context.Background()
	r := newBindingRig(t, &fakeCapture{ensureErr: jobs.Terminalf("cannot reach a PostgreSQL server at typo:5432"), status: jobs.CaptureStatus{Status: jobs.StatusRunning}})
	w, c, rec, s, b := r.w, r.c, r.rec, r.s, r.b
	create := func(id, conn string) {
		t.Helper()
		if err := w.Handle(ctx, commands.CreateDatabaseConnection{Meta: commands.Meta{CommandID: id, EnvironmentID: "env1"},
			Connection: sealedConn(s, "env1", conn)}); err != nil && c.ensureErr == nil {
			t.Fatal(err)
		}
	}
	create("c1", "postgres://alice:pw@typo:5432/shop")
	if x, ok, _ := b.Bound(ctx, "env1"); !ok || x.Established {
		t.Fatalf("after a create that failed terminally: %+v %v, want bound, not established", x, ok)
	}
	c.ensureErr = nil
	rec.events = nil
	create("c2", "postgres://alice:pw@db:5432/shop")
	if got := strings.Join(rec.names(), " "); got != "ConnectionRequested ConnectionObserved" {
		t.Fatalf("create on the corrected host: events %q", got)
	}
	x, _, _ := b.Bound(ctx, "env1")
	if plain, _ := s.Open(x.Sealed, "env1"); plain != "postgres://alice:pw@db:5432/shop" || !x.Established {
		t.Fatalf("binding after the corrected create: established %v", x.Established)
	}
	// Now established: another database is refused.
	rec.events = nil
	create("c3", "postgres://alice:pw@typo:5432/shop")
	if got := strings.Join(rec.names(), " "); got != "CommandRejected" {
		t.Fatalf("create on another host once established: events %q", got)
	}

	// A retryable failure establishes the binding.
	c.ensureErr = errors.New("kafka connect: 503")
	if err := w.Handle(ctx, commands.CreateDatabaseConnection{Meta: commands.Meta{CommandID: "d1", EnvironmentID: "env2"},
		Connection: sealedConn(s, "env2", "postgres://alice:pw@db:5432/shop")}); err == nil {
		t.Fatal("a retryable engine error was not returned")
	}
	if x, ok, _ := b.Bound(ctx, "env2"); !ok || !x.Established {
		t.Fatalf("after a retryable failure: %+v, want established", x)
	}
}

// A connection string stored by an earlier cdcq with a parameter it now
// refuses still binds the environment to its database: another database is
// refused, and a delete with a current string for the same database acts
// on that string and unbinds (the stored one cannot be used any more).
func TestStoredStringWithARefusedParameterStillBinds(t *testing.T) {
	ctx := context.Background()
	r := newBindingRig(t, &fakeCapture{status: jobs.CaptureStatus{Status: jobs.StatusRunning}})
	w, c, rec, s, b := r.w, r.c, r.rec, r.s, r.b
	b.Bind(ctx, "env1", s.Seal("postgres://alice:pw@db:5432/shop?target_session_attrs=read-write", "env1"))
	b.Establish(ctx, "env1")
	meta := func(id string) commands.Meta { return commands.Meta{CommandID: id, EnvironmentID: "env1"} }

	if err := w.Handle(ctx, commands.DeleteDatabaseConnection{Meta: meta("d0"), Connection: sealedConn(s, "env1", "postgres://alice:pw@other:5432/shop")}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rec.names(), " "); got != "CommandRejected" || len(c.calls) != 0 {
		t.Fatalf("delete naming another host: events %q, capture calls %v", got, c.calls)
	}
	rec.events = nil
	const current = "postgres://alice:pw2@db:5432/shop"
	if err := w.Handle(ctx, commands.DeleteDatabaseConnection{Meta: meta("d1"), Connection: sealedConn(s, "env1", current)}); err != nil {
		t.Fatal(err)
	}
	if len(c.specs) != 1 || c.specs[0].ConnectionString != current {
		t.Fatalf("delete acted on %d specs, want the command's string", len(c.specs))
	}
	if _, ok, _ := b.Bound(ctx, "env1"); ok {
		t.Fatalf("delete left the environment bound; events %q", rec.names())
	}
}

// A command for an environment that exists whose sealed value does not
// open (forged on the topic with a value sealed for another environment)
// is rejected: the environment's status is not the forger's to change,
// and nothing is touched.
func TestUnopenableCommandForAnExistingEnvironmentIsRejected(t *testing.T) {
	ctx := context.Background()
	r := newBindingRig(t, &fakeCapture{status: jobs.CaptureStatus{Status: jobs.StatusRunning}})
	w, c, p, rec, s, b := r.w, r.c, r.p, r.rec, r.s, r.b
	b.Bind(ctx, "shop", s.Seal("postgres://alice:pw@db:5432/shop", "shop"))
	b.Establish(ctx, "shop")
	forged := sealedConn(s, "other", "postgres://alice:pw@db:5432/shop")
	meta := func(id string) commands.Meta { return commands.Meta{CommandID: id, EnvironmentID: "shop"} }
	for _, cmd := range []commands.Command{
		commands.DeleteDatabaseConnection{Meta: meta("d1"), Connection: forged},
		commands.CreateDatabaseConnection{Meta: meta("c1"), Connection: forged},
	} {
		if err := w.Handle(ctx, cmd); err != nil {
			t.Fatalf("%s: %v", cmd.CommandName(), err)
		}
	}
	if got := strings.Join(rec.names(), " "); got != "CommandRejected CommandRejected" {
		t.Fatalf("events %q, want two CommandRejected and no ConnectionFailed", got)
	}
	if r := reasonOf(rec.events[0]); !strings.Contains(r, "another environment") || !strings.Contains(r, "nothing was changed") {
		t.Errorf("reason %q", r)
	}
	if len(c.calls) != 0 || len(p.calls) != 0 {
		t.Fatalf("engines called: capture %v, processor %v", c.calls, p.calls)
	}
	if _, ok, _ := b.Bound(ctx, "shop"); !ok {
		t.Fatal("the forged delete unbound the environment")
	}
}
