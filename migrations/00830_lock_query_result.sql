-- One round trip for a result write (internal/results): the writer sends
-- its statements in one pipeline, which PostgreSQL runs as one implicit
-- transaction, the first being this function. It locks the query's
-- progress row until the transaction ends, so that one query's writes (and
-- the versions they take after it) are serialised, and refuses a write to
-- a query that was deleted (SQLSTATE CQ001), or deleted and created again
-- since the writer's last write (continues, CQ001 too), or stale (CQ002):
-- the error aborts the whole transaction.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION lock_query_result(p_query_id text, p_continues boolean) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    s text;
BEGIN
    SELECT state INTO s FROM query_progress WHERE query_id = p_query_id FOR UPDATE;
    IF NOT FOUND THEN
        IF p_continues THEN
            RAISE EXCEPTION 'cached query % was deleted and created again', p_query_id USING ERRCODE = 'CQ001';
        END IF;
        RETURN '';
    END IF;
    IF s = 'DELETED' THEN
        RAISE EXCEPTION 'cached query % was deleted', p_query_id USING ERRCODE = 'CQ001';
    END IF;
    IF s = 'STALE' THEN
        RAISE EXCEPTION 'cached query % is stale: its source''s schema changed', p_query_id USING ERRCODE = 'CQ002';
    END IF;
    RETURN s;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION lock_query_result(text, boolean);
