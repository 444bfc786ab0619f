package serving

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
)

// Kinds of events.
const (
	// EventSnapshot carries the whole result (Event.Snapshot): the first
	// event of a subscription, and whenever the result was rebuilt or the
	// subscriber's position can no longer be replayed. A subscriber
	// replaces what it holds.
	EventSnapshot = "snapshot"
	// EventChange carries one group's change (Event.Data): its key, its
	// row (null when the group left the result) and its position.
	EventChange = "change"
	// EventState says the result's state changed without a new result to
	// send (Event.Snapshot, whose rows are not served while it is not
	// LIVE or STALE).
	EventState = "state"
	// EventOverflow ends a subscription that fell MaxPending events
	// behind (Event.Data says so); it may reconnect from its last event
	// id.
	EventOverflow = "overflow"
)

// Event is one event of a subscription.
type Event struct {
	Kind string
	// ID is the event's position (a Cursor's text); empty for overflow.
	ID       string
	Snapshot *Snapshot
	Data     []byte

	version int64
	key     *groupKey
}

// ErrClosed ends a subscription: its query is gone, or it overflowed and
// the overflow event was delivered.
var ErrClosed = errors.New("subscription closed")

// Subscription is one subscriber's queue of events. Events are shared by
// all subscribers; a subscriber holds at most MaxPending of them.
type Subscription struct {
	e    *entry
	max  int
	wake chan struct{}

	mu        sync.Mutex
	queue     []Event
	cursor    Cursor // of the last event queued
	delivered string // id of the last event returned by Next
	overflow  bool
	closed    bool
}

// Subscribe follows a query's result. Without since, the first event is
// the whole result; with since (a position the subscriber holds, as an
// event id or a version), the changes after it, or the whole result when
// they cannot be told any more.
func (c *Cache) Subscribe(ctx context.Context, queryID string, since *Cursor) (*Subscription, error) {
	e, err := c.entry(ctx, queryID)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.snap.Load()
	if since != nil && since.token != "" {
		k, err := e.shape.clientKey(e.id, since.token)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadCursor, err)
		}
		since = &Cursor{Version: since.Version, Key: &k}
	}
	sub := &Subscription{e: e, max: c.cfg.MaxPending, wake: make(chan struct{}, 1)}
	switch {
	case since == nil || !s.Serving || since.Version < e.horizon:
		sub.push([]Event{wholeEvent(s)})
	case since.Version > s.Version || since.Version == s.Version && since.Key == nil:
		// Nothing to replay yet; a cache behind the subscriber's position
		// skips what it has when it gets there.
		sub.cursor = *since
	default:
		var replay []*row
		for _, m := range []map[string]*row{e.rows, e.removed} {
			for _, r := range m {
				if since.after(r.version, &r.key) {
					replay = append(replay, r)
				}
			}
		}
		if len(replay) > sub.max {
			sub.push([]Event{wholeEvent(s)})
			break
		}
		slices.SortFunc(replay, compareChanges)
		sub.cursor = *since
		sub.push(changeEvents(replay))
	}
	e.subs[sub] = struct{}{}
	return sub, nil
}

// wholeEvent is a snapshot event of s, or a state event when its rows are
// not served.
func wholeEvent(s *Snapshot) Event {
	kind := EventSnapshot
	if !s.Serving {
		kind = EventState
	}
	return Event{Kind: kind, ID: strconv.FormatInt(s.Version, 10), Snapshot: s, version: s.Version}
}

func changeEvents(rows []*row) []Event {
	evs := make([]Event, len(rows))
	for i, r := range rows {
		evs[i] = Event{Kind: EventChange, ID: Cursor{Version: r.version, Key: &r.key}.String(),
			Data: changeData(r), version: r.version, key: &r.key}
	}
	return evs
}

// changeData is a change event's data:
// {"op":"upsert"|"delete","key":{...},"row":{...}|null,"position":{"version":N}}.
func changeData(r *row) []byte {
	b := make([]byte, 0, 64+len(r.key.group)+len(r.body))
	b = append(b, `{"op":"`...)
	if r.body == nil {
		b = append(b, `delete`...)
	} else {
		b = append(b, `upsert`...)
	}
	b = append(b, `","key":`...)
	if r.key.group == nil {
		b = append(b, `{}`...)
	} else {
		b = append(b, r.key.group...)
	}
	b = append(b, `,"row":`...)
	if r.body == nil {
		b = append(b, `null`...)
	} else {
		b = append(b, r.body...)
	}
	b = append(b, `,"position":{"version":`...)
	b = strconv.AppendInt(b, r.version, 10)
	return append(b, `}}`...)
}

