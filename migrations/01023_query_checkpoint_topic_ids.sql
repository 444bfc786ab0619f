-- The Kafka topic IDs of the topics a checkpoint's positions are of
-- (internal/embedded): {"<topic>": "<topic id>"}. A topic deleted and
-- created again under the same name gets a new ID, so a checkpoint of the
-- old topic is not restored, even when the new topic already holds more
-- records than the checkpoint's offsets. '{}' (checkpoints written before,
-- or a broker without topic IDs): not checked.

-- +goose Up
ALTER TABLE query_checkpoints ADD COLUMN topic_ids jsonb NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE query_checkpoints DROP COLUMN topic_ids;
