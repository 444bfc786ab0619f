// Package serving keeps cached queries' results in memory for the API, so
// that a read is answered without a database round trip, and pushes their
// changes to subscribers.
//
// The results are written by the engines' result writers
// (internal/results: the embedded engine's runner, the follower of Flink's
// result topic) into the job-state database, where every write takes a
// version and notifies channel cdcq_results. A Cache LISTENs to it: on a
// notification it reads the changes after the version it holds
// (results.Store.Since, one statement) and makes a new immutable Snapshot.
// Readers take the current Snapshot without a lock; subscribers get one
// event per changed group. Any number of API processes may each run a
// Cache over the same database: they see the same versions, so positions
// (ETags, event ids) mean the same in all of them.
//
// While the LISTEN connection is down, a read refreshes from the database
// first, so that nothing older than the database is served.
//
// This package must not import http or the engines.
package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdcq/cdcq/internal/pglisten"
	"github.com/cdcq/cdcq/internal/results"
	"github.com/cdcq/cdcq/projections"
)

// Notification channels written by the triggers of migration 00800.
const (
	resultsChannel = "cdcq_results"
	queriesChannel = "cdcq_queries"
)

// ViewReader reads a cached query's projected view and schema.
type ViewReader interface {
	CachedQueryDefinition(ctx context.Context, queryID string) (projections.QueryView, string, error)
}

// ResultReader reads a query's result changes after a version.
type ResultReader interface {
	Since(ctx context.Context, queryID string, since int64) (results.Delta, error)
}

// Config configures a Cache.
type Config struct {
	// DatabaseURL is the job-state database; the Cache holds a session of
	// its own on it to LISTEN. Required.
	DatabaseURL string
	Views       ViewReader   // Required.
	Results     ResultReader // Required.
	// MaxPending bounds the events waiting for one subscriber; a
	// subscriber that falls further behind is cut off. Default 10,000.
	MaxPending int
	// Idle is how long a result nobody reads or follows stays in memory.
	// Default 10 minutes.
	Idle   time.Duration
	Logger *slog.Logger
}

// Cache holds results in memory. Run must be running for it to follow
// changes as they happen; without it every read refreshes first.
type Cache struct {
	cfg       Config
	listening atomic.Bool

	mu      sync.Mutex
	entries map[string]*entry
	dirty   map[string]bool // queries to refresh; true: their view too
	kick    chan struct{}
}

// New refuses a config without its dependencies.
func New(cfg Config) (*Cache, error) {
	if cfg.DatabaseURL == "" || cfg.Views == nil || cfg.Results == nil {
		return nil, errors.New("serving: Config needs DatabaseURL, Views and Results")
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = 10000
	}
	if cfg.Idle == 0 {
		cfg.Idle = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Cache{cfg: cfg, entries: map[string]*entry{}, dirty: map[string]bool{}, kick: make(chan struct{}, 1)}, nil
}

// ErrNotFound says there is no cached query with the id.
var ErrNotFound = errors.New("no such cached query")

// Snapshot returns the query's result as this process holds it now,
// loading it on first use. It wraps ErrNotFound for an unknown query.
func (c *Cache) Snapshot(ctx context.Context, queryID string) (*Snapshot, error) {
	e, err := c.entry(ctx, queryID)
	if err != nil {
		return nil, err
	}
	return e.snap.Load(), nil
}

// Wait returns the query's snapshot once its ETag differs from etag, or
// the current one when ctx ends first.
func (c *Cache) Wait(ctx context.Context, queryID, etag string) (*Snapshot, error) {
	for {
		s, err := c.Snapshot(ctx, queryID)
		if err != nil || s.ETag() != etag {
			return s, err
		}
		var poll <-chan time.Time
		var t *time.Timer
		if !c.listening.Load() {
			// No notifications: look again soon.
			t = time.NewTimer(250 * time.Millisecond)
			poll = t.C
		}
		select {
		case <-ctx.Done():
		case <-s.changed:
		case <-poll:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return s, nil
		}
	}
}

// entry returns the query's entry, loaded; while the cache is not
// listening, refreshed.
func (c *Cache) entry(ctx context.Context, queryID string) (*entry, error) {
	c.mu.Lock()
	e := c.entries[queryID]
	if e == nil {
		e = newEntry(c, queryID)
		c.entries[queryID] = e
	}
	c.mu.Unlock()
	e.lastUsed.Store(time.Now().UnixNano())
	if e.snap.Load() != nil && c.listening.Load() {
		return e, nil
	}
	if err := e.refresh(ctx, false); err != nil {
		if errors.Is(err, ErrNotFound) {
			c.forget(e)
		}
		return nil, err
	}
	return e, nil
}

// forget drops an entry and ends its subscriptions.
func (c *Cache) forget(e *entry) {
	c.mu.Lock()
	if c.entries[e.id] == e {
		delete(c.entries, e.id)
	}
	c.mu.Unlock()
	e.closeSubscriptions()
}

// Run follows the database's notifications until ctx ends, reconnecting
// when its connection breaks.
func (c *Cache) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const refreshers = 4
	for range refreshers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.refreshLoop(ctx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.evictLoop(ctx)
	}()
	pglisten.Listen(ctx, pglisten.Config{
		DatabaseURL: c.cfg.DatabaseURL,
		Channels:    []string{resultsChannel, queriesChannel},
		Listening: func() {
			// Whatever changed while nobody listened: refresh everything
			// held.
			c.mu.Lock()
			for id := range c.entries {
				c.dirty[id] = true
			}
			c.mu.Unlock()
			c.signal()
			c.listening.Store(true)
		},
		Notify: func(n *pgconn.Notification) {
			c.mu.Lock()
			if _, held := c.entries[n.Payload]; held {
				c.dirty[n.Payload] = c.dirty[n.Payload] || n.Channel == queriesChannel
			}
			c.mu.Unlock()
			c.signal()
		},
		Stopped: func(error) { c.listening.Store(false) },
		What:    "result cache (reads refresh from the database meanwhile)",
		Logger:  c.cfg.Logger,
	})
	c.listening.Store(false)
}

