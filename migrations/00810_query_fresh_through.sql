-- How fresh a cached query's result is, for the API's lag (internal/results,
-- fresh.go; written by the embedded engine, internal/embedded).
--
-- fresh_through = T means: the result rows committed in query_results
-- reflect every source transaction whose commit was acknowledged to its
-- client before T. T is on the clock of the worker that runs the capture;
-- it comes from the capture's heartbeat records
-- (__debezium-heartbeat.<environmentId>, {"ts_ms": T}), which the embedded
-- capture writes about every second, and only once Kafka acknowledged every
-- change committed before T; the engine sets fresh_through = T after it
-- read that heartbeat and then its source topics to the ends they had when
-- it read it, and committed the result of those records. NULL: never known.
--
-- It only moves forward, and only while the query is LIVE. On a quiet
-- source it keeps advancing (lag now() - fresh_through stays below about
-- one heartbeat period plus a moment); a capture or an engine that is stuck
-- (replication connection or Kafka blocked, a loop that hangs) stops it, so
-- the lag grows. Over Debezium's topics T is Debezium's heartbeat time
-- (heartbeat.interval.ms, 1 s in cdcq's connector config), which Debezium
-- does not order after the changes before it: there it is an estimate.
--
-- Writing it changes no row, state or position and takes no result
-- version; the notify trigger on query_progress fires as for any write.

-- +goose Up
ALTER TABLE query_progress ADD COLUMN fresh_through timestamptz;

-- +goose Down
ALTER TABLE query_progress DROP COLUMN fresh_through;
