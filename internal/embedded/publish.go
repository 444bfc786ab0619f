package embedded

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/leader"
	"github.com/cdcq/cdcq/internal/results"
	"github.com/cdcq/cdcq/internal/stagetrace"
)

// publisher produces a query's result changes to the result topic, each
// batch in one Kafka transaction of the query's own transactional id. A
// worker that takes the query over initialises the same id, which fences
// the previous owner's producer: should that one wake up (paused, cut
// off) with changes still to publish, Kafka refuses them
// (leader.ErrFenced), so the topic never gets an older result after a
// newer one. Readers that must not see an aborted batch read with
// isolation level read_committed.
type publisher struct {
	cl    *kgo.Client
	topic string
}

// newPublisher opens the transactional producer of a query's results and
// initialises its transactional id at once, which fences the previous
// owner's producer now rather than at this owner's first publish (which
// may come minutes later, after catching up).
func newPublisher(ctx context.Context, kafka kafkasec.Cluster, topic, queryID string) (*publisher, error) {
	cl, err := kafka.NewClient(
		kgo.ClientID("cdcq-results"),
		kgo.TransactionalID(transactionalID(topic, queryID)),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// A topic just created may take a moment to show in metadata.
		kgo.UnknownTopicRetries(50),
	)
	if err != nil {
		return nil, err
	}
	p := &publisher{cl: cl, topic: topic}
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("initialise the result producer of %s on %s: %w", queryID, topic, err)
	}
	return p, nil
}

// transactionalID is the Kafka transactional id of a query's result
// producer; the result topic's name carries the Kafka namespace, so that
// deployments sharing a cluster do not fence each other.
func transactionalID(topic, queryID string) string {
	return topic + "/" + queryID
}

// publish produces changes in one transaction and waits for its commit;
// traced are their sources' commit times for stagetrace.
func (p *publisher) publish(ctx context.Context, changes []results.Change, traced []int64) error {
	if len(changes) == 0 {
		return nil
	}
	if err := p.cl.BeginTransaction(); err != nil {
		return p.failed(len(changes), err)
	}
	recs := make([]*kgo.Record, len(changes))
	for i, c := range changes {
		recs[i] = &kgo.Record{Topic: p.topic, Key: c.Key, Value: c.Row}
	}
	perr := p.cl.ProduceSync(ctx, recs...).FirstErr()
	commit := kgo.TryCommit
	if perr != nil {
		commit = kgo.TryAbort
	}
	// An abort after a failed produce waits for nothing in flight.
	end, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if perr != nil {
		_ = p.cl.AbortBufferedRecords(end)
	}
	eerr := p.cl.EndTransaction(end, commit)
	if err := errors.Join(perr, eerr); err != nil {
		return p.failed(len(changes), err)
	}
	stagetrace.MarkAll("result-topic-acked", traced, time.Now())
	return nil
}

// failed describes a failed publish; a producer fenced by a successor's
// gives an error that matches leader.ErrFenced.
func (p *publisher) failed(n int, err error) error {
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
		return fmt.Errorf("publish %d result changes to %s: %w: %w", n, p.topic, leader.ErrFenced, err)
	}
	return fmt.Errorf("publish %d result changes to %s: %w", n, p.topic, err)
}

// close stops the producer; a transaction still open is aborted by the
// broker when the next owner initialises the id, or when it times out.
func (p *publisher) close() { p.cl.Close() }
