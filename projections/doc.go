// Package projections owns cdcq's read model: it folds the events published
// on the events topic (cdcq.events) into the Postgres tables created by
// package migrations, exactly once per event id, and answers the reads that
// checkJobStatus, the result endpoints and the status poller make. Each row
// remembers the command it reflects (its id and its number among the
// environment's commands); an event of an older command changes nothing,
// and within one command a status only moves forward (the rules are in the
// events package doc).
//
// Connection strings reach this package only sealed (internal/secret) or with
// the password redacted; it stores those and nothing more.
//
// This package must not import handlers or http.
package projections
