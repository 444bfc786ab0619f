// Package httpapi owns cdcq's HTTP API: the four POST endpoints of the
// original API (createDatabaseConnection, createCachedQuery,
// deleteDatabaseConnection, checkJobStatus), the read endpoints
// GET /connections/{environmentId} and GET /cachedQueries/{id}, and
// GET /healthz. It validates requests, seals connection strings, publishes
// commands through a CommandPublisher and answers status reads from a
// StatusReader; both interfaces are declared here, where they are consumed.
//
// Every POST endpoint takes application/x-www-form-urlencoded (as curl -d
// sends it) or application/json. In a form body a connection string must be
// URL-encoded when it contains '&', '+', '%' or '#': an unencoded '&' (as in
// ?sslmode=disable&connect_timeout=5) splits the form into extra fields, and
// '+' turns into a space. Send such strings with
//
//	curl --data-urlencode 'connectionString=postgres://u:p@host/db?sslmode=disable&connect_timeout=5' \
//	     --data-urlencode 'environmentId=env1' http://localhost:7000/createDatabaseConnection
//
// A form body with fields the endpoint does not take is refused (422
// unknown_field) for that reason, so a split string is never half-used.
//
// Connection strings are never logged and never returned: responses carry
// the redacted form, published commands the sealed one.
//
// This package must not import handlers or the internal engine packages
// (capture, processor, Kafka or Postgres clients); it reaches them only
// through the interfaces it declares.
package httpapi
