package service

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/capture/capturetest"
	"github.com/cdcq/cdcq/internal/clustertest"
	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/localcluster"
	"github.com/cdcq/cdcq/internal/names"
)

// The soak (issue "resilience"): create/createCachedQuery/delete cycles
// over many environments, a bounded number at a time, while writers change
// the source tables and `cdcq worker` processes are killed with SIGKILL at
// random and started again. At the end, with the killing stopped, every
// query still wanted is caught up and equals PostgreSQL's answer, and a
// deleted environment left nothing behind: no replication slot, no
// publication, no sealed connection string or binding, no result rows,
// no Kafka Connect connector, connector secret file or running Flink job.
// Each orphan check is first run against the environments still wanted,
// where it must find what it looks for.
//
// CDCQ_SOAK_CYCLES (default 1000) and CDCQ_SOAK_MAX (default 10m, the whole
// test) size the embedded soak; `make test` runs a smaller one, `make soak`
// the full one. Cycles go at the workers' pace (a bounded number of
// commands waits), and the soak stops starting them when the time left is
// what settling and checking need (a third of the bound, at most 2m): it
// reports how many it did, and fails if that is under a tenth of those
// asked (the workers stalled).

// soakQueries are the cached queries the cycles create, on salesSchema.
// Several per environment, so that a query id is sometimes created again
// after its environment was deleted and sometimes not.
var soakQueries = []string{
	salesQuery,
	`SELECT grp, count(*) AS n FROM sales WHERE amount IS NOT NULL GROUP BY grp`,
	`SELECT count(*) AS n, sum(amount) AS total, max(amount) AS hi FROM sales`,
}

// soakSource is a source database: the connection string the API gets,
// and a connection of the test's own.
type soakSource struct {
	db   string
	conn string
	pg   *pgx.Conn
}

// soakEnv is one environment id of the soak. mu is held by the cycle
// working on it; alive says a create is its last command, query is then
// the query it wants.
type soakEnv struct {
	mu     sync.Mutex
	id     string
	src    *soakSource
	alive  bool
	query  string
	cycles int
}

type soakRun struct {
	t     *testing.T
	s     *system
	fleet *workerFleet
	envs  []*soakEnv
	start time.Time
	bound time.Duration
	// cyclesFor is how long after start cycles may start: the rest of
	// the bound is for settling and checking.
	cyclesFor time.Duration
	// fresh makes cycles take environments never used before while there
	// are some.
	fresh bool

	mu      sync.Mutex
	queries map[string]string // every query id created → its environment
	workers []*workerProcess
	started int // workers started, for names
	used    int // environments that had a cycle

	cycles, waitedLive, slowLive, kills atomic.Int64
	// published counts the commands the API took, handled those the
	// workers carried out (the inbox's rows).
	published, handled atomic.Int64
}

// soakSize reads CDCQ_SOAK_CYCLES and CDCQ_SOAK_MAX.
func soakSize(t *testing.T, cycles int, max time.Duration) (int, time.Duration) {
	t.Helper()
	if v := os.Getenv("CDCQ_SOAK_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("CDCQ_SOAK_CYCLES=%q: want a positive number", v)
		}
		cycles = n
	}
	if v := os.Getenv("CDCQ_SOAK_MAX"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("CDCQ_SOAK_MAX=%q: want a duration", v)
		}
		max = d
	}
	return cycles, max
}

// TestSoakEmbeddedWorkersKilled is the soak with cdcq's embedded capture
// and query engine in three `cdcq worker` processes (the API runs in the
// test), over 50 environments on five source databases of a private
// server. Kafka is the real cluster's, as in
// TestClusterWorkersCarryOutEveryCommandOnce: a SIGKILLed worker stays in
// the consumer groups until its session times out, as in production.
func TestSoakEmbeddedWorkersKilled(t *testing.T) {
	cycles, bound := soakSize(t, 1000, 10*time.Minute)
	// The bound counts from here: the cluster is shared with the other
	// tests, which may have started it.
	c := clustertest.Shared(t)
	start := time.Now()
	bin := buildCdcq(t)
	ns := uniqueEnv("soak")
	s := startSystemOn(t, config.Config{KafkaBrokers: strings.Split(c.KafkaBrokers(), ","), KafkaNamespace: ns},
		func(*Infra, config.Config, *slog.Logger) []WorkerDeps { return nil })
	t.Cleanup(func() { deleteNamespaceTopics(t, s.inf.Brokers, ns) })

	srv := captureSourceServer(t)
	var sources []*soakSource
	for i := range 5 {
		db := fmt.Sprintf("soak_%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := srv.CreateDatabase(ctx, db); err != nil {
			t.Fatal(err)
		}
		cancel()
		sources = append(sources, newSoakSource(t, db, srv.URLFor(db), srv.URLFor(db), 2000))
	}
	k := newSoakRun(t, s, bin, ns, workerEnv(s, ns), sources, 50, start, bound)
	k.run(cycles, 12, 60, 3, [2]time.Duration{5 * time.Second, 15 * time.Second})
	k.check(nil)
}

