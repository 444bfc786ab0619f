// Package results keeps the materialised results of cached queries that the
// embedded engine runs: the result rows (the same key and value JSON as the
// records on the environment's result topic) and the source position the
// rows reflect. Rows and position change in one transaction, so a reader
// never sees rows without the position they belong to.
//
// Reading a result never touches the source database.
//
// This package must not import other cdcq packages.
package results

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcq/cdcq/internal/jobs"
)

// ErrNotFound is returned for a query with no materialised result.
var ErrNotFound = errors.New("no result")

// States of a query's progress.
const (
	// StateCatchingUp: the engine is (re)building its state from the
	// sources; the rows are those of an earlier, complete state.
	StateCatchingUp = "CATCHING_UP"
	// StateLive: the engine has read everything its sources held when it
	// started and follows new changes.
	StateLive = "LIVE"
	// StateDeleted: the query was deleted; writes are refused until Reset,
	// so that an engine still running it elsewhere cannot bring rows back.
	StateDeleted = "DELETED"
	// StateStale: the source's schema changed in a way the query cannot
	// follow. The rows are the last correct state, at the progress's
	// position; LastError says what changed. Writes are refused until
	// Reset, so that an engine still running the query cannot write rows
	// computed from records it misread.
	StateStale = "STALE"
)

// ErrDeleted is returned by writes to a deleted query's result.
var ErrDeleted = errors.New("cached query was deleted")

// ErrStale is returned by writes to a stale query's result.
var ErrStale = errors.New("cached query is stale: its source's schema changed")

// Progress is how far a query has read its sources.
type Progress struct {
	State string `json:"state"`
	// Positions are the next offsets to read, per topic and partition.
	Positions map[string]map[int32]int64 `json:"positions"`
	// SourceLSN and SourceTime identify the newest source change the rows
	// reflect (0 and zero when no change was read yet).
	SourceLSN     int64      `json:"sourceLsn"`
	SourceTime    *time.Time `json:"sourceTime,omitempty"`
	EventsApplied int64      `json:"eventsApplied"`
	LastError     string     `json:"lastError,omitempty"`
	Owner         string     `json:"owner,omitempty"`
	UpdatedAt     time.Time  `json:"updatedAt"`
	// Hydration says how far the first complete state is while the
	// result is not LIVE because of the capture's initial snapshot; nil
	// otherwise.
	Hydration *Hydration `json:"hydration,omitempty"`
	// Continues says that the writer already wrote this query's progress:
	// a progress row that is gone then means the query was deleted and
	// created again since (Reset), and the write is refused with
	// ErrDeleted, so that a run that did not notice starts over instead of
	// writing on top of an emptied result. Not stored.
	Continues bool `json:"-"`
}

// Hydration is the progress of a query towards its first complete state:
// the capture's initial snapshot of the tables the query reads must be
// complete and applied before the result reflects one source position.
type Hydration struct {
	// SnapshotDone says the capture's snapshot is complete (every record
	// of it is in Kafka); the engine then reads to the topics' ends.
	SnapshotDone bool `json:"snapshotDone"`
	// RowsCaptured and RowsEstimate are the snapshot's rows copied so far
	// and its estimate of all rows, for the tables the query reads (0 when
	// the capture engine does not report them).
	RowsCaptured int64 `json:"rowsCaptured"`
	RowsEstimate int64 `json:"rowsEstimate"`
}

// NewHydration is what a capture's snapshot progress says of a query that
// reads tables ("<schema>.<table>").
func NewHydration(sp jobs.SnapshotProgress, tables map[string]bool) Hydration {
	h := Hydration{SnapshotDone: sp.Done}
	for _, t := range sp.Tables {
		if tables[t.Schema+"."+t.Table] {
			h.RowsCaptured += t.RowsCopied
			h.RowsEstimate += t.RowsEstimate
		}
	}
	return h
}

// Change is one change of a result row: Row nil deletes the row.
type Change struct {
	Key []byte
	Row []byte
}

// Result is a query's materialised result.
type Result struct {
	Rows     []json.RawMessage
	Progress Progress
}

// Store reads and writes results in the job-state database.
type Store struct {
	pool *pgxpool.Pool
}

