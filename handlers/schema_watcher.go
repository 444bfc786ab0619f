package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/cachedquery"
	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/pgsource"
	"github.com/cdcq/cdcq/internal/secret"
	"github.com/cdcq/cdcq/internal/sourceschema"
	"github.com/cdcq/cdcq/internal/sqlplan"
	"github.com/cdcq/cdcq/projections"
)

// SchemaWatcherConfig holds the schema watcher's dependencies.
type SchemaWatcherConfig struct {
	Connections ConnectionLister
	Queries     QueryLister
	Processor   Processor
	Events      EventPublisher
	Sealer      *secret.Sealer
	// Source connects to source databases (its policy decides which
	// addresses may be reached). Default: a pgsource client with the
	// strict policy.
	Source *pgsource.Client
	// Checked, when set, records the queries found intact by a round that
	// began at at (results.Store.SetSchemaChecked), for the follower of
	// an outside engine's results.
	Checked func(ctx context.Context, queryIDs []string, at time.Time) error
	// Interval between rounds. Default 500ms.
	Interval time.Duration
	Logger   *slog.Logger
	Now      func() time.Time
}

// SchemaWatcher reads, every round, the source catalog of the tables each
// running cached query reads, and fails a query that a DDL broke: a
// column or table it reads renamed or dropped, a type changed so that its
// values mean something else (or, on an engine that reads declared types,
// no longer fit them), its primary key changed, NULL allowed where the
// schema said required, the replica identity lowered under an engine that
// needs before-images. Compatible changes pass. A broken query is stopped
// with its last correct result kept as STALE (BrokenQueryStopper) and
// recorded FAILED with a reason that names the table, the column and the
// change.
//
// It watches the catalog rather than the change stream because a DDL
// shows in the stream only with the next change of the table (the
// embedded engine also stops at the first record that does not fit, see
// internal/ivm), and Debezium keeps its schema history to itself. Run it
// in one worker at a time (see internal/leader).
type SchemaWatcher struct {
	cfg     SchemaWatcherConfig
	opts    sourceschema.Options
	sources map[string]*watchedSource // by environment
	queries map[string]*watchedQuery  // by query id
	// failed holds the queries this watcher failed, until the projection
	// shows it, so that each is failed once; stopping those of them the
	// engine has not stopped yet.
	failed   map[string]time.Time
	stopping map[string]brokenQuery
	// retry holds the environments whose source could not be read.
	retry map[string]retryAt
}

type watchedSource struct {
	sealed string
	conn   *pgx.Conn
}

type watchedQuery struct {
	schema, sql string
	plan        *sqlplan.Plan
	// seen is the last observation that broke nothing, cleanAt when the
	// round that made it began.
	seen    map[sourceschema.Name]*sourceschema.Table
	cleanAt time.Time
}

// NewSchemaWatcher refuses missing dependencies.
func NewSchemaWatcher(cfg SchemaWatcherConfig) (*SchemaWatcher, error) {
	if cfg.Connections == nil || cfg.Queries == nil || cfg.Processor == nil || cfg.Events == nil || cfg.Sealer == nil {
		return nil, errors.New("handlers: SchemaWatcherConfig needs Connections, Queries, Processor, Events and Sealer")
	}
	if cfg.Interval == 0 {
		cfg.Interval = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	w := &SchemaWatcher{cfg: cfg, sources: map[string]*watchedSource{}, queries: map[string]*watchedQuery{},
		failed: map[string]time.Time{}, stopping: map[string]brokenQuery{}, retry: map[string]retryAt{}}
	if r, ok := cfg.Processor.(SchemaReader); ok {
		w.opts = r.SourceSchemaOptions()
	}
	return w, nil
}

// Run watches until ctx ends.
func (w *SchemaWatcher) Run(ctx context.Context) {
	defer w.closeAll()
	for {
		if err := w.Poll(ctx); err != nil && ctx.Err() == nil {
			w.cfg.Logger.Warn("source schema watch", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.cfg.Interval):
		}
	}
}

// Poll runs one round.
func (w *SchemaWatcher) Poll(ctx context.Context) error {
	qs, err := w.cfg.Queries.ActiveQueries(ctx)
	if err != nil {
		return err
	}
	conns, err := w.cfg.Connections.ActiveConnections(ctx)
	if err != nil {
		return err
	}
	sealed := map[string]string{}
	for _, c := range conns {
		sealed[c.EnvironmentID] = c.ConnectionSealed
	}
	byEnv := map[string][]projections.ActiveQuery{}
	watched := map[string]bool{}
	active := make(map[string]bool, len(qs))
	for _, q := range qs {
		if q.Last.Status != jobs.StatusDeleted && q.Last.Status != jobs.StatusDeleting {
			active[q.QueryID] = true
		}
	}
	for id := range w.failed {
		if !active[id] {
			delete(w.failed, id)
		}
	}
	for id := range w.stopping {
		if !active[id] {
			delete(w.stopping, id) // deleted meanwhile: its delete stops it
			continue
		}
		if err := w.stop(ctx, id); err != nil {
			w.cfg.Logger.Warn("stop a query its source's schema change broke", "query_id", id, "error", err)
		}
	}
	for _, q := range qs {
		if at, ok := w.failed[q.QueryID]; ok {
			if watchable(q.Last) && w.cfg.Now().Sub(at) < republishAfter {
				continue // failed already; the projection lags
			}
			delete(w.failed, q.QueryID)
		}
		if q.Engine != w.cfg.Processor.Engine() || !watchable(q.Last) || sealed[q.EnvironmentID] == "" {
			continue
		}
		byEnv[q.EnvironmentID] = append(byEnv[q.EnvironmentID], q)
		watched[q.QueryID] = true
	}
	for id := range w.queries {
		if !watched[id] {
			delete(w.queries, id)
		}
	}
	for env, s := range w.sources {
		if len(byEnv[env]) == 0 {
			s.close()
			delete(w.sources, env)
		}
	}
	for env, queries := range byEnv {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if b := w.retry[env]; w.cfg.Now().Before(b.at) {
			continue // unreachable lately: its checks wait, the others go on
		}
		if err := w.watch(ctx, env, sealed[env], queries); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b := w.retry[env]
			b.delay = min(max(2*b.delay, w.cfg.Interval), maxRetryDelay)
			b.at = w.cfg.Now().Add(b.delay)
			w.retry[env] = b
			w.cfg.Logger.Warn("read source schema", "environment_id", env, "error", err, "retry_in", b.delay)
			continue
		}
		delete(w.retry, env)
	}
	for env := range w.retry {
		if len(byEnv[env]) == 0 {
			delete(w.retry, env)
		}
	}
	return nil
}

