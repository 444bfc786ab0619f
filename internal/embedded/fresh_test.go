package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/capture"
	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/names"
)

func TestHeartbeatTime(t *testing.T) {
	at := time.UnixMilli(1_796_655_600_123).UTC()
	for _, c := range []struct {
		value string
		ok    bool
	}{
		{`{"ts_ms":1796655600123}`, true}, // cdcq's capture; Debezium without schemas
		{`{"schema":{"type":"struct","fields":[{"type":"int64","optional":false,"field":"ts_ms"}],"optional":false,"name":"io.debezium.connector.common.Heartbeat"},"payload":{"ts_ms":1796655600123}}`, true},
		{`{"ts_ms":0}`, false},
		{`{}`, false},
		{`not json`, false},
		{``, false},
	} {
		got, ok := heartbeatTime([]byte(c.value))
		if ok != c.ok || (ok && !got.Equal(at)) {
			t.Errorf("heartbeatTime(%s) = %v, %v; want %v, %v", c.value, got, ok, at, c.ok)
		}
	}
}

// A heartbeat partition whose records were all deleted is read from its
// end, not from the offset before it (below its start, which the runner's
// client, resetting no offset, reports as out of range on every poll):
// the next heartbeat written is read.
func TestHeartbeatsOfAnEmptiedPartition(t *testing.T) {
	broker, err := kafkabus.StartEmbedded("", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	kafka := kafkasec.Cluster{Brokers: broker.Brokers()}
	ctx := context.Background()
	r := &runner{kafka: kafka, logger: slog.New(slog.DiscardHandler)}
	const env = "hbempty"
	topic := capture.HeartbeatTopicPrefix + names.TopicPrefix(env)
	if err := kafkabus.EnsureTopics(ctx, kafka, kafkabus.Topic{Name: topic, Partitions: 1, Configs: kafkabus.HeartbeatTopicConfigs()}); err != nil {
		t.Fatal(err)
	}
	prod, err := kafka.NewClient(kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	beat := func(ms int64) {
		t.Helper()
		if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: fmt.Appendf(nil, `{"ts_ms":%d}`, ms)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	beat(1_000)
	beat(2_000)
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: topic, Partition: 0, At: 2})
	if resp, err := kadm.NewClient(prod).DeleteRecords(ctx, del); err != nil || resp.Error() != nil {
		t.Fatalf("delete records: %v %v", err, resp.Error())
	}

	cl, err := kafka.NewClient(kgo.ConsumeResetOffset(kgo.NoResetOffset()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	f, err := r.followHeartbeats(ctx, cl, env, "q", nil)
	if err != nil {
		t.Fatal(err)
	}
	beat(3_000)
	for f.seen.IsZero() {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		fetches := cl.PollFetches(pctx)
		timedOut := pctx.Err() != nil
		cancel()
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("read %s partition %d: %v", topic, partition, err)
			}
		})
		if timedOut {
			t.Fatal("no heartbeat read")
		}
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) { f.note(fp.Records) })
	}
	if want := time.UnixMilli(3_000).UTC(); !f.seen.Equal(want) {
		t.Errorf("heartbeat read %v, want %v", f.seen, want)
	}
}
