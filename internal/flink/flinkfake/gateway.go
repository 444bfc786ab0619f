package flinkfake

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Version is what GET /info reports.
const Version = "2.2.0"

// Session is a gateway session as tests see it.
type Session struct {
	Handle string
	Name   string
	// Properties are the ones POST /sessions carried.
	Properties map[string]string
	// Config is what SET statements (and Properties) set.
	Config map[string]string
	// Statements are the statements the session received, in order.
	Statements []string
	Closed     bool
}

// StatementFailure scripts a statement that Flink rejects.
type StatementFailure struct {
	// Contains selects the statements that fail: those holding this text.
	Contains string
	// Chain is the exception the statement fails with, outermost first,
	// each "pkg.Class: message" (a message may span lines). The fake wraps
	// it the way the gateway does (SqlGatewayException, "Failed to fetch
	// results", SqlExecutionException "Failed to execute the operation").
	Chain []string
	// Times is how many statements fail; 0 means every matching one.
	Times int
	// OnSubmit makes POST .../statements itself answer 500 instead of the
	// operation ending in ERROR.
	OnSubmit bool
}

// ValidationError is the chain of a statement that names something that
// does not exist, as Flink's planner reports it.
func ValidationError(position, message string) []string {
	return []string{
		"org.apache.flink.table.api.ValidationException: SQL validation failed. " + position + ": " + message,
		"org.apache.calcite.runtime.CalciteContextException: " + position + ": " + message,
		"org.apache.calcite.sql.validate.SqlValidatorException: " + message,
	}
}

// ConnectionRefused is the chain of an INSERT whose job could not be
// submitted because the JobManager was unreachable.
func ConnectionRefused() []string {
	return []string{
		"org.apache.flink.table.api.TableException: Failed to execute sql",
		"org.apache.flink.util.FlinkException: Failed to execute job 'insert-into'.",
		"java.util.concurrent.ExecutionException: java.net.ConnectException: Connection refused: jobmanager/172.18.0.5:8081",
		"java.net.ConnectException: Connection refused: jobmanager/172.18.0.5:8081",
	}
}

type operation struct {
	handle    string
	statement string
	status    string // final status
	polls     int    // RUNNING answers left before the final status
	chain     []string
	jobID     string
	kind      string // result kind
	columns   []column
	rows      [][]any
}

type session struct {
	Session
	ops map[string]*operation
}

// Gateway is a fake Flink SQL Gateway REST endpoint. It implements
// http.Handler and is safe for concurrent use.
type Gateway struct {
	mu          sync.Mutex
	jm          *JobManager
	sessions    map[string]*session
	order       []string
	stmtFails   []StatementFailure
	failures    []scripted
	requests    []Request
	latency     time.Duration
	polls       int
	newJobState string
}

// NewGateway returns a gateway that submits INSERT jobs to jm (nil: INSERTs
// get a job id but no job exists anywhere).
func NewGateway(jm *JobManager) *Gateway {
	return &Gateway{jm: jm, sessions: map[string]*session{}, polls: 1, newJobState: "RUNNING"}
}

// SetStatusPolls sets how many status requests answer RUNNING before an
// operation reports its final status (default 1).
func (g *Gateway) SetStatusPolls(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.polls = n
}

// SetNewJobState sets the state of jobs that INSERTs submit (default
// RUNNING; a real job starts INITIALIZING, then CREATED).
func (g *Gateway) SetNewJobState(state string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.newJobState = state
}

// FailStatement scripts statements that Flink rejects. Calls queue up: the
// first matching script applies.
func (g *Gateway) FailStatement(f StatementFailure) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stmtFails = append(g.stmtFails, f)
}

// FailNext makes the next n requests that match f answer with f instead of
// being served. Calls queue up.
func (g *Gateway) FailNext(n int, f Failure) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n > 0 {
		g.failures = append(g.failures, scripted{f: f, n: n})
	}
}

