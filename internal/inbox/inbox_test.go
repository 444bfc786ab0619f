package inbox_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcq/cdcq/internal/inbox"
	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newInbox(t *testing.T) *inbox.Inbox {
	t.Helper()
	url := pgtest.NewDatabase(t)
	if err := migrations.Up(t.Context(), url); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	in, err := inbox.New(pool)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestSequenceNumbersEachEnvironmentsCommands(t *testing.T) {
	in := newInbox(t)
	ctx := t.Context()
	steps := []struct {
		env, command string
		want         int64
	}{
		{"env1", "c1", 1},
		{"env1", "c2", 2},
		{"env2", "x1", 1},
		{"env1", "c1", 1}, // asked again: the same number
		{"env1", "c3", 3},
		{"env2", "x2", 2},
	}
	for _, s := range steps {
		got, err := in.Sequence(ctx, s.env, s.command)
		if err != nil {
			t.Fatal(err)
		}
		if got != s.want {
			t.Errorf("Sequence(%s, %s) = %d, want %d", s.env, s.command, got, s.want)
		}
	}
	if _, err := in.Sequence(ctx, "env1", ""); err == nil {
		t.Error("a command without an id was numbered")
	}
}

// Workers asking at the same time (one command seen by two workers around a
// rebalance, and other commands) get one number per command, never one
// number for two commands.
func TestSequenceConcurrent(t *testing.T) {
	in := newInbox(t)
	ctx := t.Context()
	const commands, askers = 10, 4
	got := make([][]int64, commands)
	for i := range got {
		got[i] = make([]int64, askers)
	}
	var wg sync.WaitGroup
	for i := range commands {
		for j := range askers {
			wg.Go(func() {
				n, err := in.Sequence(ctx, "env1", fmt.Sprintf("c%d", i))
				if err != nil {
					t.Error(err)
				}
				got[i][j] = n
			})
		}
	}
	wg.Wait()
	seen := map[int64]int{}
	for i, ns := range got {
		for _, n := range ns {
			if n != ns[0] || n <= 0 {
				t.Errorf("command c%d got numbers %v", i, ns)
				break
			}
		}
		if other, ok := seen[ns[0]]; ok {
			t.Errorf("commands c%d and c%d share number %d", other, i, ns[0])
		}
		seen[ns[0]] = i
	}
}
