package connectfake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cdcq/cdcq/internal/kafkaconnect/connectfake"
)

// These tests pin the fake to Connect's wire format with a plain HTTP
// client, independent of cdcq's client.

type answer struct {
	status      int
	contentType string
	location    string
	body        string
}

func call(t *testing.T, method, url, body string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Location"), string(data)}
}

// sameJSON compares two JSON texts as values.
func sameJSON(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation: %v", err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Fatalf("body\n got %s\nwant %s", gb, wb)
	}
}

const sourceConfig = `{"connector.class":"org.example.Source","tasks.max":"1","secret.key":"k"}`

func TestConnectorLifecycleOnTheWire(t *testing.T) {
	s := connectfake.NewServer(t)
	base := s.URL + "/connectors/orders"

	a := call(t, http.MethodPut, base+"/config", sourceConfig)
	if a.status != http.StatusCreated || a.contentType != "application/json" || a.location != "/connectors/orders" {
		t.Fatalf("create: status %d, content type %q, location %q", a.status, a.contentType, a.location)
	}
	sameJSON(t, a.body, `{"name":"orders","config":{"connector.class":"org.example.Source","tasks.max":"1","secret.key":"k","name":"orders"},"tasks":[],"type":"source"}`)

	a = call(t, http.MethodPut, base+"/config", sourceConfig)
	if a.status != http.StatusOK {
		t.Fatalf("update: status %d, want 200", a.status)
	}
	sameJSON(t, a.body, `{"name":"orders","config":{"connector.class":"org.example.Source","tasks.max":"1","secret.key":"k","name":"orders"},"tasks":[{"connector":"orders","task":0}],"type":"source"}`)

	a = call(t, http.MethodGet, base+"/config", "")
	sameJSON(t, a.body, `{"connector.class":"org.example.Source","tasks.max":"1","secret.key":"k","name":"orders"}`)

	a = call(t, http.MethodGet, s.URL+"/connectors", "")
	sameJSON(t, a.body, `["orders"]`)

	if err := s.SetTaskState("orders", 0, "FAILED", "java.lang.IllegalStateException: boom\n\tat X.y(X.java:1)\n"); err != nil {
		t.Fatal(err)
	}
	a = call(t, http.MethodGet, base+"/status", "")
	if a.status != http.StatusOK {
		t.Fatalf("status: %d", a.status)
	}
	sameJSON(t, a.body, `{"name":"orders","connector":{"state":"RUNNING","worker_id":"connectfake:8083"},"tasks":[{"id":0,"state":"FAILED","worker_id":"connectfake:8083","trace":"java.lang.IllegalStateException: boom\n\tat X.y(X.java:1)\n"}],"type":"source"}`)

	a = call(t, http.MethodPut, base+"/pause", "")
	if a.status != http.StatusAccepted {
		t.Fatalf("pause: %d", a.status)
	}
	if c, _ := s.Connector("orders"); c.State != "PAUSED" || c.Tasks[0].State != "PAUSED" {
		t.Fatalf("after pause: %+v", c)
	}

	a = call(t, http.MethodDelete, base, "")
	if a.status != http.StatusNoContent || a.body != "" {
		t.Fatalf("delete: status %d body %q, want 204 and no body", a.status, a.body)
	}
	a = call(t, http.MethodDelete, base, "")
	if a.status != http.StatusNotFound {
		t.Fatalf("second delete: %d", a.status)
	}
	sameJSON(t, a.body, `{"error_code":404,"message":"Connector orders not found"}`)
	a = call(t, http.MethodGet, base+"/status", "")
	sameJSON(t, a.body, `{"error_code":404,"message":"No status found for connector orders"}`)
	a = call(t, http.MethodGet, base, "")
	sameJSON(t, a.body, `{"error_code":404,"message":"Connector orders not found"}`)
}

