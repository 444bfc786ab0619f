package service

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/capture/capturetest"
	"github.com/cdcq/cdcq/internal/clustertest"
	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/names"
)

// TestClusterPausedWorkerIsReplacedAndFenced: a `cdcq worker` that owns an
// embedded capture and its cached query is paused with SIGSTOP, as a host
// that stops answering would be, while a writer keeps changing the
// source. Another worker takes the capture's and the query's leases over
// within 15 s (the job-state server ends the paused worker's lease
// sessions after their 10 s timeout). The paused worker is then resumed:
// from the moment its successor wrote, no row of the job state (the
// query's progress and result, the capture's state) is written by it, and
// no result record of its producer follows its successor's in the result
// topic. In the end the result equals PostgreSQL's.
func TestClusterPausedWorkerIsReplacedAndFenced(t *testing.T) {
	// Kafka is the real cluster's: a paused worker stays in the consumer
	// groups until its session times out, which kfake does not model the
	// way Kafka does.
	c := clustertest.Shared(t)
	bin := buildCdcq(t)
	ns := uniqueEnv("po")
	s := startSystemOn(t, config.Config{KafkaBrokers: strings.Split(c.KafkaBrokers(), ","), KafkaNamespace: ns},
		func(*Infra, config.Config, *slog.Logger) []WorkerDeps { return nil })
	t.Cleanup(func() { deleteNamespaceTopics(t, s.inf.Brokers, ns) })
	fleet := &workerFleet{t: t, bin: bin, dir: t.TempDir(), env: workerEnv(s, ns)}
	ctx := context.Background()
	jobState, err := pgx.Connect(ctx, s.cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jobState.Close(context.Background()) })
	// Every write of the query's progress and of the capture's state, with
	// who made it.
	if _, err := jobState.Exec(ctx, `
		CREATE TABLE test_writes (at timestamptz NOT NULL DEFAULT clock_timestamp(), tbl text, who text);
		CREATE FUNCTION test_note_progress() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO test_writes (tbl, who) VALUES (TG_TABLE_NAME, NEW.owner);
			RETURN NEW;
		END $$;
		CREATE FUNCTION test_note_capture() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO test_writes (tbl, who) VALUES (TG_TABLE_NAME, NEW.worker);
			RETURN NEW;
		END $$;
		CREATE TRIGGER test_note_progress AFTER INSERT OR UPDATE ON query_progress FOR EACH ROW EXECUTE FUNCTION test_note_progress();
		CREATE TRIGGER test_note_capture AFTER INSERT OR UPDATE ON embedded_captures FOR EACH ROW EXECUTE FUNCTION test_note_capture();`); err != nil {
		t.Fatal(err)
	}

	const rows = 20_000
	_, srcConn, src := salesSource(t, rows, 64<<20)
	env := uniqueEnv("pause")
	t.Cleanup(func() { deleteNamespaceTopics(t, s.inf.Brokers, env) })
	a := fleet.start("a")
	queryID := createSalesQuery(t, s, src, env)
	s.deleteOnCleanup(src, env)
	holders := func() map[string]string {
		out := map[string]string{}
		rows, err := jobState.Query(ctx, `SELECT namespace, holder FROM lease_epochs WHERE id IN ($1, $2)`, env, queryID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var ns, holder string
			if err := rows.Scan(&ns, &holder); err != nil {
				t.Fatal(err)
			}
			out[ns] = holder
		}
		return out
	}
	heldBy := func(pid int) bool {
		h := holders()
		return len(h) == 2 && strings.HasSuffix(h["capture"], fmt.Sprintf("/%d", pid)) && strings.HasSuffix(h["query"], fmt.Sprintf("/%d", pid))
	}
	waitFor(t, 2*time.Minute, "worker a to own the capture and the query, and the query to be live", func() bool {
		var state string
		_ = jobState.QueryRow(ctx, `SELECT state FROM query_progress WHERE query_id = $1`, queryID).Scan(&state)
		return heldBy(a.cmd.Process.Pid) && state == "LIVE"
	})
	w := capturetest.StartWriter(t, srcConn.Config().ConnString(), "sales", rows, 5*time.Millisecond)
	defer w.Stop()
	b := fleet.start("b")
	waitFor(t, time.Minute, "worker b to start", func() bool { return strings.Contains(b.log(), "worker started") })

	aPid, bPid := a.cmd.Process.Pid, b.cmd.Process.Pid
	a.signal(syscall.SIGSTOP)
	pausedAt := time.Now()
	t.Cleanup(func() { _ = a.cmd.Process.Signal(syscall.SIGCONT) })
	waitFor(t, time.Minute, "worker b to take the capture and the query over", func() bool { return heldBy(bPid) })
	takeover := time.Since(pausedAt)
	t.Logf("worker b holds both leases %s after worker a was paused", takeover.Round(time.Millisecond))
	if takeover > 15*time.Second {
		t.Errorf("take-over took %s; the README promises at most 15 s", takeover.Round(time.Millisecond))
	}
	// b's first writes as owner.
	var bFirst time.Time
	waitFor(t, time.Minute, "worker b to write the query's progress and the capture's state", func() bool {
		var q, cpt *time.Time
		err := jobState.QueryRow(ctx, `SELECT
			(SELECT min(at) FROM test_writes WHERE tbl = 'query_progress' AND who ~ ('[:/]' || $1::text || '$')),
			(SELECT min(at) FROM test_writes WHERE tbl = 'embedded_captures' AND who ~ ('[:/]' || $1::text || '$'))`,
			fmt.Sprint(bPid)).Scan(&q, &cpt)
		if err != nil || q == nil || cpt == nil {
			return false
		}
		bFirst = *q
		if cpt.Before(bFirst) {
			bFirst = *cpt
		}
		return true
	})
	t.Logf("worker b's first write as owner %s after the pause", bFirst.Sub(pausedAt).Round(time.Millisecond))

	// Resume a; it finds its sessions gone and stops its work.
	time.Sleep(2 * time.Second)
	a.signal(syscall.SIGCONT)
	waitFor(t, time.Minute, "worker a to notice that it lost its leases", func() bool {
		return strings.Count(a.log(), "lost the job-state session") >= 2
	})
	time.Sleep(3 * time.Second)
	for _, line := range strings.Split(a.log(), "\n") {
		if strings.Contains(line, "fenced") || strings.Contains(line, "took it over") || strings.Contains(line, "lost the job-state session") {
			t.Logf("worker a after resuming: %s", line)
		}
	}
	w.Stop()
	t.Logf("writer: %d changes", w.Ops.Load())
	want := postgresCanonical(t, srcConn, salesQuery)
	if got, ok := s.awaitResult(queryID, want, 2*time.Minute); !ok {
		t.Fatalf("the result is not PostgreSQL's:\nwant %d groups\ngot %s", len(want), got)
	}

	var stale []string
	rs, err := jobState.Query(ctx, `SELECT tbl, who, at FROM test_writes WHERE at >= $1 AND who ~ ('[:/]' || $2::text || '$') ORDER BY at`, bFirst, fmt.Sprint(aPid))
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var tbl, who string
		var at time.Time
		if err := rs.Scan(&tbl, &who, &at); err != nil {
			t.Fatal(err)
		}
		stale = append(stale, fmt.Sprintf("%s by %s at +%s", tbl, who, at.Sub(pausedAt).Round(time.Millisecond)))
	}
	rs.Close()
	if len(stale) > 0 {
		t.Errorf("the paused worker wrote after its successor took over:\n%s", strings.Join(stale, "\n"))
	}
	var total int
	if err := jobState.QueryRow(ctx, `SELECT count(*) FROM test_writes WHERE who ~ ('[:/]' || $1::text || '$')`, fmt.Sprint(aPid)).Scan(&total); err != nil || total == 0 {
		t.Fatalf("no write by worker a recorded at all (%v): the check above could not fail", err)
	}

	// The result topic, as read_committed consumers see it: one producer
	// id throughout (both owners used the query's transactional id; a new
	// id per owner would fence nothing), and its epoch never falls. Kafka
	// 4's transactions (KIP-890) bump the epoch at every commit, so it
	// rises along the topic; one that falls is a deposed producer's.
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.inf.Brokers...), kgo.ConsumeTopics(names.ResultTopic(env)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	producers := map[int64]bool{}
	var newest int16 = -1
	var regressed string
	read := 0
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		f := cl.PollFetches(rctx)
		if rctx.Err() != nil {
			break
		}
		f.EachRecord(func(r *kgo.Record) {
			read++
			producers[r.ProducerID] = true
			if r.ProducerEpoch < newest && regressed == "" {
				regressed = fmt.Sprintf("offset %d from producer epoch %d after epoch %d", r.Offset, r.ProducerEpoch, newest)
			}
			newest = max(newest, r.ProducerEpoch)
		})
	}
	t.Logf("result topic: %d records from %d producer id(s), last epoch %d", read, len(producers), newest)
	if read == 0 {
		t.Fatal("no record read from the result topic")
	}
	if len(producers) != 1 {
		t.Errorf("the result topic holds records of %d producer ids; want one (the query's transactional id)", len(producers))
	}
	if regressed != "" {
		t.Errorf("a deposed producer's result record follows its successor's: %s", regressed)
	}
}
