package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/handlers"
	"github.com/cdcq/cdcq/internal/cachedquery"
	"github.com/cdcq/cdcq/internal/capture"
	"github.com/cdcq/cdcq/internal/ivm"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/leader"
	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/internal/results"
	"github.com/cdcq/cdcq/internal/sqlplan"
	"github.com/cdcq/cdcq/internal/stagetrace"
	"github.com/cdcq/cdcq/projections"
)

// Engine is what a running query needs of the incremental engine.
type Engine interface {
	// Apply applies one Debezium record of the plan's source. A nil value
	// (a tombstone) is ignored.
	Apply(source int, key, value []byte) error
	// Changes returns the net result changes since the last call, encoded
	// as result-topic records (Row nil: the row is gone).
	Changes() ([]results.Change, error)
	// Rows returns the whole current result, encoded likewise.
	Rows() ([]results.Change, error)
}

// NewEngineFunc builds an Engine for a compiled plan.
type NewEngineFunc func(plan *sqlplan.Plan, queryID string) (Engine, error)

// runner runs one cached query.
type runner struct {
	kafka     kafkasec.Cluster
	results   *results.Store
	newEngine NewEngineFunc
	owner     string
	logger    *slog.Logger
	// progressEvery bounds how often progress is written when a batch
	// changed no row.
	progressEvery time.Duration
	// snapshots, when set, tells whether the capture's initial snapshot
	// is complete; snapshotEvery is how often it is asked.
	snapshots     handlers.SnapshotReporter
	snapshotEvery time.Duration
	// changed, when set, is told of a query whose status changed (Config.StatusChanged).
	changed func(environmentID string)
	// changeTopicRetention is Config.ChangeTopicRetention.
	changeTopicRetention time.Duration
	// checkpointEvery and checkpointEvents say how often a live query's
	// checkpoint is taken: after this long or this many events, whichever
	// comes first (Config.CheckpointInterval, CheckpointEvents); never
	// when checkpointEvery is 0.
	checkpointEvery  time.Duration
	checkpointEvents int64
}

// statusChanged calls changed.
func (r *runner) statusChanged(environmentID string) {
	if r.changed != nil {
		r.changed(environmentID)
	}
}

// errStopped ends a run that must not be retried by this worker.
var errStopped = errors.New("query stopped")

