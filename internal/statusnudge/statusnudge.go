// Package statusnudge carries "an environment's status changed" from the
// engines to the status poller, across processes, with PostgreSQL's
// LISTEN/NOTIFY on the job-state database: an engine that recorded a new
// state (a capture that started streaming or failed, a cached query that
// went LIVE or failed) notifies; the worker that leads the status poller
// listens and has the poller observe that environment at once instead of
// on its next round.
//
// A notification is a hint, never the state itself: the poller observes
// the engine as it always does, so a lost notification only delays the
// status until the poller's next round. NOTIFY is delivered to the
// sessions listening when the notifying transaction commits, so a
// notification sent after the state was written is never seen before it.
//
// This package must not import other cdcq packages but internal/pglisten.
package statusnudge

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcq/cdcq/internal/pglisten"
)

// Channel is the notification channel. The payload is the environment id.
const Channel = "cdcq_status_changed"

// notifyTimeout bounds one NOTIFY: a slow job-state database delays the
// status, never the engine that notifies.
const notifyTimeout = 5 * time.Second

// Notifier sends notifications on a pool of the job-state database.
type Notifier struct {
	pool   *pgxpool.Pool
	logger *slog.Logger
	wg     sync.WaitGroup
}

// NewNotifier notifies through pool. A nil logger logs to slog.Default().
func NewNotifier(pool *pgxpool.Pool, logger *slog.Logger) *Notifier {
	if logger == nil {
		logger = slog.Default()
	}
	return &Notifier{pool: pool, logger: logger}
}

// Notify tells the status poller, wherever it runs, that the status of
// environmentID changed. It does not wait: the notification is sent in the
// background, and a failure to send it is logged (the poller's next round
// sees the change anyway).
func (n *Notifier) Notify(environmentID string) {
	if n == nil || n.pool == nil {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
		defer cancel()
		if _, err := n.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, environmentID); err != nil {
			n.logger.Debug("status nudge not sent; the status poller's next round will see the change",
				"environment_id", environmentID, "error", err)
		}
	}()
}

// Wait waits for the notifications being sent (tests, and a pool about to
// close).
func (n *Notifier) Wait() {
	if n != nil {
		n.wg.Wait()
	}
}

// ListenConfig configures Listen.
type ListenConfig struct {
	// DatabaseURL is the job-state database. Required.
	DatabaseURL string
	// Nudge is called with the environment id of every notification, and
	// with "" (every environment) each time listening (re)starts: what was
	// notified while no session listened is lost. Required; it must not
	// block.
	Nudge func(environmentID string)
	// RetryMin and RetryMax bound the wait before listening again after the
	// session broke. Defaults 500ms and 30s.
	RetryMin, RetryMax time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Listen listens on Channel until ctx ends, on a session of its own, and
// calls cfg.Nudge for each notification. A broken session is opened again
// with backoff.
func Listen(ctx context.Context, cfg ListenConfig) {
	if cfg.RetryMin == 0 {
		cfg.RetryMin = 500 * time.Millisecond
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 30 * time.Second
	}
	pglisten.Listen(ctx, pglisten.Config{
		DatabaseURL: cfg.DatabaseURL,
		Channels:    []string{Channel},
		// Whatever changed while nobody listened: look at everything once.
		Listening: func() { cfg.Nudge("") },
		Notify:    func(n *pgconn.Notification) { cfg.Nudge(n.Payload) },
		RetryMin:  cfg.RetryMin, RetryMax: cfg.RetryMax,
		What:   "status nudges (the status follows the poller's rounds meanwhile)",
		Logger: cfg.Logger,
	})
}
