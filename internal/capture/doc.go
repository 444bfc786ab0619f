// Package capture is cdcq's embedded change-capture engine: it reads a
// source PostgreSQL database with logical replication (pgoutput) and writes
// what Debezium's PostgreSQL connector writes, to the same topics, so that a
// consumer cannot tell the two apart.
//
// It owns:
//   - Engine, the handlers.Capture port: Ensure checks the source (wal_level,
//     replication privilege, server version, reachability), creates the
//     publication and registers the capture; Observe reports status,
//     snapshot progress, lag and the last error; Delete stops the capture
//     and drops its slot and publication.
//   - Supervisor, run by every worker: it holds a per-environment lease (a
//     session advisory lock on the job-state database) and runs the
//     captures it holds, so that each runs in exactly one worker and moves
//     to another when that worker dies.
//   - the runner of one capture: slot creation with an exported snapshot,
//     the initial snapshot in chunks, streaming, and confirming to the slot
//     only what Kafka acknowledged.
//   - the relation changes: every change of a captured table's
//     description (a table renamed or moved, a column added, dropped,
//     renamed or retyped, the replica identity or the primary key changed)
//     that pgoutput's Relation messages show, logged, kept and listed by
//     Engine.RelationChanges and in the status (schemachanges.go).
//   - the embedded_captures table of the job-state database
//     (migrations/00200_capture.sql), and capture_relations and
//     capture_schema_changes (migrations/00700_capture_schema_changes.sql).
//
// Record formats come from internal/dbzjson; slot inspection and dropping
// from internal/pgsource. Connection strings carry passwords: they are
// stored sealed (internal/secret), and errors and logs name a database only
// in its redacted form (connstr.Conn.Redacted).
//
// This package must not import http, projections or internal/service, and
// uses nothing of handlers beyond the port types in handlers/ports.go.
package capture
