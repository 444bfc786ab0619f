// Package kafkaconnect is a client for Kafka Connect's REST API: it creates
// or updates a connector's configuration, reads its status and offsets,
// stops it, resets its offsets and deletes it.
// Every error it returns says whether retrying can help (IsRetriable), so
// callers do not guess from status codes.
//
// Connector configurations carry database passwords: the client never puts
// a request body in an error, and it masks secret values that Connect echoes
// back in its error messages.
//
// This package must not import other cdcq packages.
package kafkaconnect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultRequestTimeout bounds one request when Config.RequestTimeout is 0.
const DefaultRequestTimeout = 10 * time.Second

// maxBodyBytes caps how much of an answer is read; status traces are the
// longest answers and stay far below it.
const maxBodyBytes = 4 << 20

// Config configures a Client.
type Config struct {
	// URL is the base URL of a Kafka Connect worker's REST API, for example
	// http://connect:8083. Any worker of the cluster will do: workers
	// forward writes to the leader. Required.
	URL string
	// RequestTimeout bounds each request, from dialling to reading the
	// whole answer. Default DefaultRequestTimeout (10s). Connect itself
	// gives up on a write after 90s and answers 500 "Request timed out";
	// a shorter client timeout only means the outcome of a PUT or DELETE is
	// unknown, which is harmless because both are idempotent.
	RequestTimeout time.Duration
	// HTTPClient sends the requests. Default: a client of its own with no
	// overall timeout (RequestTimeout applies per request).
	HTTPClient *http.Client
	// Header is added to every request, for example an Authorization
	// header when the workers sit behind an authenticating proxy. Its
	// values are never put in errors.
	Header http.Header
}

func (c *Config) setDefaults() {
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.URL == "" {
		return errors.New("kafkaconnect: URL is required")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("kafkaconnect: URL must be an http:// or https:// URL with a host")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("kafkaconnect: URL must not have a query or fragment")
	}
	if c.RequestTimeout < 0 {
		return fmt.Errorf("kafkaconnect: RequestTimeout %s is negative", c.RequestTimeout)
	}
	return nil
}

// Client calls one Kafka Connect cluster. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base string // cfg.URL without a trailing slash
}

// New returns a client for the cluster that cfg names.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, base: strings.TrimRight(cfg.URL, "/")}, nil
}

// Connector and task states as Connect reports them.
const (
	StateUnassigned = "UNASSIGNED"
	StateRunning    = "RUNNING"
	StatePaused     = "PAUSED"
	StateFailed     = "FAILED"
	StateRestarting = "RESTARTING"
	// StateStopped: the connector was stopped through PUT .../stop
	// (Kafka 3.5+); it keeps its configuration but has no tasks.
	StateStopped = "STOPPED"
)

// ConnectorStatus is the answer of GET /connectors/{name}/status.
type ConnectorStatus struct {
	Name      string      `json:"name"`
	Connector WorkerState `json:"connector"`
	Tasks     []TaskState `json:"tasks"`
	// Type is "source" or "sink" (absent from old workers).
	Type string `json:"type,omitempty"`
}

// WorkerState is the state of a connector instance on its worker.
type WorkerState struct {
	State    string `json:"state"`
	WorkerID string `json:"worker_id"`
	// Trace is the Java stack trace of a failure; Connect leaves it out
	// unless the state is FAILED.
	Trace string `json:"trace,omitempty"`
}

// TaskState is the state of one task of a connector.
type TaskState struct {
	ID       int    `json:"id"`
	State    string `json:"state"`
	WorkerID string `json:"worker_id"`
	Trace    string `json:"trace,omitempty"`
}

// ConnectorInfo is the answer of GET /connectors/{name} and of
// PUT /connectors/{name}/config.
type ConnectorInfo struct {
	Name string `json:"name"`
	// Config is the stored configuration; Connect adds the "name" key.
	Config map[string]string `json:"config"`
	Tasks  []TaskID          `json:"tasks"`
	Type   string            `json:"type,omitempty"`
}

// TaskID names one task of a connector.
type TaskID struct {
	Connector string `json:"connector"`
	Task      int    `json:"task"`
}

