package handlers

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
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
	// Interval between rounds. Default 10s. A nudge (Nudge) has an
	// environment observed at once.
	Interval time.Duration
	// PendingInterval is how often a capture or a query's job that is
	// PENDING (as the projection has it, or as last observed) is observed
	// again when its engine does not nudge the poller itself
	// (StatusNotifier): Kafka Connect and Flink can only be polled. It
	// applies for FastPollFor after the job was first seen pending, then
	// the job waits for the rounds again. Default 1s; negative: pending
	// jobs wait for the rounds.
	PendingInterval time.Duration
	// FastPollFor: see PendingInterval. Default 1m.
	FastPollFor time.Duration
	// LagSampleInterval bounds how often an observation of a capture that
	// differs from the one on record only in its figures (lag, retained
	// WAL, rows copied: jobs.CaptureStatus.SameState) is recorded in the
	// environment's job events; in between it is published as a sample
	// (events.ConnectionObserved.Sample), which updates what
	// checkJobStatus shows without adding a job event. Default 1m;
	// negative: every observation is recorded.
	LagSampleInterval time.Duration
	Logger            *slog.Logger
	Now               func() time.Time
}

// StatusNotifier is implemented by an engine (a Capture or a Processor)
// that nudges the status poller (StatusPoller.Nudge, through whatever
// carries the nudge to the process that runs the poller) whenever a status
// it reports changes. The poller does not poll such an engine's pending
// jobs faster than its rounds.
type StatusNotifier interface {
	NotifiesStatus() bool
}

// StateFingerprinter is an engine that cannot push (Kafka Connect, Flink)
// but can list the state of all its jobs in one cheap request: per
// environment, a text that changes whenever the state of one of that
// environment's jobs changes. The poller lists it every PendingInterval
// and observes at once the environments whose text changed, so that a
// running connector or job that fails shows within about a second, not at
// the next round.
type StateFingerprinter interface {
	StateFingerprints(ctx context.Context) (map[string]string, error)
}

// notifies says whether engine nudges the poller itself.
func notifies(engine any) bool {
	n, ok := engine.(StatusNotifier)
	return ok && n.NotifiesStatus()
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

	// Nudges, from any goroutine: the environments to observe at once
	// ("" is every environment); wake has Run look at them.
	mu     sync.Mutex
	nudged map[string]bool
	wake   chan struct{}

	// Run's own. followUps are nudged environments whose observation the
	// projection could not take yet (the job's first event is still on its
	// way), by when to give up; pending are the jobs ("connection/<env>",
	// "query/<env>/<id>") PENDING on an engine that does not nudge, by
	// when each was first seen so.
	followUps map[string]time.Time
	pending   map[string]time.Time
	// recorded is when each environment's capture observation was last
	// published as an ordinary (not a sample) observation.
	recorded map[string]time.Time
}

// followUpEvery is how often a nudged environment whose observation the
// projection could not take yet is observed again, for followUpFor.
const (
	followUpEvery = 100 * time.Millisecond
	followUpFor   = 10 * time.Second
)

// round is what one poll saw, by environment.
type round struct {
	// only are the environments observed; nil: every one.
	only map[string]bool
	// pendingOnly: observe only the pending jobs of engines that do not
	// nudge, for which FastPollFor is not over.
	pendingOnly bool
	now         time.Time
	// seen: the environment's connection or one of its queries was listed.
	seen map[string]bool
	// unsettled: something of the environment could not be observed
	// because the projection does not have its job yet.
	unsettled map[string]bool
	// pending: jobs (keys as StatusPoller.pending) PENDING on an engine
	// that does not nudge the poller.
	pending map[string]bool
}

func (r *round) wants(environmentID string) bool { return r.only == nil || r.only[environmentID] }

// covers says whether the round looked at every job of the environment of
// key (a key of StatusPoller.pending).
func (r *round) covers(key string) bool {
	parts := strings.SplitN(key, "/", 3)
	return len(parts) >= 2 && r.wants(parts[1])
}

