package kafkaconnect

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// APIError is an answer from Kafka Connect with a status code of 400 or
// more. Connect's error body is {"error_code":409,"message":"..."}; when the
// body is not that (a proxy's HTML page, an empty body) Message falls back to
// a short excerpt or the status text.
type APIError struct {
	// Method and Path say which call failed (the path holds the escaped
	// connector name, never a request body).
	Method string
	Path   string
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// ErrorCode is Connect's error_code field; 0 when the body had none.
	ErrorCode int
	// Message is Connect's message field, with any secret value of the
	// request's configuration masked.
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("kafka connect %s %s: %d %s: %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// Retriable reports whether sending the same request again later can
// succeed: 409 (a worker rebalance or a concurrent config change), 408, 429
// and 5xx are retriable; other 4xx say the request itself is wrong.
//
// One 500 is not: Kafka 3.x answers an unknown connector.class with a 500
// "Failed to find any class that implements Connector ...", which no retry
// can fix.
func (e *APIError) Retriable() bool {
	switch {
	case e.StatusCode == http.StatusConflict,
		e.StatusCode == http.StatusRequestTimeout,
		e.StatusCode == http.StatusTooManyRequests:
		return true
	case e.StatusCode >= 500:
		return !strings.HasPrefix(e.Message, "Failed to find any class that implements Connector")
	default:
		return false
	}
}

// NotFound reports a 404: the connector (or the path) does not exist.
func (e *APIError) NotFound() bool { return e.StatusCode == http.StatusNotFound }

// TransportError is a request that got no HTTP answer: the worker could not
// be reached, the connection broke, or the per-request timeout passed. It is
// always retriable.
type TransportError struct {
	Method string
	Path   string
	Err    error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("kafka connect %s %s: %v", e.Method, e.Path, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// Retriable is always true: nothing was learnt about the request itself.
func (e *TransportError) Retriable() bool { return true }

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

// IsNotFound reports whether err is Connect's 404 for a connector that does
// not exist.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.NotFound()
}
