// Package jobs holds the vocabulary shared by the handlers, the engine
// adapters and the projections: job states, what an engine reports about a
// capture, and how errors are classified (terminal or retriable).
//
// This package must not import other cdcq packages.
package jobs

import (
	"errors"
	"fmt"
	"time"
)

// Status is the state of a job as checkJobStatus reports it.
type Status string

const (
	// StatusPending: accepted, not yet running.
	StatusPending Status = "PENDING"
	// StatusRunning: the engine reports the job and all its tasks running.
	StatusRunning Status = "RUNNING"
	// StatusPaused: the engine holds the job paused.
	StatusPaused Status = "PAUSED"
	// StatusFailed: the job or one of its tasks failed; Reason says why.
	StatusFailed Status = "FAILED"
	// StatusDeleting: a delete was accepted and is being carried out.
	StatusDeleting Status = "DELETING"
	// StatusDeleted: the job and everything it created are gone.
	StatusDeleted Status = "DELETED"
)

// TaskState is one Kafka Connect task as its REST API reports it.
type TaskState struct {
	ID       int    `json:"id"`
	State    string `json:"state"`
	WorkerID string `json:"workerId,omitempty"`
	Trace    string `json:"trace,omitempty"`
}

// ConnectorState is a Kafka Connect connector and its tasks.
type ConnectorState struct {
	Name     string      `json:"name"`
	State    string      `json:"state"`
	WorkerID string      `json:"workerId,omitempty"`
	Trace    string      `json:"trace,omitempty"`
	Tasks    []TaskState `json:"tasks"`
}

// SlotState is a replication slot as the source database reports it.
type SlotState struct {
	Name   string `json:"name"`
	Exists bool   `json:"exists"`
	Active bool   `json:"active"`
	// RetainedWALBytes is how much WAL the slot keeps the server from
	// recycling (pg_current_wal_lsn() - restart_lsn).
	RetainedWALBytes int64 `json:"retainedWalBytes"`
	// Error is set when the source database could not be asked.
	Error string `json:"error,omitempty"`
}

// TableProgress is one table of an initial snapshot.
type TableProgress struct {
	Schema     string `json:"schema"`
	Table      string `json:"table"`
	RowsCopied int64  `json:"rowsCopied"`
	// RowsEstimate is the planner's estimate (pg_class.reltuples) until
	// the table is copied, then the number of rows copied.
	RowsEstimate int64 `json:"rowsEstimate"`
	Done         bool  `json:"done"`
	// RowsRetracted counts the rows the change topic held from before this
	// snapshot (an abandoned snapshot, earlier streaming) that the snapshot
	// did not find: each got a delete.
	RowsRetracted int64 `json:"rowsRetracted,omitempty"`
}

// SnapshotProgress is how far the initial snapshot of a capture got.
type SnapshotProgress struct {
	// Done is true once every row of the snapshot was acknowledged by
	// Kafka and streaming took over.
	Done         bool  `json:"done"`
	RowsCopied   int64 `json:"rowsCopied"`
	RowsEstimate int64 `json:"rowsEstimate"`
	// RowsRetracted is the sum of the tables' RowsRetracted.
	RowsRetracted int64           `json:"rowsRetracted,omitempty"`
	Tables        []TableProgress `json:"tables,omitempty"`
}

// StreamLag is how far a streaming capture is behind its source.
type StreamLag struct {
	// Bytes of WAL written since the position Kafka acknowledged; -1 when
	// the source could not be asked.
	Bytes int64 `json:"bytes"`
	// Seconds since the commit of the oldest change not yet acknowledged
	// by Kafka (0 when everything received is acknowledged).
	Seconds float64 `json:"seconds"`
}

// CaptureStatus is what a capture engine reports about one environment.
type CaptureStatus struct {
	Status    Status          `json:"status"`
	Reason    string          `json:"reason,omitempty"`
	Connector *ConnectorState `json:"connector,omitempty"`
	Slot      *SlotState      `json:"slot,omitempty"`
	// Snapshot, Lag, LastError and Warnings are reported by engines that
	// know them (the embedded capture); nil or empty otherwise.
	Snapshot *SnapshotProgress `json:"snapshot,omitempty"`
	Lag      *StreamLag        `json:"lag,omitempty"`
	// LastError is the most recent error the capture met, also while it
	// keeps running or retrying.
	LastError string `json:"lastError,omitempty"`
	// Warnings say what the capture cannot do as asked, such as tables
	// whose updates and deletes carry no before-image.
	Warnings []string `json:"warnings,omitempty"`
	// SchemaChanges are the most recent changes of captured tables'
	// descriptions the capture saw (engines that record them: the embedded
	// capture), newest first.
	SchemaChanges []SchemaChange `json:"schemaChanges,omitempty"`
	// Gone says that the engine has no job at all for the capture (Kafka
	// Connect knows no such connector): the status poller then keeps the
	// reason of a failure on record, which says more. Not stored.
	Gone bool `json:"-"`
}

