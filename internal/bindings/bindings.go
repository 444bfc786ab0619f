// Package bindings keeps, in the job-state database, the database each
// environment is bound to (table environment_bindings), and rewrites every
// stored sealed connection string under the current key (Reseal, for
// `cdcq reseal`).
//
// This package must not import other cdcq packages except internal/secret.
package bindings

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcq/cdcq/internal/secret"
)

// Store is the environment_bindings table.
type Store struct {
	pool *pgxpool.Pool
}

// New refuses a nil pool.
func New(pool *pgxpool.Pool) (*Store, error) {
	if pool == nil {
		return nil, errors.New("bindings: nil pool")
	}
	return &Store{pool: pool}, nil
}

// Bound returns the environment's sealed connection string and whether
// the binding is established.
func (s *Store) Bound(ctx context.Context, environmentID string) (sealed string, established, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT connection_sealed, established FROM environment_bindings WHERE environment_id = $1`,
		environmentID).Scan(&sealed, &established)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, false, nil
	}
	if err != nil {
		return "", false, false, fmt.Errorf("bindings: read %s: %w", environmentID, err)
	}
	return sealed, established, true, nil
}

// Bind records sealed as the environment's connection string. A new
// binding is not established; an existing one keeps its state.
func (s *Store) Bind(ctx context.Context, environmentID, sealed string) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO environment_bindings (environment_id, connection_sealed) VALUES ($1, $2)
		ON CONFLICT (environment_id) DO UPDATE SET connection_sealed = EXCLUDED.connection_sealed, updated_at = now()`,
		environmentID, sealed)
	if err != nil {
		return fmt.Errorf("bindings: bind %s: %w", environmentID, err)
	}
	return nil
}

// Establish marks the environment's binding established: the capture
// engine took it up, and only a delete frees the environment.
func (s *Store) Establish(ctx context.Context, environmentID string) error {
	_, err := s.pool.Exec(ctx, `UPDATE environment_bindings SET established = true, updated_at = now()
		WHERE environment_id = $1 AND NOT established`, environmentID)
	if err != nil {
		return fmt.Errorf("bindings: establish %s: %w", environmentID, err)
	}
	return nil
}

// Unbind forgets the environment's connection string.
func (s *Store) Unbind(ctx context.Context, environmentID string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM environment_bindings WHERE environment_id = $1`, environmentID); err != nil {
		return fmt.Errorf("bindings: unbind %s: %w", environmentID, err)
	}
	return nil
}

// sealedColumns are the tables that keep sealed connection strings, each
// keyed by environment_id.
var sealedColumns = []string{"environment_bindings", "connections", "embedded_captures"}

// ResealReport counts what Reseal did, per table.
type ResealReport struct {
	Table     string
	Resealed  int
	Unchanged int
	// Failed lists the environments whose value opens with none of the
	// keys (or belongs to another environment); they are left as they are.
	Failed []string
}

// Reseal rewrites every stored sealed connection string that is not sealed
// with s's current key (or is in the old v1 form) under the current key,
// one row at a time, each only if it did not change meanwhile. Values that
// do not open are reported and left alone.
func Reseal(ctx context.Context, pool *pgxpool.Pool, s *secret.Sealer) ([]ResealReport, error) {
	var out []ResealReport
	for _, table := range sealedColumns {
		r, err := resealTable(ctx, pool, s, table)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

func resealTable(ctx context.Context, pool *pgxpool.Pool, s *secret.Sealer, table string) (ResealReport, error) {
	r := ResealReport{Table: table}
	rows, err := pool.Query(ctx, `SELECT environment_id, connection_sealed FROM `+table+` WHERE connection_sealed <> '' ORDER BY environment_id`)
	if err != nil {
		return r, fmt.Errorf("bindings: read %s: %w", table, err)
	}
	type row struct{ env, sealed string }
	all, err := pgx.CollectRows(rows, func(cr pgx.CollectableRow) (row, error) {
		var x row
		return x, cr.Scan(&x.env, &x.sealed)
	})
	if err != nil {
		return r, fmt.Errorf("bindings: read %s: %w", table, err)
	}
	for _, x := range all {
		fresh, changed, err := s.Reseal(x.sealed, x.env)
		switch {
		case err != nil:
			r.Failed = append(r.Failed, x.env)
			continue
		case !changed:
			r.Unchanged++
			continue
		}
		if _, err := pool.Exec(ctx, `UPDATE `+table+` SET connection_sealed = $3 WHERE environment_id = $1 AND connection_sealed = $2`,
			x.env, x.sealed, fresh); err != nil {
			return r, fmt.Errorf("bindings: reseal %s of %s: %w", table, x.env, err)
		}
		r.Resealed++
	}
	return r, nil
}