// run reads the query's sources until ctx ends or the query is deleted.
func (r *runner) run(ctx context.Context, q projections.ActiveQuery) error {
	log := r.logger.With("query_id", q.QueryID, "environment_id", q.EnvironmentID)
	compiled, err := cachedquery.Compile(q.Schema, q.SQLQuery)
	if err != nil {
		return r.fail(ctx, q.QueryID, fmt.Errorf("compile: %w", err))
	}
	eng, err := r.newEngine(compiled.Plan, q.QueryID)
	if err != nil {
		return r.fail(ctx, q.QueryID, err)
	}
	sourcesOf := map[string][]int{}
	var topics []string
	for i, src := range compiled.Plan.Sources {
		t := names.TopicPrefix(q.EnvironmentID) + "." + src.Topic
		if len(sourcesOf[t]) == 0 {
			topics = append(topics, t)
		}
		sourcesOf[t] = append(sourcesOf[t], i)
	}
	resultTopic := names.ResultTopic(q.EnvironmentID)
	// A table that was never written has no topic yet; create the topics so
	// that the query starts (an empty source is a valid source).
	// They get the settings the capture would give them.
	want := []kafkabus.Topic{{Name: resultTopic, Partitions: 1, Configs: kafkabus.ResultTopicConfigs()}}
	for _, t := range topics {
		want = append(want, kafkabus.Topic{Name: t, Partitions: 1, Configs: kafkabus.ChangeTopicConfigs(r.changeTopicRetention)})
	}
	if err := kafkabus.EnsureTopics(ctx, r.kafka, want...); err != nil {
		return err
	}
	// A checkpoint of this query lets it go on from where it was instead
	// of reading its topics from their start.
	var ckpt *checkpointer
	var from map[string]map[int32]int64
	epochs := &captureEpochs{log: log}
	if c, ok := eng.(Checkpointer); ok && r.checkpointEvery > 0 {
		ckpt = &checkpointer{eng: c, store: r.results, log: log, queryID: q.QueryID, epochs: epochs,
			fingerprint: fingerprint(c.StateFormat(), q.Schema, q.SQLQuery, compiled.Plan, topics),
			every:       r.checkpointEvery, events: r.checkpointEvents, last: time.Now()}
		if ckpt.topicIDs, err = r.topicIDs(ctx, topics); err != nil {
			return err
		}
		if eng, from, err = r.restore(ctx, log, q.QueryID, compiled.Plan, eng, ckpt); err != nil {
			return err
		}
		ckpt.eng = eng.(Checkpointer)
	}
	positions, lost, err := r.startPositions(ctx, topics, from)
	restoredLost := err == nil && lost != "" && from != nil
	if errors.Is(err, errCheckpointAhead) || restoredLost {
		// Records lost after a restored checkpoint: its rows are not
		// kept. The new snapshot only removes rows of the tables it
		// writes records for, so a table emptied during the gap would
		// keep the checkpoint's rows; a fresh engine reading every
		// partition from its log start holds only what the snapshot
		// and later records say.
		if restoredLost {
			err = fmt.Errorf("records it needs are gone (%s)", lost)
		}
		log.Warn("cached query: checkpoint ignored; rebuilding from the topics", "error", err)
		if eng, err = r.newEngine(compiled.Plan, q.QueryID); err != nil {
			return r.fail(ctx, q.QueryID, err)
		}
		ckpt.eng, ckpt.base, ckpt.restored = eng.(Checkpointer), 0, false
		epochs.max = nil
		positions, lost, err = r.startPositions(ctx, topics, nil)
	}
	if err != nil {
		return err
	}
	cl, err := r.kafka.NewClient(consumeFrom(positions), kgo.ProducerLinger(0),
		// A poll's records are applied as one batch: while catching up,
		// larger batches recompute each group's row less often (4 MiB is
		// about 10,000 snapshot records; larger made the in-process
		// broker slower to serve the capture's writes).
		kgo.FetchMaxPartitionBytes(4<<20), kgo.FetchMaxBytes(8<<20),
		// Records deleted by retention while the query reads them are
		// not skipped silently: the run ends and the next one sees what
		// is gone (startPositions).
		kgo.ConsumeResetOffset(kgo.NoResetOffset()))
	if err != nil {
		return err
	}
	defer cl.Close()
	fresh, err := r.followHeartbeats(ctx, cl, q.EnvironmentID, q.QueryID, topics)
	if err != nil {
		return err
	}
	pub, err := newPublisher(ctx, r.kafka, resultTopic, q.QueryID)
	if err != nil {
		return err
	}
	defer pub.close()
	previous, err := r.results.Keys(ctx, q.QueryID)
	if err != nil {
		return err
	}
	p := results.Progress{State: results.StateCatchingUp, Positions: positions, Owner: r.owner}
	h := &hydration{r: r, env: q.EnvironmentID, adm: kadm.NewClient(cl), topics: topics, tables: map[string]bool{}, reserve: reserveFor(eng)}
	for _, src := range compiled.Plan.Sources {
		h.tables[src.Schema+"."+src.Name] = true
	}
	if lost != "" {
		// The broker's retention deleted records the query needs: rows
		// they held would be missing from the result. A new snapshot of
		// the source brings every row back (the engine drops the rows
		// the snapshot lacks when it ends); until it is complete and
		// read, the result is not LIVE.
		p.LastError = "change records were deleted by the topics' retention before the query read them (" + lost + "); waiting for a new snapshot of the source"
		log.Warn("cached query: change records it needs are gone; requesting a new snapshot", "lost", lost)
		req, ok := r.snapshots.(SnapshotRequester)
		if !ok {
			return r.fail(ctx, q.QueryID, fmt.Errorf("change records were deleted by the topics' retention before the query read them (%s), and the capture cannot take a new snapshot; delete and create the query again once the source was captured anew", lost))
		}
		// The ends are listed before the request commits: the snapshot's
		// records all follow them. A restart after the snapshot completed
		// but before the query went LIVE does not ask for another while
		// that one is still whole (positions are the log starts here).
		ends, err := endOffsets(ctx, h.adm, topics...)
		if err != nil {
			return err
		}
		endsAt := map[string]map[int32]int64{}
		ends.Each(func(o kadm.ListedOffset) {
			if endsAt[o.Topic] == nil {
				endsAt[o.Topic] = map[int32]int64{}
			}
			endsAt[o.Topic][o.Partition] = o.Offset
		})
		requested, err := req.RequestSnapshot(ctx, q.EnvironmentID, "cached query "+q.QueryID+": change records deleted by retention", endsAt, positions)
		if err != nil {
			return fmt.Errorf("request a new snapshot: %w", err)
		}
		if !requested {
			log.Info("cached query: the snapshot requested last (under way, or complete and still whole in the topics) serves; reading it")
		}
		if s, ok := eng.(unseenSkipper); ok {
			s.SkipUnseenUnavailable(true) // until the new snapshot is read
		}
	}
	defer ckpt.stop() // a write under way ends (or is abandoned) before the run does
	if err := h.check(ctx); err != nil {
		return err
	}
	p.Hydration = h.progress()
	if err := r.results.SetProgress(ctx, q.QueryID, p); err != nil {
		return r.stopIfDeleted(err)
	}
	r.statusChanged(q.EnvironmentID) // running, catching up
	p.Continues = true
	live := false
	lastProgress := time.Now()
	log.Info("cached query started", "topics", topics)
	if h.reached(p.Positions) { // empty sources: nothing to rebuild
		if err := r.goLive(ctx, pub, q.QueryID, eng, previous, &p); err != nil {
			return r.stopIfDeleted(err)
		}
		r.statusChanged(q.EnvironmentID)
		live = true
	}
	for {
		// Polls end at least every second, so that the capture's snapshot
		// is looked at although no record arrives.
		pollCtx, cancelPoll := context.WithTimeout(ctx, r.pollWait(live))
		fetches := cl.PollFetches(pollCtx)
		cancelPoll()
		if ctx.Err() != nil {
			if live {
				// The run stops between two polls, where the state and
				// the positions agree: a last checkpoint spares the next
				// run what was read since the one before (written within
				// the few seconds a stopping run waits for it).
				r.finalCheckpoint(ctx, ckpt, &p)
			}
			return nil
		}
		var fetchErr error
		var outOfRange error
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, kerr.OffsetOutOfRange) && fresh.outOfRange(cl, topic, partition) {
				return
			}
			if errors.Is(err, kerr.OffsetOutOfRange) && outOfRange == nil {
				at := "at the offset it started from"
				if o, ok := p.Positions[topic][partition]; ok {
					at = fmt.Sprintf("at offset %d", o)
				}
				outOfRange = fmt.Errorf("read %s partition %d %s: %w", topic, partition, at, err)
			}
			if fetchErr == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				fetchErr = fmt.Errorf("read %s: %w", topic, err)
			}
		})
		if outOfRange != nil {
			return outOfRange
		}
		if fetchErr != nil {
			p.LastError = fetchErr.Error()
			log.Warn("read source topic", "error", p.LastError)
		}
		var applyErr error
		read := false
		traced := traceCommits(fetches)
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if applyErr != nil || len(fp.Records) == 0 {
				return
			}
			if fp.Topic == fresh.topic {
				fresh.note(fp.Records)
				return
			}
			read = true
			for _, rec := range fp.Records {
				if epochs.stale(rec) {
					continue
				}
				if at, ok := schemaChangeAt(rec); ok {
					if err := r.awaitSchemaCheck(ctx, q.QueryID, at); err != nil {
						applyErr = err
						return
					}
				}
				if rec.Value != nil {
					for _, src := range sourcesOf[rec.Topic] {
						if err := eng.Apply(src, rec.Key, rec.Value); err != nil {
							applyErr = fmt.Errorf("%s partition %d offset %d: %w", rec.Topic, rec.Partition, rec.Offset, err)
							return
						}
					}
					p.EventsApplied++
				}
			}
			last := fp.Records[len(fp.Records)-1]
			if p.Positions[last.Topic] == nil {
				p.Positions[last.Topic] = map[int32]int64{}
			}
			p.Positions[last.Topic][last.Partition] = last.Offset + 1
			notePosition(&p, fp.Records)
		})
		switch {
		case errors.Is(applyErr, results.ErrStale):
			return r.stopIfDeleted(applyErr)
		case applyErr != nil && ctx.Err() != nil:
			return nil
		case applyErr != nil:
			return r.fail(ctx, q.QueryID, applyErr)
		}
		// Applying per batch keeps memory bounded while catching up; the
		// changes of a rebuild are not published one by one, the whole
		// rebuilt result replaces the old one (goLive).
		changes, err := eng.Changes()
		if err != nil {
			return r.fail(ctx, q.QueryID, err)
		}
		if live {
			stagetrace.MarkAll("ivm-applied", traced, time.Now())
		}
		if live && h.due(live) {
			// A query deleted and created again while nothing changed in
			// its sources has lost its rows: start over.
			if _, err := r.results.Progress(ctx, q.QueryID); errors.Is(err, results.ErrNotFound) {
				return fmt.Errorf("%w: deleted and created again", errStopped)
			}
			// A snapshot that starts over (the capture crashed in it, or
			// lost its slot) makes the result partial again.
			if err := h.check(ctx); err != nil {
				return err
			}
			if !h.done {
				live = false
				log.Info("the capture is taking its snapshot again; the result waits for it")
				if previous, err = r.results.Keys(ctx, q.QueryID); err != nil {
					return err
				}
				if len(changes) > 0 {
					if err := pub.publish(ctx, changes, nil); err != nil {
						return r.stopIfDeleted(err)
					}
				}
				p.State, p.Hydration = results.StateCatchingUp, h.progress()
				lastProgress = time.Now()
				if err := r.results.SetProgress(ctx, q.QueryID, p); err != nil {
					return r.stopIfDeleted(err)
				}
				r.statusChanged(q.EnvironmentID)
				continue
			}
		}
		if !live {
			if !h.done && h.due(live) {
				if err := h.check(ctx); err != nil {
					return err
				}
			}
			if !h.reached(p.Positions) {
				if time.Since(lastProgress) > r.progressEvery {
					lastProgress = time.Now()
					p.Hydration = h.progress()
					if err := r.results.SetProgress(ctx, q.QueryID, p); err != nil {
						return r.stopIfDeleted(err)
					}
				}
				continue
			}
			if lost != "" {
				p.LastError, lost = "", "" // the new snapshot is read
				if s, ok := eng.(unseenSkipper); ok {
					if n := s.SkipUnseenUnavailable(false); n > 0 {
						log.Info("cached query: skipped updates of rows whose earlier records were lost; the new snapshot wrote them", "updates", n)
					}
				}
			}
			if err := r.goLive(ctx, pub, q.QueryID, eng, previous, &p); err != nil {
				return r.stopIfDeleted(err)
			}
			r.statusChanged(q.EnvironmentID)
			live = true
			lastProgress = time.Now()
			log.Info("cached query caught up", "events", p.EventsApplied)
			// A checkpoint at once: a restart soon after going live
			// need not read again what the catching up read.
			if err := r.checkpointNow(ctx, ckpt, &p); err != nil {
				return err
			}
			continue
		}
		if len(changes) == 0 && (!read || time.Since(lastProgress) < r.progressEvery) {
			// The result in Postgres reflects every record read.
			if err := fresh.update(ctx, p.Positions); err != nil {
				return r.stopIfDeleted(err)
			}
			if err := r.checkpoint(ctx, ckpt, &p); err != nil {
				return err
			}
			continue
		}
		lastProgress = time.Now()
		if err := r.results.Apply(ctx, q.QueryID, changes, p); err != nil {
			return r.stopIfDeleted(err)
		}
		stagetrace.MarkAll("results-committed", traced, time.Now())
		if err := pub.publish(ctx, changes, traced); err != nil {
			return r.stopIfDeleted(err)
		}
		if err := fresh.update(ctx, p.Positions); err != nil {
			return r.stopIfDeleted(err)
		}
		if err := r.checkpoint(ctx, ckpt, &p); err != nil {
			return err
		}
	}
}

