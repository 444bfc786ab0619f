package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/leader"
)

// Phases a capture goes through, as recorded in embedded_captures.phase.
const (
	phaseNone      = ""
	phaseStarting  = "starting"
	phaseSnapshot  = "snapshot"
	phaseStreaming = "streaming"
	phaseRetrying  = "retrying"
)

// errNotWanted says the capture was deleted (or never registered), so a
// runner must create nothing for it and stop.
var errNotWanted = errors.New("capture is deleted or not registered")

// errChanged says Ensure changed the capture's settings; the runner
// restarts with the new ones.
var errChanged = errors.New("capture settings changed")

// captureRow is one row of embedded_captures.
type captureRow struct {
	EnvironmentID     string
	ConnectionSealed  string
	SlotName          string
	PublicationName   string
	TopicPrefix       string
	Deleted           bool
	Version           int64
	SnapshotLSN       *int64
	Phase             string
	Worker            string
	Snapshot          *jobs.SnapshotProgress
	Lag               *jobs.StreamLag
	Warnings          []string
	LastError         string
	LastErrorTerminal bool
	HeartbeatAt       *time.Time
	// SnapshotRequested says who asked for a new snapshot and why
	// (requestSnapshot), until that snapshot completes.
	SnapshotRequested string
}

// store reads and writes embedded_captures in the job-state database.
type store struct {
	pool *pgxpool.Pool
}

const rowColumns = `environment_id, connection_sealed, slot_name, publication_name, topic_prefix,
	deleted, version, snapshot_lsn, phase, worker, snapshot, lag, warnings,
	last_error, last_error_terminal, heartbeat_at, snapshot_requested`

func scanRow(r pgx.Row) (captureRow, error) {
	var c captureRow
	var snap, lag, warnings []byte
	err := r.Scan(&c.EnvironmentID, &c.ConnectionSealed, &c.SlotName, &c.PublicationName, &c.TopicPrefix,
		&c.Deleted, &c.Version, &c.SnapshotLSN, &c.Phase, &c.Worker, &snap, &lag, &warnings,
		&c.LastError, &c.LastErrorTerminal, &c.HeartbeatAt, &c.SnapshotRequested)
	if err != nil {
		return c, err
	}
	if len(snap) > 0 {
		c.Snapshot = new(jobs.SnapshotProgress)
		if err := json.Unmarshal(snap, c.Snapshot); err != nil {
			return c, fmt.Errorf("snapshot progress of %s: %w", c.EnvironmentID, err)
		}
	}
	if len(lag) > 0 {
		c.Lag = new(jobs.StreamLag)
		if err := json.Unmarshal(lag, c.Lag); err != nil {
			return c, fmt.Errorf("lag of %s: %w", c.EnvironmentID, err)
		}
	}
	if len(warnings) > 0 {
		if err := json.Unmarshal(warnings, &c.Warnings); err != nil {
			return c, fmt.Errorf("warnings of %s: %w", c.EnvironmentID, err)
		}
	}
	return c, nil
}

// load reads an environment's row; ok is false when there is none.
func (s *store) load(ctx context.Context, environmentID string) (captureRow, bool, error) {
	c, err := scanRow(s.pool.QueryRow(ctx, `SELECT `+rowColumns+` FROM embedded_captures WHERE environment_id = $1`, environmentID))
	if errors.Is(err, pgx.ErrNoRows) {
		return captureRow{}, false, nil
	}
	if err != nil {
		return captureRow{}, false, fmt.Errorf("read embedded capture %s: %w", environmentID, err)
	}
	return c, true, nil
}

