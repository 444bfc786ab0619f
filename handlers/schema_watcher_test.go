package handlers

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/pgsource"
	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/internal/sourcepolicy"
	"github.com/cdcq/cdcq/internal/sourceschema"
	"github.com/cdcq/cdcq/projections"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// loopbackSource reaches the test server, which listens on 127.0.0.1; the
// default source policy refuses loopback.
var loopbackSource = func() *pgsource.Client {
	p, err := sourcepolicy.New(sourcepolicy.Rules{Allow: []string{sourcepolicy.WordLoopback}})
	if err != nil {
		panic(err)
	}
	c, err := pgsource.New(pgsource.Config{Policy: p})
	if err != nil {
		panic(err)
	}
	return c
}()

const watchedSchema = `datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

model Order {
  id     Int     @id
  region String
  total  Decimal? @db.Decimal(12, 2)

  @@map("orders")
}
`

// stoppingProcessor records the queries the watcher stops.
type stoppingProcessor struct {
	fakeProcessor
	mu      sync.Mutex
	stopped []string
	cleanAt []time.Time
	opts    sourceschema.Options
}

func (p *stoppingProcessor) StopBrokenQuery(_ context.Context, spec QuerySpec, reason string, cleanAt time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = append(p.stopped, spec.QueryID+": "+reason)
	p.cleanAt = append(p.cleanAt, cleanAt)
	return nil
}

func (p *stoppingProcessor) SourceSchemaOptions() sourceschema.Options { return p.opts }

