package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/connstr"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/secret"
	"github.com/cdcq/cdcq/projections"
)

func TestCreateDatabaseConnection(t *testing.T) {
	for _, enc := range encodings {
		t.Run(enc.name, func(t *testing.T) {
			h := newHarness(t)
			res := h.do(t, enc.build("/createDatabaseConnection", connectionFieldsFor(testEnv)))

			if res.status != http.StatusCreated {
				t.Fatalf("status = %d, want 201; body %s", res.status, res.body)
			}
			if got := res.header.Get("Location"); got != "/connections/"+testEnv {
				t.Errorf("Location = %q", got)
			}
			got := decodeAs[map[string]any](t, res.body)
			want := map[string]any{
				"id": testEnv, "name": "cdcq-" + testEnv, "status": "PENDING",
				"environmentId": testEnv, "commandId": "cmd-1", "connection": testConnRedacted,
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("body[%q] = %v, want %v", k, got[k], v)
				}
			}

			cmds := h.pub.published()
			if len(cmds) != 1 {
				t.Fatalf("published %d commands, want 1", len(cmds))
			}
			cmd, ok := cmds[0].(commands.CreateDatabaseConnection)
			if !ok {
				t.Fatalf("published %T, want CreateDatabaseConnection", cmds[0])
			}
			if cmd.CommandID != "cmd-1" || cmd.EnvironmentID != testEnv || !cmd.RequestedAt.Equal(testNow) {
				t.Errorf("meta = %+v", cmd.Meta)
			}
			if cmd.Connection.Redacted != testConnRedacted {
				t.Errorf("redacted = %q, want %q", cmd.Connection.Redacted, testConnRedacted)
			}
			plain, err := cmd.Connection.Open(h.sealer, testEnv)
			if err != nil || plain != testConnStringNormalized {
				t.Errorf("sealed opens to %q, %v; want %q", plain, err, testConnStringNormalized)
			}
		})
	}
}

func TestDeleteDatabaseConnection(t *testing.T) {
	for _, enc := range encodings {
		t.Run(enc.name, func(t *testing.T) {
			h := newHarness(t)
			res := h.do(t, enc.build("/deleteDatabaseConnection", connectionFieldsFor(testEnv)))

			if res.status != http.StatusAccepted {
				t.Fatalf("status = %d, want 202; body %s", res.status, res.body)
			}
			got := decodeAs[ConnectionAccepted](t, res.body)
			want := ConnectionAccepted{ID: testEnv, Name: "cdcq-" + testEnv, Status: jobs.StatusDeleting, EnvironmentID: testEnv, CommandID: "cmd-1"}
			if got != want {
				t.Errorf("body = %+v, want %+v", got, want)
			}
			cmds := h.pub.published()
			if len(cmds) != 1 {
				t.Fatalf("published %d commands, want 1", len(cmds))
			}
			cmd, ok := cmds[0].(commands.DeleteDatabaseConnection)
			if !ok {
				t.Fatalf("published %T, want DeleteDatabaseConnection", cmds[0])
			}
			if cmd.EnvironmentID != testEnv || cmd.Connection.Redacted != testConnRedacted {
				t.Errorf("command = %+v", cmd)
			}
		})
	}
}

func storedView(connection string) projections.ConnectionView {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return projections.ConnectionView{
		ID: testEnv, Name: "cdcq-" + testEnv, Status: jobs.StatusRunning, EnvironmentID: testEnv,
		Engine: "embedded", Connection: connection, SlotName: "cdcq_env_1_abcd", PublicationName: "cdcq_env_1_abcd",
		Slot:          &jobs.SlotState{Name: "cdcq_env_1_abcd", Exists: true, Active: true},
		CachedQueries: []projections.QueryView{},
		CreatedAt:     at, UpdatedAt: at,
	}
}

