package inbox_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/inbox"
	"github.com/cdcq/cdcq/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newInbox(t *testing.T) *inbox.Inbox {
	t.Helper()
	_, pool := pgtest.NewJobState(t)
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

// An environment's lock is held by one caller at a time; another
// environment's is not held up; a session that ends releases it.
func TestLockEnvironmentSerialisesOneEnvironment(t *testing.T) {
	in := newInbox(t)
	ctx := t.Context()
	_, unlockA, err := in.LockEnvironment(ctx, "env_a")
	if err != nil {
		t.Fatal(err)
	}
	_, unlockB, err := in.LockEnvironment(ctx, "env_b")
	if err != nil {
		t.Fatal(err)
	}
	unlockB()
	got := make(chan func(), 1)
	go func() {
		_, unlock, err := in.LockEnvironment(ctx, "env_a")
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- unlock
	}()
	select {
	case <-got:
		t.Fatal("env_a locked twice")
	case <-time.After(300 * time.Millisecond):
	}
	unlockA()
	select {
	case unlock, ok := <-got:
		if !ok {
			t.Fatal("second lock failed")
		}
		unlock()
	case <-time.After(10 * time.Second):
		t.Fatal("env_a not locked after it was released")
	}
	// A caller that gives up waiting gets an error and holds nothing.
	_, unlockA, err = in.LockEnvironment(ctx, "env_a")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, _, err := in.LockEnvironment(short, "env_a"); err == nil {
		t.Fatal("a lock held elsewhere was taken")
	}
	unlockA()
	_, unlock, err := in.LockEnvironment(ctx, "env_a")
	if err != nil {
		t.Fatal(err)
	}
	unlock()
}

// A command lock whose session the server ends (as it does for a worker
// silent past the session's timeout) cancels the holder's context, with
// the reason, and another caller gets the lock.
func TestLostCommandLockCancelsItsHolder(t *testing.T) {
	_, pool := pgtest.NewJobState(t)
	in, err := inbox.New(pool)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	held, unlock, err := in.LockEnvironment(ctx, "env_a")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if held.Err() != nil {
		t.Fatal("the context of a lock just taken is done")
	}
	var pid int32
	if err := pool.QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted LIMIT 1`).Scan(&pid); err != nil {
		t.Fatalf("find the lock's session: %v", err)
	}
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the holder's context is not cancelled after its lock's session ended")
	}
	if cause := context.Cause(held); cause == nil || !strings.Contains(cause.Error(), "lost the command lock of environment env_a") {
		t.Fatalf("cause %v", cause)
	}
	_, unlock2, err := in.LockEnvironment(ctx, "env_a")
	if err != nil {
		t.Fatal(err)
	}
	unlock2()
}
