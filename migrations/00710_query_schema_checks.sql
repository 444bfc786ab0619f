-- When the schema watcher (handlers.SchemaWatcher) last found the source
-- tables of a cached query intact: the time its round began. The follower
-- of an outside engine's results (Flink) serves only what the engine wrote
-- before then, so that a result computed from records a DDL made it
-- misread is never shown as current.

-- +goose Up
CREATE TABLE query_schema_checks (
    query_id   text        PRIMARY KEY,
    clean_at   timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE query_schema_checks;
