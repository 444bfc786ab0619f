package embedded

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/capture"
	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/leader"
	"github.com/cdcq/cdcq/internal/results"
)

// A record whose capture epoch is below one already read on its partition
// is dropped; records without the header (Debezium's) and records of
// other partitions are not.
func TestCaptureEpochsDropADeposedCapturesRecords(t *testing.T) {
	rec := func(topic string, partition int32, epoch int64) *kgo.Record {
		r := &kgo.Record{Topic: topic, Partition: partition}
		if epoch > 0 {
			r.Headers = []kgo.RecordHeader{{Key: capture.EpochHeader, Value: []byte(strconv.FormatInt(epoch, 10))}}
		}
		return r
	}
	c := captureEpochs{log: slog.New(slog.DiscardHandler)}
	steps := []struct {
		r    *kgo.Record
		drop bool
	}{
		{rec("t", 0, 3), false},
		{rec("t", 0, 3), false},
		{rec("t", 0, 4), false}, // the successor
		{rec("t", 0, 3), true},  // the deposed capture woke up
		{rec("t", 0, 0), false}, // no header
		{rec("t", 1, 3), false}, // another partition
		{rec("u", 0, 2), false}, // another topic
		{rec("t", 0, 4), false},
		{rec("t", 0, 5), false},
		{rec("t", 0, 4), true},
	}
	for i, s := range steps {
		if got := c.stale(s.r); got != s.drop {
			t.Fatalf("step %d (%s/%d): dropped %v, want %v", i, s.r.Topic, s.r.Partition, got, s.drop)
		}
	}
	if c.dropped != 2 {
		t.Fatalf("dropped %d, want 2", c.dropped)
	}
}

// Two publishers of one query's results, as the old and the new owner
// would hold: once the second started, the first can publish nothing, and
// its refusal matches leader.ErrFenced.
func TestResultPublisherIsFencedBySuccessor(t *testing.T) {
	broker, err := kafkabus.StartEmbedded("", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	kafka := kafkasec.Cluster{Brokers: broker.Brokers()}
	ctx := context.Background()
	const topic = "ns.results"
	if err := kafkabus.EnsureTopics(ctx, kafka, kafkabus.Topic{Name: topic, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	change := []results.Change{{Key: []byte(`{"k":1}`), Row: []byte(`{"k":1,"n":1}`)}}
	old, err := newPublisher(ctx, kafka, topic, "q1")
	if err != nil {
		t.Fatal(err)
	}
	defer old.close()
	if err := old.publish(ctx, change, nil); err != nil {
		t.Fatalf("the owner's publish: %v", err)
	}
	successor, err := newPublisher(ctx, kafka, topic, "q1")
	if err != nil {
		t.Fatal(err)
	}
	defer successor.close()
	// Opening its producer is enough: the successor may publish nothing
	// for a while (it catches up first).
	if err := old.publish(ctx, change, nil); !errors.Is(err, leader.ErrFenced) {
		t.Fatalf("the deposed owner's publish once the successor opened its producer: got %v, want leader.ErrFenced", err)
	}
	if err := successor.publish(ctx, change, nil); err != nil {
		t.Fatalf("the successor's publish: %v", err)
	}
	other, err := newPublisher(ctx, kafka, topic, "q2")
	if err != nil {
		t.Fatal(err)
	}
	defer other.close()
	if err := other.publish(ctx, change, nil); err != nil {
		t.Fatalf("another query's publish: %v", err)
	}
	cl, err := kafka.NewClient(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Everything committed is read well within the wait.
	wait, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	n := 0
	for wait.Err() == nil {
		fs := cl.PollFetches(wait)
		if err := fs.Err0(); err != nil && wait.Err() == nil {
			t.Fatal(err)
		}
		n += fs.NumRecords()
	}
	if n != 3 {
		t.Fatalf("%d committed records, want 3 (owner, successor, other query)", n)
	}
}
