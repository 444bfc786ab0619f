package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	httpapi "github.com/cdcq/cdcq/http"
	"github.com/cdcq/cdcq/internal/cachedquery"
	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/results"
	"github.com/cdcq/cdcq/projections"
)

// APIOptions configure RunAPI.
type APIOptions struct {
	// Listener to serve on. Required.
	Listener net.Listener
	// RequireAuth and Tokens: see httpapi.Config.
	RequireAuth bool
	Tokens      []string
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

// resultReader serves materialised results to the API. While an engine
// catches up, it serves no rows: rows from before a restart would mix with
// a position that is not theirs. A STALE result (its source's schema
// changed under the query) is served with the position it was last
// correct at, never as caught up.
type resultReader struct {
	store *results.Store
}

func (r resultReader) QueryResult(ctx context.Context, queryID string) (httpapi.QueryResult, error) {
	res, err := r.store.Result(ctx, queryID)
	if errors.Is(err, results.ErrNotFound) {
		return httpapi.QueryResult{}, fmt.Errorf("%s: %w", queryID, httpapi.ErrNoResult)
	}
	if err != nil {
		return httpapi.QueryResult{}, err
	}
	p := res.Progress
	out := httpapi.QueryResult{
		State:         p.State,
		CaughtUp:      p.State == results.StateLive,
		Position:      httpapi.ResultPosition{LSN: p.SourceLSN, SourceTime: p.SourceTime, Offsets: p.Positions},
		EventsApplied: p.EventsApplied,
		LastError:     p.LastError,
		UpdatedAt:     p.UpdatedAt,
	}
	if out.CaughtUp || p.State == results.StateStale {
		// A stale result is the last correct one, at its position: served,
		// and marked so.
		out.Rows = res.Rows
	}
	if h := p.Hydration; h != nil && !out.CaughtUp {
		out.Hydration = &httpapi.Hydration{SnapshotDone: h.SnapshotDone, RowsCaptured: h.RowsCaptured,
			RowsEstimate: h.RowsEstimate, RowsApplied: p.EventsApplied}
	}
	return out, nil
}

// RunAPI serves the HTTP API until ctx ends, then drains in-flight
// requests.
func RunAPI(ctx context.Context, inf *Infra, opts APIOptions, logger *slog.Logger) error {
	pub, err := kafkabus.NewPublisher(kafkabus.Config{Brokers: inf.Brokers, Logger: logger})
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
	srv, err := httpapi.New(httpapi.Config{
		Commands:    cmds,
		Status:      store,
		Results:     resultReader{res},
		Sealer:      inf.Sealer,
		Tokens:      opts.Tokens,
		RequireAuth: opts.RequireAuth,
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