// New refuses a nil pool.
func New(pool *pgxpool.Pool) (*Store, error) {
	if pool == nil {
		return nil, errors.New("results: nil pool")
	}
	return &Store{pool: pool}, nil
}

// checkNotDeleted locks the query's progress row for the transaction and
// refuses a deleted or stale query.
func checkNotDeleted(ctx context.Context, tx pgx.Tx, queryID string, continues bool) error {
	var state string
	err := tx.QueryRow(ctx, `SELECT state FROM query_progress WHERE query_id = $1 FOR UPDATE`, queryID).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		if continues {
			return fmt.Errorf("results: %s was deleted and created again: %w", queryID, ErrDeleted)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("results: lock progress of %s: %w", queryID, err)
	}
	switch state {
	case StateDeleted:
		return fmt.Errorf("results: %s: %w", queryID, ErrDeleted)
	case StateStale:
		return fmt.Errorf("results: %s: %w", queryID, ErrStale)
	}
	return nil
}

// Apply writes row changes and the progress they bring, in one
// transaction.
func (s *Store) Apply(ctx context.Context, queryID string, changes []Change, p Progress) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkNotDeleted(ctx, tx, queryID, p.Continues); err != nil {
			return err
		}
		b := &pgx.Batch{}
		for _, c := range changes {
			if c.Row == nil {
				b.Queue(`DELETE FROM query_results WHERE query_id = $1 AND row_key = $2`, queryID, string(c.Key))
				continue
			}
			b.Queue(`INSERT INTO query_results (query_id, row_key, row) VALUES ($1, $2, $3)
				ON CONFLICT (query_id, row_key) DO UPDATE SET row = EXCLUDED.row`, queryID, string(c.Key), c.Row)
		}
		queueProgress(b, queryID, p)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("results: apply %d changes to %s: %w", len(changes), queryID, err)
		}
		return nil
	})
}

// Replace makes rows the whole result, in one transaction: the state an
// engine reached after rebuilding replaces the one it had before.
func (s *Store) Replace(ctx context.Context, queryID string, rows []Change, p Progress) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkNotDeleted(ctx, tx, queryID, p.Continues); err != nil {
			return err
		}
		return replaceRows(ctx, tx, queryID, rows, p)
	})
}

// replaceRows makes rows the whole result at progress p, in tx.
func replaceRows(ctx context.Context, tx pgx.Tx, queryID string, rows []Change, p Progress) error {
	if _, err := tx.Exec(ctx, `DELETE FROM query_results WHERE query_id = $1`, queryID); err != nil {
		return fmt.Errorf("results: clear %s: %w", queryID, err)
	}
	b := &pgx.Batch{}
	for _, c := range rows {
		if c.Row != nil {
			b.Queue(`INSERT INTO query_results (query_id, row_key, row) VALUES ($1, $2, $3)`, queryID, string(c.Key), c.Row)
		}
	}
	queueProgress(b, queryID, p)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("results: replace %s (%s): %w", queryID, p.State, err)
	}
	return nil
}

// SetProgress records progress without changing rows (catching up, an
// error).
func (s *Store) SetProgress(ctx context.Context, queryID string, p Progress) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkNotDeleted(ctx, tx, queryID, p.Continues); err != nil {
			return err
		}
		b := &pgx.Batch{}
		queueProgress(b, queryID, p)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("results: progress of %s: %w", queryID, err)
		}
		return nil
	})
}

