// Package events defines what happened to jobs, as published on the events
// topic by the handlers and the status poller and folded into Postgres by
// the projector. Events are facts in the past tense; each carries the
// environment it belongs to and is keyed by it, so one environment's events
// are projected in the order they were published.
//
// # Which command an event belongs to
//
// Publication order is not the order of what happened: the status poller
// publishes what it observed under the state it last read, while a handler
// may have moved on, and a worker that lost its partition in a rebalance
// may still finish a command that the partition's new owner has carried out
// again, followed by newer commands. So every event says which command it
// belongs to: CommandID, and CommandSeq, the command's number among its
// environment's commands (1, 2, 3, ... in the order the workers took them
// up, which is the control topic's order; see inbox.Sequence). A handler's
// events carry the command it carries out; the status poller's carry the
// command whose state it observed (the one the row it read reflects).
//
// The projector applies an event only if its command is not older than the
// one the job's row reflects, and only if it moves the status forward within
// that command: PENDING, then what the engine reports of a started job
// (RUNNING, PAUSED, FAILED, which may follow each other), then DELETING,
// then DELETED. FAILED may follow anything but DELETED. DELETING and DELETED
// are caused only by a delete's own events, never by an observation. An
// observation that says PENDING for a job that already ran or failed keeps
// the status (and its reason) and updates the rest of the observation. A
// newer command starts a new lifecycle (a create after a delete: DELETED,
// then PENDING).
//
// Events without commandSeq (published before it existed, or by a
// component that does not number commands) are projected as they were
// before: by command id alone.
//
// This package must not import handlers, http or projections.
package events

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cdcq/cdcq/internal/jobs"
)

const (
	// Topic carries every event, keyed by environmentId.
	Topic = "cdcq.events"
	// NameHeader names the event type.
	NameHeader = "name"
)

// Event names, the values of the name header.
const (
	NameConnectionRequested  = "ConnectionRequested"
	NameConnectionObserved   = "ConnectionObserved"
	NameConnectionFailed     = "ConnectionFailed"
	NameConnectionDeleting   = "ConnectionDeleting"
	NameConnectionDeleted    = "ConnectionDeleted"
	NameCachedQueryRequested = "CachedQueryRequested"
	NameCachedQueryObserved  = "CachedQueryObserved"
	NameCachedQueryDeleted   = "CachedQueryDeleted"
	NameCommandRejected      = "CommandRejected"
)

// Event is what every event has.
type Event interface {
	EventName() string
	Environment() string
	EventMeta() Meta
}

// Meta holds the fields every event carries.
type Meta struct {
	// EventID is unique per event; the projector applies each id once.
	EventID       string `json:"eventId"`
	EnvironmentID string `json:"environmentId"`
	// CommandID is the command the event belongs to: the one a handler
	// carries out, or the one whose state the status poller observed.
	CommandID string `json:"commandId,omitempty"`
	// CommandSeq is that command's number among the environment's
	// commands; larger is newer. 0 means unknown (see the package doc).
	CommandSeq int64     `json:"commandSeq,omitempty"`
	At         time.Time `json:"at"`
}

func (m Meta) Environment() string { return m.EnvironmentID }

// EventMeta returns the common fields.
func (m Meta) EventMeta() Meta { return m }

// ConnectionRequested: a create was accepted by a worker, which is about to
// create the capture ("create pending": a crash before the next event shows
// as a PENDING job that a redelivery completes).
type ConnectionRequested struct {
	Meta
	Engine          string `json:"engine"`
	ConnectorName   string `json:"connectorName"`
	SlotName        string `json:"slotName"`
	PublicationName string `json:"publicationName"`
	// ConnectionRedacted is for people; ConnectionSealed lets the status
	// poller reach the source database.
	ConnectionRedacted string `json:"connectionRedacted"`
	ConnectionSealed   string `json:"connectionSealed"`
}

