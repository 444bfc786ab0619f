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
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/leader"
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
	// FreshThrough, when set, says the rows reflect every source
	// transaction acknowledged before it (SetFreshThrough). Not written by
	// the progress writes.
	FreshThrough *time.Time `json:"freshThrough,omitempty"`
	// RowsCorrect, for a STALE result, says its rows are the last correct
	// state (it went stale while LIVE); they are not a result otherwise.
	// Read only.
	RowsCorrect bool      `json:"rowsCorrect,omitempty"`
	LastError   string    `json:"lastError,omitempty"`
	Owner       string    `json:"owner,omitempty"`
	UpdatedAt   time.Time `json:"updatedAt"`
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

	mu     sync.Mutex
	pruned map[string]time.Time // when each query's removals were last pruned
}

// New refuses a nil pool.
func New(pool *pgxpool.Pool) (*Store, error) {
	if pool == nil {
		return nil, errors.New("results: nil pool")
	}
	return &Store{pool: pool, pruned: map[string]time.Time{}}, nil
}

// lockProgress locks the query's progress row for the transaction and
// returns its state, "" when there is none. Every write takes this lock
// (here, or in lock_query_result) before its version (newVersion), so
// that one query's versions commit in the order they were taken.
func lockProgress(ctx context.Context, tx pgx.Tx, queryID string) (string, error) {
	var state string
	err := tx.QueryRow(ctx, `SELECT state FROM query_progress WHERE query_id = $1 FOR UPDATE`, queryID).Scan(&state)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("results: lock progress of %s: %w", queryID, err)
	}
	return state, nil
}

// newVersion queues the taking of the write's version; the statements
// queued after it read it with currentVersion.
func newVersion(b *pgx.Batch) {
	b.Queue(`SELECT nextval('query_result_version')`)
}

const currentVersion = `currval('query_result_version')`

// queueUpsert and queueRemove queue one row change at the write's version.
// A removed row leaves a removal behind, so that a reader that follows the
// versions learns that it is gone.
func queueUpsert(b *pgx.Batch, queryID string, key, row []byte) {
	b.Queue(`INSERT INTO query_results (query_id, row_key, row, version) VALUES ($1, $2, $3, `+currentVersion+`)
		ON CONFLICT (query_id, row_key) DO UPDATE SET row = EXCLUDED.row, version = EXCLUDED.version`, queryID, string(key), row)
}

func queueRemove(b *pgx.Batch, queryID string, key []byte) {
	b.Queue(`WITH gone AS (DELETE FROM query_results WHERE query_id = $1 AND row_key = $2 RETURNING row_key)
		INSERT INTO query_result_removals (query_id, row_key, version) SELECT $1, row_key, `+currentVersion+` FROM gone
		ON CONFLICT (query_id, row_key) DO UPDATE SET version = EXCLUDED.version, removed_at = now()`, queryID, string(key))
}

// queueClear queues the removal of every row and removal of a query: what
// a reader held before is then only replaced as a whole (history_from).
func queueClear(b *pgx.Batch, queryID string) {
	b.Queue(`DELETE FROM query_results WHERE query_id = $1`, queryID)
	b.Queue(`DELETE FROM query_result_removals WHERE query_id = $1`, queryID)
}

// Apply writes row changes and the progress they bring, in one
// transaction.
func (s *Store) Apply(ctx context.Context, queryID string, changes []Change, p Progress) error {
	err := s.write(ctx, queryID, p.Continues, func(b *pgx.Batch) {
		for _, c := range changes {
			if c.Row == nil {
				queueRemove(b, queryID, c.Key)
			} else {
				queueUpsert(b, queryID, c.Key, c.Row)
			}
		}
		queueProgress(b, queryID, p, len(changes) > 0, false)
		s.queuePrune(b, queryID)
	})
	if err != nil {
		return fmt.Errorf("results: apply %d changes to %s: %w", len(changes), queryID, err)
	}
	return nil
}

// write runs a write in one round trip: the statements queue adds, after
// the check of the writer's lease (leader.QueueFenceCheck, when ctx
// carries one), the lock of the query's progress (lock_query_result,
// migration 00830) and the write's version, in one pipeline that
// PostgreSQL runs as one implicit transaction. A deleted or stale query
// gives ErrDeleted or ErrStale, a writer whose lease moved to another
// worker leader.ErrFenced, and nothing is written.
func (s *Store) write(ctx context.Context, queryID string, continues bool, queue func(b *pgx.Batch)) error {
	b := &pgx.Batch{}
	leader.QueueFenceCheck(ctx, b)
	b.Queue(`SELECT lock_query_result($1, $2)`, queryID, continues)
	newVersion(b)
	queue(b)
	err := s.pool.SendBatch(ctx, b).Close()
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "CQ001":
			return fmt.Errorf("%s: %w", pe.Message, ErrDeleted)
		case "CQ002":
			return fmt.Errorf("%s: %w", pe.Message, ErrStale)
		}
	}
	return leader.FenceError(err)
}

