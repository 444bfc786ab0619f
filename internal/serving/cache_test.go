package serving_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/internal/results"
	"github.com/cdcq/cdcq/internal/serving"
	"github.com/cdcq/cdcq/projections"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const schema = `datasource db {
  provider = "postgresql"
}

model Sale {
  id     Int     @id
  grp    Int?
  amount Decimal @db.Decimal(12, 2)

  @@map("sales")
}
`

const query = `SELECT grp, COUNT(*) AS n, SUM(amount) AS total FROM sales GROUP BY grp`

// world is a job-state database with one cached query whose result a
// results.Store writes, and caches over it.
type world struct {
	t     testing.TB
	url   string
	store *results.Store
	views *projections.Store
	id    string
}

func newWorld(t testing.TB) *world {
	t.Helper()
	url, pool := pgtest.NewJobState(t)
	store, err := results.New(pool)
	if err != nil {
		t.Fatal(err)
	}
	views, err := projections.NewStore(pool)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, url: url, store: store, views: views, id: "q1"}
	_, err = pool.Exec(t.Context(), `INSERT INTO cached_queries (query_id, environment_id, pipeline_name, engine, sql_query, schema_text, status, created_at, updated_at)
		VALUES ($1, 'env1', 'cdcq-env1-q1', 'embedded', $2, $3, 'RUNNING', now(), now())`, w.id, query, schema)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// cache starts a cache; run says whether it listens.
func (w *world) cache(run bool, maxPending int) *serving.Cache {
	w.t.Helper()
	c, err := serving.New(serving.Config{DatabaseURL: w.url, Views: w.views, Results: w.store, MaxPending: maxPending})
	if err != nil {
		w.t.Fatal(err)
	}
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); c.Run(ctx) }()
		w.t.Cleanup(func() { cancel(); <-done })
	}
	return c
}

func key(grp *int) []byte {
	if grp == nil {
		return []byte(`{"query_id":"q1","group":{"grp":null}}`)
	}
	return fmt.Appendf(nil, `{"query_id":"q1","group":{"grp":%d}}`, *grp)
}

// value is a result record's value as the engines write it: query_id and
// the grouping key first.
func value(grp *int, n int, total string) []byte {
	g := "null"
	if grp != nil {
		g = fmt.Sprint(*grp)
	}
	return fmt.Appendf(nil, `{"query_id":"q1","grp":%s,"n":%d,"total":%s}`, g, n, total)
}

func served(grp *int, n int, total string) string {
	g := "null"
	if grp != nil {
		g = fmt.Sprint(*grp)
	}
	return fmt.Sprintf(`{"grp":%s,"n":%d,"total":%s}`, g, n, total)
}

func ip(i int) *int { return &i }

