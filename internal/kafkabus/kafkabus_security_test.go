package kafkabus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/kafkasec/kafkasectest"
)

const (
	user     = "bus"
	password = "bus-password"
)

func secure(t *testing.T, b kafkasectest.Broker, pass string) kafkasec.Cluster {
	t.Helper()
	sec, err := kafkasec.Load(kafkasec.Settings{CAFile: b.CAFile, Mechanism: kafkasec.ScramSHA512, Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	return kafkasec.Cluster{Brokers: b.Brokers, Security: sec}
}

// TestBusOverSCRAMAndTLS: topic creation and scans (franz-go) and the
// Watermill publisher and subscriber (Sarama) work on a broker that takes
// only SCRAM-SHA-512 over TLS, and are refused with a wrong password.
// (Sarama without TLS waits out its read timeout against a TLS listener;
// kafkasec's tests cover that case with a short one.)
func TestBusOverSCRAMAndTLS(t *testing.T) {
	b := kafkasectest.Start(t, kafkasec.ScramSHA512, user, password)
	kafka := secure(t, b, password)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	if err := kafkabus.EnsureTopics(ctx, kafka, kafkabus.Topic{Name: "bus", Partitions: 2}); err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}
	pub, err := kafkabus.NewPublisher(kafkabus.Config{Kafka: kafka})
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	defer pub.Close()
	msg := message.NewMessage("m1", []byte("hello"))
	msg.Metadata.Set(kafkabus.KeyHeader, "env1")
	if err := pub.Publish("bus", msg); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	sub, err := kafkabus.NewSubscriber(kafkabus.Config{Kafka: kafka}, "bus-group")
	if err != nil {
		t.Fatalf("NewSubscriber: %v", err)
	}
	defer sub.Close()
	ch, err := sub.Subscribe(ctx, "bus")
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	select {
	case got := <-ch:
		got.Ack()
		if string(got.Payload) != "hello" {
			t.Fatalf("received %q, want hello", got.Payload)
		}
	case <-ctx.Done():
		t.Fatal("the subscriber received nothing")
	}
	var scanned []string
	if err := kafkabus.Scan(ctx, kafka, "bus", func(r *kgo.Record) { scanned = append(scanned, string(r.Value)) }); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if len(scanned) != 1 || scanned[0] != "hello" {
		t.Fatalf("Scan read %q, want [hello]", scanned)
	}

	bad := secure(t, b, "not-the-password")
	// kfake drops the connection instead of answering
	// SASL_AUTHENTICATION_FAILED, which franz-go retries: bound the wait.
	short, stop := context.WithTimeout(ctx, 3*time.Second)
	defer stop()
	err = kafkabus.EnsureTopics(short, bad, kafkabus.Topic{Name: "other", Partitions: 1})
	if err == nil || !strings.Contains(err.Error(), "SASL_SSL SCRAM-SHA-512 as bus") {
		t.Errorf("EnsureTopics with a wrong password: %v, want an error naming the security", err)
	}
	if p, err := kafkabus.NewPublisher(kafkabus.Config{Kafka: bad}); err == nil {
		p.Close()
		t.Errorf("NewPublisher with a wrong password succeeded")
	}
}
