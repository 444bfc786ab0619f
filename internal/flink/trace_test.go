package flink

import (
	"testing"
)

func TestSummarize(t *testing.T) {
	const server = "<Exception on server side:\n"
	const end = "\nEnd of exception on server side>"
	tests := []struct {
		name      string
		trace     string
		want      string
		transient bool
	}{
		{
			name: "parse_error_quotes_statement",
			trace: server +
				"org.apache.flink.table.gateway.api.utils.SqlGatewayException: org.apache.flink.table.gateway.api.utils.SqlGatewayException: Failed to fetchResults.\n" +
				"\tat org.apache.flink.table.gateway.rest.handler.statement.FetchResultsHandler.handleRequest(FetchResultsHandler.java:91)\n" +
				"Caused by: org.apache.flink.table.gateway.api.utils.SqlGatewayException: Failed to fetchResults.\n" +
				"\t... 3 more\n" +
				"Caused by: org.apache.flink.table.gateway.service.utils.SqlExecutionException: Failed to execute the operation 1.\n" +
				"\tat org.apache.flink.table.gateway.service.operation.OperationManager.processThrowable(OperationManager.java:412)\n" +
				"Caused by: org.apache.flink.table.api.SqlParserException: SQL parse failed. From line 1, column 1 to line 1, column 5:\n" +
				"    ELECT 1\n    ^^^^^\nNon-query expression encountered in illegal context\n" +
				"\tat org.apache.flink.table.planner.parse.CalciteParser.parse(CalciteParser.java:60)\n" +
				"Caused by: org.apache.calcite.runtime.CalciteException: Non-query expression encountered in illegal context\n" +
				"\tat java.base/jdk.internal.reflect.NativeConstructorAccessorImpl.newInstance0(Native Method)\n" +
				"\t... 12 more" + end,
			want: "SqlParserException: SQL parse failed. From line 1, column 1 to line 1, column 5: (caused by CalciteException: Non-query expression encountered in illegal context)",
		},
		{
			name: "validation_error_names_root_cause",
			trace: "org.apache.flink.table.gateway.api.utils.SqlGatewayException: Failed to fetchResults.\n\tat a.B.c(B.java:1)\n" +
				"Caused by: org.apache.flink.table.api.ValidationException: SQL validation failed. From line 1, column 8 to line 1, column 21: Column 'Caused by: x' not found in any table\n" +
				"\tat org.apache.flink.table.planner.calcite.FlinkPlannerImpl.validate(FlinkPlannerImpl.scala:205)\n" +
				"Caused by: org.apache.calcite.sql.validate.SqlValidatorException: Column 'Caused by: x' not found in any table\n" +
				"\tat java.base/jdk.internal.reflect.NativeConstructorAccessorImpl.newInstance0(Native Method)",
			want: "ValidationException: SQL validation failed. From line 1, column 8 to line 1, column 21: Column 'Caused by: x' not found in any table",
		},
		{
			name: "wrapper_printing_its_cause",
			trace: "java.lang.RuntimeException: java.lang.IllegalStateException: boom\n\tat a.B.c(B.java:1)\n" +
				"Caused by: java.lang.IllegalStateException: boom\n\t... 1 more",
			want: "IllegalStateException: boom",
		},
		{
			name: "connection_refused_is_transient",
			trace: "org.apache.flink.table.api.TableException: Failed to execute sql\n\tat a.B.c(B.java:1)\n" +
				"Caused by: org.apache.flink.util.FlinkException: Failed to execute job 'x'.\n\tat a.B.c(B.java:1)\n" +
				"Caused by: java.net.ConnectException: Connection refused\n\tat a.B.c(B.java:1)",
			want:      "TableException: Failed to execute sql (caused by ConnectException: Connection refused)",
			transient: true,
		},
		{
			name: "job_failure_skips_recovery_envelope",
			trace: "org.apache.flink.runtime.JobException: Recovery is suppressed by NoRestartBackoffTimeStrategy\n\tat a.B.c(B.java:1)\n" +
				"Caused by: java.io.IOException: Corrupt Debezium JSON message '{\"op\":\"t\"}'.\n\tat a.B.c(B.java:1)\n" +
				"Caused by: java.io.IOException: Unknown \"op\" value \"t\". The Debezium JSON message is '{\"op\":\"t\"}'\n\tat a.B.c(B.java:1)",
			want: "IOException: Corrupt Debezium JSON message '{\"op\":\"t\"}'. (caused by IOException: Unknown \"op\" value \"t\". The Debezium JSON message is '{\"op\":\"t\"}')",
		},
		{
			name:  "exception_without_message",
			trace: "java.lang.NullPointerException\n\tat a.B.c(B.java:1)",
			want:  "NullPointerException",
		},
		{
			name: "suppressed_is_ignored",
			trace: "java.lang.Exception: outer\n\tat a.B.c(B.java:1)\n\tSuppressed: java.lang.Exception: other\n\t\tat a.B.c(B.java:1)\n" +
				"Caused by: java.lang.Exception: inner\n\tat a.B.c(B.java:1)",
			want: "Exception: outer (caused by Exception: inner)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain := ParseTrace(tt.trace)
			if got := Summarize(chain); got != tt.want {
				t.Fatalf("summary\n got %q\nwant %q\nchain %+v", got, tt.want, chain)
			}
			if got := Transient(chain); got != tt.transient {
				t.Fatalf("transient %t, want %t", got, tt.transient)
			}
		})
	}
}

func TestParseTraceOfPlainText(t *testing.T) {
	for _, s := range []string{"", "Internal server error.", "Job could not be found."} {
		if chain := ParseTrace(s); chain != nil {
			t.Fatalf("%q parsed as %+v", s, chain)
		}
	}
}

func TestAPIErrorRetriable(t *testing.T) {
	opFailure := "<Exception on server side:\norg.apache.flink.table.gateway.service.utils.SqlExecutionException: Failed to execute the operation x.\n\tat a.B.c(B.java:1)\n" +
		"Caused by: org.apache.flink.table.api.ValidationException: Could not find any factory for identifier 'kafka'\n\tat a.B.c(B.java:1)\nEnd of exception on server side>"
	tests := []struct {
		name   string
		status int
		errors []string
		want   bool
	}{
		{name: "unavailable", status: 503, errors: []string{"down"}, want: true},
		{name: "internal_gateway_error", status: 500, errors: []string{"Internal server error.", "<Exception on server side:\njava.lang.IllegalStateException: oops\n\tat a.B.c(B.java:1)\nEnd of exception on server side>"}, want: true},
		{name: "statement_failure", status: 500, errors: []string{"Internal server error.", opFailure}, want: false},
		{name: "too_many", status: 429, want: true},
		{name: "bad_request", status: 400, errors: []string{"Bad request"}, want: false},
		{name: "not_found", status: 404, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &APIError{Service: "flink sql gateway", Method: "GET", Path: "/x", StatusCode: tt.status, Errors: tt.errors}
			if got := e.Retriable(); got != tt.want {
				t.Fatalf("Retriable() = %t, want %t (%v)", got, tt.want, e)
			}
		})
	}
}
