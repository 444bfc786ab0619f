package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestValidationErrors(t *testing.T) {
	const form = "application/x-www-form-urlencoded"
	const jsonType = "application/json"
	enc := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	tests := []struct {
		name        string
		path        string
		contentType string
		body        string
		wantStatus  int
		wantCode    string
		wantField   string
		wantMessage string // substring of the message
	}{
		{name: "missing_connection_string_form", path: "/createDatabaseConnection", contentType: form,
			body: enc("environmentId", testEnv), wantStatus: 422, wantCode: CodeMissingField, wantField: "connectionString", wantMessage: "connectionString is missing"},
		{name: "empty_environment_id_json", path: "/createDatabaseConnection", contentType: jsonType,
			body: `{"connectionString":"` + testConnString + `","environmentId":""}`, wantStatus: 422, wantCode: CodeMissingField, wantField: "environmentId"},
		{name: "blank_connection_string_json", path: "/deleteDatabaseConnection", contentType: jsonType,
			body: `{"connectionString":"   ","environmentId":"env-1"}`, wantStatus: 422, wantCode: CodeMissingField, wantField: "connectionString"},
		{name: "null_field_json", path: "/checkJobStatus", contentType: jsonType,
			body: `{"connectionString":null,"environmentId":"env-1"}`, wantStatus: 422, wantCode: CodeMissingField, wantField: "connectionString"},
		{name: "missing_schema", path: "/createCachedQuery", contentType: form,
			body: enc("connectionString", testConnString, "environmentId", testEnv, "sqlQuery", testSQL), wantStatus: 422, wantCode: CodeMissingField, wantField: "schema"},
		{name: "missing_sql_query_json", path: "/createCachedQuery", contentType: jsonType,
			body: `{"connectionString":"` + testConnString + `","environmentId":"env-1","schema":"model A { id Int @id }"}`, wantStatus: 422, wantCode: CodeMissingField, wantField: "sqlQuery"},
		{name: "keyword_connection_string", path: "/createDatabaseConnection", contentType: form,
			body:       enc("connectionString", "host=db user=alice password="+testPassword, "environmentId", testEnv),
			wantStatus: 422, wantCode: CodeInvalidConnectionString, wantField: "connectionString", wantMessage: "must be a URL"},
		{name: "connection_string_bad_port", path: "/createCachedQuery", contentType: jsonType,
			body:       `{"connectionString":"postgres://alice:` + testPassword + `@db:99999/shop","environmentId":"env-1","schema":"s","sqlQuery":"q"}`,
			wantStatus: 422, wantCode: CodeInvalidConnectionString, wantField: "connectionString", wantMessage: "port"},
		{name: "connection_string_bad_escape", path: "/checkJobStatus", contentType: form,
			body:       "connectionString=" + url.QueryEscape("postgres://alice:"+testPassword+"%zz@db/shop") + "&environmentId=env-1",
			wantStatus: 422, wantCode: CodeInvalidConnectionString, wantField: "connectionString", wantMessage: "not a valid URL"},
		{name: "environment_id_with_dot", path: "/createDatabaseConnection", contentType: form,
			body: enc("connectionString", testConnString, "environmentId", "env.1"), wantStatus: 422, wantCode: CodeInvalidEnvironmentID, wantField: "environmentId", wantMessage: "position 4"},
		{name: "environment_id_too_long", path: "/deleteDatabaseConnection", contentType: jsonType,
			body:       `{"connectionString":"` + testConnString + `","environmentId":"` + strings.Repeat("a", 49) + `"}`,
			wantStatus: 422, wantCode: CodeInvalidEnvironmentID, wantField: "environmentId", wantMessage: "limit is 48"},
		{name: "number_instead_of_string", path: "/createDatabaseConnection", contentType: jsonType,
			body: `{"connectionString":"` + testConnString + `","environmentId":42}`, wantStatus: 422, wantCode: CodeInvalidField, wantField: "environmentId", wantMessage: "must be a string"},
		{name: "unencoded_ampersand_splits_form", path: "/createDatabaseConnection", contentType: form,
			body:       "connectionString=postgres://alice:" + testPassword + "@db/shop?sslmode=disable&connect_timeout=5&environmentId=env-1",
			wantStatus: 422, wantCode: CodeUnknownField, wantMessage: "--data-urlencode"},
		{name: "field_given_twice", path: "/createDatabaseConnection", contentType: form,
			body: enc("connectionString", testConnString, "environmentId", "a", "environmentId", "b"), wantStatus: 422, wantCode: CodeDuplicateField, wantField: "environmentId"},
		{name: "malformed_json_has_position", path: "/createDatabaseConnection", contentType: jsonType,
			body: "{\n  \"environmentId\": \"env-1\",\n  \"connectionString\" \"x\"\n}", wantStatus: 400, wantCode: CodeMalformedJSON, wantMessage: "line 3, column 22"},
		{name: "truncated_json", path: "/createDatabaseConnection", contentType: jsonType,
			body: `{"environmentId": "env-1"`, wantStatus: 400, wantCode: CodeMalformedJSON, wantMessage: "ends before"},
		{name: "empty_json_body", path: "/createDatabaseConnection", contentType: jsonType,
			body: "", wantStatus: 400, wantCode: CodeMalformedJSON, wantMessage: "empty"},
		{name: "json_array", path: "/createDatabaseConnection", contentType: jsonType,
			body: `["env-1"]`, wantStatus: 400, wantCode: CodeMalformedJSON, wantMessage: "JSON object"},
		{name: "data_after_json", path: "/createDatabaseConnection", contentType: jsonType,
			body: `{"connectionString":"` + testConnString + `","environmentId":"env-1"} {}`, wantStatus: 400, wantCode: CodeMalformedJSON, wantMessage: "after the JSON object"},
		{name: "no_content_type", path: "/createDatabaseConnection", contentType: "",
			body: enc("connectionString", testConnString, "environmentId", testEnv), wantStatus: 400, wantCode: CodeUnsupportedContentType, wantMessage: "application/x-www-form-urlencoded"},
		{name: "text_plain", path: "/createCachedQuery", contentType: "text/plain",
			body: "hello", wantStatus: 400, wantCode: CodeUnsupportedContentType, wantMessage: "application/json"},
		{name: "multipart", path: "/checkJobStatus", contentType: "multipart/form-data; boundary=x",
			body: "--x--", wantStatus: 400, wantCode: CodeUnsupportedContentType, wantMessage: "application/json"},
		{name: "latin1_charset", path: "/createDatabaseConnection", contentType: "application/json; charset=ISO-8859-1",
			body: `{}`, wantStatus: 400, wantCode: CodeUnsupportedContentType, wantMessage: "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			res := h.do(t, rawRequest(http.MethodPost, tt.path, tt.contentType, tt.body))
			wantRefused(t, h, res, tt.wantStatus, tt.wantCode, tt.wantField, tt.wantMessage)
		})
	}
}

