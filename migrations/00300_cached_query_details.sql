-- What the status poller and the embedded engine need to observe or rebuild
-- a cached query: the Prisma schema it was compiled against, and the
-- engine's own words for its job's state and failure.

-- +goose Up
ALTER TABLE cached_queries
    ADD COLUMN schema_text    text NOT NULL DEFAULT '',
    ADD COLUMN job_state      text NOT NULL DEFAULT '',
    ADD COLUMN root_exception text NOT NULL DEFAULT '';
CREATE INDEX cached_queries_active ON cached_queries (query_id)
    WHERE status <> 'DELETED' AND engine <> 'none';

-- +goose Down
DROP INDEX cached_queries_active;
ALTER TABLE cached_queries
    DROP COLUMN root_exception,
    DROP COLUMN job_state,
    DROP COLUMN schema_text;
