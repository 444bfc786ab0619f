package handlers

import (
	"context"
	"fmt"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/jobs"
)

// DeleteDatabaseConnectionHandler consumes DeleteDatabaseConnection and
// emits ConnectionDeleting, then ConnectionDeleted (or ConnectionFailed).
// It stops the environment's query jobs, deletes the capture, and drops the
// replication slot and publication in the source database. Idempotent:
// deleting what is gone succeeds.
type DeleteDatabaseConnectionHandler struct {
	cfg WorkerConfig
}

// Handle carries out the command, seq being its number among its
// environment's commands (0 if not numbered).
func (h *DeleteDatabaseConnectionHandler) Handle(ctx context.Context, cmd commands.DeleteDatabaseConnection, seq int64) error {
	cfg := h.cfg
	m := cmd.Meta
	c := causeOf(m, seq)
	// The bound connection string is the one acted on; the command's only
	// has to name the same database.
	b, err := resolve(ctx, cfg, m.EnvironmentID, cmd.Connection, false)
	switch {
	case isRejected(err):
		return rejectCommand(ctx, cfg, c, cmd.CommandName(), err)
	case jobs.IsTerminal(err):
		return cfg.Events.Publish(ctx, events.ConnectionFailed{Meta: meta(cfg, c), Reason: "delete: " + err.Error()})
	case err != nil:
		return fmt.Errorf("read the connection bound to %s: %w", m.EnvironmentID, err)
	}
	if err := cfg.Events.Publish(ctx, events.ConnectionDeleting{Meta: meta(cfg, c)}); err != nil {
		return err
	}
	if err := cfg.Processor.DeleteEnvironment(ctx, m.EnvironmentID); err != nil {
		if !jobs.IsTerminal(err) {
			return fmt.Errorf("stop query jobs of %s: %w", m.EnvironmentID, err)
		}
		cfg.Logger.WarnContext(ctx, "stop query jobs", "environment_id", m.EnvironmentID, "error", err)
	}
	if err := cfg.Capture.Delete(ctx, captureSpec(m.EnvironmentID, b.plain)); err != nil {
		if jobs.IsTerminal(err) {
			return cfg.Events.Publish(ctx, events.ConnectionFailed{Meta: meta(cfg, c),
				Reason: "delete: " + err.Error()})
		}
		return fmt.Errorf("delete capture of %s: %w", m.EnvironmentID, err)
	}
	if err := cfg.Bindings.Unbind(ctx, m.EnvironmentID); err != nil {
		return fmt.Errorf("unbind %s: %w", m.EnvironmentID, err)
	}
	return cfg.Events.Publish(ctx, events.ConnectionDeleted{Meta: meta(cfg, c)})
}
