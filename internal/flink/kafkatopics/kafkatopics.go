// Package kafkatopics does the Kafka work the Flink processor needs
// (processor.Topics): finding where a job's sources start after a TRUNCATE,
// which Flink's debezium-json format cannot apply, clearing a query's rows
// from its environment's result topic, and telling from a job's committed
// offsets whether it has caught up with its sources (Progress).
//
// This package must not import handlers, http or any engine.
package kafkatopics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/resulttopic"
)

// Topics reaches Kafka with franz-go.
type Topics struct {
	kafka kafkasec.Cluster
	// adm serves the small admin requests (group offsets, end offsets,
	// group deletion) that Progress makes every few seconds: one client
	// for the process, not one per request.
	adm *kadm.Client
}

// New refuses an empty broker list.
func New(kafka kafkasec.Cluster) (*Topics, error) {
	if len(kafka.Brokers) == 0 {
		return nil, errors.New("kafkatopics: no brokers")
	}
	cl, err := kafka.NewClient()
	if err != nil {
		return nil, fmt.Errorf("kafkatopics: %w", err)
	}
	return &Topics{kafka: kafka, adm: kadm.NewClient(cl)}, nil
}

// Close releases the admin client.
func (t *Topics) Close() { t.adm.Close() }

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
		err := kafkabus.Scan(ctx, t.kafka, topic, func(r *kgo.Record) {
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
	return resulttopic.Clear(ctx, t.kafka, environmentID, queryID)
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

// ForgetGroup deletes a consumer group's committed offsets: a job started
// again under the same name (its sources' group) must not look caught up
// on the offsets its predecessor committed. Flink's sources start from
// their configured offsets, never from the group's. A group that does not
// exist is not an error.
func (t *Topics) ForgetGroup(ctx context.Context, group string) error {
	resp, err := t.adm.DeleteGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("delete consumer group %s: %w", group, err)
	}
	for _, r := range resp {
		if r.Err != nil && !errors.Is(r.Err, kerr.GroupIDNotFound) {
			return fmt.Errorf("delete consumer group %s: %w", group, r.Err)
		}
	}
	return nil
}

// Progress tells whether Flink jobs have caught up with their sources:
// read them up to where they ended when Progress first saw the job's
// committed offsets. A job's Kafka sources commit what they have read to
// their consumer group (the pipeline name) at each checkpoint. Once caught
// up, a job stays so; a new job id starts over. Safe for concurrent use.
type Progress struct {
	topics *Topics
	mu     sync.Mutex
	jobs   map[string]*jobProgress // by group
}

type jobProgress struct {
	jobID   string
	targets map[string]map[int32]int64
	reached bool
}

// NewProgress returns a Progress that reads Kafka through t.
func NewProgress(t *Topics) *Progress {
	return &Progress{topics: t, jobs: map[string]*jobProgress{}}
}

// Forget drops what is known of group's job: its next CaughtUp measures
// the sources' ends again (after the capture's snapshot started over).
func (p *Progress) Forget(group string) {
	p.mu.Lock()
	delete(p.jobs, group)
	p.mu.Unlock()
}

// CaughtUp reports whether the job jobID, whose sources commit to group,
// has caught up.
func (p *Progress) CaughtUp(ctx context.Context, group, jobID string) (bool, error) {
	if jobID == "" {
		return false, nil
	}
	p.mu.Lock()
	jp := p.jobs[group]
	if jp == nil || jp.jobID != jobID {
		jp = &jobProgress{jobID: jobID}
		p.jobs[group] = jp
	}
	reached, targets := jp.reached, jp.targets
	p.mu.Unlock()
	if reached {
		return true, nil
	}
	adm := p.topics.adm
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return false, fmt.Errorf("offsets of consumer group %s: %w", group, err)
	}
	if err := committed.Error(); err != nil {
		return false, fmt.Errorf("offsets of consumer group %s: %w", group, err)
	}
	if len(committed) == 0 {
		return false, nil // no checkpoint yet
	}
	if targets == nil {
		var topics []string
		for topic := range committed {
			topics = append(topics, topic)
		}
		ends, err := adm.ListEndOffsets(ctx, topics...)
		if err != nil {
			return false, fmt.Errorf("end offsets of %v: %w", topics, err)
		}
		targets = map[string]map[int32]int64{}
		ends.Each(func(o kadm.ListedOffset) {
			if targets[o.Topic] == nil {
				targets[o.Topic] = map[int32]int64{}
			}
			targets[o.Topic][o.Partition] = o.Offset
		})
	}
	reached = true
	for topic, parts := range targets {
		for part, end := range parts {
			o, ok := committed.Lookup(topic, part)
			if end > 0 && (!ok || o.At < end) {
				reached = false
			}
		}
	}
	p.mu.Lock()
	if jp.jobID == jobID {
		jp.targets, jp.reached = targets, reached
	}
	p.mu.Unlock()
	return reached, nil
}
