package embedded

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/capture"
	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/internal/results"
)

// freshness follows the capture's heartbeats (Debezium's topic
// __debezium-heartbeat.<prefix>, {"ts_ms": T}) and records how fresh the
// query's result is: once the runner has read a heartbeat for T, then its
// source topics up to the end offsets listed after that, and committed the
// result of those records, the result reflects every transaction the
// heartbeat vouches for (internal/capture/freshness.go: every commit
// acknowledged before T), and results.SetFreshThrough(T) says so.
type freshness struct {
	store   *results.Store
	log     *slog.Logger
	adm     *kadm.Client
	queryID string
	topic   string   // the heartbeat topic
	sources []string // the query's source topics

	seen    time.Time          // the newest heartbeat read
	pending time.Time          // the heartbeat waiting for ends to be read
	ends    kadm.ListedOffsets // the sources' ends listed after pending was read
	written time.Time          // the last time recorded
}

// followHeartbeats makes cl read the environment's heartbeat topic from its
// last record on.
func (r *runner) followHeartbeats(ctx context.Context, cl *kgo.Client, env, queryID string, sources []string) (*freshness, error) {
	f := &freshness{store: r.results, log: r.logger, adm: kadm.NewClient(cl), queryID: queryID,
		topic: capture.HeartbeatTopicPrefix + names.TopicPrefix(env), sources: sources}
	if err := kafkabus.EnsureTopics(ctx, r.kafka, kafkabus.Topic{Name: f.topic, Partitions: 1, Configs: kafkabus.HeartbeatTopicConfigs()}); err != nil {
		return nil, err
	}
	ends, err := endOffsets(ctx, f.adm, f.topic)
	if err != nil {
		return nil, err
	}
	starts, err := f.adm.ListStartOffsets(ctx, f.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %s: %w", f.topic, err)
	}
	// The last record, or the end of a partition whose records are all
	// gone: cl does not reset an offset out of range (the runner reads
	// its sources so), and the offset before the end of an emptied
	// partition is below its start.
	from := map[string]map[int32]kgo.Offset{f.topic: {}}
	ends.Each(func(o kadm.ListedOffset) {
		at := max(o.Offset-1, 0)
		if s, ok := starts.Lookup(f.topic, o.Partition); ok && s.Offset > at {
			at = s.Offset
		}
		from[f.topic][o.Partition] = kgo.NewOffset().At(at)
	})
	cl.AddConsumePartitions(from)
	return f, nil
}

// outOfRange is told of a partition read at an offset out of its range;
// for a heartbeat partition it reads the partition again from its end and
// says so. Only the newest heartbeat matters, so heartbeats deleted under
// the reader are no loss, unlike source records (the run ends then).
func (f *freshness) outOfRange(cl *kgo.Client, topic string, partition int32) bool {
	if topic != f.topic {
		return false
	}
	f.log.Info("cached query: heartbeat partition read out of its range; reading it from its end", "query_id", f.queryID, "topic", topic, "partition", partition)
	cl.RemoveConsumePartitions(map[string][]int32{topic: {partition}})
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().AtEnd()}})
	return true
}

// note reads a fetch's heartbeat records.
func (f *freshness) note(recs []*kgo.Record) {
	for _, rec := range recs {
		if t, ok := heartbeatTime(rec.Value); ok && t.After(f.seen) {
			f.seen = t
		}
	}
}

// heartbeatTime reads a heartbeat's ts_ms, written by cdcq's capture or by
// Debezium (with or without the JSON converter's schema envelope).
func heartbeatTime(value []byte) (time.Time, bool) {
	var v struct {
		TsMs    *int64 `json:"ts_ms"`
		Payload *struct {
			TsMs *int64 `json:"ts_ms"`
		} `json:"payload"`
	}
	if json.Unmarshal(value, &v) != nil {
		return time.Time{}, false
	}
	ms := v.TsMs
	if ms == nil && v.Payload != nil {
		ms = v.Payload.TsMs
	}
	if ms == nil || *ms <= 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(*ms).UTC(), true
}

// update is called, while the query is live, when the result in Postgres
// reflects every record up to positions: it records the pending heartbeat
// when positions reached the ends listed after it, and takes up the newest
// heartbeat read.
func (f *freshness) update(ctx context.Context, positions map[string]map[int32]int64) error {
	for range 2 {
		if f.pending.IsZero() {
			if !f.seen.After(f.written) {
				return nil
			}
			ends, err := endOffsets(ctx, f.adm, f.sources...)
			if err != nil {
				// Tried again after the next poll; meanwhile the time
				// recorded stays where it is.
				f.log.Warn("cached query: list end offsets for its fresh-through time", "query_id", f.queryID, "error", err)
				return nil
			}
			f.pending, f.ends = f.seen, ends
		}
		if !reachedEnds(f.ends, positions) {
			return nil
		}
		if err := f.store.SetFreshThrough(ctx, f.queryID, f.pending); err != nil {
			return err
		}
		f.written, f.pending, f.ends = f.pending, time.Time{}, nil
	}
	return nil
}