// SetLatency delays every answer by d.
func (g *Gateway) SetLatency(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.latency = d
}

// Sessions returns copies of every session opened, oldest first.
func (g *Gateway) Sessions() []Session {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Session, 0, len(g.order))
	for _, h := range g.order {
		out = append(out, g.sessions[h].copy())
	}
	return out
}

// Session returns a copy of one session.
func (g *Gateway) Session(handle string) (Session, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.sessions[handle]
	if !ok {
		return Session{}, false
	}
	return s.copy(), true
}

// Statements returns every statement received, across sessions, in order.
func (g *Gateway) Statements() []string {
	var out []string
	for _, s := range g.Sessions() {
		out = append(out, s.Statements...)
	}
	return out
}

func (s *session) copy() Session {
	cp := s.Session
	cp.Properties = maps.Clone(s.Properties)
	cp.Config = maps.Clone(s.Config)
	cp.Statements = slices.Clone(s.Statements)
	return cp
}

// Requests returns the requests received so far, oldest first.
func (g *Gateway) Requests() []Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.requests)
}

// ServeHTTP answers one request the way the SQL Gateway does.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		writeHandlerError(w, http.StatusBadRequest, "org.apache.flink.runtime.rest.handler.RestHandlerException", "Request body could not be read.")
		return
	}
	g.mu.Lock()
	g.requests = append(g.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: body, Authorization: r.Header.Get("Authorization")})
	latency := g.latency
	fail, failing := takeFailure(&g.failures, r.Method, r.URL.Path)
	g.mu.Unlock()

	if !delay(r, latency) {
		return
	}
	if failing {
		writeFailure(w, fail)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.route(w, r, body)
}

var versionRE = regexp.MustCompile(`^v[1-4]$`)

func (g *Gateway) route(w http.ResponseWriter, r *http.Request, body []byte) {
	parts := splitPath(r)
	version := "v1" // an unversioned path means the oldest version
	if len(parts) > 0 && versionRE.MatchString(parts[0]) {
		version, parts = parts[0], parts[1:]
	}
	m := r.Method
	switch {
	case len(parts) == 1 && parts[0] == "info" && m == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]string{"productName": "Apache Flink", "version": Version})
	case len(parts) == 1 && parts[0] == "api_versions" && m == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string][]string{"versions": {"V1", "V2", "V3", "V4"}})
	case len(parts) == 1 && parts[0] == "sessions" && m == http.MethodPost:
		g.openSession(w, body)
	case len(parts) == 2 && parts[0] == "sessions" && m == http.MethodDelete:
		g.closeSession(w, parts[1])
	case len(parts) == 3 && parts[0] == "sessions" && parts[2] == "heartbeat" && m == http.MethodPost:
		if _, ok := g.live(w, parts[1], "triggerSessionHeartbeat"); ok {
			writeJSON(w, http.StatusOK, struct{}{})
		}
	case len(parts) == 3 && parts[0] == "sessions" && parts[2] == "statements" && m == http.MethodPost:
		g.executeStatement(w, parts[1], body)
	case len(parts) == 5 && parts[0] == "sessions" && parts[2] == "operations":
		g.operationCall(w, m, parts[1], parts[3], parts[4])
	case len(parts) == 6 && parts[0] == "sessions" && parts[2] == "operations" && parts[4] == "result" && m == http.MethodGet:
		g.fetchResults(w, r, version, parts[1], parts[3], parts[5])
	default:
		notFound(w)
	}
}

func (g *Gateway) openSession(w http.ResponseWriter, body []byte) {
	var req struct {
		SessionName string            `json:"sessionName"`
		Properties  map[string]string `json:"properties"`
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeHandlerError(w, http.StatusBadRequest, "org.apache.flink.runtime.rest.handler.RestHandlerException",
				"Request did not match expected format OpenSessionRequestBody.")
			return
		}
	}
	s := &session{Session: Session{
		Handle: uuid(), Name: req.SessionName,
		Properties: maps.Clone(req.Properties), Config: maps.Clone(req.Properties),
	}, ops: map[string]*operation{}}
	if s.Config == nil {
		s.Config = map[string]string{}
	}
	g.sessions[s.Handle] = s
	g.order = append(g.order, s.Handle)
	writeJSON(w, http.StatusOK, map[string]string{"sessionHandle": s.Handle})
}

