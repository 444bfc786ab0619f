// Package leader elects one leader among cdcq's workers with a PostgreSQL
// session-level advisory lock on the job-state database. The lock lives as
// long as the session holding it, so a worker that dies (or loses its
// connection) hands leadership to another within one retry interval; one
// whose host is lost or whose process is paused, within the session's
// timeout (internal/pgsession) and one retry interval.
//
// This package must not import other cdcq packages than pgsession.
package leader

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/pgsession"
)

// Config configures an election.
type Config struct {
	// DatabaseURL is the job-state database. Required.
	DatabaseURL string
	// LockID identifies the election; every candidate uses the same one.
	LockID int64
	// RetryInterval is how often a follower tries for the lock and a
	// leader checks its session. Default 2s.
	RetryInterval time.Duration
	// SessionTimeout: see LeasesConfig.SessionTimeout.
	SessionTimeout time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Run campaigns until ctx ends. While this process leads, lead runs with a
// context that is cancelled when leadership is lost.
func Run(ctx context.Context, cfg Config, lead func(ctx context.Context)) {
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for ctx.Err() == nil {
		if err := campaign(ctx, cfg, lead); err != nil && ctx.Err() == nil {
			cfg.Logger.Warn("leader election", "lock_id", cfg.LockID, "error", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(cfg.RetryInterval):
		}
	}
}

// campaign tries once for the lock and, if it gets it, leads until the
// session breaks or ctx ends.
func campaign(ctx context.Context, cfg Config, lead func(ctx context.Context)) error {
	sess, err := pgsession.Connect(ctx, cfg.DatabaseURL, nil, cfg.SessionTimeout)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer sess.Close()
	for {
		var got bool
		if err := sess.Do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
			return conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", cfg.LockID).Scan(&got)
		}); err != nil {
			return fmt.Errorf("try lock: %w", err)
		}
		if got {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(cfg.RetryInterval):
		}
	}
	cfg.Logger.Info("became leader", "lock_id", cfg.LockID)
	leadCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		lead(leadCtx)
	}()
	defer func() {
		cancel()
		<-done
		cfg.Logger.Info("stopped leading", "lock_id", cfg.LockID)
	}()
	select {
	case <-ctx.Done():
		return nil
	case <-done:
		return nil
	case <-sess.Lost():
		return fmt.Errorf("leader session lost: %w", sess.Err())
	}
}