// notify queues the events of a new snapshot for every subscriber: the
// whole result when it was rebuilt or its rows start being served, else
// one event per changed group, and a state event when the state changed.
func (e *entry) notify(old, s *Snapshot, changes []*row, whole bool) {
	if len(e.subs) == 0 {
		return
	}
	var evs []Event
	switch {
	case s.Serving && (whole || old == nil || !old.Serving):
		evs = []Event{wholeEvent(s)}
	case s.Serving:
		evs = changeEvents(changes)
		if old.Progress.State != s.Progress.State || old.Progress.LastError != s.Progress.LastError {
			evs = append(evs, Event{Kind: EventState, ID: strconv.FormatInt(s.Version, 10), Snapshot: s, version: s.Version})
		}
	case old == nil || old.Serving || old.Found != s.Found || old.Progress.State != s.Progress.State:
		evs = []Event{wholeEvent(s)}
	}
	if len(evs) == 0 {
		return
	}
	for sub := range e.subs {
		sub.mu.Lock()
		sub.push(evs)
		sub.mu.Unlock()
	}
}

// push queues events the subscriber does not have yet; sub.mu is held (or
// sub is not shared yet).
func (sub *Subscription) push(evs []Event) {
	if sub.closed || sub.overflow {
		return
	}
	queued := false
	for _, ev := range evs {
		switch ev.Kind {
		case EventChange:
			if !sub.cursor.after(ev.version, ev.key) {
				continue
			}
			sub.cursor = Cursor{Version: ev.version, Key: ev.key}
		case EventSnapshot:
			// The whole result supersedes what waits.
			clear(sub.queue)
			sub.queue = sub.queue[:0]
			sub.cursor = Cursor{Version: ev.version}
		default:
			if ev.version > sub.cursor.Version {
				sub.cursor = Cursor{Version: ev.version}
			}
		}
		if len(sub.queue) >= sub.max {
			sub.overflow, sub.queue = true, nil
			break
		}
		sub.queue = append(sub.queue, ev)
		queued = true
	}
	if queued || sub.overflow {
		select {
		case sub.wake <- struct{}{}:
		default:
		}
	}
}

// Next returns the next event, waiting for one until ctx ends. After an
// overflow event, and once the query is gone, it returns ErrClosed.
func (sub *Subscription) Next(ctx context.Context) (Event, error) {
	evs, err := sub.NextBatch(ctx, make([]Event, 0, 1))
	if err != nil {
		return Event{}, err
	}
	return evs[0], nil
}

// NextBatch waits for events like Next and appends to buf every event that
// waits, up to buf's capacity (at least one), so that a writer can send
// them in one write.
func (sub *Subscription) NextBatch(ctx context.Context, buf []Event) ([]Event, error) {
	for {
		sub.mu.Lock()
		switch {
		case len(sub.queue) > 0:
			n := min(len(sub.queue), max(cap(buf)-len(buf), 1))
			buf = append(buf, sub.queue[:n]...)
			clear(sub.queue[:n])
			sub.queue = sub.queue[n:]
			sub.delivered = buf[len(buf)-1].ID
			sub.mu.Unlock()
			return buf, nil
		case sub.overflow && !sub.closed:
			sub.closed = true
			data := fmt.Appendf(nil, `{"error":"this subscriber fell more than %d events behind and is cut off; reconnect with Last-Event-ID %q to resume","lastEventId":%q}`,
				sub.max, sub.delivered, sub.delivered)
			sub.mu.Unlock()
			return append(buf, Event{Kind: EventOverflow, Data: data}), nil
		case sub.closed:
			sub.mu.Unlock()
			return buf, ErrClosed
		}
		sub.mu.Unlock()
		select {
		case <-ctx.Done():
			return buf, ctx.Err()
		case <-sub.wake:
		}
	}
}

// Close ends the subscription and frees what it holds.
func (sub *Subscription) Close() {
	sub.e.mu.Lock()
	delete(sub.e.subs, sub)
	sub.e.mu.Unlock()
	sub.mu.Lock()
	sub.closed, sub.queue = true, nil
	sub.mu.Unlock()
}

func (e *entry) closeSubscriptions() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for sub := range e.subs {
		sub.mu.Lock()
		sub.closed, sub.queue = true, nil
		sub.mu.Unlock()
		select {
		case sub.wake <- struct{}{}:
		default:
		}
		delete(e.subs, sub)
	}
}
