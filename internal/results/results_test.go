package results_test

import (
	"encoding/json"
	"errors"
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
