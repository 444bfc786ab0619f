-- The database each environment is bound to (internal/bindings): the
-- connection string it was created with, or the one that last rotated its
-- password, sealed for the environment (internal/secret). Workers act on
-- this one, never on a command's, and refuse a command that names another
-- database. Written before the capture is touched, removed after a delete.
-- established is set once the capture engine took the environment up; a
-- binding that is not (its create failed before anything was made in the
-- source) gives way to a create naming another database.

-- +goose Up
CREATE TABLE environment_bindings (
    environment_id    text        PRIMARY KEY,
    connection_sealed text        NOT NULL,
    established       boolean     NOT NULL DEFAULT false,
    bound_at          timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Environments created before bindings existed are bound to the database
-- their last request named.
INSERT INTO environment_bindings (environment_id, connection_sealed, established, bound_at, updated_at)
SELECT environment_id, connection_sealed, true, created_at, updated_at
FROM connections
WHERE status <> 'DELETED' AND connection_sealed <> '';

-- +goose Down
DROP TABLE environment_bindings;
