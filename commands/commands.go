// Package commands is the public contract of cdcq's control topic: the
// commands the API publishes and that any other system may publish directly
// with a plain Kafka client. Each command is a JSON body with a `name`
// header; its JSON Schema is in schemas/ and docs/commands.md shows how to
// publish one.
//
// This package must not import handlers, http or projections.
package commands

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/internal/secret"
)

const (
	// Topic carries every command, keyed by environmentId so that one
	// environment's commands are handled in order.
	Topic = "cdcq.commands"
	// DeadLetterTopic receives commands that cannot be decoded, with the
	// reason in the reason_poisoned header.
	DeadLetterTopic = "cdcq.commands.dead"

	// NameHeader names the command (one of the Name constants).
	NameHeader = "name"
	// CommandIDHeader repeats commandId for tools that read headers only.
	CommandIDHeader = "command_id"
	// EnvironmentHeader repeats environmentId; it is also the message key.
	EnvironmentHeader = "environment_id"
)

// Command names, the values of the name header. They never change: systems
// outside cdcq publish them.
const (
	NameCreateDatabaseConnection = "CreateDatabaseConnection"
	NameDeleteDatabaseConnection = "DeleteDatabaseConnection"
	NameCreateCachedQuery        = "CreateCachedQuery"
	NameDeleteCachedQuery        = "DeleteCachedQuery"
)

// Names lists every command name.
var Names = []string{NameCreateDatabaseConnection, NameDeleteDatabaseConnection, NameCreateCachedQuery, NameDeleteCachedQuery}

// Connection is a source database's connection string in two forms: sealed
// (AES-256-GCM with the shared key, see `cdcq seal`) for the worker, and
// redacted (password replaced by ***) for people.
type Connection struct {
	Sealed   string `json:"sealed"`
	Redacted string `json:"redacted"`
}

// Command is what every command has.
type Command interface {
	CommandName() string
	CommandMeta() Meta
}

// Meta holds the fields every command carries.
type Meta struct {
	// CommandID is unique per command; a redelivery repeats it.
	CommandID string `json:"commandId"`
	// EnvironmentID names the customer environment; it is the message key.
	EnvironmentID string `json:"environmentId"`
	// RequestedAt is when the command was issued.
	RequestedAt time.Time `json:"requestedAt"`
}

// CreateDatabaseConnection asks for the environment's database to be
// captured into its change topics. Idempotent: a capture that exists is
// brought to this configuration.
type CreateDatabaseConnection struct {
	Meta
	Connection Connection `json:"connection"`
}

// DeleteDatabaseConnection asks for the environment's capture, its
// replication slot and publication, and its query jobs to be removed.
// Idempotent: what is gone stays gone.
type DeleteDatabaseConnection struct {
	Meta
	Connection Connection `json:"connection"`
}

// CreateCachedQuery asks for an aggregate query to be kept up to date over
// the environment's change topics; it ensures the capture first.
type CreateCachedQuery struct {
	Meta
	Connection Connection `json:"connection"`
	// QueryID is deterministic (see QueryID).
	QueryID string `json:"queryId"`
	// Schema is the database's Prisma schema.
	Schema string `json:"schema"`
	// SQLQuery is the aggregate query.
	SQLQuery string `json:"sqlQuery"`
}

// DeleteCachedQuery asks for one cached query's job and results to be
// removed. The capture stays. Idempotent.
type DeleteCachedQuery struct {
	Meta
	QueryID string `json:"queryId"`
}

func (CreateDatabaseConnection) CommandName() string { return NameCreateDatabaseConnection }
func (DeleteCachedQuery) CommandName() string        { return NameDeleteCachedQuery }
func (DeleteDatabaseConnection) CommandName() string { return NameDeleteDatabaseConnection }
func (CreateCachedQuery) CommandName() string        { return NameCreateCachedQuery }

// CommandMeta returns the common fields.
func (m Meta) CommandMeta() Meta { return m }

// DecodeError says why a message is not a valid command. Such a message is
// parked on the dead-letter topic; retrying it cannot help.
type DecodeError struct {
	Name   string
	Reason string
}

func (e *DecodeError) Error() string {
	if e.Name == "" {
		return "invalid command: " + e.Reason
	}
	return fmt.Sprintf("invalid %s command: %s", e.Name, e.Reason)
}

// IsDecodeError reports whether err is, or wraps, a DecodeError.
func IsDecodeError(err error) bool {
	var d *DecodeError
	return errors.As(err, &d)
}

// Encode marshals a command's body.
func Encode(c Command) ([]byte, error) {
	return json.Marshal(c)
}