// PutConnectorConfig creates the connector or replaces its configuration
// (PUT /connectors/{name}/config, idempotent). created is true when Connect
// answered 201 (the connector is new) and false on 200 (updated).
func (c *Client) PutConnectorConfig(ctx context.Context, name string, config map[string]string) (created bool, err error) {
	if err := checkName(name); err != nil {
		return false, err
	}
	body, err := json.Marshal(config)
	if err != nil {
		return false, fmt.Errorf("kafkaconnect: encode config of %s: %w", name, err)
	}
	var info ConnectorInfo
	status, err := c.do(ctx, http.MethodPut, connectorPath(name, "config"), body, &info)
	if err != nil {
		return false, maskSecrets(err, config)
	}
	return status == http.StatusCreated, nil
}

// ConnectorConfig returns the stored configuration of a connector
// (GET /connectors/{name}/config). A missing connector is an *APIError for
// which IsNotFound is true.
func (c *Client) ConnectorConfig(ctx context.Context, name string) (map[string]string, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var config map[string]string
	if _, err := c.do(ctx, http.MethodGet, connectorPath(name, "config"), nil, &config); err != nil {
		return nil, err
	}
	return config, nil
}

// Connector returns a connector's name, configuration and task ids
// (GET /connectors/{name}).
func (c *Client) Connector(ctx context.Context, name string) (ConnectorInfo, error) {
	if err := checkName(name); err != nil {
		return ConnectorInfo{}, err
	}
	var info ConnectorInfo
	if _, err := c.do(ctx, http.MethodGet, connectorPath(name, ""), nil, &info); err != nil {
		return ConnectorInfo{}, err
	}
	return info, nil
}

// ConnectorStatus returns the state of a connector and its tasks
// (GET /connectors/{name}/status). A missing connector is an *APIError for
// which IsNotFound is true.
func (c *Client) ConnectorStatus(ctx context.Context, name string) (ConnectorStatus, error) {
	if err := checkName(name); err != nil {
		return ConnectorStatus{}, err
	}
	var st ConnectorStatus
	if _, err := c.do(ctx, http.MethodGet, connectorPath(name, "status"), nil, &st); err != nil {
		return ConnectorStatus{}, err
	}
	return st, nil
}