// captureEpochs is the largest capture lease epoch (capture.EpochHeader)
// read on each source partition. A record with a smaller one was sent by
// a capture that had lost its lease to the one that sent the larger
// (paused, then woken up): its successor sends the same changes again, so
// the record is dropped, not applied after newer ones.
type captureEpochs struct {
	max     map[string]map[int32]int64
	dropped int
	log     *slog.Logger
}

// stale notes rec's epoch and says whether rec is to be dropped. Records
// without the header (Debezium's) are never dropped.
func (c *captureEpochs) stale(rec *kgo.Record) bool {
	var epoch int64
	for _, h := range rec.Headers {
		if h.Key == capture.EpochHeader {
			epoch, _ = strconv.ParseInt(string(h.Value), 10, 64)
		}
	}
	if epoch == 0 {
		return false
	}
	if c.max == nil {
		c.max = map[string]map[int32]int64{}
	}
	if c.max[rec.Topic] == nil {
		c.max[rec.Topic] = map[int32]int64{}
	}
	top := c.max[rec.Topic][rec.Partition]
	if epoch >= top {
		c.max[rec.Topic][rec.Partition] = epoch
		return false
	}
	if c.dropped == 0 {
		c.log.Warn("dropping records of a capture that lost its lease", "topic", rec.Topic, "partition", rec.Partition,
			"offset", rec.Offset, "epoch", epoch, "current_epoch", top)
	}
	c.dropped++
	return true
}

