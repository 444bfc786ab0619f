package embedded

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/results"
	"github.com/cdcq/cdcq/internal/stagetrace"
)

// publisher produces a live query's result changes to the result topic
// without waiting for Kafka's acknowledgement: the next batch is applied
// and committed in Postgres meanwhile. The client keeps the records of the
// partition in the order produced (idempotent producer), so the topic
// gets every change in order; the first error stops the runner at its
// next poll, and the run that follows republishes the whole result
// (goLive).
type publisher struct {
	cl    *kgo.Client
	topic string
	err   atomic.Pointer[error]
}

func newPublisher(cl *kgo.Client, topic string) *publisher {
	return &publisher{cl: cl, topic: topic}
}

// publish produces changes; traced are their sources' commit times for
// stagetrace.
func (p *publisher) publish(ctx context.Context, changes []results.Change, traced []int64) {
	for i, c := range changes {
		last := i == len(changes)-1
		p.cl.Produce(ctx, &kgo.Record{Topic: p.topic, Key: c.Key, Value: c.Row}, func(_ *kgo.Record, err error) {
			if err != nil {
				p.fail(fmt.Errorf("publish result changes to %s: %w", p.topic, err))
			} else if last {
				stagetrace.MarkAll("result-topic-acked", traced, time.Now())
			}
		})
	}
}

func (p *publisher) fail(err error) { p.err.CompareAndSwap(nil, &err) }

// failed returns the first error of a publish.
func (p *publisher) failed() error {
	if e := p.err.Load(); e != nil {
		return *e
	}
	return nil
}

// flush waits briefly for what is in flight, when the runner stops.
func (p *publisher) flush() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = p.cl.Flush(ctx)
}
