package kafkaconnect_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/kafkaconnect"
	"github.com/cdcq/cdcq/internal/kafkaconnect/connectfake"
)

// The contract suite: cdcq's client against a worker that speaks Connect's
// documented REST API (connectfake, itself pinned to the wire format in its
// own tests).

const password = "pw-must-not-leak-7f3a"

func debeziumConfig() map[string]string {
	return map[string]string{
		"connector.class":   connectfake.DebeziumPostgresClass,
		"tasks.max":         "1",
		"database.hostname": "db.example",
		"database.user":     "postgres",
		"database.password": password,
		"database.dbname":   "shop",
		"topic.prefix":      "env1",
	}
}

func newClient(t *testing.T, url string, timeout time.Duration) *kafkaconnect.Client {
	t.Helper()
	c, err := kafkaconnect.New(kafkaconnect.Config{URL: url, RequestTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPutConnectorConfigCreatesThenUpdates(t *testing.T) {
	s := connectfake.NewServer(t)
	c := newClient(t, s.URL, 0)
	ctx := context.Background()

	created, err := c.PutConnectorConfig(ctx, "cdcq-env1", debeziumConfig())
	if err != nil || !created {
		t.Fatalf("first PUT: created=%v err=%v, want created", created, err)
	}
	cfg := debeziumConfig()
	cfg["heartbeat.interval.ms"] = "10000"
	created, err = c.PutConnectorConfig(ctx, "cdcq-env1", cfg)
	if err != nil || created {
		t.Fatalf("second PUT: created=%v err=%v, want updated", created, err)
	}
	stored, ok := s.Connector("cdcq-env1")
	if !ok || stored.Config["heartbeat.interval.ms"] != "10000" {
		t.Fatalf("stored connector %+v", stored)
	}
	puts := s.RequestsTo(http.MethodPut, "/connectors/cdcq-env1/config")
	if len(puts) != 2 || puts[0].ContentType != "application/json" {
		t.Fatalf("PUTs received: %+v", puts)
	}

	got, err := c.ConnectorConfig(ctx, "cdcq-env1")
	if err != nil {
		t.Fatal(err)
	}
	if got["name"] != "cdcq-env1" || got["database.password"] != password {
		t.Fatalf("GET config = %v", got)
	}
	info, err := c.Connector(ctx, "cdcq-env1")
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "cdcq-env1" || info.Type != "source" || len(info.Tasks) != 1 || info.Tasks[0] != (kafkaconnect.TaskID{Connector: "cdcq-env1", Task: 0}) {
		t.Fatalf("GET connector = %+v", info)
	}
}

func TestDeleteConnectorIsIdempotent(t *testing.T) {
	s := connectfake.NewServer(t)
	c := newClient(t, s.URL, 0)
	ctx := context.Background()
	s.AddConnector("c1", debeziumConfig())

	existed, err := c.DeleteConnector(ctx, "c1")
	if err != nil || !existed {
		t.Fatalf("first delete: existed=%v err=%v", existed, err)
	}
	if _, ok := s.Connector("c1"); ok {
		t.Fatal("connector still stored after delete")
	}
	existed, err = c.DeleteConnector(ctx, "c1")
	if err != nil || existed {
		t.Fatalf("second delete: existed=%v err=%v, want nil error and existed=false", existed, err)
	}
	_, err = c.ConnectorStatus(ctx, "c1")
	if !kafkaconnect.IsNotFound(err) || kafkaconnect.IsRetriable(err) {
		t.Fatalf("status of deleted connector: %v (not found %v)", err, kafkaconnect.IsNotFound(err))
	}
	var ae *kafkaconnect.APIError
	if !errors.As(err, &ae) || ae.ErrorCode != 404 || ae.Message != "No status found for connector c1" {
		t.Fatalf("error = %#v", err)
	}
}

func TestStopThenResetOffsets(t *testing.T) {
	s := connectfake.NewServer(t)
	c := newClient(t, s.URL, 0)
	ctx := context.Background()
	s.AddConnector("c1", debeziumConfig())

	// Connect refuses to reset the offsets of a connector that runs.
	err := c.ResetConnectorOffsets(ctx, "c1")
	var ae *kafkaconnect.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || kafkaconnect.IsRetriable(err) {
		t.Fatalf("reset of a running connector: %v, want a 400", err)
	}
	if err := c.StopConnector(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	st, err := c.ConnectorStatus(ctx, "c1")
	if err != nil || st.Connector.State != kafkaconnect.StateStopped || len(st.Tasks) != 0 {
		t.Fatalf("status after stop = %+v, %v", st, err)
	}
	if err := c.ResetConnectorOffsets(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if offsets, err := c.ConnectorOffsets(ctx, "c1"); err != nil || len(offsets) != 0 {
		t.Fatalf("offsets after reset = %v, %v", offsets, err)
	}
	if got := s.RequestsTo(http.MethodPut, "/connectors/c1/stop"); len(got) != 1 {
		t.Fatalf("stop requests = %+v", got)
	}

	if err := c.StopConnector(ctx, "gone"); !kafkaconnect.IsNotFound(err) {
		t.Fatalf("stop of a missing connector: %v, want not found", err)
	}
	if err := c.ResetConnectorOffsets(ctx, "gone"); !kafkaconnect.IsNotFound(err) {
		t.Fatalf("reset of a missing connector: %v, want not found", err)
	}
}

func TestConnectorStatusCarriesTasksAndTraces(t *testing.T) {
	s := connectfake.NewServer(t)
	c := newClient(t, s.URL, 0)
	cfg := debeziumConfig()
	cfg["tasks.max"] = "2"
	s.AddConnector("c1", cfg)
	trace := "org.apache.kafka.connect.errors.ConnectException: An exception occurred\n\tat io.debezium.Foo(Foo.java:10)\n"
	if err := s.SetTaskState("c1", 1, kafkaconnect.StateFailed, trace); err != nil {
		t.Fatal(err)
	}
	if err := s.SetConnectorState("c1", kafkaconnect.StateRunning, ""); err != nil {
		t.Fatal(err)
	}

	st, err := c.ConnectorStatus(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	want := kafkaconnect.ConnectorStatus{
		Name:      "c1",
		Connector: kafkaconnect.WorkerState{State: "RUNNING", WorkerID: connectfake.WorkerID},
		Tasks: []kafkaconnect.TaskState{
			{ID: 0, State: "RUNNING", WorkerID: connectfake.WorkerID},
			{ID: 1, State: "FAILED", WorkerID: connectfake.WorkerID, Trace: trace},
		},
		Type: "source",
	}
	if st.Name != want.Name || st.Connector != want.Connector || st.Type != want.Type || len(st.Tasks) != 2 ||
		st.Tasks[0] != want.Tasks[0] || st.Tasks[1] != want.Tasks[1] {
		t.Fatalf("status\n got %+v\nwant %+v", st, want)
	}
}

func TestConnectorsStatusListsEveryConnector(t *testing.T) {
	s := connectfake.NewServer(t)
	c := newClient(t, s.URL, 0)
	s.AddConnector("c1", debeziumConfig())
	s.AddConnector("c2", debeziumConfig())
	if err := s.SetTaskState("c2", 0, kafkaconnect.StateFailed, "boom"); err != nil {
		t.Fatal(err)
	}
	all, err := c.ConnectorsStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all["c1"].Connector.State != "RUNNING" || len(all["c2"].Tasks) != 1 || all["c2"].Tasks[0].State != "FAILED" {
		t.Fatalf("statuses = %+v", all)
	}
}

func TestErrorsAreClassified(t *testing.T) {
	tests := []struct {
		name      string
		script    func(s *connectfake.Server)
		config    map[string]string
		status    int
		message   string
		retriable bool
	}{
		{
			name:      "rebalance_409_is_retriable",
			script:    func(s *connectfake.Server) { s.FailNext(1, connectfake.Rebalance) },
			config:    debeziumConfig(),
			status:    409,
			message:   connectfake.MessageRebalance,
			retriable: true,
		},
		{
			name: "conflicting_operation_409_is_retriable",
			script: func(s *connectfake.Server) {
				s.FailNext(1, connectfake.Failure{Status: 409, Message: connectfake.MessageConflictingOperation})
			},
			config:    debeziumConfig(),
			status:    409,
			message:   connectfake.MessageConflictingOperation,
			retriable: true,
		},
		{
			name:      "server_error_500_is_retriable",
			script:    func(s *connectfake.Server) { s.FailNext(1, connectfake.ServerError) },
			config:    debeziumConfig(),
			status:    500,
			message:   connectfake.MessageRequestTimedOut,
			retriable: true,
		},
		{
			name: "invalid_config_400_is_terminal",
			script: func(s *connectfake.Server) {
				s.RejectKey("plugin.name", "decoderbufs", "The 'plugin.name' value is invalid: decoderbufs is not installed")
			},
			config: func() map[string]string { c := debeziumConfig(); c["plugin.name"] = "decoderbufs"; return c }(),
			status: 400,
			message: "Connector configuration is invalid and contains the following 1 error(s):\n" +
				"The 'plugin.name' value is invalid: decoderbufs is not installed\n" +
				"You can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`",
		},
		{
			name:    "missing_class_400_masks_the_echoed_password",
			script:  func(*connectfake.Server) {},
			config:  func() map[string]string { c := debeziumConfig(); delete(c, "connector.class"); return c }(),
			status:  400,
			message: "Connector config {database.dbname=shop, database.hostname=db.example, database.password=***, database.user=postgres, name=c1, tasks.max=1, topic.prefix=env1} contains no connector type",
		},
		{
			name: "plugin_message_echoing_the_password_is_masked",
			script: func(s *connectfake.Server) {
				s.RejectKey("database.password", password, "Invalid value "+password+" for configuration database.password")
			},
			config: debeziumConfig(),
			status: 400,
			message: "Connector configuration is invalid and contains the following 1 error(s):\n" +
				"Invalid value *** for configuration database.password\n" +
				"You can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`",
		},
		{
			// Too short to mask everywhere without garbling the message,
			// but masked where Connect prints it as key=value.
			name:   "missing_class_400_masks_a_short_password",
			script: func(*connectfake.Server) {},
			config: func() map[string]string {
				c := debeziumConfig()
				delete(c, "connector.class")
				c["database.password"] = "db"
				return c
			}(),
			status:  400,
			message: "Connector config {database.dbname=shop, database.hostname=db.example, database.password=***, database.user=postgres, name=c1, tasks.max=1, topic.prefix=env1} contains no connector type",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := connectfake.NewServer(t)
			tt.script(s)
			c := newClient(t, s.URL, 0)
			_, err := c.PutConnectorConfig(context.Background(), "c1", tt.config)
			var ae *kafkaconnect.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v is not an *APIError", err)
			}
			if ae.StatusCode != tt.status || ae.ErrorCode != tt.status || ae.Message != tt.message {
				t.Fatalf("APIError{%d %d %q}, want status %d message %q", ae.StatusCode, ae.ErrorCode, ae.Message, tt.status, tt.message)
			}
			if got := kafkaconnect.IsRetriable(err); got != tt.retriable {
				t.Fatalf("IsRetriable = %v, want %v", got, tt.retriable)
			}
			if strings.Contains(err.Error(), password) {
				t.Fatalf("error leaks the password: %v", err)
			}
			if tt.retriable {
				// The scripted failure is used up; the same call now succeeds.
				if _, err := c.PutConnectorConfig(context.Background(), "c1", tt.config); err != nil {
					t.Fatalf("retry: %v", err)
				}
			}
		})
	}
}

func TestAPIErrorRetriable(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		message string
		want    bool
	}{
		{"conflict", 409, "", true},
		{"request_timeout", 408, "", true},
		{"too_many_requests", 429, "", true},
		{"bad_gateway", 502, "", true},
		{"service_unavailable", 503, "", true},
		{"bad_request", 400, "", false},
		{"unauthorized", 401, "", false},
		{"forbidden", 403, "", false},
		{"not_found", 404, "", false},
		{"unknown_connector_class_on_kafka_3", 500, "Failed to find any class that implements Connector and which name matches org.Nope", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &kafkaconnect.APIError{StatusCode: tt.status, Message: tt.message}
			if got := e.Retriable(); got != tt.want {
				t.Fatalf("Retriable() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTimeoutIsRetriable(t *testing.T) {
	s := connectfake.NewServer(t)
	s.SetLatency(2 * time.Second)
	c := newClient(t, s.URL, 100*time.Millisecond)
	start := time.Now()
	_, err := c.ConnectorStatus(context.Background(), "c1")
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Fatalf("request took %s despite a 100ms timeout", elapsed)
	}
	var te *kafkaconnect.TransportError
	if !errors.As(err, &te) || !kafkaconnect.IsRetriable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want a retriable TransportError wrapping DeadlineExceeded", err)
	}
}

func TestUnreachableWorkerIsRetriable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	c := newClient(t, url, time.Second)
	_, err := c.DeleteConnector(context.Background(), "c1")
	var te *kafkaconnect.TransportError
	if !errors.As(err, &te) || !kafkaconnect.IsRetriable(err) {
		t.Fatalf("error = %v, want a retriable TransportError", err)
	}
}

func TestNonJSONErrorBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>502 Bad Gateway</html>"))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, time.Second)
	_, err := c.ConnectorStatus(context.Background(), "c1")
	var ae *kafkaconnect.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 502 || ae.ErrorCode != 0 || ae.Message != "<html>502 Bad Gateway</html>" || !ae.Retriable() {
		t.Fatalf("error = %#v", err)
	}
}

func TestNamesAreEscaped(t *testing.T) {
	s := connectfake.NewServer(t)
	c := newClient(t, s.URL, 0)
	if _, err := c.PutConnectorConfig(context.Background(), "a b?c", debeziumConfig()); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Connector("a b?c"); !ok {
		t.Fatalf("stored names %v, want the name as given", s.Names())
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  kafkaconnect.Config
		ok   bool
	}{
		{"valid", kafkaconnect.Config{URL: "http://connect:8083"}, true},
		{"valid_with_path", kafkaconnect.Config{URL: "https://proxy/connect/"}, true},
		{"missing_url", kafkaconnect.Config{}, false},
		{"not_http", kafkaconnect.Config{URL: "connect:8083"}, false},
		{"no_host", kafkaconnect.Config{URL: "http://"}, false},
		{"query", kafkaconnect.Config{URL: "http://connect:8083/?x=1"}, false},
		{"negative_timeout", kafkaconnect.Config{URL: "http://connect:8083", RequestTimeout: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := kafkaconnect.New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New: err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestBaseURLWithPath(t *testing.T) {
	s := connectfake.NewServer(t)
	mux := http.NewServeMux()
	mux.Handle("/connect/", http.StripPrefix("/connect", s.Fake))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := newClient(t, srv.URL+"/connect/", time.Second)
	if _, err := c.PutConnectorConfig(context.Background(), "c1", debeziumConfig()); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Connector("c1"); !ok {
		t.Fatal("connector not created through a base URL with a path")
	}
}

// Every request carries the configured Authorization header, basic
// authentication as Connect's BasicAuthSecurityRestExtension reads it, and
// a rejected one's error does not repeat the credentials.
func TestAuthorizationIsSentOnEveryRequest(t *testing.T) {
	const user, pass = "cdcq", "s3cret:with-colon"
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			// Like a proxy that repeats what it was sent.
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = fmt.Fprintf(w, `{"error_code":401,"message":"Credentials authentication failed for %s"}`, r.Header.Get("Authorization"))
			return
		}
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/status"):
			_, _ = w.Write([]byte(`{"name":"c","connector":{"state":"RUNNING"},"tasks":[]}`))
		case r.Method == http.MethodGet:
			_, _ = w.Write([]byte(`{}`))
		case r.Method == http.MethodPut:
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"name":"c","config":{}}`))
		case r.Method == http.MethodPost:
			w.WriteHeader(http.StatusAccepted)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	c, err := kafkaconnect.New(kafkaconnect.Config{URL: srv.URL, Header: basicAuth(user, pass)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutConnectorConfig(ctx, "c", map[string]string{"k": "v"}); err != nil {
		t.Errorf("PUT: %v", err)
	}
	if _, err := c.ConnectorConfig(ctx, "c"); err != nil {
		t.Errorf("GET config: %v", err)
	}
	if _, err := c.ConnectorStatus(ctx, "c"); err != nil {
		t.Errorf("GET status: %v", err)
	}
	if err := c.RestartConnector(ctx, "c"); err != nil {
		t.Errorf("restart: %v", err)
	}
	if err := c.StopConnector(ctx, "c"); err != nil {
		t.Errorf("stop: %v", err)
	}
	if err := c.ResetConnectorOffsets(ctx, "c"); err != nil {
		t.Errorf("reset offsets: %v", err)
	}
	if _, err := c.DeleteConnector(ctx, "c"); err != nil {
		t.Errorf("DELETE: %v", err)
	}
	if len(seen) != 7 {
		t.Errorf("requests = %v, want 7", seen)
	}

	wrong, err := kafkaconnect.New(kafkaconnect.Config{URL: srv.URL, Header: basicAuth(user, "wrong-password")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.ConnectorStatus(ctx, "c")
	if err == nil || kafkaconnect.IsRetriable(err) {
		t.Fatalf("wrong credentials: err = %v, want a terminal error", err)
	}
	if strings.Contains(err.Error(), "wrong-password") || strings.Contains(err.Error(), "Basic ") {
		t.Errorf("error repeats the credentials: %v", err)
	}

}

// basicAuth is a Header with HTTP basic authentication, as cdcq's
// configuration builds it from CDCQ_CONNECT_USERNAME and _PASSWORD.
func basicAuth(user, pass string) http.Header {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, pass)
	return http.Header{"Authorization": r.Header["Authorization"]}
}