// TestSoakClusterWorkersKilled is a short soak with the real cluster's
// engines: Debezium on Kafka Connect captures, Flink runs the queries,
// three `cdcq worker` processes are killed at random. At the end a deleted
// environment has no connector, no connector secret file and no RUNNING
// Flink job either. Sized by CDCQ_SOAK_CLUSTER_CYCLES (default 30) and
// CDCQ_SOAK_CLUSTER_MAX (default 4m). It runs with CDCQ_SOAK_CLUSTER=1
// (`make soak`), not in `make test`: it takes longer than the suite can
// spare, and it fails today: an environment deleted and created again
// gets a connector of the same name, which resumes from the offsets the
// deleted one committed in Kafka Connect, an LSN of the dropped slot, and
// its task FAILS ("no longer available on the server").
func TestSoakClusterWorkersKilled(t *testing.T) {
	if os.Getenv("CDCQ_SOAK_CLUSTER") != "1" {
		t.Skip("the cluster soak runs with CDCQ_SOAK_CLUSTER=1 (make soak)")
	}
	cycles, bound := 30, 4*time.Minute
	if v := os.Getenv("CDCQ_SOAK_CLUSTER_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("CDCQ_SOAK_CLUSTER_CYCLES=%q: want a positive number", v)
		}
		cycles = n
	}
	if v := os.Getenv("CDCQ_SOAK_CLUSTER_MAX"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("CDCQ_SOAK_CLUSTER_MAX=%q: want a duration", v)
		}
		bound = d
	}
	c := clustertest.Shared(t)
	start := time.Now()
	bin := buildCdcq(t)
	ns := uniqueEnv("csoak")
	cfg := config.Config{KafkaBrokers: strings.Split(c.KafkaBrokers(), ","), KafkaNamespace: ns}
	useClusterConnect(t, &cfg, c)
	cfg.FlinkGatewayURL, cfg.FlinkRESTURL = c.SQLGatewayURL(), c.FlinkRESTURL()
	cfg.FlinkKafkaBrokers = cfg.KafkaBrokers
	s := startSystemOn(t, cfg, func(*Infra, config.Config, *slog.Logger) []WorkerDeps { return nil })
	t.Cleanup(func() { deleteNamespaceTopics(t, s.inf.Brokers, ns) })
	env := workerEnv(s, ns)
	for _, kv := range c.EnvVars() {
		if strings.HasPrefix(kv, "CDCQ_CONNECT_") || strings.HasPrefix(kv, "CDCQ_FLINK_") {
			env = append(env, kv)
		}
	}
	var sources []*soakSource
	for i := range 2 {
		url, pg := sourceDatabase(t)
		sources = append(sources, newSoakSourceOn(t, fmt.Sprintf("db%d", i), url, pg, 500))
	}
	envs := 5
	// CDCQ_SOAK_CLUSTER_FRESH=1: an environment id per cycle, never
	// created again, which leaves out the connector offsets that fail
	// today (above) and checks the rest.
	fresh := os.Getenv("CDCQ_SOAK_CLUSTER_FRESH") == "1"
	if fresh {
		envs = cycles
	}
	k := newSoakRun(t, s, bin, ns, env, sources, envs, start, bound)
	k.fresh = fresh
	// Deleted environments must not be left in the shared cluster if the
	// test fails half way.
	t.Cleanup(func() {
		for _, e := range k.envs {
			if e.alive {
				s.postJSON("/deleteDatabaseConnection", map[string]string{"connectionString": e.src.conn, "environmentId": e.id})
			}
		}
	})
	k.run(cycles, 3, 15, 3, [2]time.Duration{5 * time.Second, 15 * time.Second})
	k.check(c)
}

