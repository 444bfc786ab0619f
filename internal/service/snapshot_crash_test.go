package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/clustertest"
	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/names"
)

// salesSchema and salesQuery (cluster_bench_test.go): one table, 100
// groups here, SUM over a nullable column.

// TestClusterKilledDuringSnapshotConverges: a `cdcq worker` process is killed with SIGKILL again and again during the
// embedded capture's initial snapshot of a 300,000-row table (as soon as
// the snapshot is under way, once rows were copied, late in the copy) and
// once in the first seconds of streaming, while a writer inserts, updates
// and deletes rows and rows the abandoned snapshots published are deleted
// while no capture runs. After the last restart the change topic holds
// exactly the source's rows, the cached query equals PostgreSQL, one slot
// exists, and no answer of GET /cachedQueries/{id}/result said caughtUp
// while the capture's snapshot was incomplete.
func TestClusterKilledDuringSnapshotConverges(t *testing.T) {
	// Kafka is the real cluster's: a SIGKILLed worker stays in the
	// consumer groups until its session times out, which kfake does not
	// model the way Kafka does.
	c := clustertest.Shared(t)
	bin := buildCdcq(t)
	ns := uniqueEnv("ks")
	s := startSystemOn(t, config.Config{KafkaBrokers: strings.Split(c.KafkaBrokers(), ","), KafkaNamespace: ns},
		func(*Infra, config.Config, *slog.Logger) []WorkerDeps { return nil })
	t.Cleanup(func() { deleteNamespaceTopics(t, s.inf.Brokers, ns) })
	fleet := &workerFleet{t: t, bin: bin, dir: t.TempDir(), env: workerEnv(s, ns)}
	if dir := os.Getenv("CDCQ_TEST_LOG_DIR"); dir != "" {
		fleet.dir = dir
	}
	src, srcConn := sourceDatabase(t)
	ctx := context.Background()
	const rows = 300_000
	if _, err := srcConn.Exec(ctx, fmt.Sprintf(`CREATE TABLE sales (id int PRIMARY KEY, grp int NOT NULL, amount numeric(12,2));
		INSERT INTO sales SELECT g, g %% 100, CASE WHEN g %% 9 = 0 THEN NULL ELSE (g %% 1000) * 1.25 END FROM generate_series(1, %d) g;
		ANALYZE sales`, rows)); err != nil {
		t.Fatal(err)
	}
	// The workers reach the source through a proxy that passes 4 MB/s, so
	// that a snapshot lasts seconds (as a bigger table over a network
	// would) and the kills land in it.
	proxy := startThrottledProxy(t, srcConn.PgConn().Conn().RemoteAddr().String(), 4<<20)
	src = proxy.url(t, src)
	env := uniqueEnv("kill")
	t.Cleanup(func() { deleteNamespaceTopics(t, s.inf.Brokers, env) })
	res := s.postJSON("/createCachedQuery", map[string]string{
		"connectionString": src, "environmentId": env, "schema": salesSchema, "sqlQuery": salesQuery})
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	queryID := res.json(t)["id"].(string)

	jobState, err := pgx.Connect(ctx, s.cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jobState.Close(context.Background()) })
	var stateMu sync.Mutex
	// captureState is the capture's row as the worker running it last
	// wrote it; phase is "" unless that worker is pid (0: any).
	captureState := func(pid int) (phase string, copied, estimate int64, done bool) {
		stateMu.Lock()
		defer stateMu.Unlock()
		var lsn *int64
		var c, e *int64
		var worker string
		err := jobState.QueryRow(ctx, `SELECT phase, worker, (snapshot->>'rowsCopied')::bigint, (snapshot->>'rowsEstimate')::bigint, snapshot_lsn
			FROM embedded_captures WHERE environment_id = $1`, env).Scan(&phase, &worker, &c, &e, &lsn)
		if err != nil {
			return "", 0, 0, false
		}
		if pid != 0 && !strings.HasSuffix(worker, fmt.Sprintf(":%d", pid)) {
			return "", 0, 0, lsn != nil
		}
		if c != nil {
			copied = *c
		}
		if e != nil {
			estimate = *e
		}
		return phase, copied, estimate, lsn != nil
	}

	// Nothing may be served as caught up while the snapshot is incomplete.
	watch := watchResult(t, s, queryID, func() bool { _, _, _, done := captureState(0); return done })
	w := startSalesWriter(t, srcConn.Config().ConnString(), rows)

	kills := []struct {
		name  string
		ready func(phase string, copied, estimate int64, done bool) bool
	}{
		{"as soon as the snapshot shows", func(p string, c, _ int64, d bool) bool { return p == "snapshot" || p == "streaming" }},
		{"once rows were copied", func(p string, c, _ int64, d bool) bool { return (p == "snapshot" && c > 0) || p == "streaming" }},
		{"late in the copy", func(p string, c, e int64, d bool) bool {
			return (p == "snapshot" && e > 0 && c*10 >= e*6) || p == "streaming"
		}},
		{"early in streaming", func(p string, _, _ int64, d bool) bool { return p == "streaming" }},
	}
	for i, k := range kills {
		wp := fleet.start(fmt.Sprintf("w%d", i+1))
		var at string
		waitFor(t, 2*time.Minute, "worker "+wp.name+": "+k.name, func() bool {
			phase, copied, estimate, done := captureState(wp.cmd.Process.Pid)
			at = fmt.Sprintf("phase %s, %d of %d rows copied, snapshot complete %v", phase, copied, estimate, done)
			return k.ready(phase, copied, estimate, done)
		})
		if k.name == "early in streaming" {
			time.Sleep(time.Second)
		}
		wp.signal(syscall.SIGKILL)
		wp.waitExit(30 * time.Second)
		t.Logf("killed %s %s (%s)", wp.name, k.name, at)
		// Rows the killed snapshot may have published go away while no
		// capture runs.
		if _, err := srcConn.Exec(ctx, `DELETE FROM sales WHERE id IN (SELECT id FROM sales WHERE id % 97 = 0 ORDER BY id LIMIT 300);
			UPDATE sales SET amount = NULL WHERE id IN (SELECT id FROM sales WHERE id % 89 = 0 AND amount IS NOT NULL ORDER BY id LIMIT 100)`); err != nil {
			t.Fatal(err)
		}
	}
	fleet.start("last")
	s.deleteOnCleanup(src, env)
	waitFor(t, 2*time.Minute, "streaming after the last restart", func() bool {
		phase, _, _, done := captureState(0)
		return done && phase == "streaming"
	})
	time.Sleep(2 * time.Second)
	w.stop()
	t.Logf("writer: %d changes", w.ops.Load())

	want := postgresCanonical(t, srcConn, salesQuery)
	if got, ok := s.awaitResult(queryID, want, 2*time.Minute); !ok {
		t.Fatalf("the result is not PostgreSQL's:\nwant %d groups\ngot %s", len(want), got)
	}
	served, withProgress, early := watch.stop()
	if early != "" {
		t.Fatalf("served as caught up before the snapshot was complete: %s", early)
	}
	if withProgress == 0 {
		t.Fatalf("no answer of %d during the snapshots showed its progress", served)
	}
	topic := names.TopicPrefix(env) + ".public.sales"
	source := salesRows(t, srcConn)
	var diff string
	waitFor(t, time.Minute, "topic equals the source", func() bool {
		diff = diffSalesRows(source, topicRows(t, s.inf.Brokers, topic))
		return diff == ""
	})
	var slots int
	if err := srcConn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, names.SlotName(env)).Scan(&slots); err != nil || slots != 1 {
		t.Fatalf("%d slots (%v)", slots, err)
	}
	t.Logf("%d source rows, topic equal; %d result answers watched, %d with the snapshot's progress", len(source), served, withProgress)
}

