package handlers

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/cdcq/cdcq/internal/cachedquery"
	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/secret"
	"github.com/cdcq/cdcq/projections"
)

// ConnectionLister lists the captures the poller should watch.
type ConnectionLister interface {
	ActiveConnections(ctx context.Context) ([]projections.ActiveConnection, error)
}

// QueryLister lists the cached queries the poller should watch.
type QueryLister interface {
	ActiveQueries(ctx context.Context) ([]projections.ActiveQuery, error)
}

// StatusPollerConfig holds the poller's dependencies.
type StatusPollerConfig struct {
	Connections ConnectionLister
	Capture     Capture
	// Queries and Processor, when both set, have the poller observe
	// cached queries' jobs too.
	Queries   QueryLister
	Processor Processor
	Events    EventPublisher
	Sealer    *secret.Sealer
	// Interval between rounds. Default 10s.
	Interval time.Duration
	Logger   *slog.Logger
	Now      func() time.Time
}

// StatusPoller observes every active capture each round and publishes a
// ConnectionObserved event when what it sees differs from the projection,
// so checkJobStatus follows the engines without any request. Its events
// carry the command whose state it read (the row's command id and number),
// so that an observation made before a newer command was carried out does
// not overwrite what that command did. Run it in one worker at a time (see
// internal/leader).
type StatusPoller struct {
	cfg StatusPollerConfig
	// published remembers each query's last published observation, so
	// that while the projection has not caught up with it yet, the same
	// observation is not published again every round.
	published map[string]publishedStatus
}

type publishedStatus struct {
	status jobs.QueryStatus
	at     time.Time
}

// republishAfter is how long an observation is not published again while
// the projection does not show it yet.
const republishAfter = 10 * time.Second

// NewStatusPoller refuses missing dependencies.
func NewStatusPoller(cfg StatusPollerConfig) (*StatusPoller, error) {
	if cfg.Connections == nil || cfg.Capture == nil || cfg.Events == nil || cfg.Sealer == nil {
		return nil, errors.New("handlers: StatusPollerConfig needs Connections, Capture, Events and Sealer")
	}
	if cfg.Interval == 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &StatusPoller{cfg: cfg, published: map[string]publishedStatus{}}, nil
}

// Run polls until ctx ends.
func (p *StatusPoller) Run(ctx context.Context) {
	for {
		if err := p.Poll(ctx); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Warn("status poll", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(p.cfg.Interval):
		}
	}
}

// Poll runs one round.
func (p *StatusPoller) Poll(ctx context.Context) error {
	if err := p.pollConnections(ctx); err != nil {
		return err
	}
	if p.cfg.Queries == nil || p.cfg.Processor == nil {
		return nil
	}
	return p.pollQueries(ctx)
}

// pollQueries observes every active cached query's job. Observing needs
// only the job's deterministic name, so the plan is not compiled.
func (p *StatusPoller) pollQueries(ctx context.Context) error {
	qs, err := p.cfg.Queries.ActiveQueries(ctx)
	if err != nil {
		return err
	}
	active := make(map[string]bool, len(qs))
	for _, q := range qs {
		active[q.QueryID] = true
	}
	for id := range p.published {
		if !active[id] {
			delete(p.published, id)
		}
	}
	for _, q := range qs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if q.Engine != p.cfg.Processor.Engine() {
			continue
		}
		if q.Last.Status == jobs.StatusPending && q.Last.JobState == "" {
			// A worker is still starting the job; it records the outcome
			// itself, and an observation now would see no job at all.
			continue
		}
		if q.Last.Status == jobs.StatusFailed && q.Last.JobState == jobs.JobStateSchemaChanged {
			// Stopped for good because its source's schema changed: its
			// canceled job says less than the reason on record.
			continue
		}
		if q.Last.Status == jobs.StatusFailed && q.Last.JobID == "" {
			// It failed before any job existed (the engine refused it, or its
			// capture failed): there is nothing to observe, and "no job"
			// would hide the reason.
			continue
		}
		spec := QuerySpec{
			EnvironmentID: q.EnvironmentID, QueryID: q.QueryID, PipelineName: q.PipelineName,
			Schema: q.Schema, SQLQuery: q.SQLQuery,
		}
		status, err := p.cfg.Processor.ObserveQuery(ctx, spec)
		if err != nil {
			p.cfg.Logger.Warn("observe query", "environment_id", q.EnvironmentID, "query_id", q.QueryID, "error", err)
			continue
		}
		if q.Last.Status == jobs.StatusFailed && q.Last.Reason != "" && status.Status == jobs.StatusFailed && status.JobID == "" {
			// The failed job is gone from the engine (its history was
			// lost, say): "no job" says less than the reason on record.
			continue
		}
		if queryChanged(q.Last, status) {
			if last, ok := p.published[q.QueryID]; ok && last.status == status && p.cfg.Now().Sub(last.at) < republishAfter {
				continue // published already; the projection lags
			}
			if err := p.publishQuery(ctx, q, status); err != nil {
				return err
			}
			p.published[q.QueryID] = publishedStatus{status: status, at: p.cfg.Now()}
		} else {
			delete(p.published, q.QueryID)
		}
		if r, ok := p.cfg.Processor.(Restarter); ok && r.NeedsRestart(status) {
			if err := p.restart(ctx, q, spec); err != nil {
				return err
			}
		}
	}
	return nil
}

