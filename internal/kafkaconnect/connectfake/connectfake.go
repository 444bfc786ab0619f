// Package connectfake is an in-process fake of Kafka Connect's REST API for
// tests. It answers the connector endpoints with the status codes, bodies
// and messages that a real Connect worker gives, stores connectors in
// memory, and lets a test script what a real cluster does to a client:
// rebalances (409), server errors (500), slow answers, failed tasks with
// stack traces, rejected configurations.
//
// Served endpoints:
//
//	GET    /connectors
//	GET    /connectors/{name}
//	GET    /connectors/{name}/config
//	PUT    /connectors/{name}/config   201 created, 200 updated
//	GET    /connectors/{name}/status
//	GET    /connectors/{name}/offsets
//	PUT    /connectors/{name}/pause    202
//	PUT    /connectors/{name}/resume   202
//	PUT    /connectors/{name}/stop     202
//	DELETE /connectors/{name}/offsets  200, 400 unless STOPPED
//	DELETE /connectors/{name}          204
//
// Errors have Connect's body {"error_code":N,"message":"..."}.
//
// A fresh connector is RUNNING on worker WorkerID with tasks.max RUNNING
// tasks; tests change that with SetConnectorState, SetTaskState and
// SetTasks. Its offsets are those of a Debezium PostgreSQL connector whose
// snapshot is complete (partition {"server": topic.prefix}, offset with
// lsn, txId and ts_usec); SetOffsets changes them.
//
// This package must not import other cdcq packages: it models the wire
// protocol, not cdcq's client of it.
package connectfake

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Messages Connect sends with its 409 and 500 answers.
const (
	// MessageRebalance: the worker's view of the config is stale (a
	// rebalance or a concurrent config change is under way).
	MessageRebalance = "Cannot complete request momentarily due to stale configuration (typically caused by a concurrent config change)"
	// MessageConflictingOperation: forwarding to the leader failed twice,
	// typically during a rebalance.
	MessageConflictingOperation = "Cannot complete request because of a conflicting operation (e.g. worker rebalance)"
	// MessageRequestTimedOut: the herder did not finish within Connect's
	// 90-second request timeout.
	MessageRequestTimedOut = "Request timed out"
)

// WorkerID is the worker_id the fake reports for connectors and tasks.
const WorkerID = "connectfake:8083"

// DebeziumPostgresClass is the connector class whose required settings the
// fake checks the way Debezium's own validation does.
const DebeziumPostgresClass = "io.debezium.connector.postgresql.PostgresConnector"

// Failure is a scripted error answer.
type Failure struct {
	// Status is the HTTP status, also sent as error_code.
	Status int
	// Message is the message field of the body.
	Message string
	// Method limits the failure to requests with this method ("PUT");
	// empty matches every request.
	Method string
}

// Ready-made failures.
var (
	// Rebalance is the 409 a worker answers during a rebalance.
	Rebalance = Failure{Status: http.StatusConflict, Message: MessageRebalance}
	// ServerError is the 500 Connect answers when its herder times out.
	ServerError = Failure{Status: http.StatusInternalServerError, Message: MessageRequestTimedOut}
)

// Request is one request the fake received. Body holds the raw request
// body, which for a connector config includes its password: it is for
// assertions in tests only.
type Request struct {
	Method string
	// Path is the unescaped path, e.g. /connectors/cdcq-env1/config.
	Path        string
	ContentType string
	Body        []byte
}

// Connector is a stored connector as tests see it.
type Connector struct {
	Name   string
	Config map[string]string
	// Offsets answer GET .../offsets; nil answers a completed snapshot.
	Offsets   []Offset
	State     string
	WorkerID  string
	Trace     string
	Tasks     []Task
	Type      string
	CreatedAt time.Time
}

// Task is the state of one task.
type Task struct {
	ID       int
	State    string
	WorkerID string
	Trace    string
}

// Validator checks a configuration the way a connector plugin does and
// returns one message per problem (empty when the configuration is fine).
type Validator func(name string, config map[string]string) []string

// Fake is a fake Kafka Connect worker. It implements http.Handler; the zero
// value is not usable, use New or NewServer. It is safe for concurrent use.
type Fake struct {
	mu         sync.Mutex
	connectors map[string]*Connector
	failures   []scripted
	requests   []Request
	validators []Validator
	latency    time.Duration
	linger     map[string]int // deleted name -> status answers still given
	now        func() time.Time
}