// register makes the row say what spec says, undeleting it. bump says the
// settings changed: the version goes up so that a running capture restarts,
// and when the slot changed or the row was deleted the snapshot is to be
// taken again.
func (s *store) register(ctx context.Context, r captureRow) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO embedded_captures AS c (environment_id, connection_sealed, slot_name, publication_name, topic_prefix)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (environment_id) DO UPDATE SET
			connection_sealed = EXCLUDED.connection_sealed,
			slot_name         = EXCLUDED.slot_name,
			publication_name  = EXCLUDED.publication_name,
			topic_prefix      = EXCLUDED.topic_prefix,
			deleted           = false,
			version           = c.version + 1,
			snapshot_lsn = CASE WHEN c.deleted OR c.slot_name <> EXCLUDED.slot_name THEN NULL ELSE c.snapshot_lsn END,
			snapshot     = CASE WHEN c.deleted OR c.slot_name <> EXCLUDED.slot_name THEN NULL ELSE c.snapshot END,
			phase        = CASE WHEN c.deleted THEN '' ELSE c.phase END,
			last_error   = '',
			last_error_terminal = false,
			updated_at   = now()`,
		r.EnvironmentID, r.ConnectionSealed, r.SlotName, r.PublicationName, r.TopicPrefix)
	if err != nil {
		return fmt.Errorf("register embedded capture %s: %w", r.EnvironmentID, err)
	}
	return nil
}

// markDeleted records that the capture is to be gone, clears what it knew
// of its tables' descriptions, then waits for a runner that is creating
// something in the source database under fence. The sealed connection
// string goes too: a deleted capture keeps no credentials (Delete drops
// the slot with the environment's binding; a create registers it again).
func (s *store) markDeleted(ctx context.Context, environmentID string) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE embedded_captures SET deleted = true, version = version + 1, connection_sealed = '',
			snapshot_lsn = NULL, phase = '', worker = '', snapshot = NULL, lag = NULL, warnings = NULL,
			last_error = '', last_error_terminal = false, heartbeat_at = NULL, updated_at = now()
		WHERE environment_id = $1`, environmentID)
	if err != nil {
		return fmt.Errorf("mark embedded capture %s deleted: %w", environmentID, err)
	}
	if err := s.forgetDescriptions(ctx, environmentID); err != nil {
		return err
	}
	// Wait for a runner that is creating something under fence.
	return s.withLock(ctx, "pg_advisory_lock", "pg_advisory_unlock", environmentID, func(*pgxpool.Conn) error { return nil })
}

// wanted lists the environments whose capture should run.
func (s *store) wanted(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT environment_id FROM embedded_captures WHERE NOT deleted ORDER BY environment_id`)
	if err != nil {
		return nil, fmt.Errorf("list embedded captures: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list embedded captures: %w", err)
	}
	return ids, nil
}

// fence runs fn, which creates something in the source database, under a
// shared advisory lock of the capture: Delete, after marking the capture
// deleted, takes that lock exclusively, so it waits for fn and then drops
// what fn created. fn does not run (errNotWanted) when the capture is
// deleted, or (errChanged) when its version moved on.
//
// An advisory lock rather than a row lock: a transaction left open in the
// job-state database would make CREATE_REPLICATION_SLOT wait for it forever
// when the job state and the source share a server.
func (s *store) fence(ctx context.Context, environmentID string, version int64, fn func() error) error {
	return s.withLock(ctx, "pg_advisory_lock_shared", "pg_advisory_unlock_shared", environmentID, func(conn *pgxpool.Conn) error {
		var current int64
		var deleted bool
		err := conn.QueryRow(ctx, `SELECT version, deleted FROM embedded_captures WHERE environment_id = $1`, environmentID).Scan(&current, &deleted)
		switch {
		case errors.Is(err, pgx.ErrNoRows) || (err == nil && deleted):
			return errNotWanted
		case err != nil:
			return fmt.Errorf("fence embedded capture %s: %w", environmentID, err)
		case current != version:
			return errChanged
		}
		return fn()
	})
}

// fenceKey is the advisory lock that fence and markDeleted share.
func fenceKey(environmentID string) int64 {
	h := fnv.New64a()
	h.Write([]byte("cdcq/capture-fence/"))
	h.Write([]byte(environmentID))
	return int64(h.Sum64())
}

// withLock runs fn holding a session-level advisory lock on a pooled
// connection. Should locking or unlocking go wrong, the connection is
// closed, which releases whatever it holds.
func (s *store) withLock(ctx context.Context, lock, unlock, environmentID string, fn func(*pgxpool.Conn) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("lock embedded capture %s: %w", environmentID, err)
	}
	defer conn.Release()
	key := fenceKey(environmentID)
	if _, err := conn.Exec(ctx, `SELECT `+lock+`($1)`, key); err != nil {
		conn.Conn().Close(context.Background())
		return fmt.Errorf("lock embedded capture %s: %w", environmentID, err)
	}
	ferr := fn(conn)
	if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT `+unlock+`($1)`, key); err != nil {
		conn.Conn().Close(context.Background())
	}
	return ferr
}

