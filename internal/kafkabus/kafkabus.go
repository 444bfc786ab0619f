// Package kafkabus connects cdcq's control plane to Kafka: the in-process
// broker for `cdcq dev`, topic creation, and Watermill publishers and
// subscribers configured the way cdcq needs them (consumer groups that start
// from the oldest offset and commit after each handled message, records keyed
// by environmentId and partitioned like Kafka's Java client).
//
// This package must not import handlers, http or projections.
package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/kafkasec"
)

// KeyHeader is the metadata key whose value becomes the Kafka record key.
const KeyHeader = "environment_id"

// Config says how to reach Kafka.
type Config struct {
	// Kafka is the cluster: bootstrap addresses (required) and security.
	Kafka kafkasec.Cluster
	// Logger receives Watermill's and Sarama's logs. Default slog.Default().
	Logger *slog.Logger
	// NackResendSleep is how long a subscriber waits before handing a
	// failed message to its handler again. Default 2s.
	NackResendSleep time.Duration
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.NackResendSleep == 0 {
		c.NackResendSleep = 2 * time.Second
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if len(c.Kafka.Brokers) == 0 {
		return errors.New("kafkabus: no brokers configured")
	}
	return nil
}

// saramaConfig is shared by publishers and subscribers. Sarama's defaults
// do not fit: its default protocol version breaks against newer brokers,
// a new group would skip what was published before it joined, and
// auto-commit would let a rebalance redeliver handled messages. sec adds
// TLS and SASL.
func saramaConfig(sec kafkasec.Security) *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V2_8_0_0
	c.ClientID = "cdcq"
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Retry.Max = 10
	c.Producer.Partitioner = newJavaCompatiblePartitioner
	c.Consumer.Return.Errors = true
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = false
	c.Consumer.MaxWaitTime = 50 * time.Millisecond
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRoundRobin()}
	c.Metadata.Retry.Max = 10
	c.Metadata.Retry.Backoff = 250 * time.Millisecond
	sec.ConfigureSarama(c)
	return c
}

// NewPublisher returns a publisher whose records are keyed by the
// environment_id metadata.
func NewPublisher(cfg Config) (message.Publisher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pub, err := wkafka.NewPublisher(wkafka.PublisherConfig{
		Brokers:               cfg.Kafka.Brokers,
		Marshaler:             marshaler(),
		OverwriteSaramaConfig: saramaConfig(cfg.Kafka.Security),
	}, watermill.NewSlogLogger(cfg.Logger))
	if err != nil {
		return nil, fmt.Errorf("kafkabus: new publisher: %w", err)
	}
	return pub, nil
}

// NewSubscriber returns a subscriber in consumer group group. Every member
// of a group gets a share of the partitions; a partition's messages are
// handled one at a time, in order.
func NewSubscriber(cfg Config, group string) (message.Subscriber, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sub, err := wkafka.NewSubscriber(wkafka.SubscriberConfig{
		Brokers:               cfg.Kafka.Brokers,
		Unmarshaler:           marshaler(),
		OverwriteSaramaConfig: saramaConfig(cfg.Kafka.Security),
		ConsumerGroup:         group,
		NackResendSleep:       cfg.NackResendSleep,
		ReconnectRetrySleep:   time.Second,
	}, watermill.NewSlogLogger(cfg.Logger))
	if err != nil {
		return nil, fmt.Errorf("kafkabus: new subscriber for group %s: %w", group, err)
	}
	return sub, nil
}

func marshaler() wkafka.MarshalerUnmarshaler {
	return wkafka.NewWithPartitioningMarshaler(func(topic string, msg *message.Message) (string, error) {
		return msg.Metadata.Get(KeyHeader), nil
	})
}

// javaCompatiblePartitioner puts a keyed record on the partition Kafka's
// Java client (and kcat with -X partitioner=murmur2_random) would choose,
// so commands that other systems publish for an environment land on the
// same partition as the API's and are handled in order with them.
type javaCompatiblePartitioner struct {
	tp kgo.TopicPartitioner
}

func newJavaCompatiblePartitioner(topic string) sarama.Partitioner {
	return javaCompatiblePartitioner{tp: kgo.StickyKeyPartitioner(nil).ForTopic(topic)}
}

func (p javaCompatiblePartitioner) Partition(msg *sarama.ProducerMessage, n int32) (int32, error) {
	var key []byte
	if msg.Key != nil {
		b, err := msg.Key.Encode()
		if err != nil {
			return 0, err
		}
		key = b
	}
	if key == nil {
		return 0, nil
	}
	return int32(p.tp.Partition(&kgo.Record{Key: key}, int(n))), nil
}

func (javaCompatiblePartitioner) RequiresConsistency() bool { return true }

// Topic describes a topic cdcq creates.
type Topic struct {
	Name       string
	Partitions int32
	Configs    map[string]*string
}

// EnsureTopics creates the topics that do not exist yet. Existing topics are
// left as they are.
func EnsureTopics(ctx context.Context, kafka kafkasec.Cluster, topics ...Topic) error {
	cl, err := kafka.NewClient()
	if err != nil {
		return fmt.Errorf("kafkabus: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, t := range topics {
		resp, err := adm.CreateTopic(ctx, t.Partitions, -1, t.Configs, t.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafkabus: create topic %s on %v (%s): %w", t.Name, kafka.Brokers, kafka.Security, err)
		}
	}
	return nil
}

// Scan calls fn for every record of topic, from the start to the end
// offsets it has when scan begins. A topic that does not exist is empty.
func Scan(ctx context.Context, kafka kafkasec.Cluster, topic string, fn func(*kgo.Record)) error {
	cl, err := kafka.NewClient()
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

// Embedded is an in-process Kafka-protocol broker (franz-go's kfake).
type Embedded struct {
	cluster *kfake.Cluster
}

// StartEmbedded starts a one-broker cluster on 127.0.0.1:port (0 picks a
// port) that keeps its log under dataDir ("" keeps it in memory).
func StartEmbedded(dataDir string, port int) (*Embedded, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.DefaultNumPartitions(1), kfake.AllowAutoTopicCreation()}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafkabus: start embedded broker: %w", err)
	}
	return &Embedded{cluster: c}, nil
}

// Brokers are the addresses to bootstrap from.
func (e *Embedded) Brokers() []string { return e.cluster.ListenAddrs() }

// Close stops the broker, flushing its log to disk.
func (e *Embedded) Close() { e.cluster.Close() }
