-- State of cdcq's embedded capture engine (internal/capture), one row per
-- environment: what to capture (the connection string sealed with
-- internal/secret, never in plain text), whether its initial snapshot is
-- complete, and what the worker running it last reported, so that Observe
-- in any worker can answer checkJobStatus.

-- +goose Up
CREATE TABLE embedded_captures (
    environment_id    text        PRIMARY KEY,
    connection_sealed text        NOT NULL,
    slot_name         text        NOT NULL,
    publication_name  text        NOT NULL,
    topic_prefix      text        NOT NULL,
    -- Set by Delete. A runner creates nothing in the source database for a
    -- deleted capture: it checks this row under FOR SHARE while it does.
    deleted           boolean     NOT NULL DEFAULT false,
    -- Bumped whenever Ensure changes the row, so a running capture restarts
    -- with the new settings.
    version           bigint      NOT NULL DEFAULT 1,
    -- The slot's consistent point once the initial snapshot was copied and
    -- acknowledged by Kafka; NULL while a snapshot is still to be taken.
    snapshot_lsn      bigint,
    -- starting, snapshot, streaming, retrying (or '' before a worker ran it).
    phase             text        NOT NULL DEFAULT '',
    worker            text        NOT NULL DEFAULT '',
    snapshot          jsonb,
    lag               jsonb,
    warnings          jsonb,
    last_error        text        NOT NULL DEFAULT '',
    last_error_terminal boolean   NOT NULL DEFAULT false,
    -- Written by the running worker about once a second.
    heartbeat_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE embedded_captures;
