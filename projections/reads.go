package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/jobs"
)

const (
	// rejectedShown is how many rejected commands a ConnectionView lists.
	rejectedShown = 10
	// DefaultEventsLimit is what Events returns when asked for no limit.
	DefaultEventsLimit = 50
	// MaxEventsLimit caps Events.
	MaxEventsLimit = 1000
)

// Connection returns an environment's capture job with its cached queries
// (oldest first) and its most recent rejected commands (newest first).
//
// An environment that has only rejected commands (a malformed create never
// got as far as a connection) is reported as a FAILED job whose reason is
// the latest rejection. An environment with neither gives ErrNotFound.
func (s *Store) Connection(ctx context.Context, environmentID string) (ConnectionView, error) {
	var v ConnectionView
	err := readTx(ctx, s, func(tx pgx.Tx) error {
		found, err := scanConnection(ctx, tx, environmentID, &v)
		if err != nil {
			return err
		}
		if v.RejectedCommands, err = rejectedCommands(ctx, tx, environmentID); err != nil {
			return err
		}
		if !found {
			if len(v.RejectedCommands) == 0 {
				return ErrNotFound
			}
			v = rejectedOnly(environmentID, v.RejectedCommands)
		}
		v.CachedQueries, err = environmentQueries(ctx, tx, environmentID)
		return err
	})
	if err != nil {
		return ConnectionView{}, fmt.Errorf("projections: read connection %s: %w", environmentID, err)
	}
	return v, nil
}

