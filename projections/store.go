package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/jobs"
)

// ErrBadEvent marks an event that can never be applied: its body does not
// decode, its name is unknown, or it lacks a field the read model needs.
// Retrying cannot help, so the projector dead-letters it. Other errors from
// Apply and Handle are database failures and worth retrying.
var ErrBadEvent = errors.New("bad event")

// Store is the read model in Postgres. Its methods are safe for concurrent
// use.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store over pool, whose database must have been migrated
// with migrations.Up.
func NewStore(pool *pgxpool.Pool) (*Store, error) {
	if pool == nil {
		return nil, errors.New("projections: nil pool")
	}
	return &Store{pool: pool}, nil
}

// Handle decodes an event from its name header and JSON body and applies it.
// A body that cannot be decoded yields an error wrapping ErrBadEvent.
func (s *Store) Handle(ctx context.Context, name string, body []byte) error {
	ev, err := events.Decode(name, body)
	if err != nil {
		return fmt.Errorf("projections: %w: %w", ErrBadEvent, err)
	}
	return s.Apply(ctx, ev)
}

// Apply folds one event into the read model in one transaction. It is
// idempotent: the event id is recorded in job_events, and an event whose id
// is already there changes nothing and returns nil. A sampled observation
// (events.ConnectionObserved.Sample) is folded without being recorded;
// folding it twice leaves the same row.
func (s *Store) Apply(ctx context.Context, ev events.Event) error {
	ev, err := dereference(ev)
	if err != nil {
		return fmt.Errorf("projections: %w: %w", ErrBadEvent, err)
	}
	m := ev.EventMeta()
	if err := validate(ev); err != nil {
		return fmt.Errorf("projections: %w: %s %q: %w", ErrBadEvent, ev.EventName(), m.EventID, err)
	}
	payload, err := historyPayload(ev)
	if err != nil {
		return fmt.Errorf("projections: %w: encode %s %q: %w", ErrBadEvent, ev.EventName(), m.EventID, err)
	}
	at := m.At.UTC()
	if m.At.IsZero() {
		at = time.Now().UTC()
	}
	if o, ok := ev.(events.ConnectionObserved); ok && o.Sample {
		// Not kept in job_events (events.ConnectionObserved.Sample). A
		// redelivery folds the same figures again, which changes nothing
		// a newer observation of the same environment, later on its
		// partition, does not change after it.
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fold(ctx, tx, ev, at) })
		if err != nil {
			return fmt.Errorf("projections: apply %s %q: %w", ev.EventName(), m.EventID, err)
		}
		return nil
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			INSERT INTO job_events (event_id, environment_id, name, command_id, payload, at)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (event_id) DO NOTHING`,
			m.EventID, m.EnvironmentID, ev.EventName(), m.CommandID, payload, at)
		if err != nil {
			return fmt.Errorf("record event: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil // applied before: a redelivery
		}
		return fold(ctx, tx, ev, at)
	})
	if err != nil {
		return fmt.Errorf("projections: apply %s %q: %w", ev.EventName(), m.EventID, err)
	}
	return nil
}

// dereference turns *events.X (what events.Decode returns) into events.X, so
// that fold has one case per event type.
func dereference(ev events.Event) (events.Event, error) {
	if ev == nil {
		return nil, errors.New("nil event")
	}
	v := reflect.ValueOf(ev)
	if v.Kind() != reflect.Pointer {
		return ev, nil
	}
	if v.IsNil() {
		return nil, errors.New("nil event")
	}
	plain, ok := v.Elem().Interface().(events.Event)
	if !ok {
		return nil, fmt.Errorf("unsupported event type %T", ev)
	}
	return plain, nil
}

func validate(ev events.Event) error {
	m := ev.EventMeta()
	if m.EventID == "" {
		return errors.New("no eventId")
	}
	// A rejected command may be too malformed to name its environment.
	if _, rejected := ev.(events.CommandRejected); !rejected && m.EnvironmentID == "" {
		return errors.New("no environmentId")
	}
	switch e := ev.(type) {
	case events.ConnectionObserved:
		if !knownStatus(e.Capture.Status) {
			return fmt.Errorf("unknown capture status %q", e.Capture.Status)
		}
	case events.CachedQueryRequested:
		if e.QueryID == "" {
			return errors.New("no queryId")
		}
	case events.CachedQueryDeleted:
		if e.QueryID == "" {
			return errors.New("no queryId")
		}
	case events.CachedQueryObserved:
		if e.QueryID == "" {
			return errors.New("no queryId")
		}
		if !knownStatus(e.Status) {
			return fmt.Errorf("unknown query status %q", e.Status)
		}
	}
	return nil
}

func knownStatus(s jobs.Status) bool {
	switch s {
	case jobs.StatusPending, jobs.StatusRunning, jobs.StatusPaused,
		jobs.StatusFailed, jobs.StatusDeleting, jobs.StatusDeleted:
		return true
	}
	return false
}

// historyPayload is the event as kept in job_events. The sealed connection
// string is left out: the connections row holds the current one, and history
// that may be shown to people has no use for it.
func historyPayload(ev events.Event) ([]byte, error) {
	if r, ok := ev.(events.ConnectionRequested); ok {
		r.ConnectionSealed = ""
		ev = r
	}
	return json.Marshal(ev)
}

// fold applies ev's rule to the read model inside tx.
//
// Rows remember the command they reflect (last_command_id, and command_seq,
// its number among the environment's commands). An event whose command is
// older than the row's changes nothing; within one command the status only
// moves forward (see the events package doc). Events without a number
// (CommandSeq 0) follow the rules of before numbering: they are never
// refused as older, and change no row's number.
func fold(ctx context.Context, tx pgx.Tx, ev events.Event, at time.Time) error {
	m := ev.EventMeta()
	var err error
	switch e := ev.(type) {
	case events.ConnectionRequested:
		err = connectionRequested(ctx, tx, e, at)
	case events.ConnectionObserved:
		err = connectionObserved(ctx, tx, e, at)
	case events.ConnectionFailed:
		// A command can fail before its connection was requested (its
		// sealed connection string did not open); the row then records just
		// the failure, so that checkJobStatus can say why. FAILED may follow
		// any status of its own command but DELETED.
		_, err = tx.Exec(ctx, `
			INSERT INTO connections AS c (environment_id, status, reason, last_command_id, command_seq, created_at, updated_at)
			VALUES ($1, 'FAILED', $2, $3, $5, $4, $4)
			ON CONFLICT (environment_id) DO UPDATE SET
				status = 'FAILED', reason = EXCLUDED.reason, updated_at = EXCLUDED.updated_at,
				last_command_id = COALESCE(NULLIF(EXCLUDED.last_command_id, ''), c.last_command_id),
				command_seq = GREATEST(c.command_seq, EXCLUDED.command_seq)
			WHERE EXCLUDED.command_seq = 0 OR EXCLUDED.command_seq > c.command_seq
			   OR (EXCLUDED.command_seq = c.command_seq AND c.status <> 'DELETED')`,
			m.EnvironmentID, e.Reason, m.CommandID, at, m.CommandSeq)
	case events.ConnectionDeleting:
		// A delete carried out again after it finished (by a worker that
		// had lost its partition) must not take DELETED back.
		_, err = tx.Exec(ctx, `
			UPDATE connections AS c
			SET status = 'DELETING', reason = '', updated_at = $2,
			    last_command_id = COALESCE(NULLIF($3, ''), c.last_command_id),
			    command_seq = GREATEST(c.command_seq, $4::bigint)
			WHERE c.environment_id = $1
			  AND ($4::bigint = 0 OR $4::bigint > c.command_seq
			       OR ($4::bigint = c.command_seq AND c.status <> 'DELETED'))`,
			m.EnvironmentID, at, m.CommandID, m.CommandSeq)
	case events.ConnectionDeleted:
		err = connectionDeleted(ctx, tx, e, at)
	case events.CachedQueryRequested:
		err = cachedQueryRequested(ctx, tx, e, at)
	case events.CachedQueryDeleted:
		_, err = tx.Exec(ctx, `
			UPDATE cached_queries AS q
			SET status = 'DELETED', reason = '', job_state = '', updated_at = $2,
			    last_command_id = COALESCE(NULLIF($3, ''), q.last_command_id),
			    command_seq = GREATEST(q.command_seq, $4::bigint)
			WHERE q.query_id = $1 AND ($4::bigint = 0 OR $4::bigint >= q.command_seq)`,
			e.QueryID, at, e.CommandID, e.CommandSeq)
	case events.CachedQueryObserved:
		err = cachedQueryObserved(ctx, tx, e, at)
	case events.CommandRejected:
		_, err = tx.Exec(ctx, `
			INSERT INTO rejected_commands (event_id, command_id, environment_id, command_name, reason, at)
			VALUES ($1, $2, $3, $4, $5, $6)`,
			m.EventID, m.CommandID, m.EnvironmentID, e.CommandName, e.Reason, at)
	default:
		return fmt.Errorf("%w: unknown event type %T", ErrBadEvent, ev)
	}
	if err != nil {
		return fmt.Errorf("update read model: %w", err)
	}
	return nil
}

// connectionRequested (re)starts the connection's lifecycle at PENDING. A
// redelivery of the command that last requested it (same command id) must
// not undo what was observed since, so it leaves the state alone; a request
// of a command older than the row's changes nothing.
func connectionRequested(ctx context.Context, tx pgx.Tx, e events.ConnectionRequested, at time.Time) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO connections AS c (
			environment_id, connector_name, slot_name, publication_name, engine,
			connection_redacted, connection_sealed, status, reason, last_command_id, command_seq,
			created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'PENDING', '', $8, $10, $9, $9)
		ON CONFLICT (environment_id) DO UPDATE SET
			connector_name      = EXCLUDED.connector_name,
			slot_name           = EXCLUDED.slot_name,
			publication_name    = EXCLUDED.publication_name,
			engine              = EXCLUDED.engine,
			connection_redacted = EXCLUDED.connection_redacted,
			connection_sealed   = EXCLUDED.connection_sealed,
			status      = CASE WHEN `+redelivered+` THEN c.status ELSE 'PENDING' END,
			reason      = CASE WHEN `+redelivered+` THEN c.reason ELSE '' END,
			connector   = CASE WHEN `+redelivered+` THEN c.connector END,
			slot        = CASE WHEN `+redelivered+` THEN c.slot END,
			capture     = CASE WHEN `+redelivered+` THEN c.capture END,
			observed_at = CASE WHEN `+redelivered+` THEN c.observed_at END,
			created_at  = CASE WHEN c.status = 'DELETED' AND NOT `+redelivered+`
			                   THEN EXCLUDED.created_at ELSE c.created_at END,
			last_command_id = EXCLUDED.last_command_id,
			command_seq     = GREATEST(c.command_seq, EXCLUDED.command_seq),
			updated_at      = EXCLUDED.updated_at
		WHERE `+notOlder,
		e.EnvironmentID, e.ConnectorName, e.SlotName, e.PublicationName, e.Engine,
		e.ConnectionRedacted, e.ConnectionSealed, e.CommandID, at, e.CommandSeq)
	return err
}

