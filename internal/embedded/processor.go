package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/cdcq/cdcq/handlers"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/leader"
	"github.com/cdcq/cdcq/internal/results"
	"github.com/cdcq/cdcq/projections"
)

// Engine is the name this processor reports.
const EngineName = "embedded"

// QueryLister lists the cached queries of the job-state database.
type QueryLister interface {
	ActiveQueries(ctx context.Context) ([]projections.ActiveQuery, error)
}

// Config configures the embedded processor.
type Config struct {
	// Kafka is the cluster: bootstrap addresses (required) and security.
	Kafka kafkasec.Cluster
	// DatabaseURL is the job-state database, for the leases. Required.
	DatabaseURL string
	// Results materialises results. Required.
	Results *results.Store
	// Queries lists the queries to run. Required.
	Queries QueryLister
	// NewEngine builds the incremental engine of a plan. Required.
	NewEngine NewEngineFunc
	// Interval is how often the supervisor looks for queries to run;
	// a dead worker's queries move within about one Interval. Default 2s.
	Interval time.Duration
	// SessionTimeout: see leader.LeasesConfig.SessionTimeout.
	SessionTimeout time.Duration
	// ProgressEvery bounds how often progress is written while nothing
	// else changes. Default 1s.
	ProgressEvery time.Duration
	// Snapshots tells whether the capture's initial snapshot of an
	// environment is complete: a query is LIVE only once it is and the
	// query has read the change topics to where they ended then. Nil
	// treats every snapshot as complete (tests without a capture).
	Snapshots handlers.SnapshotReporter
	// SnapshotEvery is how often the capture is asked. Default 500ms.
	SnapshotEvery time.Duration
	// StatusChanged, when set, is called with the environment id when what
	// ObserveQuery reports of one of its queries changed: running, LIVE,
	// catching up again, FAILED or stopped. It must not block (the status
	// poller is nudged through statusnudge).
	StatusChanged func(environmentID string)
	// ChangeTopicRetention is the retention of the change topics a query
	// creates for tables never written yet (kafkabus.ChangeTopicConfigs;
	// 0: kept for ever), the capture's own setting.
	ChangeTopicRetention time.Duration
	// CheckpointInterval and CheckpointEvents say how often a live
	// query's state is checkpointed into the job-state database (after
	// this long or this many source records, whichever comes first), so
	// that a restart goes on from there instead of reading the change
	// topics from their start. Defaults DefaultCheckpointInterval and
	// DefaultCheckpointEvents; a negative interval turns checkpoints off.
	CheckpointInterval time.Duration
	CheckpointEvents   int64
	Logger             *slog.Logger
}

// Processor is the Processor port's embedded implementation, and the
// supervisor that runs the queries.
type Processor struct {
	cfg    Config
	runner *runner
	// wake tells Run that a query was created.
	wake chan struct{}
}

// New refuses a configuration that lacks a dependency.
func New(cfg Config) (*Processor, error) {
	switch {
	case len(cfg.Kafka.Brokers) == 0:
		return nil, errors.New("embedded: Config.Kafka.Brokers is empty")
	case cfg.DatabaseURL == "":
		return nil, errors.New("embedded: Config.DatabaseURL is empty")
	case cfg.Results == nil, cfg.Queries == nil, cfg.NewEngine == nil:
		return nil, errors.New("embedded: Config needs Results, Queries and NewEngine")
	}
	if cfg.Interval == 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.ProgressEvery == 0 {
		cfg.ProgressEvery = time.Second
	}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	switch {
	case cfg.CheckpointInterval == 0:
		cfg.CheckpointInterval = DefaultCheckpointInterval
	case cfg.CheckpointInterval < 0:
		cfg.CheckpointInterval = 0
	}
	if cfg.CheckpointEvents <= 0 {
		cfg.CheckpointEvents = DefaultCheckpointEvents
	}
	host, _ := os.Hostname()
	return &Processor{cfg: cfg, wake: make(chan struct{}, 1), runner: &runner{
		kafka: cfg.Kafka, results: cfg.Results, newEngine: cfg.NewEngine,
		owner: fmt.Sprintf("%s/%d", host, os.Getpid()), logger: cfg.Logger, progressEvery: cfg.ProgressEvery,
		snapshots: cfg.Snapshots, snapshotEvery: cfg.SnapshotEvery, changed: cfg.StatusChanged,
		changeTopicRetention: cfg.ChangeTopicRetention,
		checkpointEvery:      cfg.CheckpointInterval, checkpointEvents: cfg.CheckpointEvents,
	}}, nil
}

// Engine names the implementation.
func (p *Processor) Engine() string { return EngineName }

// NotifiesStatus says whether the processor tells of its queries' status
// changes (Config.StatusChanged): the status poller need not poll its
// pending queries faster (handlers.StatusNotifier).
func (p *Processor) NotifiesStatus() bool { return p.cfg.StatusChanged != nil }

// EnsureQuery checks that the engine can maintain the plan and clears a
// deleted query's marker; a supervisor then runs it. Idempotent.
func (p *Processor) EnsureQuery(ctx context.Context, spec handlers.QuerySpec) (jobs.QueryStatus, error) {
	if spec.Plan == nil {
		return jobs.QueryStatus{}, jobs.Terminalf("embedded: query %s has no compiled plan", spec.QueryID)
	}
	if _, err := p.cfg.NewEngine(spec.Plan, spec.QueryID); err != nil {
		return jobs.QueryStatus{}, jobs.Terminal(err)
	}
	if err := p.cfg.Results.Reset(ctx, spec.QueryID); err != nil {
		return jobs.QueryStatus{}, err
	}
	leader.Nudge(p.wake) // run it now rather than at the next round
	return p.ObserveQuery(ctx, spec)
}

