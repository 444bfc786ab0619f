package projections

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/cdcq/cdcq/internal/jobs"
)

// ErrNotFound is returned by reads for an environment or query that was never
// projected.
var ErrNotFound = errors.New("not found")

// ConnectionView is an environment's capture job as checkJobStatus returns
// it. id, name and status are the original API's fields.
type ConnectionView struct {
	// ID is the environmentId.
	ID string `json:"id"`
	// Name is the capture's connector name.
	Name   string      `json:"name"`
	Status jobs.Status `json:"status"`
	// Reason says why the job is FAILED (or what is wrong otherwise).
	Reason        string `json:"reason,omitempty"`
	EnvironmentID string `json:"environmentId"`
	Engine        string `json:"engine"`
	// Connection is the redacted connection string.
	Connection      string               `json:"connection"`
	SlotName        string               `json:"slotName"`
	PublicationName string               `json:"publicationName"`
	Connector       *jobs.ConnectorState `json:"connector,omitempty"`
	Slot            *jobs.SlotState      `json:"slot,omitempty"`
	// Snapshot, Lag, LastError and Warnings come from engines that report
	// them (the embedded capture).
	Snapshot  *jobs.SnapshotProgress `json:"snapshot,omitempty"`
	Lag       *jobs.StreamLag        `json:"lag,omitempty"`
	LastError string                 `json:"lastError,omitempty"`
	Warnings  []string               `json:"warnings,omitempty"`
	// SchemaChanges are the most recent changes of the captured tables'
	// descriptions the embedded capture saw, newest first.
	SchemaChanges []jobs.SchemaChange `json:"schemaChanges,omitempty"`
	CachedQueries []QueryView         `json:"cachedQueries"`
	// RejectedCommands lists recent commands for this environment that
	// could not be decoded and went to the dead-letter topic.
	RejectedCommands []RejectedCommand `json:"rejectedCommands,omitempty"`
	CreatedAt        time.Time         `json:"createdAt"`
	UpdatedAt        time.Time         `json:"updatedAt"`
	ObservedAt       *time.Time        `json:"observedAt,omitempty"`
}

// QueryView is a cached query's job.
type QueryView struct {
	// ID is the query id.
	ID string `json:"id"`
	// Name is the job's pipeline name.
	Name          string      `json:"name"`
	Status        jobs.Status `json:"status"`
	Reason        string      `json:"reason,omitempty"`
	EnvironmentID string      `json:"environmentId"`
	Engine        string      `json:"engine"`
	SQLQuery      string      `json:"sqlQuery"`
	JobID         string      `json:"jobId,omitempty"`
	// JobState is the engine's word for the job's state; RootException
	// its root exception when the job failed.
	JobState      string    `json:"jobState,omitempty"`
	RootException string    `json:"rootException,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
}

// RejectedCommand is a command that was parked on the dead-letter topic.
type RejectedCommand struct {
	CommandID   string    `json:"commandId,omitempty"`
	CommandName string    `json:"commandName,omitempty"`
	Reason      string    `json:"reason"`
	At          time.Time `json:"at"`
}

// ActiveQuery is what the status poller needs to observe a cached query.
type ActiveQuery struct {
	QueryID       string
	EnvironmentID string
	PipelineName  string
	Engine        string
	SQLQuery      string
	Schema        string
	// CommandID and CommandSeq name the command whose state the row
	// reflects; the poller's observations carry them (events.Meta).
	CommandID  string
	CommandSeq int64
	// Last is the last observation recorded.
	Last jobs.QueryStatus
}

// ActiveConnection is what the status poller needs to observe a capture.
type ActiveConnection struct {
	EnvironmentID    string
	ConnectorName    string
	SlotName         string
	PublicationName  string
	ConnectionSealed string
	// CommandID and CommandSeq name the command whose state the row
	// reflects; the poller's observations carry them (events.Meta).
	CommandID  string
	CommandSeq int64
	// Last is the last observation recorded, to record only changes.
	Last jobs.CaptureStatus
}

// EventView is one event from an environment's history, as recorded when it
// was applied. Payload is the event's JSON body without the sealed
// connection string.
type EventView struct {
	EventID    string          `json:"eventId"`
	Name       string          `json:"name"`
	CommandID  string          `json:"commandId,omitempty"`
	At         time.Time       `json:"at"`
	RecordedAt time.Time       `json:"recordedAt"`
	Payload    json.RawMessage `json:"payload"`
}
