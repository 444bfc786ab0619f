package flink

import (
	"context"
	"net/http"
	"strconv"
	"strings"
)

// Job states as the JobManager reports them (JobStatus). FAILED, CANCELED
// and FINISHED are globally terminal: the job will not run again.
// SUSPENDED is terminal only for the JobManager that lost leadership.
const (
	JobInitializing = "INITIALIZING"
	JobCreated      = "CREATED"
	JobRunning      = "RUNNING"
	JobFailing      = "FAILING"
	JobFailed       = "FAILED"
	JobCancelling   = "CANCELLING"
	JobCanceled     = "CANCELED"
	JobFinished     = "FINISHED"
	JobRestarting   = "RESTARTING"
	JobSuspended    = "SUSPENDED"
	JobReconciling  = "RECONCILING"
)

// GloballyTerminal reports a state the job cannot leave.
func GloballyTerminal(state string) bool {
	switch state {
	case JobFailed, JobCanceled, JobFinished:
		return true
	}
	return false
}

// JobManager calls one Flink JobManager's REST API. It is safe for
// concurrent use.
type JobManager struct {
	rest rest
}

// NewJobManager returns a client for the JobManager that cfg names.
func NewJobManager(cfg JobManagerConfig) (*JobManager, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &JobManager{rest: rest{
		service: "flink jobmanager",
		base:    strings.TrimRight(cfg.URL, "/"),
		timeout: cfg.RequestTimeout,
		client:  cfg.HTTPClient,
		header:  cfg.Header,
	}}, nil
}

// JobOverview is one entry of GET /jobs/overview. Times are milliseconds
// since the epoch; EndTime is -1 while the job runs.
type JobOverview struct {
	ID               string         `json:"jid"`
	Name             string         `json:"name"`
	State            string         `json:"state"`
	StartTime        int64          `json:"start-time"`
	EndTime          int64          `json:"end-time"`
	Duration         int64          `json:"duration"`
	LastModification int64          `json:"last-modification"`
	Tasks            map[string]int `json:"tasks,omitempty"`
}

// Jobs lists every job the cluster knows, running and archived (GET
// /jobs/overview).
func (j *JobManager) Jobs(ctx context.Context) ([]JobOverview, error) {
	var out struct {
		Jobs []JobOverview `json:"jobs"`
	}
	if _, err := j.rest.do(ctx, http.MethodGet, "/jobs/overview", nil, &out); err != nil {
		return nil, err
	}
	return out.Jobs, nil
}

// JobDetails is the part of GET /jobs/{id} that cdcq reads.
type JobDetails struct {
	ID          string `json:"jid"`
	Name        string `json:"name"`
	State       string `json:"state"`
	IsStoppable bool   `json:"isStoppable"`
	StartTime   int64  `json:"start-time"`
	EndTime     int64  `json:"end-time"`
	Duration    int64  `json:"duration"`
	Now         int64  `json:"now"`
	// Timestamps maps each state the job went through to when it entered it.
	Timestamps map[string]int64 `json:"timestamps,omitempty"`
}

// Job returns one job's details (GET /jobs/{id}). An unknown job is an
// *APIError for which IsNotFound is true.
func (j *JobManager) Job(ctx context.Context, id string) (JobDetails, error) {
	p, err := pathSegment("job id", id)
	if err != nil {
		return JobDetails{}, err
	}
	var out JobDetails
	if _, err := j.rest.do(ctx, http.MethodGet, "/jobs/"+p, nil, &out); err != nil {
		return JobDetails{}, err
	}
	return out, nil
}

// JobExceptions is the answer of GET /jobs/{id}/exceptions. Flink 2.0
// answers exceptionHistory only; Flink 1.x also sends the deprecated
// root-exception, timestamp, all-exceptions and truncated members.
type JobExceptions struct {
	History ExceptionHistory `json:"exceptionHistory"`
	// RootException is the deprecated member of Flink 1.x: the printed
	// stack trace of the failure that failed the job.
	RootException string `json:"root-exception,omitempty"`
	Timestamp     *int64 `json:"timestamp,omitempty"`
}

// ExceptionHistory lists the job's most recent failures, newest first.
type ExceptionHistory struct {
	Entries   []RootExceptionInfo `json:"entries"`
	Truncated bool                `json:"truncated"`
}

// ExceptionInfo is one failure.
type ExceptionInfo struct {
	ExceptionName string            `json:"exceptionName"`
	Stacktrace    string            `json:"stacktrace"`
	Timestamp     int64             `json:"timestamp"`
	TaskName      string            `json:"taskName,omitempty"`
	Endpoint      string            `json:"endpoint,omitempty"`
	TaskManagerID string            `json:"taskManagerId,omitempty"`
	FailureLabels map[string]string `json:"failureLabels,omitempty"`
}

// RootExceptionInfo is a failure that made the job restart or fail, with
// the failures that happened alongside it.
type RootExceptionInfo struct {
	ExceptionInfo
	ConcurrentExceptions []ExceptionInfo `json:"concurrentExceptions,omitempty"`
}

// Latest returns the printed stack trace of the most recent failure, from
// the exception history or, on Flink 1.x, the root-exception member.
func (e JobExceptions) Latest() (string, bool) {
	if len(e.History.Entries) > 0 && e.History.Entries[0].Stacktrace != "" {
		return e.History.Entries[0].Stacktrace, true
	}
	if e.RootException != "" {
		return e.RootException, true
	}
	return "", false
}

// JobExceptions returns a job's failures (GET /jobs/{id}/exceptions),
// at most max of them when max > 0.
func (j *JobManager) JobExceptions(ctx context.Context, id string, max int) (JobExceptions, error) {
	p, err := pathSegment("job id", id)
	if err != nil {
		return JobExceptions{}, err
	}
	path := "/jobs/" + p + "/exceptions"
	if max > 0 {
		path += "?maxExceptions=" + strconv.Itoa(max)
	}
	var out JobExceptions
	if _, err := j.rest.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return JobExceptions{}, err
	}
	return out, nil
}

// CancelJob cancels a job without a savepoint (PATCH
// /jobs/{id}?mode=cancel, 202). Flink answers 404 for an unknown job and,
// since 1.16, 409 for a job that already reached another terminal state;
// both come back as *APIError (IsNotFound for the first).
func (j *JobManager) CancelJob(ctx context.Context, id string) error {
	p, err := pathSegment("job id", id)
	if err != nil {
		return err
	}
	_, err = j.rest.do(ctx, http.MethodPatch, "/jobs/"+p+"?mode=cancel", nil, nil)
	return err
}

// StopOptions is the body of POST /jobs/{id}/stop.
type StopOptions struct {
	// TargetDirectory is where the savepoint goes; empty uses the
	// cluster's state.savepoints.dir.
	TargetDirectory string `json:"targetDirectory,omitempty"`
	// Drain emits MAX_WATERMARK before the savepoint, firing every timer.
	Drain bool `json:"drain"`
}

// StopJob stops a job with a savepoint (POST /jobs/{id}/stop, 202) and
// returns the trigger id to ask /jobs/{id}/savepoints/{trigger} about.
func (j *JobManager) StopJob(ctx context.Context, id string, opts StopOptions) (string, error) {
	p, err := pathSegment("job id", id)
	if err != nil {
		return "", err
	}
	var out struct {
		RequestID string `json:"request-id"`
	}
	if _, err := j.rest.do(ctx, http.MethodPost, "/jobs/"+p+"/stop", opts, &out); err != nil {
		return "", err
	}
	return out.RequestID, nil
}
