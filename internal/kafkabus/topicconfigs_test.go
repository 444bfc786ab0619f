package kafkabus_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/kafkasec"
)

// topicConfigs describes topic's configs as the broker reports them.
func topicConfigs(t *testing.T, brokers []string, topic string) map[string]string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rcs, err := kadm.NewClient(cl).DescribeTopicConfigs(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Err != nil {
		t.Fatalf("describe %s: %v", topic, rc.Err)
	}
	out := map[string]string{}
	for _, c := range rc.Configs {
		if c.Value != nil {
			out[c.Key] = *c.Value
		}
	}
	return out
}

// TestEnsureTopicsCreatesWithSettings checks that the settings reach the
// broker (kfake keeps a topic's configs and describes them), and that an
// existing topic keeps its own.
func TestEnsureTopicsCreatesWithSettings(t *testing.T) {
	broker, err := kafkabus.StartEmbedded("", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	kafka := kafkasec.Plaintext(broker.Brokers()...)
	ctx := context.Background()
	err = kafkabus.EnsureTopics(ctx, kafka,
		kafkabus.Topic{Name: "env.public.t", Partitions: 1, Configs: kafkabus.ChangeTopicConfigs(30 * 24 * time.Hour)},
		kafkabus.Topic{Name: "env.public.forever", Partitions: 1, Configs: kafkabus.ChangeTopicConfigs(kafkabus.InfiniteRetention)},
		kafkabus.Topic{Name: "env", Partitions: 1, Configs: kafkabus.ResultTopicConfigs()},
		kafkabus.Topic{Name: "__debezium-heartbeat.env", Partitions: 1, Configs: kafkabus.HeartbeatTopicConfigs()})
	if err != nil {
		t.Fatal(err)
	}
	for topic, want := range map[string]map[string]string{
		"env.public.t":             {"cleanup.policy": "delete", "retention.ms": "2592000000"},
		"env.public.forever":       {"cleanup.policy": "delete", "retention.ms": "-1"},
		"env":                      {"cleanup.policy": "compact"},
		"__debezium-heartbeat.env": {"cleanup.policy": "compact"},
	} {
		got := topicConfigs(t, broker.Brokers(), topic)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", topic, k, got[k], v)
			}
		}
	}
	// A second EnsureTopics with other settings leaves the topic alone.
	if err := kafkabus.EnsureTopics(ctx, kafka, kafkabus.Topic{Name: "env.public.t", Partitions: 1, Configs: kafkabus.ChangeTopicConfigs(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got := topicConfigs(t, broker.Brokers(), "env.public.t")["retention.ms"]; got != "2592000000" {
		t.Errorf("existing topic's retention.ms became %q", got)
	}
}

func TestChangeTopicConfigsRetention(t *testing.T) {
	for _, tt := range []struct {
		in   time.Duration
		want string
	}{{0, "-1"}, {-1, "-1"}, {time.Hour, "3600000"}, {time.Microsecond, "1"}} {
		c := kafkabus.ChangeTopicConfigs(tt.in)
		if *c["retention.ms"] != tt.want || *c["cleanup.policy"] != "delete" {
			t.Errorf("ChangeTopicConfigs(%v) = retention.ms %s, cleanup.policy %s; want %s, delete", tt.in, *c["retention.ms"], *c["cleanup.policy"], tt.want)
		}
	}
}
