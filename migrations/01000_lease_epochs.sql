-- Fencing of leased work (internal/leader, fence.go). Each take of a lease
-- draws a new epoch from one sequence, larger than every earlier one, and
-- records it here; a write of leased work first runs check_lease_epoch
-- with the epoch its worker drew, in the write's transaction. A worker
-- that lost its lease (paused, cut off, its session ended by the server)
-- and wakes up to write finds a newer epoch and its write is refused
-- (SQLSTATE CQ003), whatever it still believes.

-- +goose Up
CREATE SEQUENCE lease_epoch;

CREATE TABLE lease_epochs (
    namespace text NOT NULL,
    id        text NOT NULL,
    epoch     bigint NOT NULL,
    holder    text NOT NULL DEFAULT '',
    taken_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, id)
);

-- +goose StatementBegin
-- The share lock makes a successor's take (an UPDATE of the row) wait
-- until the checked write commits: a write either lands before the lease
-- moved or is refused. No row means the work was given up: refused too.
CREATE FUNCTION check_lease_epoch(p_namespace text, p_id text, p_epoch bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    current bigint;
BEGIN
    SELECT epoch INTO current FROM lease_epochs WHERE namespace = p_namespace AND id = p_id FOR SHARE;
    IF current IS DISTINCT FROM p_epoch THEN
        RAISE EXCEPTION 'lease %/% was taken over (epoch %, this writer holds %)', p_namespace, p_id,
            coalesce(current::text, 'none'), p_epoch USING ERRCODE = 'CQ003';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION check_lease_epoch(text, text, bigint);
DROP TABLE lease_epochs;
DROP SEQUENCE lease_epoch;