// ConnectorsStatus returns the state of every connector and its tasks in
// one request (GET /connectors?expand=status), by connector name.
func (c *Client) ConnectorsStatus(ctx context.Context) (map[string]ConnectorStatus, error) {
	var out map[string]struct {
		Status ConnectorStatus `json:"status"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/connectors?expand=status", nil, &out); err != nil {
		return nil, err
	}
	st := make(map[string]ConnectorStatus, len(out))
	for name, v := range out {
		st[name] = v.Status
	}
	return st, nil
}

// SourceOffset is one partition's committed offset of a source connector:
// both maps are the connector's own (Debezium's PostgreSQL connector uses
// partition {"server": <topic.prefix>}).
type SourceOffset struct {
	Partition map[string]any `json:"partition"`
	Offset    map[string]any `json:"offset"`
}

// ConnectorOffsets returns the offsets a source connector committed (GET
// /connectors/{name}/offsets, Kafka 3.6 and later). They are as recent as
// the worker's last offset flush (offset.flush.interval.ms), and cover
// only records Kafka acknowledged.
func (c *Client) ConnectorOffsets(ctx context.Context, name string) ([]SourceOffset, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var out struct {
		Offsets []SourceOffset `json:"offsets"`
	}
	if _, err := c.do(ctx, http.MethodGet, connectorPath(name, "offsets"), nil, &out); err != nil {
		return nil, err
	}
	return out.Offsets, nil
}

// DeleteConnector deletes a connector (DELETE /connectors/{name}). Deleting
// a connector that does not exist succeeds, as an idempotent delete must;
// existed says which case it was. Connect answers before the connector's
// tasks have stopped: poll ConnectorStatus until it reports not found to
// know they are gone.
func (c *Client) DeleteConnector(ctx context.Context, name string) (existed bool, err error) {
	if err := checkName(name); err != nil {
		return false, err
	}
	_, err = c.do(ctx, http.MethodDelete, connectorPath(name, ""), nil, nil)
	switch {
	case err == nil:
		return true, nil
	case IsNotFound(err):
		return false, nil
	default:
		return false, err
	}
}

// StopConnector stops a connector and shuts its tasks down, keeping its
// configuration (PUT /connectors/{name}/stop, Kafka 3.5 and later). Connect
// answers 202 once the stop is requested: poll ConnectorStatus until the
// connector is StateStopped to know it is done. A missing connector is an
// *APIError for which IsNotFound is true.
func (c *Client) StopConnector(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	_, err := c.do(ctx, http.MethodPut, connectorPath(name, "stop"), nil, nil)
	return err
}

// ResetConnectorOffsets deletes every offset a connector committed (DELETE
// /connectors/{name}/offsets, Kafka 3.6 and later), so that a connector of
// that name starts as a new one would. Connect allows it only on a
// connector that is STOPPED (StopConnector), and answers a 400 otherwise;
// for a source connector it answers 200 once tombstones for every
// partition are in the offsets topic. A missing connector is an *APIError
// for which IsNotFound is true.
func (c *Client) ResetConnectorOffsets(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	_, err := c.do(ctx, http.MethodDelete, connectorPath(name, "offsets"), nil, nil)
	return err
}

// RestartConnector restarts a connector and all its tasks (POST
// /connectors/{name}/restart?includeTasks=true, Kafka 3.0 and later), so
// that they resolve their configuration again, config provider references
// included. Connect answers once the restart is requested, not done.
func (c *Client) RestartConnector(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	_, err := c.do(ctx, http.MethodPost, connectorPath(name, "restart")+"?includeTasks=true&onlyFailed=false", nil, nil)
	return err
}

// checkName refuses names that cannot round-trip through a URL path
// segment the way Connect reads them.
func checkName(name string) error {
	if strings.TrimSpace(name) == "" {
		return errors.New("kafkaconnect: connector name is empty")
	}
	return nil
}

func connectorPath(name, sub string) string {
	p := "/connectors/" + url.PathEscape(name)
	if sub != "" {
		p += "/" + sub
	}
	return p
}

// do sends one request and decodes a 2xx answer into out (when out is not
// nil). It returns the status code of a 2xx answer, an *APIError for any
// other answer and a *TransportError when no answer came.
func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()

	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, fmt.Errorf("kafkaconnect: build %s %s: %w", method, path, withoutURL(err))
	}
	for k, vs := range c.cfg.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, &TransportError{Method: method, Path: path, Err: withoutURL(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return 0, &TransportError{Method: method, Path: path, Err: fmt.Errorf("read answer: %w", err)}
	}

	if resp.StatusCode >= 400 {
		e := parseAPIError(method, path, resp.StatusCode, data)
		// A proxy in front of Connect may repeat the request's headers,
		// credentials included.
		for _, vs := range c.cfg.Header {
			for _, v := range vs {
				if len(v) >= 4 {
					e.Message = strings.ReplaceAll(e.Message, v, "***")
				}
			}
		}
		return 0, e
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(data, out); err != nil {
			return 0, fmt.Errorf("kafkaconnect: %s %s: decode %d answer: %w", method, path, resp.StatusCode, err)
		}
	}
	return resp.StatusCode, nil
}

// withoutURL drops the URL that *url.Error repeats: it may carry
// credentials in its user part.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func parseAPIError(method, path string, status int, data []byte) *APIError {
	e := &APIError{Method: method, Path: path, StatusCode: status}
	var body struct {
		ErrorCode int    `json:"error_code"`
		Message   string `json:"message"`
	}
	if json.Unmarshal(data, &body) == nil && (body.ErrorCode != 0 || body.Message != "") {
		e.ErrorCode = body.ErrorCode
		e.Message = body.Message
		return e
	}
	text := strings.TrimSpace(string(data))
	if len(text) > 200 {
		text = text[:200] + "..."
	}
	if text == "" {
		text = http.StatusText(status)
	}
	e.Message = text
	return e
}

// maskSecrets hides secret values of config that Connect echoed in an error
// message: Connect 3.x and 4.x answer a config without connector.class with
// "Connector config {k=v, ...} contains no connector type", password
// included.
func maskSecrets(err error, config map[string]string) error {
	var ae *APIError
	if !errors.As(err, &ae) {
		return err
	}
	for k, v := range config {
		if v == "" || !isSecretKey(k) {
			continue
		}
		ae.Message = strings.ReplaceAll(ae.Message, k+"="+v, k+"=***")
		// A bare occurrence is masked too, unless the value is so short
		// that masking would garble the message (the key=value form above
		// already covers how Connect prints a config).
		if len(v) >= 4 {
			ae.Message = strings.ReplaceAll(ae.Message, v, "***")
		}
	}
	return err
}

func isSecretKey(k string) bool {
	k = strings.ToLower(k)
	for _, part := range []string{"password", "secret", "token", "credential", "jaas.config"} {
		if strings.Contains(k, part) {
			return true
		}
	}
	return strings.HasSuffix(k, "apikey") || strings.HasSuffix(k, "api.key")
}
