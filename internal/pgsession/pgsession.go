// Package pgsession keeps the job-state database sessions that hold
// cdcq's advisory locks (leases, elections, an environment's command lock)
// honest about their holder: the server ends such a session once its
// client stops talking for Timeout, so a worker whose host vanished, or
// whose process is paused, loses its locks within Timeout instead of when
// TCP keepalive notices (two hours by default); and the holder gives up
// its work once it cannot confirm its session for as long.
//
// The server side is PostgreSQL's idle_session_timeout (PostgreSQL 14 and
// later), set for the session only; a keepalive statement every
// Timeout/5 keeps a healthy holder's session from looking idle. On an
// older server the session is kept without it (TCP keepalives only), and
// Connect says so through Session.Bounded.
//
// This package must not import other cdcq packages.
package pgsession

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultTimeout is how long a silent holder keeps its session. Takeover
// by another worker takes at most this plus one round of its leases (2 s
// by default).
const DefaultTimeout = 10 * time.Second

// MinTimeout is the smallest Timeout accepted: below it, a keepalive
// delayed by a garbage collection or a loaded machine would end healthy
// sessions.
const MinTimeout = 2 * time.Second

// Session is one connection to the job-state database, kept alive by a
// keepalive statement, that the server ends when its client falls silent.
// Its methods are safe for concurrent use; statements run one at a time.
type Session struct {
	mu      sync.Mutex
	conn    *pgx.Conn
	timeout time.Duration
	bounded bool

	lost      chan struct{}
	lostOnce  sync.Once
	lostErr   error
	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
	closed    bool // under mu
}

// Connect opens a session on the database at url (or on a copy of cfg
// when url is empty) with the server-side timeouts set to timeout (0:
// DefaultTimeout) and starts its keepalive.
func Connect(ctx context.Context, url string, cfg *pgx.ConnConfig, timeout time.Duration) (*Session, error) {
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if timeout < MinTimeout {
		return nil, fmt.Errorf("pgsession: timeout %s is below the minimum %s", timeout, MinTimeout)
	}
	if cfg == nil {
		var err error
		if cfg, err = pgx.ParseConfig(url); err != nil {
			return nil, err
		}
	} else {
		cfg = cfg.Copy()
	}
	bounded := withTimeouts(cfg, timeout)
	conn, err := pgx.ConnectConfig(ctx, bounded)
	used := true
	if err != nil && unknownSetting(err) {
		// PostgreSQL 13 or older: no idle_session_timeout.
		used = false
		conn, err = pgx.ConnectConfig(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	s := &Session{conn: conn, timeout: timeout, bounded: used,
		lost: make(chan struct{}), stop: make(chan struct{}), stopped: make(chan struct{})}
	go s.keepalive()
	return s, nil
}

// withTimeouts returns a copy of cfg whose sessions the server ends after
// timeout of silence: idle_session_timeout for an idle session,
// tcp_user_timeout and TCP keepalives for one whose client's host stopped
// acknowledging what the server sends.
func withTimeouts(cfg *pgx.ConnConfig, timeout time.Duration) *pgx.ConnConfig {
	c := cfg.Copy()
	if c.RuntimeParams == nil {
		c.RuntimeParams = map[string]string{}
	}
	ms := strconv.FormatInt(timeout.Milliseconds(), 10)
	secs := strconv.Itoa(max(1, int(timeout/time.Second)/4))
	c.RuntimeParams["idle_session_timeout"] = ms
	c.RuntimeParams["tcp_user_timeout"] = ms
	c.RuntimeParams["tcp_keepalives_idle"] = secs
	c.RuntimeParams["tcp_keepalives_interval"] = secs
	c.RuntimeParams["tcp_keepalives_count"] = "3"
	return c
}

// unknownSetting says whether err is a server refusing a setting it does
// not have (SQLSTATE 42704).
func unknownSetting(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42704"
}

// Bounded says whether the server ends the session after Timeout of
// silence (false on PostgreSQL 13 and older).
func (s *Session) Bounded() bool { return s.bounded }

// Timeout is the session's timeout.
func (s *Session) Timeout() time.Duration { return s.timeout }

// keepalive runs a statement every Timeout/5 until the session is closed
// or lost.
func (s *Session) keepalive() {
	defer close(s.stopped)
	t := time.NewTicker(s.timeout / 5)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.lost:
			return
		case <-t.C:
			_ = s.Do(context.Background(), func(ctx context.Context, conn *pgx.Conn) error {
				_, err := conn.Exec(ctx, `SELECT 1`)
				return err
			})
		}
	}
}

// Do runs fn with the session's connection, alone. fn's context ends
// after Timeout: a holder whose server stopped answering gives up on its
// session about when the server gives up on it (the server counts from
// the last statement, this from the start of the current one, so up to
// Timeout/5 later). An error that leaves the connection closed, or that
// ran into that deadline, marks the session lost; one of the caller's
// own cancellation does not.
func (s *Session) Do(ctx context.Context, fn func(ctx context.Context, conn *pgx.Conn) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.lost:
		return s.lostErr
	default:
	}
	if s.closed {
		return errClosed
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := fn(ctx, s.conn)
	timedOut := parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded)
	if err != nil && (s.conn.IsClosed() || timedOut) {
		s.markLost(fmt.Errorf("job-state session lost: %w", err))
		return s.lostErr
	}
	return err
}

// errClosed is Do's error after Close.
var errClosed = errors.New("pgsession: session closed")

// markLost records the session lost (once) and closes its connection.
// The caller holds mu.
func (s *Session) markLost(err error) {
	s.lostOnce.Do(func() {
		s.lostErr = err
		close(s.lost)
		s.conn.Close(context.Background())
	})
}

// Lost is closed once the session is lost: its locks are gone (or soon
// will be), and the work they guarded must stop.
func (s *Session) Lost() <-chan struct{} { return s.lost }

// Err is why the session was lost, nil while it is not.
func (s *Session) Err() error {
	select {
	case <-s.lost:
		return s.lostErr
	default:
		return nil
	}
}

// Close ends the session, which releases its locks. Closing again does
// nothing.
func (s *Session) Close() {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.stopped
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closed = true
		s.conn.Close(context.Background())
	})
}