// young says whether a job is not yet pending for longer than FastPollFor.
func (p *StatusPoller) young(key string, now time.Time) bool {
	since, ok := p.pending[key]
	return !ok || now.Sub(since) <= p.cfg.FastPollFor
}

func connectionKey(environmentID string) string { return "connection/" + environmentID }

func queryKey(environmentID, queryID string) string { return "query/" + environmentID + "/" + queryID }

// fastPoll says, for a job of an engine that does not nudge (fast), PENDING
// in the projection (lastPending), whether a pendingOnly round observes it,
// and notes it pending. A round that is not pendingOnly observes every job
// it wants.
func (p *StatusPoller) fastPoll(r *round, fast bool, key string, lastPending bool) bool {
	if !r.pendingOnly {
		return true
	}
	since, tracked := p.pending[key]
	if !fast || (!lastPending && !tracked) {
		return false
	}
	r.pending[key] = true // until observed otherwise
	return !tracked || r.now.Sub(since) <= p.cfg.FastPollFor
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
	if cfg.PendingInterval == 0 {
		cfg.PendingInterval = time.Second
	}
	if cfg.FastPollFor == 0 {
		cfg.FastPollFor = time.Minute
	}
	if cfg.LagSampleInterval == 0 {
		cfg.LagSampleInterval = time.Minute
	}
	return &StatusPoller{cfg: cfg, published: map[string]publishedStatus{},
		nudged: map[string]bool{}, wake: make(chan struct{}, 1),
		followUps: map[string]time.Time{}, pending: map[string]time.Time{}, recorded: map[string]time.Time{}}, nil
}

// Nudge has the poller observe an environment's capture and queries at
// once instead of on its next round; "" means every environment. It never
// blocks, and nudges that arrive while a poll runs are taken together by
// the next one. Safe from any goroutine; a poller that does not run
// ignores them.
func (p *StatusPoller) Nudge(environmentID string) {
	p.mu.Lock()
	p.nudged[environmentID] = true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// takeNudged returns the nudged environments and forgets them; nil when
// every environment was nudged.
func (p *StatusPoller) takeNudged() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.nudged
	p.nudged = map[string]bool{}
	if out[""] {
		return nil
	}
	return out
}

// Run polls every Interval, and at once the environments nudged, until
// ctx ends; pending jobs of engines that do not nudge, every
// PendingInterval.
func (p *StatusPoller) Run(ctx context.Context) {
	// Nudges sent before this poller ran are covered by the first round.
	p.takeNudged()
	full := time.NewTimer(0)
	defer full.Stop()
	var pendingTick <-chan time.Time
	queriesPolled := p.cfg.Queries != nil && p.cfg.Processor != nil
	if p.cfg.PendingInterval > 0 && (!notifies(p.cfg.Capture) || (queriesPolled && !notifies(p.cfg.Processor))) {
		t := time.NewTicker(p.cfg.PendingInterval)
		defer t.Stop()
		pendingTick = t.C
	}
	var soon *time.Timer
	defer func() {
		if soon != nil {
			soon.Stop()
		}
	}()
	if p.cfg.PendingInterval > 0 {
		var engines []StateFingerprinter
		for _, e := range []any{p.cfg.Capture, p.cfg.Processor} {
			if f, ok := e.(StateFingerprinter); ok && !notifies(e) {
				engines = append(engines, f)
			}
		}
		if len(engines) > 0 {
			done := make(chan struct{})
			defer func() { <-done }()
			go func() {
				defer close(done)
				p.watchStates(ctx, engines)
			}()
		}
	}
	for {
		var soonC <-chan time.Time
		if soon != nil {
			soonC = soon.C
		}
		var only map[string]bool
		nudged := false
		select {
		case <-ctx.Done():
			return
		case <-full.C:
			p.takeNudged()
		case <-p.wake:
			only, nudged = p.takeNudged(), true
		case <-soonC:
			soon = nil
			only = p.due()
		case <-pendingTick:
			if err := p.pollPending(ctx); err != nil && ctx.Err() == nil {
				p.cfg.Logger.Warn("status poll of pending jobs", "error", err)
			}
			continue
		}
		if only == nil {
			// A whole round: the next one is an Interval later.
			if !full.Stop() {
				select {
				case <-full.C:
				default:
				}
			}
			full.Reset(p.cfg.Interval)
		}
		if only == nil || len(only) > 0 {
			if err := p.poll(ctx, only, nudged); err != nil && ctx.Err() == nil {
				p.cfg.Logger.Warn("status poll", "error", err)
			}
		}
		if d, ok := p.nextSoon(); ok {
			if soon != nil {
				soon.Stop()
			}
			soon = time.NewTimer(d)
		}
	}
}

