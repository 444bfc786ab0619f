-- What the embedded capture (internal/capture) knows about the description
-- of each table it captures, and the changes of those descriptions it saw:
-- pgoutput sends a new Relation message after a DDL (a table renamed or
-- moved to another schema, a column added, dropped, renamed or given
-- another type, the replica identity or the primary key changed).
--
-- capture_relations keeps the last description per table, so that a
-- capture that restarts compares the first description it reads with the
-- one it had, and records what changed while it was down.
-- capture_schema_changes is the log of the changes; checkJobStatus shows
-- the most recent, and the query engines read it to act on them.

-- +goose Up
CREATE TABLE capture_relations (
    environment_id text        NOT NULL,
    -- pg_class.oid of the table in the source database.
    relation_oid   bigint      NOT NULL,
    -- The source position the description was read at: that of the
    -- change pgoutput sent it with, or the snapshot's for a table the
    -- snapshot copied.
    lsn            bigint      NOT NULL,
    -- capture.TableDescription as JSON.
    description    jsonb       NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment_id, relation_oid)
);

CREATE TABLE capture_schema_changes (
    id              bigserial   PRIMARY KEY,
    environment_id  text        NOT NULL,
    relation_oid    bigint      NOT NULL,
    -- The source position from which records carry the new description:
    -- the table's first change after the DDL, which pgoutput sends the new
    -- description with.
    lsn             bigint      NOT NULL,
    old_schema      text        NOT NULL,
    old_table       text        NOT NULL,
    new_schema      text        NOT NULL,
    new_table       text        NOT NULL,
    -- In words: "column region renamed to area; column total type
    -- numeric(12,2) -> numeric(12,3)".
    description     text        NOT NULL,
    -- capture.RelationDiff list, and the descriptions before and after.
    changes         jsonb       NOT NULL,
    old_description jsonb       NOT NULL,
    new_description jsonb       NOT NULL,
    changed_at      timestamptz NOT NULL DEFAULT now(),
    -- A capture that replays WAL after a restart sees the same change at
    -- the same position again.
    UNIQUE (environment_id, relation_oid, lsn)
);

CREATE INDEX capture_schema_changes_by_lsn ON capture_schema_changes (environment_id, lsn);

-- +goose Down
DROP TABLE capture_schema_changes;
DROP TABLE capture_relations;