// MarkDeleted removes a query's rows and refuses later writes until Reset.
func (s *Store) MarkDeleted(ctx context.Context, queryID string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM query_results WHERE query_id = $1`, queryID); err != nil {
			return fmt.Errorf("results: delete rows of %s: %w", queryID, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM query_schema_checks WHERE query_id = $1`, queryID); err != nil {
			return fmt.Errorf("results: delete schema checks of %s: %w", queryID, err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO query_progress (query_id, state) VALUES ($1, $2)
			ON CONFLICT (query_id) DO UPDATE SET state = $2, positions = '{}', source_lsn = 0, source_ts = NULL,
				events_applied = 0, last_error = '', owner = '', hydration = NULL, updated_at = now()`, queryID, StateDeleted)
		if err != nil {
			return fmt.Errorf("results: mark %s deleted: %w", queryID, err)
		}
		return nil
	})
}

// Reset forgets a deleted or stale query's marker and rows, so that a
// query created again can write. It leaves a live query alone.
func (s *Store) Reset(ctx context.Context, queryID string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM query_progress WHERE query_id = $1 AND state IN ($2, $3)`, queryID, StateDeleted, StateStale)
		if err != nil {
			return fmt.Errorf("results: reset %s: %w", queryID, err)
		}
		if tag.RowsAffected() > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM query_results WHERE query_id = $1`, queryID); err != nil {
				return fmt.Errorf("results: reset rows of %s: %w", queryID, err)
			}
		}
		return nil
	})
}

// MarkStale stops a query's result where it is: its rows and position
// stay, the state becomes STALE with reason as LastError, and writes are
// refused until Reset. A deleted query stays deleted; a query with no
// progress yet gets a stale one with no rows.
func (s *Store) MarkStale(ctx context.Context, queryID, reason string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO query_progress (query_id, state, last_error) VALUES ($1, $2, $3)
		ON CONFLICT (query_id) DO UPDATE SET state = $2, last_error = $3, hydration = NULL, updated_at = now()
		WHERE query_progress.state <> $4`, queryID, StateStale, reason, StateDeleted)
	if err != nil {
		return fmt.Errorf("results: mark %s stale: %w", queryID, err)
	}
	return nil
}

// ReplaceStale makes rows the whole result at p's position and marks it
// stale with reason, in one transaction: a follower that can tell which
// of the rows it wrote were correct puts those back. A deleted query
// stays deleted.
func (s *Store) ReplaceStale(ctx context.Context, queryID string, rows []Change, p Progress, reason string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var state string
		err := tx.QueryRow(ctx, `SELECT state FROM query_progress WHERE query_id = $1 FOR UPDATE`, queryID).Scan(&state)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("results: lock progress of %s: %w", queryID, err)
		}
		if state == StateDeleted {
			return nil
		}
		p.State, p.LastError, p.Hydration = StateStale, reason, nil
		return replaceRows(ctx, tx, queryID, rows, p)
	})
}

func queueProgress(b *pgx.Batch, queryID string, p Progress) {
	positions, _ := json.Marshal(p.Positions)
	if p.Positions == nil {
		positions = []byte("{}")
	}
	var hydration []byte
	if p.Hydration != nil {
		hydration, _ = json.Marshal(p.Hydration)
	}
	b.Queue(`INSERT INTO query_progress (query_id, state, positions, source_lsn, source_ts, events_applied, last_error, owner, hydration, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
		ON CONFLICT (query_id) DO UPDATE SET state = EXCLUDED.state, positions = EXCLUDED.positions,
			source_lsn = EXCLUDED.source_lsn, source_ts = EXCLUDED.source_ts,
			events_applied = EXCLUDED.events_applied, last_error = EXCLUDED.last_error,
			owner = EXCLUDED.owner, hydration = EXCLUDED.hydration, updated_at = now()`,
		queryID, p.State, positions, p.SourceLSN, p.SourceTime, p.EventsApplied, p.LastError, p.Owner, hydration)
}

// Keys lists the keys of a query's result rows.
func (s *Store) Keys(ctx context.Context, queryID string) ([][]byte, error) {
	rows, err := s.pool.Query(ctx, `SELECT row_key FROM query_results WHERE query_id = $1`, queryID)
	if err != nil {
		return nil, fmt.Errorf("results: keys of %s: %w", queryID, err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]byte, error) {
		var k string
		err := r.Scan(&k)
		return []byte(k), err
	})
	if err != nil {
		return nil, fmt.Errorf("results: keys of %s: %w", queryID, err)
	}
	return keys, nil
}