// watchStates lists the engines' state fingerprints every
// PendingInterval until ctx ends, and nudges the environments whose
// fingerprint changed since the previous listing (appeared or went too).
func (p *StatusPoller) watchStates(ctx context.Context, engines []StateFingerprinter) {
	t := time.NewTicker(p.cfg.PendingInterval)
	defer t.Stop()
	var last map[string]string
	for {
		now := map[string]string{}
		ok := true
		for i, e := range engines {
			fps, err := e.StateFingerprints(ctx)
			if err != nil {
				if ctx.Err() == nil {
					p.cfg.Logger.Debug("status poller: list job states", "error", err)
				}
				ok = false
				break
			}
			for env, fp := range fps {
				now[env] += strconv.Itoa(i) + ":" + fp + ";"
			}
		}
		if ok {
			if last != nil {
				for env, fp := range now {
					if last[env] != fp {
						p.Nudge(env)
					}
				}
				for env := range last {
					if _, still := now[env]; !still {
						p.Nudge(env)
					}
				}
			}
			last = now
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// due returns the environments followed up, to observe again now.
// Expired entries are dropped; the rounds take them over.
func (p *StatusPoller) due() map[string]bool {
	now := p.cfg.Now()
	out := map[string]bool{}
	for env, until := range p.followUps {
		if now.After(until) {
			delete(p.followUps, env)
			continue
		}
		out[env] = true
	}
	return out
}

// nextSoon says when environments are due to be followed up.
func (p *StatusPoller) nextSoon() (time.Duration, bool) {
	return followUpEvery, len(p.followUps) > 0
}

// Poll runs one round. Not while Run runs.
func (p *StatusPoller) Poll(ctx context.Context) error {
	return p.poll(ctx, nil, false)
}

// pollPending observes the pending jobs of the engines that do not nudge.
func (p *StatusPoller) pollPending(ctx context.Context) error {
	return p.run(ctx, &round{pendingOnly: true})
}

// poll observes the environments in only (nil: every one). nudged says
// that they were nudged: one whose observation the projection could not
// take yet is followed up.
func (p *StatusPoller) poll(ctx context.Context, only map[string]bool, nudged bool) error {
	r := &round{only: only}
	if err := p.run(ctx, r); err != nil {
		return err
	}
	for env := range only { // nil: a whole round, nothing to follow up
		_, following := p.followUps[env]
		switch {
		case r.seen[env] && !r.unsettled[env]:
			delete(p.followUps, env)
		case nudged && !following:
			p.followUps[env] = r.now.Add(followUpFor)
		}
	}
	return nil
}

// run observes what r asks for and keeps track of the pending jobs.
func (p *StatusPoller) run(ctx context.Context, r *round) error {
	r.now = p.cfg.Now()
	r.seen, r.unsettled, r.pending = map[string]bool{}, map[string]bool{}, map[string]bool{}
	err := p.pollConnections(ctx, r)
	if err == nil && p.cfg.Queries != nil && p.cfg.Processor != nil {
		err = p.pollQueries(ctx, r)
	}
	if err != nil {
		return err
	}
	for key := range p.pending {
		if r.covers(key) && !r.pending[key] {
			delete(p.pending, key)
		}
	}
	for key, pending := range r.pending {
		if _, ok := p.pending[key]; pending && !ok {
			p.pending[key] = r.now
		}
	}
	return nil
}

// pollQueries observes every active cached query's job. Observing needs
// only the job's deterministic name, so the plan is not compiled.
func (p *StatusPoller) pollQueries(ctx context.Context, r *round) error {
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
	fast := p.cfg.PendingInterval > 0 && !notifies(p.cfg.Processor)
	for _, q := range qs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if q.Engine != p.cfg.Processor.Engine() || !r.wants(q.EnvironmentID) {
			continue
		}
		key := queryKey(q.EnvironmentID, q.QueryID)
		lastPending := q.Last.Status == jobs.StatusPending && q.Last.JobState != ""
		if !p.fastPoll(r, fast, key, lastPending) {
			continue
		}
		r.seen[q.EnvironmentID] = true
		if q.Last.Status == jobs.StatusPending && q.Last.JobState == "" {
			// A worker is still starting the job; it records the outcome
			// itself, and an observation now would see no job at all.
			r.unsettled[q.EnvironmentID] = true
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
		r.pending[key] = fast && (status.Status == jobs.StatusPending || lastPending)
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

func (p *StatusPoller) pollConnections(ctx context.Context, r *round) error {
	conns, err := p.cfg.Connections.ActiveConnections(ctx)
	if err != nil {
		return err
	}
	if r.only == nil && !r.pendingOnly {
		listed := make(map[string]bool, len(conns))
		for _, c := range conns {
			listed[c.EnvironmentID] = true
		}
		for env := range p.recorded {
			if !listed[env] {
				delete(p.recorded, env)
			}
		}
	}
	fast := p.cfg.PendingInterval > 0 && !notifies(p.cfg.Capture)
	for _, c := range conns {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		key, lastPending := connectionKey(c.EnvironmentID), c.Last.Status == jobs.StatusPending
		if !r.wants(c.EnvironmentID) || !p.fastPoll(r, fast, key, lastPending) {
			continue
		}
		r.seen[c.EnvironmentID] = true
		status, err := p.observe(ctx, c)
		if err != nil {
			p.cfg.Logger.Warn("observe capture", "environment_id", c.EnvironmentID, "error", err)
			continue
		}
		r.pending[key] = fast && (status.Status == jobs.StatusPending || lastPending)
		if fast && status.Gone && lastPending && p.young(key, r.now) {
			// Just created: Kafka Connect lists a connector a moment after
			// it took its configuration.
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
		// Only the figures moved: a sample, unless the last recorded
		// observation is older than LagSampleInterval.
		last, ok := p.recorded[c.EnvironmentID]
		sample := ok && p.cfg.LagSampleInterval > 0 && status.SameState(c.Last) && r.now.Sub(last) < p.cfg.LagSampleInterval
		// The observation belongs to the command whose state was read: if a
		// newer command moved on meanwhile, the projector leaves it aside.
		ev := events.ConnectionObserved{
			Meta: events.Meta{EventID: uuid.NewString(), EnvironmentID: c.EnvironmentID,
				CommandID: c.CommandID, CommandSeq: c.CommandSeq, At: p.cfg.Now().UTC()},
			Capture: status, Sample: sample,
		}
		if err := p.cfg.Events.Publish(ctx, ev); err != nil {
			return err
		}
		if !sample {
			p.recorded[c.EnvironmentID] = r.now
		}
	}
	return nil
}

func (p *StatusPoller) observe(ctx context.Context, c projections.ActiveConnection) (jobs.CaptureStatus, error) {
	plain, err := p.cfg.Sealer.Open(c.ConnectionSealed, c.EnvironmentID)
	if err != nil {
		return jobs.CaptureStatus{Status: jobs.StatusFailed, Reason: "stored connection does not open with this worker's key: " + err.Error()}, nil
	}
	spec := captureSpec(c.EnvironmentID, plain)
	spec.ConnectorName, spec.SlotName, spec.PublicationName = c.ConnectorName, c.SlotName, c.PublicationName
	return p.cfg.Capture.Observe(ctx, spec)
}