type scripted struct {
	f Failure
	n int
}

// New returns an empty fake.
func New() *Fake {
	return &Fake{
		connectors: map[string]*Connector{},
		linger:     map[string]int{},
		now:        time.Now,
	}
}

// Server is a Fake served over HTTP on a loopback port.
type Server struct {
	*Fake
	// URL is the base URL to give a client, e.g. http://127.0.0.1:41234.
	URL string
}

// NewServer starts a fake on a loopback port and stops it when the test
// ends.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	f := New()
	srv := httptest.NewServer(f)
	tb.Cleanup(srv.Close)
	return &Server{Fake: f, URL: srv.URL}
}

// FailNext makes the next n requests that match f.Method answer with f
// instead of being served. Calls queue up: a second FailNext applies after
// the first is used up.
func (f *Fake) FailNext(n int, fail Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n > 0 {
		f.failures = append(f.failures, scripted{f: fail, n: n})
	}
}

// SetLatency delays every answer by d (a request whose client gives up
// first gets no answer), to test client timeouts.
func (f *Fake) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// AddValidator adds a check that PUT .../config applies after the fake's
// own checks. Its messages make the PUT answer 400 the way Connect reports
// a plugin's validation errors.
func (f *Fake) AddValidator(v Validator) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.validators = append(f.validators, v)
}

// RejectKey makes PUT .../config answer 400 whenever config[key] == value,
// with message as the plugin's validation error.
func (f *Fake) RejectKey(key, value, message string) {
	f.AddValidator(func(_ string, config map[string]string) []string {
		if v, ok := config[key]; ok && v == value {
			return []string{message}
		}
		return nil
	})
}

// LingerAfterDelete makes GET .../status keep answering for a deleted
// connector for the next n status requests, as a real cluster does until
// its tasks have stopped.
func (f *Fake) LingerAfterDelete(name string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.linger[name] = n
}

// AddConnector stores a connector directly, as if created by an earlier PUT.
func (f *Fake) AddConnector(name string, config map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cfg := clone(config)
	cfg["name"] = name
	f.connectors[name] = f.newConnector(name, cfg)
}

// Connector returns a copy of a stored connector.
func (f *Fake) Connector(name string) (Connector, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.connectors[name]
	if !ok {
		return Connector{}, false
	}
	cp := *c
	cp.Config = clone(c.Config)
	cp.Tasks = slices.Clone(c.Tasks)
	return cp, true
}

// Names lists the stored connectors, sorted.
func (f *Fake) Names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.namesLocked()
}

// SetConnectorState sets the state and trace of a connector instance.
func (f *Fake) SetConnectorState(name, state, trace string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.connectors[name]
	if !ok {
		return fmt.Errorf("connectfake: no connector %q", name)
	}
	c.State, c.Trace = state, trace
	return nil
}

// SetTaskState sets the state and trace of one existing task.
func (f *Fake) SetTaskState(name string, id int, state, trace string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.connectors[name]
	if !ok {
		return fmt.Errorf("connectfake: no connector %q", name)
	}
	for i := range c.Tasks {
		if c.Tasks[i].ID == id {
			c.Tasks[i].State, c.Tasks[i].Trace = state, trace
			return nil
		}
	}
	return fmt.Errorf("connectfake: connector %q has no task %d", name, id)
}

// SetTasks replaces a connector's tasks (none: a connector that has not
// started its tasks yet).
func (f *Fake) SetTasks(name string, tasks ...Task) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.connectors[name]
	if !ok {
		return fmt.Errorf("connectfake: no connector %q", name)
	}
	c.Tasks = slices.Clone(tasks)
	for i := range c.Tasks {
		if c.Tasks[i].WorkerID == "" {
			c.Tasks[i].WorkerID = WorkerID
		}
	}
	return nil
}

