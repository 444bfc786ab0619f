package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	httpapi "github.com/cdcq/cdcq/http"
	"github.com/cdcq/cdcq/internal/bindings"
	"github.com/cdcq/cdcq/internal/cachedquery"
	"github.com/cdcq/cdcq/internal/connstr"
	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/results"
	"github.com/cdcq/cdcq/internal/secret"
	"github.com/cdcq/cdcq/internal/serving"
	"github.com/cdcq/cdcq/projections"
)

// APIOptions configure RunAPI.
type APIOptions struct {
	// Listener to serve on. Required.
	Listener net.Listener
	// RequireAuth and Tokens: see httpapi.Config.
	RequireAuth bool
	Tokens      []string
	// WriteRate and WriteBurst limit each caller's POST and DELETE
	// requests (see httpapi.Config); zero takes the defaults.
	WriteRate  float64
	WriteBurst int
}

// checkQuery compiles a cached query for the API, so that a bad schema or
// query is answered with 422 and its position before anything is published.
func checkQuery(schema, sql string) (string, error) {
	c, err := cachedquery.Compile(schema, sql)
	if err != nil {
		var p *cachedquery.Problem
		if errors.As(err, &p) {
			return "", &httpapi.QueryError{Field: p.Field, Line: p.Line, Column: p.Column, Message: p.Message}
		}
		return "", err
	}
	return c.Normalized, nil
}

// resultSource serves results to the API from the in-memory cache. While
// an engine catches up, it serves no rows: rows from before a restart
// would mix with a position that is not theirs. A STALE result (its
// source's schema changed under the query) is served with the position it
// was last correct at, never as caught up.
type resultSource struct {
	cache *serving.Cache
}

func (r resultSource) Result(ctx context.Context, queryID string) (httpapi.ResultView, error) {
	s, err := r.cache.Snapshot(ctx, queryID)
	if err != nil {
		return nil, servingError(err)
	}
	return resultView{s}, nil
}

func (r resultSource) Wait(ctx context.Context, queryID, etag string) (httpapi.ResultView, error) {
	s, err := r.cache.Wait(ctx, queryID, etag)
	if err != nil {
		return nil, servingError(err)
	}
	return resultView{s}, nil
}

func (r resultSource) Subscribe(ctx context.Context, queryID, since string) (httpapi.ResultSubscription, error) {
	var cur *serving.Cursor
	if since != "" {
		c, err := serving.ParseCursor(since)
		if err != nil {
			return nil, badPosition{err}
		}
		cur = &c
	}
	sub, err := r.cache.Subscribe(ctx, queryID, cur)
	if err != nil {
		return nil, servingError(err)
	}
	return &subscription{sub: sub, buf: make([]serving.Event, 0, 256)}, nil
}

// badPosition is a position the API was given that cannot be read.
type badPosition struct{ err error }

func (e badPosition) Error() string        { return e.err.Error() }
func (e badPosition) Is(target error) bool { return target == httpapi.ErrBadPosition }

func servingError(err error) error {
	if errors.Is(err, serving.ErrBadCursor) {
		return badPosition{err}
	}
	if errors.Is(err, serving.ErrNotFound) {
		return fmt.Errorf("%w: %w", projections.ErrNotFound, err)
	}
	return err
}

type resultView struct{ s *serving.Snapshot }

func (v resultView) Query() projections.QueryView { return v.s.View }
func (v resultView) ETag() string                 { return v.s.ETag() }
func (v resultView) Rows() []byte                 { return v.s.Rows() }
func (v resultView) Page(after string, limit int) ([]byte, string, error) {
	return v.s.Page(after, limit)
}

func (v resultView) Columns() []httpapi.ResultColumn {
	out := make([]httpapi.ResultColumn, len(v.s.Columns))
	for i, c := range v.s.Columns {
		out[i] = httpapi.ResultColumn{Name: c.Name, Type: c.Type}
	}
	return out
}

func (v resultView) Meta() httpapi.QueryResult {
	if !v.s.Found {
		// Not started yet (or, on Flink, no result record read yet).
		return httpapi.QueryResult{State: httpapi.StateStarting}
	}
	p := v.s.Progress
	out := httpapi.QueryResult{
		State:    p.State,
		CaughtUp: p.State == results.StateLive,
		Position: httpapi.ResultPosition{Version: v.s.Version, LSN: p.SourceLSN, SourceTime: p.SourceTime,
			Offsets: p.Positions},
		EventsApplied: p.EventsApplied,
		LastError:     p.LastError,
		UpdatedAt:     p.UpdatedAt,
	}
	if lag, ok := resultLag(time.Now(), p); ok {
		out.Position.LagSeconds = &lag
	}
	if out.CaughtUp {
		out.Position.FreshThrough = p.FreshThrough
	}
	if h := p.Hydration; h != nil && !out.CaughtUp {
		out.Hydration = &httpapi.Hydration{SnapshotDone: h.SnapshotDone, RowsCaptured: h.RowsCaptured,
			RowsEstimate: h.RowsEstimate, RowsApplied: p.EventsApplied}
	}
	return out
}