// ObserveQuery reports the query's progress as a job status.
func (p *Processor) ObserveQuery(ctx context.Context, spec handlers.QuerySpec) (jobs.QueryStatus, error) {
	pr, err := p.cfg.Results.Progress(ctx, spec.QueryID)
	if errors.Is(err, results.ErrNotFound) {
		return jobs.QueryStatus{Status: jobs.StatusPending, JobState: "SCHEDULED"}, nil
	}
	if err != nil {
		return jobs.QueryStatus{}, err
	}
	s := jobs.QueryStatus{JobState: pr.State, Reason: pr.LastError}
	switch pr.State {
	case results.StateLive, results.StateCatchingUp:
		s.Status = jobs.StatusRunning
	case results.StateDeleted:
		s.Status = jobs.StatusDeleted
	case results.StateStale:
		s.Status, s.JobState = jobs.StatusFailed, jobs.JobStateSchemaChanged
	case StateFailed:
		s.Status = jobs.StatusFailed
	default:
		s.Status = jobs.StatusPending
	}
	return s, nil
}

// DeleteQuery removes the query's result; the worker running it stops at
// its next write.
func (p *Processor) DeleteQuery(ctx context.Context, spec handlers.QuerySpec) error {
	return p.cfg.Results.MarkDeleted(ctx, spec.QueryID)
}

// StopBrokenQuery marks the query's result stale: the worker running it
// stops at its next write, and the rows stay at the last batch it
// applied. That batch is correct: a record that does not fit the plan
// stops the engine before it applies anything of it (see internal/ivm),
// and one that fits is read by its values' meaning.
func (p *Processor) StopBrokenQuery(ctx context.Context, spec handlers.QuerySpec, reason string, _ time.Time) error {
	return p.cfg.Results.MarkStale(ctx, spec.QueryID, reason)
}

// DeleteEnvironment removes the results of every embedded query of the
// environment.
func (p *Processor) DeleteEnvironment(ctx context.Context, environmentID string) error {
	qs, err := p.cfg.Queries.ActiveQueries(ctx)
	if err != nil {
		return err
	}
	for _, q := range qs {
		if q.EnvironmentID == environmentID && q.Engine == EngineName {
			if err := p.cfg.Results.MarkDeleted(ctx, q.QueryID); err != nil {
				return err
			}
		}
	}
	return nil
}

// recreated waits until ctx ends (false) or the query's progress is gone,
// which EnsureQuery does when the query is created again (true).
func (p *Processor) recreated(ctx context.Context, queryID string) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(p.cfg.Interval):
		}
		if _, err := p.cfg.Results.Progress(ctx, queryID); errors.Is(err, results.ErrNotFound) {
			return true
		}
	}
}

// leaseNamespace is the namespace of the queries' leases (leader.RunLeases).
const leaseNamespace = "query"

// Run supervises until ctx ends: every worker runs it, and each embedded
// query runs in the one that holds its lease.
func (p *Processor) Run(ctx context.Context) error {
	var mu sync.Mutex
	var latest map[string]projections.ActiveQuery
	wanted := func(ctx context.Context) ([]string, error) {
		qs, err := p.cfg.Queries.ActiveQueries(ctx)
		if err != nil {
			return nil, err
		}
		// A query deleted with its environment before the projection
		// listed it keeps no result (results.Store.ForgetDeleted).
		if n, err := p.cfg.Results.ForgetDeleted(ctx, EngineName, func(id, _ string) int64 { return leader.LeaseKey(leaseNamespace, id) }); err != nil {
			p.cfg.Logger.Warn("forget the results of deleted queries", "error", err)
		} else if n > 0 {
			p.cfg.Logger.Info("forgot the results of deleted queries", "queries", n)
		}
		mu.Lock()
		defer mu.Unlock()
		latest = map[string]projections.ActiveQuery{}
		var ids []string
		for _, q := range qs {
			if q.Engine == EngineName && (q.Last.Status == jobs.StatusPending || q.Last.Status == jobs.StatusRunning) {
				latest[q.QueryID] = q
				ids = append(ids, q.QueryID)
			}
		}
		return ids, nil
	}
	run := func(ctx context.Context, id string) {
		for ctx.Err() == nil {
			mu.Lock()
			q := latest[id]
			mu.Unlock()
			err := p.runner.run(ctx, q)
			if errors.Is(err, leader.ErrFenced) {
				// Another worker took the query over (this one was
				// silent past its session's timeout), or Kafka refused
				// the result producer: give the lease back. Taken again,
				// by whichever worker, the query runs with a new epoch.
				p.cfg.Logger.Warn("cached query: this worker's lease was taken over; stopped", "query_id", id, "error", err)
				return
			}
			if err == nil || errors.Is(err, errStopped) {
				if err != nil {
					p.cfg.Logger.Warn("cached query stopped", "query_id", id, "error", err)
					// Failed, stale or deleted, as recorded before it stopped.
					p.runner.statusChanged(q.EnvironmentID)
				}
				// Keep the lease until the query is no longer wanted, or
				// until it is created again (its progress was reset)
				// before this worker noticed that it was deleted.
				if p.recreated(ctx, id) {
					continue
				}
				return
			}
			p.cfg.Logger.Warn("cached query failed; restarting", "query_id", id, "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(p.cfg.Interval):
			}
		}
	}
	return leader.RunLeases(ctx, leader.LeasesConfig{
		DatabaseURL: p.cfg.DatabaseURL, Namespace: leaseNamespace, Wanted: wanted, Run: run,
		Interval: p.cfg.Interval, SessionTimeout: p.cfg.SessionTimeout, Wake: p.wake, Logger: p.cfg.Logger,
	})
}
