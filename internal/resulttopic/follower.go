package resulttopic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/leader"
	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/internal/results"
	"github.com/cdcq/cdcq/projections"
)

// QueryLister lists the cached queries of the job-state database.
type QueryLister interface {
	ActiveQueries(ctx context.Context) ([]projections.ActiveQuery, error)
}

// FollowerConfig configures a Follower.
type FollowerConfig struct {
	// Kafka is the cluster: bootstrap addresses (required) and security.
	Kafka kafkasec.Cluster
	// DatabaseURL is the job-state database, for the leases. Required.
	DatabaseURL string
	// Results is where the rows go. Required.
	Results *results.Store
	// Queries lists the queries whose results to follow. Required.
	Queries QueryLister
	// Engine selects the queries: those whose engine has this name.
	// Required.
	Engine string
	// CaughtUp, when set, tells whether the engine has caught up with a
	// query's sources; until it has, the query's progress says CATCHING_UP
	// even when the follower has read the whole result topic. Without it,
	// reading the result topic to its end is enough. The Hydration it
	// returns, when not nil, is shown while the query is not caught up
	// (how far the capture's snapshot of its tables is).
	CaughtUp func(ctx context.Context, q projections.ActiveQuery) (bool, *results.Hydration, error)
	// SchemaChecked, when set, returns for each query when the last check
	// of its source's schema that found it intact began (the zero time
	// when there was none). Records written later are held until a check
	// covers them: a DDL that broke the query may be behind them, and the
	// result must not show them as current (see handlers.SchemaWatcher).
	SchemaChecked func(ctx context.Context, queryIDs []string) (map[string]time.Time, error)
	// Interval is how often leases are reviewed, the query list is read
	// again while records of unknown queries arrive, and progress is
	// written while nothing changes. Default 2s.
	Interval time.Duration
	// SessionTimeout: see leader.LeasesConfig.SessionTimeout.
	SessionTimeout time.Duration
	Logger         *slog.Logger
}

