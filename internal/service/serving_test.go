package service

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/results"
)

// The result endpoints end to end: the response shape, the event stream,
// several API processes.

const typedSchema = `datasource db {
  provider = "postgresql"
}

enum Mood {
  sad
  ok
  happy

  @@map("mood")
}

model Typed {
  id Int      @id
  i2 Int?     @db.SmallInt
  i4 Int?
  i8 BigInt?
  n  Decimal? @db.Decimal(12, 3)
  r  Float?   @db.Real
  d  Float?
  b  Boolean?
  t  String?
  v  String?  @db.VarChar(20)
  c  String?  @db.Char(4)
  u  String?  @db.Uuid
  da DateTime? @db.Date
  ti DateTime? @db.Time(3)
  ts DateTime? @db.Timestamp(3)
  tz DateTime? @db.Timestamptz(3)
  by Bytes?
  m  Mood?

  @@map("typed")
}
`

const typedTables = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE typed (id int PRIMARY KEY, i2 smallint, i4 int, i8 bigint, n numeric(12,3), r real, d double precision,
  b boolean, t text, v varchar(20), c char(4), u uuid, da date, ti time(3), ts timestamp(3), tz timestamptz(3),
  by bytea, m mood);
INSERT INTO typed VALUES
  (1, 1, 10, 10000000000, 1.500, 1.5, 2.25, true, 'a', 'va', 'ab', '6f1c0a4e-8a51-4b8e-9b7e-1f2a3b4c5d6e', '2024-01-02', '04:05:06.789', '2024-01-02 03:04:05.123', '2024-01-02 03:04:05.123+00', '\x0102', 'ok'),
  (2, 1, 20, -5, 2.250, -0.5, 1e10, false, 'b', 'vb', 'c', '00000000-0000-0000-0000-000000000001', '1999-12-31', '23:59:59', '1999-12-31 23:59:59', '1999-12-31 23:59:59.5+02', '\xff', 'happy'),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, 2, 30, 7, 10.000, 100, 0.1, true, 'a', 'va', 'ab', '6f1c0a4e-8a51-4b8e-9b7e-1f2a3b4c5d6e', '2024-01-02', '04:05:06.789', '2024-01-02 03:04:05.123', '2024-01-02 03:04:05.123+00', '\x0102', 'sad')`

// typedQueries select every column type the engines support, as grouping
// keys (NULL included) and as aggregates.
var typedQueries = []string{
	`SELECT i2, i4, i8, n, r, d, b, t, v, c, u, da, ti, ts, tz, by, m, count(*) AS cnt FROM typed
	  GROUP BY i2, i4, i8, n, r, d, b, t, v, c, u, da, ti, ts, tz, by, m`,
	`SELECT m, count(*) AS cnt, count(u) AS with_uuid, sum(i2) AS s2, sum(i4) AS s4, sum(i8) AS s8, sum(n) AS sn,
	        avg(n) AS an, avg(i4) AS a4, sum(r) AS sr, sum(d) AS sd, min(n) AS ln, max(t) AS ht, min(v) AS lv,
	        max(c) AS hc, min(da) AS lda, max(ti) AS hti, min(ts) AS lts, max(tz) AS htz
	   FROM typed GROUP BY m`,
}

// resultAnswer is GET /cachedQueries/{id}/result, decoded.
type resultAnswer struct {
	State    string            `json:"state"`
	CaughtUp bool              `json:"caughtUp"`
	Columns  []resultColumn    `json:"columns"`
	Rows     []json.RawMessage `json:"rows"`
	Next     string            `json:"next"`
	Position struct {
		Version      int64      `json:"version"`
		LSN          int64      `json:"lsn"`
		SourceTime   *time.Time `json:"sourceTime"`
		LagSeconds   *float64   `json:"lagSeconds"`
		FreshThrough *time.Time `json:"freshThrough"`
	} `json:"position"`
}

type resultColumn struct{ Name, Type string }

func (s *system) getResult(t testing.TB, id, query string) (resultAnswer, http.Header) {
	t.Helper()
	res, err := http.Get(s.apiURL + "/cachedQueries/" + id + "/result" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var a resultAnswer
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET result: %d", res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a, res.Header
}

// postgresColumns is how PostgreSQL describes a query's columns.
func postgresColumns(t testing.TB, src *pgx.Conn, query string) []resultColumn {
	t.Helper()
	rows, err := src.Query(context.Background(), query+" LIMIT 0")
	if err != nil {
		t.Fatal(err)
	}
	fields := rows.FieldDescriptions()
	rows.Close()
	var out []resultColumn
	for _, f := range fields {
		var typ string
		if err := src.QueryRow(context.Background(), `SELECT format_type($1, nullif($2, -1))`, f.DataTypeOID, f.TypeModifier).Scan(&typ); err != nil {
			t.Fatal(err)
		}
		out = append(out, resultColumn{Name: f.Name, Type: typ})
	}
	return out
}

// objectKeys lists a JSON object's keys in the order written.
func objectKeys(t testing.TB, row json.RawMessage) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(row)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("row %s is not an object", row)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// checkResultShape creates the typed queries and checks what GET .../result
// answers: PostgreSQL's columns (names and types, in SELECT order), rows
// with exactly those keys in that order, and PostgreSQL's values; written
// as PostgreSQL writes them when exact.
func checkResultShape(t *testing.T, s *system, src string, srcConn *pgx.Conn, queries []string, how canonicalOption) {
	env := uniqueEnv("shape")
	for i, q := range queries {
		res := s.postJSON("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": env, "schema": typedSchema, "sqlQuery": q})
		if res.status != http.StatusCreated {
			t.Fatalf("create query %d: %d %s", i, res.status, res.body)
		}
		id := res.json(t)["id"].(string)
		want := postgresRows(t, srcConn, q, how)
		got, ok := s.awaitRows(id, want, how, 3*time.Minute)
		if !ok {
			t.Fatalf("query %d: not PostgreSQL's rows within 3 min\nwant:\n%s\nlast seen:\n%s\nstatus %s", i, strings.Join(want, "\n"), got, s.queryStatus(id))
		}
		a, _ := s.getResult(t, id, "")
		wantCols := postgresColumns(t, srcConn, q)
		if !slices.Equal(a.Columns, wantCols) {
			t.Errorf("query %d: columns\n%v\nwant PostgreSQL's\n%v", i, a.Columns, wantCols)
		}
		var names []string
		for _, c := range wantCols {
			names = append(names, c.Name)
		}
		for _, r := range a.Rows {
			if keys := objectKeys(t, r); !slices.Equal(keys, names) {
				t.Errorf("query %d: row %s has keys %v, want %v", i, r, keys, names)
			}
		}
		t.Logf("query %d: %d rows, e.g. %s", i, len(a.Rows), a.Rows[0])
	}
	s.deleteOnCleanup(src, env)
}

// awaitRows polls the result until its rows, caught up, equal want.
func (s *system) awaitRows(id string, want []string, how canonicalOption, timeout time.Duration) (string, bool) {
	var last string
	ok := poll(timeout, func() bool {
		res, err := http.Get(s.apiURL + "/cachedQueries/" + id + "/result")
		if err != nil {
			last = err.Error()
			return false
		}
		defer res.Body.Close()
		var a resultAnswer
		if err := json.NewDecoder(res.Body).Decode(&a); err != nil {
			last = err.Error()
			return false
		}
		got := canonicalRows(s.t, a.Rows, how)
		last = fmt.Sprintf("(%s)\n%s", a.State, strings.Join(got, "\n"))
		return a.CaughtUp && slices.Equal(got, want)
	})
	return last, ok
}

func TestResultShapeEveryType(t *testing.T) {
	s := startSystemWith(t, func(inf *Infra, cfg config.Config, logger *slog.Logger) []WorkerDeps { return nil })
	s.startEmbeddedWorker()
	src, srcConn := sourceDatabase(t)
	if _, err := srcConn.Exec(context.Background(), typedTables); err != nil {
		t.Fatal(err)
	}
	checkResultShape(t, s, src, srcConn, typedQueries, numbersAsWritten)
}

// sseEvent is one server-sent event.
type sseEvent struct{ id, event, data string }

// sseClient reads GET /cachedQueries/{id}/changes.
type sseClient struct {
	res *http.Response
	r   *bufio.Reader
}

func openChanges(t testing.TB, baseURL, id, lastEventID string) *sseClient {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, baseURL+"/cachedQueries/"+id+"/changes", nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	res, err := sseHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		res.Body.Close()
		t.Fatalf("GET changes: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	return &sseClient{res: res, r: bufio.NewReader(res.Body)}
}

// sseHTTP has no overall timeout and enough idle connections for many
// streams.
var sseHTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2000, DialContext: (&net.Dialer{}).DialContext}}

// next reads the next event (comments and retry hints are skipped).
func (c *sseClient) next() (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if ev.event != "" || ev.data != "" {
				return ev, nil
			}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.id = value
		case "event":
			ev.event = value
		case "data":
			ev.data += value
		}
	}
}

func (c *sseClient) close() { c.res.Body.Close() }

// salesModel is what a subscriber builds from the events of the sales
// query: group → row.
type salesModel map[string]string

func (m salesModel) apply(t testing.TB, ev sseEvent) {
	t.Helper()
	switch ev.event {
	case "snapshot":
		var a resultAnswer
		if err := json.Unmarshal([]byte(ev.data), &a); err != nil {
			t.Errorf("snapshot %s: %v", ev.data, err)
			return
		}
		clear(m)
		for _, r := range a.Rows {
			var g struct {
				Grp *int `json:"grp"`
			}
			json.Unmarshal(r, &g)
			m[fmt.Sprint(g.Grp != nil, derefInt(g.Grp))] = string(r)
		}
	case "change":
		var ch struct {
			Op  string `json:"op"`
			Key struct {
				Grp *int `json:"grp"`
			} `json:"key"`
			Row json.RawMessage `json:"row"`
		}
		if err := json.Unmarshal([]byte(ev.data), &ch); err != nil {
			t.Errorf("change %s: %v", ev.data, err)
			return
		}
		k := fmt.Sprint(ch.Key.Grp != nil, derefInt(ch.Key.Grp))
		if ch.Op == "delete" {
			delete(m, k)
		} else {
			m[k] = string(ch.Row)
		}
	case "overflow":
		t.Errorf("overflow: %s", ev.data)
	}
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// rows renders the model like canonicalRows.
func (m salesModel) rows(t testing.TB) []string {
	raw := make([]json.RawMessage, 0, len(m))
	for _, r := range m {
		raw = append(raw, json.RawMessage(r))
	}
	return canonicalRows(t, raw, numbersAsWritten)
}

const streamSchema = `datasource db {
  provider = "postgresql"
}

