package flinksql

import "fmt"

// UnsupportedError says which part of a query has no Flink translation.
// Retrying cannot help: the query has to change (or run on the embedded
// engine).
type UnsupportedError struct {
	Message string
}

func (e *UnsupportedError) Error() string {
	return "the Flink engine cannot run this query: " + e.Message
}

func unsupportedf(format string, args ...any) error {
	return &UnsupportedError{Message: fmt.Sprintf(format, args...)}
}