func (c *FollowerConfig) setDefaults() {
	if c.Interval == 0 {
		c.Interval = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a configuration that cannot work.
func (c FollowerConfig) Validate() error {
	switch {
	case len(c.Kafka.Brokers) == 0:
		return errors.New("resulttopic: FollowerConfig.Kafka.Brokers is empty")
	case c.DatabaseURL == "":
		return errors.New("resulttopic: FollowerConfig.DatabaseURL is empty")
	case c.Results == nil || c.Queries == nil:
		return errors.New("resulttopic: FollowerConfig needs Results and Queries")
	case c.Engine == "":
		return errors.New("resulttopic: FollowerConfig.Engine is empty")
	case c.Interval < 0:
		return errors.New("resulttopic: FollowerConfig.Interval is negative")
	}
	return nil
}

// Follower materialises the result topic records of one engine's queries
// into results.Store. Every worker runs one; each environment's topic is
// followed by exactly one worker, the holder of its lease, and moves when
// that worker dies.
//
// Following starts at the beginning of the topic: until it has read what
// the topic held when it started, a query's progress says CATCHING_UP;
// then LIVE. Each batch of records is applied per query in one
// transaction, with the topic position it reached, so a reader never sees
// a tombstone without the record that followed it in the same batch.
type Follower struct {
	cfg   FollowerConfig
	owner string
}

// NewFollower refuses a configuration that cannot work.
func NewFollower(cfg FollowerConfig) (*Follower, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	return &Follower{cfg: cfg, owner: fmt.Sprintf("%s/%d", host, os.Getpid())}, nil
}

// leaseNamespace is the namespace of the environments' leases
// (leader.RunLeases).
const leaseNamespace = "results"

// Run follows the topics of the environments whose leases this process
// holds, until ctx ends.
func (f *Follower) Run(ctx context.Context) error {
	wanted := func(ctx context.Context) ([]string, error) {
		qs, err := f.cfg.Queries.ActiveQueries(ctx)
		if err != nil {
			return nil, err
		}
		// A query deleted with its environment before the projection
		// listed it keeps no result (results.Store.ForgetDeleted).
		if n, err := f.cfg.Results.ForgetDeleted(ctx, f.cfg.Engine, func(_, env string) int64 { return leader.LeaseKey(leaseNamespace, env) }); err != nil {
			f.cfg.Logger.Warn("forget the results of deleted queries", "error", err)
		} else if n > 0 {
			f.cfg.Logger.Info("forgot the results of deleted queries", "queries", n)
		}
		seen := map[string]bool{}
		var envs []string
		for _, q := range qs {
			if q.Engine == f.cfg.Engine && !seen[q.EnvironmentID] {
				seen[q.EnvironmentID] = true
				envs = append(envs, q.EnvironmentID)
			}
		}
		return envs, nil
	}
	run := func(ctx context.Context, env string) {
		for ctx.Err() == nil {
			err := f.follow(ctx, env)
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, leader.ErrFenced) {
				// Another worker follows this result topic now: give the
				// lease back.
				f.cfg.Logger.Warn("following result topic: this worker's lease was taken over; stopped", "environment_id", env, "error", err)
				return
			}
			f.cfg.Logger.Warn("following result topic; restarting", "environment_id", env, "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(f.cfg.Interval):
			}
		}
	}
	return leader.RunLeases(ctx, leader.LeasesConfig{
		DatabaseURL: f.cfg.DatabaseURL, Namespace: leaseNamespace, Wanted: wanted, Run: run,
		Interval: f.cfg.Interval, SessionTimeout: f.cfg.SessionTimeout, Logger: f.cfg.Logger,
	})
}

// unknownTTL is how long records of a query id that is not (yet) one of
// the engine's active queries are kept: the projection of a new query may
// lag behind its job's first results.
const unknownTTL = time.Minute

type heldRecords struct {
	first   time.Time
	records []*kgo.Record
}

// ClockSkew is how far the clocks of the engine that writes result
// records and of the worker that checks the source schema may disagree:
// a record is released only if written ClockSkew before the check began.
const ClockSkew = 250 * time.Millisecond

// gateRefresh bounds how often the schema checks are read.
const gateRefresh = 100 * time.Millisecond

// follow reads one environment's result topic until ctx ends or an error.
func (f *Follower) follow(ctx context.Context, env string) error {
	topic := names.ResultTopic(env)
	if err := kafkabus.EnsureTopics(ctx, f.cfg.Kafka, kafkabus.Topic{Name: topic, Partitions: 1, Configs: kafkabus.ResultTopicConfigs()}); err != nil {
		return err
	}
	cl, err := f.cfg.Kafka.NewClient(kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	positions := map[int32]int64{}
	caughtUp := func() bool {
		done := true
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset > positions[o.Partition] {
				done = false
			}
		})
		return done
	}

	mine := map[string]projections.ActiveQuery{} // queries of this engine
	others := map[string]bool{}                  // queries of other engines
	engineCaughtUp := map[string]bool{}
	hydration := map[string]*results.Hydration{}
	var listed time.Time
	list := func() error {
		qs, err := f.cfg.Queries.ActiveQueries(ctx)
		if err != nil {
			return err
		}
		clear(mine)
		clear(others)
		for _, q := range qs {
			if q.EnvironmentID != env {
				continue
			}
			if q.Engine == f.cfg.Engine {
				mine[q.QueryID] = q
			} else {
				others[q.QueryID] = true
			}
		}
		listed = time.Now()
		return nil
	}
	if err := list(); err != nil {
		return err
	}
	applied := map[string]int64{}
	held := map[string]*heldRecords{}
	queued := map[string][]*kgo.Record{} // records of known queries not released yet
	gates := map[string]time.Time{}
	var gatesRead time.Time
	rebuilt := map[string]map[string][]byte{}
	replaced := false
	var lastProgress time.Time
	f.cfg.Logger.Info("following result topic", "environment_id", env, "topic", topic)
	for {
		wait := pollTimeout
		if f.cfg.SchemaChecked != nil && len(queued) > 0 {
			wait = gateRefresh // records wait for the next check
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		fetches := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		for _, fe := range fetches.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				return fmt.Errorf("read %s: %w", topic, fe.Err)
			}
		}
		fetches.EachRecord(func(r *kgo.Record) {
			positions[r.Partition] = r.Offset + 1
			id, ok := QueryIDOf(r.Key)
			if !ok || others[id] {
				return
			}
			if _, ok := mine[id]; !ok {
				h := held[id]
				if h == nil {
					h = &heldRecords{first: time.Now()}
					held[id] = h
				}
				h.records = append(h.records, r)
				return
			}
			queued[id] = append(queued[id], r)
		})
		if since := time.Since(listed); len(held) > 0 && since >= f.cfg.Interval || since >= 5*f.cfg.Interval {
			if err := list(); err != nil {
				return err
			}
			for id, h := range held {
				_, known := mine[id]
				switch {
				case known:
					queued[id] = append(h.records, queued[id]...)
					delete(held, id)
				case others[id], time.Since(h.first) > unknownTTL:
					delete(held, id)
				}
			}
		}
		if f.cfg.SchemaChecked != nil && len(queued) > 0 && time.Since(gatesRead) >= gateRefresh {
			ids := make([]string, 0, len(queued))
			for id := range queued {
				ids = append(ids, id)
			}
			g, err := f.cfg.SchemaChecked(ctx, ids)
			if err != nil {
				return fmt.Errorf("read schema checks: %w", err)
			}
			gates, gatesRead = g, time.Now()
		}
		pending := map[string]map[string][]byte{}
		for id, recs := range queued {
			n := len(recs)
			if f.cfg.SchemaChecked != nil {
				// Only what the engine wrote before the source's schema
				// was last found intact is released: a record written
				// later may come from a change the engine misread.
				gate := gates[id].Add(-ClockSkew)
				n = 0
				for n < len(recs) && recs[n].Timestamp.Before(gate) {
					n++
				}
			}
			if n == 0 {
				continue
			}
			if pending[id] == nil {
				pending[id] = map[string][]byte{}
			}
			for _, r := range recs[:n] {
				pending[id][string(r.Key)] = r.Value
			}
			applied[id] += int64(n)
			if n == len(recs) {
				delete(queued, id)
			} else {
				queued[id] = recs[n:]
			}
		}
		live := caughtUp()
		if live && f.cfg.CaughtUp != nil && time.Since(lastProgress) >= f.cfg.Interval {
			for id, q := range mine {
				ok, h, err := f.cfg.CaughtUp(ctx, q)
				if err != nil {
					f.cfg.Logger.Warn("engine progress", "query_id", id, "error", err)
				}
				engineCaughtUp[id], hydration[id] = ok, h
			}
		}
		progress := func(id string) results.Progress {
			pos := map[string]map[int32]int64{topic: {}}
			for p, o := range positions {
				pos[topic][p] = o
			}
			state, hy := results.StateCatchingUp, hydration[id]
			if live && (f.cfg.CaughtUp == nil || engineCaughtUp[id]) {
				state, hy = results.StateLive, nil
			}
			return results.Progress{State: state, Positions: pos, EventsApplied: applied[id], Owner: f.owner, Hydration: hy}
		}
		if !replaced {
			// Catching up: the rows are gathered whole and replace the
			// stored result once the topic is read, so that rows whose
			// tombstones were compacted away do not linger.
			for id, changes := range pending {
				if rebuilt[id] == nil {
					rebuilt[id] = map[string][]byte{}
				}
				for k, v := range changes {
					if v == nil {
						delete(rebuilt[id], k)
					} else {
						rebuilt[id][k] = v
					}
				}
			}
			if !live {
				if time.Since(lastProgress) >= f.cfg.Interval {
					lastProgress = time.Now()
					for id := range mine {
						if err := f.setProgress(ctx, id, progress(id)); err != nil {
							return err
						}
					}
				}
				continue
			}
			for id := range mine {
				rows := make([]results.Change, 0, len(rebuilt[id]))
				for k, v := range rebuilt[id] {
					rows = append(rows, results.Change{Key: []byte(k), Row: v})
				}
				if err := f.replace(ctx, id, rows, progress(id)); err != nil {
					return err
				}
			}
			rebuilt, replaced = nil, true
			lastProgress = time.Now()
			f.cfg.Logger.Info("result topic caught up", "environment_id", env, "topic", topic)
			continue
		}
		quiet := time.Since(lastProgress) >= f.cfg.Interval
		for id := range mine {
			changes := pending[id]
			if len(changes) == 0 && !quiet {
				continue
			}
			batch := make([]results.Change, 0, len(changes))
			for k, v := range changes {
				batch = append(batch, results.Change{Key: []byte(k), Row: v})
			}
			if err := f.apply(ctx, id, batch, progress(id)); err != nil {
				return err
			}
		}
		if quiet {
			lastProgress = time.Now()
		}
	}
}

