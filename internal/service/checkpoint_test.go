package service

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/cdcq/cdcq/internal/config"
)

// writers are several workloads on one source, each on a connection and
// with order ids of its own, run at the same time; one statement per
// transaction, so that they never deadlock on the customers they share.
func writers(t *testing.T, src string, n int) []*workload {
	t.Helper()
	var out []*workload
	for i := range n {
		conn, err := pgx.Connect(context.Background(), src)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		seed := uint64(time.Now().UnixNano())
		t.Logf("writer %d: seed %d", i, seed)
		base := (i + 1) * 1_000_000
		out = append(out, &workload{rng: rand.New(rand.NewPCG(seed, uint64(i))), conn: conn, base: base, nextOrder: base})
	}
	return out
}

// runAll runs txs transactions on every writer at once.
func runAll(t *testing.T, ws []*workload, txs int) {
	t.Helper()
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() {
			// run fails the test from this goroutine only through
			// t.Fatal's Goexit, which ends this goroutine: fine for wg.
			w.run(t, txs, 1)
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// changeTopics are the environment's change topics of the shop tables.
func shopTopics(env string) []string {
	return []string{env + ".public.orders", env + ".public.customers"}
}

// topicOffsets lists the topics' end offsets (start when start is set),
// summed over partitions, per topic.
func (s *system) topicOffsets(t *testing.T, topics []string, start bool) map[string]int64 {
	t.Helper()
	cl, err := s.inf.Kafka().NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	list := adm.ListEndOffsets
	if start {
		list = adm.ListStartOffsets
	}
	listed, err := list(context.Background(), topics...)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	listed.Each(func(o kadm.ListedOffset) { out[o.Topic] += o.Offset })
	return out
}

// checkpointPositions reads the positions of the queries' checkpoints,
// summed over partitions per query; a query without one is missing.
func (s *system) checkpointPositions(t *testing.T, ids []string) map[string]map[string]int64 {
	t.Helper()
	rows, err := s.inf.Pool.Query(context.Background(), `
		SELECT c.query_id, p.key, (o.value)::bigint
		FROM query_checkpoints c, jsonb_each(c.positions) p, jsonb_each_text(p.value) o
		WHERE c.query_id = ANY($1)`, ids)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]int64{}
	for rows.Next() {
		var id, topic string
		var at int64
		if err := rows.Scan(&id, &topic, &at); err != nil {
			t.Fatal(err)
		}
		if out[id] == nil {
			out[id] = map[string]int64{}
		}
		out[id][topic] += at
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// eventsApplied is the events the query's current run applied.
func (s *system) eventsApplied(t *testing.T, id string) int64 {
	t.Helper()
	var n int64
	if err := s.inf.Pool.QueryRow(context.Background(), `SELECT events_applied FROM query_progress WHERE query_id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// createShopQueries creates the differential queries in env.
func (s *system) createShopQueries(t *testing.T, src, env string) []string {
	t.Helper()
	var ids []string
	for _, q := range differentialQueries {
		res := s.postJSON("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": env, "schema": shopSchema, "sqlQuery": q})
		if res.status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", q, res.status, res.body)
		}
		ids = append(ids, res.json(t)["id"].(string))
	}
	return ids
}

// A worker restarted while several writers change the source goes on from
// its queries' checkpoints: each restarted query reads only the records
// after its checkpoint (fewer than the topics hold), and its result ends
// equal to PostgreSQL's.
func TestEmbeddedQueryRestartsFromItsCheckpoint(t *testing.T) {
	s := startSystemWith(t, func(*Infra, config.Config, *slog.Logger) []WorkerDeps { return nil })
	s.cfg.CheckpointInterval = 300 * time.Millisecond
	stop := s.startEmbeddedWorker()
	src, srcConn, w := shopSource(t, 11)
	w.run(t, 30, 10)
	env := uniqueEnv("ckpt")
	ids := s.createShopQueries(t, src, env)
	ws := writers(t, src, 3)
	runAll(t, ws, 80)
	s.compareWithPostgres(t, srcConn, ids)

	// Every query's checkpoint reaches the topics' ends (nothing is
	// written now).
	topics := shopTopics(env)
	ends := s.topicOffsets(t, topics, false)
	waitFor(t, time.Minute, "checkpoints at the topics' ends", func() bool {
		ck := s.checkpointPositions(t, ids)
		for _, id := range ids {
			if len(ck[id]) == 0 {
				return false
			}
			for topic, at := range ck[id] { // the topics the query reads
				if at != ends[topic] {
					return false
				}
			}
		}
		return true
	})

	// More changes while the worker stops and starts again.
	var wg sync.WaitGroup
	wg.Go(func() { runAll(t, ws, 20) })
	stop()
	ck := s.checkpointPositions(t, ids) // what the restarted run reads from
	wg.Wait()
	s.startEmbeddedWorker()
	runAll(t, ws, 10)
	s.compareWithPostgres(t, srcConn, ids)

	final := s.topicOffsets(t, topics, false)
	for i, id := range ids {
		var after, history int64 // records after the checkpoint, and all
		for topic, at := range ck[id] {
			after += final[topic] - at
			history += final[topic]
		}
		applied := s.eventsApplied(t, id)
		t.Logf("query %d: the restarted run applied %d events; %d records followed its checkpoint, the topics hold %d", i, applied, after, history)
		if applied > after || applied >= history/2 {
			t.Errorf("query %d: the restarted run applied %d events, the checkpoint was followed by %d of the topics' %d records: it did not start from its checkpoint", i, applied, after, history)
		}
	}
	if n := strings.Count(s.logs.String(), "restored from its checkpoint"); n < len(ids) {
		t.Errorf("%d queries logged a restore from a checkpoint, want %d", n, len(ids))
	}
}

// A worker restarted after the broker deleted the oldest change records
// (as retention does) finds the records its queries need gone: it asks the
// capture for a new snapshot, is not LIVE until that snapshot is read, and
// its result ends equal to PostgreSQL's, including rows whose only records
// were deleted. No result the API calls caught up is a short one.
func TestEmbeddedQueryResnapshotsWhenRecordsAreGone(t *testing.T) {
	s := startSystemWith(t, func(*Infra, config.Config, *slog.Logger) []WorkerDeps { return nil })
	s.cfg.CheckpointInterval = -1 // no checkpoint covers the deleted records
	stop := s.startEmbeddedWorker()
	src, srcConn, w := shopSource(t, 13)
	w.run(t, 40, 10)
	env := uniqueEnv("retention")
	ids := s.createShopQueries(t, src, env)
	w.run(t, 80, 10)
	s.compareWithPostgres(t, srcConn, ids)
	stop()

	// Delete the older half of each change topic.
	topics := shopTopics(env)
	ends := s.topicOffsets(t, topics, false)
	cl, err := s.inf.Kafka().NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	del := kadm.Offsets{}
	for _, topic := range topics {
		del.Add(kadm.Offset{Topic: topic, Partition: 0, At: ends[topic] / 2})
	}
	resp, err := kadm.NewClient(cl).DeleteRecords(context.Background(), del)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	starts := s.topicOffsets(t, topics, true)
	for _, topic := range topics {
		if starts[topic] == 0 {
			t.Fatalf("%s still starts at 0 after DeleteRecords", topic)
		}
	}
	w.run(t, 20, 10) // the result the stopped worker left is behind now

	s.restartAndAwaitPostgres(t, srcConn, ids)
	s.compareWithPostgres(t, srcConn, ids)
	logs := s.logs.String()
	for _, want := range []string{"change records it needs are gone; requesting a new snapshot", "a new snapshot was requested; taking it"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs do not say %q", want)
		}
	}
	var pending string
	if err := s.inf.Pool.QueryRow(context.Background(), `SELECT snapshot_requested FROM embedded_captures WHERE environment_id = $1`, env).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending != "" {
		t.Errorf("the capture's snapshot request is still pending: %q", pending)
	}
}

// A query restored from a checkpoint that finds the records after it gone
// does not keep the checkpoint's rows: a table emptied while its records
// were lost has no row in the new snapshot to remove them with. The worker
// is made to restart from an older checkpoint (saved before the table was
// emptied, written back once it was) with every record since deleted; the
// caught-up result is PostgreSQL's, with no order left.
func TestEmbeddedQueryResnapshotsAfterACheckpointWhenRecordsAreGone(t *testing.T) {
	s := startSystemWith(t, func(*Infra, config.Config, *slog.Logger) []WorkerDeps { return nil })
	s.cfg.CheckpointInterval = 300 * time.Millisecond
	stop := s.startEmbeddedWorker()
	src, srcConn, w := shopSource(t, 17)
	w.run(t, 40, 10)
	env := uniqueEnv("ckptgone")
	ids := s.createShopQueries(t, src, env)
	w.run(t, 40, 10)
	s.compareWithPostgres(t, srcConn, ids)
	topics := shopTopics(env)
	ends := s.topicOffsets(t, topics, false)
	waitFor(t, time.Minute, "checkpoints at the topics' ends", func() bool {
		ck := s.checkpointPositions(t, ids)
		for _, id := range ids {
			if len(ck[id]) == 0 {
				return false
			}
			for topic, at := range ck[id] {
				if at != ends[topic] {
					return false
				}
			}
		}
		return true
	})
	saved := s.saveCheckpoints(t, ids)

	// The orders table is emptied; the queries read it and checkpoint.
	if _, err := srcConn.Exec(context.Background(), `DELETE FROM orders; UPDATE customers SET region = 'eu'`); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		want := postgresCanonical(t, srcConn, differentialQueries[i])
		waitFor(t, time.Minute, fmt.Sprintf("query %d without orders", i), func() bool {
			st, err := s.queryState(t, id)
			return err == nil && st.CaughtUp && slices.Equal(st.Rows, want)
		})
	}
	stop()

	// The worker restarts from the older checkpoints, and every record
	// after them is gone.
	s.restoreCheckpoints(t, saved)
	ends = s.topicOffsets(t, topics, false)
	cl, err := s.inf.Kafka().NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	del := kadm.Offsets{}
	for _, topic := range topics {
		del.Add(kadm.Offset{Topic: topic, Partition: 0, At: ends[topic]})
	}
	resp, err := kadm.NewClient(cl).DeleteRecords(context.Background(), del)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	s.restartAndAwaitPostgres(t, srcConn, ids)
	if n := strings.Count(s.logs.String(), "restored from its checkpoint"); n < len(ids) {
		t.Errorf("%d queries logged a restore from a checkpoint, want %d (the test did not restore them)", n, len(ids))
	}
}

// savedCheckpoints are query_checkpoints and query_checkpoint_chunks rows.
type savedCheckpoints struct{ heads, chunks [][]any }

// saveCheckpoints reads the queries' checkpoints, as one snapshot.
func (s *system) saveCheckpoints(t *testing.T, ids []string) savedCheckpoints {
	t.Helper()
	ctx := context.Background()
	tx, err := s.inf.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var out savedCheckpoints
	for _, q := range []struct {
		sql  string
		into *[][]any
	}{
		{`SELECT query_id, fingerprint, positions, capture_epochs, events, state_bytes, chunks, written_at FROM query_checkpoints WHERE query_id = ANY($1)`, &out.heads},
		{`SELECT query_id, seq, data FROM query_checkpoint_chunks WHERE query_id = ANY($1)`, &out.chunks},
	} {
		rows, err := tx.Query(ctx, q.sql, ids)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			*q.into = append(*q.into, vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if len(out.heads) != len(ids) {
		t.Fatalf("%d checkpoints saved, want %d", len(out.heads), len(ids))
	}
	return out
}

// restoreCheckpoints writes saved checkpoints back in place of the
// queries' current ones.
func (s *system) restoreCheckpoints(t *testing.T, saved savedCheckpoints) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, s.inf.Pool, func(tx pgx.Tx) error {
		for _, h := range saved.heads {
			if _, err := tx.Exec(ctx, `DELETE FROM query_checkpoints WHERE query_id = $1`, h[0]); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO query_checkpoints (query_id, fingerprint, positions, capture_epochs, events, state_bytes, chunks, written_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, h...); err != nil {
				return err
			}
		}
		for _, c := range saved.chunks {
			if _, err := tx.Exec(ctx, `INSERT INTO query_checkpoint_chunks (query_id, seq, data) VALUES ($1, $2, $3)`, c...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// With checkpoints an hour apart, a query still checkpoints when it goes
// live, and once more when its worker stops gracefully: the next run
// starts from where the last one stopped.
func TestEmbeddedQueryCheckpointsWhenLiveAndWhenStopping(t *testing.T) {
	s := startSystemWith(t, func(*Infra, config.Config, *slog.Logger) []WorkerDeps { return nil })
	s.cfg.CheckpointInterval = time.Hour
	stop := s.startEmbeddedWorker()
	src, srcConn, w := shopSource(t, 13)
	w.run(t, 20, 10)
	env := uniqueEnv("ckpt-live")
	ids := s.createShopQueries(t, src, env)
	s.compareWithPostgres(t, srcConn, ids)
	waitFor(t, time.Minute, "a checkpoint of every query once live", func() bool {
		ck := s.checkpointPositions(t, ids)
		for _, id := range ids {
			if len(ck[id]) == 0 {
				return false
			}
		}
		return true
	})
	ws := writers(t, src, 2)
	runAll(t, ws, 20)
	s.compareWithPostgres(t, srcConn, ids)
	before := s.checkpointPositions(t, ids)
	stop()
	ends := s.topicOffsets(t, shopTopics(env), false)
	after := s.checkpointPositions(t, ids)
	for i, id := range ids {
		for topic, at := range after[id] {
			if at != ends[topic] {
				t.Errorf("query %d: its checkpoint after the stop is at %d of %s, the topic ends at %d (before the stop: %d)", i, at, topic, ends[topic], before[id][topic])
			}
		}
	}
}

// restartAndAwaitPostgres starts an embedded worker again and waits until
// each query's restarted run has written its progress and is caught up
// with PostgreSQL's answer; a result reported caught up with another
// answer fails the test.
func (s *system) restartAndAwaitPostgres(t *testing.T, srcConn *pgx.Conn, ids []string) {
	t.Helper()
	var restart time.Time
	if err := s.inf.Pool.QueryRow(context.Background(), `SELECT now()`).Scan(&restart); err != nil {
		t.Fatal(err)
	}
	s.startEmbeddedWorker()
	for i, id := range ids {
		// From the restarted run's first progress write on, the result
		// is the new run's: caught up only when equal to PostgreSQL's.
		waitFor(t, time.Minute, fmt.Sprintf("query %d's restarted run", i), func() bool {
			var n int
			s.inf.Pool.QueryRow(context.Background(), `SELECT count(*) FROM query_progress WHERE query_id = $1 AND updated_at > $2`, id, restart).Scan(&n)
			return n == 1
		})
		want := postgresCanonical(t, srcConn, differentialQueries[i])
		var last queryState
		ok := poll(2*time.Minute, func() bool {
			st, err := s.queryState(t, id)
			if err != nil {
				return false
			}
			last = st
			if !st.CaughtUp {
				return false
			}
			if !slices.Equal(st.Rows, want) {
				t.Errorf("query %d is caught up (%s) with a result that is not PostgreSQL's:\n%s\nwant:\n%s", i, st.ResultState, strings.Join(st.Rows, "\n"), strings.Join(want, "\n"))
			}
			return true
		})
		if !ok {
			t.Fatalf("query %d did not catch up: %+v", i, last)
		}
	}
}
