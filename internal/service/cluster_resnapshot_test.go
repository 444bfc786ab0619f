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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/clustertest"
	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/localcluster"
)

const resnapshotSchema = `datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

model Item {
  id     Int      @id
  grp    Int
  amount Decimal? @db.Decimal(12, 2)
  note   String?

  @@map("items")
}

model Note {
  id   Int     @id
  body String?

  @@map("notes")
}
`

// resnapshotRows is the size of the big table: Debezium snapshots about
// 20,000 rows/s on this machine, so its snapshot takes seconds.
const resnapshotRows = 200_000

// resnapshotQueries are kept by the embedded engine over Debezium's
// topics: the first from before the kill (it follows the topics live), the
// second created once the writer stopped (it rebuilds from the topics'
// history in one go).
var resnapshotQueries = []string{
	`SELECT grp, count(*) AS n, sum(amount) AS total FROM items GROUP BY grp`,
	`SELECT grp, count(amount) AS priced, sum(amount) AS total, count(*) AS n FROM items GROUP BY grp`,
}

// Debezium's task killed (SIGKILL of its Kafka Connect worker) in the
// middle of its initial snapshot and started again, while a writer
// inserts, updates and deletes rows, deleting rows the first snapshot had
// already published. The test records what Debezium leaves on the topic
// (it snapshots again from a new position and streams from there, so rows
// deleted between the two snapshots keep the first snapshot's record and
// never get a delete) and checks that the embedded engine's results over
// those topics equal PostgreSQL's.
//
// The worker is one of the test's own, in a Connect group with topics of
// its own on the shared Kafka, so that the kill does not touch the
// cluster's worker, which other tests use.
func TestClusterDebeziumSnapshotKilledAndRestarted(t *testing.T) {
	c := clustertest.Shared(t)
	ctx := context.Background()
	jars, err := localcluster.SharedJarDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	worker, err := localcluster.NewConnectWorker(localcluster.ConnectWorkerConfig{
		Dir: dir, JarDir: jars, KafkaBrokers: c.KafkaBrokers(), GroupID: "cdcq-test-" + uniqueEnv("connect"),
		FastStartup: true, DieWithParent: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	startWorker := func() {
		t.Helper()
		t0 := time.Now()
		sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		if err := worker.Start(sctx); err != nil {
			t.Fatalf("start the test's Connect worker: %v", err)
		}
		t.Logf("Connect worker answers at %s after %s", worker.URL(), time.Since(t0).Round(time.Millisecond))
	}
	startWorker()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(worker.LogFile())
			t.Logf("end of the Connect worker's log (%s):\n%s", worker.LogFile(), tail(string(b), 40))
		}
		if err := worker.Stop(); err != nil {
			t.Errorf("stop the test's Connect worker: %v", err)
		}
	})

	src, srcConn := sourceDatabase(t)
	t0 := time.Now()
	if _, err := srcConn.Exec(ctx, fmt.Sprintf(`
		CREATE TABLE items (id int PRIMARY KEY, grp int NOT NULL, amount numeric(12,2), note text);
		INSERT INTO items SELECT g, g %% 40, CASE WHEN g %% 7 = 0 THEN NULL ELSE (g %% 1000) * 1.25 END, md5(g::text)
		  FROM generate_series(1, %d) g;
		CREATE TABLE notes (id int PRIMARY KEY, body text);
		INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 1000) g;
		ANALYZE items, notes`, resnapshotRows)); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows in items, 1,000 in notes (%s)", resnapshotRows, time.Since(t0).Round(time.Millisecond))

	// Debezium's capture (on the test's worker) and the embedded query
	// engine.
	cfg := config.Config{KafkaBrokers: strings.Split(c.KafkaBrokers(), ","), KafkaNamespace: uniqueEnv("sys"), ConnectURL: worker.URL(),
		ConnectSecretsDir: worker.SecretsDir()}
	s := startSystemOn(t, cfg, func(inf *Infra, cfg config.Config, logger *slog.Logger) []WorkerDeps {
		deps, err := Engines(cfg, inf, logger)
		if err != nil {
			t.Fatal(err)
		}
		return []WorkerDeps{deps}
	})
	env := uniqueEnv("rsnap")
	topic := env + ".public.items"
	follower := followChanges(t, c.KafkaBrokers(), topic, env+".public.notes")

	writer := startResnapshotWriter(t, src)
	conn := map[string]string{"connectionString": src, "environmentId": env}
	if res := s.postJSON("/createDatabaseConnection", conn); res.status != http.StatusCreated {
		t.Fatalf("createDatabaseConnection: %d %s", res.status, res.body)
	}
	s.deleteOnCleanup(src, env)
	ids := []string{createResnapshotQuery(t, s, src, env, resnapshotQueries[0])}

	// Kill the worker once a fifth of the first snapshot is on the topic.
	waitFor(t, 3*time.Minute, "a fifth of the first snapshot on "+topic, func() bool {
		return endOffsetOf(t, s, topic) >= resnapshotRows/5
	})
	if err := worker.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := endOffsetOf(t, s, topic)
	t.Logf("worker killed (SIGKILL) with %d records on %s (writer: %s)", killedAt, topic, writer.progress())
	waitFor(t, time.Minute, "the records written before the kill", func() bool { return int64(follower.count(topic)) >= killedAt })
	if follower.sawLast(topic) {
		t.Fatalf("the first snapshot of items ended before the kill; make the table larger")
	}
	// While the worker is down, the writer deletes more of the rows the
	// first snapshot published.
	deleted := writer.lowDeleted.Load()
	waitFor(t, time.Minute, "the writer to delete published rows", func() bool {
		return writer.lowDeleted.Load() >= deleted+200
	})
	startWorker()

	// The second snapshot, then streaming: wait until Debezium streams.
	waitFor(t, 5*time.Minute, "Debezium to stream after its second snapshot", func() bool {
		return follower.streamed(topic) > 0
	})
	writer.stop(t)
	t.Logf("writer stopped: %s", writer.progress())
	// A last change, to know when the topic holds everything the writer did.
	if _, err := srcConn.Exec(ctx, `INSERT INTO items VALUES (-1, 0, 1.00, 'end')`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "the last change on "+topic, func() bool { return follower.has(topic, -1) })

	report := follower.report(t, topic, sourceIDs(t, srcConn, "items"))
	report.log(t, topic)
	logDebeziumDecisions(t, worker.LogFile())
	if len(report.snapshots) < 2 {
		t.Fatalf("Debezium did not snapshot items again after the kill: %d snapshot(s) on the topic", len(report.snapshots))
	}
	if report.ghosts == 0 {
		t.Fatalf("no key of %s is left without its delete; the scenario did not happen (no delete between the two snapshots?)", topic)
	}
	if report.missing != 0 {
		t.Errorf("%d rows of items have no record, or a delete as their last record", report.missing)
	}

	ids = append(ids, createResnapshotQuery(t, s, src, env, resnapshotQueries[1]))
	for i, id := range ids {
		want := postgresCanonical(t, srcConn, resnapshotQueries[i])
		if got, ok := s.awaitResult(id, want, 3*time.Minute); !ok {
			t.Errorf("query %d (%s) is not PostgreSQL's answer within 3 min\nwant:\n%s\nlast seen:\n%s\nstatus: %s",
				i, resnapshotQueries[i], strings.Join(want, "\n"), got, s.queryStatus(id))
		}
	}
}

