-- command_order (migration 00600) is pruned with the rest of the job
-- history (internal/history): rows older than CDCQ_HISTORY_RETENTION go,
-- but each environment's highest number. This index lets the pruner find
-- them by age without reading the table.

-- +goose Up
CREATE INDEX command_order_assigned_at_idx ON command_order (assigned_at);

-- +goose Down
DROP INDEX command_order_assigned_at_idx;
