package flink

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// APIError is an answer with a status code of 400 or more. Flink's REST
// handlers answer {"errors": ["..."]}: an unhandled exception gives
// ["Internal server error.", "<Exception on server side:\n<stack trace>\nEnd
// of exception on server side>"], a handled one a single entry (since Flink
// 1.16 the printed stack trace of the handler's exception). When the body
// is not that (a proxy's page, an empty body), Errors holds a short excerpt
// or the status text.
type APIError struct {
	// Service is "flink sql gateway" or "flink jobmanager".
	Service string
	// Method and Path say which call failed (the path holds ids, never a
	// request body).
	Method string
	Path   string
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Errors is Flink's errors array.
	Errors []string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s %s: %d %s: %s", e.Service, e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode), e.Message())
}

// Message is the meaningful part of Errors: the summary of the Java
// exception chain when one was sent, the plain messages otherwise.
func (e *APIError) Message() string {
	if chain := e.Chain(); len(chain) > 0 {
		return Summarize(chain)
	}
	var parts []string
	for _, s := range e.Errors {
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, firstLine(s))
		}
	}
	if len(parts) == 0 {
		return http.StatusText(e.StatusCode)
	}
	return strings.Join(parts, "; ")
}

// Trace is the longest entry of Errors: the printed stack trace, when Flink
// sent one.
func (e *APIError) Trace() string {
	longest := ""
	for _, s := range e.Errors {
		if len(s) > len(longest) {
			longest = s
		}
	}
	return longest
}

// Chain is the Java exception chain in Errors, outermost first; nil when
// Errors holds no stack trace.
func (e *APIError) Chain() []Exception {
	for _, s := range e.Errors {
		if strings.Contains(s, "\n") || strings.HasPrefix(s, "<Exception on server side") {
			if chain := ParseTrace(s); len(chain) > 0 {
				return chain
			}
		}
	}
	return nil
}

// OperationFailed reports whether the answer carries the failure of a
// statement's operation (the gateway's "Failed to execute the operation"),
// as opposed to a failure of the gateway itself.
func (e *APIError) OperationFailed() bool {
	return isOperationFailure(e.Chain())
}

// Retriable reports whether sending the same request again later can
// succeed: 408, 429 and 5xx are retriable, other 4xx are not. One 500 is
// not retriable either: the failure of a statement, unless the exception
// chain names a connection problem or a timeout (Transient).
func (e *APIError) Retriable() bool {
	switch {
	case e.StatusCode == http.StatusRequestTimeout, e.StatusCode == http.StatusTooManyRequests:
		return true
	case e.StatusCode >= 500:
		chain := e.Chain()
		return !isOperationFailure(chain) || Transient(chain)
	default:
		return false
	}
}

// NotFound reports a 404: the job (or the path) does not exist.
func (e *APIError) NotFound() bool { return e.StatusCode == http.StatusNotFound }

// TransportError is a request that got no HTTP answer: the server could not
// be reached, the connection broke, or the per-request timeout passed. It
// is always retriable.
type TransportError struct {
	Service string
	Method  string
	Path    string
	Err     error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("%s %s %s: %v", e.Service, e.Method, e.Path, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// Retriable is always true: nothing was learnt about the request itself.
func (e *TransportError) Retriable() bool { return true }

// OperationError is a statement whose operation did not finish: Flink
// rejected it (Status ERROR), gave up on it (TIMEOUT), or it was canceled
// or closed by someone else.
type OperationError struct {
	Session   string
	Operation string
	// Status is the operation's final status.
	Status string
	// Reason is the meaningful line of Flink's exception chain (see
	// Summarize), or what is known when Flink sent none.
	Reason string
	// Trace is the exception chain as Flink printed it; empty when Flink
	// sent none.
	Trace string

	retriable bool
}

func (e *OperationError) Error() string {
	return fmt.Sprintf("flink operation %s: %s", e.Status, e.Reason)
}

// Retriable reports whether running the statement again can succeed: a
// TIMEOUT, a CANCELED or CLOSED operation (someone else's doing), or an
// ERROR whose exception chain names a connection problem or a timeout
// (Transient). A rejected statement (bad SQL, a missing connector, a
// planner error) is not.
func (e *OperationError) Retriable() bool { return e.retriable }

// IsRetriable reports whether err, or an error it wraps, says that retrying
// the call can help. Errors that do not say (a malformed answer, a bad
// argument) are not retriable.
func IsRetriable(err error) bool {
	var r interface{ Retriable() bool }
	if errors.As(err, &r) {
		return r.Retriable()
	}
	return false
}

// IsNotFound reports whether err is a 404 from Flink.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.NotFound()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}
