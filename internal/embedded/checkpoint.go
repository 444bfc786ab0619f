package embedded

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/ivm"
	"github.com/cdcq/cdcq/internal/results"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

// Checkpointer is an Engine whose state can be saved and restored, so that
// a restarted query goes on from the topic positions of its last
// checkpoint instead of reading its sources' history again.
type Checkpointer interface {
	// StateFormat names the format of CheckpointState; a checkpoint of
	// another format is never restored.
	StateFormat() string
	// CheckpointState takes the state; it is called between batches
	// (after Changes), never with records kept for the next batch. What
	// it returns serialises that state, and may run in another goroutine
	// while the engine goes on: only taking the state holds it up.
	CheckpointState() (func() ([]byte, error), error)
	// RestoreState loads a state CheckpointState wrote for the same plan
	// into an engine that applied nothing yet.
	RestoreState(state []byte) error
}

// SnapshotRequester is implemented by a capture that can take a new
// snapshot of an environment when asked (the embedded capture,
// capture.Engine.RequestSnapshot): a query whose change-topic records were
// deleted by retention before it read them asks for one. ends are where
// the query's topics end now, starts where it reads them from; it says
// whether a new snapshot was requested: not when one under way, or the
// last one requested and still whole in the topics, serves.
type SnapshotRequester interface {
	RequestSnapshot(ctx context.Context, environmentID, reason string, ends, starts map[string]map[int32]int64) (bool, error)
}

// unseenSkipper is an Engine that can skip, while a new snapshot is
// awaited, updates keeping an unchanged TOAST value of a row it never saw
// (ivm.Query.SkipUnseenUnavailable): after records were lost to
// retention the first ones read can be such updates, whose row the
// snapshot writes whole later. Any other time they are errors.
type unseenSkipper interface {
	SkipUnseenUnavailable(on bool) int64
}

// SkipUnseenUnavailable is ivm.Query.SkipUnseenUnavailable.
func (e *ivmEngine) SkipUnseenUnavailable(on bool) int64 { return e.q.SkipUnseenUnavailable(on) }

// StateFormat is ivm's checkpoint format.
func (e *ivmEngine) StateFormat() string { return ivm.CheckpointVersion }

// CheckpointState takes the query's state (ivm.Query.State).
func (e *ivmEngine) CheckpointState() (func() ([]byte, error), error) {
	if len(e.raw) > 0 {
		return nil, errors.New("checkpoint with records not applied yet")
	}
	st := e.q.State()
	return func() ([]byte, error) {
		var buf bytes.Buffer
		if err := st.Write(&buf); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}, nil
}

// RestoreState loads a checkpoint.
func (e *ivmEngine) RestoreState(state []byte) error {
	return e.q.RestoreState(bytes.NewReader(state))
}

