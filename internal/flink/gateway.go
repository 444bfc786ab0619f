package flink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Operation statuses as the SQL Gateway reports them. FINISHED, CANCELED,
// CLOSED, ERROR and TIMEOUT are final.
const (
	OpInitialized = "INITIALIZED"
	OpPending     = "PENDING"
	OpRunning     = "RUNNING"
	OpFinished    = "FINISHED"
	OpCanceled    = "CANCELED"
	OpClosed      = "CLOSED"
	OpError       = "ERROR"
	OpTimeout     = "TIMEOUT"
)

// Result types of a fetched page.
const (
	ResultNotReady = "NOT_READY"
	ResultPayload  = "PAYLOAD"
	ResultEOS      = "EOS"
)

// JobIDColumn is the one column of an INSERT's result.
const JobIDColumn = "job id"

// Gateway calls one Flink SQL Gateway. It is safe for concurrent use.
type Gateway struct {
	cfg  GatewayConfig
	rest rest
}

// NewGateway returns a client for the gateway that cfg names.
func NewGateway(cfg GatewayConfig) (*Gateway, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Gateway{cfg: cfg, rest: rest{
		service: "flink sql gateway",
		base:    strings.TrimRight(cfg.URL, "/"),
		timeout: cfg.RequestTimeout,
		client:  cfg.HTTPClient,
		header:  cfg.Header,
	}}, nil
}

// SessionOptions are the optional parts of POST /sessions.
type SessionOptions struct {
	// Name shows in the gateway's logs.
	Name string `json:"sessionName,omitempty"`
	// Properties override the gateway's configuration for the session,
	// like SET statements do.
	Properties map[string]string `json:"properties,omitempty"`
}

// OpenSession opens a session (POST /sessions) and returns its handle. The
// gateway closes a session left idle for sql-gateway.session.idle-timeout
// (10 minutes by default); Heartbeat keeps one alive.
func (g *Gateway) OpenSession(ctx context.Context, opts SessionOptions) (string, error) {
	var out struct {
		SessionHandle string `json:"sessionHandle"`
	}
	if _, err := g.rest.do(ctx, http.MethodPost, g.path("/sessions"), opts, &out); err != nil {
		return "", err
	}
	if out.SessionHandle == "" {
		return "", fmt.Errorf("flink sql gateway: POST %s answered without a sessionHandle", g.path("/sessions"))
	}
	return out.SessionHandle, nil
}

// CloseSession closes a session and every operation in it (DELETE
// /sessions/{handle}). Jobs that INSERT statements submitted keep running.
func (g *Gateway) CloseSession(ctx context.Context, session string) error {
	sp, err := pathSegment("session handle", session)
	if err != nil {
		return err
	}
	_, err = g.rest.do(ctx, http.MethodDelete, g.path("/sessions/"+sp), nil, nil)
	return err
}

// Heartbeat tells the gateway the session is in use (POST
// /sessions/{handle}/heartbeat).
func (g *Gateway) Heartbeat(ctx context.Context, session string) error {
	sp, err := pathSegment("session handle", session)
	if err != nil {
		return err
	}
	_, err = g.rest.do(ctx, http.MethodPost, g.path("/sessions/"+sp+"/heartbeat"), struct{}{}, nil)
	return err
}

// Statement is the body of POST /sessions/{handle}/statements.
type Statement struct {
	// SQL is one statement (no trailing semicolon needed).
	SQL string `json:"statement"`
	// ExecutionConfig overrides session settings for this statement only.
	ExecutionConfig map[string]string `json:"executionConfig,omitempty"`
}

// ExecuteStatement submits one statement and returns its operation handle.
// The gateway executes it asynchronously: a statement it cannot run is
// reported by OperationStatus (ERROR) and by FetchResults (the exception).
func (g *Gateway) ExecuteStatement(ctx context.Context, session string, st Statement) (string, error) {
	sp, err := pathSegment("session handle", session)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(st.SQL) == "" {
		return "", fmt.Errorf("flink: statement is empty")
	}
	var out struct {
		OperationHandle string `json:"operationHandle"`
	}
	p := g.path("/sessions/" + sp + "/statements")
	if _, err := g.rest.do(ctx, http.MethodPost, p, st, &out); err != nil {
		return "", err
	}
	if out.OperationHandle == "" {
		return "", fmt.Errorf("flink sql gateway: POST %s answered without an operationHandle", p)
	}
	return out.OperationHandle, nil
}

// OperationStatus returns an operation's status (GET
// /sessions/{s}/operations/{o}/status).
func (g *Gateway) OperationStatus(ctx context.Context, session, operation string) (string, error) {
	return g.operationCall(ctx, http.MethodGet, session, operation, "status")
}

// CancelOperation cancels a running operation (POST .../cancel) and returns
// its status afterwards.
func (g *Gateway) CancelOperation(ctx context.Context, session, operation string) (string, error) {
	return g.operationCall(ctx, http.MethodPost, session, operation, "cancel")
}

// CloseOperation releases an operation's resources (DELETE .../close) and
// returns its status afterwards.
func (g *Gateway) CloseOperation(ctx context.Context, session, operation string) (string, error) {
	return g.operationCall(ctx, http.MethodDelete, session, operation, "close")
}

