// Package inbox records which commands cdcq's workers have carried out, in
// the job-state database, so that a command redelivered after a
// consumer-group rebalance is recognised and not carried out again. It also
// numbers each environment's commands in the order the workers take them
// up (Sequence), so that what they cause can be ordered.
//
// This package must not import other cdcq packages than pgsession.
package inbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcq/cdcq/internal/pgsession"
)

// Inbox is the handled_commands table.
type Inbox struct {
	pool *pgxpool.Pool
	// SessionTimeout is the timeout of the sessions that hold command
	// locks (pgsession); default pgsession.DefaultTimeout.
	SessionTimeout time.Duration
}

// New refuses a nil pool.
func New(pool *pgxpool.Pool) (*Inbox, error) {
	if pool == nil {
		return nil, errors.New("inbox: nil pool")
	}
	return &Inbox{pool: pool}, nil
}

// Handled reports whether commandID was carried out before.
func (i *Inbox) Handled(ctx context.Context, commandID string) (bool, error) {
	var n int
	if err := i.pool.QueryRow(ctx, "SELECT count(*) FROM handled_commands WHERE command_id = $1", commandID).Scan(&n); err != nil {
		return false, fmt.Errorf("inbox: look up command %s: %w", commandID, err)
	}
	return n > 0, nil
}

// MarkHandled records that commandID was carried out. Marking twice is fine.
func (i *Inbox) MarkHandled(ctx context.Context, commandID, name, environmentID string) error {
	_, err := i.pool.Exec(ctx, `INSERT INTO handled_commands (command_id, command_name, environment_id)
		VALUES ($1, $2, $3) ON CONFLICT (command_id) DO NOTHING`, commandID, name, environmentID)
	if err != nil {
		return fmt.Errorf("inbox: record command %s: %w", commandID, err)
	}
	return nil
}

// Sequence returns commandID's number among environmentID's commands: 1 for
// the first command a worker took up, then 2, 3, ... Workers take up one
// environment's commands in the order of the control topic (its key is the
// environmentId), so a larger number is a newer command. The number is
// given once per command id: asking again, from any worker, returns the
// same number, so a retried or redelivered command keeps its place. Numbers
// may skip (two workers asking for one command at the same time), never
// repeat.
func (i *Inbox) Sequence(ctx context.Context, environmentID, commandID string) (int64, error) {
	if commandID == "" {
		return 0, errors.New("inbox: a command without an id has no sequence number")
	}
	var seq int64
	err := pgx.BeginFunc(ctx, i.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT seq FROM command_order WHERE command_id = $1`, commandID).Scan(&seq)
		if !errors.Is(err, pgx.ErrNoRows) {
			return err // found, or failed
		}
		// The counter's row lock orders concurrent assignments for one
		// environment: whoever waited sees the other's command_order row.
		if err := tx.QueryRow(ctx, `
			INSERT INTO command_sequence AS s (environment_id, last_seq) VALUES ($1, 1)
			ON CONFLICT (environment_id) DO UPDATE SET last_seq = s.last_seq + 1
			RETURNING last_seq`, environmentID).Scan(&seq); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO command_order (command_id, environment_id, seq)
			VALUES ($1, $2, $3) ON CONFLICT (command_id) DO NOTHING`, commandID, environmentID, seq)
		if err != nil || tag.RowsAffected() == 1 {
			return err
		}
		// Another worker numbered the command meanwhile.
		return tx.QueryRow(ctx, `SELECT seq FROM command_order WHERE command_id = $1`, commandID).Scan(&seq)
	})
	if err != nil {
		return 0, fmt.Errorf("inbox: number command %s of %s: %w", commandID, environmentID, err)
	}
	return seq, nil
}

// commandLockClass is the first key of the advisory locks that serialise
// an environment's commands (the two-key form: apart from the one-key
// locks of leases and leader election).
const commandLockClass = 0x63647133 // "cdq3"

// LockEnvironment waits until no other worker carries out a command of
// environmentID and holds that until unlock is called (or the process
// dies: the lock is a session advisory lock on a connection of its own, not
// one of the pool's, so that waiting never starves the pool). A worker
// that lost a partition while carrying out a command keeps the lock until
// it finishes; the new owner, redelivered that command, waits, then finds
// it handled and goes on with the next, so that no command acts on the
// engines after a newer one. A worker paused or cut off while it holds
// the lock loses it after the session's timeout (internal/pgsession), so
// that the environment's commands do not wait for it forever.
func (i *Inbox) LockEnvironment(ctx context.Context, environmentID string) (held context.Context, unlock func(), err error) {
	sess, err := pgsession.Connect(ctx, "", i.pool.Config().ConnConfig, i.SessionTimeout)
	if err != nil {
		return nil, nil, fmt.Errorf("inbox: connect to lock environment %s: %w", environmentID, err)
	}
	// Waiting for the lock may take longer than the session's timeout
	// (another worker carries out a long command): wait in steps.
	for {
		var got bool
		err := sess.Do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
			return conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, commandLockClass, environmentID).Scan(&got)
		})
		if err != nil {
			sess.Close()
			return nil, nil, fmt.Errorf("inbox: lock environment %s: %w", environmentID, err)
		}
		if got {
			break
		}
		select {
		case <-ctx.Done():
			sess.Close()
			return nil, nil, fmt.Errorf("inbox: lock environment %s: %w", environmentID, ctx.Err())
		case <-time.After(lockRetry):
		}
	}
	held, cancel := context.WithCancelCause(ctx)
	released := make(chan struct{})
	go func() {
		select {
		case <-sess.Lost():
			cancel(fmt.Errorf("inbox: lost the command lock of environment %s: %w", environmentID, sess.Err()))
		case <-released:
		}
	}()
	return held, func() {
		close(released)
		cancel(nil)
		// Closing the session releases the lock.
		sess.Close()
	}, nil
}

// lockRetry is how often LockEnvironment tries again for a lock another
// worker holds.
const lockRetry = 50 * time.Millisecond