// live finds an open session or answers the gateway's error for a missing
// one.
func (g *Gateway) live(w http.ResponseWriter, handle, call string) (*session, bool) {
	s, ok := g.sessions[handle]
	if ok && !s.Closed {
		return s, true
	}
	writeInternalError(w, "org.apache.flink.table.gateway.api.utils.SqlGatewayException: Failed to "+call+".\n"+
		"\tat org.apache.flink.table.gateway.service.SqlGatewayServiceImpl."+call+"(SqlGatewayServiceImpl.java:101)\n"+
		"Caused by: org.apache.flink.table.gateway.api.utils.SqlGatewayException: Session '"+handle+"' does not exist.\n"+
		"\tat org.apache.flink.table.gateway.service.session.SessionManagerImpl.getSession(SessionManagerImpl.java:154)\n"+
		"\t... 4 more")
	return nil, false
}

func (g *Gateway) closeSession(w http.ResponseWriter, handle string) {
	s, ok := g.sessions[handle]
	if !ok || s.Closed {
		writeHandlerError(w, http.StatusInternalServerError, "org.apache.flink.runtime.rest.handler.RestHandlerException",
			"Failed to closeSession.\nCaused by: org.apache.flink.table.gateway.api.utils.SqlGatewayException: Session '"+handle+"' does not exist.")
		return
	}
	s.Closed = true
	writeJSON(w, http.StatusOK, map[string]string{"status": "CLOSED"})
}

var (
	setRE    = regexp.MustCompile(`(?is)^\s*SET\s+'((?:[^']|'')*)'\s*=\s*'((?:[^']|'')*)'\s*;?\s*$`)
	insertRE = regexp.MustCompile("(?is)^\\s*INSERT\\s+INTO\\s+(`(?:[^`]|``)+`|[A-Za-z_][A-Za-z0-9_.]*)")
)

func (g *Gateway) executeStatement(w http.ResponseWriter, handle string, body []byte) {
	s, ok := g.live(w, handle, "executeStatement")
	if !ok {
		return
	}
	var req struct {
		Statement       string            `json:"statement"`
		ExecutionConfig map[string]string `json:"executionConfig"`
	}
	if err := json.Unmarshal(body, &req); err != nil || strings.TrimSpace(req.Statement) == "" {
		writeHandlerError(w, http.StatusBadRequest, "org.apache.flink.runtime.rest.handler.RestHandlerException",
			"Request did not match expected format ExecuteStatementRequestBody.")
		return
	}
	s.Statements = append(s.Statements, req.Statement)
	op := &operation{handle: uuid(), statement: req.Statement, status: "FINISHED", polls: g.polls}
	if f, ok := g.takeStatementFailure(req.Statement); ok {
		if f.OnSubmit {
			writeInternalError(w, gatewayTrace("Failed to executeStatement.", op.handle, f.Chain))
			return
		}
		op.status, op.chain = "ERROR", f.Chain
	} else {
		g.execute(s, op, req.ExecutionConfig)
	}
	s.ops[op.handle] = op
	writeJSON(w, http.StatusOK, map[string]string{"operationHandle": op.handle})
}

func (g *Gateway) takeStatementFailure(stmt string) (StatementFailure, bool) {
	for i := range g.stmtFails {
		f := &g.stmtFails[i]
		if !strings.Contains(stmt, f.Contains) {
			continue
		}
		out := *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				g.stmtFails = append(g.stmtFails[:i], g.stmtFails[i+1:]...)
			}
		}
		return out, true
	}
	return StatementFailure{}, false
}

