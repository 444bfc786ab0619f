package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/connstr"
	"github.com/cdcq/cdcq/internal/secret"
	"github.com/cdcq/cdcq/projections"
)

// CommandPublisher publishes a command on the control topic. An error means
// the command was not accepted; the API answers 503 and the caller retries.
type CommandPublisher interface {
	Publish(ctx context.Context, cmd commands.Command) error
}

// StatusReader reads the projected job state. Both methods return an error
// wrapping projections.ErrNotFound for an id that was never projected.
type StatusReader interface {
	Connection(ctx context.Context, environmentID string) (projections.ConnectionView, error)
	CachedQuery(ctx context.Context, queryID string) (projections.QueryView, error)
}

// BindingReader tells which database an environment is bound to (the
// workers' record, see handlers.Bindings): its connection string, parsed,
// and whether the binding is established (the capture engine took the
// environment up). ok is false when none is bound.
type BindingReader interface {
	Binding(ctx context.Context, environmentID string) (conn connstr.Conn, established, ok bool, err error)
}

// ResultSource serves the materialised results of cached queries, from
// memory. Result and Wait return an error wrapping projections.ErrNotFound
// for an unknown query.
type ResultSource interface {
	// Result is the query's result as held now.
	Result(ctx context.Context, queryID string) (ResultView, error)
	// Wait returns once the result's ETag differs from etag, or, when ctx
	// ends first, the result as it is.
	Wait(ctx context.Context, queryID, etag string) (ResultView, error)
	// Subscribe follows the result's changes after since (an event id or a
	// version; "" for none: the first event is then the whole result). A
	// since that cannot be read gives an error wrapping ErrBadPosition.
	Subscribe(ctx context.Context, queryID, since string) (ResultSubscription, error)
}

// ErrBadPosition says a position given by a client cannot be read.
var ErrBadPosition = errors.New("bad position")

// ResultView is one version of a query's result.
type ResultView interface {
	// Query is the cached query's projected view (name, status).
	Query() projections.QueryView
	// Meta is everything but the rows.
	Meta() QueryResult
	Columns() []ResultColumn
	// ETag is the same for the same version in every API process.
	ETag() string
	// Rows is the served rows as a JSON array in key order, or null while
	// there is no complete result.
	Rows() []byte
	// Page is up to limit rows after the row whose token is after, and
	// the token of the page's last row when more follow.
	Page(after string, limit int) (rows []byte, next string, err error)
}

// ResultColumn is a result column: its name and SQL type.
type ResultColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// ResultSubscription is one subscriber's stream of result events.
type ResultSubscription interface {
	// Next waits for events until ctx ends, and returns every event that
	// waits (at least one), so that they go out in one write; the slice
	// is the subscription's until the next call. It returns
	// ErrSubscriptionEnded when the stream is over.
	Next(ctx context.Context) ([]ResultEvent, error)
	Close()
}

// ErrSubscriptionEnded ends a subscription.
var ErrSubscriptionEnded = errors.New("subscription ended")

// Events of GET /cachedQueries/{id}/changes.
const (
	// EventSnapshot: the whole result, as GET .../result answers it.
	EventSnapshot = "snapshot"
	// EventChange: one group changed, appeared or left.
	EventChange = "change"
	// EventState: the result's state changed (its rows are in the next
	// snapshot, if any).
	EventState = "state"
	// EventOverflow: the subscriber fell too far behind; the stream ends.
	EventOverflow = "overflow"
)

// ResultEvent is one event: Result for snapshot and state events, Data
// (JSON) for the others.
type ResultEvent struct {
	Event  string
	ID     string
	Result ResultView
	Data   []byte
}