// Decode reads a command from its name header and JSON body and checks the
// fields every handler relies on. It does not open the sealed connection.
func Decode(name string, body []byte) (Command, error) {
	var c Command
	switch name {
	case NameCreateDatabaseConnection:
		c = &CreateDatabaseConnection{}
	case NameDeleteDatabaseConnection:
		c = &DeleteDatabaseConnection{}
	case NameCreateCachedQuery:
		c = &CreateCachedQuery{}
	case NameDeleteCachedQuery:
		c = &DeleteCachedQuery{}
	case "":
		return nil, &DecodeError{Reason: "the name header is missing; want one of " + strings.Join(Names, ", ")}
	default:
		return nil, &DecodeError{Name: name, Reason: "unknown command name; want one of " + strings.Join(Names, ", ")}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(c); err != nil {
		return nil, &DecodeError{Name: name, Reason: "body is not valid JSON for this command: " + err.Error()}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &DecodeError{Name: name, Reason: "body has data after the JSON object"}
	}
	if reason := misspelledField(body); reason != "" {
		return nil, &DecodeError{Name: name, Reason: reason}
	}
	var problems []string
	h := c.CommandMeta()
	if strings.TrimSpace(h.CommandID) == "" {
		problems = append(problems, "commandId is missing")
	}
	if err := names.ValidateEnvironmentID(h.EnvironmentID); err != nil {
		problems = append(problems, "environmentId "+err.Error())
	}
	var conn Connection
	needsConnection := true
	switch v := c.(type) {
	case *CreateDatabaseConnection:
		conn = v.Connection
	case *DeleteDatabaseConnection:
		conn = v.Connection
	case *CreateCachedQuery:
		conn = v.Connection
		if !queryIDPattern.MatchString(v.QueryID) {
			problems = append(problems, "queryId is missing or not 1-64 letters, digits and '_'")
		}
		if strings.TrimSpace(v.Schema) == "" {
			problems = append(problems, "schema is missing")
		}
		if strings.TrimSpace(v.SQLQuery) == "" {
			problems = append(problems, "sqlQuery is missing")
		}
	case *DeleteCachedQuery:
		needsConnection = false
		if !queryIDPattern.MatchString(v.QueryID) {
			problems = append(problems, "queryId is missing or not 1-64 letters, digits and '_'")
		}
	}
	if needsConnection && !sealedPattern.MatchString(conn.Sealed) {
		problems = append(problems, "connection.sealed is missing or not a v2: sealed value bound to the environment (see `cdcq seal`)")
	}
	if len(problems) > 0 {
		return nil, &DecodeError{Name: name, Reason: strings.Join(problems, "; ")}
	}
	return deref(c), nil
}

var (
	// Query ids hold no '-', so that a pipeline name
	// cdcq-<environmentId>-<queryId> names one environment only.
	queryIDPattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)
	sealedPattern  = regexp.MustCompile(`^v2:[0-9a-f]{8}:[A-Za-z0-9_-]+$`)
	// fieldNames are the JSON names of every command field, by object.
	fieldNames = map[string][]string{
		"":           {"commandId", "environmentId", "requestedAt", "connection", "queryId", "schema", "sqlQuery"},
		"connection": {"sealed", "redacted"},
	}
)

// misspelledField finds a key that encoding/json would match to a field
// case-insensitively ("CommandID", "SQLQUERY"): the schema does not accept
// it, so neither does Decode, and a body cannot carry two spellings of one
// field that the two would read differently.
func misspelledField(body []byte) string {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return ""
	}
	check := func(obj map[string]json.RawMessage, known []string, where string) string {
		for k := range obj {
			for _, f := range known {
				if k != f && strings.EqualFold(k, f) {
					return fmt.Sprintf("field %s%q must be spelled %q", where, k, f)
				}
			}
		}
		return ""
	}
	if r := check(top, fieldNames[""], ""); r != "" {
		return r
	}
	var conn map[string]json.RawMessage
	if raw, ok := top["connection"]; ok && json.Unmarshal(raw, &conn) == nil {
		return check(conn, fieldNames["connection"], "connection.")
	}
	return ""
}

// deref returns the value the pointer points at, so that handlers switch on
// value types.
func deref(c Command) Command {
	switch v := c.(type) {
	case *CreateDatabaseConnection:
		return *v
	case *DeleteDatabaseConnection:
		return *v
	case *CreateCachedQuery:
		return *v
	case *DeleteCachedQuery:
		return *v
	}
	return c
}

// Open decrypts a command's connection string, which must have been sealed
// for the command's environment.
func (c Connection) Open(s *secret.Sealer, environmentID string) (string, error) {
	plain, err := s.Open(c.Sealed, environmentID)
	if err != nil {
		return "", fmt.Errorf("connection.sealed: %w", err)
	}
	return plain, nil
}