// awaitRows waits until the cache serves want (the rows JSON).
func awaitRows(t *testing.T, c *serving.Cache, want string) *serving.Snapshot {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var s *serving.Snapshot
	for {
		var err error
		s, err = c.Snapshot(t.Context(), "q1")
		if err != nil {
			t.Fatal(err)
		}
		if string(s.Rows()) == want {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("rows = %s, want %s", s.Rows(), want)
		}
		select {
		case <-s.Changed():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestCacheServesColumnsInSelectOrderAndKeyOrder(t *testing.T) {
	w := newWorld(t)
	c := w.cache(true, 0)
	ctx := t.Context()

	s, err := c.Snapshot(ctx, "q1")
	if err != nil || s.Found || s.Serving || string(s.Rows()) != "null" {
		t.Fatalf("before any result: %+v, %v", s, err)
	}
	if got, _ := json.Marshal(s.Columns); string(got) != `[{"name":"grp","type":"integer"},{"name":"n","type":"bigint"},{"name":"total","type":"numeric"}]` {
		t.Errorf("columns = %s", got)
	}
	if _, err := c.Snapshot(ctx, "nope"); !errors.Is(err, serving.ErrNotFound) {
		t.Errorf("unknown query: %v", err)
	}

	p := results.Progress{State: results.StateLive, SourceLSN: 1}
	rows := []results.Change{
		{Key: key(ip(10)), Row: value(ip(10), 1, "12.50")},
		{Key: key(nil), Row: value(nil, 3, "0.00")},
		{Key: key(ip(2)), Row: value(ip(2), 2, "100000000000000000000.10")},
		{Key: key(ip(-7)), Row: value(ip(-7), 1, "1.00")},
	}
	if err := w.store.Replace(ctx, "q1", rows, p); err != nil {
		t.Fatal(err)
	}
	// Numbers by value (-7, 2, 10), NULL last, exact numerics as written.
	want := "[" + strings.Join([]string{served(ip(-7), 1, "1.00"), served(ip(2), 2, "100000000000000000000.10"),
		served(ip(10), 1, "12.50"), served(nil, 3, "0.00")}, ",") + "]"
	s = awaitRows(t, c, want)
	etag := s.ETag()

	// Pages of two, in the same order.
	var pages []string
	after := ""
	for {
		page, next, err := s.Page(after, 2)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, string(page))
		if next == "" {
			break
		}
		after = next
	}
	if want := []string{"[" + served(ip(-7), 1, "1.00") + "," + served(ip(2), 2, "100000000000000000000.10") + "]",
		"[" + served(ip(10), 1, "12.50") + "," + served(nil, 3, "0.00") + "]"}; strings.Join(pages, "|") != strings.Join(want, "|") {
		t.Errorf("pages = %v, want %v", pages, want)
	}
	if _, _, err := s.Page("not a token!", 2); err == nil {
		t.Error("a bad token was taken")
	}
	// A token of another shape (valid base64url JSON), and one of another
	// query, are refused, and the message quotes the token as given.
	for _, token := range []string{base64.RawURLEncoding.EncodeToString([]byte(`{"foo":1}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"query_id":"q2","group":{"grp":1}}`))} {
		if _, _, err := s.Page(token, 2); err == nil || !strings.Contains(err.Error(), token) {
			t.Errorf("token %s: %v", token, err)
		}
		if _, err := c.Subscribe(ctx, "q1", &serving.Cursor{}); err != nil {
			t.Fatal(err)
		}
		cur, err := serving.ParseCursor("1." + token)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Subscribe(ctx, "q1", &cur); !errors.Is(err, serving.ErrBadCursor) {
			t.Errorf("event id 1.%s: %v", token, err)
		}
	}
	// After a token, without a limit: every row that follows.
	_, next, _ := s.Page("", 1)
	if rest, more, err := s.Page(next, math.MaxInt); err != nil || more != "" || strings.Count(string(rest), `"grp"`) != 3 {
		t.Errorf("after the first row, no limit: %s, %q, %v", rest, more, err)
	}

	// A change of one group, and a group that leaves.
	p.SourceLSN = 2
	if err := w.store.Apply(ctx, "q1", []results.Change{{Key: key(ip(10)), Row: value(ip(10), 2, "13.75")}, {Key: key(ip(2))}}, p); err != nil {
		t.Fatal(err)
	}
	s = awaitRows(t, c, "["+served(ip(-7), 1, "1.00")+","+served(ip(10), 2, "13.75")+","+served(nil, 3, "0.00")+"]")
	if s.ETag() == etag {
		t.Errorf("ETag %s did not change with the result", etag)
	}
	// Counters alone keep the ETag.
	etag = s.ETag()
	p.EventsApplied = 1000
	if err := w.store.SetProgress(ctx, "q1", p); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Progress.EventsApplied != 1000 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		s, _ = c.Snapshot(ctx, "q1")
	}
	if s.Progress.EventsApplied != 1000 || s.ETag() != etag {
		t.Errorf("after counters moved: events %d, etag %s (was %s)", s.Progress.EventsApplied, s.ETag(), etag)
	}
}

func TestReadsRefreshWithoutNotifications(t *testing.T) {
	w := newWorld(t)
	c := w.cache(false, 0) // never listens
	ctx := t.Context()
	p := results.Progress{State: results.StateLive}
	for i := 1; i <= 3; i++ {
		if err := w.store.Apply(ctx, "q1", []results.Change{{Key: key(ip(1)), Row: value(ip(1), i, "1.00")}}, p); err != nil {
			t.Fatal(err)
		}
		s, err := c.Snapshot(ctx, "q1")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(s.Rows()), "["+served(ip(1), i, "1.00")+"]"; got != want {
			t.Fatalf("write %d: rows %s, want %s", i, got, want)
		}
	}
}

// model is what a subscriber builds from its events.
type model map[string]string

func (m model) apply(t *testing.T, ev serving.Event) {
	t.Helper()
	switch ev.Kind {
	case serving.EventSnapshot:
		clear(m)
		var rows []json.RawMessage
		json.Unmarshal(ev.Snapshot.Rows(), &rows)
		for _, r := range rows {
			var g struct {
				Grp *int `json:"grp"`
			}
			json.Unmarshal(r, &g)
			m[groupName(g.Grp)] = string(r)
		}
	case serving.EventChange:
		var ch struct {
			Op  string `json:"op"`
			Key struct{ Grp *int }
			Row json.RawMessage `json:"row"`
		}
		if err := json.Unmarshal(ev.Data, &ch); err != nil {
			t.Fatalf("change %s: %v", ev.Data, err)
		}
		if ch.Op == "delete" {
			delete(m, groupName(ch.Key.Grp))
		} else {
			m[groupName(ch.Key.Grp)] = string(ch.Row)
		}
	}
}

func groupName(g *int) string {
	if g == nil {
		return "null"
	}
	return fmt.Sprint(*g)
}

// TestSubscriberResumesWithoutLossOrDuplicates: a subscriber that
// reconnects, to the same cache or another one (another API process),
// from its last event id in the middle of random writes ends with the
// stored result, and never receives a change twice.
func TestSubscriberResumesWithoutLossOrDuplicates(t *testing.T) {
	w := newWorld(t)
	caches := []*serving.Cache{w.cache(true, 0), w.cache(true, 0)}
	ctx := t.Context()
	p := results.Progress{State: results.StateLive}
	if err := w.store.Replace(ctx, "q1", nil, p); err != nil {
		t.Fatal(err)
	}
	writes := make(chan error, 1)
	go func() {
		rng := rand.New(rand.NewPCG(1, 2))
		var err error
		for i := 0; i < 300 && err == nil; i++ {
			var changes []results.Change
			for range 1 + rng.IntN(5) {
				g := rng.IntN(20)
				if rng.IntN(4) == 0 {
					changes = append(changes, results.Change{Key: key(ip(g))})
				} else {
					changes = append(changes, results.Change{Key: key(ip(g)), Row: value(ip(g), i, fmt.Sprintf("%d.%02d", i, g))})
				}
			}
			p.SourceLSN = int64(i)
			err = w.store.Apply(ctx, "q1", changes, p)
			time.Sleep(time.Millisecond)
		}
		writes <- err
	}()

	m := model{}
	seen := map[string]bool{}
	last := ""
	var writeErr error
	writesDone := false
	quiet := 0 // reconnects since the writes ended
	for round := 0; ; round++ {
		var since *serving.Cursor
		if last != "" {
			c, err := serving.ParseCursor(last)
			if err != nil {
				t.Fatal(err)
			}
			since = &c
		}
		sub, err := caches[round%2].Subscribe(ctx, "q1", since)
		if err != nil {
			t.Fatal(err)
		}
		// Read a few events, then drop the connection.
		for n := 0; n < 1+round%7; n++ {
			rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			ev, err := sub.Next(rctx)
			cancel()
			if err != nil {
				break
			}
			if ev.Kind == serving.EventChange {
				if seen[ev.ID] {
					t.Fatalf("event %s delivered twice", ev.ID)
				}
				seen[ev.ID] = true
			}
			m.apply(t, ev)
			last = ev.ID
		}
		sub.Close()
		if !writesDone {
			select {
			case writeErr = <-writes:
				writesDone = true
				if writeErr != nil {
					t.Fatal(writeErr)
				}
			default:
			}
			continue
		}
		// Writes are over: the model must reach the stored result.
		r, err := w.store.Result(ctx, "q1")
		if err != nil {
			t.Fatal(err)
		}
		want := model{}
		for _, row := range r.Rows {
			var v struct {
				Grp   *int            `json:"grp"`
				N     int             `json:"n"`
				Total json.RawMessage `json:"total"`
			}
			json.Unmarshal(row, &v)
			want[groupName(v.Grp)] = served(v.Grp, v.N, string(v.Total))
		}
		if fmt.Sprint(m) == fmt.Sprint(want) {
			return
		}
		if quiet++; quiet > 30 {
			t.Fatalf("after %d reconnects the subscriber holds\n%v\nwant\n%v", round, m, want)
		}
	}
}

func TestSlowSubscriberIsCutOff(t *testing.T) {
	w := newWorld(t)
	c := w.cache(true, 5)
	ctx := t.Context()
	p := results.Progress{State: results.StateLive}
	if err := w.store.Replace(ctx, "q1", nil, p); err != nil {
		t.Fatal(err)
	}
	awaitRows(t, c, "[]")
	sub, err := c.Subscribe(ctx, "q1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i := range 20 {
		if err := w.store.Apply(ctx, "q1", []results.Change{{Key: key(ip(i)), Row: value(ip(i), 1, "1.00")}}, p); err != nil {
			t.Fatal(err)
		}
	}
	var kinds []string
	var lastID string
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ev, err := sub.Next(rctx)
		cancel()
		if errors.Is(err, serving.ErrClosed) {
			break
		}
		if err != nil {
			t.Fatalf("after %v: %v", kinds, err)
		}
		kinds = append(kinds, ev.Kind)
		if ev.Kind == serving.EventOverflow {
			if !strings.Contains(string(ev.Data), lastID) || !strings.Contains(string(ev.Data), "cut off") {
				t.Errorf("overflow event = %s (last id %s)", ev.Data, lastID)
			}
		} else {
			lastID = ev.ID
		}
	}
	if len(kinds) > 6 || kinds[len(kinds)-1] != serving.EventOverflow {
		t.Errorf("events = %v, want at most 5 then overflow", kinds)
	}
}

