// Package pglisten holds a PostgreSQL session that LISTENs on channels for
// as long as a context lives, opening it again with backoff when it
// breaks. Notifications sent while no session listened are lost, so the
// caller is told each time listening (re)starts and looks at what it
// follows once.
//
// This package must not import other cdcq packages.
package pglisten

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Config configures Listen.
type Config struct {
	// DatabaseURL is the database to listen on. Required.
	DatabaseURL string
	// Channels to LISTEN on. Required.
	Channels []string
	// Listening is called each time a session listens, before its first
	// notification: what was notified before is lost, look at everything
	// once. Optional.
	Listening func()
	// Notify is called with every notification, in the listening
	// goroutine; it must not block. Required.
	Notify func(*pgconn.Notification)
	// Stopped is called when a session broke, before the wait to listen
	// again. Optional.
	Stopped func(err error)
	// RetryMin and RetryMax bound the wait before listening again.
	// Defaults 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// What names the listener in the log, and Logger receives its warnings
	// (default slog.Default()).
	What   string
	Logger *slog.Logger
}

// Listen listens until ctx ends.
func Listen(ctx context.Context, cfg Config) {
	if cfg.RetryMin == 0 {
		cfg.RetryMin = 100 * time.Millisecond
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	backoff := cfg.RetryMin
	for ctx.Err() == nil {
		started := time.Now()
		err := listenOnce(ctx, cfg)
		if ctx.Err() != nil {
			return
		}
		if cfg.Stopped != nil {
			cfg.Stopped(err)
		}
		if time.Since(started) > cfg.RetryMax {
			backoff = cfg.RetryMin
		}
		cfg.Logger.Warn(cfg.What+": listening stopped; listening again", "error", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, cfg.RetryMax)
	}
}

// listenOnce listens on one session until it breaks or ctx ends.
func listenOnce(ctx context.Context, cfg Config) error {
	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, ch := range cfg.Channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	if cfg.Listening != nil {
		cfg.Listening()
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		cfg.Notify(n)
	}
}