// checkpoint takes a checkpoint of a live query when one is due. It
// returns an error only when the query was deleted or went stale.
func (r *runner) checkpoint(ctx context.Context, c *checkpointer, p *results.Progress) error {
	if !c.due(p.EventsApplied) {
		return nil
	}
	return r.stopIfDeleted(c.take(ctx, p.Positions, p.EventsApplied))
}

// checkpointNow takes a checkpoint unless the last one (or the restored
// one) already reflects every record applied.
func (r *runner) checkpointNow(ctx context.Context, c *checkpointer, p *results.Progress) error {
	if c == nil || (p.EventsApplied == 0 && c.restored) {
		return nil
	}
	return r.stopIfDeleted(c.take(ctx, p.Positions, p.EventsApplied))
}

// finalCheckpoint takes a last checkpoint of a run that stops, if records
// were applied since the last one; the stopping run waits a few seconds
// for it (checkpointer.stop).
func (r *runner) finalCheckpoint(ctx context.Context, c *checkpointer, p *results.Progress) {
	if c == nil || p.EventsApplied == c.lastEvents {
		return
	}
	if err := c.take(context.WithoutCancel(ctx), p.Positions, p.EventsApplied); err != nil {
		r.logger.Warn("cached query: last checkpoint not taken", "error", err)
	}
}