// redelivered is true in an upsert on table alias c when the incoming row
// comes from the same command as the stored one.
const redelivered = `(EXCLUDED.last_command_id <> '' AND EXCLUDED.last_command_id = c.last_command_id)`

// notOlder is true in an upsert on table alias c when the incoming row's
// command is not older than the stored one's, or is not numbered.
const notOlder = `(EXCLUDED.command_seq = 0 OR EXCLUDED.command_seq >= c.command_seq)`

// observationRule is the WHERE clause of an observation's UPDATE on table
// alias r, with $2 the observed status, $8 the event's command number and
// the row's own status guard left to the caller: an observation of an
// older command than the row's changes nothing, and an observation never
// starts a delete (the engine saying "deleted" while the row's newest
// command is a create is a view from before that create). Observations
// without a number follow the rules of before.
const observationRule = `($8::bigint = 0 OR ($8::bigint >= r.command_seq AND $2::text NOT IN ('DELETING', 'DELETED')))`

// observationHeld is true when an observation would take a job of the
// same command back to PENDING after it ran or failed; the status (and
// its reason) then stays, and the rest of the observation is recorded.
const observationHeld = `($8::bigint > 0 AND $8::bigint = r.command_seq AND $2::text = 'PENDING'
	AND r.status IN ('RUNNING', 'PAUSED', 'FAILED'))`