// Replace makes rows the whole result, in one transaction: the state an
// engine reached after rebuilding replaces the one it had before.
func (s *Store) Replace(ctx context.Context, queryID string, rows []Change, p Progress) error {
	err := s.write(ctx, queryID, p.Continues, func(b *pgx.Batch) { queueReplace(b, queryID, rows, p) })
	if err != nil {
		return fmt.Errorf("results: replace %s (%s): %w", queryID, p.State, err)
	}
	return nil
}

// queueReplace queues the statements that make rows the whole result at
// progress p, after the write's version.
func queueReplace(b *pgx.Batch, queryID string, rows []Change, p Progress) {
	queueClear(b, queryID)
	for _, c := range rows {
		if c.Row != nil {
			queueUpsert(b, queryID, c.Key, c.Row)
		}
	}
	queueProgress(b, queryID, p, true, true)
}

// SetProgress records progress without changing rows (catching up, an
// error).
func (s *Store) SetProgress(ctx context.Context, queryID string, p Progress) error {
	err := s.write(ctx, queryID, p.Continues, func(b *pgx.Batch) { queueProgress(b, queryID, p, false, false) })
	if err != nil {
		return fmt.Errorf("results: progress of %s: %w", queryID, err)
	}
	return nil
}

// MarkDeleted removes a query's rows and refuses later writes until Reset.
func (s *Store) MarkDeleted(ctx context.Context, queryID string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := lockProgress(ctx, tx, queryID); err != nil {
			return err
		}
		b := &pgx.Batch{}
		newVersion(b)
		queueClear(b, queryID)
		b.Queue(`DELETE FROM query_schema_checks WHERE query_id = $1`, queryID)
		queueDeleteCheckpoint(b, queryID)
		queueProgress(b, queryID, Progress{State: StateDeleted}, true, true)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("results: mark %s deleted: %w", queryID, err)
		}
		return nil
	})
}