// restore loads the query's checkpoint into eng and returns the engine to
// use and the positions to read from (nil: from the topics' start). A
// checkpoint of another query text, schema or plan, or one that does not
// load, is ignored: the query is rebuilt from the topics, with a fresh
// engine.
func (r *runner) restore(ctx context.Context, log *slog.Logger, queryID string, plan *sqlplan.Plan, eng Engine, c *checkpointer) (Engine, map[string]map[int32]int64, error) {
	ck, err := r.results.LoadCheckpoint(ctx, queryID)
	switch {
	case errors.Is(err, results.ErrNotFound):
		return eng, nil, nil
	case err != nil && ctx.Err() != nil:
		return nil, nil, ctx.Err()
	case err != nil:
		log.Warn("cached query: checkpoint ignored; rebuilding from the topics", "error", err)
		return eng, nil, nil
	case ck.Fingerprint != c.fingerprint:
		log.Info("cached query: the checkpoint is of another query text, schema or engine; rebuilding from the topics")
		return eng, nil, nil
	case len(ck.TopicIDs) > 0 && len(c.topicIDs) > 0 && !maps.Equal(ck.TopicIDs, c.topicIDs):
		log.Warn("cached query: checkpoint ignored; its topics were deleted and created again since; rebuilding from the topics",
			"checkpoint_topic_ids", ck.TopicIDs, "topic_ids", c.topicIDs)
		return eng, nil, nil
	}
	started := time.Now()
	if err := eng.(Checkpointer).RestoreState(ck.State); err != nil {
		log.Warn("cached query: checkpoint does not load; rebuilding from the topics", "error", err)
		fresh, nerr := r.newEngine(plan, queryID)
		if nerr != nil {
			return nil, nil, nerr
		}
		return fresh, nil, nil
	}
	c.base, c.restored = ck.Events, true
	c.epochs.max = ck.CaptureEpochs
	log.Info("cached query: restored from its checkpoint", "written_at", ck.WrittenAt, "events", ck.Events,
		"positions", ck.Positions, "restore_ms", time.Since(started).Milliseconds())
	return eng, ck.Positions, nil
}