// The watcher lets compatible changes pass, records each intact check,
// and stops a broken query once, with a reason that names the change and
// the time of the last intact check, even while the projection still
// says RUNNING.
func TestSchemaWatcherStopsBrokenQueriesOnce(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	src, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	if _, err := src.Exec(ctx, `CREATE TABLE orders (id integer PRIMARY KEY, region text NOT NULL, total numeric(12,2))`); err != nil {
		t.Fatal(err)
	}
	s := newSealer(t)
	sum := `SELECT region, sum(total) AS s FROM orders GROUP BY region`
	count := `SELECT count(*) AS n FROM orders`
	running := jobs.QueryStatus{Status: jobs.StatusRunning, JobID: "job-1"}
	qs := []projections.ActiveQuery{
		{QueryID: "q_sum", EnvironmentID: "env1", Engine: "fakeproc", Schema: watchedSchema, SQLQuery: sum, Last: running},
		{QueryID: "q_count", EnvironmentID: "env1", Engine: "fakeproc", Schema: watchedSchema, SQLQuery: count, Last: running},
	}
	rec := &recorder{}
	proc := &stoppingProcessor{}
	var mu sync.Mutex
	checked := map[string]time.Time{}
	w, err := NewSchemaWatcher(SchemaWatcherConfig{
		Connections: listFunc(func(context.Context) ([]projections.ActiveConnection, error) {
			return []projections.ActiveConnection{{EnvironmentID: "env1", ConnectionSealed: s.Seal(dsn, "env1")}}, nil
		}),
		Queries:   queryListFunc(func(context.Context) ([]projections.ActiveQuery, error) { return qs, nil }),
		Processor: proc, Events: rec, Sealer: s, Source: loopbackSource,
		Checked: func(_ context.Context, ids []string, at time.Time) error {
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				checked[id] = at
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.closeAll()
	poll := func() {
		t.Helper()
		if err := w.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ddl := func(sql string) {
		t.Helper()
		if _, err := src.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}

	poll()
	first := checked["q_sum"]
	if first.IsZero() || checked["q_count"].IsZero() {
		t.Fatalf("intact checks recorded: %v", checked)
	}
	// Compatible for the embedded engine: nothing stops.
	ddl(`ALTER TABLE orders ADD COLUMN channel text, ALTER COLUMN total TYPE numeric(14,3)`)
	poll()
	if len(proc.stopped) != 0 || len(rec.events) != 0 || !checked["q_sum"].After(first) {
		t.Fatalf("after compatible changes: stopped %v, events %v, checked %v", proc.stopped, rec.names(), checked)
	}
	lastIntact := checked["q_sum"]
	// The column q_sum reads renamed: q_sum stops, q_count goes on.
	ddl(`ALTER TABLE orders RENAME COLUMN total TO amount`)
	poll()
	poll() // the projection still says RUNNING: not stopped twice
	if len(proc.stopped) != 1 || !strings.HasPrefix(proc.stopped[0], "q_sum: column orders.total was renamed to amount; create the cached query again") {
		t.Fatalf("stopped %v", proc.stopped)
	}
	if !proc.cleanAt[0].Equal(lastIntact) {
		t.Errorf("stopped with the last intact check at %v, want %v", proc.cleanAt[0], lastIntact)
	}
	if len(rec.events) != 1 {
		t.Fatalf("events %v, want one", rec.names())
	}
	o := rec.events[0].(events.CachedQueryObserved)
	if o.QueryID != "q_sum" || o.Status != jobs.StatusFailed || o.JobState != jobs.JobStateSchemaChanged || o.JobID != "job-1" {
		t.Errorf("event %+v", o)
	}
	if !checked["q_count"].After(lastIntact) || !checked["q_sum"].Equal(lastIntact) {
		t.Errorf("intact checks after the rename: %v", checked)
	}
}

// A Flink-like engine reads declared types and needs before-images: a
// wider numeric and a lowered replica identity stop its query.
func TestSchemaWatcherMindsTheEnginesOptions(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	src, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	if _, err := src.Exec(ctx, `CREATE TABLE orders (id integer PRIMARY KEY, region text NOT NULL, total numeric(12,2));
		ALTER TABLE orders REPLICA IDENTITY FULL`); err != nil {
		t.Fatal(err)
	}
	s := newSealer(t)
	running := jobs.QueryStatus{Status: jobs.StatusRunning, JobID: "job-1"}
	qs := []projections.ActiveQuery{{QueryID: "q_sum", EnvironmentID: "env1", Engine: "fakeproc", Schema: watchedSchema,
		SQLQuery: `SELECT region, sum(total) AS s FROM orders GROUP BY region`, Last: running}}
	for _, tc := range []struct{ ddl, reason string }{
		{`ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,3)`, "column orders.total changed type from numeric(12,2) to numeric(12,3)"},
		{`ALTER TABLE orders REPLICA IDENTITY DEFAULT`, "the replica identity of table orders changed from FULL to DEFAULT"},
	} {
		proc := &stoppingProcessor{opts: sourceschema.Options{ExactTypes: true, NeedBeforeImages: true}}
		w, err := NewSchemaWatcher(SchemaWatcherConfig{
			Connections: listFunc(func(context.Context) ([]projections.ActiveConnection, error) {
				return []projections.ActiveConnection{{EnvironmentID: "env1", ConnectionSealed: s.Seal(dsn, "env1")}}, nil
			}),
			Queries:   queryListFunc(func(context.Context) ([]projections.ActiveQuery, error) { return qs, nil }),
			Processor: proc, Events: &recorder{}, Sealer: s, Source: loopbackSource,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := src.Exec(ctx, tc.ddl); err != nil {
			t.Fatal(err)
		}
		if err := w.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		w.closeAll()
		if len(proc.stopped) != 1 || !strings.Contains(proc.stopped[0], tc.reason) {
			t.Errorf("%s: stopped %v, want %q", tc.ddl, proc.stopped, tc.reason)
		}
		// Back as it was, for the next case.
		if _, err := src.Exec(ctx, `ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,2), REPLICA IDENTITY FULL`); err != nil {
			t.Fatal(err)
		}
	}
}

// A source that cannot be read is tried again later, ever less often; the
// other environments are not held up meanwhile.
func TestSchemaWatcherBacksOffAnUnreachableSource(t *testing.T) {
	ctx := context.Background()
	s := newSealer(t)
	running := jobs.QueryStatus{Status: jobs.StatusRunning, JobID: "job-1"}
	qs := []projections.ActiveQuery{{QueryID: "q_sum", EnvironmentID: "env1", Engine: "fakeproc", Schema: watchedSchema,
		SQLQuery: `SELECT count(*) AS n FROM orders`, Last: running}}
	now := time.Unix(1000, 0)
	w, err := NewSchemaWatcher(SchemaWatcherConfig{
		Connections: listFunc(func(context.Context) ([]projections.ActiveConnection, error) {
			return []projections.ActiveConnection{{EnvironmentID: "env1", ConnectionSealed: s.Seal("postgres://cdcq:secret@127.0.0.1:1/shop?connect_timeout=1", "env1")}}, nil
		}),
		Queries:   queryListFunc(func(context.Context) ([]projections.ActiveQuery, error) { return qs, nil }),
		Processor: &stoppingProcessor{}, Events: &recorder{}, Sealer: s, Now: func() time.Time { return now }, Source: loopbackSource,
	})
	if err != nil {
		t.Fatal(err)
	}
	var delays []time.Duration
	for range 4 {
		if err := w.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		delays = append(delays, w.retry["env1"].delay)
		now = now.Add(w.retry["env1"].delay)
	}
	if want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(delays, want) {
		t.Errorf("delays %v, want %v", delays, want)
	}
	// Before the delay is over, nothing is tried.
	before := w.retry["env1"]
	now = now.Add(-time.Millisecond)
	if err := w.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if w.retry["env1"] != before {
		t.Errorf("tried again before the delay: %+v, was %+v", w.retry["env1"], before)
	}
}
