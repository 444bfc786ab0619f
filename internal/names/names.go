// Package names derives every external name cdcq creates from an
// environmentId: Kafka topics, the Debezium connector, the replication slot
// and the publication. Names are deterministic, so a redelivered command
// finds what an earlier delivery created instead of creating it again.
//
// This package must not import other cdcq packages.
package names

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// MaxEnvironmentIDLength keeps derived slot names (cdcq_ + id + _ + 8 hex)
// under PostgreSQL's 63-byte identifier limit.
const MaxEnvironmentIDLength = 48

// ValidateEnvironmentID reports why id cannot name both a Kafka topic prefix
// and a replication slot. Allowed: ASCII letters, digits, '_' and '-',
// starting with a letter or digit, at most 48 characters. '.' is refused
// because it separates the parts of Debezium topic names.
func ValidateEnvironmentID(id string) error {
	if id == "" {
		return fmt.Errorf("is empty")
	}
	if len(id) > MaxEnvironmentIDLength {
		return fmt.Errorf("is %d characters long; the limit is %d", len(id), MaxEnvironmentIDLength)
	}
	for i, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case (r == '_' || r == '-') && i > 0:
		default:
			return fmt.Errorf("has %q at position %d; use letters, digits, '_' and '-' (not first)", r, i+1)
		}
	}
	return nil
}

// DefaultNamespace names cdcq's own Kafka topics and consumer groups unless
// a deployment chooses another (CDCQ_KAFKA_NAMESPACE).
const DefaultNamespace = "cdcq"

// ControlPlane names the Kafka topics and consumer groups of cdcq's control
// plane. Deployments that share a Kafka cluster keep apart by namespace.
type ControlPlane struct {
	// Commands is the control topic (<ns>.commands) and CommandsDead its
	// dead-letter topic (<ns>.commands.dead).
	Commands, CommandsDead string
	// Events is the events topic (<ns>.events) and EventsDead its
	// dead-letter topic (<ns>.events.dead).
	Events, EventsDead string
	// WorkerGroup (<ns>-worker) consumes Commands; ProjectorGroup
	// (<ns>-projector) consumes Events.
	WorkerGroup, ProjectorGroup string
}

// ControlPlaneNames returns the names in namespace ("" is the default).
func ControlPlaneNames(namespace string) ControlPlane {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return ControlPlane{
		Commands: namespace + ".commands", CommandsDead: namespace + ".commands.dead",
		Events: namespace + ".events", EventsDead: namespace + ".events.dead",
		WorkerGroup: namespace + "-worker", ProjectorGroup: namespace + "-projector",
	}
}

// ValidateNamespace reports why ns cannot prefix topic and group names:
// ASCII letters, digits, '_' and '-', at most 100 characters.
func ValidateNamespace(ns string) error {
	if ns == "" || len(ns) > 100 {
		return fmt.Errorf("must have 1 to 100 characters")
	}
	for i, r := range ns {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("has %q at position %d; use letters, digits, '_' and '-'", r, i+1)
		}
	}
	return nil
}

// ConnectorName is the Kafka Connect connector of an environment.
func ConnectorName(environmentID string) string { return "cdcq-" + environmentID }

// TopicPrefix is Debezium's topic.prefix: change topics are
// <prefix>.<schema>.<table>.
func TopicPrefix(environmentID string) string { return environmentID }

// ResultTopic carries the environment's cached-query results.
func ResultTopic(environmentID string) string { return environmentID }

// SlotName is the environment's logical replication slot. PostgreSQL allows
// only lower-case letters, digits and '_', so an id that needs changing to
// fit gets a hash suffix that keeps different ids apart ("a-b" and "a_b").
func SlotName(environmentID string) string {
	clean := strings.ToLower(strings.ReplaceAll(environmentID, "-", "_"))
	if clean == environmentID {
		return "cdcq_" + clean
	}
	sum := sha256.Sum256([]byte(environmentID))
	return "cdcq_" + clean + "_" + hex.EncodeToString(sum[:4])
}

// PublicationName is the environment's publication; it shares the slot's
// name so that the pair is easy to find and drop together.
func PublicationName(environmentID string) string { return SlotName(environmentID) }

// QueryID names a cached query. The same environment, schema and query text
// (compared after normalisation by the caller) give the same id, so a
// repeated create finds the query it created before.
func QueryID(environmentID, schema, normalizedQuery string) string {
	h := sha256.New()
	for _, part := range []string{environmentID, schema, normalizedQuery} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "q_" + hex.EncodeToString(h.Sum(nil)[:10])
}

// PipelineName names a cached query's stream-processing job.
func PipelineName(environmentID, queryID string) string {
	return "cdcq-" + environmentID + "-" + queryID
}
