package pgsession

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const lockKey = 4242

// lockFree says whether another session can take lockKey now (and gives it
// back at once).
func lockFree(t *testing.T, other *pgx.Conn) bool {
	t.Helper()
	var got bool
	if err := other.QueryRow(context.Background(), `SELECT pg_try_advisory_lock($1)`, lockKey).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got {
		if _, err := other.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, lockKey); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

func lockIn(t *testing.T, s *Session) {
	t.Helper()
	err := s.Do(context.Background(), func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A holder that keeps talking keeps its lock for many timeouts; one that
// falls silent (its keepalive stopped, as in a paused process or a lost
// host) loses it: the server ends its session within about the timeout.
func TestSilentHolderLosesItsLock(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	other, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	const timeout = 3 * time.Second
	s, err := Connect(ctx, url, nil, timeout)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Bounded() {
		t.Fatal("the test server (PostgreSQL 15) should take idle_session_timeout")
	}
	lockIn(t, s)
	// Healthy: held through three timeouts.
	for end := time.Now().Add(3 * timeout); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if lockFree(t, other) {
			t.Fatal("a session kept alive lost its lock")
		}
		select {
		case <-s.Lost():
			t.Fatalf("a session kept alive was lost: %v", s.Err())
		default:
		}
	}
	// Silent: the keepalive stops, the connection stays open.
	close(s.stop)
	<-s.stopped
	silentAt := time.Now()
	for !lockFree(t, other) {
		if time.Since(silentAt) > 10*timeout {
			t.Fatalf("the lock of a silent session was still held %s after it fell silent", time.Since(silentAt))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("lock free %s after the holder fell silent (timeout %s)", time.Since(silentAt).Round(time.Millisecond), timeout)
	// The holder, waking up, finds its session lost.
	err = s.Do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, `SELECT 1`)
		return err
	})
	if err == nil {
		t.Fatal("a session the server ended still answered")
	}
	select {
	case <-s.Lost():
	default:
		t.Fatal("Lost not closed after the session's statement failed")
	}
	s.mu.Lock()
	s.conn.Close(ctx)
	s.mu.Unlock()
}

// A session the server ends (here terminated) is reported lost.
func TestTerminatedSessionIsLost(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	s, err := Connect(ctx, url, nil, MinTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var pid uint32
	if err := s.Do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		pid = conn.PgConn().PID()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	other, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	if _, err := other.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Lost():
	case <-time.After(30 * time.Second):
		t.Fatal("a terminated session was not reported lost")
	}
	if s.Err() == nil {
		t.Fatal("Err is nil for a lost session")
	}
}

func TestTimeoutBelowMinimumRefused(t *testing.T) {
	if _, err := Connect(context.Background(), "postgres://localhost/x", nil, time.Second); err == nil {
		t.Fatal("a 1s timeout was accepted")
	}
}
