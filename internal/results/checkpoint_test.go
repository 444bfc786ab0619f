package results_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/cdcq/cdcq/internal/results"
)

// A checkpoint comes back as it was saved, also one of several chunks; a
// newer one replaces it; deleting or resetting the query forgets it, and a
// query that is deleted (or gone) cannot save one.
func TestCheckpointRoundTrip(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if _, err := s.LoadCheckpoint(ctx, "q1"); !errors.Is(err, results.ErrNotFound) {
		t.Fatalf("checkpoint of an unknown query: %v", err)
	}
	if err := s.SaveCheckpoint(ctx, "q1", results.Checkpoint{Fingerprint: "f", State: []byte("x")}); !errors.Is(err, results.ErrDeleted) {
		t.Fatalf("save for a query with no progress: %v, want ErrDeleted", err)
	}
	p := results.Progress{State: results.StateCatchingUp, Positions: map[string]map[int32]int64{}}
	if err := s.SetProgress(ctx, "q1", p); err != nil {
		t.Fatal(err)
	}
	// Incompressible, larger than one chunk.
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 20<<20)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	for _, want := range []results.Checkpoint{
		{Fingerprint: "f1", Positions: map[string]map[int32]int64{"env.public.a": {0: 7}}, CaptureEpochs: map[string]map[int32]int64{"env.public.a": {0: 3}}, Events: 7, State: big},
		{Fingerprint: "f2", Positions: map[string]map[int32]int64{"env.public.a": {0: 9}, "env.public.b": {0: 1}}, CaptureEpochs: map[string]map[int32]int64{}, TopicIDs: map[string]string{"env.public.a": "AAECAw==", "env.public.b": "BAUGBw=="}, Events: 10, State: bytes.Repeat([]byte("ab"), 1000)},
	} {
		if err := s.SaveCheckpoint(ctx, "q1", want); err != nil {
			t.Fatal(err)
		}
		got, err := s.LoadCheckpoint(ctx, "q1")
		if err != nil {
			t.Fatal(err)
		}
		if got.WrittenAt.IsZero() {
			t.Error("WrittenAt not set")
		}
		got.WrittenAt = want.WrittenAt
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("loaded %s at %v (%d bytes), saved %s at %v (%d bytes)", got.Fingerprint, got.Positions, len(got.State), want.Fingerprint, want.Positions, len(want.State))
		}
	}
	if err := s.MarkDeleted(ctx, "q1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadCheckpoint(ctx, "q1"); !errors.Is(err, results.ErrNotFound) {
		t.Fatalf("checkpoint of a deleted query: %v", err)
	}
	if err := s.SaveCheckpoint(ctx, "q1", results.Checkpoint{Fingerprint: "f", State: []byte("x")}); !errors.Is(err, results.ErrDeleted) {
		t.Fatalf("save for a deleted query: %v, want ErrDeleted", err)
	}

	// Reset (the query created again) forgets a stale query's checkpoint.
	if err := s.SetProgress(ctx, "q2", p); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "q2", results.Checkpoint{Fingerprint: "f", State: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkStale(ctx, "q2", "a column changed"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "q2", results.Checkpoint{Fingerprint: "f", State: []byte("y")}); !errors.Is(err, results.ErrStale) {
		t.Fatalf("save for a stale query: %v, want ErrStale", err)
	}
	if err := s.Reset(ctx, "q2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadCheckpoint(ctx, "q2"); !errors.Is(err, results.ErrNotFound) {
		t.Fatalf("checkpoint after Reset: %v", err)
	}
}
