-- How far a cached query's first complete state is (internal/results
-- Progress.Hydration): whether the capture's initial snapshot of the
-- tables it reads is complete, and the rows captured and applied so far.
-- NULL once the result is LIVE.

-- +goose Up
ALTER TABLE query_progress ADD COLUMN hydration jsonb;

-- +goose Down
ALTER TABLE query_progress DROP COLUMN hydration;