// observationCommand moves the row to a newer command that an observation
// names ($8, $9): a delete of a cached query that failed observes FAILED
// under its own command.
const observationCommand = `command_seq = GREATEST(r.command_seq, $8::bigint),
	last_command_id = CASE WHEN $8::bigint > r.command_seq AND $9::text <> '' THEN $9::text ELSE r.last_command_id END`

// connectionObserved records what the poller or a handler saw. Once a delete
// has been accepted, observations of the dying capture are stale.
func connectionObserved(ctx context.Context, tx pgx.Tx, e events.ConnectionObserved, at time.Time) error {
	connector, err := jsonOrNull(e.Capture.Connector)
	if err != nil {
		return err
	}
	slot, err := jsonOrNull(e.Capture.Slot)
	if err != nil {
		return err
	}
	capture, err := jsonOrNull(&e.Capture)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `
		UPDATE connections AS r
		SET status = CASE WHEN `+observationHeld+` THEN r.status ELSE $2::text END,
		    reason = CASE WHEN `+observationHeld+` THEN r.reason ELSE $3 END,
		    connector = $4, slot = $5, observed_at = $6, updated_at = $6, capture = $7,
		    `+observationCommand+`
		WHERE r.environment_id = $1 AND r.status NOT IN ('DELETING', 'DELETED') AND `+observationRule,
		e.EnvironmentID, string(e.Capture.Status), e.Capture.Reason, connector, slot, at, capture,
		e.CommandSeq, e.CommandID)
	return err
}