// fingerprint names what a checkpoint of the query holds: the state
// format, the schema and query text, the compiled plan (which changes when
// the compiler reads them differently) and the topics read. A checkpoint
// with another fingerprint is never restored.
func fingerprint(format, schema, sql string, plan *sqlplan.Plan, topics []string) string {
	h := sha256.New()
	for _, part := range []string{format, schema, sql, plan.String(), strings.Join(topics, ",")} {
		fmt.Fprintf(h, "%d:%s\n", len(part), part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Checkpoint defaults (Config.CheckpointInterval, CheckpointEvents).
const (
	DefaultCheckpointInterval = 30 * time.Second
	DefaultCheckpointEvents   = 100_000
)

// checkpointWriteTimeout bounds one checkpoint's write.
const checkpointWriteTimeout = 2 * time.Minute

// checkpointStopWait is how long a stopping run waits for a checkpoint
// being written: a stop (a shutdown, a query moving to another worker)
// must not wait for checkpointWriteTimeout. A write still under way then
// is abandoned; the previous checkpoint stays (a new one replaces it in
// one transaction), so the next run only reads a little more.
const checkpointStopWait = 5 * time.Second

// checkpointer writes a live query's checkpoints: the state's rows are
// gathered on the runner's goroutine (the engine is not safe for
// concurrent use; only this holds the live query up), then serialised,
// compressed and stored by a goroutine of its own while the runner goes
// on. One write at a time; a checkpoint due while one is being
// written waits for the next round.
type checkpointer struct {
	eng         Checkpointer
	store       *results.Store
	log         *slog.Logger
	queryID     string
	fingerprint string
	every       time.Duration
	events      int64
	// epochs are the run's capture epochs, saved with the positions.
	epochs *captureEpochs
	// topicIDs are the Kafka IDs of the topics read (topicIDs), saved
	// with the positions.
	topicIDs map[string]string

	last       time.Time // when the last checkpoint was taken (or the run started)
	lastEvents int64     // the run's events applied then
	restored   bool      // the run started from a checkpoint
	base       int64     // events the restored checkpoint reflected
	busy       chan struct{}
	done       chan error // the write's result; nil before the first
	cancel     func()     // abandons the write under way
	// stopWait is checkpointStopWait (tests shorten it).
	stopWait time.Duration
}

// due says whether a checkpoint is to be taken after eventsApplied
// events of this run.
func (c *checkpointer) due(eventsApplied int64) bool {
	if c == nil || eventsApplied == c.lastEvents {
		return false
	}
	return eventsApplied-c.lastEvents >= c.events || time.Since(c.last) >= c.every
}

// take gathers the state at positions, then serialises and writes it in
// the background.
// It returns the first error of an earlier write that the runner must act
// on (the query was deleted or went stale), nil otherwise.
func (c *checkpointer) take(ctx context.Context, positions map[string]map[int32]int64, eventsApplied int64) error {
	if err := c.collect(false); err != nil {
		return err
	}
	if c.done != nil {
		return nil // the previous one is still being written
	}
	started := time.Now()
	encode, err := c.eng.CheckpointState()
	if err != nil {
		c.log.Warn("cached query: checkpoint not taken", "error", err)
		c.last, c.lastEvents = time.Now(), eventsApplied
		return nil
	}
	held := time.Since(started) // how long the live query waited
	ck := results.Checkpoint{Fingerprint: c.fingerprint, Events: c.base + eventsApplied,
		Positions: make(map[string]map[int32]int64, len(positions))}
	for t, ps := range positions {
		ck.Positions[t] = maps.Clone(ps)
	}
	ck.TopicIDs = c.topicIDs
	ck.CaptureEpochs = make(map[string]map[int32]int64, len(c.epochs.max))
	for t, ps := range c.epochs.max {
		ck.CaptureEpochs[t] = maps.Clone(ps)
	}
	c.last, c.lastEvents = time.Now(), eventsApplied
	done := make(chan error, 1)
	c.done = done
	// A run that stops lets the write finish, for a few seconds (stop):
	// the next run starts from it.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), checkpointWriteTimeout)
	c.cancel = cancel
	go func() {
		defer cancel()
		state, err := encode()
		if err != nil {
			done <- fmt.Errorf("serialise: %w", err)
			return
		}
		ck.State = state
		serialised := time.Since(started)
		err = c.store.SaveCheckpoint(wctx, c.queryID, ck)
		if err == nil {
			c.log.Info("cached query: checkpoint written", "events", ck.Events, "state_bytes", len(state),
				"held_ms", held.Milliseconds(), "serialise_ms", serialised.Milliseconds(), "total_ms", time.Since(started).Milliseconds())
		}
		done <- err
	}()
	return nil
}

// stop ends the run's checkpointing: a write under way gets stopWait to
// end, then is abandoned (its context cancelled; it is not waited for).
func (c *checkpointer) stop() {
	if c == nil || c.done == nil {
		return
	}
	wait := c.stopWait
	if wait == 0 {
		wait = checkpointStopWait
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case err := <-c.done:
		c.done <- err // for collect
		c.collect(true)
	case <-t.C:
		c.cancel()
		c.done = nil
		c.log.Warn("cached query: checkpoint write abandoned as the run stops; the previous checkpoint stays", "waited", wait)
	}
}

// collect takes the result of the write under way: waiting for it when
// wait is set. A write that failed because the query was deleted or went
// stale is returned; other failures are logged (the next one may do).
func (c *checkpointer) collect(wait bool) error {
	if c == nil || c.done == nil {
		return nil
	}
	var err error
	if wait {
		err = <-c.done
	} else {
		select {
		case err = <-c.done:
		default:
			return nil
		}
	}
	c.done = nil
	switch {
	case err == nil:
		return nil
	case errors.Is(err, results.ErrDeleted), errors.Is(err, results.ErrStale):
		return err
	case errors.Is(err, context.Canceled):
		return nil
	}
	c.log.Warn("cached query: write checkpoint", "error", err)
	return nil
}

// startPositions says where the query reads each partition of its topics
// from: the checkpoint's position (0 without one), or the partition's log
// start when retention deleted records before that. lost describes the
// partitions whose needed records are gone ("" when none are).
//
// A position past a partition's end (the topics were deleted and created
// again since the checkpoint) gives errCheckpointAhead: the checkpoint is
// not of these topics.
func startPositions(ctx context.Context, adm *kadm.Client, topics []string, from map[string]map[int32]int64) (map[string]map[int32]int64, string, error) {
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, "", fmt.Errorf("list start offsets of %v: %w", topics, err)
	}
	ends, err := endOffsets(ctx, adm, topics...)
	if err != nil {
		return nil, "", err
	}
	var ahead error
	ends.Each(func(o kadm.ListedOffset) {
		if need := from[o.Topic][o.Partition]; need > o.Offset && ahead == nil {
			ahead = fmt.Errorf("%w: %s partition %d ends at offset %d, the checkpoint is at %d", errCheckpointAhead, o.Topic, o.Partition, o.Offset, need)
		}
	})
	if ahead != nil {
		return nil, "", ahead
	}
	out := map[string]map[int32]int64{}
	var lost []string
	starts.Each(func(o kadm.ListedOffset) {
		need := from[o.Topic][o.Partition]
		at := need
		if o.Offset > need {
			lost = append(lost, fmt.Sprintf("%s partition %d starts at offset %d, the query needs it from %d", o.Topic, o.Partition, o.Offset, need))
			at = o.Offset
		}
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = at
	})
	return out, strings.Join(lost, "; "), nil
}

// topicIDs lists the Kafka IDs of topics (none for a broker without
// topic IDs). A topic deleted and created again under its name has a new
// ID: a checkpoint of the old one is not restored, even when the new
// topic has grown past the checkpoint's offsets (which errCheckpointAhead
// cannot tell).
func topicIDs(ctx context.Context, adm *kadm.Client, topics []string) (map[string]string, error) {
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("topic ids of %v: %w", topics, err)
	}
	out := map[string]string{}
	for _, t := range topics {
		d, ok := md.Topics[t]
		switch {
		case !ok:
			return nil, fmt.Errorf("topic ids of %v: no metadata of %s", topics, t)
		case d.Err != nil:
			return nil, fmt.Errorf("topic ids of %v: %s: %w", topics, t, d.Err)
		case d.ID == kadm.TopicID{}:
			return nil, nil // the broker has no topic IDs
		}
		out[t] = d.ID.String()
	}
	return out, nil
}

// errCheckpointAhead says a checkpoint's positions are past the ends of
// the topics.
var errCheckpointAhead = errors.New("the checkpoint is ahead of the topics")

// consumeFrom is the kgo option that reads every partition of positions
// from its offset.
func consumeFrom(positions map[string]map[int32]int64) kgo.Opt {
	from := map[string]map[int32]kgo.Offset{}
	for t, ps := range positions {
		from[t] = map[int32]kgo.Offset{}
		for p, o := range ps {
			from[t][p] = kgo.NewOffset().At(o)
		}
	}
	return kgo.ConsumePartitions(from)
}
