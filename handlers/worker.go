// Package handlers carries out the commands on the control topic. A worker
// consumes the control topic (cdcq.commands, in the consumer group
// cdcq-worker, by default: see names.ControlPlane), dispatches each command
// to the handler for its name, and publishes what happened as events on the
// events topic (cdcq.events). Handlers reconcile: they are idempotent and may see a
// command more than once. Every command is numbered among its environment's
// commands before it is carried out (WorkerConfig.Sequencer), and its events
// carry the number, so that the projector can order them (see package
// events).
//
// The status poller also lives here: one leader among the workers observes
// every capture and records changes as events.
//
// This package must not import http or projections' internals; it talks to
// engines only through the ports in ports.go.
package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/internal/secret"
)

// WorkerConfig holds a worker's dependencies.
type WorkerConfig struct {
	// Capture creates, observes and deletes captures. Required.
	Capture Capture
	// Processor runs cached queries. Required.
	Processor Processor
	// Events receives what happened. Required.
	Events EventPublisher
	// Sealer opens the sealed connection strings in commands. Required.
	Sealer *secret.Sealer
	// Bindings keeps the database each environment is bound to. Required.
	Bindings Bindings
	// Sequencer numbers each environment's commands, and the events they
	// cause carry the number, so that the projector can tell a late event
	// of an older command from a newer one's. Without it events carry no
	// number and are projected by command id alone.
	Sequencer CommandSequencer
	// Catalog reads the source database's catalog, so that a cached query
	// whose Prisma schema does not match the database fails before its job
	// starts. SourceCatalog{Source: ...} reads it for real, through the
	// source policy of its client; nil skips the check (for
	// tests of other parts only).
	Catalog Catalog
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Now and NewID are replaceable for tests.
	Now   func() time.Time
	NewID func() string
}

func (c *WorkerConfig) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewID == nil {
		c.NewID = uuid.NewString
	}
}

// Validate refuses missing dependencies.
func (c WorkerConfig) Validate() error {
	switch {
	case c.Capture == nil:
		return errors.New("handlers: WorkerConfig.Capture is nil")
	case c.Processor == nil:
		return errors.New("handlers: WorkerConfig.Processor is nil")
	case c.Events == nil:
		return errors.New("handlers: WorkerConfig.Events is nil")
	case c.Sealer == nil:
		return errors.New("handlers: WorkerConfig.Sealer is nil")
	case c.Bindings == nil:
		return errors.New("handlers: WorkerConfig.Bindings is nil")
	}
	return nil
}

// CommandSequencer numbers an environment's commands in the order the
// workers take them up, once per command id (inbox.Inbox.Sequence).
type CommandSequencer interface {
	Sequence(ctx context.Context, environmentID, commandID string) (int64, error)
}

// Worker dispatches commands to their handlers.
type Worker struct {
	cfg              WorkerConfig
	createConnection *CreateDatabaseConnectionHandler
	deleteConnection *DeleteDatabaseConnectionHandler
	createQuery      *CreateCachedQueryHandler
	deleteQuery      *DeleteCachedQueryHandler
}

// NewWorker builds a worker and its handlers.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	create := &CreateDatabaseConnectionHandler{cfg: cfg}
	return &Worker{
		cfg:              cfg,
		createConnection: create,
		deleteConnection: &DeleteDatabaseConnectionHandler{cfg: cfg},
		createQuery:      &CreateCachedQueryHandler{cfg: cfg, connections: create},
		deleteQuery:      &DeleteCachedQueryHandler{cfg: cfg},
	}, nil
}

// HandleMessage is the Watermill handler for the control topic. A message
// that is not a valid command is recorded as a rejected command and its
// DecodeError returned, which the router's poison-queue middleware parks on
// the dead-letter topic.
func (w *Worker) HandleMessage(msg *message.Message) error {
	ctx := msg.Context()
	name := msg.Metadata.Get(commands.NameHeader)
	cmd, err := commands.Decode(name, msg.Payload)
	if err == nil {
		err = headersAgree(msg, cmd)
	}
	if err != nil {
		w.reject(ctx, msg, name, err)
		return err
	}
	return w.Handle(ctx, cmd)
}

