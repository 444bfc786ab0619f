-- Results of cached queries run by the embedded engine, and how far each
-- query has read its sources (internal/results). Rows and progress are
-- written in one transaction, so a reader sees rows together with the
-- source position they reflect.

-- +goose Up
CREATE TABLE query_results (
    query_id text  NOT NULL,
    -- The result record's key (query_id and the group columns) as canonical
    -- JSON text; the row is the record's value.
    row_key  text  NOT NULL,
    row      jsonb NOT NULL,
    PRIMARY KEY (query_id, row_key)
);

CREATE TABLE query_progress (
    query_id       text        PRIMARY KEY,
    -- CATCHING_UP until the engine has read everything its sources held
    -- when it started; LIVE after.
    state          text        NOT NULL,
    -- Offsets read, {"<topic>": {"<partition>": <next offset>}}.
    positions      jsonb       NOT NULL DEFAULT '{}',
    -- The newest source change the rows reflect: its lsn and commit time.
    source_lsn     bigint      NOT NULL DEFAULT 0,
    source_ts      timestamptz,
    events_applied bigint      NOT NULL DEFAULT 0,
    last_error     text        NOT NULL DEFAULT '',
    -- Which worker runs the query.
    owner          text        NOT NULL DEFAULT '',
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE query_progress;
DROP TABLE query_results;