// newSoakSource connects to database db and fills it (newSoakSourceOn).
func newSoakSource(t *testing.T, db, apiConn, adminURL string, rows int) *soakSource {
	t.Helper()
	pg, err := pgx.Connect(context.Background(), adminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close(context.Background()) })
	return newSoakSourceOn(t, db, apiConn, pg, rows)
}

// newSoakSourceOn creates the table sales with rows rows and starts a
// writer that changes it until the soak settles.
func newSoakSourceOn(t *testing.T, db, apiConn string, pg *pgx.Conn, rows int) *soakSource {
	t.Helper()
	if _, err := pg.Exec(context.Background(), fmt.Sprintf(`CREATE TABLE sales (id int PRIMARY KEY, grp int NOT NULL, amount numeric(12,2));
		INSERT INTO sales SELECT g, g %% 100, CASE WHEN g %% 9 = 0 THEN NULL ELSE (g %% 1000) * 1.25 END FROM generate_series(1, %d) g`, rows)); err != nil {
		t.Fatal(err)
	}
	return &soakSource{db: db, conn: apiConn, pg: pg}
}

func newSoakRun(t *testing.T, s *system, bin, ns string, env []string, sources []*soakSource, envs int, start time.Time, bound time.Duration) *soakRun {
	dir := t.TempDir()
	if d := os.Getenv("CDCQ_TEST_LOG_DIR"); d != "" {
		dir = d
	}
	k := &soakRun{t: t, s: s, fleet: &workerFleet{t: t, bin: bin, dir: dir, env: env}, start: start,
		bound: bound, cyclesFor: bound - min(bound/3, 2*time.Minute), queries: map[string]string{}}
	for i := range envs {
		k.envs = append(k.envs, &soakEnv{id: fmt.Sprintf("%s-e%d", ns, i), src: sources[i%len(sources)]})
	}
	return k
}

// stopCyclesAt is when the soak stops starting cycles.
func (k *soakRun) stopCyclesAt() time.Time { return k.start.Add(k.cyclesFor) }

// run starts workers, then runs cycles cycles, inFlight at a time, while a
// worker is SIGKILLed and replaced every kill[0] to kill[1]; it stops the
// killing when the cycles are done. A cycle starts only while at most
// backlog commands the API took are not carried out yet, so that the soak
// goes at the pace of the workers rather than of the API.
func (k *soakRun) run(cycles, inFlight, backlog, workers int, kill [2]time.Duration) {
	t := k.t
	for range workers {
		k.startWorker(len(k.workers))
	}
	k.s.waitForGroupMembers(k.s.inf.Names.WorkerGroup, workers)

	var writers []*capturetest.Writer
	for _, src := range k.uniqueSources() {
		writers = append(writers, capturetest.StartWriter(t, src.pg.Config().ConnString(), "sales", 100_000, 20*time.Millisecond))
	}

	ctx, stopChaos := context.WithCancel(context.Background())
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		k.chaos(ctx, kill)
	}()

	go func() {
		for ctx.Err() == nil {
			var n int64
			if err := k.s.inf.Pool.QueryRow(ctx, "SELECT count(*) FROM handled_commands").Scan(&n); err == nil {
				k.handled.Store(n)
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	began := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), uint64(began.UnixNano())))
			for {
				if n := next.Add(1); n > int64(cycles) || t.Failed() {
					return
				}
				if !poll(time.Until(k.stopCyclesAt()), func() bool { return k.published.Load()-k.handled.Load() <= int64(backlog) }) ||
					time.Now().After(k.stopCyclesAt()) {
					return
				}
				e := k.takeEnv(rng)
				if e.cycles == 0 {
					k.mu.Lock()
					k.used++
					k.mu.Unlock()
				}
				k.cycle(e, rng)
				e.mu.Unlock()
				k.cycles.Add(1)
			}
		}()
	}
	wg.Wait()
	took := time.Since(began)
	stopChaos()
	<-chaosDone
	for _, w := range writers {
		w.Stop()
	}
	var ops int64
	for _, w := range writers {
		ops += w.Ops.Load()
	}
	alive := 0
	for _, e := range k.envs {
		if e.alive {
			alive++
		}
	}
	t.Logf("soak: %d of %d cycles in %v over %d environments (%d alive at the end), %d in flight, at most %d commands waiting; %d commands (%d carried out); %d workers SIGKILLed and replaced; %d cycles waited for their query to be caught up (%d not within 15s); %d source changes",
		k.cycles.Load(), cycles, took.Round(time.Second), len(k.envs), alive, inFlight, backlog, k.published.Load(), k.handled.Load(),
		k.kills.Load(), k.waitedLive.Load(), k.slowLive.Load(), ops)
	if t.Failed() {
		t.FailNow()
	}
	// The cycles go at the workers' pace, which the machine sets; a tenth
	// of those asked means the workers stalled.
	if done := k.cycles.Load(); done*10 < int64(cycles) {
		t.Errorf("only %d of %d cycles were done in %v: the workers stalled", done, cycles, k.cyclesFor)
	}
	if alive == 0 {
		// The checks need a live environment to prove they can see one.
		e := k.envs[0]
		e.mu.Lock()
		k.create(e, rand.New(rand.NewPCG(1, 2)))
		e.mu.Unlock()
	}
}