// resultWatch polls a query's result and remembers an answer that said
// caughtUp while the capture's snapshot was incomplete (before and after
// the request).
type resultWatch struct {
	// stop returns how many answers were read, how many of them showed
	// the snapshot's progress, and the first early one.
	stop func() (answers, withProgress int, early string)
}

func watchResult(t *testing.T, s *system, queryID string, snapshotDone func() bool) *resultWatch {
	ctx, cancel := context.WithCancel(context.Background())
	var answers, progress atomic.Int64
	var early atomic.Value
	early.Store("")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			before := snapshotDone()
			res, err := http.Get(s.apiURL + "/cachedQueries/" + queryID + "/result")
			if err == nil {
				var body struct {
					CaughtUp  bool              `json:"caughtUp"`
					State     string            `json:"state"`
					Rows      []json.RawMessage `json:"rows"`
					Hydration *struct {
						SnapshotDone bool  `json:"snapshotDone"`
						RowsCaptured int64 `json:"rowsCaptured"`
						RowsEstimate int64 `json:"rowsEstimate"`
					} `json:"hydration"`
				}
				_ = json.NewDecoder(res.Body).Decode(&body)
				res.Body.Close()
				answers.Add(1)
				after := snapshotDone()
				if body.CaughtUp && !before && !after && early.Load() == "" {
					early.Store(fmt.Sprintf("state %s with %d rows", body.State, len(body.Rows)))
				}
				if h := body.Hydration; h != nil && !before && !after && !h.SnapshotDone && h.RowsCaptured > 0 && h.RowsEstimate > 0 {
					progress.Add(1)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	w := &resultWatch{}
	var once sync.Once
	w.stop = func() (int, int, string) {
		once.Do(func() { cancel(); wg.Wait() })
		return int(answers.Load()), int(progress.Load()), early.Load().(string)
	}
	t.Cleanup(func() { w.stop() })
	return w
}

// salesWriter inserts, updates and deletes rows of sales until stopped.
type salesWriter struct {
	ops  atomic.Int64
	stop func()
}

func startSalesWriter(t *testing.T, dsn string, rows int) *salesWriter {
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &salesWriter{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer conn.Close(context.Background())
		rng := rand.New(rand.NewPCG(7, uint64(rows)))
		next := rows + 1
		// Statements run to completion, not under ctx: one cancelled by
		// closing the connection may still commit after stop.
		bg := context.Background()
		for ctx.Err() == nil {
			var err error
			switch id := 1 + rng.IntN(next-1); rng.IntN(3) {
			case 0:
				_, err = conn.Exec(bg, `INSERT INTO sales VALUES ($1, $2, $3)`, next, next%100, float64(next%1000)/4)
				next++
			case 1:
				_, err = conn.Exec(bg, `UPDATE sales SET amount = amount + 1, grp = (grp + 1) % 100 WHERE id = $1`, id)
			default:
				_, err = conn.Exec(bg, `DELETE FROM sales WHERE id = $1`, id)
			}
			if err == nil {
				w.ops.Add(1)
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	w.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(w.stop)
	return w
}

// salesRows reads sales as id -> "grp|amount".
func salesRows(t *testing.T, conn *pgx.Conn) map[string]string {
	rs, err := conn.Query(context.Background(), `SELECT id::text, grp::text, coalesce(amount::text, 'NULL') FROM sales`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for rs.Next() {
		var id, grp, amount string
		if err := rs.Scan(&id, &grp, &amount); err != nil {
			t.Fatal(err)
		}
		out[id] = grp + "|" + amount
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// topicRows replays a change topic of sales to its end: the keys whose
// last record is not a delete, with their last value.
func topicRows(t *testing.T, brokers []string, topic string) map[string]string {
	out := map[string]string{}
	for _, r := range s2records(t, brokers, topic) {
		if r.Key == nil {
			continue
		}
		var key struct {
			ID json.Number `json:"id"`
		}
		if err := json.Unmarshal(r.Key, &key); err != nil {
			t.Fatalf("key %s: %v", r.Key, err)
		}
		if r.Value == nil {
			delete(out, key.ID.String())
			continue
		}
		var env struct {
			Op    string `json:"op"`
			After *struct {
				Grp    json.Number `json:"grp"`
				Amount *string     `json:"amount"`
			} `json:"after"`
		}
		if err := json.Unmarshal(r.Value, &env); err != nil {
			t.Fatalf("value %s: %v", r.Value, err)
		}
		if env.Op == "d" || env.After == nil {
			delete(out, key.ID.String())
			continue
		}
		amount := "NULL"
		if env.After.Amount != nil {
			amount = *env.After.Amount
		}
		out[key.ID.String()] = env.After.Grp.String() + "|" + amount
	}
	return out
}

// s2records reads a topic from its start to its current end.
func s2records(t *testing.T, brokers []string, topic string) []*kgo.Record {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	left := 0
	end := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		end[o.Partition] = o.Offset
		if o.Offset > 0 {
			left++
		}
	})
	var out []*kgo.Record
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %d records, %d partitions not read to %v", topic, len(out), left, end)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < end[r.Partition] {
				out = append(out, r)
				if r.Offset == end[r.Partition]-1 {
					left--
				}
			}
		})
	}
	return out
}

// diffSalesRows describes how got differs from want ("" when equal).
func diffSalesRows(want, got map[string]string) string {
	var missing, ghost, wrong []string
	for id, v := range want {
		switch g, ok := got[id]; {
		case !ok:
			missing = append(missing, id)
		case g != v:
			wrong = append(wrong, id+": "+g+" want "+v)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			ghost = append(ghost, id)
		}
	}
	if len(missing)+len(ghost)+len(wrong) == 0 {
		return ""
	}
	for _, s := range [][]string{missing, ghost, wrong} {
		sort.Strings(s)
	}
	first := func(s []string) string { return strings.Join(s[:min(len(s), 5)], ", ") }
	return fmt.Sprintf("%d missing (%s), %d ghost (%s), %d wrong (%s)", len(missing), first(missing),
		len(ghost), first(ghost), len(wrong), first(wrong))
}

// throttledProxy forwards TCP connections to a server, passing at most
// rate bytes per second from the server to each client.
type throttledProxy struct {
	ln net.Listener
}

func startThrottledProxy(t *testing.T, target string, rate int) *throttledProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &throttledProxy{ln: ln}
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			open[c] = true
		} else {
			delete(open, c)
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c, true)
			go func() {
				defer track(c, false)
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				go func() {
					_, _ = io.Copy(u, c)
					_ = u.(*net.TCPConn).CloseWrite()
				}()
				buf := make([]byte, 16<<10)
				start, sent := time.Now(), 0
				for {
					n, err := u.Read(buf)
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
						sent += n
						if ahead := time.Duration(float64(sent)/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
							time.Sleep(ahead)
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range open {
			c.Close()
		}
	})
	return p
}

// url is connection string dsn with its host and port replaced by the
// proxy's.
func (p *throttledProxy) url(t *testing.T, dsn string) string {
	u, err := neturl.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}
