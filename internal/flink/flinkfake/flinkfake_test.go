package flinkfake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/cdcq/cdcq/internal/flink/flinkfake"
)

// These tests pin the fakes to Flink's wire format with a plain HTTP
// client, independent of cdcq's client.

type answer struct {
	status int
	body   string
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
	return answer{resp.StatusCode, string(data)}
}

func decode(t *testing.T, a answer) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(a.body), &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, a.body)
	}
	return m
}

var (
	uuidRE  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	jobIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

func TestInsertOnTheWire(t *testing.T) {
	s := flinkfake.NewServer(t)
	gw := s.GatewayURL + "/v2"

	a := call(t, http.MethodPost, gw+"/sessions", `{"sessionName":"cdcq-env1-q_1"}`)
	if a.status != http.StatusOK {
		t.Fatalf("open session: %d %s", a.status, a.body)
	}
	sh, _ := decode(t, a)["sessionHandle"].(string)
	if !uuidRE.MatchString(sh) {
		t.Fatalf("sessionHandle %q is not a UUID", sh)
	}
	base := gw + "/sessions/" + sh

	a = call(t, http.MethodPost, base+"/statements", `{"statement":"SET 'pipeline.name' = 'cdcq-env1-q_1'"}`)
	set, _ := decode(t, a)["operationHandle"].(string)
	if a.status != http.StatusOK || !uuidRE.MatchString(set) {
		t.Fatalf("SET: %d %s", a.status, a.body)
	}
	a = call(t, http.MethodPost, base+"/statements", `{"statement":"INSERT INTO sink SELECT * FROM src"}`)
	op, _ := decode(t, a)["operationHandle"].(string)

	// One RUNNING answer, then FINISHED; fetching meanwhile is NOT_READY.
	opURL := base + "/operations/" + op
	if got := call(t, http.MethodGet, opURL+"/result/0?rowFormat=JSON", ""); got.status != 200 || !strings.Contains(got.body, `"resultType":"NOT_READY"`) {
		t.Fatalf("fetch while running: %d %s", got.status, got.body)
	}
	if got := decode(t, call(t, http.MethodGet, opURL+"/status", ""))["status"]; got != "RUNNING" {
		t.Fatalf("first status %v, want RUNNING", got)
	}
	if got := decode(t, call(t, http.MethodGet, opURL+"/status", ""))["status"]; got != "FINISHED" {
		t.Fatalf("second status %v, want FINISHED", got)
	}

	page := decode(t, call(t, http.MethodGet, opURL+"/result/0?rowFormat=JSON", ""))
	if page["resultType"] != "PAYLOAD" || page["isQueryResult"] != false || page["resultKind"] != "SUCCESS_WITH_CONTENT" {
		t.Fatalf("first page: %v", page)
	}
	jid, _ := page["jobID"].(string)
	if !jobIDRE.MatchString(jid) {
		t.Fatalf("jobID %q is not 32 hex digits", jid)
	}
	results := page["results"].(map[string]any)
	cols := results["columns"].([]any)
	if cols[0].(map[string]any)["name"] != "job id" {
		t.Fatalf("columns: %v", cols)
	}
	row := results["data"].([]any)[0].(map[string]any)
	if row["kind"] != "INSERT" || row["fields"].([]any)[0] != jid {
		t.Fatalf("row: %v", row)
	}
	next, _ := page["nextResultUri"].(string)
	if next != "/v2/sessions/"+sh+"/operations/"+op+"/result/1?rowFormat=JSON" {
		t.Fatalf("nextResultUri %q", next)
	}
	eos := decode(t, call(t, http.MethodGet, s.GatewayURL+next, ""))
	if eos["resultType"] != "EOS" || eos["nextResultUri"] != nil {
		t.Fatalf("second page: %v", eos)
	}

	// The job runs under the pipeline name the SET gave.
	jobs := s.JobManager.JobsNamed("cdcq-env1-q_1")
	if len(jobs) != 1 || jobs[0].ID != jid || jobs[0].State != "RUNNING" {
		t.Fatalf("jobs: %+v", s.JobManager.Jobs())
	}

	a = call(t, http.MethodDelete, base, "")
	if a.status != http.StatusOK || decode(t, a)["status"] != "CLOSED" {
		t.Fatalf("close: %d %s", a.status, a.body)
	}
	sess, _ := s.Gateway.Session(sh)
	if !sess.Closed || len(sess.Statements) != 2 || sess.Config["pipeline.name"] != "cdcq-env1-q_1" || sess.Name != "cdcq-env1-q_1" {
		t.Fatalf("session: %+v", sess)
	}
	// A closed session is gone.
	a = call(t, http.MethodPost, base+"/statements", `{"statement":"SELECT 1"}`)
	if a.status != http.StatusInternalServerError || !strings.Contains(a.body, "does not exist") {
		t.Fatalf("statement in closed session: %d %s", a.status, a.body)
	}
}

func TestStatementErrorOnTheWire(t *testing.T) {
	s := flinkfake.NewServer(t)
	s.Gateway.SetStatusPolls(0)
	s.Gateway.FailStatement(flinkfake.StatementFailure{Contains: "FROM nope",
		Chain: flinkfake.ValidationError("From line 1, column 15 to line 1, column 18", "Object 'nope' not found")})
	sh := decode(t, call(t, http.MethodPost, s.GatewayURL+"/v2/sessions", ""))["sessionHandle"].(string)
	base := s.GatewayURL + "/v2/sessions/" + sh
	op := decode(t, call(t, http.MethodPost, base+"/statements", `{"statement":"SELECT * FROM nope"}`))["operationHandle"].(string)
	if got := decode(t, call(t, http.MethodGet, base+"/operations/"+op+"/status", ""))["status"]; got != "ERROR" {
		t.Fatalf("status %v, want ERROR", got)
	}
	a := call(t, http.MethodGet, base+"/operations/"+op+"/result/0?rowFormat=JSON", "")
	if a.status != http.StatusInternalServerError {
		t.Fatalf("fetch: %d", a.status)
	}
	var body struct {
		Errors []string `json:"errors"`
	}
	if err := json.Unmarshal([]byte(a.body), &body); err != nil || len(body.Errors) != 2 {
		t.Fatalf("error body: %s", a.body)
	}
	trace := body.Errors[1]
	for _, want := range []string{
		"<Exception on server side:\n",
		"SqlExecutionException: Failed to execute the operation " + op,
		"Caused by: org.apache.calcite.sql.validate.SqlValidatorException: Object 'nope' not found\n\tat ",
		"\nEnd of exception on server side>",
	} {
		if !strings.Contains(trace, want) {
			t.Fatalf("trace lacks %q:\n%s", want, trace)
		}
	}
	if body.Errors[0] != "Internal server error." {
		t.Fatalf("first entry %q", body.Errors[0])
	}
}

func TestJobManagerOnTheWire(t *testing.T) {
	s := flinkfake.NewServer(t)
	jm := s.JobManager
	running := jm.AddJob("cdcq-env1-q_1", "RUNNING")
	failed := jm.AddJob("cdcq-env1-q_2", "RUNNING")
	trace := "java.io.IOException: Corrupt Debezium JSON message '{}'.\n\tat x.Y.z(Y.java:1)"
	if err := jm.FailJob(failed, trace); err != nil {
		t.Fatal(err)
	}

	ov := decode(t, call(t, http.MethodGet, s.JobManagerURL+"/jobs/overview", ""))
	jobs := ov["jobs"].([]any)
	if len(jobs) != 2 {
		t.Fatalf("overview: %v", ov)
	}
	first := jobs[0].(map[string]any)
	for _, k := range []string{"jid", "name", "state", "start-time", "end-time", "duration", "last-modification", "tasks"} {
		if _, ok := first[k]; !ok {
			t.Fatalf("overview entry lacks %q: %v", k, first)
		}
	}
	if first["end-time"] != float64(-1) {
		t.Fatalf("running job's end-time %v, want -1", first["end-time"])
	}

	ex := decode(t, call(t, http.MethodGet, s.JobManagerURL+"/jobs/"+failed+"/exceptions?maxExceptions=10", ""))
	if _, ok := ex["root-exception"]; ok {
		t.Fatal("Flink 2 answer carries the removed root-exception member")
	}
	entry := ex["exceptionHistory"].(map[string]any)["entries"].([]any)[0].(map[string]any)
	if entry["stacktrace"] != trace || entry["exceptionName"] != "java.io.IOException" {
		t.Fatalf("entry: %v", entry)
	}
	jm.SetLegacyExceptions(true)
	ex = decode(t, call(t, http.MethodGet, s.JobManagerURL+"/v1/jobs/"+failed+"/exceptions", ""))
	if ex["root-exception"] != trace {
		t.Fatalf("legacy answer: %v", ex)
	}

	if a := call(t, http.MethodPatch, s.JobManagerURL+"/jobs/"+running+"?mode=cancel", ""); a.status != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", a.status, a.body)
	}
	if j, _ := jm.Job(running); j.State != "CANCELED" || j.EndTime < j.StartTime {
		t.Fatalf("canceled job: %+v", j)
	}
	if a := call(t, http.MethodPatch, s.JobManagerURL+"/jobs/"+running+"?mode=cancel", ""); a.status != http.StatusConflict {
		t.Fatalf("cancel of a canceled job: %d %s", a.status, a.body)
	}
	if a := call(t, http.MethodPatch, s.JobManagerURL+"/jobs/0123456789abcdef0123456789abcdef?mode=cancel", ""); a.status != http.StatusNotFound || !strings.Contains(a.body, "Job could not be found.") {
		t.Fatalf("cancel of an unknown job: %d %s", a.status, a.body)
	}
	if a := call(t, http.MethodGet, s.JobManagerURL+"/jobs/0123456789abcdef0123456789abcdef", ""); a.status != http.StatusNotFound {
		t.Fatalf("unknown job: %d %s", a.status, a.body)
	}

	stopped := jm.AddJob("cdcq-env1-q_3", "RUNNING")
	a := call(t, http.MethodPost, s.JobManagerURL+"/jobs/"+stopped+"/stop", `{"drain":false,"targetDirectory":"file:///savepoints"}`)
	if a.status != http.StatusAccepted || !jobIDRE.MatchString(decode(t, a)["request-id"].(string)) {
		t.Fatalf("stop: %d %s", a.status, a.body)
	}
	if j, _ := jm.Job(stopped); j.State != "FINISHED" {
		t.Fatalf("stopped job: %+v", j)
	}
}

func TestScriptedFailuresOnTheWire(t *testing.T) {
	s := flinkfake.NewServer(t)
	s.Gateway.FailNext(1, flinkfake.Failure{Status: http.StatusServiceUnavailable, PathContains: "/sessions"})
	a := call(t, http.MethodPost, s.GatewayURL+"/v2/sessions", "")
	if a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, `"errors":["Service Unavailable"]`) {
		t.Fatalf("scripted failure: %d %s", a.status, a.body)
	}
	if a := call(t, http.MethodPost, s.GatewayURL+"/v2/sessions", ""); a.status != http.StatusOK {
		t.Fatalf("after the failure: %d %s", a.status, a.body)
	}
	s.JobManager.FailNext(1, flinkfake.ServiceUnavailable)
	if a := call(t, http.MethodGet, s.JobManagerURL+"/jobs/overview", ""); a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "leader election") {
		t.Fatalf("jobmanager failure: %d %s", a.status, a.body)
	}
}