// Requests returns the requests received so far, oldest first.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// RequestsTo returns the received requests with this method and path.
func (f *Fake) RequestsTo(method, path string) []Request {
	var out []Request
	for _, r := range f.Requests() {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// ServeHTTP answers one request the way a Connect worker does.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Cannot read request body")
		return
	}

	f.mu.Lock()
	f.requests = append(f.requests, Request{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Body: body})
	latency := f.latency
	fail, failing := f.takeFailureLocked(r.Method)
	f.mu.Unlock()

	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if failing {
		writeError(w, fail.Status, fail.Message)
		return
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	f.routeLocked(w, r, body)
}

func (f *Fake) takeFailureLocked(method string) (Failure, bool) {
	for i := range f.failures {
		s := &f.failures[i]
		if s.f.Method != "" && s.f.Method != method {
			continue
		}
		s.n--
		fail := s.f
		if s.n == 0 {
			f.failures = append(f.failures[:i], f.failures[i+1:]...)
		}
		return fail, true
	}
	return Failure{}, false
}

func (f *Fake) routeLocked(w http.ResponseWriter, r *http.Request, body []byte) {
	// Split the escaped path so that a name holding "%2F" stays one segment.
	parts := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
	for i, p := range parts {
		if u, err := url.PathUnescape(p); err == nil {
			parts[i] = u
		}
	}
	if len(parts) == 0 || parts[0] != "connectors" {
		writeError(w, http.StatusNotFound, "HTTP 404 Not Found")
		return
	}
	switch {
	case len(parts) == 1:
		if r.Method != http.MethodGet {
			methodNotAllowed(w)
			return
		}
		if slices.Contains(r.URL.Query()["expand"], "status") {
			out := map[string]map[string]statusBody{}
			for _, n := range f.namesLocked() {
				out[n] = map[string]statusBody{"status": f.statusLocked(f.connectors[n])}
			}
			writeJSON(w, http.StatusOK, out)
			return
		}
		writeJSON(w, http.StatusOK, f.namesLocked())
	case len(parts) == 2:
		switch r.Method {
		case http.MethodGet:
			f.getConnector(w, parts[1])
		case http.MethodDelete:
			f.deleteConnector(w, parts[1])
		default:
			methodNotAllowed(w)
		}
	case len(parts) == 3:
		name := parts[1]
		switch parts[2] + " " + r.Method {
		case "config GET":
			f.getConfig(w, name)
		case "config PUT":
			f.putConfig(w, name, body)
		case "status GET":
			f.getStatus(w, name)
		case "offsets GET":
			f.getOffsets(w, name)
		case "pause PUT":
			f.setTarget(w, name, "PAUSED")
		case "resume PUT":
			f.setTarget(w, name, "RUNNING")
		case "stop PUT":
			f.stop(w, name)
		case "offsets DELETE":
			f.resetOffsets(w, name)
		case "restart POST":
			f.restart(w, name)
		default:
			if slices.Contains([]string{"config", "status", "offsets", "pause", "resume", "stop", "restart"}, parts[2]) {
				methodNotAllowed(w)
				return
			}
			writeError(w, http.StatusNotFound, "HTTP 404 Not Found")
		}
	default:
		writeError(w, http.StatusNotFound, "HTTP 404 Not Found")
	}
}

func (f *Fake) namesLocked() []string {
	names := make([]string, 0, len(f.connectors))
	for n := range f.connectors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

type connectorInfo struct {
	Name   string            `json:"name"`
	Config map[string]string `json:"config"`
	Tasks  []taskID          `json:"tasks"`
	Type   string            `json:"type"`
}

type taskID struct {
	Connector string `json:"connector"`
	Task      int    `json:"task"`
}

func (c *Connector) info() connectorInfo {
	ids := make([]taskID, 0, len(c.Tasks))
	for _, t := range c.Tasks {
		ids = append(ids, taskID{Connector: c.Name, Task: t.ID})
	}
	return connectorInfo{Name: c.Name, Config: clone(c.Config), Tasks: ids, Type: c.Type}
}

func (f *Fake) getConnector(w http.ResponseWriter, name string) {
	c, ok := f.connectors[name]
	if !ok {
		writeError(w, http.StatusNotFound, "Connector "+name+" not found")
		return
	}
	writeJSON(w, http.StatusOK, c.info())
}

func (f *Fake) getConfig(w http.ResponseWriter, name string) {
	c, ok := f.connectors[name]
	if !ok {
		writeError(w, http.StatusNotFound, "Connector "+name+" not found")
		return
	}
	writeJSON(w, http.StatusOK, c.Config)
}

func (f *Fake) putConfig(w http.ResponseWriter, name string, body []byte) {
	var config map[string]string
	if err := json.Unmarshal(body, &config); err != nil || config == nil {
		// Not verified against a real worker: Connect's JSON provider
		// rejects a body that is not an object of strings with a 4xx.
		writeError(w, http.StatusBadRequest, "Cannot deserialize the connector configuration: it must be a JSON object of strings")
		return
	}
	if n, ok := config["name"]; ok && n != name {
		writeError(w, http.StatusBadRequest, "Connector name configuration ("+n+") doesn't match connector name in the URL ("+name+")")
		return
	}
	config["name"] = name
	if _, ok := config["connector.class"]; !ok {
		// Connect prints the whole map (Java's Map.toString), secrets
		// included; clients have to cope with that.
		writeError(w, http.StatusBadRequest, "Connector config "+javaMap(config)+" contains no connector type")
		return
	}
	if msgs := f.validateLocked(name, config); len(msgs) > 0 {
		writeError(w, http.StatusBadRequest, invalidConfigMessage(msgs))
		return
	}
	c, exists := f.connectors[name]
	if !exists {
		c = f.newConnector(name, config)
		f.connectors[name] = c
		delete(f.linger, name)
		info := c.info()
		// A new connector has no task configs yet when Connect answers.
		info.Tasks = []taskID{}
		w.Header().Set("Location", "/connectors/"+url.PathEscape(name))
		writeJSON(w, http.StatusCreated, info)
		return
	}
	oldMax := c.Config["tasks.max"]
	c.Config = config
	if config["tasks.max"] != oldMax {
		c.Tasks = runningTasks(config)
	}
	writeJSON(w, http.StatusOK, c.info())
}

func (f *Fake) validateLocked(name string, config map[string]string) []string {
	var msgs []string
	if config["connector.class"] == DebeziumPostgresClass {
		for _, k := range []string{"database.hostname", "database.user", "database.dbname", "topic.prefix"} {
			if strings.TrimSpace(config[k]) == "" {
				msgs = append(msgs, "The '"+k+"' value is invalid: A value is required")
			}
		}
	}
	if v, ok := config["tasks.max"]; ok {
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			msgs = append(msgs, "Invalid value "+v+" for configuration tasks.max: Value must be at least 1")
		}
	}
	for _, v := range f.validators {
		msgs = append(msgs, v(name, clone(config))...)
	}
	return msgs
}

// invalidConfigMessage is how Connect reports a plugin's validation errors.
func invalidConfigMessage(msgs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Connector configuration is invalid and contains the following %d error(s):", len(msgs))
	for _, m := range msgs {
		b.WriteString("\n" + m)
	}
	b.WriteString("\nYou can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`")
	return b.String()
}

// Offset is one entry of GET /connectors/{name}/offsets.
type Offset struct {
	Partition map[string]any `json:"partition"`
	Offset    map[string]any `json:"offset"`
}

// SetOffsets sets what GET /connectors/{name}/offsets answers.
func (f *Fake) SetOffsets(name string, offsets ...Offset) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.connectors[name]
	if !ok {
		return fmt.Errorf("connectfake: no connector %q", name)
	}
	c.Offsets = append([]Offset{}, offsets...)
	return nil
}

