-- Whether a STALE result's rows are a correct result: true when the query
-- was LIVE when its source's schema changed (the rows are then the last
-- correct state), false when it was still catching up (the rows then are
-- not a result; the API serves none). Writes other than MarkStale set it
-- (internal/results).

-- +goose Up
ALTER TABLE query_progress ADD COLUMN rows_correct boolean NOT NULL DEFAULT true;

-- +goose Down
ALTER TABLE query_progress DROP COLUMN rows_correct;