// unused says some environment has had no cycle yet.
func (k *soakRun) unused() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.used < len(k.envs)
}

func (k *soakRun) uniqueSources() []*soakSource {
	var out []*soakSource
	for _, e := range k.envs {
		if !slices.Contains(out, e.src) {
			out = append(out, e.src)
		}
	}
	return out
}

// takeEnv locks a random environment no other cycle works on.
func (k *soakRun) takeEnv(rng *rand.Rand) *soakEnv {
	for {
		for _, i := range rng.Perm(len(k.envs)) {
			if k.envs[i].mu.TryLock() {
				if k.fresh && k.envs[i].cycles > 0 && k.unused() {
					k.envs[i].mu.Unlock()
					continue
				}
				return k.envs[i]
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cycle deletes the environment if it is alive, creates it again (with
// createDatabaseConnection first, or by createCachedQuery alone), creates
// a query, sometimes waits for its result to be caught up, and deletes
// the environment again three times in four.
func (k *soakRun) cycle(e *soakEnv, rng *rand.Rand) {
	if e.alive {
		k.delete(e)
	}
	id := k.create(e, rng)
	if rng.IntN(10) == 0 {
		k.waitedLive.Add(1)
		if !poll(15*time.Second, func() bool { return k.caughtUp(id) }) {
			k.slowLive.Add(1)
		}
	}
	if rng.IntN(4) != 0 {
		k.delete(e)
	}
	e.cycles++
}

func (k *soakRun) create(e *soakEnv, rng *rand.Rand) string {
	t := k.t
	conn := map[string]string{"connectionString": e.src.conn, "environmentId": e.id}
	if rng.IntN(2) == 0 {
		if res := k.s.postJSON("/createDatabaseConnection", conn); res.status != http.StatusCreated {
			t.Errorf("create %s: %d %s", e.id, res.status, res.body)
			return ""
		}
		k.published.Add(1)
	}
	sql := soakQueries[rng.IntN(len(soakQueries))]
	res := k.s.postJSON("/createCachedQuery", map[string]string{
		"connectionString": e.src.conn, "environmentId": e.id, "schema": salesSchema, "sqlQuery": sql})
	if res.status != http.StatusCreated {
		t.Errorf("createCachedQuery %s: %d %s", e.id, res.status, res.body)
		return ""
	}
	k.published.Add(1)
	id, _ := res.json(t)["id"].(string)
	k.mu.Lock()
	k.queries[id] = e.id
	k.mu.Unlock()
	e.alive, e.query = true, id
	return id
}

func (k *soakRun) delete(e *soakEnv) {
	res := k.s.postJSON("/deleteDatabaseConnection", map[string]string{"connectionString": e.src.conn, "environmentId": e.id})
	if res.status != http.StatusAccepted {
		k.t.Errorf("delete %s: %d %s", e.id, res.status, res.body)
		return
	}
	k.published.Add(1)
	e.alive, e.query = false, ""
}

// caughtUp says GET /cachedQueries/{id}/result answers caught up.
func (k *soakRun) caughtUp(id string) bool {
	res, err := http.Get(k.s.apiURL + "/cachedQueries/" + id + "/result")
	if err != nil {
		return false
	}
	defer res.Body.Close()
	var body struct {
		CaughtUp bool `json:"caughtUp"`
	}
	return json.NewDecoder(res.Body).Decode(&body) == nil && body.CaughtUp
}

func (k *soakRun) startWorker(slot int) {
	k.mu.Lock()
	k.started++
	name := fmt.Sprintf("soak%d", k.started)
	k.mu.Unlock()
	w := k.fleet.start(name)
	k.mu.Lock()
	if slot == len(k.workers) {
		k.workers = append(k.workers, w)
	} else {
		k.workers[slot] = w
	}
	k.mu.Unlock()
}

// chaos SIGKILLs a random worker every kill[0] to kill[1] and starts
// another in its place at once, until ctx is done.
func (k *soakRun) chaos(ctx context.Context, kill [2]time.Duration) {
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	for {
		pause := kill[0] + time.Duration(rng.Int64N(int64(kill[1]-kill[0])+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		k.mu.Lock()
		i := rng.IntN(len(k.workers))
		w := k.workers[i]
		k.mu.Unlock()
		if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			k.t.Errorf("SIGKILL worker %s: %v", w.name, err)
			return
		}
		select {
		case <-w.exited:
		case <-time.After(30 * time.Second):
			k.t.Errorf("worker %s did not exit within 30s of SIGKILL", w.name)
			return
		}
		k.kills.Add(1)
		k.startWorker(i)
	}
}

// check runs once the killing stopped: it waits until every command was
// carried out (deleted environments DELETED, the others
// RUNNING), compares every wanted query's result with PostgreSQL, and
// looks for what deleted environments left behind; c is the real cluster
// whose Connect and Flink the system used, nil for the embedded engines.
func (k *soakRun) check(c *localcluster.Cluster) {
	t := k.t
	deadline := k.start.Add(k.bound)
	left := func() time.Duration { return max(time.Until(deadline), 10*time.Second) }
	var alive, deleted, aliveQueries, deletedQueries []string
	want := map[string]*soakEnv{}
	for _, e := range k.envs {
		switch {
		case e.alive:
			alive = append(alive, e.id)
			aliveQueries = append(aliveQueries, e.query)
			want[e.query] = e
		case e.cycles > 0:
			deleted = append(deleted, e.id)
		}
	}
	for id := range k.queries {
		if want[id] == nil {
			deletedQueries = append(deletedQueries, id)
		}
	}
	settle := time.Now()
	waitForConnectionStatus(t, k.s, deleted, "DELETED", left())
	waitForConnectionStatus(t, k.s, alive, "RUNNING", left())
	for _, id := range aliveQueries {
		e := want[id]
		rows := postgresCanonical(t, e.src.pg, k.sqlOf(id))
		if got, ok := k.s.awaitResult(id, rows, left()); !ok {
			t.Fatalf("query %s of %s (%s) is not PostgreSQL's answer:\nwant %d rows\ngot %s\nstatus %s",
				id, e.id, k.sqlOf(id), len(rows), got, k.s.queryStatus(id))
		}
	}
	t.Logf("settled %v after the cycles: %d environments deleted, %d alive, each of whose queries equals PostgreSQL (%d deleted queries)",
		time.Since(settle).Round(time.Millisecond), len(deleted), len(alive), len(deletedQueries))

	checks := []soakCheck{
		{what: "replication slots", exact: true, count: func(envs, _ []string) int { return k.slots(envs) }},
		{what: "publications", exact: true, count: func(envs, _ []string) int { return k.publications(envs) }},
		{what: "environment bindings (sealed connection strings)", exact: true, count: func(envs, _ []string) int {
			return k.jobState(`SELECT count(*) FROM environment_bindings WHERE environment_id = ANY($1)`, envs)
		}},
		{what: "sealed connection strings in connections", exact: true, count: func(envs, _ []string) int {
			return k.jobState(`SELECT count(*) FROM connections WHERE environment_id = ANY($1) AND connection_sealed <> ''`, envs)
		}},
		{what: "result rows", count: func(_, queries []string) int {
			return k.jobState(`SELECT count(*) FROM query_results WHERE query_id = ANY($1)`, queries)
		}},
		{what: "result progress not DELETED", exact: true, count: func(_, queries []string) int {
			return k.jobState(`SELECT count(*) FROM query_progress WHERE query_id = ANY($1) AND state <> 'DELETED'`, queries)
		}},
		{what: "cached queries not DELETED", exact: true, count: func(_, queries []string) int {
			return k.jobState(`SELECT count(*) FROM cached_queries WHERE query_id = ANY($1) AND status <> 'DELETED'`, queries)
		}},
		{what: "lease epochs", count: func(envs, queries []string) int {
			return k.jobState(`SELECT count(*) FROM lease_epochs WHERE id = ANY($1)`, append(slices.Clone(envs), queries...))
		}},
		{what: "result removals and schema checks", none: true, count: func(_, queries []string) int {
			return k.jobState(`SELECT (SELECT count(*) FROM query_result_removals WHERE query_id = ANY($1))
				+ (SELECT count(*) FROM query_schema_checks WHERE query_id = ANY($1))`, queries)
		}},
	}
	if c == nil {
		checks = append(checks,
			soakCheck{what: "query checkpoints", count: func(_, queries []string) int {
				return k.jobState(`SELECT count(*) FROM query_checkpoints WHERE query_id = ANY($1)`, queries)
			}},
			soakCheck{what: "embedded captures not deleted", exact: true, count: func(envs, _ []string) int {
				return k.jobState(`SELECT count(*) FROM embedded_captures WHERE environment_id = ANY($1) AND NOT deleted`, envs)
			}},
			soakCheck{what: "sealed connection strings in embedded captures", exact: true, count: func(envs, _ []string) int {
				return k.jobState(`SELECT count(*) FROM embedded_captures WHERE environment_id = ANY($1) AND connection_sealed <> ''`, envs)
			}},
			soakCheck{what: "captured table descriptions", count: func(envs, _ []string) int {
				return k.jobState(`SELECT (SELECT count(*) FROM capture_relations WHERE environment_id = ANY($1))
					+ (SELECT count(*) FROM capture_schema_changes WHERE environment_id = ANY($1))`, envs)
			}})
	} else {
		checks = append(checks,
			soakCheck{what: "Kafka Connect connectors", exact: true, count: func(envs, _ []string) int { return k.connectors(c, envs) }},
			soakCheck{what: "connector secret files", exact: true, count: func(envs, _ []string) int { return k.secretFiles(c, envs) }},
			soakCheck{what: "RUNNING Flink jobs", exact: true, count: func(_, queries []string) int { return k.flinkRunning(c, queries) }},
		)
	}
	for _, ch := range checks {
		// The check sees what a wanted environment has: it would see
		// the same left behind by a deleted one.
		wantAlive := len(alive)
		if !ch.exact {
			wantAlive = -1
		}
		if ch.none {
			wantAlive = -2
		}
		switch n := ch.count(alive, aliveQueries); {
		case wantAlive >= 0 && n != wantAlive:
			t.Errorf("%s: %d for the %d wanted environments, want %d", ch.what, n, len(alive), wantAlive)
		case wantAlive == -1 && n == 0:
			t.Errorf("%s: none for the %d wanted environments; the check cannot see any", ch.what, len(alive))
		}
		var n int
		if !poll(30*time.Second, func() bool { n = ch.count(deleted, deletedQueries); return n == 0 }) {
			t.Errorf("%s: %d left behind by the %d deleted environments (%d deleted queries)", ch.what, n, len(deleted), len(deletedQueries))
		}
	}
	if t.Failed() {
		k.explainQueries(deletedQueries)
		return
	}
	t.Logf("soak done in %v: no orphan found by %d checks", time.Since(k.start).Round(time.Second), len(checks))
}

// soakCheck counts something an environment or query has. For the wanted
// environments it must count one per environment (exact), some (neither)
// or may count none (none); for deleted ones it must count none.
type soakCheck struct {
	what        string
	exact, none bool
	count       func(envs, queries []string) int
}

// explainQueries logs what the job state holds of deleted queries whose
// results are left.
func (k *soakRun) explainQueries(queries []string) {
	rows, err := k.s.inf.Pool.Query(context.Background(), `
		SELECT q.query_id, q.environment_id, q.status, q.updated_at::text, coalesce(p.state, '-'),
		       (SELECT count(*) FROM query_results r WHERE r.query_id = q.query_id),
		       (SELECT count(*) FROM query_schema_checks c WHERE c.query_id = q.query_id),
		       (SELECT count(*) FROM query_result_removals m WHERE m.query_id = q.query_id)
		FROM cached_queries q LEFT JOIN query_progress p USING (query_id)
		WHERE q.query_id = ANY($1) AND (coalesce(p.state, 'DELETED') <> 'DELETED'
		   OR EXISTS (SELECT 1 FROM query_results r WHERE r.query_id = q.query_id)
		   OR EXISTS (SELECT 1 FROM query_schema_checks c WHERE c.query_id = q.query_id)
		   OR EXISTS (SELECT 1 FROM query_result_removals m WHERE m.query_id = q.query_id))
		ORDER BY q.environment_id`, queries)
	if err != nil {
		k.t.Log(err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var id, env, status, at, state string
		var results, checks, removals int
		if err := rows.Scan(&id, &env, &status, &at, &state, &results, &checks, &removals); err != nil {
			k.t.Log(err)
			return
		}
		k.t.Logf("deleted query %s of %s: projection %s at %s, progress %s, %d result rows, %d schema checks, %d removals",
			id, env, status, at, state, results, checks, removals)
	}
}

func (k *soakRun) sqlOf(id string) string {
	// The query's SQL as created: the projection keeps it.
	var sql string
	if err := k.s.inf.Pool.QueryRow(context.Background(), `SELECT sql_query FROM cached_queries WHERE query_id = $1`, id).Scan(&sql); err != nil {
		k.t.Fatalf("query %s: %v", id, err)
	}
	return sql
}

func (k *soakRun) jobState(sql string, arg []string) int {
	var n int
	if err := k.s.inf.Pool.QueryRow(context.Background(), sql, arg).Scan(&n); err != nil {
		k.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// slots counts the environments' replication slots on the source servers.
func (k *soakRun) slots(envs []string) int {
	slots := make([]string, len(envs))
	for i, env := range envs {
		slots[i] = names.SlotName(env)
	}
	n := 0
	servers := map[string]bool{}
	for _, src := range k.uniqueSources() {
		server := fmt.Sprintf("%s:%d", src.pg.Config().Host, src.pg.Config().Port)
		if servers[server] {
			continue
		}
		servers[server] = true
		var m int
		if err := src.pg.QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots WHERE slot_name = ANY($1)`, slots).Scan(&m); err != nil {
			k.t.Fatal(err)
		}
		n += m
	}
	return n
}

// publications counts the environments' publications in every source
// database.
func (k *soakRun) publications(envs []string) int {
	pubs := make([]string, len(envs))
	for i, env := range envs {
		pubs[i] = names.PublicationName(env)
	}
	n := 0
	for _, src := range k.uniqueSources() {
		var m int
		if err := src.pg.QueryRow(context.Background(), `SELECT count(*) FROM pg_publication WHERE pubname = ANY($1)`, pubs).Scan(&m); err != nil {
			k.t.Fatal(err)
		}
		n += m
	}
	return n
}

// connectors counts the environments' connectors Kafka Connect lists.
func (k *soakRun) connectors(c *localcluster.Cluster, envs []string) int {
	var listed []string
	if err := json.Unmarshal([]byte(connectGet(k.t, c, "/connectors")), &listed); err != nil {
		k.t.Fatal(err)
	}
	n := 0
	for _, env := range envs {
		if slices.Contains(listed, names.ConnectorName(env)) {
			n++
		}
	}
	return n
}

// secretFiles counts the environments' connector password files.
func (k *soakRun) secretFiles(c *localcluster.Cluster, envs []string) int {
	n := 0
	for _, env := range envs {
		if _, err := os.Stat(secretsPath(c.ConnectSecretsDir(), names.ConnectorName(env))); err == nil {
			n++
		}
	}
	return n
}

// flinkRunning counts the queries with a RUNNING Flink job.
func (k *soakRun) flinkRunning(c *localcluster.Cluster, queries []string) int {
	jobs := flinkJobs(k.t)
	n := 0
	for _, id := range queries {
		k.mu.Lock()
		env := k.queries[id]
		k.mu.Unlock()
		if slices.Contains(jobs[names.PipelineName(env, id)], "RUNNING") {
			n++
		}
	}
	return n
}
