package kafkabus

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/events"
)

// CommandPublisher publishes commands on the control topic in the format
// commands/ documents: JSON body, name header, keyed by environmentId.
type CommandPublisher struct {
	pub   message.Publisher
	topic string
}

// NewCommandPublisher wraps a publisher from NewPublisher; commands go to
// topic (names.ControlPlane's Commands).
func NewCommandPublisher(pub message.Publisher, topic string) (*CommandPublisher, error) {
	if pub == nil || topic == "" {
		return nil, fmt.Errorf("kafkabus: NewCommandPublisher needs a publisher and a topic")
	}
	return &CommandPublisher{pub: pub, topic: topic}, nil
}

// Publish sends one command and waits for the broker's acknowledgement.
func (p *CommandPublisher) Publish(ctx context.Context, cmd commands.Command) error {
	body, err := commands.Encode(cmd)
	if err != nil {
		return fmt.Errorf("encode %s: %w", cmd.CommandName(), err)
	}
	meta := cmd.CommandMeta()
	msg := message.NewMessage(meta.CommandID, body)
	msg.Metadata.Set(commands.NameHeader, cmd.CommandName())
	msg.Metadata.Set(commands.CommandIDHeader, meta.CommandID)
	msg.Metadata.Set(commands.EnvironmentHeader, meta.EnvironmentID)
	msg.SetContext(ctx)
	if err := p.pub.Publish(p.topic, msg); err != nil {
		return fmt.Errorf("publish %s for %s: %w", cmd.CommandName(), meta.EnvironmentID, err)
	}
	return nil
}

// EventPublisher publishes events on the events topic, keyed by
// environmentId.
type EventPublisher struct {
	pub   message.Publisher
	topic string
}

// NewEventPublisher wraps a publisher from NewPublisher; events go to topic
// (names.ControlPlane's Events).
func NewEventPublisher(pub message.Publisher, topic string) (*EventPublisher, error) {
	if pub == nil || topic == "" {
		return nil, fmt.Errorf("kafkabus: NewEventPublisher needs a publisher and a topic")
	}
	return &EventPublisher{pub: pub, topic: topic}, nil
}

// Publish sends events in order and waits for the broker's acknowledgement.
func (p *EventPublisher) Publish(ctx context.Context, evs ...events.Event) error {
	msgs := make([]*message.Message, 0, len(evs))
	for _, ev := range evs {
		body, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode %s event: %w", ev.EventName(), err)
		}
		msg := message.NewMessage(ev.EventMeta().EventID, body)
		msg.Metadata.Set(events.NameHeader, ev.EventName())
		msg.Metadata.Set(KeyHeader, ev.Environment())
		msg.SetContext(ctx)
		msgs = append(msgs, msg)
	}
	if err := p.pub.Publish(p.topic, msgs...); err != nil {
		return fmt.Errorf("publish events: %w", err)
	}
	return nil
}