// execute carries out what the fake understands of a statement: SET
// changes the session's configuration, INSERT submits a job; everything
// else succeeds with "OK".
func (g *Gateway) execute(s *session, op *operation, execConfig map[string]string) {
	okResult := func() {
		op.kind = "SUCCESS"
		op.columns = []column{{Name: "result", LogicalType: varchar(false)}}
		op.rows = [][]any{{"OK"}}
	}
	if m := setRE.FindStringSubmatch(op.statement); m != nil {
		s.Config[strings.ReplaceAll(m[1], "''", "'")] = strings.ReplaceAll(m[2], "''", "'")
		okResult()
		return
	}
	m := insertRE.FindStringSubmatch(op.statement)
	if m == nil {
		okResult()
		return
	}
	name := execConfig["pipeline.name"]
	if name == "" {
		name = s.Config["pipeline.name"]
	}
	if name == "" {
		table := strings.ReplaceAll(strings.Trim(m[1], "`"), "``", "`")
		name = "insert-into_default_catalog.default_database." + table
	}
	if g.jm != nil {
		g.jm.mu.Lock()
		op.jobID = g.jm.addJobLocked(name, g.newJobState)
		g.jm.mu.Unlock()
	} else {
		op.jobID = randomHex(16)
	}
	op.kind = "SUCCESS_WITH_CONTENT"
	op.columns = []column{{Name: "job id", LogicalType: varchar(true)}}
	op.rows = [][]any{{op.jobID}}
}