// ConnectionObserved: what the capture engine and the source database
// reported.
type ConnectionObserved struct {
	Meta
	Capture jobs.CaptureStatus `json:"capture"`
	// Sample says that the observation differs from the one on record
	// only in its figures (jobs.CaptureStatus.SameState: lag, retained
	// WAL, rows copied). The read model takes it, so that checkJobStatus
	// shows the current figures, but job_events does not keep it: a busy
	// source would otherwise add a job event every round. The status
	// poller records the figures as an ordinary observation at most every
	// StatusPollerConfig.LagSampleInterval.
	Sample bool `json:"sample,omitempty"`
}

// ConnectionFailed: the capture could not be created; Reason says why.
type ConnectionFailed struct {
	Meta
	Reason string `json:"reason"`
}

// ConnectionDeleting: a delete was accepted by a worker.
type ConnectionDeleting struct {
	Meta
}

// ConnectionDeleted: the capture, its slot and its publication are gone.
type ConnectionDeleted struct {
	Meta
}

// CachedQueryRequested: a cached query was accepted by a worker.
type CachedQueryRequested struct {
	Meta
	QueryID      string `json:"queryId"`
	PipelineName string `json:"pipelineName"`
	SQLQuery     string `json:"sqlQuery"`
	// Schema is the Prisma schema the query was compiled against; the
	// status poller and the embedded engine compile it again.
	Schema string `json:"schema"`
	Engine string `json:"engine"`
}

// CachedQueryObserved: the state of a cached query's job changed.
type CachedQueryObserved struct {
	Meta
	QueryID string      `json:"queryId"`
	Status  jobs.Status `json:"status"`
	Reason  string      `json:"reason,omitempty"`
	JobID   string      `json:"jobId,omitempty"`
	// JobState and RootException are the engine's own words.
	JobState      string `json:"jobState,omitempty"`
	RootException string `json:"rootException,omitempty"`
}

// CachedQueryDeleted: the query's job and results are gone.
type CachedQueryDeleted struct {
	Meta
	QueryID string `json:"queryId"`
}

// CommandRejected: a message on the control topic could not be decoded and
// was parked on the dead-letter topic.
type CommandRejected struct {
	Meta
	CommandName string `json:"commandName"`
	Reason      string `json:"reason"`
}

func (ConnectionRequested) EventName() string  { return NameConnectionRequested }
func (ConnectionObserved) EventName() string   { return NameConnectionObserved }
func (ConnectionFailed) EventName() string     { return NameConnectionFailed }
func (ConnectionDeleting) EventName() string   { return NameConnectionDeleting }
func (ConnectionDeleted) EventName() string    { return NameConnectionDeleted }
func (CachedQueryRequested) EventName() string { return NameCachedQueryRequested }
func (CachedQueryObserved) EventName() string  { return NameCachedQueryObserved }
func (CommandRejected) EventName() string      { return NameCommandRejected }
func (CachedQueryDeleted) EventName() string   { return NameCachedQueryDeleted }

// Decode reads an event from its name header and JSON body.
func Decode(name string, body []byte) (Event, error) {
	var e Event
	switch name {
	case NameConnectionRequested:
		e = &ConnectionRequested{}
	case NameConnectionObserved:
		e = &ConnectionObserved{}
	case NameConnectionFailed:
		e = &ConnectionFailed{}
	case NameConnectionDeleting:
		e = &ConnectionDeleting{}
	case NameConnectionDeleted:
		e = &ConnectionDeleted{}
	case NameCachedQueryRequested:
		e = &CachedQueryRequested{}
	case NameCachedQueryObserved:
		e = &CachedQueryObserved{}
	case NameCommandRejected:
		e = &CommandRejected{}
	case NameCachedQueryDeleted:
		e = &CachedQueryDeleted{}
	default:
		return nil, fmt.Errorf("unknown event name %q", name)
	}
	if err := json.Unmarshal(body, e); err != nil {
		return nil, fmt.Errorf("decode %s event: %w", name, err)
	}
	return e, nil
}