func TestCheckJobStatus(t *testing.T) {
	tests := []struct {
		name       string
		stored     string // redacted connection of the stored view; "" = no view
		connString string
		statusErr  error
		wantStatus int
		wantCode   string
		wantField  string
	}{
		{name: "same_database", stored: testConnRedacted, connString: testConnString, wantStatus: http.StatusOK},
		{name: "other_password_and_params_still_match", stored: testConnRedacted,
			connString: "postgres://alice:other@DB.example.com:5432/shop?sslmode=require", wantStatus: http.StatusOK},
		{name: "unknown_environment", connString: testConnString, wantStatus: http.StatusNotFound, wantCode: CodeNotFound, wantField: "environmentId"},
		{name: "other_host", stored: testConnRedacted, connString: "postgres://alice:" + testPassword + "@db2.example.com/shop",
			wantStatus: http.StatusConflict, wantCode: CodeConnectionMismatch, wantField: "connectionString"},
		{name: "other_port", stored: testConnRedacted, connString: "postgres://alice:" + testPassword + "@db.example.com:6543/shop",
			wantStatus: http.StatusConflict, wantCode: CodeConnectionMismatch, wantField: "connectionString"},
		{name: "other_database", stored: testConnRedacted, connString: "postgres://alice:" + testPassword + "@db.example.com/other",
			wantStatus: http.StatusConflict, wantCode: CodeConnectionMismatch, wantField: "connectionString"},
		{name: "other_user", stored: testConnRedacted, connString: "postgres://bob:" + testPassword + "@db.example.com/shop",
			wantStatus: http.StatusConflict, wantCode: CodeConnectionMismatch, wantField: "connectionString"},
		{name: "status_store_down", connString: testConnString, statusErr: errors.New("postgres: connection refused"),
			wantStatus: http.StatusServiceUnavailable, wantCode: CodeStatusUnavailable},
	}
	for _, tt := range tests {
		for _, enc := range encodings[:2] {
			t.Run(tt.name+"_"+enc.name, func(t *testing.T) {
				h := newHarness(t)
				if tt.stored != "" {
					h.status.conns[testEnv] = storedView(tt.stored)
				}
				h.status.err = tt.statusErr
				res := h.do(t, enc.build("/checkJobStatus", map[string]string{"connectionString": tt.connString, "environmentId": testEnv}))

				if tt.wantCode != "" {
					e := wantError(t, res, tt.wantStatus, tt.wantCode, tt.wantField)
					if tt.wantStatus == http.StatusConflict && strings.Contains(e.Message, "example.com") {
						t.Errorf("409 message %q repeats connection details", e.Message)
					}
				} else {
					if res.status != tt.wantStatus {
						t.Fatalf("status = %d, want %d; body %s", res.status, tt.wantStatus, res.body)
					}
					got := decodeAs[projections.ConnectionView](t, res.body)
					want := storedView(tt.stored)
					if got.ID != want.ID || got.Status != want.Status || got.Connection != want.Connection ||
						got.Slot == nil || *got.Slot != *want.Slot || !got.CreatedAt.Equal(want.CreatedAt) {
						t.Errorf("view = %+v, want %+v", got, want)
					}
				}
				if n := len(h.pub.published()); n != 0 {
					t.Errorf("checkJobStatus published %d commands", n)
				}
			})
		}
	}
}

func TestGetConnection(t *testing.T) {
	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantCode   string
		wantField  string
	}{
		{name: "known", path: "/connections/" + testEnv, wantStatus: http.StatusOK},
		{name: "unknown", path: "/connections/env-2", wantStatus: http.StatusNotFound, wantCode: CodeNotFound, wantField: "environmentId"},
		{name: "invalid_id", path: "/connections/-bad", wantStatus: http.StatusUnprocessableEntity, wantCode: CodeInvalidEnvironmentID, wantField: "environmentId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.status.conns[testEnv] = storedView(testConnRedacted)
			res := h.do(t, rawRequest(http.MethodGet, tt.path, "", ""))
			if tt.wantCode != "" {
				wantError(t, res, tt.wantStatus, tt.wantCode, tt.wantField)
				return
			}
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d; body %s", res.status, res.body)
			}
			if got := decodeAs[projections.ConnectionView](t, res.body); got.ID != testEnv || got.Connection != testConnRedacted {
				t.Errorf("view = %+v", got)
			}
		})
	}
}

func TestPublishFailure(t *testing.T) {
	paths := map[string]map[string]string{
		"/createDatabaseConnection": connectionFieldsFor(testEnv),
		"/deleteDatabaseConnection": connectionFieldsFor(testEnv),
		"/createCachedQuery":        cachedQueryFieldsFor(testEnv, testSQL),
	}
	for path, fields := range paths {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			h := newHarness(t)
			h.pub.err = errors.New("kafka: broker not available")
			res := h.do(t, formRequest(path, fields))
			wantError(t, res, http.StatusServiceUnavailable, CodePublishFailed, "")
			if strings.Contains(string(res.body), "broker") {
				t.Errorf("503 body leaks the cause: %s", res.body)
			}
			if !strings.Contains(h.logs.String(), "broker not available") {
				t.Errorf("log does not carry the cause: %s", h.logs)
			}
		})
	}
}

