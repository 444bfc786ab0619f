-- Commands the workers have carried out, so that a command redelivered after
-- a consumer-group rebalance is not carried out twice (internal/inbox).

-- +goose Up
CREATE TABLE handled_commands (
    command_id     text        PRIMARY KEY,
    command_name   text        NOT NULL,
    environment_id text        NOT NULL,
    handled_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX handled_commands_handled_at ON handled_commands (handled_at);

-- +goose Down
DROP TABLE handled_commands;