func (g *Gateway) operationCall(ctx context.Context, method, session, operation, verb string) (string, error) {
	p, err := g.operationPath(session, operation)
	if err != nil {
		return "", err
	}
	var in any
	if method == http.MethodPost {
		in = struct{}{}
	}
	var out struct {
		Status string `json:"status"`
	}
	if _, err := g.rest.do(ctx, method, p+"/"+verb, in, &out); err != nil {
		return "", err
	}
	return out.Status, nil
}

// ResultPage is one page of an operation's result (FetchResultsResponseBody).
type ResultPage struct {
	// ResultType is NOT_READY, PAYLOAD or EOS; the other fields except
	// NextResultURI are set only for PAYLOAD and EOS.
	ResultType    string `json:"resultType"`
	IsQueryResult bool   `json:"isQueryResult"`
	// JobID is the job a statement submitted (Flink 1.18+; older gateways
	// only put it in the "job id" column).
	JobID      string    `json:"jobID,omitempty"`
	ResultKind string    `json:"resultKind,omitempty"`
	Results    ResultSet `json:"results"`
	// NextResultURI is the path of the next page; empty after the last.
	NextResultURI string `json:"nextResultUri,omitempty"`
}

// ResultSet holds the columns and rows of a page (rowFormat JSON).
type ResultSet struct {
	Columns   []Column `json:"columns"`
	RowFormat string   `json:"rowFormat,omitempty"`
	Data      []Row    `json:"data"`
}

// Column describes one result column.
type Column struct {
	Name        string          `json:"name"`
	LogicalType json.RawMessage `json:"logicalType,omitempty"`
	Comment     *string         `json:"comment,omitempty"`
}

// Row is one result row: its change kind (INSERT, UPDATE_BEFORE,
// UPDATE_AFTER, DELETE) and its fields as JSON.
type Row struct {
	Kind   string            `json:"kind"`
	Fields []json.RawMessage `json:"fields"`
}

// FetchResults reads the page with the given token (GET
// /sessions/{s}/operations/{o}/result/{token}?rowFormat=JSON). Fetching the
// result of an operation that failed answers 500 with the exception: an
// *APIError whose OperationFailed is true.
func (g *Gateway) FetchResults(ctx context.Context, session, operation string, token int64) (ResultPage, error) {
	p, err := g.operationPath(session, operation)
	if err != nil {
		return ResultPage{}, err
	}
	return g.fetch(ctx, p+"/result/"+strconv.FormatInt(token, 10)+"?rowFormat=JSON")
}

// FetchNext reads the page a previous page's NextResultURI names.
func (g *Gateway) FetchNext(ctx context.Context, nextResultURI string) (ResultPage, error) {
	if !strings.HasPrefix(nextResultURI, "/") {
		return ResultPage{}, fmt.Errorf("flink sql gateway: next result URI %q is not a path", nextResultURI)
	}
	return g.fetch(ctx, nextResultURI)
}

func (g *Gateway) fetch(ctx context.Context, pathAndQuery string) (ResultPage, error) {
	var page ResultPage
	if _, err := g.rest.do(ctx, http.MethodGet, pathAndQuery, nil, &page); err != nil {
		return ResultPage{}, err
	}
	return page, nil
}

// Result is what Run learnt from a finished statement.
type Result struct {
	// Operation is the statement's operation handle.
	Operation string
	// JobID is the job the statement submitted (INSERT), if any.
	JobID string
	// Kind is the result kind: SUCCESS or SUCCESS_WITH_CONTENT.
	Kind    string
	Columns []Column
	Rows    []Row
}

// maxPages bounds how many pages Run reads; the statements it is meant for
// (SET, DDL, INSERT) answer with one page of content and one EOS page.
const maxPages = 64

// Run executes one statement and waits for it: it submits the statement,
// polls the operation's status with backoff (PollInterval doubling up to
// MaxPollInterval) until it is final or OperationTimeout passes, then reads
// the result until EOS. It is meant for statements with a short result
// (SET, CREATE, INSERT); a query's result is cut after its first page.
//
// A statement Flink rejects is an *OperationError with Flink's reason;
// it is retriable only when the exception names a connection problem or a
// timeout. An operation still running after OperationTimeout is canceled
// and reported as a retriable *OperationError. Transport and server errors
// of the calls themselves are returned as they are (retriable).
func (g *Gateway) Run(ctx context.Context, session string, st Statement) (Result, error) {
	op, err := g.ExecuteStatement(ctx, session, st)
	if err != nil {
		if oe := operationErrorFrom(session, "", err); oe != nil {
			return Result{}, oe
		}
		return Result{}, err
	}
	status, err := g.wait(ctx, session, op)
	if err != nil {
		return Result{}, err
	}
	switch status {
	case OpFinished:
	case OpError:
		return Result{}, g.failure(ctx, session, op)
	default:
		// TIMEOUT (the statement's own execution timeout), or CANCELED or
		// CLOSED by someone else: running the statement again may work.
		return Result{}, &OperationError{Session: session, Operation: op, Status: status,
			Reason: "the gateway reports the operation " + status, retriable: true}
	}
	return g.readResult(ctx, session, op)
}

