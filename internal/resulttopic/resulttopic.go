// Package resulttopic reads environments' result topics (names.ResultTopic):
// the upsert records both engines write for every cached query of an
// environment, keyed by {"query_id": ..., "group": {...}} (the format is
// in internal/flinksql's package doc).
//
// It owns two things: the Follower, which materialises the results of the
// queries an outside engine (Flink) maintains into the job-state database
// (internal/results), so that the API serves them as it serves the
// embedded engine's; and Clear, which removes one query's rows from the
// topic with tombstones.
//
// This package must not import handlers, http or any engine.
package resulttopic

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/names"
)

// QueryIDOf reads the query id of a result record's key.
func QueryIDOf(key []byte) (string, bool) {
	var k struct {
		QueryID string `json:"query_id"`
	}
	if json.Unmarshal(key, &k) != nil || k.QueryID == "" {
		return "", false
	}
	return k.QueryID, true
}

// Clear writes a tombstone for every key of queryID whose latest record in
// the environment's result topic is not one already, so that the query's
// rows are gone for every reader of the topic. Idempotent.
func Clear(ctx context.Context, kafka kafkasec.Cluster, environmentID, queryID string) error {
	topic := names.ResultTopic(environmentID)
	live := map[string]bool{}
	err := kafkabus.Scan(ctx, kafka, topic, func(r *kgo.Record) {
		if id, ok := QueryIDOf(r.Key); !ok || id != queryID {
			return
		}
		live[string(r.Key)] = r.Value != nil
	})
	if err != nil {
		return fmt.Errorf("clear results of %s: %w", queryID, err)
	}
	var recs []*kgo.Record
	for k, alive := range live {
		if alive {
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(k)})
		}
	}
	if len(recs) == 0 {
		return nil
	}
	cl, err := kafka.NewClient(kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("clear results of %s: tombstone %d keys in %s: %w", queryID, len(recs), topic, err)
	}
	return nil
}

// pollTimeout bounds one wait for records, so that a follower notices new
// queries and writes progress while its topic is quiet.
const pollTimeout = time.Second

// RowsBefore reads one query's rows as the environment's result topic held
// them before the first record written at or after before (by the record
// timestamps, which the engine's producer sets when it writes): the
// result as it was then. Positions are the offsets where reading stopped,
// per partition.
func RowsBefore(ctx context.Context, kafka kafkasec.Cluster, environmentID, queryID string, before time.Time) (map[string][]byte, map[int32]int64, error) {
	topic := names.ResultTopic(environmentID)
	rows := map[string][]byte{}
	positions := map[int32]int64{}
	stopped := map[int32]bool{}
	err := kafkabus.Scan(ctx, kafka, topic, func(r *kgo.Record) {
		if stopped[r.Partition] {
			return
		}
		if !r.Timestamp.Before(before) {
			stopped[r.Partition] = true
			return
		}
		positions[r.Partition] = r.Offset + 1
		if id, ok := QueryIDOf(r.Key); !ok || id != queryID {
			return
		}
		if r.Value == nil {
			delete(rows, string(r.Key))
		} else {
			rows[string(r.Key)] = r.Value
		}
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read results of %s before %s: %w", queryID, before.Format(time.RFC3339Nano), err)
	}
	return rows, positions, nil
}