func TestJSONSyntaxErrorDoesNotQuoteBodyCharacters(t *testing.T) {
	h := newHarness(t)
	// An unescaped quote inside the password ends the string early; the
	// character after it is the next one of the password.
	body := `{"connectionString":"postgres://alice:pa"Zsecret@db/shop","environmentId":"env-1"}`
	res := h.do(t, rawRequest(http.MethodPost, "/createDatabaseConnection", "application/json", body))
	e := wantError(t, res, http.StatusBadRequest, CodeMalformedJSON, "")
	if strings.Contains(e.Message, "'Z'") || strings.Contains(e.Message, "Zsecret") {
		t.Errorf("message %q quotes a character of the body", e.Message)
	}
	if !strings.Contains(e.Message, "line 1, column 42") {
		t.Errorf("message %q has no position", e.Message)
	}
}

func TestBodyTooLarge(t *testing.T) {
	h := newHarness(t)
	// A form body of exactly the limit is read.
	fields := url.Values{"connectionString": {testConnString}, "environmentId": {testEnv}, "schema": {"s"}, "sqlQuery": {""}}
	fields.Set("sqlQuery", strings.Repeat("a", DefaultBodyLimit-len(fields.Encode())))
	atLimit := fields.Encode()
	if len(atLimit) != DefaultBodyLimit {
		t.Fatalf("test body is %d bytes, want %d", len(atLimit), DefaultBodyLimit)
	}
	if res := h.do(t, rawRequest(http.MethodPost, "/createCachedQuery", "application/x-www-form-urlencoded", atLimit)); res.status != http.StatusCreated {
		t.Fatalf("body at the limit: status %d; %s", res.status, res.body)
	}

	// One byte more is refused from the headers alone. fasthttp answers
	// before routing, and app.Test reports that as an error instead of
	// returning the answer, so this goes through a real listener; the body
	// is not sent, or closing the connection would reset it.
	base := h.serve(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf("POST /createCachedQuery HTTP/1.1\r\nHost: cdcq\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n", DefaultBodyLimit+1)
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	httpRes, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer httpRes.Body.Close()
	body, err := io.ReadAll(httpRes.Body)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, response{status: httpRes.StatusCode, header: httpRes.Header, body: body}, http.StatusBadRequest, CodeBodyTooLarge, "")
	if n := len(h.pub.published()); n != 1 {
		t.Errorf("published %d commands, want 1 (the request at the limit)", n)
	}
	if !strings.Contains(h.logs.String(), `"status":400`) {
		t.Errorf("the refused request was not logged: %s", h.logs)
	}
}

func TestCompressedBodyIsRefused(t *testing.T) {
	h := newHarness(t)
	req := formRequest("/createDatabaseConnection", connectionFieldsFor(testEnv))
	req.Header.Set("Content-Encoding", "gzip")
	wantError(t, h.do(t, req), http.StatusBadRequest, CodeUnsupportedEncoding, "")
}

func TestUnknownRoute(t *testing.T) {
	h := newHarness(t)
	res := h.do(t, rawRequest(http.MethodGet, "/nope", "", ""))
	wantError(t, res, http.StatusNotFound, CodeNotFound, "")
}
