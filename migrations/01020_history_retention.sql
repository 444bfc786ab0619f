-- Job history is kept for CDCQ_HISTORY_RETENTION (internal/history): every
-- worker deletes older rows of job_events, rejected_commands and
-- handled_commands in small batches. These indexes let it find them by
-- age without reading the tables (handled_commands has one on handled_at
-- already).

-- +goose Up
CREATE INDEX job_events_recorded_at_idx ON job_events (recorded_at);
CREATE INDEX rejected_commands_at_idx ON rejected_commands (at);

-- +goose Down
DROP INDEX rejected_commands_at_idx;
DROP INDEX job_events_recorded_at_idx;
