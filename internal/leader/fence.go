package leader

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Fence is the proof of ownership a leased unit of work carries into its
// writes: the lease's namespace and id and the epoch its holder drew when
// it took the lease. Every take draws a new, larger epoch
// (lease_epochs, migrations/01000_lease_epochs.sql), so a worker that lost
// its lease while paused, and wakes up to write, carries an epoch older
// than its successor's and its writes are refused (ErrFenced).
type Fence struct {
	Namespace string
	ID        string
	Epoch     int64
}

// ErrFenced is the error of a write by a worker that no longer holds the
// lease of the work it writes for.
var ErrFenced = errors.New("fenced: another worker owns this work now")

type fenceKey struct{}

// WithFence returns ctx carrying f: writes made with it are checked.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceFrom returns the fence ctx carries, if any.
func FenceFrom(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok
}

// QueueFenceCheck queues, when ctx carries a fence, the statement that
// refuses the rest of the batch's transaction if the fence's epoch is no
// longer the lease's: it must come before the writes it guards, in one
// transaction with them (a batch sent outside a transaction is one
// implicit transaction). It takes a share lock on the lease's epoch, so
// that a successor drawing its epoch waits for the write to commit: a
// write either commits before the lease moved or is refused.
func QueueFenceCheck(ctx context.Context, b *pgx.Batch) {
	if f, ok := FenceFrom(ctx); ok {
		b.Queue(`SELECT check_lease_epoch($1, $2, $3)`, f.Namespace, f.ID, f.Epoch)
	}
}

// CheckFence runs the check of QueueFenceCheck in tx.
func CheckFence(ctx context.Context, tx pgx.Tx) error {
	f, ok := FenceFrom(ctx)
	if !ok {
		return nil
	}
	_, err := tx.Exec(ctx, `SELECT check_lease_epoch($1, $2, $3)`, f.Namespace, f.ID, f.Epoch)
	return FenceError(err)
}

// FenceError turns the check's refusal (SQLSTATE CQ003) into an error
// that matches ErrFenced; any other error is returned as it is.
func FenceError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "CQ003" {
		return fmt.Errorf("%s: %w", pe.Message, ErrFenced)
	}
	return err
}

// FencedExec runs one statement after the fence check of ctx, in one
// implicit transaction, and returns the statement's command tag.
func FencedExec(ctx context.Context, pool *pgxpool.Pool, sql string, args ...any) (pgconn.CommandTag, error) {
	if _, ok := FenceFrom(ctx); !ok {
		return pool.Exec(ctx, sql, args...)
	}
	b := &pgx.Batch{}
	QueueFenceCheck(ctx, b)
	b.Queue(sql, args...)
	br := pool.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return pgconn.CommandTag{}, FenceError(err)
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

// epochLockTimeout bounds how long drawing or forgetting an epoch waits
// for a checked write still open on the row (the previous holder paused
// in the middle of one): the lease session's statements must end well
// within its timeout, or the session would be lost with all its leases.
const epochLockTimeout = "500ms"

// errEpochBusy is drawEpoch's error when a write of the previous holder
// still holds the row: the lease is given back and taken again later.
var errEpochBusy = errors.New("a write of the previous holder is still open")

// drawEpoch records that holder took the lease namespace/id and returns
// its new epoch.
func drawEpoch(ctx context.Context, conn *pgx.Conn, namespace, id, holder string) (int64, error) {
	var epoch int64
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+epochLockTimeout+`'`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO lease_epochs (namespace, id, epoch, holder)
			VALUES ($1, $2, nextval('lease_epoch'), $3)
			ON CONFLICT (namespace, id) DO UPDATE SET epoch = EXCLUDED.epoch, holder = EXCLUDED.holder, taken_at = now()
			RETURNING epoch`, namespace, id, holder).Scan(&epoch)
	})
	if lockTimedOut(err) {
		err = errEpochBusy
	}
	if err != nil {
		return 0, fmt.Errorf("draw the epoch of lease %s/%s: %w", namespace, id, err)
	}
	return epoch, nil
}

// forgetEpoch removes the lease's epoch row if it is still epoch's, for
// work that is no longer wanted. Epochs come from one sequence, so a
// lease taken again later still draws a larger one. A row held by an
// open write stays (it is only kept longer than needed).
func forgetEpoch(ctx context.Context, conn *pgx.Conn, namespace, id string, epoch int64) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+epochLockTimeout+`'`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM lease_epochs WHERE namespace = $1 AND id = $2 AND epoch = $3`, namespace, id, epoch)
		return err
	})
	if lockTimedOut(err) {
		return nil
	}
	return err
}

// lockTimedOut says whether err is a statement that gave up waiting for
// a lock (SQLSTATE 55P03).
func lockTimedOut(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55P03"
}

// FencedQueryRow is QueryRow after the fence check of ctx, in one
// implicit transaction.
func FencedQueryRow(ctx context.Context, pool *pgxpool.Pool, sql string, args ...any) pgx.Row {
	return fencedRow{ctx: ctx, pool: pool, sql: sql, args: args}
}

type fencedRow struct {
	ctx  context.Context
	pool *pgxpool.Pool
	sql  string
	args []any
}

func (r fencedRow) Scan(dest ...any) error {
	if _, ok := FenceFrom(r.ctx); !ok {
		return r.pool.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...)
	}
	b := &pgx.Batch{}
	QueueFenceCheck(r.ctx, b)
	b.Queue(r.sql, r.args...)
	br := r.pool.SendBatch(r.ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return FenceError(err)
	}
	err := br.QueryRow().Scan(dest...)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}
