package httpapi

import (
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Error codes, the "code" of an error answer. Callers may switch on them;
// they do not change.
const (
	CodeMissingField            = "missing_field"                // 422
	CodeInvalidField            = "invalid_field"                // 422: wrong JSON type
	CodeUnknownField            = "unknown_field"                // 422: form field the endpoint does not take
	CodeDuplicateField          = "duplicate_field"              // 422
	CodeInvalidConnectionString = "invalid_connection_string"    // 422
	CodeInvalidEnvironmentID    = "invalid_environment_id"       // 422
	CodeInvalidSchema           = "invalid_schema"               // 422: with line and column
	CodeInvalidSQLQuery         = "invalid_sql_query"            // 422: with line and column
	CodeMalformedJSON           = "malformed_json"               // 400
	CodeUnsupportedContentType  = "unsupported_content_type"     // 400
	CodeUnsupportedEncoding     = "unsupported_content_encoding" // 400
	CodeBodyTooLarge            = "body_too_large"               // 400
	CodeInvalidParameter        = "invalid_parameter"            // 400: a query parameter or header
	CodeUnauthorized            = "unauthorized"                 // 401
	CodeNotFound                = "not_found"                    // 404
	CodeMethodNotAllowed        = "method_not_allowed"           // 405
	CodeConnectionMismatch      = "connection_mismatch"          // 409
	CodeRateLimited             = "rate_limited"                 // 429: with Retry-After
	CodeInternal                = "internal"                     // 500
	CodePublishFailed           = "publish_failed"               // 503
	CodeStatusUnavailable       = "status_unavailable"           // 503
)

// ErrorResponse is the body of every error answer:
// {"error": {"code": "...", "field": "...", "message": "..."}}.
type ErrorResponse struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what is wrong. Field names the request field at fault,
// when there is one.
type ErrorDetail struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	// Line and Column locate a problem in the schema or the query.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
}

// apiError is an error answer on its way out. cause is logged, never sent.
type apiError struct {
	status int
	detail ErrorDetail
	cause  error
}

func (e *apiError) Error() string { return e.detail.Code + ": " + e.detail.Message }

func newError(status int, code, field, message string) *apiError {
	return &apiError{status: status, detail: ErrorDetail{Code: code, Field: field, Message: message}}
}

func unprocessable(code, field, message string) *apiError {
	return newError(http.StatusUnprocessableEntity, code, field, message)
}

func badRequest(code, message string) *apiError {
	return newError(http.StatusBadRequest, code, "", message)
}

// toAPIError turns whatever a handler or the server returned into the answer
// to send. Unknown errors become a bare 500: their text may say too much.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case http.StatusRequestEntityTooLarge:
			return badRequest(CodeBodyTooLarge, "the request body is larger than the limit")
		case http.StatusNotFound:
			// Fiber's message repeats the path, which may hold anything.
			return newError(http.StatusNotFound, CodeNotFound, "", "no endpoint has this path")
		case http.StatusMethodNotAllowed:
			return newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "", "the endpoint does not take this method")
		}
		code := strings.ToLower(strings.ReplaceAll(http.StatusText(fe.Code), " ", "_"))
		if code == "" {
			code = "error"
		}
		return &apiError{status: fe.Code, detail: ErrorDetail{Code: code, Message: http.StatusText(fe.Code)}, cause: err}
	}
	return &apiError{
		status: http.StatusInternalServerError,
		detail: ErrorDetail{Code: CodeInternal, Message: "internal error"},
		cause:  err,
	}
}

// urlPassword matches the password of a URL's user part.
var urlPassword = regexp.MustCompile(`(://[^:/@\s]*:)[^/\s]*@`)

// scrub masks URL passwords in text about to be logged: a library error may
// quote a URL we never meant to log.
func scrub(s string) string {
	return urlPassword.ReplaceAllString(s, "${1}***@")
}