// apply writes one query's changes. A query that was deleted and is
// active again (created anew) has its deleted marker reset first.
func (f *Follower) apply(ctx context.Context, queryID string, changes []results.Change, p results.Progress) error {
	return f.write(ctx, queryID, func() error { return f.cfg.Results.Apply(ctx, queryID, changes, p) })
}

func (f *Follower) replace(ctx context.Context, queryID string, rows []results.Change, p results.Progress) error {
	return f.write(ctx, queryID, func() error { return f.cfg.Results.Replace(ctx, queryID, rows, p) })
}

func (f *Follower) setProgress(ctx context.Context, queryID string, p results.Progress) error {
	return f.write(ctx, queryID, func() error { return f.cfg.Results.SetProgress(ctx, queryID, p) })
}

func (f *Follower) write(ctx context.Context, queryID string, w func() error) error {
	err := w()
	if errors.Is(err, results.ErrStale) {
		// The query stopped on a schema change: its result stays as it
		// was last correct.
		return nil
	}
	if !errors.Is(err, results.ErrDeleted) {
		return err
	}
	qs, err := f.cfg.Queries.ActiveQueries(ctx)
	if err != nil {
		return err
	}
	for _, q := range qs {
		if q.QueryID == queryID && q.Engine == f.cfg.Engine && q.Last.Status != jobs.StatusDeleted {
			if err := f.cfg.Results.Reset(ctx, queryID); err != nil {
				return err
			}
			return w()
		}
	}
	return nil
}