func scanConnection(ctx context.Context, tx pgx.Tx, environmentID string, v *ConnectionView) (bool, error) {
	var connector, slot, capture []byte
	var observedAt *time.Time
	err := tx.QueryRow(ctx, `
		SELECT environment_id, connector_name, status, reason, engine, connection_redacted,
		       slot_name, publication_name, connector, slot, capture, created_at, updated_at, observed_at
		FROM connections WHERE environment_id = $1`, environmentID).Scan(
		&v.EnvironmentID, &v.Name, &v.Status, &v.Reason, &v.Engine, &v.Connection,
		&v.SlotName, &v.PublicationName, &connector, &slot, &capture, &v.CreatedAt, &v.UpdatedAt, &observedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	v.ID = v.EnvironmentID
	v.CreatedAt, v.UpdatedAt = v.CreatedAt.UTC(), v.UpdatedAt.UTC()
	if observedAt != nil {
		t := observedAt.UTC()
		v.ObservedAt = &t
	}
	if v.Connector, err = decodeJSON[jobs.ConnectorState](connector); err != nil {
		return false, fmt.Errorf("connector observation: %w", err)
	}
	if v.Slot, err = decodeJSON[jobs.SlotState](slot); err != nil {
		return false, fmt.Errorf("slot observation: %w", err)
	}
	c, err := decodeJSON[jobs.CaptureStatus](capture)
	if err != nil {
		return false, fmt.Errorf("capture observation: %w", err)
	}
	if c != nil {
		v.Snapshot, v.Lag, v.LastError, v.Warnings, v.SchemaChanges = c.Snapshot, c.Lag, c.LastError, c.Warnings, c.SchemaChanges
	}
	return true, nil
}

func rejectedOnly(environmentID string, rejected []RejectedCommand) ConnectionView {
	latest, oldest := rejected[0], rejected[len(rejected)-1]
	return ConnectionView{
		ID:               environmentID,
		EnvironmentID:    environmentID,
		Status:           jobs.StatusFailed,
		Reason:           fmt.Sprintf("command %s rejected: %s", latest.CommandName, latest.Reason),
		RejectedCommands: rejected,
		CreatedAt:        oldest.At,
		UpdatedAt:        latest.At,
	}
}

func rejectedCommands(ctx context.Context, tx pgx.Tx, environmentID string) ([]RejectedCommand, error) {
	rows, err := tx.Query(ctx, `
		SELECT command_id, command_name, reason, at
		FROM rejected_commands WHERE environment_id = $1
		ORDER BY at DESC, id DESC LIMIT $2`, environmentID, rejectedShown)
	if err != nil {
		return nil, fmt.Errorf("rejected commands: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RejectedCommand, error) {
		var c RejectedCommand
		err := r.Scan(&c.CommandID, &c.CommandName, &c.Reason, &c.At)
		c.At = c.At.UTC()
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("rejected commands: %w", err)
	}
	return out, nil
}

func environmentQueries(ctx context.Context, tx pgx.Tx, environmentID string) ([]QueryView, error) {
	rows, err := tx.Query(ctx, `SELECT `+queryColumns+`
		FROM cached_queries WHERE environment_id = $1
		ORDER BY created_at, query_id`, environmentID)
	if err != nil {
		return nil, fmt.Errorf("cached queries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (QueryView, error) { return scanQuery(r) })
	if err != nil {
		return nil, fmt.Errorf("cached queries: %w", err)
	}
	if out == nil {
		out = []QueryView{} // "cachedQueries": [] rather than null
	}
	return out, nil
}

// CachedQuery returns a cached query's job, or ErrNotFound.
func (s *Store) CachedQuery(ctx context.Context, queryID string) (QueryView, error) {
	v, err := scanQuery(s.pool.QueryRow(ctx, `SELECT `+queryColumns+`
		FROM cached_queries WHERE query_id = $1`, queryID))
	if errors.Is(err, pgx.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return QueryView{}, fmt.Errorf("projections: read cached query %s: %w", queryID, err)
	}
	return v, nil
}

// CachedQueryDefinition reads a cached query's view and the Prisma schema
// it was created with (which, with its SQL, gives its result columns).
func (s *Store) CachedQueryDefinition(ctx context.Context, queryID string) (QueryView, string, error) {
	var v QueryView
	var schema string
	err := s.pool.QueryRow(ctx, `SELECT `+queryColumns+`, schema_text FROM cached_queries WHERE query_id = $1`, queryID).
		Scan(append(queryDest(&v), &schema)...)
	if errors.Is(err, pgx.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return QueryView{}, "", fmt.Errorf("projections: read cached query %s: %w", queryID, err)
	}
	v.CreatedAt, v.UpdatedAt = v.CreatedAt.UTC(), v.UpdatedAt.UTC()
	return v, schema, nil
}

const queryColumns = `query_id, pipeline_name, status, reason, environment_id, engine,
	sql_query, job_id, job_state, root_exception, created_at, updated_at`

func queryDest(v *QueryView) []any {
	return []any{&v.ID, &v.Name, &v.Status, &v.Reason, &v.EnvironmentID, &v.Engine,
		&v.SQLQuery, &v.JobID, &v.JobState, &v.RootException, &v.CreatedAt, &v.UpdatedAt}
}

func scanQuery(r pgx.Row) (QueryView, error) {
	var v QueryView
	err := r.Scan(queryDest(&v)...)
	v.CreatedAt, v.UpdatedAt = v.CreatedAt.UTC(), v.UpdatedAt.UTC()
	return v, err
}

// ActiveQueries lists the cached queries a status poller should observe:
// those not DELETED whose engine is configured, with their last
// observation.
func (s *Store) ActiveQueries(ctx context.Context) ([]ActiveQuery, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT query_id, environment_id, pipeline_name, engine, sql_query, schema_text,
		       last_command_id, command_seq, status, reason, job_id, job_state, root_exception
		FROM cached_queries
		WHERE status <> 'DELETED' AND engine <> 'none'
		ORDER BY query_id`)
	if err != nil {
		return nil, fmt.Errorf("projections: list active queries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ActiveQuery, error) {
		var q ActiveQuery
		err := r.Scan(&q.QueryID, &q.EnvironmentID, &q.PipelineName, &q.Engine, &q.SQLQuery, &q.Schema,
			&q.CommandID, &q.CommandSeq, &q.Last.Status, &q.Last.Reason, &q.Last.JobID, &q.Last.JobState, &q.Last.RootException)
		return q, err
	})
	if err != nil {
		return nil, fmt.Errorf("projections: list active queries: %w", err)
	}
	return out, nil
}

// ActiveConnections lists the captures the status poller should observe:
// every connection not DELETED whose engine is not "none", each with the
// last observation recorded so that only changes need publishing. A row
// without a sealed connection string (one that failed before it was ever
// requested) has nothing to observe with and is left out.
func (s *Store) ActiveConnections(ctx context.Context) ([]ActiveConnection, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT environment_id, connector_name, slot_name, publication_name, connection_sealed,
		       last_command_id, command_seq, status, reason, connector, slot, capture
		FROM connections
		WHERE status <> 'DELETED' AND engine <> 'none' AND connection_sealed <> ''
		ORDER BY environment_id`)
	if err != nil {
		return nil, fmt.Errorf("projections: list active connections: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ActiveConnection, error) {
		var a ActiveConnection
		var connector, slot, capture []byte
		if err := r.Scan(&a.EnvironmentID, &a.ConnectorName, &a.SlotName, &a.PublicationName,
			&a.ConnectionSealed, &a.CommandID, &a.CommandSeq, &a.Last.Status, &a.Last.Reason, &connector, &slot, &capture); err != nil {
			return a, err
		}
		var err error
		if a.Last.Connector, err = decodeJSON[jobs.ConnectorState](connector); err != nil {
			return a, fmt.Errorf("connector observation of %s: %w", a.EnvironmentID, err)
		}
		if a.Last.Slot, err = decodeJSON[jobs.SlotState](slot); err != nil {
			return a, fmt.Errorf("slot observation of %s: %w", a.EnvironmentID, err)
		}
		// The whole observation, when there is one, is what the poller
		// compares with.
		c, err := decodeJSON[jobs.CaptureStatus](capture)
		if err != nil {
			return a, fmt.Errorf("capture observation of %s: %w", a.EnvironmentID, err)
		}
		if c != nil {
			a.Last = *c
		}
		return a, nil
	})
	if err != nil {
		return nil, fmt.Errorf("projections: list active connections: %w", err)
	}
	return out, nil
}

// Events returns up to limit of an environment's most recent events, newest
// first. limit <= 0 means DefaultEventsLimit; it is capped at MaxEventsLimit.
func (s *Store) Events(ctx context.Context, environmentID string, limit int) ([]EventView, error) {
	if limit <= 0 {
		limit = DefaultEventsLimit
	}
	limit = min(limit, MaxEventsLimit)
	rows, err := s.pool.Query(ctx, `
		SELECT event_id, name, command_id, at, recorded_at, payload
		FROM job_events WHERE environment_id = $1
		ORDER BY id DESC LIMIT $2`, environmentID, limit)
	if err != nil {
		return nil, fmt.Errorf("projections: read events of %s: %w", environmentID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (EventView, error) {
		var e EventView
		var payload []byte
		err := r.Scan(&e.EventID, &e.Name, &e.CommandID, &e.At, &e.RecordedAt, &payload)
		e.At, e.RecordedAt, e.Payload = e.At.UTC(), e.RecordedAt.UTC(), payload
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("projections: read events of %s: %w", environmentID, err)
	}
	return out, nil
}

// readTx runs fn in a read-only snapshot, so that a view's parts agree.
func readTx(ctx context.Context, s *Store, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{
		IsoLevel:   pgx.RepeatableRead,
		AccessMode: pgx.ReadOnly,
	}, fn)
}

// decodeJSON reads a nullable jsonb column into a pointer, nil for NULL.
func decodeJSON[T any](b []byte) (*T, error) {
	if b == nil {
		return nil, nil
	}
	v := new(T)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, err
	}
	return v, nil
}
