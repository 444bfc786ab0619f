package embedded

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/internal/results"
)

// A run that stops does not wait for a checkpoint write longer than
// stopWait: the write is cancelled and forgotten. One already written is
// collected, not cancelled.
func TestCheckpointStopAbandonsAWriteUnderWay(t *testing.T) {
	cancelled := false
	c := &checkpointer{log: slog.New(slog.DiscardHandler), done: make(chan error, 1),
		cancel: func() { cancelled = true }, stopWait: time.Millisecond}
	c.stop() // nothing is ever sent on done: without the cap this blocks
	if !cancelled {
		t.Error("the write under way was not cancelled")
	}
	if c.done != nil {
		t.Error("the abandoned write is still waited for")
	}

	written := &checkpointer{log: slog.New(slog.DiscardHandler), done: make(chan error, 1),
		cancel: func() { t.Error("a write that ended was cancelled") }, stopWait: time.Hour}
	written.done <- nil
	written.stop()
	if written.done != nil {
		t.Error("the ended write was not collected")
	}
}

// A topic deleted and created again has a new ID, and a checkpoint whose
// topic IDs are not the topics' is not restored, whatever its offsets.
func TestCheckpointOfTopicsCreatedAgainIsIgnored(t *testing.T) {
	ctx := context.Background()
	broker, err := kafkabus.StartEmbedded("", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	kafka := kafkasec.Cluster{Brokers: broker.Brokers()}
	const topic = "ids.public.sales"
	if err := kafkabus.EnsureTopics(ctx, kafka, kafkabus.Topic{Name: topic, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	var logs syncBuf
	r := &runner{kafka: kafka, logger: slog.New(slog.NewTextHandler(&logs, nil))}
	before, err := r.topicIDs(ctx, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	if before[topic] == "" {
		t.Fatalf("no topic id: %v", before)
	}
	cl, err := kafka.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).DeleteTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if err := kafkabus.EnsureTopics(ctx, kafka, kafkabus.Topic{Name: topic, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	after, err := r.topicIDs(ctx, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	if after[topic] == "" || after[topic] == before[topic] {
		t.Fatalf("topic ids before %v, after deleting and creating the topic %v", before, after)
	}

	// A checkpoint of the old topic, in the job-state database.
	_, pool := pgtest.NewJobState(t)
	store, err := results.New(pool)
	if err != nil {
		t.Fatal(err)
	}
	r.results = store
	r.newEngine = NewIVMEngine
	ids, _ := json.Marshal(before)
	if _, err := pool.Exec(ctx, `INSERT INTO query_checkpoints (query_id, fingerprint, positions, events, state_bytes, chunks, topic_ids)
		VALUES ('q', 'fp', '{"ids.public.sales": {"0": 7}}', 7, 0, 0, $1)`, ids); err != nil {
		t.Fatal(err)
	}
	c := &checkpointer{fingerprint: "fp", topicIDs: after, epochs: &captureEpochs{}}
	eng := newTestEngine(t)
	if _, from, err := r.restore(ctx, r.logger, "q", eng.plan, eng, c); err != nil || from != nil {
		t.Fatalf("restore of another topic's checkpoint: from %v, %v", from, err)
	}
	if !strings.Contains(logs.String(), "created again") {
		t.Errorf("the logs do not say the topics were created again:\n%s", logs.String())
	}
	// The same checkpoint with the topics' IDs is not refused for them
	// (its empty state then fails to load).
	logs.Reset()
	c.topicIDs = before
	r.restore(ctx, r.logger, "q", eng.plan, eng, c)
	if strings.Contains(logs.String(), "created again") {
		t.Errorf("a checkpoint of the same topics was refused as of others:\n%s", logs.String())
	}
}