// heartbeatGrace is how long after its fresh-through time a result is not
// behind yet: the captures write a heartbeat every second (the embedded
// capture's HeartbeatInterval, Debezium's heartbeat.interval.ms).
const heartbeatGrace = 1500 * time.Millisecond

// resultLag is how far a result may be behind its source at now, in
// seconds. A LIVE result with a fresh-through time: 0 while heartbeats
// keep coming, the time since the last one beyond that, and at least the
// time the newest change took when it is newer than the last heartbeat.
// Otherwise (no heartbeats, as on Flink) the time the newest change took
// from its commit to the result; false when no change was read yet.
func resultLag(now time.Time, p results.Progress) (float64, bool) {
	var lag time.Duration
	switch {
	case p.FreshThrough != nil && p.State == results.StateLive:
		lag = max(now.Sub(*p.FreshThrough)-heartbeatGrace, 0)
		if p.SourceTime != nil && !p.SourceTime.Before(*p.FreshThrough) {
			lag = max(lag, p.UpdatedAt.Sub(*p.SourceTime))
		}
	case p.SourceTime != nil && !p.UpdatedAt.IsZero():
		lag = max(p.UpdatedAt.Sub(*p.SourceTime), 0)
	default:
		return 0, false
	}
	return lag.Seconds(), true
}

// subscription adapts a serving.Subscription; its buffers are reused from
// one batch of events to the next (the API writes a batch before it asks
// for the next).
type subscription struct {
	sub *serving.Subscription
	buf []serving.Event
	out []httpapi.ResultEvent
}

func (s *subscription) Close() { s.sub.Close() }

func (s *subscription) Next(ctx context.Context) ([]httpapi.ResultEvent, error) {
	clear(s.buf[:cap(s.buf)])
	evs, err := s.sub.NextBatch(ctx, s.buf[:0])
	s.buf = evs[:0]
	if errors.Is(err, serving.ErrClosed) {
		return nil, httpapi.ErrSubscriptionEnded
	}
	if err != nil {
		return nil, err
	}
	clear(s.out[:cap(s.out)])
	s.out = s.out[:0]
	for _, ev := range evs {
		out := httpapi.ResultEvent{Event: ev.Kind, ID: ev.ID, Data: ev.Data}
		if ev.Snapshot != nil {
			out.Result = resultView{ev.Snapshot}
		}
		s.out = append(s.out, out)
	}
	return s.out, nil
}

// RunAPI serves the HTTP API until ctx ends, then drains in-flight
// requests.
func RunAPI(ctx context.Context, inf *Infra, opts APIOptions, logger *slog.Logger) error {
	pub, err := kafkabus.NewPublisher(kafkabus.Config{Kafka: inf.Kafka(), Logger: logger})
	if err != nil {
		return err
	}
	defer pub.Close()
	cmds, err := kafkabus.NewCommandPublisher(pub, inf.Names.Commands)
	if err != nil {
		return err
	}
	store, err := projections.NewStore(inf.Pool)
	if err != nil {
		return err
	}
	res, err := results.New(inf.Pool)
	if err != nil {
		return err
	}
	cache, err := serving.New(serving.Config{DatabaseURL: inf.DatabaseURL, Views: store, Results: res, Logger: logger})
	if err != nil {
		return err
	}
	cacheCtx, stopCache := context.WithCancel(context.WithoutCancel(ctx))
	cacheDone := make(chan struct{})
	go func() {
		defer close(cacheDone)
		cache.Run(cacheCtx)
	}()
	defer func() { stopCache(); <-cacheDone }()
	bound, err := bindings.New(inf.Pool)
	if err != nil {
		return err
	}
	srv, err := httpapi.New(httpapi.Config{
		Commands:    cmds,
		Status:      store,
		Bindings:    apiBindings{store: bound, sealer: inf.Sealer},
		Results:     resultSource{cache},
		Sealer:      inf.Sealer,
		Tokens:      opts.Tokens,
		RequireAuth: opts.RequireAuth,
		WriteRate:   opts.WriteRate,
		WriteBurst:  opts.WriteBurst,
		Logger:      logger,
		CheckQuery:  checkQuery,
	})
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(opts.Listener) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// apiBindings reads the workers' bindings for the API: the bound
// connection string opened and parsed.
type apiBindings struct {
	store  *bindings.Store
	sealer *secret.Sealer
}

func (b apiBindings) Binding(ctx context.Context, environmentID string) (connstr.Conn, bool, bool, error) {
	sealed, established, ok, err := b.store.Bound(ctx, environmentID)
	if err != nil || !ok {
		return connstr.Conn{}, false, false, err
	}
	plain, err := b.sealer.Open(sealed, environmentID)
	if err != nil {
		return connstr.Conn{}, false, false, fmt.Errorf("the connection bound to %s: %w", environmentID, err)
	}
	conn, err := connstr.StoredIdentity(plain)
	if err != nil {
		return connstr.Conn{}, false, false, fmt.Errorf("the connection bound to %s %w", environmentID, err)
	}
	return conn, established, true, nil
}