func (f *Fake) getOffsets(w http.ResponseWriter, name string) {
	c, ok := f.connectors[name]
	if !ok {
		writeError(w, http.StatusNotFound, "Connector "+name+" not found")
		return
	}
	offsets := c.Offsets
	if offsets == nil {
		offsets = []Offset{{
			Partition: map[string]any{"server": c.Config["topic.prefix"]},
			Offset:    map[string]any{"lsn": 1, "txId": 1, "ts_usec": 1},
		}}
	}
	writeJSON(w, http.StatusOK, map[string]any{"offsets": offsets})
}

func (f *Fake) getStatus(w http.ResponseWriter, name string) {
	c, ok := f.connectors[name]
	if !ok {
		if n := f.linger[name]; n > 0 {
			f.linger[name] = n - 1
			writeJSON(w, http.StatusOK, statusBody{
				Name:      name,
				Connector: stateBody{State: "UNASSIGNED", WorkerID: WorkerID},
				Tasks:     []taskStateBody{},
				Type:      "source",
			})
			return
		}
		writeError(w, http.StatusNotFound, "No status found for connector "+name)
		return
	}
	writeJSON(w, http.StatusOK, f.statusLocked(c))
}

// statusLocked is a connector's status as GET .../status answers it.
func (f *Fake) statusLocked(c *Connector) statusBody {
	st := statusBody{
		Name:      c.Name,
		Connector: stateBody{State: c.State, WorkerID: c.WorkerID, Trace: c.Trace},
		Tasks:     make([]taskStateBody, 0, len(c.Tasks)),
		Type:      c.Type,
	}
	for _, t := range c.Tasks {
		st.Tasks = append(st.Tasks, taskStateBody{ID: t.ID, State: t.State, WorkerID: t.WorkerID, Trace: t.Trace})
	}
	return st
}