// ForgetDeleted removes the result, progress and schema checks of every
// query that the projection (cached_queries) says is DELETED but whose
// result is still kept (progress that is not DELETED, or schema checks),
// of those engine runs. Deleting an
// environment marks the queries the projection lists then; a query
// created just before the delete may not be listed yet, and its runner,
// started once the projection has it, writes until the delete reaches the
// projection too. A query is cleared only while the transaction holds
// its lease (leaseKey: the advisory lock a runner holds while it runs the
// query, or follows its environment's results), so no runner writes meanwhile and one that runs it still is left
// alone, and only while the projection still says DELETED, read under the
// progress's lock. It leaves no DELETED marker, as Reset does not: the
// projection can lag several commands, so progress written while it says
// DELETED may be that of the query created again (its runner started
// from the projection of an older create, after the new create's Reset);
// a marker would stop that query for good, while a cleared one starts
// over when its runner starts again. It returns how many it cleared.
func (s *Store) ForgetDeleted(ctx context.Context, engine string, leaseKey func(queryID, environmentID string) int64) (int, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT k.query_id, q.environment_id
		FROM (SELECT query_id FROM query_progress WHERE state <> $1
		      UNION SELECT query_id FROM query_schema_checks) k
		JOIN cached_queries q ON q.query_id = k.query_id AND q.status = 'DELETED' AND q.engine = $2
		ORDER BY 1`, StateDeleted, engine)
	if err != nil {
		return 0, fmt.Errorf("results: list deleted queries: %w", err)
	}
	type deleted struct{ id, env string }
	qs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (deleted, error) {
		var d deleted
		return d, r.Scan(&d.id, &d.env)
	})
	if err != nil {
		return 0, fmt.Errorf("results: list deleted queries: %w", err)
	}
	n := 0
	for _, q := range qs {
		id := q.id
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var free bool
			if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, leaseKey(id, q.env)).Scan(&free); err != nil || !free {
				return err
			}
			state, err := lockProgress(ctx, tx, id)
			if err != nil {
				return err
			}
			var deleted bool
			if err := tx.QueryRow(ctx, `SELECT status = 'DELETED' FROM cached_queries WHERE query_id = $1`, id).Scan(&deleted); err != nil || !deleted {
				return err
			}
			b := &pgx.Batch{}
			if state != "" {
				queueClear(b, id)
				b.Queue(`DELETE FROM query_progress WHERE query_id = $1`, id)
			}
			b.Queue(`DELETE FROM query_schema_checks WHERE query_id = $1`, id)
			b.Queue(`DELETE FROM query_checkpoints WHERE query_id = $1`, id)
			n++
			return tx.SendBatch(ctx, b).Close()
		})
		if err != nil {
			return n, fmt.Errorf("results: forget deleted %s: %w", id, err)
		}
	}
	return n, nil
}

// Reset forgets a deleted or stale query's marker and rows, so that a
// query created again can write. It leaves a live query alone.
func (s *Store) Reset(ctx context.Context, queryID string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		state, err := lockProgress(ctx, tx, queryID)
		if err != nil || (state != StateDeleted && state != StateStale) {
			return err
		}
		b := &pgx.Batch{}
		queueClear(b, queryID)
		queueDeleteCheckpoint(b, queryID)
		b.Queue(`DELETE FROM query_progress WHERE query_id = $1`, queryID)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("results: reset %s: %w", queryID, err)
		}
		return nil
	})
}

// MarkStale stops a query's result where it is: its rows and position
// stay, the state becomes STALE with reason as LastError, and writes are
// refused until Reset. A deleted query stays deleted; a query with no
// progress yet gets a stale one with no rows. RowsCorrect says whether the
// rows are a result: only if the query was LIVE.
func (s *Store) MarkStale(ctx context.Context, queryID, reason string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if state, err := lockProgress(ctx, tx, queryID); err != nil || state == StateDeleted {
			return err
		}
		b := &pgx.Batch{}
		newVersion(b)
		// The rows stay a correct result only if they were one: the query
		// was LIVE (or already stale with correct rows).
		b.Queue(`INSERT INTO query_progress (query_id, state, last_error, version, history_from, rows_correct)
			VALUES ($1, $2, $3, `+currentVersion+`, `+currentVersion+`, false)
			ON CONFLICT (query_id) DO UPDATE SET state = $2, last_error = $3, hydration = NULL, updated_at = now(),
				version = EXCLUDED.version,
				rows_correct = query_progress.state = $4 OR (query_progress.state = $2 AND query_progress.rows_correct)`,
			queryID, StateStale, reason, StateLive)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("results: mark %s stale: %w", queryID, err)
		}
		// Last, just before the commit: the share lock it takes on the
		// lease's epoch is held as briefly as can be.
		return leader.CheckFence(ctx, tx)
	})
}

// ReplaceStale makes rows the whole result at p's position and marks it
// stale with reason, in one transaction: a follower that can tell which
// of the rows it wrote were correct puts those back. A deleted query
// stays deleted.
func (s *Store) ReplaceStale(ctx context.Context, queryID string, rows []Change, p Progress, reason string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if state, err := lockProgress(ctx, tx, queryID); err != nil || state == StateDeleted {
			return err
		}
		p.State, p.LastError, p.Hydration = StateStale, reason, nil
		b := &pgx.Batch{}
		newVersion(b)
		queueReplace(b, queryID, rows, p)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("results: replace %s as stale: %w", queryID, err)
		}
		return leader.CheckFence(ctx, tx) // last, as in MarkStale
	})
}

// queueProgress queues the write of p at the write's version. changed
// says the write changed rows; the progress's version then moves, as it
// does when the state, the source position or the error change, and only
// then: a reader's ETag stays while only counters move. replaced says
// the rows were replaced as a whole, without removals.
func queueProgress(b *pgx.Batch, queryID string, p Progress, changed, replaced bool) {
	positions, _ := json.Marshal(p.Positions)
	if p.Positions == nil {
		positions = []byte("{}")
	}
	var hydration []byte
	if p.Hydration != nil {
		hydration, _ = json.Marshal(p.Hydration)
	}
	b.Queue(`INSERT INTO query_progress (query_id, state, positions, source_lsn, source_ts, events_applied, last_error, owner, hydration, updated_at, version, history_from)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), `+currentVersion+`, `+currentVersion+`)
		ON CONFLICT (query_id) DO UPDATE SET state = EXCLUDED.state, positions = EXCLUDED.positions, rows_correct = true,
			source_lsn = EXCLUDED.source_lsn, source_ts = EXCLUDED.source_ts,
			events_applied = EXCLUDED.events_applied, last_error = EXCLUDED.last_error,
			owner = EXCLUDED.owner, hydration = EXCLUDED.hydration, updated_at = now(),
			version = CASE WHEN $10 OR query_progress.state <> EXCLUDED.state OR query_progress.source_lsn <> EXCLUDED.source_lsn
				OR query_progress.last_error <> EXCLUDED.last_error THEN EXCLUDED.version ELSE query_progress.version END,
			history_from = CASE WHEN $11 THEN EXCLUDED.version ELSE query_progress.history_from END`,
		queryID, p.State, positions, p.SourceLSN, p.SourceTime, p.EventsApplied, p.LastError, p.Owner, hydration, changed, replaced)
}

// pruneEvery is how often a writer forgets the removals of a query that
// are older than removalsKept; a reader that far behind reads the whole
// result again (history_from).
const (
	pruneEvery   = time.Minute
	removalsKept = "1 minute"
)

// queuePrune queues, at most every pruneEvery per query and Store, the
// deletion of the query's old removals.
func (s *Store) queuePrune(b *pgx.Batch, queryID string) {
	s.mu.Lock()
	if time.Since(s.pruned[queryID]) < pruneEvery {
		s.mu.Unlock()
		return
	}
	s.pruned[queryID] = time.Now()
	s.mu.Unlock()
	b.Queue(`WITH gone AS (DELETE FROM query_result_removals
			WHERE query_id = $1 AND removed_at < now() - interval '`+removalsKept+`' RETURNING version)
		UPDATE query_progress SET history_from = greatest(history_from, (SELECT max(version) + 1 FROM gone))
		WHERE query_id = $1 AND EXISTS (SELECT 1 FROM gone)`, queryID)
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

// progressColumns are the columns of query_progress that scanProgress
// reads, for an alias p.
const progressColumns = `p.state, p.positions, p.source_lsn, p.source_ts, p.events_applied, p.last_error, p.owner, p.updated_at, p.hydration, p.fresh_through, p.rows_correct`

// progressScan scans progressColumns into a Progress; finish decodes what
// needs decoding once the row is scanned.
type progressScan struct {
	p                    *Progress
	positions, hydration []byte
}

func (ps *progressScan) dest() []any {
	p := ps.p
	return []any{&p.State, &ps.positions, &p.SourceLSN, &p.SourceTime, &p.EventsApplied, &p.LastError, &p.Owner, &p.UpdatedAt, &ps.hydration, &p.FreshThrough, &p.RowsCorrect}
}

func (ps *progressScan) finish(queryID string) error {
	p := ps.p
	if err := json.Unmarshal(ps.positions, &p.Positions); err != nil {
		return fmt.Errorf("results: positions of %s: %w", queryID, err)
	}
	if err := unmarshalHydration(ps.hydration, p); err != nil {
		return fmt.Errorf("results: hydration of %s: %w", queryID, err)
	}
	p.UpdatedAt = p.UpdatedAt.UTC()
	for _, t := range []**time.Time{&p.SourceTime, &p.FreshThrough} {
		if *t != nil {
			u := (*t).UTC()
			*t = &u
		}
	}
	return nil
}

// Progress reads a query's progress.
func (s *Store) Progress(ctx context.Context, queryID string) (Progress, error) {
	var p Progress
	ps := progressScan{p: &p}
	err := s.pool.QueryRow(ctx, `SELECT `+progressColumns+` FROM query_progress p WHERE p.query_id = $1`, queryID).Scan(ps.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Progress{}, ErrNotFound
	}
	if err != nil {
		return Progress{}, fmt.Errorf("results: read progress of %s: %w", queryID, err)
	}
	if err := ps.finish(queryID); err != nil {
		return Progress{}, err
	}
	return p, nil
}

// Result reads a query's rows and progress. One statement reads both, so
// they come from one snapshot, in one round trip.
func (s *Store) Result(ctx context.Context, queryID string) (Result, error) {
	var r Result
	var rows []byte
	ps := progressScan{p: &r.Progress}
	err := s.pool.QueryRow(ctx, `
		SELECT `+progressColumns+`,
		       (SELECT coalesce(json_agg(r.row ORDER BY r.row_key), '[]') FROM query_results r WHERE r.query_id = p.query_id)
		FROM query_progress p WHERE p.query_id = $1`, queryID).
		Scan(append(ps.dest(), &rows)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Result{}, ErrNotFound
	}
	if err != nil {
		return Result{}, fmt.Errorf("results: read %s: %w", queryID, err)
	}
	if err := ps.finish(queryID); err != nil {
		return Result{}, err
	}
	if err := json.Unmarshal(rows, &r.Rows); err != nil {
		return Result{}, fmt.Errorf("results: rows of %s: %w", queryID, err)
	}
	return r, nil
}

// Delta is how a query's result changed since a version (see Since).
type Delta struct {
	// Found is false when the query has no result: Since then says nothing
	// else.
	Found    bool
	Progress Progress
	// Version is the result's version: the last write that changed its
	// rows, state, source position or error.
	Version int64
	// Whole says Rows are the whole result: the reader was too far behind
	// (or asked for the whole result) and replaces what it held. Removed
	// then holds the removals the store still knows, those since
	// HistoryFrom.
	Whole       bool
	HistoryFrom int64
	// Rows are the rows written since, and Removed the rows removed since
	// (Row nil), each with the version that wrote it. A key in both was
	// written and removed: the higher version is the latest.
	Rows, Removed []VersionedChange
}

// VersionedChange is a row change and the version of the write that made
// it.
type VersionedChange struct {
	Change
	Version int64
}

// Since reads a query's progress and the changes of its rows after
// version since, in one statement (one snapshot, one round trip). A
// negative since, or one behind what the store still knows, reads the
// whole result (Delta.Whole).
func (s *Store) Since(ctx context.Context, queryID string, since int64) (Delta, error) {
	d := Delta{Found: true}
	var rows, removed []byte
	ps := progressScan{p: &d.Progress}
	err := s.pool.QueryRow(ctx, `
		SELECT `+progressColumns+`, p.version, p.history_from,
		       (SELECT coalesce(json_agg(json_build_array(r.row_key, r.row, r.version)), '[]') FROM query_results r
		        WHERE r.query_id = p.query_id AND r.version > CASE WHEN $2 >= p.history_from THEN $2 ELSE -1 END),
		       (SELECT coalesce(json_agg(json_build_array(r.row_key, r.version)), '[]') FROM query_result_removals r
		        WHERE r.query_id = p.query_id AND r.version > CASE WHEN $2 >= p.history_from THEN $2 ELSE -1 END)
		FROM query_progress p WHERE p.query_id = $1`, queryID, since).
		Scan(append(ps.dest(), &d.Version, &d.HistoryFrom, &rows, &removed)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Delta{}, nil
	}
	if err != nil {
		return Delta{}, fmt.Errorf("results: read changes of %s since %d: %w", queryID, since, err)
	}
	if err := ps.finish(queryID); err != nil {
		return Delta{}, err
	}
	d.Whole = since < d.HistoryFrom
	if d.Rows, err = decodeVersioned(rows, true); err == nil {
		d.Removed, err = decodeVersioned(removed, false)
	}
	if err != nil {
		return Delta{}, fmt.Errorf("results: changes of %s: %w", queryID, err)
	}
	return d, nil
}

// decodeVersioned decodes [[key, row, version], ...] (withRow) or
// [[key, version], ...].
func decodeVersioned(b []byte, withRow bool) ([]VersionedChange, error) {
	var items [][]json.RawMessage
	if err := json.Unmarshal(b, &items); err != nil {
		return nil, err
	}
	out := make([]VersionedChange, len(items))
	for i, it := range items {
		want := 2
		if withRow {
			want = 3
		}
		if len(it) != want {
			return nil, fmt.Errorf("change %d has %d fields, not %d", i, len(it), want)
		}
		var key string
		if err := json.Unmarshal(it[0], &key); err != nil {
			return nil, fmt.Errorf("key of change %d: %w", i, err)
		}
		out[i].Key = []byte(key)
		if withRow {
			out[i].Row = it[1]
		}
		if err := json.Unmarshal(it[want-1], &out[i].Version); err != nil {
			return nil, fmt.Errorf("version of change %d: %w", i, err)
		}
	}
	return out, nil
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
	// A deleted query's check is not kept (MarkDeleted removed it).
	_, err := s.pool.Exec(ctx, `INSERT INTO query_schema_checks (query_id, clean_at)
		SELECT id, $2 FROM unnest($1::text[]) AS id
		WHERE NOT EXISTS (SELECT 1 FROM query_progress p WHERE p.query_id = id AND p.state = $3)
		ON CONFLICT (query_id) DO UPDATE SET clean_at = greatest(query_schema_checks.clean_at, EXCLUDED.clean_at), updated_at = now()`,
		queryIDs, at, StateDeleted)
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