// logDebeziumDecisions shows what the Connect worker's log says about the
// connector's offsets and snapshots, across both runs of the worker.
func logDebeziumDecisions(t *testing.T, logFile string) {
	t.Helper()
	for i, path := range []string{logFile + ".1", logFile} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Logf("Connect worker log %s: %v", path, err)
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			for _, marker := range []string{"previous offset", "No previous offset", "will be snapshotted", "Read xlogStart",
				"Snapshot ended", "Snapshot completed", "Processing messages", "Creating replication slot", "already exists"} {
				if strings.Contains(line, marker) {
					if j := strings.Index(line, "] "); j > 0 {
						line = line[j+2:]
					}
					t.Logf("  Connect worker run %d: %.700s", i+1, line)
					break
				}
			}
		}
	}
}

// endOffsetOf is the end offset of a one-partition topic; 0 for a topic not
// created yet.
func endOffsetOf(t *testing.T, s *system, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.inf.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil || ends.Error() != nil {
		return 0
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

func createResnapshotQuery(t *testing.T, s *system, src, env, sql string) string {
	t.Helper()
	res := s.postJSON("/createCachedQuery", map[string]string{
		"connectionString": src, "environmentId": env, "schema": resnapshotSchema, "sqlQuery": sql})
	if res.status != http.StatusCreated {
		t.Fatalf("create %s: %d %s", sql, res.status, res.body)
	}
	return res.json(t)["id"].(string)
}

func sourceIDs(t *testing.T, conn *pgx.Conn, table string) map[int64]bool {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT id FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int64]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// resnapshotWriter inserts, updates and deletes rows of items in small
// transactions until stopped. Among its deletes are the rows with the
// lowest ids, which a snapshot reads (and publishes) first.
type resnapshotWriter struct {
	done                      chan struct{}
	quit                      chan struct{}
	err                       error
	txs, ops                  atomic.Int64
	inserts, updates, deletes atomic.Int64
	lowDeleted                atomic.Int64
}

func startResnapshotWriter(t *testing.T, src string) *resnapshotWriter {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), strings.Replace(src, ":"+knownPassword+"@", "@", 1))
	if err != nil {
		t.Fatal(err)
	}
	w := &resnapshotWriter{done: make(chan struct{}), quit: make(chan struct{})}
	seed := uint64(time.Now().UnixNano())
	t.Logf("writer seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 14))
	low := rng.Perm(20_000) // ids 1..20,000 in random order
	next := resnapshotRows
	go func() {
		defer close(w.done)
		defer conn.Close(context.Background())
		ctx := context.Background()
		amount := func() any {
			if rng.IntN(5) == 0 {
				return nil
			}
			return fmt.Sprintf("%d.%02d", rng.IntN(2000), rng.IntN(100))
		}
		for {
			select {
			case <-w.quit:
				return
			default:
			}
			tx, err := conn.Begin(ctx)
			if err != nil {
				w.err = err
				return
			}
			for range 1 + rng.IntN(4) {
				var sql string
				var args []any
				switch k := rng.IntN(10); {
				case k < 3:
					next++
					sql, args = `INSERT INTO items VALUES ($1, $2, $3::numeric, 'new')`, []any{next, rng.IntN(40), amount()}
					w.inserts.Add(1)
				case k < 6:
					sql, args = `UPDATE items SET grp = $2, amount = $3::numeric WHERE id = $1`, []any{1 + rng.IntN(next), rng.IntN(40), amount()}
					w.updates.Add(1)
				case k < 8 && len(low) > 0:
					sql, args = `DELETE FROM items WHERE id = $1`, []any{1 + low[0]}
					low = low[1:]
					w.deletes.Add(1)
					w.lowDeleted.Add(1)
				default:
					sql, args = `DELETE FROM items WHERE id = $1`, []any{1 + rng.IntN(next)}
					w.deletes.Add(1)
				}
				if _, err := tx.Exec(ctx, sql, args...); err != nil {
					w.err = fmt.Errorf("%s %v: %w", sql, args, err)
					_ = tx.Rollback(ctx)
					return
				}
				w.ops.Add(1)
			}
			if err := tx.Commit(ctx); err != nil {
				w.err = err
				return
			}
			w.txs.Add(1)
			// Pace the writer (about 200 transactions/s at most), leaving
			// the cores to Debezium.
			time.Sleep(5 * time.Millisecond)
		}
	}()
	t.Cleanup(func() {
		select {
		case <-w.quit:
		default:
			close(w.quit)
		}
		<-w.done
	})
	return w
}

func (w *resnapshotWriter) stop(t *testing.T) {
	t.Helper()
	close(w.quit)
	<-w.done
	if w.err != nil {
		t.Fatalf("writer: %v", w.err)
	}
}

func (w *resnapshotWriter) progress() string {
	return fmt.Sprintf("%d transactions, %d inserts, %d updates, %d deletes (%d of the lowest ids)",
		w.txs.Load(), w.inserts.Load(), w.updates.Load(), w.deletes.Load(), w.lowDeleted.Load())
}

// changeRecord is what the test keeps of a change record.
type changeRecord struct {
	id       int64
	op       byte // 'c', 'u', 'd', 'r', 't'; 0 for a tombstone
	snapshot string
	lsn      int64
	txID     int64
	tsMs     int64
}

// changeFollower reads change topics from the start as they grow.
type changeFollower struct {
	mu   sync.Mutex
	recs map[string][]changeRecord
	err  error
}

func followChanges(t *testing.T, brokers string, topics ...string) *changeFollower {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(250*time.Millisecond), kgo.MetadataMaxAge(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	f := &changeFollower{recs: map[string][]changeRecord{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			var batch []*kgo.Record
			fs.EachRecord(func(r *kgo.Record) { batch = append(batch, r) })
			f.mu.Lock()
			for _, r := range batch {
				cr, err := parseChangeRecord(r)
				if err != nil && f.err == nil {
					f.err = fmt.Errorf("%s offset %d: %w", r.Topic, r.Offset, err)
				}
				f.recs[r.Topic] = append(f.recs[r.Topic], cr)
			}
			f.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cl.Close()
	})
	return f
}

func parseChangeRecord(r *kgo.Record) (changeRecord, error) {
	var key struct{ ID int64 }
	if err := json.Unmarshal(r.Key, &key); err != nil {
		return changeRecord{}, fmt.Errorf("key %s: %w", r.Key, err)
	}
	cr := changeRecord{id: key.ID}
	if r.Value == nil {
		return cr, nil
	}
	var v struct {
		Op     string
		TsMs   int64 `json:"ts_ms"`
		Source struct {
			Snapshot string
			Lsn      int64
			TxID     int64 `json:"txId"`
		}
	}
	if err := json.Unmarshal(r.Value, &v); err != nil || len(v.Op) != 1 {
		return cr, fmt.Errorf("value %.200s: %v", r.Value, err)
	}
	cr.op, cr.snapshot, cr.lsn, cr.txID, cr.tsMs = v.Op[0], v.Source.Snapshot, v.Source.Lsn, v.Source.TxID, v.TsMs
	return cr, nil
}

func (f *changeFollower) count(topic string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.recs[topic])
}

func (f *changeFollower) sawLast(topic string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.recs[topic], func(r changeRecord) bool {
		return r.op == 'r' && (r.snapshot == "last" || r.snapshot == "last_in_data_collection")
	})
}