func (c *Cache) signal() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// refreshLoop refreshes dirty entries, one at a time per goroutine.
func (c *Cache) refreshLoop(ctx context.Context) {
	for {
		c.mu.Lock()
		var id string
		var view, found bool
		for id, view = range c.dirty {
			found = true
			break
		}
		var e *entry
		if found {
			delete(c.dirty, id)
			e = c.entries[id]
			if len(c.dirty) > 0 {
				c.signal() // let another goroutine take the next one
			}
		}
		c.mu.Unlock()
		if !found {
			select {
			case <-ctx.Done():
				return
			case <-c.kick:
			}
			continue
		}
		if e == nil {
			continue
		}
		err := e.refresh(ctx, view)
		switch {
		case err == nil, ctx.Err() != nil:
		case errors.Is(err, ErrNotFound):
			c.forget(e)
		default:
			c.cfg.Logger.Warn("result cache: refresh failed; retrying", "query_id", id, "error", err)
			go func() {
				select {
				case <-ctx.Done():
				case <-time.After(250 * time.Millisecond):
					c.mu.Lock()
					c.dirty[id] = c.dirty[id] || view
					c.mu.Unlock()
					c.signal()
				}
			}()
		}
	}
}

// evictLoop drops results that nobody read or followed for Idle.
func (c *Cache) evictLoop(ctx context.Context) {
	t := time.NewTicker(min(c.cfg.Idle, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cutoff := time.Now().Add(-c.cfg.Idle).UnixNano()
		c.mu.Lock()
		for id, e := range c.entries {
			if e.lastUsed.Load() < cutoff && !e.followed() {
				delete(c.entries, id)
			}
		}
		c.mu.Unlock()
	}
}

// row is one row of a result, or a removal (body nil).
type row struct {
	key     groupKey
	body    []byte // the served JSON object
	version int64
}

// entry is one query's result in memory.
type entry struct {
	c        *Cache
	id       string
	snap     atomic.Pointer[Snapshot]
	lastUsed atomic.Int64

	// refreshMu makes refreshes of one query one at a time.
	refreshMu sync.Mutex

	// mu guards what follows: the rows and removals the snapshot was made
	// from, and the subscriptions.
	mu      sync.Mutex
	rows    map[string]*row
	removed map[string]*row
	// horizon is the lowest version changes can be replayed from:
	// removals before it are forgotten.
	horizon int64
	subs    map[*Subscription]struct{}
	shape   *shape
}

func newEntry(c *Cache, id string) *entry {
	return &entry{c: c, id: id, rows: map[string]*row{}, removed: map[string]*row{}, subs: map[*Subscription]struct{}{}}
}

func (e *entry) followed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.subs) > 0
}

// maxRemovals bounds the removals an entry remembers for replays, beyond
// its rows' count.
const maxRemovals = 10000

