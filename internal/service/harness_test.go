package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/handlers"
	"github.com/cdcq/cdcq/internal/clustertest"
	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/internal/secret"
	"github.com/cdcq/cdcq/internal/sourcepolicy"
)

// TestMain stops the shared PostgreSQL server and, when a test started it,
// the real local cluster (Kafka, Kafka Connect with Debezium, Flink).
func TestMain(m *testing.M) { clustertest.Main(m) }

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// system is a running API and worker(s) on an in-process broker and a
// private Postgres database, as `cdcq api` and `cdcq worker` run them.
type system struct {
	t      testing.TB
	cfg    config.Config
	logger *slog.Logger
	// responses keeps every answer body, for the secrets test.
	respMu    sync.Mutex
	responses []string
	inf       *Infra
	apiURL    string
	logs      *syncBuffer
	cancels   []context.CancelFunc
	done      sync.WaitGroup
}

// startSystem starts the API and one worker per entry of workers.
func startSystem(t testing.TB, workers ...WorkerDeps) *system {
	t.Helper()
	return startSystemWith(t, func(*Infra, config.Config, *slog.Logger) []WorkerDeps { return workers })
}

// startEmbeddedSystem starts the API and one worker with the engines the
// configuration selects: the embedded capture and engine.
func startEmbeddedSystem(t testing.TB) *system {
	t.Helper()
	return startSystemWith(t, func(inf *Infra, cfg config.Config, logger *slog.Logger) []WorkerDeps {
		deps, err := Engines(cfg, inf, logger)
		if err != nil {
			t.Fatal(err)
		}
		return []WorkerDeps{deps}
	})
}

// startSystemWith starts the API and the workers that engines builds once
// the infrastructure is ready.
func startSystemWith(t testing.TB, engines func(inf *Infra, cfg config.Config, logger *slog.Logger) []WorkerDeps) *system {
	t.Helper()
	broker, err := kafkabus.StartEmbedded("", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	return startSystemOn(t, config.Config{KafkaBrokers: broker.Brokers()}, engines)
}

// clusterEngines says which of the real cluster's engines a system uses;
// the others are cdcq's embedded ones.
type clusterEngines struct {
	debezium, flink bool
	// saslKafka puts the system, and Flink's jobs, on the cluster's
	// SASL_SSL listener (SCRAM-SHA-256 over TLS) instead of the PLAINTEXT
	// one.
	saslKafka bool
	// workers is how many workers to start (default 1).
	workers int
	// statusInterval is the status poller's round (default 200ms).
	statusInterval time.Duration
}

// startClusterSystem starts the API and workers on the real local cluster
// (clustertest.Shared): its Kafka, and Kafka Connect with Debezium and
// Flink as asked, configured as `cdcq worker` configures them from the
// environment.
func startClusterSystem(t testing.TB, use clusterEngines) *system {
	t.Helper()
	c := clustertest.Shared(t)
	// Systems share the cluster's Kafka; each has a namespace of its own, as
	// separate deployments would.
	cfg := config.Config{KafkaBrokers: strings.Split(c.KafkaBrokers(), ","), KafkaNamespace: uniqueEnv("sys"), StatusInterval: use.statusInterval}
	if use.saslKafka {
		useClusterSASLKafka(t, &cfg, c)
	}
	if use.debezium {
		useClusterConnect(t, &cfg, c)
	}
	if use.flink {
		cfg.FlinkGatewayURL, cfg.FlinkRESTURL = c.SQLGatewayURL(), c.FlinkRESTURL()
		cfg.FlinkKafkaBrokers = cfg.KafkaBrokers
	}
	n := max(use.workers, 1)
	return startSystemOn(t, cfg, func(inf *Infra, cfg config.Config, logger *slog.Logger) []WorkerDeps {
		var out []WorkerDeps
		for range n {
			deps, err := Engines(cfg, inf, logger)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, deps)
		}
		return out
	})
}