// streamed counts the records that are neither snapshot records nor
// tombstones.
func (f *changeFollower) streamed(topic string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.recs[topic] {
		if r.op != 0 && r.op != 'r' {
			n++
		}
	}
	return n
}

func (f *changeFollower) has(topic string, id int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.recs[topic], func(r changeRecord) bool { return r.id == id && r.op != 0 })
}

// snapshotRun is one snapshot of a table as its records show it: the
// records with one source.lsn.
type snapshotRun struct {
	lsn, txID    int64
	records      int
	first, last  string // markers of its first and last record
	markers      map[string]int
	startedAt    int // offset of its first record
	endedAt      int // offset of its last record
	tsFrom, tsTo int64
}

// resnapshotReport is what a topic shows after the kill and the restart.
type resnapshotReport struct {
	records   int
	snapshots []*snapshotRun
	streamed  int
	// streamedBetween counts streamed records with an lsn between the
	// first and the last snapshot's: changes made between the two
	// positions, or (a few) changes of transactions in flight at the last
	// snapshot's start that committed after it.
	streamedBetween int
	firstStreamLSN  int64
	// ghosts are keys whose last record is not a delete but whose row is
	// not in the table; missing are rows of the table whose key has no
	// record, or a delete last.
	ghosts, missing int
	ghostsFirstOnly int // ghosts whose last record is of the first snapshot
	otherTopics     map[string]string
}

