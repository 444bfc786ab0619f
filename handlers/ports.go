package handlers

import (
	"context"
	"time"

	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/sourceschema"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

// CaptureSpec says what to capture for one environment. ConnectionString
// holds a password: never log it or put it in an error.
type CaptureSpec struct {
	EnvironmentID    string
	ConnectionString string
	ConnectorName    string
	SlotName         string
	PublicationName  string
	TopicPrefix      string
}

// Capture is the port to a change-capture engine (Debezium on Kafka Connect,
// or cdcq's embedded reader). Every call is idempotent: Ensure of a capture
// that exists brings it to spec; Delete of one that is gone succeeds.
// Errors wrapped as jobs.TerminalError fail the job; others are retried.
type Capture interface {
	// Engine names the implementation for status output.
	Engine() string
	Ensure(ctx context.Context, spec CaptureSpec) error
	Observe(ctx context.Context, spec CaptureSpec) (jobs.CaptureStatus, error)
	// Delete removes the capture and then the slot and the publication it
	// left in the source database.
	Delete(ctx context.Context, spec CaptureSpec) error
}

// SnapshotReporter is implemented by a Capture that can tell how far an
// environment's initial snapshot got. Done means that every record of the
// snapshot is in Kafka, so that a reader that then reads the change topics
// to their ends has read all of it; Tables, when known, are per table. A
// snapshot that starts over (after a crash, or a lost slot) is not Done
// again until it completes.
type SnapshotReporter interface {
	SnapshotProgress(ctx context.Context, environmentID string) (jobs.SnapshotProgress, error)
}

// QuerySpec says which cached query to run.
type QuerySpec struct {
	EnvironmentID string
	QueryID       string
	PipelineName  string
	Schema        string
	SQLQuery      string
	// Plan is the compiled query (sqlplan.Compile of Schema and SQLQuery).
	Plan    *sqlplan.Plan
	Capture CaptureSpec
}

// Processor is the port to a stream processor (Flink through its SQL
// Gateway, or cdcq's embedded engine). Calls are idempotent like Capture's:
// EnsureQuery of a query whose job runs returns its status without
// starting another.
type Processor interface {
	Engine() string
	EnsureQuery(ctx context.Context, spec QuerySpec) (jobs.QueryStatus, error)
	ObserveQuery(ctx context.Context, spec QuerySpec) (jobs.QueryStatus, error)
	// DeleteQuery stops one query's job and removes its results.
	DeleteQuery(ctx context.Context, spec QuerySpec) error
	// DeleteEnvironment stops every query job of the environment.
	DeleteEnvironment(ctx context.Context, environmentID string) error
}

// Restarter is implemented by a Processor whose jobs can stop for a reason
// that starting them again fixes (Flink: a source TRUNCATE, which its
// debezium-json format cannot apply). The status poller starts such a job
// again with EnsureQuery.
type Restarter interface {
	NeedsRestart(status jobs.QueryStatus) bool
}

// SchemaReader is implemented by a Processor that reads source columns
// more strictly than by their values' meaning (see sourceschema.Options).
// A Processor that does not implement it reads any type whose values keep
// their meaning, and needs no before-images.
type SchemaReader interface {
	SourceSchemaOptions() sourceschema.Options
}

// BrokenQueryStopper is implemented by a Processor that can stop a query
// whose source's schema changed under it, keeping its result as it was
// last correct. reason says what changed. cleanAt is when the last check
// that found the schema intact began (zero when unknown): the result must
// not reflect a change written after it. The result says STALE from then
// on. Idempotent.
type BrokenQueryStopper interface {
	StopBrokenQuery(ctx context.Context, spec QuerySpec, reason string, cleanAt time.Time) error
}

// RecreateAdvice ends the reason of a query that its source's schema
// change broke. The connection's change topics still hold the table's
// records from before the change, which a replacement would read too.
const RecreateAdvice = "create the cached query again with the new schema, on a new connection (another environmentId): this one's change history holds the table as it was"

// EventPublisher publishes events on the events topic.
type EventPublisher interface {
	Publish(ctx context.Context, evs ...events.Event) error
}
