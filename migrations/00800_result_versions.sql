-- Versions of cached query results, so that the API processes can keep
-- results in memory and follow every change (internal/serving).
--
-- Every write of a result takes one number from query_result_version. A
-- row written or removed by it carries that number: query_results.version
-- for rows, query_result_removals for rows that left the result. A reader
-- that holds a result at version c reads the changes since with
-- "version > c", as long as c >= query_progress.history_from: changes
-- before history_from may be gone without trace (a result replaced as a
-- whole, removals pruned), and a reader behind it reads the whole result
-- again. Writes to one query are serialised by the lock on its progress
-- row, taken before the number, so numbers commit in order per query.
--
-- query_progress.version is the number of the last write that changed
-- what a reader sees (rows, state, source position, error); the API uses
-- it as the result's position and ETag.
--
-- A trigger notifies channel cdcq_results with the query id on every
-- write of query_progress, which every results write makes; readers
-- LISTEN to it. The notification is sent when the transaction commits.

-- +goose Up
CREATE SEQUENCE query_result_version;

ALTER TABLE query_results ADD COLUMN version bigint NOT NULL DEFAULT 0;
CREATE INDEX query_results_by_version ON query_results (query_id, version);

CREATE TABLE query_result_removals (
    query_id text   NOT NULL,
    row_key  text   NOT NULL,
    version  bigint NOT NULL,
    -- Removals older than a minute are pruned; history_from moves past them.
    removed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (query_id, row_key)
);
CREATE INDEX query_result_removals_by_version ON query_result_removals (query_id, version);

ALTER TABLE query_progress
    ADD COLUMN version      bigint NOT NULL DEFAULT 0,
    ADD COLUMN history_from bigint NOT NULL DEFAULT 0;

-- +goose StatementBegin
CREATE FUNCTION notify_query_result() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify(TG_ARGV[0], OLD.query_id);
    ELSE
        PERFORM pg_notify(TG_ARGV[0], NEW.query_id);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER query_progress_notify AFTER INSERT OR UPDATE OR DELETE ON query_progress
    FOR EACH ROW EXECUTE FUNCTION notify_query_result('cdcq_results');

-- The cached query's projected job state (name, status) is served with its
-- result; the API keeps it in memory too, told of changes on channel
-- cdcq_queries.
CREATE TRIGGER cached_queries_notify AFTER INSERT OR UPDATE OR DELETE ON cached_queries
    FOR EACH ROW EXECUTE FUNCTION notify_query_result('cdcq_queries');

-- +goose Down
DROP TRIGGER cached_queries_notify ON cached_queries;
DROP TRIGGER query_progress_notify ON query_progress;
DROP FUNCTION notify_query_result();
ALTER TABLE query_progress DROP COLUMN history_from, DROP COLUMN version;
DROP TABLE query_result_removals;
DROP INDEX query_results_by_version;
ALTER TABLE query_results DROP COLUMN version;
DROP SEQUENCE query_result_version;
