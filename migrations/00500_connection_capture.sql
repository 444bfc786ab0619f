-- The whole last observation of a capture, beyond connector and slot: the
-- embedded capture's snapshot progress, streaming lag, last error and
-- warnings (jobs.CaptureStatus).

-- +goose Up
ALTER TABLE connections ADD COLUMN capture jsonb;

-- +goose Down
ALTER TABLE connections DROP COLUMN capture;
