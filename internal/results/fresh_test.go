package results_test

import (
	"errors"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/results"
)

// freshThrough reads a query's fresh-through time from its progress: the
// zero time when it was never set.
func freshThrough(t *testing.T, s *results.Store, queryID string) (time.Time, error) {
	t.Helper()
	p, err := s.Progress(t.Context(), queryID)
	if err != nil || p.FreshThrough == nil {
		return time.Time{}, err
	}
	return *p.FreshThrough, nil
}

func TestFreshThrough(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if _, err := freshThrough(t, s, "q1"); !errors.Is(err, results.ErrNotFound) {
		t.Fatalf("fresh-through of an unknown query: %v", err)
	}
	// Catching up: not fresh through anything yet.
	if err := s.SetProgress(ctx, "q1", results.Progress{State: results.StateCatchingUp}); err != nil {
		t.Fatal(err)
	}
	t1 := time.Date(2026, 12, 7, 15, 0, 0, 123_000_000, time.UTC)
	if err := s.SetFreshThrough(ctx, "q1", t1); err != nil {
		t.Fatal(err)
	}
	if got, err := freshThrough(t, s, "q1"); err != nil || !got.IsZero() {
		t.Fatalf("catching up: fresh through %v, %v; want never", got, err)
	}
	live := results.Progress{State: results.StateLive, Continues: true}
	if err := s.Apply(ctx, "q1", nil, live); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFreshThrough(ctx, "q1", t1); err != nil {
		t.Fatal(err)
	}
	if got, _ := freshThrough(t, s, "q1"); !got.Equal(t1) {
		t.Fatalf("fresh through %v, want %v", got, t1)
	}
	// Only forward; other writes of the progress keep it.
	if err := s.SetFreshThrough(ctx, "q1", t1.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, "q1", []results.Change{{Key: []byte(`{"query_id":"q1"}`), Row: []byte(`{"query_id":"q1","n":1}`)}}, live); err != nil {
		t.Fatal(err)
	}
	if got, _ := freshThrough(t, s, "q1"); !got.Equal(t1) {
		t.Fatalf("after an older time and an apply: fresh through %v, want %v", got, t1)
	}
	// A stale query's time stops.
	if err := s.MarkStale(ctx, "q1", "column dropped"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFreshThrough(ctx, "q1", t1.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := freshThrough(t, s, "q1"); !got.Equal(t1) {
		t.Fatalf("stale: fresh through %v, want %v", got, t1)
	}
}
