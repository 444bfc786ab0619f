-- Read model folded from the events topic (cdcq.events) by projections.Store.
-- Connection strings are stored only sealed (AES-GCM via internal/secret) or
-- with the password redacted; never in plain text.

-- +goose Up
CREATE TABLE connections (
    environment_id      text        PRIMARY KEY,
    connector_name      text        NOT NULL DEFAULT '',
    slot_name           text        NOT NULL DEFAULT '',
    publication_name    text        NOT NULL DEFAULT '',
    engine              text        NOT NULL DEFAULT '',
    connection_redacted text        NOT NULL DEFAULT '',
    connection_sealed   text        NOT NULL DEFAULT '',
    status              text        NOT NULL
        CHECK (status IN ('PENDING', 'RUNNING', 'PAUSED', 'FAILED', 'DELETING', 'DELETED')),
    reason              text        NOT NULL DEFAULT '',
    -- Last observation (jobs.ConnectorState, jobs.SlotState); NULL until observed.
    connector           jsonb,
    slot                jsonb,
    -- Command that last (re)requested the connection, to recognise redeliveries.
    last_command_id     text        NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    observed_at         timestamptz
);

-- The status poller reads live captures only.
CREATE INDEX connections_active_idx ON connections (environment_id)
    WHERE status <> 'DELETED' AND engine <> 'none';

CREATE TABLE cached_queries (
    query_id        text        PRIMARY KEY,
    environment_id  text        NOT NULL,
    pipeline_name   text        NOT NULL DEFAULT '',
    engine          text        NOT NULL DEFAULT '',
    sql_query       text        NOT NULL DEFAULT '',
    status          text        NOT NULL
        CHECK (status IN ('PENDING', 'RUNNING', 'PAUSED', 'FAILED', 'DELETING', 'DELETED')),
    reason          text        NOT NULL DEFAULT '',
    job_id          text        NOT NULL DEFAULT '',
    last_command_id text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

-- An environment's queries, listed in creation order and deleted together.
CREATE INDEX cached_queries_environment_idx ON cached_queries (environment_id, created_at, query_id);

-- Append-only history of every event applied; the unique event_id makes
-- applying an event exactly-once.
CREATE TABLE job_events (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       text        NOT NULL UNIQUE,
    environment_id text        NOT NULL DEFAULT '',
    name           text        NOT NULL,
    command_id     text        NOT NULL DEFAULT '',
    payload        jsonb       NOT NULL,
    at             timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX job_events_environment_idx ON job_events (environment_id, id DESC);

-- Commands parked on the dead-letter topic. environment_id may name an
-- environment with no connection row, or be empty when the command did not
-- say.
CREATE TABLE rejected_commands (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       text        NOT NULL UNIQUE,
    command_id     text        NOT NULL DEFAULT '',
    environment_id text        NOT NULL DEFAULT '',
    command_name   text        NOT NULL DEFAULT '',
    reason         text        NOT NULL,
    at             timestamptz NOT NULL
);

CREATE INDEX rejected_commands_environment_idx ON rejected_commands (environment_id, at DESC, id DESC);

-- +goose Down
DROP TABLE rejected_commands;
DROP TABLE job_events;
DROP TABLE cached_queries;
DROP TABLE connections;