// QueryResult is what a cached query's result reflects, without its rows.
type QueryResult struct {
	// State is LIVE when the engine follows its sources, CATCHING_UP while
	// it (re)builds its state after a start, STALE when the source's schema
	// changed in a way the query cannot follow: the rows are then the last
	// correct ones, at Position, and LastError says what changed.
	State string `json:"state"`
	// CaughtUp is State == LIVE: the rows reflect everything the sources
	// held when the engine started, and every change since up to Position.
	CaughtUp bool `json:"caughtUp"`
	// Position is the newest source change the rows reflect.
	Position ResultPosition `json:"position"`
	// EventsApplied counts the change events the engine has applied.
	EventsApplied int64 `json:"eventsApplied"`
	// LastError is the engine's last error for this query, if any.
	LastError string    `json:"lastError,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
	// Hydration, while the result is not LIVE because the capture's
	// initial snapshot of the query's tables is incomplete or not yet
	// read, says how far it is.
	Hydration *Hydration `json:"hydration,omitempty"`
}

// Hydration is how far a cached query is from its first complete result:
// the capture's snapshot of the tables it reads must be complete and
// applied before the result reflects one source position.
type Hydration struct {
	// SnapshotDone: every record of the capture's snapshot is in Kafka;
	// the engine is reading up to where the topics ended then.
	SnapshotDone bool `json:"snapshotDone"`
	// RowsCaptured of RowsEstimate rows of the query's tables are copied
	// by the capture (both 0 when the capture engine does not say, as
	// Debezium does not); RowsApplied change events are applied.
	RowsCaptured int64 `json:"rowsCaptured"`
	RowsEstimate int64 `json:"rowsEstimate"`
	RowsApplied  int64 `json:"rowsApplied"`
}

// ResultPosition identifies a point in the source's change stream.
type ResultPosition struct {
	// Version numbers the writes of the result: it grows with every change
	// of its rows, state, source position or error, and is the same in
	// every API process. GET .../changes?since= takes it.
	Version int64 `json:"version"`
	// LSN is the source database's log position of the newest change.
	LSN int64 `json:"lsn"`
	// SourceTime is that change's commit time.
	SourceTime *time.Time `json:"sourceTime,omitempty"`
	// LagSeconds is how far the result may be behind its source. Where the
	// capture's heartbeats say up to when the result holds every commit
	// (FreshThrough), it is 0 while they keep coming (a quiet source is
	// not behind) and grows from the moment they stop (a stuck capture or
	// engine), and a change newer than the last heartbeat counts with the
	// time it took from its commit to the result. Otherwise it is the time
	// the newest change took.
	LagSeconds *float64 `json:"lagSeconds,omitempty"`
	// FreshThrough: the rows reflect every source transaction committed
	// before it (from the capture's heartbeats; absent when unknown).
	FreshThrough *time.Time `json:"freshThrough,omitempty"`
	// Offsets are the next offsets to read per change topic and partition.
	Offsets map[string]map[int32]int64 `json:"offsets,omitempty"`
}

// DefaultBodyLimit is the largest request body accepted unless
// Config.BodyLimit says otherwise. A Prisma schema and a query fit easily.
const DefaultBodyLimit = 1 << 20

// DefaultBackendTimeout bounds one call to Commands or Status.
const DefaultBackendTimeout = 10 * time.Second

// Config configures a Server.
type Config struct {
	// Commands receives every command the API accepts. Required.
	Commands CommandPublisher
	// Status answers checkJobStatus and the GET endpoints. Required.
	Status StatusReader
	// Results answers GET /cachedQueries/{id}/result and .../changes, and
	// the progress in GET /cachedQueries/{id}. Optional: without it, those
	// endpoints answer 404.
	Results ResultSource
	// Bindings tells which database each environment is bound to, so that
	// a command naming another one is refused with 409. Required.
	Bindings BindingReader
	// Sealer seals connection strings before they leave the API. Required;
	// the workers must hold the same key.
	Sealer *secret.Sealer
	// Tokens are the accepted bearer tokens. Empty strings are refused.
	Tokens []string
	// RequireAuth makes every endpoint but /healthz demand
	// "Authorization: Bearer <token>" with one of Tokens. Only `cdcq dev`
	// turns it off; New refuses RequireAuth without Tokens.
	RequireAuth bool
	// Logger receives one line per request. Default: slog.Default().
	Logger *slog.Logger
	// BodyLimit is the largest request body in bytes; larger bodies get 400
	// body_too_large. Default: DefaultBodyLimit (1 MiB).
	BodyLimit int
	// BackendTimeout bounds each call to Commands and Status.
	// Default: DefaultBackendTimeout.
	BackendTimeout time.Duration
	// Now stamps commands' requestedAt. Default: time.Now.
	Now func() time.Time
	// NewID makes command ids. Default: random (v4) UUIDs.
	NewID func() string
	// CheckQuery validates a cached query's Prisma schema and SQL before
	// anything is published, and returns the normalised query text the
	// query id is derived from (so that the same query written differently
	// gets the same id). A *QueryError answers 422 with its field and
	// position; any other error answers 422 on sqlQuery.
	// Default: no validation; collapse runs of white space and trim.
	CheckQuery func(schema, sql string) (normalized string, err error)
	// WriteRate and WriteBurst limit each caller's POST and DELETE
	// requests: a token bucket per bearer token, or per client address
	// without authentication. Default: DefaultWriteRate per second, bursts
	// of DefaultWriteBurst.
	WriteRate  float64
	WriteBurst int
}

// QueryError is a problem at a position in the schema or the query.
type QueryError struct {
	// Field is "schema" or "sqlQuery".
	Field string
	// Line and Column start at 1; zero when unknown.
	Line, Column int
	Message      string
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("%s %d:%d: %s", e.Field, e.Line, e.Column, e.Message)
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.BodyLimit == 0 {
		c.BodyLimit = DefaultBodyLimit
	}
	if c.BackendTimeout == 0 {
		c.BackendTimeout = DefaultBackendTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewID == nil {
		c.NewID = uuid.NewString
	}
	if c.CheckQuery == nil {
		c.CheckQuery = func(_, sql string) (string, error) { return collapseWhitespace(sql), nil }
	}
	if c.WriteRate == 0 {
		c.WriteRate = DefaultWriteRate
	}
	if c.WriteBurst == 0 {
		c.WriteBurst = DefaultWriteBurst
	}
}

// Validate reports what is missing or inconsistent. Fields that have
// defaults may be left zero.
func (c Config) Validate() error {
	var errs []error
	if c.Commands == nil {
		errs = append(errs, errors.New("Commands is nil"))
	}
	if c.Status == nil {
		errs = append(errs, errors.New("Status is nil"))
	}
	if c.Bindings == nil {
		errs = append(errs, errors.New("Bindings is nil"))
	}
	if c.Sealer == nil {
		errs = append(errs, errors.New("Sealer is nil"))
	}
	if c.RequireAuth && len(c.Tokens) == 0 {
		errs = append(errs, errors.New("RequireAuth is set but Tokens is empty"))
	}
	for i, t := range c.Tokens {
		if strings.TrimSpace(t) == "" {
			errs = append(errs, fmt.Errorf("Tokens[%d] is empty", i))
		}
	}
	if c.WriteRate < 0 || math.IsNaN(c.WriteRate) || math.IsInf(c.WriteRate, 0) {
		errs = append(errs, fmt.Errorf("WriteRate is %v; want > 0", c.WriteRate))
	}
	if c.WriteBurst < 0 {
		errs = append(errs, fmt.Errorf("WriteBurst is %d; want > 0", c.WriteBurst))
	}
	if c.BodyLimit < 0 {
		errs = append(errs, fmt.Errorf("BodyLimit is %d; want > 0", c.BodyLimit))
	}
	if c.BackendTimeout < 0 {
		errs = append(errs, fmt.Errorf("BackendTimeout is %s; want > 0", c.BackendTimeout))
	}
	return errors.Join(errs...)
}

// collapseWhitespace is the stand-in query normaliser until a SQL-aware one
// replaces it.
func collapseWhitespace(sql string) string {
	return strings.Join(strings.Fields(sql), " ")
}
