// Package kafkatopics does the Kafka work the Flink processor needs
// (processor.Topics): finding where a job's sources start after a TRUNCATE,
// which Flink's debezium-json format cannot apply, and clearing a query's
// rows from its environment's result topic.
//
// This package must not import handlers, http or any engine.
package kafkatopics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/resulttopic"
)

// Topics reaches Kafka with franz-go.
type Topics struct {
	brokers []string
}

// New refuses an empty broker list.
func New(brokers []string) (*Topics, error) {
	if len(brokers) == 0 {
		return nil, errors.New("kafkatopics: no brokers")
	}
	return &Topics{brokers: brokers}, nil
}

// TruncateStarts returns, for each change topic that holds a truncate
// event (Debezium's op "t"), the offset after its last one: a table's
// state begins anew there, so a job that starts there needs no truncate.
// Topics without a truncate, or that do not exist, are left out.
//
// A truncate record has no key, so Kafka Connect may put it on any
// partition; a topic of several partitions that holds one cannot be
// started consistently after it, which is a jobs.TerminalError.
func (t *Topics) TruncateStarts(ctx context.Context, topics []string) (map[string]map[int32]int64, error) {
	out := map[string]map[int32]int64{}
	for _, topic := range topics {
		last := map[int32]int64{}
		partitions := map[int32]bool{}
		err := kafkabus.Scan(ctx, t.brokers, topic, func(r *kgo.Record) {
			partitions[r.Partition] = true
			if isTruncate(r) {
				last[r.Partition] = r.Offset + 1
			}
		})
		if err != nil {
			return nil, fmt.Errorf("look for truncates in %s: %w", topic, err)
		}
		if len(last) == 0 {
			continue
		}
		if len(partitions) > 1 {
			return nil, jobs.Terminalf("change topic %s holds a TRUNCATE and has %d partitions: a Flink job cannot start after the truncate on all of them consistently; give change topics one partition", topic, len(partitions))
		}
		out[topic] = last
	}
	return out, nil
}

// ClearQuery tombstones the query's rows in the environment's result
// topic.
func (t *Topics) ClearQuery(ctx context.Context, environmentID, queryID string) error {
	return resulttopic.Clear(ctx, t.brokers, environmentID, queryID)
}

var opTruncate = []byte(`"op":"t"`)

// isTruncate reports a Debezium truncate event: no key, and op "t".
func isTruncate(r *kgo.Record) bool {
	if r.Key != nil || r.Value == nil || !bytes.Contains(r.Value, opTruncate) {
		return false
	}
	var env struct {
		Op string `json:"op"`
	}
	return json.Unmarshal(r.Value, &env) == nil && env.Op == "t"
}
