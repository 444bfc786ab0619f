package handlers

import (
	"context"
	"fmt"
	"time"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/cachedquery"
	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/internal/sourceschema"
	"github.com/cdcq/cdcq/internal/sqlplan"
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
		if isRejected(err) {
			if rerr := rejectCommand(ctx, cfg, c, cmd.CommandName(), err); rerr != nil {
				return rerr
			}
			return h.observe(ctx, c, cmd.QueryID, jobs.QueryStatus{Status: jobs.StatusFailed, Reason: err.Error()})
		}
		if jobs.IsTerminal(err) {
			return h.observe(ctx, c, cmd.QueryID, jobs.QueryStatus{Status: jobs.StatusFailed, Reason: "capture: " + err.Error()})
		}
		return err
	}
	if reason, err := h.checkSource(ctx, spec, compiled.Plan); err != nil {
		if jobs.IsTerminal(err) {
			return h.observe(ctx, c, cmd.QueryID, jobs.QueryStatus{Status: jobs.StatusFailed, Reason: "check the source's schema: " + err.Error()})
		}
		return fmt.Errorf("check query %s against its source: %w", cmd.QueryID, err)
	} else if reason != "" {
		return h.observe(ctx, c, cmd.QueryID, jobs.QueryStatus{Status: jobs.StatusFailed, Reason: reason})
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

// checkSource compares the tables and columns the query reads, as its
// Prisma schema describes them, with the source database's catalog: a
// mismatch (a missing table or column, another type, NULL allowed where
// the schema says required, another primary key) is the reason the query
// fails before any job starts. An unreachable database is an error, which
// the command's retries take care of.
func (h *CreateCachedQueryHandler) checkSource(ctx context.Context, spec CaptureSpec, plan *sqlplan.Plan) (string, error) {
	if h.cfg.Catalog == nil {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tables, err := h.cfg.Catalog.ReadTables(ctx, spec.ConnectionString, sourceschema.Tables(plan))
	if err != nil {
		return "", err
	}
	var opts sourceschema.Options
	if r, ok := h.cfg.Processor.(SchemaReader); ok {
		opts = r.SourceSchemaOptions()
	}
	// The capture sets REPLICA IDENTITY FULL itself (Debezium does it
	// when its connector starts, after this): the watcher minds it later.
	opts.NeedBeforeImages = false
	problems := sourceschema.CheckCreate(plan, tables, opts)
	if len(problems) == 0 {
		return "", nil
	}
	return "the Prisma schema does not match the database: " + joinProblems(problems), nil
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
