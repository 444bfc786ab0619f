package capture

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/leader"
	"github.com/cdcq/cdcq/internal/stagetrace"
)

// producer writes one capture's records to Kafka. Records are produced
// asynchronously; each counts against the batch (a transaction, or the
// snapshot) it belongs to, and a batch is acknowledged when Kafka
// acknowledged all its records.
type producer struct {
	cl          *kgo.Client
	adm         *kadm.Client
	partitions  int32
	replication int16
	configs     map[string]*string // of change topics
	topics      map[string]bool
	// onAck, when set (tests and benchmarks), sees every acknowledged
	// change record with the commit time of its transaction.
	onAck func(commit time.Time)
	// ctx, set by follow, is the context records are produced with.
	ctx context.Context
	// epoch, when the capture runs under a lease, is the lease's epoch
	// (EpochHeader's value), carried by every record produced.
	epoch []byte

	errOnce sync.Once
	err     atomic.Pointer[error]
}

func newProducer(cfg Config) (*producer, error) {
	cl, err := cfg.Kafka.NewClient(
		kgo.ClientID("cdcq-capture"),
		// Idempotent writes (the default) with acks=all keep each
		// partition's records in the order produced, across retries.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Kafka's Java client's partitioner, as Debezium uses: a key always
		// lands on the partition Debezium would have chosen.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerLinger(cfg.ProducerLinger),
		kgo.MaxBufferedRecords(cfg.MaxBufferedRecords),
		// A copy: the client rewrites the slice it is given, and captures
		// share the Config.
		kgo.ProducerBatchCompression(slices.Clone(cfg.Compression)...),
		// A topic just created may take a moment to show in metadata.
		kgo.UnknownTopicRetries(50),
	)
	if err != nil {
		return nil, err
	}
	return &producer{
		cl: cl, adm: kadm.NewClient(cl),
		partitions: cfg.TopicPartitions, replication: cfg.TopicReplicationFactor, configs: changeTopicConfigs(cfg),
		topics: map[string]bool{}, onAck: cfg.onAck,
	}, nil
}

// EpochHeader is the header that carries, on every record of an embedded
// capture run under a lease, the lease's epoch (leader.Fence) in decimal.
// A capture that lost its lease while paused may still send records it
// had read before; its successor's records carry a larger epoch, and a
// reader drops a record whose epoch is below one it already read on the
// partition (the successor sends those changes again, from the slot).
const EpochHeader = "cdcq.capture-epoch"

// useFence makes every record produced carry ctx's lease epoch.
func (p *producer) useFence(ctx context.Context) {
	if f, ok := leader.FenceFrom(ctx); ok {
		p.epoch = strconv.AppendInt(nil, f.Epoch, 10)
	}
}

// stamp adds the epoch header to rec.
func (p *producer) stamp(rec *kgo.Record) {
	if p.epoch != nil {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: EpochHeader, Value: p.epoch})
	}
}

// changeTopicConfigs are the settings of the change topics cfg creates.
func changeTopicConfigs(cfg Config) map[string]*string {
	configs := kafkabus.ChangeTopicConfigs(cfg.ChangeTopicRetention)
	maps.Copy(configs, cfg.TopicConfigs)
	return configs
}

// close stops the client; records not yet acknowledged are abandoned (the
// slot still holds their changes).
func (p *producer) close() { p.cl.Close() }