// Progress reads a query's progress.
func (s *Store) Progress(ctx context.Context, queryID string) (Progress, error) {
	var p Progress
	var positions, hydration []byte
	err := s.pool.QueryRow(ctx, `SELECT state, positions, source_lsn, source_ts, events_applied, last_error, owner, updated_at, hydration
		FROM query_progress WHERE query_id = $1`, queryID).
		Scan(&p.State, &positions, &p.SourceLSN, &p.SourceTime, &p.EventsApplied, &p.LastError, &p.Owner, &p.UpdatedAt, &hydration)
	if errors.Is(err, pgx.ErrNoRows) {
		return Progress{}, ErrNotFound
	}
	if err != nil {
		return Progress{}, fmt.Errorf("results: read progress of %s: %w", queryID, err)
	}
	if err := json.Unmarshal(positions, &p.Positions); err != nil {
		return Progress{}, fmt.Errorf("results: positions of %s: %w", queryID, err)
	}
	if err := unmarshalHydration(hydration, &p); err != nil {
		return Progress{}, fmt.Errorf("results: hydration of %s: %w", queryID, err)
	}
	p.UpdatedAt = p.UpdatedAt.UTC()
	if p.SourceTime != nil {
		t := p.SourceTime.UTC()
		p.SourceTime = &t
	}
	return p, nil
}

// Result reads a query's rows and progress. One statement reads both, so
// they come from one snapshot, in one round trip.
func (s *Store) Result(ctx context.Context, queryID string) (Result, error) {
	var r Result
	var positions, rows, hydration []byte
	p := &r.Progress
	err := s.pool.QueryRow(ctx, `
		SELECT p.state, p.positions, p.source_lsn, p.source_ts, p.events_applied, p.last_error, p.owner, p.updated_at, p.hydration,
		       (SELECT coalesce(json_agg(r.row ORDER BY r.row_key), '[]') FROM query_results r WHERE r.query_id = p.query_id)
		FROM query_progress p WHERE p.query_id = $1`, queryID).
		Scan(&p.State, &positions, &p.SourceLSN, &p.SourceTime, &p.EventsApplied, &p.LastError, &p.Owner, &p.UpdatedAt, &hydration, &rows)
	if errors.Is(err, pgx.ErrNoRows) {
		return Result{}, ErrNotFound
	}
	if err != nil {
		return Result{}, fmt.Errorf("results: read %s: %w", queryID, err)
	}
	if err := json.Unmarshal(positions, &p.Positions); err != nil {
		return Result{}, fmt.Errorf("results: positions of %s: %w", queryID, err)
	}
	if err := unmarshalHydration(hydration, p); err != nil {
		return Result{}, fmt.Errorf("results: hydration of %s: %w", queryID, err)
	}
	if err := json.Unmarshal(rows, &r.Rows); err != nil {
		return Result{}, fmt.Errorf("results: rows of %s: %w", queryID, err)
	}
	p.UpdatedAt = p.UpdatedAt.UTC()
	if p.SourceTime != nil {
		t := p.SourceTime.UTC()
		p.SourceTime = &t
	}
	return r, nil
}

func unmarshalHydration(b []byte, p *Progress) error {
	if len(b) == 0 {
		return nil
	}
	p.Hydration = new(Hydration)
	return json.Unmarshal(b, p.Hydration)
}

// SetSchemaChecked records that a check of the source schema of each query
// that began at at found it intact. A time earlier than the one recorded
// is ignored.
func (s *Store) SetSchemaChecked(ctx context.Context, queryIDs []string, at time.Time) error {
	if len(queryIDs) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO query_schema_checks (query_id, clean_at)
		SELECT unnest($1::text[]), $2
		ON CONFLICT (query_id) DO UPDATE SET clean_at = greatest(query_schema_checks.clean_at, EXCLUDED.clean_at), updated_at = now()`,
		queryIDs, at)
	if err != nil {
		return fmt.Errorf("results: record schema checks: %w", err)
	}
	return nil
}

// SchemaChecked returns when the last check that found each query's
// source schema intact began; queries never checked are absent.
func (s *Store) SchemaChecked(ctx context.Context, queryIDs []string) (map[string]time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT query_id, clean_at FROM query_schema_checks WHERE query_id = ANY($1)`, queryIDs)
	if err != nil {
		return nil, fmt.Errorf("results: read schema checks: %w", err)
	}
	out := map[string]time.Time{}
	var id string
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &at}, func() error {
		out[id] = at
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("results: read schema checks: %w", err)
	}
	return out, nil
}
