// Package flink is a client for the two REST APIs through which cdcq runs
// cached queries on Apache Flink:
//
//   - the SQL Gateway's REST endpoint (Gateway): open a session, execute
//     statements one by one, wait for each operation, read its result (the
//     job id of an INSERT), close the session;
//   - the JobManager's REST API (JobManager): list jobs with their names
//     and states, read a job's exception history, cancel or stop a job.
//
// Every error it returns says whether retrying can help (IsRetriable), so
// callers do not guess from status codes. A statement that Flink rejects
// (its operation ends in ERROR) comes back as an *OperationError whose
// Reason is the meaningful line of the Java exception chain Flink sent
// (see Summarize) and whose Trace is the whole chain.
//
// Paths and bodies follow Flink's published OpenAPI specifications
// (rest_v*_sql_gateway.yml, rest_v1_dispatcher.yml) and the serializers
// behind them; the fake in flinkfake answers the same way and pins the
// wire format in its own tests.
//
// Requests carry SQL text that may hold Kafka client credentials
// ('properties.sasl.jaas.config'): the client never puts a request body in
// an error.
//
// This package must not import other cdcq packages.
package flink