// cachedQueryObserved records what a handler or the poller saw of a query's
// job. A deleted query stays deleted until it is requested again.
func cachedQueryObserved(ctx context.Context, tx pgx.Tx, e events.CachedQueryObserved, at time.Time) error {
	_, err := tx.Exec(ctx, `
		UPDATE cached_queries AS r
		SET status = CASE WHEN `+observationHeld+` THEN r.status ELSE $2::text END,
		    reason = CASE WHEN `+observationHeld+` THEN r.reason ELSE $3 END,
		    job_id = COALESCE(NULLIF($4, ''), r.job_id), updated_at = $5,
		    job_state = $6, root_exception = $7,
		    `+observationCommand+`
		WHERE r.query_id = $1 AND r.status <> 'DELETED' AND `+observationRule+` AND NOT `+schemaChangeHeld,
		e.QueryID, string(e.Status), e.Reason, e.JobID, at, e.JobState, e.RootException,
		e.CommandSeq, e.CommandID)
	return err
}

// schemaChangeHeld is true for a query that a change of its source's
// schema stopped for good (jobs.JobStateSchemaChanged), under the same
// command as the observation: what an engine says of the job it stopped
// (Flink's canceled job) says less than the reason on record. A newer
// command (createCachedQuery again, a delete) applies.
const schemaChangeHeld = `(r.status = 'FAILED' AND r.job_state = '` + jobs.JobStateSchemaChanged + `'
	AND ($8::bigint = 0 OR $8::bigint = r.command_seq))`

// connectionDeleted marks the connection and its queries DELETED. The sealed
// connection string is dropped: nothing needs the credentials any more. The
// queries then reflect the delete's command.
func connectionDeleted(ctx context.Context, tx pgx.Tx, e events.ConnectionDeleted, at time.Time) error {
	if _, err := tx.Exec(ctx, `
		UPDATE connections AS c
		SET status = 'DELETED', reason = '', connector = NULL, slot = NULL, capture = NULL,
		    connection_sealed = '', updated_at = $2,
		    last_command_id = COALESCE(NULLIF($3, ''), c.last_command_id),
		    command_seq = GREATEST(c.command_seq, $4::bigint)
		WHERE c.environment_id = $1 AND ($4::bigint = 0 OR $4::bigint >= c.command_seq)`,
		e.EnvironmentID, at, e.CommandID, e.CommandSeq); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `
		UPDATE cached_queries AS q
		SET status = 'DELETED', reason = '', job_state = '', updated_at = $2,
		    last_command_id = CASE WHEN $4::bigint > 0 AND $3 <> '' THEN $3 ELSE q.last_command_id END,
		    command_seq = GREATEST(q.command_seq, $4::bigint)
		WHERE q.environment_id = $1 AND q.status <> 'DELETED'
		  AND ($4::bigint = 0 OR $4::bigint >= q.command_seq)`,
		e.EnvironmentID, at, e.CommandID, e.CommandSeq)
	return err
}

// cachedQueryRequested (re)starts the query's lifecycle at PENDING, with the
// same redelivery and ordering rules as connectionRequested. The job id is
// kept (the handler re-observes the same job) unless the query had been
// deleted.
func cachedQueryRequested(ctx context.Context, tx pgx.Tx, e events.CachedQueryRequested, at time.Time) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO cached_queries AS c (
			query_id, environment_id, pipeline_name, engine, sql_query, schema_text,
			status, reason, last_command_id, command_seq, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $8, 'PENDING', '', $6, $9, $7, $7)
		ON CONFLICT (query_id) DO UPDATE SET
			environment_id = EXCLUDED.environment_id,
			pipeline_name  = EXCLUDED.pipeline_name,
			engine         = EXCLUDED.engine,
			sql_query      = EXCLUDED.sql_query,
			schema_text    = EXCLUDED.schema_text,
			status     = CASE WHEN `+redelivered+` THEN c.status ELSE 'PENDING' END,
			reason     = CASE WHEN `+redelivered+` THEN c.reason ELSE '' END,
			job_state  = CASE WHEN `+redelivered+` THEN c.job_state ELSE '' END,
			job_id     = CASE WHEN c.status = 'DELETED' AND NOT `+redelivered+`
			                  THEN '' ELSE c.job_id END,
			created_at = CASE WHEN c.status = 'DELETED' AND NOT `+redelivered+`
			                  THEN EXCLUDED.created_at ELSE c.created_at END,
			last_command_id = EXCLUDED.last_command_id,
			command_seq     = GREATEST(c.command_seq, EXCLUDED.command_seq),
			updated_at      = EXCLUDED.updated_at
		WHERE `+notOlder,
		e.QueryID, e.EnvironmentID, e.PipelineName, e.Engine, e.SQLQuery, e.CommandID, at, e.Schema, e.CommandSeq)
	return err
}

// jsonOrNull encodes v for a jsonb column, with a nil pointer as NULL.
func jsonOrNull[T any](v *T) (any, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode observation: %w", err)
	}
	return b, nil
}
