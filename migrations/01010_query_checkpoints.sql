-- Checkpoints of the embedded engine's cached queries (internal/results,
-- checkpoint.go; written by internal/embedded): the engine's state (every
-- source row it keeps and its snapshot bookkeeping, internal/ivm
-- WriteState), zstd-compressed and cut into chunks, with the change-topic
-- positions it reflects. After a restart the engine restores it and reads
-- the topics from those positions instead of from their start.
--
-- One checkpoint per query, the newest: a new one replaces the old in one
-- transaction, so a reader sees a whole checkpoint or the one before.
-- fingerprint names the query text, schema, compiled plan and state format
-- the checkpoint was written for; one that differs is never restored.
-- Deleting or resetting a query's result deletes its checkpoint.

-- +goose Up
CREATE TABLE query_checkpoints (
    query_id    text        PRIMARY KEY,
    fingerprint text        NOT NULL,
    -- {"<topic>": {"<partition>": <next offset to read>}}
    positions   jsonb       NOT NULL,
    -- {"<topic>": {"<partition>": <largest capture lease epoch read>}}:
    -- a restored runner still drops a deposed capture's records
    -- (internal/embedded, captureEpochs).
    capture_epochs jsonb    NOT NULL DEFAULT '{}',
    -- Source records the state reflects, counted since its last rebuild
    -- from the topics' start (for people).
    events      bigint      NOT NULL,
    state_bytes bigint      NOT NULL, -- uncompressed
    chunks      integer     NOT NULL,
    written_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE query_checkpoint_chunks (
    query_id text    NOT NULL REFERENCES query_checkpoints ON DELETE CASCADE,
    seq      integer NOT NULL,
    data     bytea   NOT NULL,
    PRIMARY KEY (query_id, seq)
);

-- +goose Down
DROP TABLE query_checkpoint_chunks;
DROP TABLE query_checkpoints;