func TestNumericsKeepTheirScale(t *testing.T) {
	w := newWorld(t)
	c := w.cache(true, 0)
	p := results.Progress{State: results.StateLive}
	// As Flink's JSON format writes them: trailing zeros dropped.
	rows := []results.Change{{Key: key(ip(1)), Row: []byte(`{"query_id":"q1","grp":1,"n":2,"total":12.5}`)},
		{Key: key(ip(2)), Row: []byte(`{"query_id":"q1","grp":2,"n":1,"total":7}`)},
		{Key: key(ip(3)), Row: []byte(`{"query_id":"q1","grp":3,"n":1,"total":null}`)}}
	if err := w.store.Replace(t.Context(), "q1", rows, p); err != nil {
		t.Fatal(err)
	}
	awaitRows(t, c, `[{"grp":1,"n":2,"total":12.50},{"grp":2,"n":1,"total":7.00},{"grp":3,"n":1,"total":null}]`)
}

// TestWaitReturnsOnChangeOrWhenItsTimeIsUp: a long poll returns the next
// version as soon as it exists, and the same one when its context ends;
// without notifications it looks again on its own.
func TestWaitReturnsOnChangeOrWhenItsTimeIsUp(t *testing.T) {
	for _, listening := range []bool{true, false} {
		w := newWorld(t)
		c := w.cache(listening, 0)
		ctx := t.Context()
		p := results.Progress{State: results.StateLive}
		if err := w.store.Replace(ctx, "q1", nil, p); err != nil {
			t.Fatal(err)
		}
		s := awaitRows(t, c, "[]")
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		same, err := c.Wait(short, "q1", s.ETag())
		cancel()
		if err != nil || same.ETag() != s.ETag() {
			t.Fatalf("listening %v: a wait with nothing new: %v, %v", listening, same, err)
		}
		go func() {
			time.Sleep(100 * time.Millisecond)
			w.store.Apply(context.Background(), "q1", []results.Change{{Key: key(ip(1)), Row: value(ip(1), 1, "1.00")}}, p)
		}()
		long, cancel := context.WithTimeout(ctx, 10*time.Second)
		next, err := c.Wait(long, "q1", s.ETag())
		cancel()
		if err != nil || next.ETag() == s.ETag() || next.Len() != 1 {
			t.Fatalf("listening %v: a wait across a write: %v, %v", listening, next, err)
		}
	}
}

// TestStaleBeforeLiveServesNoRows: a query whose source's schema changed
// while it was still catching up has no result to serve.
func TestStaleBeforeLiveServesNoRows(t *testing.T) {
	w := newWorld(t)
	c := w.cache(true, 0)
	ctx := t.Context()
	if err := w.store.SetProgress(ctx, "q1", results.Progress{State: results.StateCatchingUp}); err != nil {
		t.Fatal(err)
	}
	if err := w.store.MarkStale(ctx, "q1", "column dropped"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := c.Snapshot(ctx, "q1")
		if err != nil {
			t.Fatal(err)
		}
		if s.Progress.State == results.StateStale {
			if s.Serving || string(s.Rows()) != "null" {
				t.Fatalf("stale before live: serving %v, rows %s", s.Serving, s.Rows())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %s", s.Progress.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