// startSystemOn starts the API and the workers that engines builds on the
// Kafka brokers of base, with a private job-state database; base's engine
// URLs are kept, and its StatusInterval when set (default 200ms).
func startSystemOn(t testing.TB, base config.Config, engines func(inf *Infra, cfg config.Config, logger *slog.Logger) []WorkerDeps) *system {
	t.Helper()
	logs := &syncBuffer{}
	var w io.Writer = logs
	if dir := os.Getenv("CDCQ_TEST_LOG_DIR"); dir != "" {
		f, err := os.Create(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		w = io.MultiWriter(logs, f)
	}
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := base
	cfg.DatabaseURL = pgtest.NewDatabase(t)
	if cfg.SourceAllow == nil {
		// The test sources are databases on the test server: loopback,
		// and the job-state database's server. Production refuses both
		// unless an operator allows them; tests allow them explicitly.
		cfg.SourceAllow = []string{sourcepolicy.WordLoopback, sourcepolicy.WordJobState}
	}
	cfg.SecretKey = secret.NewKey()
	cfg.Partitions = 6
	if cfg.StatusInterval == 0 {
		cfg.StatusInterval = 200 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inf, err := Prepare(ctx, cfg, false, logger)
	if err != nil {
		t.Fatal(err)
	}
	s := &system{t: t, inf: inf, logs: logs}
	t.Cleanup(func() {
		for _, c := range s.cancels {
			c()
		}
		s.done.Wait()
		inf.Close()
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.apiURL = "http://" + ln.Addr().String()
	s.run(func(ctx context.Context) error {
		return RunAPI(ctx, inf, APIOptions{Listener: ln}, logger)
	})
	s.cfg, s.logger = cfg, logger
	workers := engines(inf, cfg, logger)
	for i := range workers {
		if workers[i].Source == nil {
			if workers[i].Source, err = SourceClient(cfg, inf); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, deps := range workers {
		s.run(func(ctx context.Context) error {
			return RunWorker(ctx, inf, deps, cfg.StatusInterval, logger)
		})
	}
	if len(workers) > 0 {
		s.waitForGroupMembers(s.inf.Names.WorkerGroup, len(workers))
		s.waitForGroupMembers(s.inf.Names.ProjectorGroup, len(workers))
	}
	return s
}

func (s *system) run(fn func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancels = append(s.cancels, cancel)
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			s.t.Errorf("component stopped: %v", err)
		}
	}()
}

// waitForGroupMembers waits until a consumer group has n members with
// partitions assigned, so that tests publish into a settled group.
func (s *system) waitForGroupMembers(group string, n int) {
	s.t.Helper()
	cl, err := s.inf.Kafka().NewClient()
	if err != nil {
		s.t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	waitFor(s.t, 30*time.Second, "group "+group+" to settle", func() bool {
		groups, err := adm.DescribeGroups(context.Background(), group)
		if err != nil {
			return false
		}
		g, ok := groups[group]
		if !ok || g.State != "Stable" || len(g.Members) != n {
			return false
		}
		for _, m := range g.Members {
			a, ok := m.Assigned.AsConsumer()
			if !ok || len(a.Topics) == 0 {
				return false
			}
		}
		return true
	})
}

// response is an HTTP answer, body read.
type response struct {
	status int
	header http.Header
	body   string
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, r.body)
	}
	return m
}

// postForm sends a form-encoded body, as the original API's curl lines do.
func (s *system) postForm(path string, fields map[string]string) response {
	v := url.Values{}
	for k, val := range fields {
		v.Set(k, val)
	}
	return s.do(path, "application/x-www-form-urlencoded", strings.NewReader(v.Encode()))
}

// postJSON sends a JSON body.
func (s *system) postJSON(path string, fields map[string]string) response {
	b, _ := json.Marshal(fields)
	return s.do(path, "application/json", bytes.NewReader(b))
}

func (s *system) do(path, contentType string, body io.Reader) response {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.apiURL+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	s.respMu.Lock()
	s.responses = append(s.responses, string(b)+fmt.Sprint(res.Header))
	s.respMu.Unlock()
	return response{status: res.StatusCode, header: res.Header, body: string(b)}
}

// waitForStatus polls checkJobStatus until cond holds.
func (s *system) waitForStatus(conn, env string, what string, cond func(m map[string]any) bool) map[string]any {
	s.t.Helper()
	var last response
	var m map[string]any
	ok := poll(30*time.Second, func() bool {
		last = s.postJSON("/checkJobStatus", map[string]string{"connectionString": conn, "environmentId": env})
		if last.status != http.StatusOK {
			return false
		}
		m = last.json(s.t)
		return cond(m)
	})
	if !ok {
		s.t.Fatalf("%s: not reached within 30s; last checkJobStatus %d %s", what, last.status, last.body)
	}
	return m
}

func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// records reads every record of a topic from the beginning.
func (s *system) records(topic string) []*kgo.Record {
	s.t.Helper()
	cl, err := s.inf.Kafka().NewClient(kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		s.t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		s.t.Fatal(err)
	}
	want := int64(0)
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	var out []*kgo.Record
	// Generous for topics of a million records under the race detector;
	// a complete read ends as soon as it has them all.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for int64(len(out)) < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// noProcessor stands in for a query processor in tests about captures: it
// fails every query, as an engine does for a query it cannot run.
type noProcessor struct{}

const noProcessorReason = "no query processor in this test"

func (noProcessor) Engine() string { return "none" }

func (noProcessor) EnsureQuery(context.Context, handlers.QuerySpec) (jobs.QueryStatus, error) {
	return jobs.QueryStatus{}, jobs.Terminalf(noProcessorReason)
}

func (noProcessor) ObserveQuery(context.Context, handlers.QuerySpec) (jobs.QueryStatus, error) {
	return jobs.QueryStatus{Status: jobs.StatusFailed, Reason: noProcessorReason}, nil
}

func (noProcessor) DeleteQuery(context.Context, handlers.QuerySpec) error { return nil }

func (noProcessor) DeleteEnvironment(context.Context, string) error { return nil }

var envSeq atomic.Int64

// uniqueEnv names an environment no earlier run on the shared test server
// used: replication slot names are per server, and captures a test leaves
// running keep theirs until the server stops (go test -count=N).
func uniqueEnv(prefix string) string {
	return fmt.Sprintf("%s%d_%d", prefix, os.Getpid()%100000, envSeq.Add(1))
}