func TestPutRejectsLikeConnect(t *testing.T) {
	tests := []struct {
		name   string
		url    string
		body   string
		status int
		want   string
	}{
		{
			name:   "missing_connector_class",
			url:    "/connectors/c1/config",
			body:   `{"tasks.max":"1","database.password":"pw"}`,
			status: 400,
			want:   "Connector config {database.password=pw, name=c1, tasks.max=1} contains no connector type",
		},
		{
			name:   "name_mismatch",
			url:    "/connectors/c1/config",
			body:   `{"connector.class":"org.example.Source","name":"other"}`,
			status: 400,
			want:   "Connector name configuration (other) doesn't match connector name in the URL (c1)",
		},
		{
			name:   "debezium_required_keys",
			url:    "/connectors/c1/config",
			body:   `{"connector.class":"io.debezium.connector.postgresql.PostgresConnector","database.hostname":"db","database.user":"u","database.dbname":"d"}`,
			status: 400,
			want: "Connector configuration is invalid and contains the following 1 error(s):\n" +
				"The 'topic.prefix' value is invalid: A value is required\n" +
				"You can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`",
		},
		{
			name:   "scripted_rejection",
			url:    "/connectors/c1/config",
			body:   `{"connector.class":"org.example.Source","plugin.name":"wal2json"}`,
			status: 400,
			want: "Connector configuration is invalid and contains the following 1 error(s):\n" +
				"Invalid value wal2json for configuration plugin.name\n" +
				"You can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`",
		},
		{
			name:   "unknown_path",
			url:    "/nope",
			status: 404,
			want:   "HTTP 404 Not Found",
		},
		{
			name:   "wrong_method",
			url:    "/connectors/c1/status",
			body:   `{}`,
			status: 405,
			want:   "HTTP 405 Method Not Allowed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := connectfake.NewServer(t)
			s.RejectKey("plugin.name", "wal2json", "Invalid value wal2json for configuration plugin.name")
			a := call(t, http.MethodPut, s.URL+tt.url, tt.body)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d (%s)", a.status, tt.status, a.body)
			}
			var e struct {
				ErrorCode int    `json:"error_code"`
				Message   string `json:"message"`
			}
			if err := json.Unmarshal([]byte(a.body), &e); err != nil {
				t.Fatal(err)
			}
			if e.ErrorCode != tt.status || e.Message != tt.want {
				t.Fatalf("error body %+v, want code %d message %q", e, tt.status, tt.want)
			}
			if len(s.Names()) != 0 {
				t.Fatalf("a rejected request stored a connector: %v", s.Names())
			}
		})
	}
}

func TestFailNextCountsAndFiltersByMethod(t *testing.T) {
	s := connectfake.NewServer(t)
	s.FailNext(2, connectfake.Failure{Status: 409, Message: connectfake.MessageRebalance, Method: http.MethodPut})
	url := s.URL + "/connectors/c1/config"

	if a := call(t, http.MethodGet, url, ""); a.status != 404 {
		t.Fatalf("a GET used a PUT-only failure: %d", a.status)
	}
	for i := range 2 {
		a := call(t, http.MethodPut, url, sourceConfig)
		if a.status != 409 {
			t.Fatalf("PUT %d: status %d, want 409", i, a.status)
		}
		sameJSON(t, a.body, `{"error_code":409,"message":"`+connectfake.MessageRebalance+`"}`)
	}
	if a := call(t, http.MethodPut, url, sourceConfig); a.status != 201 {
		t.Fatalf("third PUT: %d, want 201", a.status)
	}
	if got := len(s.RequestsTo(http.MethodPut, "/connectors/c1/config")); got != 3 {
		t.Fatalf("recorded %d PUTs, want 3", got)
	}
	if ct := s.Requests()[1].ContentType; ct != "application/json" {
		t.Fatalf("recorded content type %q", ct)
	}
}

func TestStatusLingersAfterDelete(t *testing.T) {
	s := connectfake.NewServer(t)
	s.AddConnector("c1", map[string]string{"connector.class": "org.example.Source"})
	s.LingerAfterDelete("c1", 2)
	if a := call(t, http.MethodDelete, s.URL+"/connectors/c1", ""); a.status != 204 {
		t.Fatalf("delete: %d", a.status)
	}
	for i, want := range []int{200, 200, 404} {
		if a := call(t, http.MethodGet, s.URL+"/connectors/c1/status", ""); a.status != want {
			t.Fatalf("status poll %d: %d, want %d", i, a.status, want)
		}
	}
}
