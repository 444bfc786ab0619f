package flinkfake

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Job is a job as tests see it.
type Job struct {
	ID    string
	Name  string
	State string
	// StartTime and EndTime are milliseconds since the epoch; EndTime is
	// -1 until the job reaches a terminal state.
	StartTime int64
	EndTime   int64
	// Exceptions are the job's failures, newest first: printed Java stack
	// traces.
	Exceptions []string
}

func (j *Job) terminal() bool {
	switch j.State {
	case "FAILED", "CANCELED", "FINISHED":
		return true
	}
	return false
}

// JobManager is a fake Flink JobManager REST API. It implements
// http.Handler and is safe for concurrent use.
type JobManager struct {
	mu       sync.Mutex
	jobs     map[string]*Job
	order    []string // job ids in submission order
	failures []scripted
	requests []Request
	latency  time.Duration
	legacy   bool
	now      func() time.Time
}

// NewJobManager returns a JobManager without jobs.
func NewJobManager() *JobManager {
	return &JobManager{jobs: map[string]*Job{}, now: time.Now}
}

// SetClock replaces the clock that stamps start, end and exception times
// (tests that compare start times use it).
func (m *JobManager) SetClock(now func() time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = now
}

// AddJob adds a job in the given state, as if submitted earlier, and
// returns its id (32 hex digits, like Flink's JobID).
func (m *JobManager) AddJob(name, state string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addJobLocked(name, state)
}

func (m *JobManager) addJobLocked(name, state string) string {
	id := randomHex(16)
	j := &Job{ID: id, Name: name, State: state, StartTime: m.now().UnixMilli(), EndTime: -1}
	if j.terminal() {
		j.EndTime = j.StartTime
	}
	m.jobs[id] = j
	m.order = append(m.order, id)
	return id
}

// SetJobState moves a job to state.
func (m *JobManager) SetJobState(id, state string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return fmt.Errorf("flinkfake: no job %s", id)
	}
	m.setStateLocked(j, state)
	return nil
}

func (m *JobManager) setStateLocked(j *Job, state string) {
	j.State = state
	if j.terminal() && j.EndTime < 0 {
		j.EndTime = m.now().UnixMilli()
	}
}

// AddException records a failure of a job (newest first) without changing
// its state, as a restart does.
func (m *JobManager) AddException(id, trace string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return fmt.Errorf("flinkfake: no job %s", id)
	}
	j.Exceptions = append([]string{trace}, j.Exceptions...)
	return nil
}

// FailJob records trace as the job's latest failure and moves it to
// FAILED.
func (m *JobManager) FailJob(id, trace string) error {
	if err := m.AddException(id, trace); err != nil {
		return err
	}
	return m.SetJobState(id, "FAILED")
}

// Job returns a copy of one job.
func (m *JobManager) Job(id string) (Job, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return Job{}, false
	}
	cp := *j
	cp.Exceptions = slices.Clone(j.Exceptions)
	return cp, true
}

// Jobs returns copies of every job in submission order.
func (m *JobManager) Jobs() []Job {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Job, 0, len(m.order))
	for _, id := range m.order {
		cp := *m.jobs[id]
		cp.Exceptions = slices.Clone(cp.Exceptions)
		out = append(out, cp)
	}
	return out
}

// JobsNamed returns the jobs with this name in submission order.
func (m *JobManager) JobsNamed(name string) []Job {
	var out []Job
	for _, j := range m.Jobs() {
		if j.Name == name {
			out = append(out, j)
		}
	}
	return out
}

// FailNext makes the next n requests that match f answer with f instead of
// being served. Calls queue up.
func (m *JobManager) FailNext(n int, f Failure) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n > 0 {
		m.failures = append(m.failures, scripted{f: f, n: n})
	}
}

// SetLatency delays every answer by d.
func (m *JobManager) SetLatency(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.latency = d
}

// SetLegacyExceptions makes /jobs/{id}/exceptions answer as Flink 1.x
// does, with the deprecated root-exception, timestamp, all-exceptions and
// truncated members beside exceptionHistory (Flink 2.0 removed them).
func (m *JobManager) SetLegacyExceptions(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.legacy = on
}

// Requests returns the requests received so far, oldest first.
func (m *JobManager) Requests() []Request {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.requests)
}