// startPositions lists where each partition of topics is read from
// (startPositions in checkpoint.go), on a client of its own.
func (r *runner) startPositions(ctx context.Context, topics []string, from map[string]map[int32]int64) (map[string]map[int32]int64, string, error) {
	cl, err := r.kafka.NewClient()
	if err != nil {
		return nil, "", err
	}
	defer cl.Close()
	return startPositions(ctx, kadm.NewClient(cl), topics, from)
}

// topicIDs lists the topics' IDs (topicIDs in checkpoint.go), on a
// client of its own.
func (r *runner) topicIDs(ctx context.Context, topics []string) (map[string]string, error) {
	cl, err := r.kafka.NewClient()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return topicIDs(ctx, kadm.NewClient(cl), topics)
}

// traceCommits, when stage tracing is on, marks the records of a poll as
// read by the runner and returns their commit times.
func traceCommits(fetches kgo.Fetches) []int64 {
	if !stagetrace.On() {
		return nil
	}
	var out []int64
	fetches.EachRecord(func(rec *kgo.Record) {
		if rec.Value != nil {
			out = append(out, stagetrace.CommitMicros(rec.Value))
		}
	})
	stagetrace.MarkAll("runner-polled", out, time.Now())
	return out
}

// pollWait bounds one poll: short while catching up, so that the end of
// the capture's snapshot is noticed soon.
func (r *runner) pollWait(live bool) time.Duration {
	if live {
		return time.Second
	}
	return 100 * time.Millisecond
}

// hydration tracks what a query needs before its result reflects one
// source position: the capture's initial snapshot of the tables it reads
// complete (every record in Kafka), and the change topics read to where
// they ended once it was.
type hydration struct {
	r      *runner
	env    string
	adm    *kadm.Client
	topics []string
	tables map[string]bool // "<schema>.<table>" the query reads
	// reserve, when set, sizes the engine's state from the capture's
	// estimates of its tables (reserve.go).
	reserve func(jobs.SnapshotProgress)

	done      bool
	snapshot  results.Hydration
	ends      kadm.ListedOffsets // listed after done was seen; nil before
	lastCheck time.Time
}

