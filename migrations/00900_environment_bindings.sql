-- The database each environment is bound to (internal/bindings): the
-- connection string it was created with, or the one that last rotated its
-- password, sealed for the environment (internal/secret). Workers act on
-- this one, never on a command's, and refuse a command that names another
-- database. Written before the capture is touched, removed after a delete.

-- +goose Up
CREATE TABLE environment_bindings (
    environment_id    text        PRIMARY KEY,
    connection_sealed text        NOT NULL,
    bound_at          timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Environments created before bindings existed are bound to the database
-- their last request named.
INSERT INTO environment_bindings (environment_id, connection_sealed, bound_at, updated_at)
SELECT environment_id, connection_sealed, created_at, updated_at
FROM connections
WHERE status <> 'DELETED' AND connection_sealed <> '';

-- +goose Down
DROP TABLE environment_bindings;