// wait polls until the operation's status is final.
func (g *Gateway) wait(ctx context.Context, session, op string) (string, error) {
	deadline := time.Now().Add(g.cfg.OperationTimeout)
	interval := g.cfg.PollInterval
	for {
		status, err := g.OperationStatus(ctx, session, op)
		if err != nil {
			return "", fmt.Errorf("status of operation %s: %w", op, err)
		}
		switch status {
		case OpInitialized, OpPending, OpRunning:
		default:
			return status, nil
		}
		if time.Now().After(deadline) {
			// Best effort: a late INSERT would otherwise still submit a
			// job after the caller gave up.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.RequestTimeout)
			_, _ = g.CancelOperation(cctx, session, op)
			cancel()
			return "", &OperationError{Session: session, Operation: op, Status: status,
				Reason: fmt.Sprintf("still %s after %s; canceled", status, g.cfg.OperationTimeout), retriable: true}
		}
		if err := sleep(ctx, interval); err != nil {
			return "", fmt.Errorf("wait for operation %s: %w", op, err)
		}
		interval = min(interval*2, g.cfg.MaxPollInterval)
	}
}

// failure reads the exception of an operation in ERROR: fetching its
// result answers 500 with the stack trace.
func (g *Gateway) failure(ctx context.Context, session, op string) error {
	_, err := g.FetchResults(ctx, session, op, 0)
	if err == nil {
		return &OperationError{Session: session, Operation: op, Status: OpError,
			Reason: "the operation failed and the gateway sent no exception"}
	}
	if oe := operationErrorFrom(session, op, err); oe != nil {
		return oe
	}
	// The failure could not be read (the gateway is unreachable): the
	// statement failed, but why is unknown, so try again later.
	return fmt.Errorf("operation %s failed; reading its exception: %w", op, err)
}

// operationErrorFrom turns an answer that carries a statement's failure
// into an *OperationError; other errors give nil.
func operationErrorFrom(session, op string, err error) *OperationError {
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode < 500 {
		return nil
	}
	chain := ae.Chain()
	if !isOperationFailure(chain) {
		return nil
	}
	return &OperationError{Session: session, Operation: op, Status: OpError,
		Reason: Summarize(chain), Trace: ae.Trace(), retriable: Transient(chain)}
}

func (g *Gateway) readResult(ctx context.Context, session, op string) (Result, error) {
	res := Result{Operation: op}
	page, err := g.FetchResults(ctx, session, op, 0)
	deadline := time.Now().Add(g.cfg.OperationTimeout)
	interval := g.cfg.PollInterval
	for n := 0; ; n++ {
		if err != nil {
			return Result{}, fmt.Errorf("result of operation %s: %w", op, err)
		}
		switch page.ResultType {
		case ResultNotReady:
			if time.Now().After(deadline) {
				return Result{}, &OperationError{Session: session, Operation: op, Status: OpFinished,
					Reason: fmt.Sprintf("result not ready after %s", g.cfg.OperationTimeout), retriable: true}
			}
			if err := sleep(ctx, interval); err != nil {
				return Result{}, fmt.Errorf("wait for result of operation %s: %w", op, err)
			}
			interval = min(interval*2, g.cfg.MaxPollInterval)
		case ResultPayload, ResultEOS:
			if res.JobID == "" {
				res.JobID = page.JobID
			}
			if res.Kind == "" {
				res.Kind = page.ResultKind
			}
			if len(page.Results.Columns) > 0 {
				res.Columns = page.Results.Columns
			}
			res.Rows = append(res.Rows, page.Results.Data...)
			if page.ResultType == ResultEOS || page.IsQueryResult {
				return finish(res), nil
			}
		default:
			return Result{}, fmt.Errorf("result of operation %s: unknown resultType %q", op, page.ResultType)
		}
		if page.NextResultURI == "" {
			return finish(res), nil
		}
		if n >= maxPages {
			return Result{}, fmt.Errorf("result of operation %s: more than %d pages", op, maxPages)
		}
		page, err = g.FetchNext(ctx, page.NextResultURI)
	}
}

// finish fills JobID from the "job id" column for gateways that do not
// send the jobID field.
func finish(res Result) Result {
	if res.JobID != "" {
		return res
	}
	for i, c := range res.Columns {
		if c.Name != JobIDColumn {
			continue
		}
		for _, r := range res.Rows {
			if i < len(r.Fields) {
				var id string
				if json.Unmarshal(r.Fields[i], &id) == nil && id != "" {
					res.JobID = id
					return res
				}
			}
		}
	}
	return res
}

func (g *Gateway) path(p string) string { return "/" + g.cfg.APIVersion + p }

func (g *Gateway) operationPath(session, operation string) (string, error) {
	sp, err := pathSegment("session handle", session)
	if err != nil {
		return "", err
	}
	op, err := pathSegment("operation handle", operation)
	if err != nil {
		return "", err
	}
	return g.path("/sessions/" + sp + "/operations/" + op), nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
