package results_test

import (
	"errors"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/leader"
	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/internal/results"
)

// Writes made under a lease whose epoch moved on are refused and change
// nothing; the current holder's go through.
func TestWritesOfADeposedHolderAreRefused(t *testing.T) {
	_, pool := pgtest.NewJobState(t)
	s, err := results.New(pool)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := pool.Exec(ctx, `INSERT INTO lease_epochs (namespace, id, epoch) VALUES ('query', 'q1', 7)`); err != nil {
		t.Fatal(err)
	}
	current := leader.WithFence(ctx, leader.Fence{Namespace: "query", ID: "q1", Epoch: 7})
	deposed := leader.WithFence(ctx, leader.Fence{Namespace: "query", ID: "q1", Epoch: 6})
	live := results.Progress{State: results.StateLive, Owner: "current"}
	one := []results.Change{{Key: []byte(`"a"`), Row: []byte(`{"g":"a","n":1}`)}}
	if err := s.Replace(current, "q1", one, live); err != nil {
		t.Fatalf("the holder's write: %v", err)
	}
	stale := results.Progress{State: results.StateLive, Owner: "deposed", Continues: true}
	two := []results.Change{{Key: []byte(`"a"`), Row: []byte(`{"g":"a","n":2}`)}}
	checks := map[string]error{
		"Apply":           s.Apply(deposed, "q1", two, stale),
		"Replace":         s.Replace(deposed, "q1", two, stale),
		"SetProgress":     s.SetProgress(deposed, "q1", stale),
		"MarkStale":       s.MarkStale(deposed, "q1", "deposed"),
		"ReplaceStale":    s.ReplaceStale(deposed, "q1", two, stale, "deposed"),
		"SetFreshThrough": s.SetFreshThrough(deposed, "q1", time.Now()),
		"SaveCheckpoint":  s.SaveCheckpoint(deposed, "q1", results.Checkpoint{Fingerprint: "f", State: []byte("x")}),
	}
	for name, err := range checks {
		if !errors.Is(err, leader.ErrFenced) {
			t.Errorf("%s by a deposed holder: got %v, want leader.ErrFenced", name, err)
		}
	}
	p, err := s.Progress(ctx, "q1")
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Result(ctx, "q1")
	if err != nil {
		t.Fatal(err)
	}
	if p.Owner != "current" || p.State != results.StateLive || p.FreshThrough != nil || rows(t, r) != `[{"g":"a","n":1}]` {
		t.Fatalf("after the refused writes: owner %q state %s fresh %v rows %s", p.Owner, p.State, p.FreshThrough, rows(t, r))
	}
	if _, err := s.LoadCheckpoint(ctx, "q1"); !errors.Is(err, results.ErrNotFound) {
		t.Fatalf("a refused checkpoint was stored (%v)", err)
	}
	if err := s.Apply(current, "q1", two, results.Progress{State: results.StateLive, Owner: "current", Continues: true}); err != nil {
		t.Fatalf("the holder's write after the refusals: %v", err)
	}
}