// setSnapshotLSN records that the snapshot taken at lsn is complete (or,
// with nil, that a snapshot is to be taken).
func (s *store) setSnapshotLSN(ctx context.Context, environmentID string, version int64, lsn *int64, progress *jobs.SnapshotProgress) error {
	snap, err := jsonOrNull(progress)
	if err != nil {
		return err
	}
	tag, err := leader.FencedExec(ctx, s.pool, `
		UPDATE embedded_captures SET snapshot_lsn = $3, snapshot = $4, updated_at = now(),
			snapshot_requested = CASE WHEN $3::bigint IS NULL THEN snapshot_requested ELSE '' END
		WHERE environment_id = $1 AND version = $2 AND NOT deleted`, environmentID, version, lsn, snap)
	if err != nil {
		return fmt.Errorf("record snapshot of embedded capture %s: %w", environmentID, err)
	}
	if tag.RowsAffected() == 0 {
		return errNotWanted
	}
	return nil
}

// requestSnapshot makes the capture take a new snapshot: it forgets that
// its snapshot is complete (the queries of the environment then wait for
// the new one, SnapshotProgress) and bumps the version, so that a running
// session restarts (the reporter sees errChanged) and, finding no
// snapshot, starts one as after a crash during a snapshot. ends are where
// the requester's topics end now, recorded with the request. It says
// whether a snapshot was requested; a deleted or unknown capture gives
// errNotWanted.
//
// No new snapshot is requested when one that serves the requester is
// pending or whole in the topics:
//   - an earlier request's snapshot is still to complete: its records all
//     follow that request, so a query that reads the topics from their log
//     start reads them all;
//   - the snapshot is complete and starts says every partition of the
//     requester's topics starts (log start, where the requester reads from)
//     at or below the end recorded with the last request: every snapshot
//     completed since was written after those ends, so none of its records
//     are lost. A query that restarts after the snapshot it asked for
//     completed but before it went LIVE then reads that snapshot again
//     instead of asking for one more, environment-wide. A partition the
//     last request did not record (another query's topics) gets a new
//     snapshot: where the old one's records start there is unknown.
func (s *store) requestSnapshot(ctx context.Context, environmentID, reason string, ends, starts map[string]map[int32]int64) (bool, error) {
	requested := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var deleted, done bool
		var pending string
		var recorded map[string]map[int32]int64
		err := tx.QueryRow(ctx, `SELECT deleted, snapshot_lsn IS NOT NULL, snapshot_requested, snapshot_requested_ends
			FROM embedded_captures WHERE environment_id = $1 FOR UPDATE`, environmentID).Scan(&deleted, &done, &pending, &recorded)
		switch {
		case errors.Is(err, pgx.ErrNoRows) || (err == nil && deleted):
			return errNotWanted
		case err != nil:
			return err
		case !done && pending != "":
			return nil // the earlier request's snapshot is under way
		case done && len(starts) > 0 && covers(recorded, starts):
			return nil // the last requested snapshot is whole in the topics
		}
		requested = true
		endsJSON, err := json.Marshal(ends)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			UPDATE embedded_captures SET snapshot_lsn = NULL, snapshot = NULL, snapshot_requested = $2,
				snapshot_requested_ends = $3, version = version + 1, updated_at = now()
			WHERE environment_id = $1`, environmentID, reason, endsJSON)
		return err
	})
	if err != nil && !errors.Is(err, errNotWanted) {
		err = fmt.Errorf("request a snapshot of embedded capture %s: %w", environmentID, err)
	}
	return requested && err == nil, err
}

// covers says whether every partition of starts starts at or below the
// offset recorded for it.
func covers(recorded, starts map[string]map[int32]int64) bool {
	for t, ps := range starts {
		for p, at := range ps {
			end, ok := recorded[t][p]
			if !ok || at > end {
				return false
			}
		}
	}
	return true
}

// report is what a running capture publishes about itself.
type report struct {
	Phase    string
	Worker   string
	Snapshot *jobs.SnapshotProgress
	Lag      *jobs.StreamLag
	Warnings []string
}

// publish records a running capture's report. It returns errNotWanted when
// the capture was deleted and errChanged when its settings changed.
func (s *store) publish(ctx context.Context, environmentID string, version int64, r report) error {
	snap, err := jsonOrNull(r.Snapshot)
	if err != nil {
		return err
	}
	lag, err := jsonOrNull(r.Lag)
	if err != nil {
		return err
	}
	var warnings any
	if len(r.Warnings) > 0 {
		b, err := json.Marshal(r.Warnings)
		if err != nil {
			return err
		}
		warnings = b
	}
	var current int64
	var deleted bool
	err = leader.FencedQueryRow(ctx, s.pool, `
		WITH upd AS (
			UPDATE embedded_captures SET
				-- A run that is starting leaves the last failure on show
				-- until it gets going.
				phase = CASE WHEN $3 = 'starting' AND phase = 'retrying' THEN phase ELSE $3 END,
				last_error_terminal = CASE WHEN $3 IN ('snapshot', 'streaming') THEN false ELSE last_error_terminal END,
				worker = $4, snapshot = COALESCE($5, snapshot), lag = $6, warnings = $7,
				heartbeat_at = now(), updated_at = now()
			WHERE environment_id = $1 AND version = $2 AND NOT deleted
			RETURNING version)
		SELECT COALESCE((SELECT version FROM upd), c.version), c.deleted
		FROM embedded_captures c WHERE c.environment_id = $1`,
		environmentID, version, r.Phase, r.Worker, snap, lag, warnings).Scan(&current, &deleted)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return errNotWanted
	case err != nil:
		return fmt.Errorf("report on embedded capture %s: %w", environmentID, err)
	case deleted:
		return errNotWanted
	case current != version:
		return errChanged
	}
	return nil
}

// recordError records why a capture's run ended.
func (s *store) recordError(ctx context.Context, environmentID string, version int64, worker string, cause error) error {
	_, err := leader.FencedExec(ctx, s.pool, `
		UPDATE embedded_captures SET phase = $3, worker = $4, last_error = $5, last_error_terminal = $6,
			heartbeat_at = now(), updated_at = now()
		WHERE environment_id = $1 AND version = $2 AND NOT deleted`,
		environmentID, version, phaseRetrying, worker, cause.Error(), jobs.IsTerminal(cause))
	if err != nil {
		return fmt.Errorf("record error of embedded capture %s: %w", environmentID, err)
	}
	return nil
}

// touch refreshes the heartbeat of a capture that is waiting to retry.
func (s *store) touch(ctx context.Context, environmentID string, version int64) error {
	_, err := leader.FencedExec(ctx, s.pool, `
		UPDATE embedded_captures SET heartbeat_at = now()
		WHERE environment_id = $1 AND version = $2 AND NOT deleted`, environmentID, version)
	return err
}

func jsonOrNull(v any) (any, error) {
	switch x := v.(type) {
	case *jobs.SnapshotProgress:
		if x == nil {
			return nil, nil
		}
	case *jobs.StreamLag:
		if x == nil {
			return nil, nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// checkFence says, when ctx carries a lease (leader.Fence), whether it is
// still this worker's: leader.ErrFenced when another worker took the
// capture over. For actions on the source that no job-state transaction
// covers (dropping a slot, terminating a stream).
func (s *store) checkFence(ctx context.Context) error {
	_, err := leader.FencedExec(ctx, s.pool, `SELECT 1`)
	return err
}
