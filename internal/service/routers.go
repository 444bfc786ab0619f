package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"golang.org/x/sync/errgroup"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/handlers"
	"github.com/cdcq/cdcq/internal/bindings"
	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/inbox"
	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/leader"
	"github.com/cdcq/cdcq/internal/pgsource"
	"github.com/cdcq/cdcq/internal/results"
	"github.com/cdcq/cdcq/internal/statusnudge"
	"github.com/cdcq/cdcq/projections"
)

// The router handlers and their consumer groups are named by the Kafka
// namespace (names.ControlPlane: cdcq-worker and cdcq-projector by
// default). The names never change for a deployment: renaming a group
// would make it re-consume its topic.

// statusPollerLock is the advisory lock id of the status poller's election.
const statusPollerLock int64 = 0x63646371_0001 // "cdcq", 1

// schemaWatcherLock is the advisory lock id of the schema watcher's
// election.
const schemaWatcherLock int64 = 0x63646371_0005 // "cdcq", 5

// consumer is one topic handled by one router handler.
type consumer struct {
	name      string
	topic     string
	deadTopic string
	handle    message.NoPublishHandlerFunc
	// permanent says which errors no retry can fix; those messages go to
	// deadTopic.
	permanent func(error) bool
	extra     []message.HandlerMiddleware
}

// retry is the backoff for transient failures (Kafka Connect rebalancing,
// a 5xx, a timeout). After MaxRetries the message is nacked and handed
// back after the subscriber's NackResendSleep, so retrying never stops
// while the partition waits. A stopping worker retries no more: the
// partition's next owner will.
func retry(logger watermill.LoggerAdapter, permanent func(error) bool, d *drain) middleware.Retry {
	return middleware.Retry{
		MaxRetries:      6,
		InitialInterval: 250 * time.Millisecond,
		MaxInterval:     10 * time.Second,
		Multiplier:      2,
		Logger:          logger,
		ShouldRetry:     func(p middleware.RetryParams) bool { return !permanent(p.Err) && !d.stopping() },
	}
}

// drainTimeout is how long a stopping worker lets the messages it is
// handling finish before it abandons them.
const drainTimeout = 20 * time.Second

// errStopping nacks a message that reaches a stopping worker: it stays
// uncommitted, and the partition's next owner handles it.
var errStopping = errors.New("worker is stopping")

// drain lets a stopping router finish the messages it is handling. Without
// it, stopping cancels their contexts halfway: a command whose effects
// were partly made (or made but not yet recorded in the inbox) would be
// carried out again by the partition's next owner.
type drain struct {
	mu      sync.Mutex
	stopped bool
	running sync.WaitGroup
}

// middleware turns messages away once the drain began and counts the
// others while they are handled.
func (d *drain) middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		d.mu.Lock()
		if d.stopped {
			d.mu.Unlock()
			return nil, errStopping
		}
		d.running.Add(1)
		d.mu.Unlock()
		defer d.running.Done()
		return h(msg)
	}
}

func (d *drain) stopping() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopped
}

