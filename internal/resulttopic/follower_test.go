package resulttopic_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/internal/results"
	"github.com/cdcq/cdcq/internal/resulttopic"
	"github.com/cdcq/cdcq/projections"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// queryList is a QueryLister whose answer a test changes.
type queryList struct {
	mu sync.Mutex
	qs []projections.ActiveQuery
}

func (l *queryList) set(qs ...projections.ActiveQuery) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.qs = qs
}

func (l *queryList) ActiveQueries(context.Context) ([]projections.ActiveQuery, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]projections.ActiveQuery(nil), l.qs...), nil
}

func query(env, id, engine string) projections.ActiveQuery {
	return projections.ActiveQuery{EnvironmentID: env, QueryID: id, Engine: engine, Last: jobs.QueryStatus{Status: jobs.StatusRunning}}
}

type fixture struct {
	t       *testing.T
	brokers []string
	store   *results.Store
	dbURL   string
	cl      *kgo.Client
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	broker, err := kafkabus.StartEmbedded("", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	url, pool := pgtest.NewJobState(t)
	store, err := results.New(pool)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker.Brokers()...), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &fixture{t: t, brokers: broker.Brokers(), store: store, dbURL: url, cl: cl}
}

// produce writes records to topic: pairs of key and value ("" is a
// tombstone).
func (f *fixture) produce(topic string, kv ...string) {
	f.t.Helper()
	var recs []*kgo.Record
	for i := 0; i < len(kv); i += 2 {
		r := &kgo.Record{Topic: topic, Key: []byte(kv[i])}
		if kv[i+1] != "" {
			r.Value = []byte(kv[i+1])
		}
		recs = append(recs, r)
	}
	if err := f.cl.ProduceSync(f.t.Context(), recs...).FirstErr(); err != nil {
		f.t.Fatal(err)
	}
}

// rows returns a query's rows, sorted, and its state.
func (f *fixture) rows(id string) (string, string) {
	r, err := f.store.Result(context.Background(), id)
	if err != nil {
		return "", ""
	}
	var out []string
	for _, row := range r.Rows {
		var m map[string]any
		if err := json.Unmarshal(row, &m); err != nil {
			f.t.Fatal(err)
		}
		b, _ := json.Marshal(m)
		out = append(out, string(b))
	}
	sort.Strings(out)
	return strings.Join(out, " "), r.Progress.State
}

func (f *fixture) waitRows(id, want string) {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, state := f.rows(id)
		if got == want && state == results.StateLive {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("rows of %s = %q (%s), want %q (LIVE)", id, got, state, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func key(q, region string) string {
	return `{"query_id":"` + q + `","group":{"region":` + region + `}}`
}

// value is a result row, in the canonical form rows returns (sorted keys).
func value(q, region string, n int) string {
	var r any
	if err := json.Unmarshal([]byte(region), &r); err != nil {
		panic(err)
	}
	b, _ := json.Marshal(map[string]any{"query_id": q, "region": r, "n": n})
	return string(b)
}

func TestFollowerMaterialisesOneEnginesQueries(t *testing.T) {
	f := newFixture(t)
	const env = "env1"
	if err := kafkabus.EnsureTopics(t.Context(), kafkasec.Plaintext(f.brokers...), kafkabus.Topic{Name: env, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	// History before the follower starts: an update written as tombstone
	// plus row, a group that disappears, a NULL group, and records of an
	// embedded query and of a query not (yet) listed.
	f.produce(env,
		key("qf", `"eu"`), value("qf", `"eu"`, 1),
		key("qf", `"us"`), value("qf", `"us"`, 1),
		key("qf", `"eu"`), "",
		key("qf", `"eu"`), value("qf", `"eu"`, 2),
		key("qf", `"us"`), "",
		key("qf", `null`), value("qf", `null`, 5),
		key("qe", `"eu"`), value("qe", `"eu"`, 9),
		key("qnew", `"eu"`), value("qnew", `"eu"`, 3),
	)
	list := &queryList{}
	list.set(query(env, "qf", "flink"), query(env, "qe", "embedded"))
	fol, err := resulttopic.NewFollower(resulttopic.FollowerConfig{
		Kafka: kafkasec.Plaintext(f.brokers...), DatabaseURL: f.dbURL, Results: f.store, Queries: list, Engine: "flink",
		Interval: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- fol.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	f.waitRows("qf", value("qf", `"eu"`, 2)+" "+value("qf", `null`, 5))
	if got, _ := f.rows("qe"); got != "" {
		t.Fatalf("the embedded query's rows were written by the follower: %s", got)
	}

	// The new query's projection catches up with its first records.
	list.set(query(env, "qf", "flink"), query(env, "qe", "embedded"), query(env, "qnew", "flink"))
	f.waitRows("qnew", value("qnew", `"eu"`, 3))

	// Live changes.
	f.produce(env,
		key("qf", `null`), "",
		key("qf", `"eu"`), "",
		key("qf", `"eu"`), value("qf", `"eu"`, 3),
	)
	f.waitRows("qf", value("qf", `"eu"`, 3))

	// Clear tombstones the query's live keys, and nothing else.
	if err := resulttopic.Clear(t.Context(), kafkasec.Plaintext(f.brokers...), env, "qf"); err != nil {
		t.Fatal(err)
	}
	f.waitRows("qf", "")
	f.waitRows("qnew", value("qnew", `"eu"`, 3))
}