// readTimeout bounds connecting to a source and reading its catalog.
const readTimeout = 10 * time.Second

// maxRetryDelay bounds how long an environment whose source could not be
// read waits for its next check. Until a check passes, the results of its
// queries wait too (see SchemaWatcherConfig.Checked).
const maxRetryDelay = 30 * time.Second

// retryAt is when an environment whose source could not be read is tried
// again.
type retryAt struct {
	at    time.Time
	delay time.Duration
}

// watchable says whether a query runs, or ran: one being deleted is not
// watched, nor one whose worker is still starting it (the worker checks
// the schema itself before it starts it, and records the outcome), nor one
// that failed before any job existed or because of a schema change. A job
// that failed otherwise is watched: a DDL can be what made it fail (Flink
// fails on an update without a before-image), and the reason should say
// so.
func watchable(last jobs.QueryStatus) bool {
	switch last.Status {
	case jobs.StatusRunning, jobs.StatusPaused:
		return true
	case jobs.StatusPending:
		return last.JobState != ""
	case jobs.StatusFailed:
		return last.JobID != "" && last.JobState != jobs.JobStateSchemaChanged
	}
	return false
}

// watch checks the queries of one environment against one read of its
// catalog.
func (w *SchemaWatcher) watch(ctx context.Context, env, sealed string, queries []projections.ActiveQuery) error {
	type planned struct {
		q  projections.ActiveQuery
		wq *watchedQuery
	}
	var all []planned
	var names []sourceschema.Name
	seenName := map[sourceschema.Name]bool{}
	previous := map[sourceschema.Name]*sourceschema.Table{}
	for _, q := range queries {
		wq := w.queries[q.QueryID]
		if wq == nil || wq.schema != q.Schema || wq.sql != q.SQLQuery {
			compiled, err := cachedquery.Compile(q.Schema, q.SQLQuery)
			if err != nil {
				continue // the worker failed it already, or will
			}
			wq = &watchedQuery{schema: q.Schema, sql: q.SQLQuery, plan: compiled.Plan}
			w.queries[q.QueryID] = wq
		}
		all = append(all, planned{q, wq})
		for n, t := range wq.seen {
			previous[n] = t
		}
		for _, n := range sourceschema.Tables(wq.plan) {
			if !seenName[n] {
				seenName[n] = true
				names = append(names, n)
			}
		}
	}
	if len(all) == 0 {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	src, err := w.source(rctx, env, sealed)
	if err != nil {
		return err
	}
	// The round's time is the source's clock: the embedded capture marks
	// the first record after a DDL with its commit time on that clock,
	// and the engine waits for a check that began after it.
	var began time.Time
	if err := src.conn.QueryRow(rctx, `SELECT clock_timestamp()`).Scan(&began); err != nil {
		src.close()
		delete(w.sources, env)
		return err
	}
	// Reread finds, by OID, the new name of a table renamed since.
	tables, err := sourceschema.Reread(rctx, src.conn, names, previous)
	if err != nil {
		src.close()
		delete(w.sources, env)
		return err
	}
	var clean []string
	for _, p := range all {
		problems := sourceschema.CheckRunning(p.wq.plan, p.wq.seen, tables, w.opts)
		if len(problems) == 0 {
			p.wq.seen, p.wq.cleanAt = tables, began
			clean = append(clean, p.q.QueryID)
			continue
		}
		if err := w.fail(ctx, p.q, p.wq, problems); err != nil {
			return err
		}
	}
	if w.cfg.Checked != nil {
		return w.cfg.Checked(ctx, clean, began)
	}
	return nil
}

// fail stops a broken query and records it FAILED.
func (w *SchemaWatcher) fail(ctx context.Context, q projections.ActiveQuery, wq *watchedQuery, problems []sourceschema.Problem) error {
	reason := brokenReason(problems)
	// FAILED is recorded first: what the engine says of the job once it is
	// stopped (Flink: canceled) then does not stand in for the reason, even
	// for a moment (the projection keeps a schema change's reason against
	// later observations of the same command).
	if err := w.cfg.Events.Publish(ctx, events.CachedQueryObserved{
		Meta: events.Meta{EventID: uuid.NewString(), EnvironmentID: q.EnvironmentID,
			CommandID: q.CommandID, CommandSeq: q.CommandSeq, At: w.cfg.Now().UTC()},
		QueryID: q.QueryID, Status: jobs.StatusFailed, Reason: reason, JobID: q.Last.JobID,
		JobState: jobs.JobStateSchemaChanged,
	}); err != nil {
		return err
	}
	w.cfg.Logger.Warn("cached query stopped: its source's schema changed",
		"environment_id", q.EnvironmentID, "query_id", q.QueryID, "reason", reason)
	delete(w.queries, q.QueryID)
	w.failed[q.QueryID] = w.cfg.Now()
	w.stopping[q.QueryID] = brokenQuery{spec: QuerySpec{EnvironmentID: q.EnvironmentID, QueryID: q.QueryID,
		PipelineName: q.PipelineName, Schema: q.Schema, SQLQuery: q.SQLQuery, Plan: wq.plan},
		reason: reason, cleanAt: wq.cleanAt}
	if err := w.stop(ctx, q.QueryID); err != nil {
		// The next rounds try again.
		w.cfg.Logger.Warn("stop a query its source's schema change broke", "query_id", q.QueryID, "error", err)
	}
	return nil
}

// brokenQuery is a query failed by the watcher that its engine has yet to
// stop.
type brokenQuery struct {
	spec    QuerySpec
	reason  string
	cleanAt time.Time
}

// stop has the engine stop a failed query; one that could not be stopped
// stays in w.stopping, for the next round.
func (w *SchemaWatcher) stop(ctx context.Context, queryID string) error {
	b, ok := w.stopping[queryID]
	if !ok {
		return nil
	}
	if s, ok := w.cfg.Processor.(BrokenQueryStopper); ok {
		if err := s.StopBrokenQuery(ctx, b.spec, b.reason, b.cleanAt); err != nil {
			return fmt.Errorf("stop query %s: %w", queryID, err)
		}
	}
	delete(w.stopping, queryID)
	return nil
}

// brokenReason is the reason recorded for a query that schema problems
// broke.
func brokenReason(problems []sourceschema.Problem) string {
	return joinProblems(problems) + "; " + RecreateAdvice
}

// joinProblems says every problem, in order.
func joinProblems(problems []sourceschema.Problem) string {
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.Message
	}
	return strings.Join(msgs, "; ")
}

