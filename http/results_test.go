package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/projections"
)

type fakeResults map[string]QueryResult

func (f fakeResults) QueryResult(_ context.Context, id string) (QueryResult, error) {
	r, ok := f[id]
	if !ok {
		return r, fmt.Errorf("query %s: %w", id, ErrNoResult)
	}
	return r, nil
}

func TestGetCachedQueryResult(t *testing.T) {
	src := testNow.Add(-1500 * time.Millisecond)
	results := fakeResults{
		"q_live": {State: "LIVE", CaughtUp: true, Rows: []json.RawMessage{json.RawMessage(`{"query_id":"q_live","country":"FR","count":2}`)},
			Position: ResultPosition{LSN: 99, SourceTime: &src}, EventsApplied: 10, UpdatedAt: testNow},
		"q_catching": {State: "CATCHING_UP", Rows: nil, Position: ResultPosition{LSN: 5}},
	}
	h := newHarness(t, func(c *Config) { c.Results = results })
	for _, id := range []string{"q_live", "q_catching", "q_new"} {
		h.status.queries[id] = projections.QueryView{ID: id, Name: "cdcq-env-1-" + id, Status: jobs.StatusRunning, EnvironmentID: testEnv, Engine: "embedded"}
	}
	h.status.queries["q_flink"] = projections.QueryView{ID: "q_flink", Status: jobs.StatusRunning, EnvironmentID: testEnv, Engine: "flink"}

	tests := []struct {
		name       string
		id         string
		wantStatus int
		check      func(t *testing.T, r CachedQueryResult, body string)
	}{
		{name: "live_rows_with_position_and_lag", id: "q_live", wantStatus: 200, check: func(t *testing.T, r CachedQueryResult, body string) {
			if !r.CaughtUp || len(r.Rows) != 1 || r.Position.LSN != 99 || r.Position.LagSeconds == nil || *r.Position.LagSeconds != 1.5 {
				t.Errorf("result = %s", body)
			}
		}},
		{name: "catching_up_says_so_and_serves_no_rows", id: "q_catching", wantStatus: 200, check: func(t *testing.T, r CachedQueryResult, body string) {
			if r.CaughtUp || r.State != "CATCHING_UP" || !strings.Contains(body, `"rows":null`) {
				t.Errorf("result = %s", body)
			}
		}},
		{name: "not_started_yet", id: "q_new", wantStatus: 200, check: func(t *testing.T, r CachedQueryResult, body string) {
			if r.CaughtUp || r.State != "STARTING" || !strings.Contains(body, `"rows":null`) {
				t.Errorf("result = %s", body)
			}
		}},
		// Flink's results are materialised from its result topic; until the
		// first is read, the query is starting, as on the embedded engine.
		{name: "flink_query_not_read_yet", id: "q_flink", wantStatus: 200, check: func(t *testing.T, r CachedQueryResult, body string) {
			if r.State != "STARTING" || r.CaughtUp || len(r.Rows) != 0 {
				t.Errorf("body = %s", body)
			}
		}},
		{name: "unknown_query", id: "q_none", wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do(t, rawRequest(http.MethodGet, "/cachedQueries/"+tt.id+"/result", "", ""))
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d; body %s", res.status, res.body)
			}
			if tt.check != nil {
				tt.check(t, decodeAs[CachedQueryResult](t, res.body), string(res.body))
			}
		})
	}
}

func TestDeleteCachedQuery(t *testing.T) {
	h := newHarness(t)
	h.status.queries["q_1"] = projections.QueryView{ID: "q_1", Name: "cdcq-env-1-q_1", Status: jobs.StatusRunning, EnvironmentID: testEnv, Engine: "embedded"}
	res := h.do(t, rawRequest(http.MethodDelete, "/cachedQueries/q_1", "", ""))
	if res.status != http.StatusAccepted {
		t.Fatalf("status = %d; body %s", res.status, res.body)
	}
	if got := decodeAs[CachedQueryAccepted](t, res.body); got.ID != "q_1" || got.Status != jobs.StatusDeleting || got.CommandID == "" {
		t.Errorf("answer = %+v", got)
	}
	pub := h.pub.published()
	if len(pub) != 1 {
		t.Fatalf("published %d commands", len(pub))
	}
	if d, ok := pub[0].(commands.DeleteCachedQuery); !ok || d.QueryID != "q_1" || d.EnvironmentID != testEnv {
		t.Errorf("published %+v", pub[0])
	}
	if res := h.do(t, rawRequest(http.MethodDelete, "/cachedQueries/q_2", "", "")); res.status != http.StatusNotFound {
		t.Errorf("unknown query: status %d", res.status)
	}
	if n := len(h.pub.published()); n != 1 {
		t.Errorf("%d commands published after a 404", n)
	}
}

func TestGetCachedQueryShowsProgress(t *testing.T) {
	src := testNow.Add(-2 * time.Second)
	h := newHarness(t, func(c *Config) {
		c.Results = fakeResults{"q_1": {State: "LIVE", CaughtUp: true, Rows: []json.RawMessage{json.RawMessage(`{}`)},
			Position: ResultPosition{LSN: 7, SourceTime: &src}, UpdatedAt: src.Add(250 * time.Millisecond)}}
	})
	h.status.queries["q_1"] = projections.QueryView{ID: "q_1", Status: jobs.StatusRunning, EnvironmentID: testEnv, Engine: "embedded", SQLQuery: testSQL}
	res := h.do(t, rawRequest(http.MethodGet, "/cachedQueries/q_1", "", ""))
	if res.status != http.StatusOK {
		t.Fatalf("status = %d; body %s", res.status, res.body)
	}
	got := decodeAs[CachedQueryDetail](t, res.body)
	if got.SQLQuery != testSQL || got.Progress == nil || got.Progress.State != "LIVE" || got.Progress.Rows != nil ||
		got.Progress.Position.LagSeconds == nil || *got.Progress.Position.LagSeconds != 0.25 {
		t.Errorf("detail = %s", res.body)
	}
}
