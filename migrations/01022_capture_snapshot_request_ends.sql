-- Where the change topics ended when the last new snapshot was requested
-- (internal/capture, RequestSnapshot): {"<topic>": {"<partition>":
-- <end offset>}}, of the requesting query's topics; kept once the snapshot
-- completes. Every snapshot completed since the request wrote its records
-- after those offsets, so while a partition's log start is not above its
-- offset that snapshot is whole in the topics, and a query that finds
-- records lost again (it restarted before it went LIVE) reads it instead
-- of asking for yet another.

-- +goose Up
ALTER TABLE embedded_captures ADD COLUMN snapshot_requested_ends jsonb;

-- +goose Down
ALTER TABLE embedded_captures DROP COLUMN snapshot_requested_ends;
