// Package embedded runs cached queries in cdcq's own incremental engine
// (internal/ivm), on one machine or many: the Processor port's embedded
// implementation.
//
// Every worker runs a Supervisor. Each cached query whose engine is
// "embedded" runs in exactly one worker, the holder of its lease (a
// session-level advisory lock on the job-state database); when that worker
// dies, another takes the query over.
//
// A running query reads its sources' Debezium topics
// (<environmentId>.<schema>.<table>) from the beginning, so that a start
// rebuilds the state the engine needs; until it has read everything the
// topics held when it started, its progress says CATCHING_UP and the API
// serves no rows. Then it replaces the materialised result in one
// transaction and follows the topics, writing each batch's net result
// changes to Postgres (internal/results) together with the source position
// they reflect, and to the environment's result topic in the format the
// Flink job writes (internal/flinksql's package doc).
//
// This package must not import http or handlers' internals beyond the
// port types.
package embedded