// ensureTopic creates topic unless this producer already saw it.
func (p *producer) ensureTopic(ctx context.Context, topic string) error {
	if p.topics[topic] {
		return nil
	}
	configs := p.configs
	if strings.HasPrefix(topic, HeartbeatTopicPrefix) {
		configs = kafkabus.HeartbeatTopicConfigs()
	}
	resp, err := p.adm.CreateTopic(ctx, p.partitions, p.replication, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	p.topics[topic] = true
	return nil
}

// fail remembers the first produce error; the stream stops on it.
func (p *producer) fail(err error) {
	p.errOnce.Do(func() { p.err.Store(&err) })
}

// failed returns the first produce error, if any.
func (p *producer) failed() error {
	if e := p.err.Load(); e != nil {
		return *e
	}
	return nil
}

// produceGrace is how long records already handed to the client keep
// their chance to be written once the stream's context ended.
const produceGrace = 5 * time.Second

// follow makes the records produced from now on outlive ctx by
// produceGrace, and returns what ends that at once. A record failed by its
// context's end while earlier ones of its partition were still retried,
// and later ones already written, would reach Kafka out of order when the
// next owner replays it: stopping flushes the buffered records instead
// (streamer.stop), and only a client that cannot write for produceGrace
// fails them.
func (p *producer) follow(ctx context.Context) (stop func()) {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.ctx = pctx
	go func() {
		select {
		case <-pctx.Done():
			return
		case <-ctx.Done():
		}
		select {
		case <-pctx.Done():
		case <-time.After(produceGrace):
			cancel()
		}
	}()
	return cancel
}

// recordContext is the context records are produced with.
func (p *producer) recordContext(ctx context.Context) context.Context {
	if p.ctx != nil {
		return p.ctx
	}
	return ctx
}

// produce sends rec as part of b.
func (p *producer) produce(ctx context.Context, rec *kgo.Record, b *batch) {
	p.stamp(rec)
	b.pending.Add(1)
	p.cl.Produce(p.recordContext(ctx), rec, b.done)
}

// produceUntracked sends a record that no position depends on
// (heartbeats).
func (p *producer) produceUntracked(ctx context.Context, rec *kgo.Record) {
	p.stamp(rec)
	p.cl.Produce(p.recordContext(ctx), rec, nil)
}

// batch is the records of one transaction (or of the snapshot).
type batch struct {
	p       *producer
	pending atomic.Int64
	// end is the position confirmed to the slot once the batch is
	// acknowledged: the transaction's end LSN.
	end    pglogrepl.LSN
	commit time.Time
	// sealed is set when no more records will be added (at commit).
	sealed bool
	// failed is set when a record of the batch was not written (a Kafka
	// error, or the stream's context ended while the record was still
	// buffered): the batch is never confirmed.
	failed atomic.Bool
	done   func(*kgo.Record, error)
}

func (p *producer) newBatch(commit time.Time) *batch {
	b := &batch{p: p, commit: commit}
	b.done = b.ack
	return b
}

func (b *batch) ack(_ *kgo.Record, err error) {
	if err != nil {
		// Before the count: advance must see it once pending is 0.
		b.failed.Store(true)
		b.p.fail(fmt.Errorf("produce to kafka: %w", err))
	} else {
		if b.p.onAck != nil {
			b.p.onAck(b.commit)
		}
		if stagetrace.On() {
			stagetrace.Mark("capture-acked", b.commit, time.Now())
		}
	}
	b.pending.Add(-1)
}

// ackQueue holds sealed batches in commit order; the prefix whose records
// are all acknowledged may be confirmed to the slot. It is used by the
// stream's goroutine only.
type ackQueue struct {
	q []*batch
	// confirmed is the end of the last batch of the acknowledged prefix.
	confirmed pglogrepl.LSN
	// last is the end of the last batch queued.
	last pglogrepl.LSN
}

func (a *ackQueue) push(b *batch) {
	b.sealed = true
	a.q = append(a.q, b)
	if b.end > a.last {
		a.last = b.end
	}
}

// advance pops acknowledged batches and returns the confirmable position.
// It stops at a batch with a record that failed: the stream ends on the
// failure, and what follows is read again from the slot.
func (a *ackQueue) advance() pglogrepl.LSN {
	n := 0
	for n < len(a.q) && a.q[n].pending.Load() == 0 && !a.q[n].failed.Load() {
		if a.q[n].end > a.confirmed {
			a.confirmed = a.q[n].end
		}
		n++
	}
	if n > 0 {
		clear(a.q[:n])
		a.q = a.q[n:]
	}
	return a.confirmed
}

// oldest is the commit time of the oldest batch not yet acknowledged.
func (a *ackQueue) oldest() (time.Time, bool) {
	for _, b := range a.q {
		if b.pending.Load() > 0 {
			return b.commit, true
		}
	}
	return time.Time{}, false
}