// SchemaChange is a change of a captured table the capture saw in the
// source's change stream: the table renamed or moved to another schema, a
// column added, dropped, renamed or given another type, the replica
// identity or the primary key changed. Records from LSN on carry the new
// description.
type SchemaChange struct {
	// LSN is the source position from which records carry the new
	// description, as the records' source.lsn writes it.
	LSN int64 `json:"lsn"`
	// Table is the table after the change, as schema.table; OldTable is
	// its name before, set only when the change renamed or moved it.
	Table    string `json:"table"`
	OldTable string `json:"oldTable,omitempty"`
	// Change says what changed, in words ("column region renamed to
	// area; column total type numeric(12,2) -> numeric(12,3)").
	Change string `json:"change"`
	// At is when the capture saw the change.
	At time.Time `json:"at"`
}

// Equal reports whether two observations say the same thing, so that the
// status poller records only changes.
func (s CaptureStatus) Equal(o CaptureStatus) bool {
	return s.key() == o.key()
}

// SameState reports whether two observations differ at most in the
// figures that move all the time on a busy source: the lag, the WAL the
// slot retains, and the rows a snapshot copied so far. The state, reason,
// errors, warnings, schema changes, whether a snapshot and each of its
// tables is done, and whether the source could be asked for the lag are
// compared. The status poller records such an observation only as a
// sample (events.ConnectionObserved.Sample), so that a busy source does
// not add a job event every round.
func (s CaptureStatus) SameState(o CaptureStatus) bool {
	return s.withoutFigures().key() == o.withoutFigures().key()
}

// withoutFigures is s with the figures SameState ignores cleared; the
// pointers are copied, not shared.
func (s CaptureStatus) withoutFigures() CaptureStatus {
	if s.Slot != nil {
		slot := *s.Slot
		slot.RetainedWALBytes = 0
		s.Slot = &slot
	}
	if s.Lag != nil {
		lag := StreamLag{}
		if s.Lag.Bytes < 0 {
			lag.Bytes = -1
		}
		s.Lag = &lag
	}
	if s.Snapshot != nil {
		snap := SnapshotProgress{Done: s.Snapshot.Done, Tables: make([]TableProgress, len(s.Snapshot.Tables))}
		for i, t := range s.Snapshot.Tables {
			snap.Tables[i] = TableProgress{Schema: t.Schema, Table: t.Table, Done: t.Done}
		}
		s.Snapshot = &snap
	}
	return s
}

func (s CaptureStatus) key() string {
	var snap SnapshotProgress
	if s.Snapshot != nil {
		snap = *s.Snapshot
	}
	var lag StreamLag
	if s.Lag != nil {
		lag = *s.Lag
	}
	// The times as instants: a status read back from JSON has them in
	// another location.
	changes := make([]string, len(s.SchemaChanges))
	for i, c := range s.SchemaChanges {
		changes[i] = fmt.Sprintf("%d|%s|%s|%s|%d", c.LSN, c.Table, c.OldTable, c.Change, c.At.UnixMicro())
	}
	return fmt.Sprintf("%s|%s|%+v|%+v|%t%+v|%t%+v|%q|%q|%q", s.Status, s.Reason, deref(s.Connector), derefSlot(s.Slot),
		s.Snapshot != nil, snap, s.Lag != nil, lag, s.LastError, s.Warnings, changes)
}

func deref(c *ConnectorState) ConnectorState {
	if c == nil {
		return ConnectorState{}
	}
	return *c
}

func derefSlot(s *SlotState) SlotState {
	if s == nil {
		return SlotState{}
	}
	return *s
}

// QueryStatus is what a query processor reports about one cached query.
type QueryStatus struct {
	Status Status `json:"status"`
	Reason string `json:"reason,omitempty"`
	// JobID is the engine's id of the running job (a Flink job id).
	JobID string `json:"jobId,omitempty"`
	// JobState is the engine's own word for the job's state (Flink's
	// RUNNING, FAILED, CANCELED, ...).
	JobState string `json:"jobState,omitempty"`
	// RootException is the engine's root exception when the job failed.
	RootException string `json:"rootException,omitempty"`
}

// JobStateSchemaChanged is the JobState of a query stopped because its
// source's schema changed in a way it cannot follow (a column it reads
// renamed or dropped, a type changed). Its Status is FAILED for good:
// observing the engine again does not change it, and only a query created
// again with the new schema runs.
const JobStateSchemaChanged = "SOURCE_SCHEMA_CHANGED"

// TerminalError marks a failure that retrying cannot fix (bad
// configuration, a 4xx from an engine): the job fails with its message and
// the command is acknowledged.
type TerminalError struct {
	Err error
}

func (e *TerminalError) Error() string { return e.Err.Error() }
func (e *TerminalError) Unwrap() error { return e.Err }

// Terminal wraps err as a TerminalError (nil stays nil).
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return &TerminalError{Err: err}
}

// Terminalf formats a TerminalError.
func Terminalf(format string, args ...any) error {
	return &TerminalError{Err: fmt.Errorf(format, args...)}
}

// IsTerminal reports whether err, or an error it wraps, is terminal.
func IsTerminal(err error) bool {
	var t *TerminalError
	return errors.As(err, &t)
}
