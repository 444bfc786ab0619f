package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/projections"
)

// fakeResults serves fixed results for the queries of a fakeStatus.
type fakeResults struct {
	status  *fakeStatus
	results map[string]fakeView
	// waited receives the ETag a Wait was called with.
	waited chan string
}

type fakeView struct {
	view  projections.QueryView
	meta  QueryResult
	rows  []string // served rows, in key order
	etag  string
	after *fakeView // what Wait returns
}

func (f *fakeResults) Result(_ context.Context, id string) (ResultView, error) {
	v, ok := f.results[id]
	q, known := f.status.queries[id]
	if !known {
		return nil, fmt.Errorf("query %s: %w", id, projections.ErrNotFound)
	}
	if !ok {
		v = fakeView{meta: QueryResult{State: StateStarting}, etag: `"0"`}
	}
	v.view = q
	return v, nil
}

func (f *fakeResults) Wait(ctx context.Context, id, etag string) (ResultView, error) {
	if f.waited != nil {
		f.waited <- etag
	}
	v, err := f.Result(ctx, id)
	if err != nil {
		return nil, err
	}
	if next := v.(fakeView).after; next != nil {
		next.view = v.Query()
		return *next, nil
	}
	<-ctx.Done()
	return v, nil
}

func (f *fakeResults) Subscribe(context.Context, string, string) (ResultSubscription, error) {
	return nil, errors.New("not faked")
}

func (v fakeView) Query() projections.QueryView { return v.view }
func (v fakeView) Meta() QueryResult            { return v.meta }
func (v fakeView) ETag() string                 { return v.etag }
func (v fakeView) Columns() []ResultColumn {
	return []ResultColumn{{Name: "country", Type: "text"}, {Name: "count", Type: "bigint"}}
}

func (v fakeView) Rows() []byte {
	if v.rows == nil {
		return []byte("null")
	}
	return []byte("[" + strings.Join(v.rows, ",") + "]")
}

func (v fakeView) Page(after string, limit int) ([]byte, string, error) {
	start := 0
	if after != "" {
		n, err := strconv.Atoi(after)
		if err != nil {
			return nil, "", fmt.Errorf("after %q is not a token", after)
		}
		start = n
	}
	end := min(start+limit, len(v.rows))
	next := ""
	if end < len(v.rows) {
		next = strconv.Itoa(end)
	}
	return []byte("[" + strings.Join(v.rows[start:end], ",") + "]"), next, nil
}

func resultsHarness(t *testing.T, results map[string]fakeView) (*harness, *fakeResults) {
	t.Helper()
	f := &fakeResults{results: results}
	h := newHarness(t, func(c *Config) { c.Results = f })
	f.status = h.status
	return h, f
}