model Sale {
  id     Int      @id
  grp    Int?
  amount Decimal? @db.Decimal(12, 2)

  @@map("sales")
}
`

const streamQuery = `SELECT grp, count(*) AS n, sum(amount) AS total FROM sales GROUP BY grp`

// salesWriters runs writers that insert, update and delete sales rows
// (NULL groups and amounts included) in random transactions, until stop
// is closed; done is closed when they have all stopped.
func salesWriters(t testing.TB, src string, writers int, stop <-chan struct{}) (done <-chan struct{}) {
	var wg sync.WaitGroup
	for w := range writers {
		conn, err := pgx.Connect(context.Background(), src)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close(context.Background())
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := w*1000000 + rng.IntN(200)
				var grp, amount any = rng.IntN(30), fmt.Sprintf("%d.%02d", rng.IntN(1000), rng.IntN(100))
				if rng.IntN(10) == 0 {
					grp = nil
				}
				if rng.IntN(8) == 0 {
					amount = nil
				}
				var err error
				switch rng.IntN(4) {
				case 0:
					_, err = conn.Exec(context.Background(), `DELETE FROM sales WHERE id = $1`, id)
				default:
					_, err = conn.Exec(context.Background(), `INSERT INTO sales VALUES ($1, $2, $3)
						ON CONFLICT (id) DO UPDATE SET grp = EXCLUDED.grp, amount = EXCLUDED.amount`, id, grp, amount)
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
			}
		}()
	}
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	return ch
}

// startStreamQuery starts a system with an embedded worker, runs setup on a
// new source database and creates streamQuery over it, caught up.
func startStreamQuery(t *testing.T, setup string) (s *system, src string, srcConn *pgx.Conn, id string) {
	t.Helper()
	s = startSystemWith(t, func(inf *Infra, cfg config.Config, logger *slog.Logger) []WorkerDeps { return nil })
	s.startEmbeddedWorker()
	src, srcConn = sourceDatabase(t)
	if _, err := srcConn.Exec(context.Background(), setup); err != nil {
		t.Fatal(err)
	}
	env := uniqueEnv("stream")
	res := s.postJSON("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": env, "schema": streamSchema, "sqlQuery": streamQuery})
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	id = res.json(t)["id"].(string)
	s.deleteOnCleanup(src, env)
	if got, ok := s.awaitRows(id, postgresRows(t, srcConn, streamQuery, numbersAsWritten), numbersAsWritten, 2*time.Minute); !ok {
		t.Fatalf("the result did not catch up: %s", got)
	}
	return s, src, srcConn, id
}

// TestChangesStream: 1,000 subscribers of GET .../changes and one that
// keeps reconnecting with Last-Event-ID, while four writers change the
// source: every subscriber ends with exactly PostgreSQL's result, the
// 1,000 saw the same events, and the reconnecting one never got an event
// twice.
func TestChangesStream(t *testing.T) {
	s, src, srcConn, id := startStreamQuery(t, `CREATE TABLE sales (id int PRIMARY KEY, grp int, amount numeric(12,2));
		INSERT INTO sales SELECT g, g % 30, g * 1.25 FROM generate_series(1, 500) g`)

	const subscribers = 1000
	type follower struct {
		mu    sync.Mutex
		model salesModel
		ids   []string
	}
	followers := make([]*follower, subscribers)
	var wg sync.WaitGroup
	streams := make([]*sseClient, subscribers)
	for i := range streams {
		streams[i] = openChanges(t, s.apiURL, id, "")
		followers[i] = &follower{model: salesModel{}}
	}
	for i, c := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ev, err := c.next()
				if err != nil {
					return
				}
				f := followers[i]
				f.mu.Lock()
				f.model.apply(t, ev)
				f.ids = append(f.ids, ev.id)
				f.mu.Unlock()
			}
		}()
	}

	stop := make(chan struct{})
	writersDone := salesWriters(t, src, 4, stop)

	// The reconnecting subscriber: a few events per connection.
	rng := rand.New(rand.NewPCG(5, 6))
	resumed := salesModel{}
	seen := map[string]bool{}
	last := ""
	reconnects := 0
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		c := openChanges(t, s.apiURL, id, last)
		reconnects++
		for n := 1 + rng.IntN(20); n > 0; n-- {
			ev, err := c.next()
			if err != nil {
				t.Fatal(err)
			}
			if ev.event == "change" {
				if seen[ev.id] {
					t.Fatalf("event %s delivered twice across reconnects", ev.id)
				}
				seen[ev.id] = true
			}
			resumed.apply(t, ev)
			last = ev.id
		}
		c.close()
	}
	close(stop)
	<-writersDone
	want := postgresRows(t, srcConn, streamQuery, numbersAsWritten)
	if got, ok := s.awaitRows(id, want, numbersAsWritten, time.Minute); !ok {
		t.Fatalf("the result did not reach PostgreSQL's: %s", got)
	}
	// Catch the reconnecting subscriber up: reconnect until a quiet
	// second passes.
	for {
		c := openChanges(t, s.apiURL, id, last)
		got := 0
		evs := make(chan sseEvent)
		go func() {
			for {
				ev, err := c.next()
				if err != nil {
					close(evs)
					return
				}
				evs <- ev
			}
		}()
		quiet := time.After(time.Second)
	read:
		for {
			select {
			case ev, ok := <-evs:
				if !ok {
					break read
				}
				if ev.event == "change" && seen[ev.id] {
					t.Fatalf("event %s delivered twice", ev.id)
				}
				seen[ev.id] = true
				resumed.apply(t, ev)
				last = ev.id
				got++
			case <-quiet:
				break read
			}
		}
		c.close()
		for range evs {
		}
		if got == 0 {
			break
		}
	}
	if got := resumed.rows(t); !slices.Equal(got, want) {
		t.Errorf("after %d reconnects the resuming subscriber holds\n%s\nwant\n%s", reconnects, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The 1,000: each reaches PostgreSQL's result, through the same events.
	waitFor(t, time.Minute, "every subscriber to hold PostgreSQL's result", func() bool {
		for _, f := range followers {
			f.mu.Lock()
			same := slices.Equal(f.model.rows(t), want)
			f.mu.Unlock()
			if !same {
				return false
			}
		}
		return true
	})
	for _, c := range streams {
		c.close()
	}
	wg.Wait()
	for i, f := range followers {
		if got := f.model.rows(t); !slices.Equal(got, want) {
			t.Fatalf("subscriber %d holds\n%s\nwant\n%s", i, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if !slices.Equal(f.ids, followers[0].ids) {
			t.Fatalf("subscriber %d saw %d events, subscriber 0 %d: not the same", i, len(f.ids), len(followers[0].ids))
		}
	}
	t.Logf("%d subscribers, %d events each; the resuming subscriber reconnected %d times", subscribers, len(followers[0].ids), reconnects)
}

// startAPI starts one more API on the system's job-state database, as a
// second `cdcq api` process would (its own result cache and LISTEN
// connection), and returns its URL.
func (s *system) startAPI() string {
	s.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	s.run(func(ctx context.Context) error {
		return RunAPI(ctx, s.inf, APIOptions{Listener: ln}, s.logger)
	})
	return "http://" + ln.Addr().String()
}

// TestTwoAPIProcessesServeTheSameResult: two API processes long-poll the
// same result while four writers change the source; both end with
// PostgreSQL's result and the same ETag, serve the same rows under the same
// ETag, and see each ETag at nearly the same time.
func TestTwoAPIProcessesServeTheSameResult(t *testing.T) {
	s, src, srcConn, id := startStreamQuery(t, `CREATE TABLE sales (id int PRIMARY KEY, grp int, amount numeric(12,2))`)
	second := s.startAPI()

	// An ETag is the result's version and its job state's: the same ETag
	// must mean the same rows in both processes.
	type sighting struct {
		rows string
		at   time.Time
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	seen := make([]map[string]sighting, 2)
	for i, base := range []string{s.apiURL, second} {
		seen[i] = map[string]sighting{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			etag := ""
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, base+"/cachedQueries/"+id+"/result?wait=1s", nil)
				if etag != "" {
					req.Header.Set("If-None-Match", etag)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("API %d: %v", i, err)
					return
				}
				var a resultAnswer
				if res.StatusCode == http.StatusOK {
					json.NewDecoder(res.Body).Decode(&a)
				}
				res.Body.Close()
				if res.StatusCode == http.StatusNotModified {
					continue
				}
				etag = res.Header.Get("ETag")
				if _, ok := seen[i][etag]; !ok {
					seen[i][etag] = sighting{rows: strings.Join(canonicalRows(t, a.Rows, numbersAsWritten), "\n"), at: time.Now()}
				}
			}
		}()
	}
	writersDone := salesWriters(t, src, 4, stop)
	time.Sleep(5 * time.Second)
	close(stop)
	<-writersDone
	want := postgresRows(t, srcConn, streamQuery, numbersAsWritten)
	for i, base := range []string{s.apiURL, second} {
		api := &system{t: t, apiURL: base}
		if got, ok := api.awaitRows(id, want, numbersAsWritten, time.Minute); !ok {
			t.Fatalf("API %d did not reach PostgreSQL's result: %s", i, got)
		}
	}
	wg.Wait()
	var etags []string
	for _, base := range []string{s.apiURL, second} {
		res, err := http.Get(base + "/cachedQueries/" + id + "/result")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		etags = append(etags, res.Header.Get("ETag"))
	}
	if etags[0] != etags[1] {
		t.Errorf("the same result has ETag %s on one API and %s on the other", etags[0], etags[1])
	}
	var gaps []time.Duration
	for etag, a := range seen[0] {
		b, ok := seen[1][etag]
		if !ok {
			continue
		}
		if a.rows != b.rows {
			t.Errorf("ETag %s: different rows on the two APIs\n%s\n---\n%s", etag, a.rows, b.rows)
		}
		gaps = append(gaps, a.at.Sub(b.at).Abs())
	}
	if len(gaps) < 10 {
		t.Fatalf("only %d ETags seen by both APIs (%d and %d seen)", len(gaps), len(seen[0]), len(seen[1]))
	}
	slices.Sort(gaps)
	t.Logf("%d ETags seen by both APIs; |difference in when each saw one|: p50 %s, p99 %s, max %s",
		len(gaps), gaps[len(gaps)/2], gaps[len(gaps)*99/100], gaps[len(gaps)-1])
}

// TestClusterResultShapeEveryType: the same shape from Flink's results,
// on the real cluster (Debezium's capture, Flink's job).
func TestClusterResultShapeEveryType(t *testing.T) {
	s := startClusterSystem(t, clusterEngines{debezium: true, flink: true})
	src, srcConn := sourceDatabase(t)
	if _, err := srcConn.Exec(context.Background(), typedTables); err != nil {
		t.Fatal(err)
	}
	// Two things Flink cannot write as PostgreSQL does, left out of the
	// exact comparison: a time with fractional seconds (Flink's JSON
	// format writes TIME as HH:mm:ss), and avg, which Flink computes at
	// its DECIMAL's scale (the value is compared, not its text).
	exact := []string{
		`SELECT i2, i4, i8, n, r, d, b, t, v, c, u, da, ts, tz, by, m, count(*) AS cnt FROM typed
		  GROUP BY i2, i4, i8, n, r, d, b, t, v, c, u, da, ts, tz, by, m`,
		`SELECT m, count(*) AS cnt, count(u) AS with_uuid, sum(i2) AS s2, sum(i4) AS s4, sum(i8) AS s8, sum(n) AS sn,
		        sum(r) AS sr, sum(d) AS sd, min(n) AS ln, max(t) AS ht, min(v) AS lv,
		        max(c) AS hc, min(da) AS lda, min(ts) AS lts, max(tz) AS htz
		   FROM typed GROUP BY m`,
	}
	checkResultShape(t, s, src, srcConn, exact, numbersAsWritten)
	checkResultShape(t, s, src, srcConn, []string{`SELECT m, avg(n) AS an, avg(i4) AS a4 FROM typed GROUP BY m`}, 0)
}

func TestResultLag(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { x := now.Add(d); return &x }
	live := results.StateLive
	for _, tt := range []struct {
		name  string
		p     results.Progress
		want  float64
		known bool
	}{
		{"quiet: heartbeats keep coming", results.Progress{State: live, FreshThrough: at(-800 * time.Millisecond), SourceTime: at(-time.Hour), UpdatedAt: now.Add(-time.Hour)}, 0, true},
		{"stuck: heartbeats stopped 10 s ago", results.Progress{State: live, FreshThrough: at(-10 * time.Second), SourceTime: at(-time.Hour), UpdatedAt: now.Add(-time.Hour)}, 8.5, true},
		{"busy: the newest change took 120 ms", results.Progress{State: live, FreshThrough: at(-500 * time.Millisecond), SourceTime: at(-200 * time.Millisecond), UpdatedAt: now.Add(-80 * time.Millisecond)}, 0.12, true},
		{"no heartbeats (Flink): the newest change took 1.5 s", results.Progress{State: live, SourceTime: at(-3 * time.Second), UpdatedAt: now.Add(-1500 * time.Millisecond)}, 1.5, true},
		{"catching up: heartbeats do not count", results.Progress{State: results.StateCatchingUp, FreshThrough: at(-time.Second), SourceTime: at(-3 * time.Second), UpdatedAt: now.Add(-2 * time.Second)}, 1, true},
		{"nothing read yet", results.Progress{State: results.StateCatchingUp, UpdatedAt: now}, 0, false},
	} {
		got, known := resultLag(now, tt.p)
		if known != tt.known || math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: lag %v (known %v), want %v (%v)", tt.name, got, known, tt.want, tt.known)
		}
	}
}

// TestQuietSourceHasNoLag: a caught-up query on a quiet source reports lag
// 0, and its fresh-through time keeps moving.
func TestQuietSourceHasNoLag(t *testing.T) {
	s, _, _, id := startStreamQuery(t, `CREATE TABLE sales (id int PRIMARY KEY, grp int, amount numeric(12,2));
		INSERT INTO sales VALUES (1, 1, 1.00)`)
	var first *time.Time
	var last resultAnswer
	waitFor(t, time.Minute, "lag 0 with a fresh-through time that moved", func() bool {
		res, err := http.Get(s.apiURL + "/cachedQueries/" + id + "/result")
		if err != nil {
			return false
		}
		var a resultAnswer
		json.NewDecoder(res.Body).Decode(&a)
		res.Body.Close()
		last = a
		if !a.CaughtUp || a.Position.FreshThrough == nil || a.Position.LagSeconds == nil {
			return false
		}
		if first == nil {
			first = a.Position.FreshThrough
		}
		return *a.Position.LagSeconds == 0 && a.Position.FreshThrough.Sub(*first) >= 3*time.Second
	})
	t.Logf("fresh through %s, lag %v, the newest change at %s", last.Position.FreshThrough, *last.Position.LagSeconds, last.Position.SourceTime)
}