// due says whether the capture is to be asked again: every fifth of
// snapshotEvery while the query waits for the snapshot (its end is then
// noticed within about 100 ms by default; the question is one read of the
// job-state database), every ten snapshotEvery once it is live (only a
// snapshot that starts over makes it partial again).
func (h *hydration) due(live bool) bool {
	every := h.r.snapshotEvery / 5
	if live {
		every = h.r.snapshotEvery * 10
	}
	return time.Since(h.lastCheck) >= every
}

// check asks the capture about its snapshot; when it is complete and the
// ends are not known yet, it lists them. A capture that cannot be asked is
// asked again later.
func (h *hydration) check(ctx context.Context) error {
	h.lastCheck = time.Now()
	done := true
	if h.r.snapshots != nil {
		sp, err := h.r.snapshots.SnapshotProgress(ctx, h.env)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			h.r.logger.Warn("cached query: ask the capture about its snapshot", "environment_id", h.env, "error", err)
			return nil
		}
		done = sp.Done
		h.snapshot = results.NewHydration(sp, h.tables)
		if h.reserve != nil {
			h.reserve(sp)
		}
	}
	if !done {
		h.done, h.ends = false, nil
		return nil
	}
	if h.done && h.ends != nil {
		return nil
	}
	ends, err := endOffsets(ctx, h.adm, h.topics...)
	if err != nil {
		return err
	}
	h.done, h.ends = true, ends
	return nil
}

// endOffsets lists the topics' end offsets.
func endOffsets(ctx context.Context, adm *kadm.Client, topics ...string) (kadm.ListedOffsets, error) {
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %v: %w", topics, err)
	}
	return ends, nil
}

// reachedEnds says whether positions (the next offsets to read) are at
// ends, or past them.
func reachedEnds(ends kadm.ListedOffsets, positions map[string]map[int32]int64) bool {
	ok := true
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > positions[o.Topic][o.Partition] {
			ok = false
		}
	})
	return ok
}

// reached says whether positions are at the ends listed after the
// snapshot was complete.
func (h *hydration) reached(positions map[string]map[int32]int64) bool {
	return h.done && h.ends != nil && reachedEnds(h.ends, positions)
}

// progress is what the result says while it is not live.
func (h *hydration) progress() *results.Hydration {
	c := h.snapshot
	c.SnapshotDone = h.done
	return &c
}

// goLive replaces the materialised result with the rebuilt one and brings
// the result topic to it: every row, and a tombstone for each row of the
// previous result that is gone.
func (r *runner) goLive(ctx context.Context, pub *publisher, queryID string, eng Engine, previous [][]byte, p *results.Progress) error {
	rows, err := eng.Rows()
	if err != nil {
		return err
	}
	p.State, p.Hydration = results.StateLive, nil
	if err := r.results.Replace(ctx, queryID, rows, *p); err != nil {
		return err
	}
	keep := make(map[string]bool, len(rows))
	for _, c := range rows {
		keep[string(c.Key)] = true
	}
	out := rows
	for _, key := range previous {
		if !keep[string(key)] {
			out = append(out, results.Change{Key: key})
		}
	}
	return pub.publish(ctx, out, nil)
}

// notePosition records the newest source change of a batch: Debezium's
// source.lsn and source.ts_ms of the partition's last record.
func notePosition(p *results.Progress, recs []*kgo.Record) {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Value == nil {
			continue
		}
		var env struct {
			Source struct {
				LSN  int64 `json:"lsn"`
				TsMs int64 `json:"ts_ms"`
			} `json:"source"`
		}
		if json.Unmarshal(recs[i].Value, &env) != nil || env.Source.TsMs == 0 {
			return
		}
		ts := time.UnixMilli(env.Source.TsMs).UTC()
		if p.SourceTime == nil || ts.After(*p.SourceTime) {
			p.SourceTime = &ts
			p.SourceLSN = env.Source.LSN
		}
		return
	}
}