func (f *changeFollower) report(t *testing.T, topic string, rows map[int64]bool) resnapshotReport {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		t.Fatal(f.err)
	}
	recs := f.recs[topic]
	rep := resnapshotReport{records: len(recs), otherTopics: map[string]string{}}
	byLSN := map[int64]*snapshotRun{}
	last := map[int64]changeRecord{}
	for i, r := range recs {
		if r.op != 0 {
			last[r.id] = r
		}
		if r.op != 'r' {
			if r.op != 0 {
				rep.streamed++
				if rep.firstStreamLSN == 0 {
					rep.firstStreamLSN = r.lsn
				}
			}
			continue
		}
		run := byLSN[r.lsn]
		if run == nil {
			run = &snapshotRun{lsn: r.lsn, txID: r.txID, first: r.snapshot, markers: map[string]int{}, startedAt: i, tsFrom: r.tsMs}
			byLSN[r.lsn] = run
			rep.snapshots = append(rep.snapshots, run)
		}
		run.records++
		run.markers[r.snapshot]++
		run.last, run.endedAt, run.tsTo = r.snapshot, i, r.tsMs
	}
	if n := len(rep.snapshots); n > 1 {
		from, to := rep.snapshots[0].lsn, rep.snapshots[n-1].lsn
		for _, r := range recs {
			if r.op != 0 && r.op != 'r' && r.lsn > from && r.lsn < to {
				rep.streamedBetween++
			}
		}
	}
	for id, r := range last {
		if r.op != 'd' && !rows[id] {
			rep.ghosts++
			if len(rep.snapshots) > 0 && r.op == 'r' && r.lsn == rep.snapshots[0].lsn {
				rep.ghostsFirstOnly++
			}
		}
	}
	for id := range rows {
		if r, ok := last[id]; !ok || r.op == 'd' {
			rep.missing++
		}
	}
	for other, rs := range f.recs {
		if other == topic {
			continue
		}
		var markers []string
		lsns := map[int64]bool{}
		for _, r := range rs {
			if r.op == 'r' {
				lsns[r.lsn] = true
				if r.snapshot != "true" {
					markers = append(markers, r.snapshot)
				}
			}
		}
		rep.otherTopics[other] = fmt.Sprintf("%d records, %d snapshot lsn(s), markers other than true in order: %v", len(rs), len(lsns), markers)
	}
	return rep
}

func (r resnapshotReport) log(t *testing.T, topic string) {
	t.Helper()
	t.Logf("%s: %d records", topic, r.records)
	for i, s := range r.snapshots {
		t.Logf("  snapshot %d: lsn %d, txId %d, %d records (offsets %d-%d, over %d ms), first marker %q, last %q, markers %v",
			i+1, s.lsn, s.txID, s.records, s.startedAt, s.endedAt, s.tsTo-s.tsFrom, s.first, s.last, s.markers)
	}
	t.Logf("  streamed: %d records, the first at lsn %d; %d streamed records have an lsn between the first and the last snapshot's",
		r.streamed, r.firstStreamLSN, r.streamedBetween)
	t.Logf("  keys whose last record is not a delete but whose row is gone: %d (%d of them last written by the first snapshot); rows without a live record: %d",
		r.ghosts, r.ghostsFirstOnly, r.missing)
	for other, s := range r.otherTopics {
		t.Logf("  %s: %s", other, s)
	}
}
