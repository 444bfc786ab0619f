package statusnudge_test

import (
	"context"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/internal/statusnudge"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// A notification sent on one session (an engine, in any worker) reaches
// the listener on another (the status poller's leader); when the
// listener's session is cut, it listens again and asks for everything to
// be looked at, since what was notified meanwhile is lost.
func TestNotifyReachesTheListenerAcrossSessions(t *testing.T) {
	url, pool := pgtest.NewJobState(t)
	got := make(chan string, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		statusnudge.Listen(ctx, statusnudge.ListenConfig{DatabaseURL: url, RetryMin: 50 * time.Millisecond,
			Nudge: func(env string) { got <- env }})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	next := func(what string) string {
		t.Helper()
		select {
		case env := <-got:
			return env
		case <-time.After(10 * time.Second):
			t.Fatalf("no nudge: %s", what)
			return ""
		}
	}
	if env := next("on listening"); env != "" {
		t.Fatalf("first nudge %q, want \"\" (everything) when listening starts", env)
	}
	n := statusnudge.NewNotifier(pool, nil)
	sent := time.Now()
	n.Notify("env-1")
	if env := next("after Notify"); env != "env-1" {
		t.Fatalf("nudge %q, want env-1", env)
	}
	t.Logf("Notify to nudge: %s", time.Since(sent).Round(time.Microsecond))
	n.Wait()

	if _, err := pool.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE pid <> pg_backend_pid() AND datname = current_database() AND query LIKE 'LISTEN%'`); err != nil {
		t.Fatal(err)
	}
	if env := next("after the listening session was cut"); env != "" {
		t.Fatalf("nudge %q after listening again, want \"\"", env)
	}
	n.Notify("env-2")
	if env := next("after Notify on the new session"); env != "env-2" {
		t.Fatalf("nudge %q, want env-2", env)
	}
}