// refresh reads what changed since the snapshot (the view too when
// withView or on first load) and publishes a new snapshot and events.
func (e *entry) refresh(ctx context.Context, withView bool) error {
	e.refreshMu.Lock()
	defer e.refreshMu.Unlock()
	old := e.snap.Load()
	since := int64(-1)
	var view projections.QueryView
	if old != nil {
		view = old.View
		if old.Found {
			since = old.Version
		}
	}
	if old == nil || withView {
		v, schema, err := e.c.cfg.Views.CachedQueryDefinition(ctx, e.id)
		if errors.Is(err, projections.ErrNotFound) {
			return fmt.Errorf("%s: %w", e.id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if e.shape == nil || v.SQLQuery != view.SQLQuery {
			sh, err := newShape(schema, v.SQLQuery)
			if err != nil {
				return fmt.Errorf("cached query %s: %w", e.id, err)
			}
			e.mu.Lock()
			e.shape = sh
			e.mu.Unlock()
		}
		view = v
	}
	d, err := e.c.cfg.Results.Since(ctx, e.id, since)
	if err != nil {
		return err
	}
	return e.publish(old, view, d)
}

// publish makes the new snapshot from what Since read and tells the
// subscribers.
func (e *entry) publish(old *Snapshot, view projections.QueryView, d results.Delta) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := &Snapshot{View: view, Columns: e.shape.columns, shape: e.shape, Found: d.Found, Progress: d.Progress, Version: d.Version,
		changed: make(chan struct{})}
	s.Serving = d.Found && (d.Progress.State == results.StateLive || d.Progress.State == results.StateStale && d.Progress.RowsCorrect)
	// Decode everything first: a record that cannot be served changes
	// nothing (the refresh is retried from the same version).
	var read []*row
	for _, list := range [][]results.VersionedChange{d.Rows, d.Removed} {
		for _, vc := range list {
			k, err := e.shape.key(vc.Key)
			if err != nil {
				return fmt.Errorf("cached query %s: %w", e.id, err)
			}
			r := &row{key: k, version: vc.Version}
			if vc.Row != nil {
				if r.body, err = e.shape.row(vc.Row); err != nil {
					return fmt.Errorf("cached query %s, row %s: %w", e.id, vc.Key, err)
				}
			}
			read = append(read, r)
		}
	}
	whole := !d.Found || d.Whole || old == nil || !old.Found
	if whole {
		clear(e.rows)
		clear(e.removed)
		// The removals the store still knows came with the rows: changes
		// after its history's start can be replayed.
		e.horizon = d.HistoryFrom
	}
	var changes []*row
	for _, r := range read {
		key := string(r.key.raw)
		if cur := e.rows[key]; cur != nil && cur.version >= r.version {
			continue
		}
		if cur := e.removed[key]; cur != nil && cur.version >= r.version {
			continue
		}
		if r.body == nil {
			delete(e.rows, key)
			e.removed[key] = r
		} else {
			delete(e.removed, key)
			e.rows[key] = r
		}
		changes = append(changes, r)
	}
	e.pruneRemovals()
	switch {
	case whole || old == nil:
		s.rows = e.sortedRows()
	case len(changes) == 0:
		// Only the progress moved: the rows, and their encoding, stay.
		s.rows = old.rows
		if old.Serving == s.Serving {
			s.all = old.Rows()
			s.allOnce.Do(func() {})
		}
	default:
		s.rows = mergeRows(old.rows, changes)
	}
	slices.SortFunc(changes, compareChanges)
	e.snap.Store(s)
	if old != nil {
		close(old.changed)
	}
	e.notify(old, s, changes, whole)
	return nil
}

func compareChanges(a, b *row) int {
	if a.version != b.version {
		if a.version < b.version {
			return -1
		}
		return 1
	}
	return compareKeys(&a.key, &b.key)
}

// pruneRemovals forgets the oldest removals when there are too many; the
// horizon moves past them.
func (e *entry) pruneRemovals() {
	if len(e.removed) <= maxRemovals+len(e.rows) {
		return
	}
	vs := make([]int64, 0, len(e.removed))
	for _, r := range e.removed {
		vs = append(vs, r.version)
	}
	slices.Sort(vs)
	cut := vs[len(vs)/2]
	for k, r := range e.removed {
		if r.version <= cut {
			delete(e.removed, k)
		}
	}
	e.horizon = max(e.horizon, cut+1)
}

func (e *entry) sortedRows() []*row {
	out := make([]*row, 0, len(e.rows))
	for _, r := range e.rows {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *row) int { return compareKeys(&a.key, &b.key) })
	return out
}

// mergeRows applies changes (rows and removals) to rows, a slice in key
// order, into a new slice in key order.
func mergeRows(rows []*row, changes []*row) []*row {
	byKey := make(map[string]*row, len(changes))
	for _, c := range changes {
		byKey[string(c.key.raw)] = c
	}
	out := make([]*row, 0, len(rows)+len(changes))
	for _, r := range rows {
		c, ok := byKey[string(r.key.raw)]
		if !ok {
			out = append(out, r)
			continue
		}
		delete(byKey, string(r.key.raw))
		if c.body != nil {
			out = append(out, c)
		}
	}
	var added []*row
	for _, c := range byKey {
		if c.body != nil {
			added = append(added, c)
		}
	}
	if len(added) == 0 {
		return out
	}
	slices.SortFunc(added, func(a, b *row) int { return compareKeys(&a.key, &b.key) })
	merged := make([]*row, 0, len(out)+len(added))
	i, j := 0, 0
	for i < len(out) && j < len(added) {
		if compareKeys(&out[i].key, &added[j].key) <= 0 {
			merged = append(merged, out[i])
			i++
		} else {
			merged = append(merged, added[j])
			j++
		}
	}
	merged = append(merged, out[i:]...)
	return append(merged, added[j:]...)
}

// etag is the snapshot's entity tag: its version and its view's.
func etag(version int64, view projections.QueryView) string {
	return `"` + strconv.FormatInt(version, 10) + "." + strconv.FormatInt(view.UpdatedAt.UnixMicro(), 36) + `"`
}