// source returns the environment's open connection, opening it (again)
// when needed.
func (w *SchemaWatcher) source(ctx context.Context, env, sealed string) (*watchedSource, error) {
	if s := w.sources[env]; s != nil && s.sealed == sealed && !s.conn.IsClosed() {
		return s, nil
	} else if s != nil {
		s.close()
		delete(w.sources, env)
	}
	plain, err := w.cfg.Sealer.Open(sealed, env)
	if err != nil {
		return nil, fmt.Errorf("stored connection does not open with this worker's key: %w", err)
	}
	conn, err := w.cfg.Source.Connect(ctx, plain)
	if err != nil {
		return nil, err
	}
	s := &watchedSource{sealed: sealed, conn: conn}
	w.sources[env] = s
	return s, nil
}

func (s *watchedSource) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.conn.Close(ctx)
}

func (w *SchemaWatcher) closeAll() {
	for env, s := range w.sources {
		s.close()
		delete(w.sources, env)
	}
}

// Catalog reads tables from a source database's catalog.
type Catalog interface {
	// ReadTables reads the named tables (sourceschema.Read); a table that
	// does not exist is absent from the map.
	ReadTables(ctx context.Context, connString string, names []sourceschema.Name) (map[sourceschema.Name]*sourceschema.Table, error)
}

// SourceCatalog reads the catalog over a connection of its own per call.
type SourceCatalog struct {
	// Source connects to source databases; nil is a pgsource client with
	// the strict policy.
	Source *pgsource.Client
}

// ReadTables implements Catalog.
func (c SourceCatalog) ReadTables(ctx context.Context, connString string, names []sourceschema.Name) (map[sourceschema.Name]*sourceschema.Table, error) {
	conn, err := c.Source.Connect(ctx, connString)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return sourceschema.Read(ctx, conn, names)
}
