package results_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/internal/results"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newStore(t *testing.T) *results.Store {
	t.Helper()
	_, pool := pgtest.NewJobState(t)
	s, err := results.New(pool)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rows(t *testing.T, r results.Result) string {
	t.Helper()
	b, err := json.Marshal(r.Rows)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestApplyReplaceProgress(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if _, err := s.Result(ctx, "q1"); !errors.Is(err, results.ErrNotFound) {
		t.Fatalf("result of an unknown query: %v", err)
	}
	ts := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	p := results.Progress{State: results.StateLive, Positions: map[string]map[int32]int64{"env1.public.orders": {0: 42}}, SourceLSN: 1234, SourceTime: &ts, EventsApplied: 7}
	err := s.Apply(ctx, "q1", []results.Change{
		{Key: []byte(`{"query_id":"q1","region":"eu"}`), Row: []byte(`{"query_id":"q1","region":"eu","n":2}`)},
		{Key: []byte(`{"query_id":"q1","region":"us"}`), Row: []byte(`{"query_id":"q1","region":"us","n":1}`)},
	}, p)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Result(ctx, "q1")
	if err != nil {
		t.Fatal(err)
	}
	if got := rows(t, r); got != `[{"n":2,"region":"eu","query_id":"q1"},{"n":1,"region":"us","query_id":"q1"}]` {
		t.Errorf("rows = %s", got)
	}
	if r.Progress.SourceLSN != 1234 || !r.Progress.SourceTime.Equal(ts) || r.Progress.Positions["env1.public.orders"][0] != 42 || r.Progress.State != results.StateLive {
		t.Errorf("progress = %+v", r.Progress)
	}

	p.SourceLSN = 1300
	if err := s.Apply(ctx, "q1", []results.Change{{Key: []byte(`{"query_id":"q1","region":"us"}`)}}, p); err != nil {
		t.Fatal(err)
	}
	r, _ = s.Result(ctx, "q1")
	if got := rows(t, r); got != `[{"n":2,"region":"eu","query_id":"q1"}]` || r.Progress.SourceLSN != 1300 {
		t.Errorf("after delete: rows = %s, progress %+v", got, r.Progress)
	}

	if err := s.Replace(ctx, "q1", []results.Change{{Key: []byte(`{"query_id":"q1","region":"ap"}`), Row: []byte(`{"query_id":"q1","region":"ap","n":5}`)}}, p); err != nil {
		t.Fatal(err)
	}
	r, _ = s.Result(ctx, "q1")
	if got := rows(t, r); got != `[{"n":5,"region":"ap","query_id":"q1"}]` {
		t.Errorf("after replace: rows = %s", got)
	}

	p.State = results.StateCatchingUp
	if err := s.SetProgress(ctx, "q1", p); err != nil {
		t.Fatal(err)
	}
	if pr, _ := s.Progress(ctx, "q1"); pr.State != results.StateCatchingUp {
		t.Errorf("state = %s", pr.State)
	}
}

func TestDeletedQueryRefusesWrites(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	p := results.Progress{State: results.StateLive}
	row := []results.Change{{Key: []byte(`{"query_id":"q1"}`), Row: []byte(`{"query_id":"q1","n":1}`)}}
	if err := s.Apply(ctx, "q1", row, p); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDeleted(ctx, "q1"); err != nil {
		t.Fatal(err)
	}
	for name, write := range map[string]func() error{
		"apply":    func() error { return s.Apply(ctx, "q1", row, p) },
		"replace":  func() error { return s.Replace(ctx, "q1", row, p) },
		"progress": func() error { return s.SetProgress(ctx, "q1", p) },
	} {
		if err := write(); !errors.Is(err, results.ErrDeleted) {
			t.Errorf("%s after delete: %v, want ErrDeleted", name, err)
		}
	}
	if r, err := s.Result(ctx, "q1"); err != nil || len(r.Rows) != 0 || r.Progress.State != results.StateDeleted {
		t.Errorf("result after delete = %+v, %v", r, err)
	}
	if err := s.Reset(ctx, "q1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, "q1", row, p); err != nil {
		t.Errorf("apply after reset: %v", err)
	}
}

// TestSinceFollowsEveryChange: a reader that holds a result at a version
// reads what changed since, removals included; one that is behind a
// replacement reads the whole result; counters alone do not move the
// version.
func TestSinceFollowsEveryChange(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	key := func(g string) []byte { return []byte(`{"query_id":"q1","group":{"g":"` + g + `"}}`) }
	row := func(g string, n int) []byte {
		return []byte(`{"query_id":"q1","g":"` + g + `","n":` + strconv.Itoa(n) + `}`)
	}
	if d, err := s.Since(ctx, "q1", -1); err != nil || d.Found {
		t.Fatalf("unknown query: %+v, %v", d, err)
	}
	p := results.Progress{State: results.StateLive, SourceLSN: 10}
	if err := s.Replace(ctx, "q1", []results.Change{{Key: key("a"), Row: row("a", 1)}, {Key: key("b"), Row: row("b", 1)}}, p); err != nil {
		t.Fatal(err)
	}
	whole, err := s.Since(ctx, "q1", -1)
	if err != nil || !whole.Whole || len(whole.Rows) != 2 || whole.Version == 0 {
		t.Fatalf("whole result: %+v, %v", whole, err)
	}
	v1 := whole.Version

	p.SourceLSN = 20
	if err := s.Apply(ctx, "q1", []results.Change{{Key: key("a"), Row: row("a", 2)}, {Key: key("b")}, {Key: key("c"), Row: row("c", 1)}}, p); err != nil {
		t.Fatal(err)
	}
	d, err := s.Since(ctx, "q1", v1)
	if err != nil || d.Whole || d.Version <= v1 {
		t.Fatalf("since %d: %+v, %v", v1, d, err)
	}
	got := map[string]string{}
	for _, c := range d.Rows {
		got[string(c.Key)] = string(c.Row)
		if c.Version != d.Version {
			t.Errorf("row %s at version %d, want %d", c.Key, c.Version, d.Version)
		}
	}
	for _, c := range d.Removed {
		got[string(c.Key)] = "removed"
	}
	want := map[string]string{string(key("a")): string(row("a", 2)), string(key("b")): "removed", string(key("c")): string(row("c", 1))}
	if len(got) != len(want) {
		t.Errorf("changes since %d = %v, want %v", v1, got, want)
	}
	for k, w := range want {
		var a, b any
		json.Unmarshal([]byte(got[k]), &a)
		json.Unmarshal([]byte(w), &b)
		if got[k] != w && !reflect.DeepEqual(a, b) {
			t.Errorf("change of %s = %s, want %s", k, got[k], w)
		}
	}

	// Counters alone leave the version; a new source position moves it.
	v2 := d.Version
	p.EventsApplied = 99
	if err := s.SetProgress(ctx, "q1", p); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Since(ctx, "q1", v2); d.Version != v2 || len(d.Rows)+len(d.Removed) != 0 || d.Progress.EventsApplied != 99 {
		t.Errorf("after a counter moved: version %d (was %d), %d changes, events %d", d.Version, v2, len(d.Rows)+len(d.Removed), d.Progress.EventsApplied)
	}
	p.SourceLSN = 30
	if err := s.SetProgress(ctx, "q1", p); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Since(ctx, "q1", v2); d.Version <= v2 {
		t.Errorf("a new source position left the version at %d", d.Version)
	}

	// A reader from before a replacement reads the whole result.
	if err := s.Replace(ctx, "q1", []results.Change{{Key: key("z"), Row: row("z", 1)}}, p); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Since(ctx, "q1", v2); !d.Whole || len(d.Rows) != 1 || len(d.Removed) != 0 {
		t.Errorf("since %d after a replacement: %+v", v2, d)
	}
	// Deleted and created again: the progress is gone, then new.
	if err := s.MarkDeleted(ctx, "q1"); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Since(ctx, "q1", v2); !d.Whole || len(d.Rows) != 0 || d.Progress.State != results.StateDeleted {
		t.Errorf("after delete: %+v", d)
	}
	if err := s.Reset(ctx, "q1"); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Since(ctx, "q1", v2); d.Found {
		t.Errorf("after reset: %+v", d)
	}
}

// TestWriteIsOneTransaction: a write's statements go in one pipeline; one
// that fails leaves nothing of the others, and the next write goes through.
func TestWriteIsOneTransaction(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	p := results.Progress{State: results.StateLive, SourceLSN: 1}
	good := results.Change{Key: []byte(`{"query_id":"q1","group":{"g":1}}`), Row: []byte(`{"query_id":"q1","g":1}`)}
	if err := s.Apply(ctx, "q1", []results.Change{good}, p); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Since(ctx, "q1", -1)
	p.SourceLSN = 2
	bad := results.Change{Key: []byte(`{"query_id":"q1","group":{"g":2}}`), Row: []byte(`{not json`)}
	other := results.Change{Key: []byte(`{"query_id":"q1","group":{"g":3}}`), Row: []byte(`{"query_id":"q1","g":3}`)}
	if err := s.Apply(ctx, "q1", []results.Change{other, bad}, p); err == nil {
		t.Fatal("a row that is not JSON was written")
	}
	after, _ := s.Since(ctx, "q1", -1)
	if len(after.Rows) != 1 || after.Version != before.Version || after.Progress.SourceLSN != 1 {
		t.Errorf("after a failed write: %d rows, version %d (was %d), lsn %d", len(after.Rows), after.Version, before.Version, after.Progress.SourceLSN)
	}
	if err := s.Apply(ctx, "q1", []results.Change{other}, p); err != nil {
		t.Fatalf("the next write: %v", err)
	}
	if err := s.MarkDeleted(ctx, "q1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, "q1", []results.Change{good}, p); !errors.Is(err, results.ErrDeleted) {
		t.Fatalf("apply to a deleted query: %v", err)
	}
	if r, _ := s.Result(ctx, "q1"); len(r.Rows) != 0 {
		t.Errorf("a deleted query got %d rows", len(r.Rows))
	}
}

// TestStaleRowsAreCorrectOnlyIfTheQueryWasLive: a query that goes stale
// while LIVE keeps its rows as the last correct state; one that goes stale
// while catching up has no correct rows.
func TestStaleRowsAreCorrectOnlyIfTheQueryWasLive(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	row := []results.Change{{Key: []byte(`{"query_id":"q1"}`), Row: []byte(`{"query_id":"q1","n":1}`)}}
	if err := s.Replace(ctx, "q1", row, results.Progress{State: results.StateLive}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetProgress(ctx, "q2", results.Progress{State: results.StateCatchingUp}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"q1", "q2", "q3"} {
		for range 2 { // marking it twice changes nothing
			if err := s.MarkStale(ctx, id, "column dropped"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for id, want := range map[string]bool{"q1": true, "q2": false, "q3": false} {
		p, err := s.Progress(ctx, id)
		if err != nil || p.State != results.StateStale || p.RowsCorrect != want {
			t.Errorf("%s: %+v, %v; want STALE with rows correct %v", id, p, err, want)
		}
	}
}

// A query whose environment was deleted before the projection listed it
// (the delete marked nothing) and whose runner then wrote: ForgetDeleted
// clears it once the projection says DELETED, and leaves alone a query
// that is not DELETED, one whose runner holds its lease, and a deleted one
// already cleared. Found by TestSoakEmbeddedWorkersKilled.
func TestForgetDeletedClearsWhatTheDeleteMissed(t *testing.T) {
	_, pool := pgtest.NewJobState(t)
	s, err := results.New(pool)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	query := func(id, status string) {
		if _, err := pool.Exec(ctx, `INSERT INTO cached_queries (query_id, environment_id, engine, status, created_at, updated_at)
			VALUES ($1, 'env1', 'embedded', $2, now(), now())
			ON CONFLICT (query_id) DO UPDATE SET status = EXCLUDED.status`, id, status); err != nil {
			t.Fatal(err)
		}
	}
	live := func(id string) {
		if err := s.Apply(ctx, id, []results.Change{
			{Key: []byte(`{"query_id":"` + id + `","g":1}`), Row: []byte(`{"query_id":"` + id + `","g":1,"n":2}`)},
		}, results.Progress{State: results.StateLive}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetSchemaChecked(ctx, []string{id}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	count := func(sql, id string) int {
		var n int
		if err := pool.QueryRow(ctx, sql, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	kept := func(id string) string {
		return fmt.Sprintf("%d rows, %d schema checks, %d progress not DELETED",
			count(`SELECT count(*) FROM query_results WHERE query_id = $1`, id),
			count(`SELECT count(*) FROM query_schema_checks WHERE query_id = $1`, id),
			count(`SELECT count(*) FROM query_progress WHERE query_id = $1 AND state <> 'DELETED'`, id))
	}
	query("missed", "DELETED")
	live("missed")
	query("running", "RUNNING")
	live("running")
	query("again", "DELETED") // created again: progress reset, projection behind
	if err := s.SetSchemaChecked(ctx, []string{"again"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	query("done", "DELETED")
	live("done")
	if err := s.MarkDeleted(ctx, "done"); err != nil {
		t.Fatal(err)
	}
	// A runner that has not noticed the delete yet holds its lease.
	query("leased", "DELETED")
	live("leased")
	key := func(id, _ string) int64 { return 7919*int64(id[0]) + int64(len(id)) }
	runner, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer runner.Release()
	if _, err := runner.Exec(ctx, `SELECT pg_advisory_lock($1)`, key("leased", "env1")); err != nil {
		t.Fatal(err)
	}

	n, err := s.ForgetDeleted(ctx, "embedded", key)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("ForgetDeleted cleared %d queries, want 2 (missed, again)", n)
	}
	for id, want := range map[string]string{
		"missed":  "0 rows, 0 schema checks, 0 progress not DELETED",
		"running": "1 rows, 1 schema checks, 1 progress not DELETED",
		"again":   "0 rows, 0 schema checks, 0 progress not DELETED",
		"done":    "0 rows, 0 schema checks, 0 progress not DELETED",
		"leased":  "1 rows, 1 schema checks, 1 progress not DELETED",
	} {
		if got := kept(id); got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
	// The missed one is gone, as if it was never run: no marker stops
	// it should it be the query created again (the projection lagging);
	// the one created again (no progress) can write once the projection
	// has it.
	if _, err := s.Result(ctx, "missed"); !errors.Is(err, results.ErrNotFound) {
		t.Errorf("result of the cleared query: %v, want ErrNotFound", err)
	}
	query("again", "PENDING")
	if err := s.Apply(ctx, "again", nil, results.Progress{State: results.StateCatchingUp}); err != nil {
		t.Errorf("write to the query created again: %v", err)
	}
	// Once its runner let go, the leased one is cleared.
	if _, err := runner.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key("leased", "env1")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ForgetDeleted(ctx, "embedded", key); err != nil || n != 1 || kept("leased") != "0 rows, 0 schema checks, 0 progress not DELETED" {
		t.Errorf("ForgetDeleted after the lease ended: %d, %v; leased: %s", n, err, kept("leased"))
	}
	// A deleted query's schema check is not recorded again.
	if err := s.SetSchemaChecked(ctx, []string{"done"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := kept("done"); got != "0 rows, 0 schema checks, 0 progress not DELETED" {
		t.Errorf("done after a schema check: %s", got)
	}
	if n, err := s.ForgetDeleted(ctx, "embedded", key); err != nil || n != 0 {
		t.Errorf("second ForgetDeleted: %d, %v; want 0", n, err)
	}
}