// wait turns new messages away and waits up to timeout for the running
// ones; it reports whether they all finished.
func (d *drain) wait(timeout time.Duration) bool {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	done := make(chan struct{})
	go func() {
		d.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// runRouter consumes each topic with its handler until ctx ends, then
// lets the messages in hand finish (up to drainTimeout) before it leaves
// the consumer groups.
func runRouter(ctx context.Context, inf *Infra, logger *slog.Logger, consumers ...consumer) error {
	wl := watermill.NewSlogLogger(logger)
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, wl)
	if err != nil {
		return err
	}
	d := &drain{}
	pub, err := kafkabus.NewPublisher(kafkabus.Config{Kafka: inf.Kafka(), Logger: logger})
	if err != nil {
		return err
	}
	defer pub.Close()
	for _, c := range consumers {
		sub, err := kafkabus.NewSubscriber(kafkabus.Config{Kafka: inf.Kafka(), Logger: logger}, c.name)
		if err != nil {
			return err
		}
		poison, err := middleware.PoisonQueueWithFilter(pub, c.deadTopic, c.permanent)
		if err != nil {
			return err
		}
		h := r.AddConsumerHandler(c.name, c.topic, sub, c.handle)
		h.AddMiddleware(d.middleware, handlers.Logging(logger, c.name), poison)
		h.AddMiddleware(c.extra...)
		h.AddMiddleware(retry(wl, c.permanent, d).Middleware, middleware.Recoverer)
	}
	// The router runs on a context that stopping does not cancel: the
	// messages' contexts derive from it. It is closed after the drain.
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(context.WithoutCancel(ctx)) }()
	select {
	case err := <-runErr:
		if err != nil {
			return fmt.Errorf("router: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	if !d.wait(drainTimeout) {
		logger.Warn("stopping with messages still being handled", "timeout", drainTimeout.String())
	}
	if err := r.Close(); err != nil {
		logger.Warn("close router", "error", err)
	}
	if err := <-runErr; err != nil {
		return fmt.Errorf("router: %w", err)
	}
	return nil
}

// WorkerDeps are the engines a worker drives.
type WorkerDeps struct {
	Capture   handlers.Capture
	Processor handlers.Processor
	// Background runs in every worker beside the command handlers: the
	// supervisors of the embedded capture and query engine.
	Background []func(ctx context.Context) error
	// Source reaches source databases for the catalog checks and the
	// schema watcher (SourceClient); nil is the strict source policy.
	Source *pgsource.Client
	// LagSampleInterval is the status poller's
	// (handlers.StatusPollerConfig.LagSampleInterval; 0: its default).
	LagSampleInterval time.Duration
}

// RunWorker consumes the control topic, projects the events topic into
// Postgres, and campaigns to lead the status poller, until ctx ends.
func RunWorker(ctx context.Context, inf *Infra, deps WorkerDeps, statusInterval time.Duration, logger *slog.Logger) error {
	pub, err := kafkabus.NewPublisher(kafkabus.Config{Kafka: inf.Kafka(), Logger: logger})
	if err != nil {
		return err
	}
	defer pub.Close()
	evs, err := kafkabus.NewEventPublisher(pub, inf.Names.Events)
	if err != nil {
		return err
	}
	in, err := inbox.New(inf.Pool)
	if err != nil {
		return err
	}
	in.SessionTimeout = inf.LeaseTimeout
	bindingStore, err := bindings.New(inf.Pool)
	if err != nil {
		return err
	}
	bound := workerBindings{bindingStore}
	worker, err := handlers.NewWorker(handlers.WorkerConfig{
		Capture: deps.Capture, Processor: deps.Processor, Events: evs, Sealer: inf.Sealer, Bindings: bound, Logger: logger,
		Sequencer: in, Catalog: handlers.SourceCatalog{Source: deps.Source},
	})
	if err != nil {
		return err
	}
	store, err := projections.NewStore(inf.Pool)
	if err != nil {
		return err
	}
	poller, err := handlers.NewStatusPoller(handlers.StatusPollerConfig{
		Connections: store, Capture: deps.Capture, Queries: store, Processor: deps.Processor,
		Events: evs, Sealer: inf.Sealer, Interval: statusInterval, LagSampleInterval: deps.LagSampleInterval, Logger: logger,
	})
	if err != nil {
		return err
	}
	res, err := results.New(inf.Pool)
	if err != nil {
		return err
	}
	watcher, err := handlers.NewSchemaWatcher(handlers.SchemaWatcherConfig{
		Connections: store, Queries: store, Processor: deps.Processor, Events: evs, Sealer: inf.Sealer, Logger: logger,
		Checked: res.SetSchemaChecked, Source: deps.Source,
	})
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		leader.Run(gctx, leader.Config{DatabaseURL: inf.DatabaseURL, LockID: statusPollerLock, SessionTimeout: inf.LeaseTimeout, Logger: logger},
			func(ctx context.Context) { leadStatusPoller(ctx, inf, poller, logger) })
		return nil
	})
	g.Go(func() error {
		leader.Run(gctx, leader.Config{DatabaseURL: inf.DatabaseURL, LockID: schemaWatcherLock, SessionTimeout: inf.LeaseTimeout, Logger: logger}, watcher.Run)
		return nil
	})
	for _, bg := range deps.Background {
		g.Go(func() error { return bg(gctx) })
	}
	g.Go(func() error { return runWorkerRouter(gctx, inf, logger, worker, in, store) })
	return g.Wait()
}

// leadStatusPoller runs the status poller while this worker leads it, and
// listens for the engines' nudges (statusnudge), from every worker, that
// have it observe an environment at once.
func leadStatusPoller(ctx context.Context, inf *Infra, poller *handlers.StatusPoller, logger *slog.Logger) {
	lctx, cancel := context.WithCancel(ctx)
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		statusnudge.Listen(lctx, statusnudge.ListenConfig{DatabaseURL: inf.DatabaseURL, Nudge: poller.Nudge, Logger: logger})
	}()
	poller.Run(ctx)
	cancel()
	<-listening
}

// runWorkerRouter consumes the control topic and the events topic.
func runWorkerRouter(ctx context.Context, inf *Infra, logger *slog.Logger, worker *handlers.Worker, in *inbox.Inbox, store *projections.Store) error {
	return runRouter(ctx, inf, logger,
		consumer{
			name: inf.Names.WorkerGroup, topic: inf.Names.Commands, deadTopic: inf.Names.CommandsDead,
			handle:    func(msg *message.Message) error { return worker.HandleMessage(msg) },
			permanent: commands.IsDecodeError,
			// One command of an environment at a time across workers, with
			// the inbox check inside the lock.
			extra: []message.HandlerMiddleware{func(h message.HandlerFunc) message.HandlerFunc {
				return handlers.OnePerEnvironment(in)(handlers.Deduplicate(in)(h))
			}},
		},
		consumer{
			name: inf.Names.ProjectorGroup, topic: inf.Names.Events, deadTopic: inf.Names.EventsDead,
			handle: func(msg *message.Message) error {
				return store.Handle(msg.Context(), msg.Metadata.Get(events.NameHeader), msg.Payload)
			},
			permanent: func(err error) bool { return errors.Is(err, projections.ErrBadEvent) },
		},
	)
}

// workerBindings is bindings.Store as the handlers' Bindings port.
type workerBindings struct{ *bindings.Store }

func (b workerBindings) Bound(ctx context.Context, environmentID string) (handlers.Binding, bool, error) {
	sealed, established, ok, err := b.Store.Bound(ctx, environmentID)
	return handlers.Binding{Sealed: sealed, Established: established}, ok, err
}
