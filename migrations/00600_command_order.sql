-- The order of each environment's commands, so that a late event of an
-- older command never overwrites the state a newer command set.
--
-- Workers number an environment's commands 1, 2, 3, ... in the order they
-- take them up (internal/inbox), which is the order of the control topic:
-- its key is the environmentId. Every event carries the number of the
-- command it belongs to (events.Meta.CommandSeq), and the read model keeps
-- the number of the command each row reflects (command_seq; 0 for rows
-- and events from before this migration).

-- +goose Up
CREATE TABLE command_sequence (
    environment_id text   PRIMARY KEY,
    last_seq       bigint NOT NULL
);

-- One number per command id: a command carried out again (a retry, a
-- redelivery after a rebalance) keeps its number.
CREATE TABLE command_order (
    command_id     text        PRIMARY KEY,
    environment_id text        NOT NULL,
    seq            bigint      NOT NULL,
    assigned_at    timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE connections ADD COLUMN command_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE cached_queries ADD COLUMN command_seq bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE cached_queries DROP COLUMN command_seq;
ALTER TABLE connections DROP COLUMN command_seq;
DROP TABLE command_order;
DROP TABLE command_sequence;
