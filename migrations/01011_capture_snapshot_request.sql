-- A request for a new snapshot of an embedded capture (internal/capture,
-- RequestSnapshot): a cached query whose change-topic records were deleted
-- by the broker's retention before it read them asks for one, so that its
-- result is whole again. The request clears snapshot_lsn and bumps version
-- in the same statement, so a running capture restarts and takes a new
-- snapshot as after a crash during one, and the queries of the
-- environment wait for it (the snapshot is not done). snapshot_requested
-- says who asked and why, until that snapshot completes.

-- +goose Up
ALTER TABLE embedded_captures ADD COLUMN snapshot_requested text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE embedded_captures DROP COLUMN snapshot_requested;
