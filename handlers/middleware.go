package handlers

import (
	"context"
	"log/slog"
	"time"

	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/events"
)

// Logging logs every handled message once, with fixed keys. It is the only
// place handlers log outcomes; message payloads are never logged.
func Logging(logger *slog.Logger, handler string) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			start := time.Now()
			out, err := h(msg)
			attrs := []any{
				"handler", handler,
				"command", firstNonEmpty(msg.Metadata.Get(commands.NameHeader), msg.Metadata.Get(events.NameHeader)),
				"environment_id", msg.Metadata.Get(commands.EnvironmentHeader),
				"message_id", msg.UUID,
				"duration_ms", time.Since(start).Milliseconds(),
			}
			if err != nil {
				logger.WarnContext(msg.Context(), "message failed", append(attrs, "error", err.Error())...)
			} else {
				logger.InfoContext(msg.Context(), "message handled", attrs...)
			}
			return out, err
		}
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// Inbox remembers which commands were carried out, so that a command
// redelivered after a consumer-group rebalance is not carried out again.
type Inbox interface {
	// Handled reports whether commandID was carried out before.
	Handled(ctx context.Context, commandID string) (bool, error)
	// MarkHandled records that commandID was carried out.
	MarkHandled(ctx context.Context, commandID, name, environmentID string) error
}

// EnvironmentLocker serialises the commands of one environment across
// workers (inbox.Inbox.LockEnvironment). held is ctx, cancelled should the
// lock be lost before unlock (the worker fell silent past its session's
// timeout, and another may hold it now).
type EnvironmentLocker interface {
	LockEnvironment(ctx context.Context, environmentID string) (held context.Context, unlock func(), err error)
}

// OnePerEnvironment carries out a command only while no other worker
// carries out one of the same environment (the environment_id header). It
// goes outside Deduplicate, so that a command redelivered to a new owner
// while its old owner still works on it waits and is then found handled.
func OnePerEnvironment(locker EnvironmentLocker) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			env := msg.Metadata.Get(commands.EnvironmentHeader)
			if key, ok := wkafka.MessageKeyFromCtx(msg.Context()); env == "" && ok {
				env = string(key) // the record key is the environmentId
			}
			if env == "" {
				return h(msg)
			}
			held, unlock, err := locker.LockEnvironment(msg.Context(), env)
			if err != nil {
				return nil, err
			}
			defer unlock()
			// The command runs, and is recorded handled, only while the
			// lock is held: one that lost it stops (its context ends) and
			// is not recorded, so that the lock's new holder carries it
			// out again.
			orig := msg.Context()
			msg.SetContext(held)
			defer msg.SetContext(orig)
			out, err := h(msg)
			if cause := context.Cause(held); err == nil && cause != nil && orig.Err() == nil {
				err = cause
			}
			return out, err
		}
	}
}

// Deduplicate skips commands the inbox has seen and records those that
// were handled. Messages without a command id pass through; handlers are
// idempotent anyway, this only keeps a redelivery from repeating work.
func Deduplicate(inbox Inbox) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			id := msg.Metadata.Get(commands.CommandIDHeader)
			if id == "" {
				return h(msg)
			}
			seen, err := inbox.Handled(msg.Context(), id)
			if err != nil {
				return nil, err
			}
			if seen {
				return nil, nil
			}
			out, err := h(msg)
			if err != nil {
				return out, err
			}
			if err := inbox.MarkHandled(msg.Context(), id, msg.Metadata.Get(commands.NameHeader), msg.Metadata.Get(commands.EnvironmentHeader)); err != nil {
				return nil, err
			}
			return out, nil
		}
	}
}