// restart starts a query's job again, and records what came of it.
func (p *StatusPoller) restart(ctx context.Context, q projections.ActiveQuery, spec QuerySpec) error {
	log := p.cfg.Logger.With("environment_id", q.EnvironmentID, "query_id", q.QueryID)
	compiled, err := cachedquery.Compile(q.Schema, q.SQLQuery)
	if err != nil {
		return p.publishQuery(ctx, q, jobs.QueryStatus{Status: jobs.StatusFailed, Reason: err.Error()})
	}
	spec.Plan = compiled.Plan
	log.Info("starting the query's job again", "reason", "the engine asked for a restart")
	status, err := p.cfg.Processor.EnsureQuery(ctx, spec)
	if err != nil {
		if !jobs.IsTerminal(err) {
			log.Warn("restart query", "error", err)
			return nil // the next round tries again
		}
		status = jobs.QueryStatus{Status: jobs.StatusFailed, Reason: err.Error()}
	}
	return p.publishQuery(ctx, q, status)
}

// queryChanged reports whether an observation says something the
// projection does not have. The projection keeps the status and reason of
// a job that ran or failed when an observation of the same command says
// PENDING (events package doc), so such an observation changes only the
// rest.
func queryChanged(last, now jobs.QueryStatus) bool {
	if now.Status == jobs.StatusPending {
		switch last.Status {
		case jobs.StatusRunning, jobs.StatusPaused, jobs.StatusFailed:
			now.Status, now.Reason = last.Status, last.Reason
		}
	}
	return now != last
}

// publishQuery records an observation of q, as one made under the command
// whose state the poller read.
func (p *StatusPoller) publishQuery(ctx context.Context, q projections.ActiveQuery, status jobs.QueryStatus) error {
	return p.cfg.Events.Publish(ctx, events.CachedQueryObserved{
		Meta: events.Meta{EventID: uuid.NewString(), EnvironmentID: q.EnvironmentID,
			CommandID: q.CommandID, CommandSeq: q.CommandSeq, At: p.cfg.Now().UTC()},
		QueryID: q.QueryID, Status: status.Status, Reason: status.Reason, JobID: status.JobID,
		JobState: status.JobState, RootException: status.RootException,
	})
}

func (p *StatusPoller) pollConnections(ctx context.Context) error {
	conns, err := p.cfg.Connections.ActiveConnections(ctx)
	if err != nil {
		return err
	}
	for _, c := range conns {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		status, err := p.observe(ctx, c)
		if err != nil {
			p.cfg.Logger.Warn("observe capture", "environment_id", c.EnvironmentID, "error", err)
			continue
		}
		if status.Equal(c.Last) {
			continue
		}
		if status.Gone && c.Last.Status == jobs.StatusFailed && c.Last.Reason != "" {
			// It failed before (Kafka Connect refused its configuration,
			// say) and left no job: "no connector" says less than the
			// reason on record.
			continue
		}
		// The observation belongs to the command whose state was read: if a
		// newer command moved on meanwhile, the projector leaves it aside.
		ev := events.ConnectionObserved{
			Meta: events.Meta{EventID: uuid.NewString(), EnvironmentID: c.EnvironmentID,
				CommandID: c.CommandID, CommandSeq: c.CommandSeq, At: p.cfg.Now().UTC()},
			Capture: status,
		}
		if err := p.cfg.Events.Publish(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

func (p *StatusPoller) observe(ctx context.Context, c projections.ActiveConnection) (jobs.CaptureStatus, error) {
	plain, err := p.cfg.Sealer.Open(c.ConnectionSealed)
	if err != nil {
		return jobs.CaptureStatus{Status: jobs.StatusFailed, Reason: "stored connection does not open with this worker's key: " + err.Error()}, nil
	}
	spec := captureSpec(c.EnvironmentID, plain)
	spec.ConnectorName, spec.SlotName, spec.PublicationName = c.ConnectorName, c.SlotName, c.PublicationName
	return p.cfg.Capture.Observe(ctx, spec)
}