// schemaChangeAt reads the commit time a record marked by the embedded
// capture as the first of its table after a change of the table's
// description (capture.SchemaChangeHeader).
func schemaChangeAt(rec *kgo.Record) (time.Time, bool) {
	for _, h := range rec.Headers {
		if h.Key == capture.SchemaChangeHeader {
			at, err := time.Parse(time.RFC3339Nano, string(h.Value))
			return at, err == nil
		}
	}
	return time.Time{}, false
}

// awaitSchemaCheck waits, before the first record after a change of a
// source table's description is applied, until the schema watcher has
// checked the source's catalog after the change committed (at, on the
// source's clock, which the watcher's checks use too): a change that
// breaks the query without changing the records' shape (a primary key or
// a numeric scale changed, NULL allowed) must stop the query before any
// record of the new description is applied, and one that does not lets
// it go on. A query the watcher stops meanwhile gives results.ErrStale.
func (r *runner) awaitSchemaCheck(ctx context.Context, queryID string, at time.Time) error {
	logged := false
	for {
		checked, err := r.results.SchemaChecked(ctx, []string{queryID})
		if err != nil {
			return err
		}
		if checked[queryID].After(at) {
			return nil
		}
		p, err := r.results.Progress(ctx, queryID)
		switch {
		case errors.Is(err, results.ErrNotFound):
			return fmt.Errorf("%w: deleted and created again", results.ErrDeleted)
		case err != nil:
			return err
		case p.State == results.StateStale:
			return fmt.Errorf("query %s: %w", queryID, results.ErrStale)
		case p.State == results.StateDeleted:
			return fmt.Errorf("query %s: %w", queryID, results.ErrDeleted)
		}
		if !logged {
			r.logger.Info("a source table's description changed; waiting for the schema check", "query_id", queryID, "committed_at", at)
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(schemaCheckPoll):
		}
	}
}

// schemaCheckPoll is how often awaitSchemaCheck looks again.
const schemaCheckPoll = 50 * time.Millisecond

// fail records a failure no retry in this worker can fix and stops. A
// record that does not fit the query's plan (the source's schema changed
// under it) leaves the result at the last batch applied, which no such
// record reached, and marks it stale.
func (r *runner) fail(ctx context.Context, queryID string, err error) error {
	if errors.Is(err, leader.ErrFenced) {
		return r.stopIfDeleted(err)
	}
	var se *ivm.SchemaError
	if errors.As(err, &se) {
		reason := se.Error() + "; " + handlers.RecreateAdvice
		if werr := r.results.MarkStale(ctx, queryID, reason); werr != nil {
			return fmt.Errorf("%v (and recording it: %w)", err, werr)
		}
		r.logger.Warn("cached query stopped: its source's schema changed", "query_id", queryID, "reason", reason)
		return fmt.Errorf("%w: %s", errStopped, reason)
	}
	p := results.Progress{State: StateFailed, LastError: err.Error(), Owner: r.owner}
	if werr := r.results.SetProgress(ctx, queryID, p); werr != nil && !errors.Is(werr, results.ErrDeleted) {
		return fmt.Errorf("%v (and recording it: %w)", err, werr)
	}
	return fmt.Errorf("%w: %v", errStopped, err)
}

func (r *runner) stopIfDeleted(err error) error {
	switch {
	case errors.Is(err, leader.ErrFenced):
		return fmt.Errorf("%w: %w", errStopped, err)
	case errors.Is(err, results.ErrDeleted):
		return fmt.Errorf("%w: deleted", errStopped)
	case errors.Is(err, results.ErrStale):
		return fmt.Errorf("%w: stale", errStopped)
	}
	return err
}

// StateFailed marks a query the engine cannot run; the reason is in
// LastError.
const StateFailed = "FAILED"
