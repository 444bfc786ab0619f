package capture

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/handlers"
	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/internal/pgsource"
	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/internal/secret"
	"github.com/cdcq/cdcq/internal/sourcepolicy"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// harness is one cdcq deployment: a job-state database, a Kafka broker and
// a sealing key. Engines and supervisors built from it share them, like the
// workers of one deployment.
type harness struct {
	t        testing.TB
	jobState string
	pool     *pgxpool.Pool
	sealer   *secret.Sealer
	brokers  []string
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	jobState, pool := pgtest.NewJobState(t)
	key, err := secret.ParseKey(secret.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := secret.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	broker, err := kafkabus.StartEmbedded("", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	return &harness{t: t, jobState: jobState, pool: pool, sealer: sealer, brokers: broker.Brokers()}
}

// testLogger writes to the test log only with -v, to keep failures short.
func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// engine builds an engine with quick test timings; tweak adjusts the
// config.
func (h *harness) engine(worker string, tweak func(*Config)) *Engine {
	h.t.Helper()
	// The test servers listen on loopback and hold the job-state database
	// too: allow both explicitly, as cdcq dev does.
	policy, err := sourcepolicy.New(sourcepolicy.Rules{
		Allow: []string{sourcepolicy.WordLoopback, sourcepolicy.WordJobState}, JobStateURL: h.jobState,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	src, err := pgsource.New(pgsource.Config{ActiveSlotGrace: 2 * time.Second, PollInterval: 50 * time.Millisecond, Policy: policy})
	if err != nil {
		h.t.Fatal(err)
	}
	cfg := Config{
		Pool: h.pool, Sealer: h.sealer, Kafka: kafkasec.Plaintext(h.brokers...), Source: src, WorkerID: worker,
		StatusInterval: 200 * time.Millisecond, HeartbeatInterval: 300 * time.Millisecond,
		ProgressInterval: 200 * time.Millisecond, RetryMin: 100 * time.Millisecond, RetryMax: time.Second,
		TakeoverGrace: time.Second, SnapshotChunkRows: 7, RefreshInterval: 300 * time.Millisecond, Logger: testLogger().With("worker", worker),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return e
}

// supervise runs a supervisor until the returned stop is called (or the
// test ends).
func (h *harness) supervise(e *Engine) (stop func()) {
	h.t.Helper()
	s, err := NewSupervisor(SupervisorConfig{Engine: e, DatabaseURL: h.jobState, Interval: 200 * time.Millisecond})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	h.t.Cleanup(stop)
	return stop
}

func spec(environmentID, dsn string) handlers.CaptureSpec {
	return handlers.CaptureSpec{
		EnvironmentID:    environmentID,
		ConnectionString: dsn,
		ConnectorName:    names.ConnectorName(environmentID),
		SlotName:         names.SlotName(environmentID),
		PublicationName:  names.PublicationName(environmentID),
		TopicPrefix:      names.TopicPrefix(environmentID),
	}
}

func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func exec(t testing.TB, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func queryInt(t testing.TB, conn *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// eventually retries cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %s", what, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// consumer reads topics from their start into memory.
type consumer struct {
	mu      sync.Mutex
	records []*kgo.Record
	cancel  context.CancelFunc
	done    chan struct{}
}

func consume(t testing.TB, brokers []string, topics ...string) *consumer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMaxAge(250*time.Millisecond),
		kgo.MetadataMinAge(50*time.Millisecond), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &consumer{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer cl.Close()
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				c.mu.Lock()
				c.records = append(c.records, r)
				c.mu.Unlock()
			})
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-c.done
	})
	return c
}

func (c *consumer) all() []*kgo.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*kgo.Record(nil), c.records...)
}

// change is a decoded change record.
type change struct {
	Topic  string
	Key    map[string]any
	Before map[string]any `json:"before"`
	After  map[string]any `json:"after"`
	Source struct {
		Version   string  `json:"version"`
		Connector string  `json:"connector"`
		Name      string  `json:"name"`
		TsMs      int64   `json:"ts_ms"`
		Snapshot  string  `json:"snapshot"`
		DB        string  `json:"db"`
		Schema    string  `json:"schema"`
		Table     string  `json:"table"`
		TxID      *int64  `json:"txId"`
		LSN       *int64  `json:"lsn"`
		Sequence  *string `json:"sequence"`
		Origin    *string `json:"origin"`
		OriginLSN *int64  `json:"origin_lsn"`
	} `json:"source"`
	Op        string `json:"op"`
	TsMs      int64  `json:"ts_ms"`
	Tombstone bool
	Raw       []byte
}

func decode(t testing.TB, r *kgo.Record) change {
	t.Helper()
	var c change
	c.Topic = r.Topic
	if r.Key != nil {
		if err := unmarshal(r.Key, &c.Key); err != nil {
			t.Fatalf("key %s: %v", r.Key, err)
		}
	}
	if r.Value == nil {
		c.Tombstone = true
		return c
	}
	c.Raw = r.Value
	if err := unmarshal(r.Value, &c); err != nil {
		t.Fatalf("value %s: %v", r.Value, err)
	}
	return c
}

func unmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

func decodeAll(t testing.TB, rs []*kgo.Record) []change {
	out := make([]change, len(rs))
	for i, r := range rs {
		out[i] = decode(t, r)
	}
	return out
}

func ops(cs []change) string {
	var b bytes.Buffer
	for _, c := range cs {
		if c.Tombstone {
			b.WriteString("-")
		} else {
			b.WriteString(c.Op)
		}
	}
	return b.String()
}

// keysOf lists map keys, sorted, for messages.
func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func num(v any) string { return fmt.Sprint(v) }

// replicationRole creates the login role cdcq_repl (REPLICATION, password
// pw, not a superuser) with CREATE on admin's database and ALL on schema
// public, and returns the database's name.
func replicationRole(t *testing.T, admin *pgx.Conn) string {
	t.Helper()
	var db string
	if err := admin.QueryRow(context.Background(), `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	exec(t, admin, `DO $$ BEGIN CREATE ROLE cdcq_repl LOGIN REPLICATION PASSWORD 'pw'; EXCEPTION WHEN duplicate_object THEN NULL; END $$`)
	exec(t, admin, `GRANT CREATE ON DATABASE `+db+` TO cdcq_repl`)
	exec(t, admin, `GRANT ALL ON SCHEMA public TO cdcq_repl`)
	return db
}
