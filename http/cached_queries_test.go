package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/projections"
)

func TestCreateCachedQuery(t *testing.T) {
	wantID := names.QueryID(testEnv, testSchema, `SELECT country, count(*) FROM "User" GROUP BY country`)
	for _, enc := range encodings {
		t.Run(enc.name, func(t *testing.T) {
			h := newHarness(t)
			res := h.do(t, enc.build("/createCachedQuery", cachedQueryFieldsFor(testEnv, testSQL)))

			if res.status != http.StatusCreated {
				t.Fatalf("status = %d, want 201; body %s", res.status, res.body)
			}
			if got := res.header.Get("Location"); got != "/cachedQueries/"+wantID {
				t.Errorf("Location = %q, want /cachedQueries/%s", got, wantID)
			}
			got := decodeAs[CachedQueryAccepted](t, res.body)
			want := CachedQueryAccepted{ID: wantID, Name: names.PipelineName(testEnv, wantID), Status: jobs.StatusPending, EnvironmentID: testEnv, CommandID: "cmd-1"}
			if got != want {
				t.Errorf("body = %+v, want %+v", got, want)
			}

			cmds := h.pub.published()
			if len(cmds) != 1 {
				t.Fatalf("published %d commands, want 1", len(cmds))
			}
			cmd, ok := cmds[0].(commands.CreateCachedQuery)
			if !ok {
				t.Fatalf("published %T, want CreateCachedQuery", cmds[0])
			}
			if cmd.QueryID != wantID || cmd.Schema != testSchema || cmd.SQLQuery != testSQL || cmd.EnvironmentID != testEnv {
				t.Errorf("command = %+v", cmd)
			}
			if plain, err := cmd.Connection.Open(h.sealer, testEnv); err != nil || plain != testConnStringNormalized {
				t.Errorf("sealed opens to %q, %v", plain, err)
			}
			// What the API publishes must pass the consumers' checks.
			body, err := commands.Encode(cmd)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := commands.Decode(cmd.CommandName(), body); err != nil {
				t.Errorf("published command does not decode: %v", err)
			}
		})
	}
}

func TestCreateCachedQuery_repeated_gives_same_id(t *testing.T) {
	h := newHarness(t)
	first := h.do(t, formRequest("/createCachedQuery", cachedQueryFieldsFor(testEnv, testSQL)))
	second := h.do(t, jsonRequest("/createCachedQuery", cachedQueryFieldsFor(testEnv, "  SELECT country,   count(*) FROM \"User\"\tGROUP BY country\n"), "application/json"))
	other := h.do(t, formRequest("/createCachedQuery", cachedQueryFieldsFor(testEnv, "SELECT count(*) FROM \"User\"")))
	for _, r := range []response{first, second, other} {
		if r.status != http.StatusCreated {
			t.Fatalf("status = %d; body %s", r.status, r.body)
		}
	}
	a := decodeAs[CachedQueryAccepted](t, first.body)
	b := decodeAs[CachedQueryAccepted](t, second.body)
	c := decodeAs[CachedQueryAccepted](t, other.body)
	if a.ID != b.ID || first.header.Get("Location") != second.header.Get("Location") {
		t.Errorf("repeated create gave ids %q and %q", a.ID, b.ID)
	}
	if a.CommandID == b.CommandID {
		t.Errorf("repeated create reused command id %q", a.CommandID)
	}
	if c.ID == a.ID {
		t.Errorf("a different query got the same id %q", c.ID)
	}
}

func TestCreateCachedQuery_uses_configured_normaliser(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CheckQuery = func(string, string) (string, error) { return "same", nil } })
	res := h.do(t, formRequest("/createCachedQuery", cachedQueryFieldsFor(testEnv, testSQL)))
	if got := decodeAs[CachedQueryAccepted](t, res.body).ID; got != names.QueryID(testEnv, testSchema, "same") {
		t.Errorf("id = %q, not derived from the configured normaliser", got)
	}
}

func TestGetCachedQuery(t *testing.T) {
	h := newHarness(t)
	view := projections.QueryView{ID: "q_1", Name: "cdcq-env-1-q_1", Status: jobs.StatusRunning, EnvironmentID: testEnv, SQLQuery: testSQL}
	h.status.queries["q_1"] = view

	res := h.do(t, rawRequest(http.MethodGet, "/cachedQueries/q_1", "", ""))
	if res.status != http.StatusOK {
		t.Fatalf("status = %d; body %s", res.status, res.body)
	}
	if got := decodeAs[projections.QueryView](t, res.body); got.ID != view.ID || got.Status != view.Status || got.SQLQuery != view.SQLQuery {
		t.Errorf("view = %+v, want %+v", got, view)
	}

	res = h.do(t, rawRequest(http.MethodGet, "/cachedQueries/q_missing", "", ""))
	wantError(t, res, http.StatusNotFound, CodeNotFound, "id")
}

func TestCreateCachedQuery_query_problems_answer_422_with_position(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantCode  string
		wantField string
		wantLine  int
	}{
		{name: "schema_error", err: &QueryError{Field: "schema", Line: 3, Column: 7, Message: `unknown type "Strng"`}, wantCode: CodeInvalidSchema, wantField: "schema", wantLine: 3},
		{name: "sql_error", err: &QueryError{Field: "sqlQuery", Line: 1, Column: 27, Message: `unknown column "totl"`}, wantCode: CodeInvalidSQLQuery, wantField: "sqlQuery", wantLine: 1},
		{name: "unpositioned_error", err: errors.New("cannot be maintained"), wantCode: CodeInvalidSQLQuery, wantField: "sqlQuery"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.CheckQuery = func(string, string) (string, error) { return "", tt.err } })
			res := h.do(t, formRequest("/createCachedQuery", cachedQueryFieldsFor(testEnv, testSQL)))
			if res.status != http.StatusUnprocessableEntity {
				t.Fatalf("status = %d; body %s", res.status, res.body)
			}
			got := decodeAs[ErrorResponse](t, res.body).Error
			if got.Code != tt.wantCode || got.Field != tt.wantField || got.Line != tt.wantLine {
				t.Errorf("error = %+v", got)
			}
			if tt.wantLine > 0 && !strings.Contains(got.Message, fmt.Sprintf("line %d", tt.wantLine)) {
				t.Errorf("message %q does not say where", got.Message)
			}
			if n := len(h.pub.published()); n != 0 {
				t.Errorf("%d commands published", n)
			}
		})
	}
}