func TestGetCachedQueryResult(t *testing.T) {
	src := testNow.Add(-1500 * time.Millisecond)
	lag := 1.5
	h, _ := resultsHarness(t, map[string]fakeView{
		"q_live": {meta: QueryResult{State: "LIVE", CaughtUp: true, Position: ResultPosition{Version: 12, LSN: 99, SourceTime: &src, LagSeconds: &lag}, EventsApplied: 10, UpdatedAt: testNow},
			rows: []string{`{"country":"FR","count":2}`}, etag: `"12"`},
		"q_catching": {meta: QueryResult{State: "CATCHING_UP", Position: ResultPosition{LSN: 5}}, etag: `"3"`},
	})
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
		{name: "live_rows_with_columns_position_and_lag", id: "q_live", wantStatus: 200, check: func(t *testing.T, r CachedQueryResult, body string) {
			if !r.CaughtUp || len(r.Rows) != 1 || r.Position.LSN != 99 || r.Position.Version != 12 || r.Position.LagSeconds == nil || *r.Position.LagSeconds != 1.5 {
				t.Errorf("result = %s", body)
			}
			if !strings.Contains(body, `"columns":[{"name":"country","type":"text"},{"name":"count","type":"bigint"}]`) ||
				!strings.HasSuffix(body, `"rows":[{"country":"FR","count":2}]}`) {
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

func TestResultETagPagesAndLongPoll(t *testing.T) {
	rows := []string{`{"country":"DE","count":1}`, `{"country":"FR","count":2}`, `{"country":"US","count":3}`}
	newer := fakeView{meta: QueryResult{State: "LIVE", CaughtUp: true, Position: ResultPosition{Version: 8}}, rows: rows[:1], etag: `"8"`}
	h, f := resultsHarness(t, map[string]fakeView{
		"q_1": {meta: QueryResult{State: "LIVE", CaughtUp: true, Position: ResultPosition{Version: 7}}, rows: rows, etag: `"7"`, after: &newer},
	})
	h.status.queries["q_1"] = projections.QueryView{ID: "q_1", Status: jobs.StatusRunning, EnvironmentID: testEnv}
	get := func(target string, header ...string) response {
		req := rawRequest(http.MethodGet, target, "", "")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		return h.do(t, req)
	}

	res := get("/cachedQueries/q_1/result")
	if res.status != 200 || res.header.Get("ETag") != `"7"` {
		t.Fatalf("status %d, ETag %q", res.status, res.header.Get("ETag"))
	}
	// The same version: 304, no body.
	if res := get("/cachedQueries/q_1/result", "If-None-Match", `"6", W/"7"`); res.status != http.StatusNotModified || len(res.body) != 0 {
		t.Errorf("If-None-Match of the current ETag: %d %s", res.status, res.body)
	}
	if res := get("/cachedQueries/q_1/result", "If-None-Match", `"6"`); res.status != 200 {
		t.Errorf("If-None-Match of an old ETag: %d", res.status)
	}

	// Pages of two.
	first := decodeAs[CachedQueryResult](t, get("/cachedQueries/q_1/result?limit=2").body)
	if len(first.Rows) != 2 || first.Next == "" {
		t.Fatalf("first page: %+v", first)
	}
	second := decodeAs[CachedQueryResult](t, get("/cachedQueries/q_1/result?limit=2&after="+first.Next).body)
	if len(second.Rows) != 1 || second.Next != "" || string(second.Rows[0]) != rows[2] {
		t.Errorf("second page: %+v", second)
	}

	// A long poll with the current ETag waits for the next version.
	f.waited = make(chan string, 1)
	res = get("/cachedQueries/q_1/result?wait=5s", "If-None-Match", `"7"`)
	if res.status != 200 || res.header.Get("ETag") != `"8"` || <-f.waited != `"7"` {
		t.Errorf("long poll: %d, ETag %q", res.status, res.header.Get("ETag"))
	}
	// Without If-None-Match there is nothing to wait for.
	if res := get("/cachedQueries/q_1/result?wait=5s"); res.status != 200 || res.header.Get("ETag") != `"7"` {
		t.Errorf("wait without If-None-Match: %d, ETag %q", res.status, res.header.Get("ETag"))
	}

	for _, bad := range []struct{ query, field string }{
		{"limit=0", "limit"}, {"limit=x", "limit"}, {"limit=1000001", "limit"},
		{"wait=forever", "wait"}, {"wait=2m", "wait"}, {"wait=-1s", "wait"},
		{"limit=2&after=zz", "after"},
	} {
		res := get("/cachedQueries/q_1/result?" + bad.query)
		e := wantError(t, res, http.StatusBadRequest, CodeInvalidParameter, bad.field)
		if !strings.Contains(e.Message, bad.field) {
			t.Errorf("%s: message %q does not name %s", bad.query, e.Message, bad.field)
		}
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
	lag := 0.25
	h, _ := resultsHarness(t, map[string]fakeView{"q_1": {meta: QueryResult{State: "LIVE", CaughtUp: true,
		Position: ResultPosition{LSN: 7, SourceTime: &src, LagSeconds: &lag}, UpdatedAt: src.Add(250 * time.Millisecond)}, rows: []string{`{}`}}})
	h.status.queries["q_1"] = projections.QueryView{ID: "q_1", Status: jobs.StatusRunning, EnvironmentID: testEnv, Engine: "embedded", SQLQuery: testSQL}
	res := h.do(t, rawRequest(http.MethodGet, "/cachedQueries/q_1", "", ""))
	if res.status != http.StatusOK {
		t.Fatalf("status = %d; body %s", res.status, res.body)
	}
	got := decodeAs[CachedQueryDetail](t, res.body)
	if got.SQLQuery != testSQL || got.Progress == nil || got.Progress.State != "LIVE" || strings.Contains(string(res.body), `"rows"`) ||
		got.Progress.Position.LagSeconds == nil || *got.Progress.Position.LagSeconds != 0.25 {
		t.Errorf("detail = %s", res.body)
	}
}