// An environment is bound to the database it was created with: create,
// delete and createCachedQuery naming another database answer 409 and
// publish nothing; the same database with a new password is accepted (the
// worker rotates the stored one); a deleted environment may be re-pointed.
func TestCommandsForAnotherDatabaseAreRefused(t *testing.T) {
	other := "postgres://alice:" + testPassword + "@db2.example.com/shop"
	rotated := "postgres://alice:new-password@DB.example.com:5432/shop?sslmode=require"
	requests := []struct {
		path    string
		fields  func(conn string) map[string]string
		advice  string
		success int
	}{
		{"/createDatabaseConnection", func(conn string) map[string]string {
			return map[string]string{"connectionString": conn, "environmentId": testEnv}
		}, "delete this environment with deleteDatabaseConnection first", http.StatusCreated},
		{"/deleteDatabaseConnection", func(conn string) map[string]string {
			return map[string]string{"connectionString": conn, "environmentId": testEnv}
		}, "nothing was deleted", http.StatusAccepted},
		{"/createCachedQuery", func(conn string) map[string]string {
			f := cachedQueryFieldsFor(testEnv, testSQL)
			f["connectionString"] = conn
			return f
		}, "delete this environment with deleteDatabaseConnection first", http.StatusCreated},
	}
	for _, r := range requests {
		for _, enc := range encodings[:2] {
			t.Run(strings.TrimPrefix(r.path, "/")+"_"+enc.name, func(t *testing.T) {
				h := newHarness(t)
				h.status.conns[testEnv] = storedView(testConnRedacted)
				res := h.do(t, enc.build(r.path, r.fields(other)))
				e := wantError(t, res, http.StatusConflict, CodeConnectionMismatch, "connectionString")
				if !strings.Contains(e.Message, "its host differs") || !strings.Contains(e.Message, r.advice) {
					t.Errorf("409 message %q does not say what differs and what to do", e.Message)
				}
				if strings.Contains(e.Message, testPassword) || strings.Contains(e.Message, "example.com") {
					t.Errorf("409 message %q repeats connection details", e.Message)
				}
				if n := len(h.pub.published()); n != 0 {
					t.Fatalf("a refused %s published %d commands", r.path, n)
				}

				if res := h.do(t, enc.build(r.path, r.fields(rotated))); res.status != r.success {
					t.Fatalf("same database, new password: status %d, body %s", res.status, res.body)
				}
				if n := len(h.pub.published()); n != 1 {
					t.Fatalf("published %d commands, want 1", n)
				}

				deleted := storedView(testConnRedacted)
				deleted.Status = jobs.StatusDeleted
				h.status.conns[testEnv] = deleted
				if res := h.do(t, enc.build(r.path, r.fields(other))); res.status != r.success {
					t.Fatalf("after a delete, another database: status %d, body %s", res.status, res.body)
				}
			})
		}
	}
}

// fakeBindings is a BindingReader with one environment.
type fakeBindings struct {
	conn        string
	established bool
}

func (f fakeBindings) Binding(_ context.Context, env string) (connstr.Conn, bool, bool, error) {
	if env != testEnv || f.conn == "" {
		return connstr.Conn{}, false, false, nil
	}
	c, err := connstr.Parse(f.conn)
	return c, f.established, err == nil, err
}

// With the workers' bindings, an established binding refuses another
// database; one whose create failed before the engine took it up gives way
// to a create (not to a delete, which must name it).
func TestBindingsDecideTheConflict(t *testing.T) {
	other := "postgres://alice:" + testPassword + "@db2.example.com/shop"
	for _, tc := range []struct {
		established bool
		path        string
		want        int
	}{
		{true, "/createDatabaseConnection", http.StatusConflict},
		{true, "/deleteDatabaseConnection", http.StatusConflict},
		{false, "/createDatabaseConnection", http.StatusCreated},
		{false, "/deleteDatabaseConnection", http.StatusConflict},
	} {
		h := newHarness(t, func(c *Config) { c.Bindings = fakeBindings{conn: testConnString, established: tc.established} })
		// The projection would say otherwise: the bindings decide.
		deleted := storedView(testConnRedacted)
		deleted.Status = jobs.StatusDeleted
		h.status.conns[testEnv] = deleted
		res := h.do(t, encodings[0].build(tc.path, map[string]string{"connectionString": other, "environmentId": testEnv}))
		if res.status != tc.want {
			t.Errorf("%s, established %v: %d %s, want %d", tc.path, tc.established, res.status, res.body, tc.want)
		}
		if published := len(h.pub.published()); (tc.want == http.StatusConflict) != (published == 0) {
			t.Errorf("%s, established %v: published %d commands", tc.path, tc.established, published)
		}
	}
}

// errBindings is a BindingReader whose stored value does not open.
type errBindings struct{ err error }

func (e errBindings) Binding(context.Context, string) (connstr.Conn, bool, bool, error) {
	return connstr.Conn{}, false, false, e.err
}

// A stored connection string sealed with a key this API lacks is a 503
// that says so, not "try again".
func TestBindingUnderAnUnknownKeyIsNamed(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Bindings = errBindings{fmt.Errorf("open: %w (key 8ec117f6)", secret.ErrUnknownKey)}
	})
	res := h.do(t, encodings[0].build("/createDatabaseConnection", connectionFieldsFor(testEnv)))
	wantRefused(t, h, res, http.StatusServiceUnavailable, CodeStatusUnavailable, "", "CDCQ_SECRET_KEYS_PREVIOUS")

	// A stored value that was changed is not blamed on the keys.
	h = newHarness(t, func(c *Config) {
		c.Bindings = errBindings{fmt.Errorf("open: %w: it does not open for environment %s", secret.ErrMalformed, testEnv)}
	})
	res = h.do(t, encodings[0].build("/createDatabaseConnection", connectionFieldsFor(testEnv)))
	wantRefused(t, h, res, http.StatusServiceUnavailable, CodeStatusUnavailable, "", "")
	if strings.Contains(string(res.body), "CDCQ_SECRET_KEY") {
		t.Errorf("a changed stored value blamed on the keys: %s", res.body)
	}
}
