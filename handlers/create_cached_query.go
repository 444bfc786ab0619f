package handlers

import (
	"context"
	"fmt"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/cachedquery"
	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/names"
)

// CreateCachedQueryHandler consumes CreateCachedQuery: it ensures the
// environment's capture (as CreateDatabaseConnection does), emits
// CachedQueryRequested, starts the query job and emits CachedQueryObserved.
// Idempotent: the query id and pipeline name are deterministic.
type CreateCachedQueryHandler struct {
	cfg         WorkerConfig
	connections *CreateDatabaseConnectionHandler
}

// Handle carries out the command, seq being its number among its
// environment's commands (0 if not numbered). The capture's events carry
// it too: the query's command is the connection's newest.
func (h *CreateCachedQueryHandler) Handle(ctx context.Context, cmd commands.CreateCachedQuery, seq int64) error {
	cfg := h.cfg
	m := cmd.Meta
	c := causeOf(m, seq)
	pipeline := names.PipelineName(m.EnvironmentID, cmd.QueryID)
	requested := events.CachedQueryRequested{
		Meta:         meta(cfg, c),
		QueryID:      cmd.QueryID,
		PipelineName: pipeline,
		SQLQuery:     cmd.SQLQuery,
		Schema:       cmd.Schema,
		Engine:       cfg.Processor.Engine(),
	}
	if err := cfg.Events.Publish(ctx, requested); err != nil {
		return err
	}
	// The API compiled the query before publishing; a command published
	// directly may not have been.
	compiled, err := cachedquery.Compile(cmd.Schema, cmd.SQLQuery)
	if err != nil {
		return h.observe(ctx, c, cmd.QueryID, jobs.QueryStatus{Status: jobs.StatusFailed, Reason: err.Error()})
	}
	spec, err := h.connections.ensure(ctx, c, cmd.Connection)
	if err != nil {
		if jobs.IsTerminal(err) {
			return h.observe(ctx, c, cmd.QueryID, jobs.QueryStatus{Status: jobs.StatusFailed, Reason: "capture: " + err.Error()})
		}
		return err
	}
	q := QuerySpec{
		EnvironmentID: m.EnvironmentID,
		QueryID:       cmd.QueryID,
		PipelineName:  pipeline,
		Schema:        cmd.Schema,
		SQLQuery:      cmd.SQLQuery,
		Plan:          compiled.Plan,
		Capture:       spec,
	}
	status, err := cfg.Processor.EnsureQuery(ctx, q)
	if err != nil {
		if jobs.IsTerminal(err) {
			return h.observe(ctx, c, cmd.QueryID, jobs.QueryStatus{Status: jobs.StatusFailed, Reason: err.Error()})
		}
		return fmt.Errorf("ensure query %s: %w", cmd.QueryID, err)
	}
	return h.observe(ctx, c, cmd.QueryID, status)
}

func (h *CreateCachedQueryHandler) observe(ctx context.Context, c cause, queryID string, status jobs.QueryStatus) error {
	return h.cfg.Events.Publish(ctx, events.CachedQueryObserved{
		Meta:          meta(h.cfg, c),
		QueryID:       queryID,
		Status:        status.Status,
		Reason:        status.Reason,
		JobID:         status.JobID,
		JobState:      status.JobState,
		RootException: status.RootException,
	})
}
