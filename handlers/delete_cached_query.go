package handlers

import (
	"context"
	"fmt"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/names"
)

// DeleteCachedQueryHandler consumes DeleteCachedQuery: it stops the query's
// job, removes its results and emits CachedQueryDeleted. Idempotent.
type DeleteCachedQueryHandler struct {
	cfg WorkerConfig
}

// Handle carries out the command, seq being its number among its
// environment's commands (0 if not numbered).
func (h *DeleteCachedQueryHandler) Handle(ctx context.Context, cmd commands.DeleteCachedQuery, seq int64) error {
	cfg := h.cfg
	m := cmd.Meta
	c := causeOf(m, seq)
	spec := QuerySpec{EnvironmentID: m.EnvironmentID, QueryID: cmd.QueryID, PipelineName: names.PipelineName(m.EnvironmentID, cmd.QueryID)}
	if err := cfg.Processor.DeleteQuery(ctx, spec); err != nil {
		if !jobs.IsTerminal(err) {
			return fmt.Errorf("delete query %s: %w", cmd.QueryID, err)
		}
		return cfg.Events.Publish(ctx, events.CachedQueryObserved{Meta: meta(cfg, c),
			QueryID: cmd.QueryID, Status: jobs.StatusFailed, Reason: "delete: " + err.Error()})
	}
	return cfg.Events.Publish(ctx, events.CachedQueryDeleted{Meta: meta(cfg, c), QueryID: cmd.QueryID})
}