func (g *Gateway) operationCall(w http.ResponseWriter, method, handle, opHandle, verb string) {
	call := map[string]string{"status GET": "getOperationInfo", "cancel POST": "cancelOperation", "close DELETE": "closeOperation"}[verb+" "+method]
	if call == "" {
		notFound(w)
		return
	}
	s, ok := g.live(w, handle, call)
	if !ok {
		return
	}
	op, ok := s.ops[opHandle]
	if !ok {
		writeHandlerError(w, http.StatusInternalServerError, "org.apache.flink.runtime.rest.handler.RestHandlerException",
			"Failed to "+call+".\nCaused by: org.apache.flink.table.gateway.api.utils.SqlGatewayException: Can not find the submitted operation in the OperationManager with the "+opHandle+".")
		return
	}
	switch verb {
	case "status":
		writeJSON(w, http.StatusOK, map[string]string{"status": op.poll()})
	case "cancel":
		if op.polls > 0 {
			op.polls, op.status = 0, "CANCELED"
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": op.poll()})
	case "close":
		op.polls, op.status = 0, "CLOSED"
		delete(s.ops, opHandle)
		writeJSON(w, http.StatusOK, map[string]string{"status": "CLOSED"})
	}
}

// poll answers one status request.
func (op *operation) poll() string {
	if op.polls > 0 {
		op.polls--
		return "RUNNING"
	}
	return op.status
}

type column struct {
	Name        string         `json:"name"`
	LogicalType map[string]any `json:"logicalType"`
	Comment     *string        `json:"comment"`
}

func varchar(nullable bool) map[string]any {
	return map[string]any{"type": "VARCHAR", "nullable": nullable, "length": 2147483647}
}

type resultRow struct {
	Kind   string `json:"kind"`
	Fields []any  `json:"fields"`
}

func (g *Gateway) fetchResults(w http.ResponseWriter, r *http.Request, version, handle, opHandle, tokenText string) {
	s, ok := g.live(w, handle, "fetchResults")
	if !ok {
		return
	}
	token, err := strconv.ParseInt(tokenText, 10, 64)
	if err != nil || token < 0 {
		writeHandlerError(w, http.StatusBadRequest, "org.apache.flink.runtime.rest.handler.RestHandlerException",
			"Bad request, could not parse parameters: "+tokenText+" is not a valid token.")
		return
	}
	rowFormat := r.URL.Query().Get("rowFormat")
	if version != "v1" && rowFormat == "" {
		// Not verified against a real gateway: v2 and later declare
		// rowFormat a required query parameter.
		writeHandlerError(w, http.StatusBadRequest, "org.apache.flink.runtime.rest.handler.RestHandlerException",
			"Bad request, could not parse parameters: Missing value for required query parameter rowFormat.")
		return
	}
	if rowFormat == "" {
		rowFormat = "JSON"
	}
	op, ok := s.ops[opHandle]
	if !ok {
		writeInternalError(w, gatewayTrace("Failed to fetchResults.", opHandle,
			[]string{"org.apache.flink.table.gateway.api.utils.SqlGatewayException: Can not find the submitted operation in the OperationManager with the " + opHandle + "."}))
		return
	}
	next := func(t int64) string {
		return fmt.Sprintf("/%s/sessions/%s/operations/%s/result/%d?rowFormat=%s", version, handle, opHandle, t, rowFormat)
	}
	if op.polls > 0 {
		writeJSON(w, http.StatusOK, map[string]any{"resultType": "NOT_READY", "nextResultUri": next(token)})
		return
	}
	switch op.status {
	case "ERROR":
		writeInternalError(w, gatewayTrace("Failed to fetchResults.", opHandle, op.chain))
		return
	case "CANCELED", "CLOSED", "TIMEOUT":
		writeInternalError(w, gatewayTrace("Failed to fetchResults.", opHandle,
			[]string{"org.apache.flink.table.gateway.api.utils.SqlGatewayException: Can not fetch results from the " + op.status + " operation " + opHandle + "."}))
		return
	}
	page := map[string]any{
		"isQueryResult": false,
		"resultKind":    op.kind,
	}
	if op.jobID != "" {
		page["jobID"] = op.jobID
	}
	results := map[string]any{"columns": op.columns, "rowFormat": rowFormat, "data": []resultRow{}}
	if token == 0 {
		rows := make([]resultRow, 0, len(op.rows))
		for _, f := range op.rows {
			rows = append(rows, resultRow{Kind: "INSERT", Fields: f})
		}
		results["data"] = rows
		page["resultType"] = "PAYLOAD"
		page["nextResultUri"] = next(1)
	} else {
		page["resultType"] = "EOS"
	}
	page["results"] = results
	writeJSON(w, http.StatusOK, page)
}

// gatewayTrace prints an operation's failure the way the gateway's REST
// handler does: its own SqlGatewayException, the service's, the
// operation's SqlExecutionException, then the statement's chain, each with
// a frame.
func gatewayTrace(call, opHandle string, chain []string) string {
	var b strings.Builder
	b.WriteString("org.apache.flink.table.gateway.api.utils.SqlGatewayException: org.apache.flink.table.gateway.api.utils.SqlGatewayException: " + call + "\n")
	b.WriteString("\tat org.apache.flink.table.gateway.rest.handler.statement.FetchResultsHandler.handleRequest(FetchResultsHandler.java:91)\n")
	b.WriteString("Caused by: org.apache.flink.table.gateway.api.utils.SqlGatewayException: " + call + "\n")
	b.WriteString("\tat org.apache.flink.table.gateway.service.SqlGatewayServiceImpl.fetchResults(SqlGatewayServiceImpl.java:238)\n\t... 3 more\n")
	b.WriteString("Caused by: org.apache.flink.table.gateway.service.utils.SqlExecutionException: Failed to execute the operation " + opHandle + ".\n")
	b.WriteString("\tat org.apache.flink.table.gateway.service.operation.OperationManager$Operation.processThrowable(OperationManager.java:414)\n")
	for _, e := range chain {
		b.WriteString("Caused by: " + e + "\n")
		b.WriteString("\tat org.apache.flink.table.planner.delegation.PlannerBase.translate(PlannerBase.scala:187)\n\t... 12 more\n")
	}
	return strings.TrimRight(b.String(), "\n")
}
