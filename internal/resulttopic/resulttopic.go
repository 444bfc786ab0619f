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
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

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
func Clear(ctx context.Context, brokers []string, environmentID, queryID string) error {
	topic := names.ResultTopic(environmentID)
	live := map[string]bool{}
	err := scan(ctx, brokers, topic, func(r *kgo.Record) {
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
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("clear results of %s: tombstone %d keys in %s: %w", queryID, len(recs), topic, err)
	}
	return nil
}

// scan calls fn for every record of topic, from the start to the end
// offsets it has when scan begins. A topic that does not exist is empty.
func scan(ctx context.Context, brokers []string, topic string, fn func(*kgo.Record)) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		start, ok := starts.Lookup(topic, o.Partition)
		if o.Err == nil && ok && start.Err == nil && o.Offset > start.Offset {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil
	}
	offsets := map[string]map[int32]kgo.Offset{topic: {}}
	for p := range want {
		offsets[topic][p] = kgo.NewOffset().AtStart()
	}
	cl.AddConsumePartitions(offsets)
	for len(want) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, fe := range fetches.Errors() {
			if !errors.Is(fe.Err, context.Canceled) {
				return fmt.Errorf("read %s: %w", topic, fe.Err)
			}
		}
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			end, ok := want[fp.Partition]
			if !ok {
				return
			}
			for _, r := range fp.Records {
				if r.Offset >= end {
					break
				}
				fn(r)
			}
			if n := len(fp.Records); n > 0 && fp.Records[n-1].Offset+1 >= end {
				delete(want, fp.Partition)
			}
		})
	}
	return nil
}

// pollTimeout bounds one wait for records, so that a follower notices new
// queries and writes progress while its topic is quiet.
const pollTimeout = time.Second
