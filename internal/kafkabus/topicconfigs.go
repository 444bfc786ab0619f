package kafkabus

import (
	"strconv"
	"time"
)

// InfiniteRetention keeps a change topic's records for ever
// (retention.ms=-1), the default of CDCQ_CHANGE_TOPIC_RETENTION.
const InfiniteRetention time.Duration = -1

// ChangeTopicConfigs are the settings cdcq creates change topics with, as
// the embedded capture, the embedded engine (for a table never written
// yet) and Debezium's connector (topic.creation.default.*) do.
//
// cleanup.policy is delete, never compact: a TRUNCATE record has no key,
// and a compacted topic refuses keyless records. retention is
// how long records stay: a query rebuilds its state by reading the change
// topics (from the start, or from its checkpoint), so a retention shorter
// than what a rebuild needs makes the query read a new snapshot instead.
// InfiniteRetention (or any negative duration) keeps every record.
func ChangeTopicConfigs(retention time.Duration) map[string]*string {
	ms := int64(-1)
	if retention > 0 {
		ms = max(retention.Milliseconds(), 1)
	}
	return map[string]*string{
		"cleanup.policy": ptr("delete"),
		"retention.ms":   ptr(strconv.FormatInt(ms, 10)),
	}
}

// ResultTopicConfigs are the settings of the result topics: compacted,
// because a result record is keyed by query and group and only a key's
// last record (or its tombstone) matters to whoever reads the topic from
// its start (the follower of a Flink query, a consumer of the results).
func ResultTopicConfigs() map[string]*string {
	return map[string]*string{"cleanup.policy": ptr("compact")}
}

// HeartbeatTopicConfigs are the settings of the heartbeat topics
// (__debezium-heartbeat.<prefix>): compacted, because every record has the
// same key and only the newest says how fresh the change topics are; with
// delete and no retention a heartbeat a second would grow without end.
func HeartbeatTopicConfigs() map[string]*string {
	return map[string]*string{"cleanup.policy": ptr("compact")}
}

func ptr(s string) *string { return &s }
