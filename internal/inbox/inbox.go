// Package inbox records which commands cdcq's workers have carried out, in
// the job-state database, so that a command redelivered after a
// consumer-group rebalance is recognised and not carried out again.
//
// This package must not import other cdcq packages.
package inbox

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Inbox is the handled_commands table.
type Inbox struct {
	pool *pgxpool.Pool
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