// Handle carries out one decoded command. It first gets the command's
// number among its environment's commands, which every event it causes
// carries.
func (w *Worker) Handle(ctx context.Context, cmd commands.Command) error {
	c, err := w.cause(ctx, cmd.CommandMeta())
	if err != nil {
		return err
	}
	switch cmd := cmd.(type) {
	case commands.CreateDatabaseConnection:
		return w.createConnection.Handle(ctx, cmd, c.seq)
	case commands.DeleteDatabaseConnection:
		return w.deleteConnection.Handle(ctx, cmd, c.seq)
	case commands.CreateCachedQuery:
		return w.createQuery.Handle(ctx, cmd, c.seq)
	case commands.DeleteCachedQuery:
		return w.deleteQuery.Handle(ctx, cmd, c.seq)
	default:
		return fmt.Errorf("no handler for command %s", cmd.CommandName())
	}
}

// cause numbers a command (0 without a Sequencer).
func (w *Worker) cause(ctx context.Context, m commands.Meta) (cause, error) {
	c := cause{environmentID: m.EnvironmentID, commandID: m.CommandID}
	if w.cfg.Sequencer == nil || m.CommandID == "" {
		return c, nil
	}
	seq, err := w.cfg.Sequencer.Sequence(ctx, m.EnvironmentID, m.CommandID)
	if err != nil {
		return c, fmt.Errorf("number command %s: %w", m.CommandID, err)
	}
	c.seq = seq
	return c, nil
}

// cause is the command an event belongs to: its environment, id and
// number among the environment's commands (0: not numbered).
type cause struct {
	environmentID string
	commandID     string
	seq           int64
}

func causeOf(m commands.Meta, seq int64) cause {
	return cause{environmentID: m.EnvironmentID, commandID: m.CommandID, seq: seq}
}

// headersAgree checks that the headers and the record key say what the
// body says: deduplication reads the command_id header and ordering relies
// on the key, so a mismatch would defeat both.
func headersAgree(msg *message.Message, cmd commands.Command) error {
	m := cmd.CommandMeta()
	if id := msg.Metadata.Get(commands.CommandIDHeader); id != "" && id != m.CommandID {
		return &commands.DecodeError{Name: cmd.CommandName(), Reason: fmt.Sprintf("header command_id %q differs from the body's commandId %q", id, m.CommandID)}
	}
	if env := msg.Metadata.Get(commands.EnvironmentHeader); env != "" && env != m.EnvironmentID {
		return &commands.DecodeError{Name: cmd.CommandName(), Reason: fmt.Sprintf("header environment_id %q differs from the body's environmentId %q", env, m.EnvironmentID)}
	}
	if key, ok := wkafka.MessageKeyFromCtx(msg.Context()); ok && len(key) > 0 && string(key) != m.EnvironmentID {
		return &commands.DecodeError{Name: cmd.CommandName(), Reason: fmt.Sprintf("record key %q differs from the body's environmentId %q; key commands by environmentId", key, m.EnvironmentID)}
	}
	return nil
}

// reject records an undecodable command against its environment, when the
// message says which one it is.
func (w *Worker) reject(ctx context.Context, msg *message.Message, name string, reason error) {
	env := msg.Metadata.Get(commands.EnvironmentHeader)
	if names.ValidateEnvironmentID(env) != nil {
		env = ""
	}
	ev := events.CommandRejected{
		Meta:        meta(w.cfg, cause{environmentID: env, commandID: msg.Metadata.Get(commands.CommandIDHeader)}),
		CommandName: name,
		Reason:      reason.Error(),
	}
	if err := w.cfg.Events.Publish(ctx, ev); err != nil {
		w.cfg.Logger.ErrorContext(ctx, "record rejected command", "environment_id", env, "error", err)
	}
}

// meta builds the common fields of an event that c caused.
func meta(cfg WorkerConfig, c cause) events.Meta {
	return events.Meta{EventID: cfg.NewID(), EnvironmentID: c.environmentID, CommandID: c.commandID,
		CommandSeq: c.seq, At: cfg.Now().UTC()}
}

// captureSpec derives an environment's capture from its connection string.
func captureSpec(environmentID, connectionString string) CaptureSpec {
	return CaptureSpec{
		EnvironmentID:    environmentID,
		ConnectionString: connectionString,
		ConnectorName:    names.ConnectorName(environmentID),
		SlotName:         names.SlotName(environmentID),
		PublicationName:  names.PublicationName(environmentID),
		TopicPrefix:      names.TopicPrefix(environmentID),
	}
}