// RequestsTo returns the received requests with this method and path.
func (m *JobManager) RequestsTo(method, path string) []Request {
	var out []Request
	for _, r := range m.Requests() {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// ServeHTTP answers one request the way a JobManager does.
func (m *JobManager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		writeHandlerError(w, http.StatusBadRequest, "org.apache.flink.runtime.rest.handler.RestHandlerException", "Request body could not be read.")
		return
	}
	m.mu.Lock()
	m.requests = append(m.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: body, Authorization: r.Header.Get("Authorization")})
	latency := m.latency
	fail, failing := takeFailure(&m.failures, r.Method, r.URL.Path)
	m.mu.Unlock()

	if !delay(r, latency) {
		return
	}
	if failing {
		writeFailure(w, fail)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.route(w, r)
}

func (m *JobManager) route(w http.ResponseWriter, r *http.Request) {
	parts := splitPath(r)
	if len(parts) > 0 && parts[0] == "v1" {
		parts = parts[1:]
	}
	if len(parts) == 0 || parts[0] != "jobs" {
		notFound(w)
		return
	}
	switch {
	case len(parts) == 2 && parts[1] == "overview":
		if r.Method != http.MethodGet {
			methodNotAllowed(w)
			return
		}
		m.overview(w)
	case len(parts) == 2:
		switch r.Method {
		case http.MethodGet:
			m.details(w, parts[1])
		case http.MethodPatch:
			m.cancel(w, r, parts[1])
		default:
			methodNotAllowed(w)
		}
	case len(parts) == 3 && parts[2] == "exceptions" && r.Method == http.MethodGet:
		m.exceptions(w, parts[1])
	case len(parts) == 3 && parts[2] == "stop" && r.Method == http.MethodPost:
		m.stop(w, parts[1])
	default:
		notFound(w)
	}
}

type jobOverview struct {
	ID               string         `json:"jid"`
	Name             string         `json:"name"`
	State            string         `json:"state"`
	StartTime        int64          `json:"start-time"`
	EndTime          int64          `json:"end-time"`
	Duration         int64          `json:"duration"`
	LastModification int64          `json:"last-modification"`
	Tasks            map[string]int `json:"tasks"`
}

func (m *JobManager) overviewOf(j *Job) jobOverview {
	end := j.EndTime
	dur := m.now().UnixMilli() - j.StartTime
	if end >= 0 {
		dur = end - j.StartTime
	}
	running := 0
	if j.State == "RUNNING" {
		running = 1
	}
	return jobOverview{
		ID: j.ID, Name: j.Name, State: j.State, StartTime: j.StartTime, EndTime: end,
		Duration: dur, LastModification: max(j.StartTime, end),
		Tasks: map[string]int{"total": 1, "running": running, "created": 0, "scheduled": 0, "deploying": 0,
			"finished": 0, "canceling": 0, "canceled": 0, "failed": 0, "reconciling": 0, "initializing": 0},
	}
}

func (m *JobManager) overview(w http.ResponseWriter) {
	out := struct {
		Jobs []jobOverview `json:"jobs"`
	}{Jobs: []jobOverview{}}
	for _, id := range m.order {
		out.Jobs = append(out.Jobs, m.overviewOf(m.jobs[id]))
	}
	writeJSON(w, http.StatusOK, out)
}

func (m *JobManager) details(w http.ResponseWriter, id string) {
	j, ok := m.jobs[id]
	if !ok {
		jobNotFound(w, id)
		return
	}
	o := m.overviewOf(j)
	writeJSON(w, http.StatusOK, struct {
		ID           string           `json:"jid"`
		Name         string           `json:"name"`
		IsStoppable  bool             `json:"isStoppable"`
		State        string           `json:"state"`
		JobType      string           `json:"job-type"`
		StartTime    int64            `json:"start-time"`
		EndTime      int64            `json:"end-time"`
		Duration     int64            `json:"duration"`
		Now          int64            `json:"now"`
		Timestamps   map[string]int64 `json:"timestamps"`
		Vertices     []struct{}       `json:"vertices"`
		StatusCounts map[string]int   `json:"status-counts"`
	}{
		ID: j.ID, Name: j.Name, State: j.State, JobType: "STREAMING", StartTime: j.StartTime, EndTime: j.EndTime,
		Duration: o.Duration, Now: m.now().UnixMilli(),
		Timestamps: map[string]int64{"INITIALIZING": j.StartTime, "CREATED": j.StartTime, j.State: o.LastModification},
		Vertices:   []struct{}{}, StatusCounts: map[string]int{},
	})
}

type exceptionInfo struct {
	ExceptionName        string            `json:"exceptionName"`
	Stacktrace           string            `json:"stacktrace"`
	Timestamp            int64             `json:"timestamp"`
	TaskName             string            `json:"taskName,omitempty"`
	Endpoint             string            `json:"endpoint,omitempty"`
	TaskManagerID        string            `json:"taskManagerId,omitempty"`
	FailureLabels        map[string]string `json:"failureLabels"`
	ConcurrentExceptions []exceptionInfo   `json:"concurrentExceptions"`
}

func (m *JobManager) exceptions(w http.ResponseWriter, id string) {
	j, ok := m.jobs[id]
	if !ok {
		jobNotFound(w, id)
		return
	}
	entries := []exceptionInfo{}
	ts := m.now().UnixMilli()
	for _, trace := range j.Exceptions {
		name, _, _ := strings.Cut(strings.TrimSpace(trace), ":")
		name, _, _ = strings.Cut(name, "\n")
		entries = append(entries, exceptionInfo{
			ExceptionName: name, Stacktrace: trace, Timestamp: ts,
			TaskName: "Source: orders[1] -> Calc[2] (1/1)", Endpoint: "taskmanager:6121",
			TaskManagerID: "taskmanager:6121-" + randomHex(3), FailureLabels: map[string]string{},
			ConcurrentExceptions: []exceptionInfo{},
		})
	}
	history := map[string]any{"entries": entries, "truncated": false}
	if !m.legacy {
		writeJSON(w, http.StatusOK, map[string]any{"exceptionHistory": history})
		return
	}
	body := map[string]any{"exceptionHistory": history, "all-exceptions": []any{}, "truncated": false}
	if j.State == "FAILED" && len(j.Exceptions) > 0 {
		body["root-exception"] = j.Exceptions[0]
		body["timestamp"] = ts
	}
	writeJSON(w, http.StatusOK, body)
}

func (m *JobManager) cancel(w http.ResponseWriter, r *http.Request, id string) {
	mode := r.URL.Query().Get("mode")
	if mode != "" && !strings.EqualFold(mode, "cancel") {
		if strings.EqualFold(mode, "stop") {
			writeHandlerError(w, http.StatusPermanentRedirect, "org.apache.flink.runtime.rest.handler.RestHandlerException",
				`The termination mode "stop" has been removed. For an ungraceful shutdown, please use "cancel" instead. For a graceful shutdown, please use "jobs/:jobId/stop" instead.`)
			return
		}
		writeHandlerError(w, http.StatusBadRequest, "org.apache.flink.runtime.rest.handler.RestHandlerException",
			"Bad request, could not parse parameters: Invalid value for query parameter mode: "+mode)
		return
	}
	j, ok := m.jobs[id]
	if !ok {
		writeHandlerError(w, http.StatusNotFound, "org.apache.flink.runtime.rest.handler.RestHandlerException", "Job could not be found.")
		return
	}
	if j.terminal() {
		// Not verified against a real cluster: Flink 1.16+ answers 409 for
		// a job that already reached another terminal state.
		writeHandlerError(w, http.StatusConflict, "org.apache.flink.runtime.rest.handler.RestHandlerException",
			"Job cancellation failed because the job has already reached another terminal state ("+j.State+").")
		return
	}
	m.setStateLocked(j, "CANCELED")
	writeJSON(w, http.StatusAccepted, struct{}{})
}

func (m *JobManager) stop(w http.ResponseWriter, id string) {
	j, ok := m.jobs[id]
	if !ok {
		jobNotFound(w, id)
		return
	}
	if j.terminal() {
		writeHandlerError(w, http.StatusConflict, "org.apache.flink.runtime.rest.handler.RestHandlerException",
			"Job "+id+" is not in a state that allows a savepoint ("+j.State+").")
		return
	}
	// A stop-with-savepoint ends in FINISHED once the savepoint completes;
	// the fake completes it at once.
	m.setStateLocked(j, "FINISHED")
	writeJSON(w, http.StatusAccepted, map[string]string{"request-id": randomHex(16)})
}

func jobNotFound(w http.ResponseWriter, id string) {
	writeHandlerError(w, http.StatusNotFound, "org.apache.flink.runtime.rest.NotFoundException", "Job "+id+" not found")
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, errorBody{Errors: []string{"Not found: " + "unknown path"}})
}

func methodNotAllowed(w http.ResponseWriter) {
	writeJSON(w, http.StatusMethodNotAllowed, errorBody{Errors: []string{"Method not allowed."}})
}