type statusBody struct {
	Name      string          `json:"name"`
	Connector stateBody       `json:"connector"`
	Tasks     []taskStateBody `json:"tasks"`
	Type      string          `json:"type"`
}

type stateBody struct {
	State    string `json:"state"`
	WorkerID string `json:"worker_id"`
	Trace    string `json:"trace,omitempty"`
}

type taskStateBody struct {
	ID       int    `json:"id"`
	State    string `json:"state"`
	WorkerID string `json:"worker_id"`
	Trace    string `json:"trace,omitempty"`
}

func (f *Fake) setTarget(w http.ResponseWriter, name, state string) {
	c, ok := f.connectors[name]
	if !ok {
		writeError(w, http.StatusNotFound, "Unknown connector "+name)
		return
	}
	c.State, c.Trace = state, ""
	for i := range c.Tasks {
		c.Tasks[i].State, c.Tasks[i].Trace = state, ""
	}
	w.WriteHeader(http.StatusAccepted)
}

// stop answers PUT .../stop as Connect does: the connector is STOPPED and
// has no tasks.
func (f *Fake) stop(w http.ResponseWriter, name string) {
	c, ok := f.connectors[name]
	if !ok {
		writeError(w, http.StatusNotFound, "Unknown connector "+name)
		return
	}
	c.State, c.Trace, c.Tasks = "STOPPED", "", []Task{}
	w.WriteHeader(http.StatusAccepted)
}

// resetOffsets answers DELETE .../offsets as Connect does for a source
// connector: refused unless the connector is STOPPED, then every offset
// is gone.
func (f *Fake) resetOffsets(w http.ResponseWriter, name string) {
	c, ok := f.connectors[name]
	if !ok {
		writeError(w, http.StatusNotFound, "Connector "+name+" not found")
		return
	}
	if c.State != "STOPPED" {
		writeError(w, http.StatusBadRequest, "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/"+name+"/stop' endpoint")
		return
	}
	c.Offsets = []Offset{}
	writeJSON(w, http.StatusOK, map[string]string{"message": "The offsets for this connector have been reset successfully"})
}

// restart answers POST .../restart?includeTasks=true as Connect does: the
// connector and its tasks run again, with their traces cleared.
func (f *Fake) restart(w http.ResponseWriter, name string) {
	c, ok := f.connectors[name]
	if !ok {
		writeError(w, http.StatusNotFound, "Unknown connector: "+name)
		return
	}
	c.State, c.Trace = "RUNNING", ""
	for i := range c.Tasks {
		c.Tasks[i].State, c.Tasks[i].Trace = "RUNNING", ""
	}
	writeJSON(w, http.StatusAccepted, f.statusLocked(c))
}

func (f *Fake) deleteConnector(w http.ResponseWriter, name string) {
	if _, ok := f.connectors[name]; !ok {
		writeError(w, http.StatusNotFound, "Connector "+name+" not found")
		return
	}
	delete(f.connectors, name)
	w.WriteHeader(http.StatusNoContent)
}

func (f *Fake) newConnector(name string, config map[string]string) *Connector {
	return &Connector{
		Name:      name,
		Config:    config,
		State:     "RUNNING",
		WorkerID:  WorkerID,
		Tasks:     runningTasks(config),
		Type:      "source",
		CreatedAt: f.now(),
	}
}

func runningTasks(config map[string]string) []Task {
	n, err := strconv.Atoi(config["tasks.max"])
	if err != nil || n < 1 {
		n = 1
	}
	tasks := make([]Task, n)
	for i := range tasks {
		tasks[i] = Task{ID: i, State: "RUNNING", WorkerID: WorkerID}
	}
	return tasks
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	defer r.Body.Close()
	return io.ReadAll(io.LimitReader(r.Body, 4<<20))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, struct {
		ErrorCode int    `json:"error_code"`
		Message   string `json:"message"`
	}{status, message})
}

func methodNotAllowed(w http.ResponseWriter) {
	writeError(w, http.StatusMethodNotAllowed, "HTTP 405 Method Not Allowed")
}

// javaMap renders a config the way Java's Map.toString does ({k=v, k=v}),
// in key order so that answers are stable.
func javaMap(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
