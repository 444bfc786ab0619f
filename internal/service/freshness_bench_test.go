package service

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/stagetrace"
)

// freshStages are the stages stagetrace records, in pipeline order, each
// measured from the source commit (the server's commit timestamp).
var freshStages = []struct{ name, what string }{
	{"capture-decoded", "capture read the transaction's Commit from the slot"},
	{"capture-acked", "Kafka acknowledged the change record"},
	{"runner-polled", "the query's runner polled the record"},
	{"ivm-applied", "ivm applied it (result changes computed)"},
	{"results-committed", "results.Store.Apply committed it in Postgres"},
	{"result-topic-acked", "the result change acknowledged on the result topic"},
}

// BenchmarkFreshnessStages measures where the time goes between a commit in
// the source and the result that reflects it being committed in the
// job-state database: one-row inserts at 2,000 commits/s from 4 writers
// (each with synchronous_commit on) into 1,000 groups of the embedded
// engine's query, for CDCQ_BENCH_FRESH_SECONDS (10) seconds.
//
// The end-to-end figure is from each commit returning to its writer to the
// notification of a trigger on query_results (pg_notify is delivered when
// the transaction that wrote the row commits, so it is when the row became
// visible to readers), attributing each commit by its group's count. The
// per-stage figures come from internal/stagetrace, from the server's commit
// timestamp to each stage, and are printed as a table.
//
//	go test -run '^$' -bench FreshnessStages -benchtime 1x ./internal/service/
//
// CDCQ_BENCH_FRESH_ASYNC=1 commits with synchronous_commit off (the test
// server's default, not PostgreSQL's), and CDCQ_BENCH_FRESH_WAL_WRITER_DELAY
// (e.g. 10ms) sets the source server's wal_writer_delay for the run: with
// asynchronous commits the walsender sends a transaction only once the WAL
// writer flushed it.
func BenchmarkFreshnessStages(b *testing.B) {
	seconds := clusterBenchSize("CDCQ_BENCH_FRESH_SECONDS", 10)
	const rate, seed = 2000, 10_000
	s, src, source := startBenchSystem(b)
	ctx := context.Background()
	source.exec(b, `CREATE TABLE sales (id int PRIMARY KEY, grp int NOT NULL, amount numeric(12,2))`)
	source.exec(b, fmt.Sprintf(`INSERT INTO sales SELECT g, g %% %d, 1.00 FROM generate_series(1, %d) g`, queryGroups, seed))
	id := createQuery(b, s, src, uniqueEnv("stages"), salesSchema, salesQuery)
	waitCaughtUp(b, s, id, func(body resultBody) bool { return sumN(body) == seed })

	// Every result row written raises a notification with the row, which
	// the listener receives once the writing transaction committed.
	state, err := pgx.Connect(ctx, s.inf.DatabaseURL)
	if err != nil {
		b.Fatal(err)
	}
	defer state.Close(ctx)
	if _, err := state.Exec(ctx, `
		CREATE FUNCTION bench_result_written() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_notify('bench_results', NEW.row::text); RETURN NULL; END $$;
		CREATE TRIGGER bench_result_written AFTER INSERT OR UPDATE ON query_results
			FOR EACH ROW EXECUTE FUNCTION bench_result_written()`); err != nil {
		b.Fatal(err)
	}
	listener, err := pgx.Connect(ctx, s.inf.DatabaseURL)
	if err != nil {
		b.Fatal(err)
	}
	defer listener.Close(context.Background())
	if _, err := listener.Exec(ctx, `LISTEN bench_results`); err != nil {
		b.Fatal(err)
	}
	base := map[int64]int64{}
	for g := range int64(queryGroups) {
		base[g] = seed / queryGroups
	}
	total := rate * seconds
	visible := newGroupVisibility(base, total)
	lctx, stopListening := context.WithCancel(ctx)
	listened := make(chan struct{})
	go func() {
		defer close(listened)
		for {
			n, err := listener.WaitForNotification(lctx)
			if err != nil {
				return
			}
			now := time.Now().UnixNano()
			var row struct {
				Grp *int64 `json:"grp"`
				N   int64  `json:"n"`
			}
			if json.Unmarshal([]byte(n.Payload), &row) == nil && row.Grp != nil {
				visible.observe(*row.Grp, row.N, now)
			}
		}
	}()

	// Transactions committed in the job-state database (results writes,
	// most of them) while the writers run.
	stateCommits := func() int64 {
		var n int64
		if err := state.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}
	commitsBefore := stateCommits()
	stagetrace.Enable()
	defer stagetrace.Disable()
	stagetrace.Take()
	b.ResetTimer()
	if d := os.Getenv("CDCQ_BENCH_FRESH_WAL_WRITER_DELAY"); d != "" {
		// How long the WAL writer sleeps between flushes of asynchronous
		// commits (200ms by default); the test server is this process's own.
		source.exec(b, fmt.Sprintf(`ALTER SYSTEM SET wal_writer_delay = '%s'`, d))
		source.exec(b, `SELECT pg_reload_conf()`)
		defer func() {
			source.exec(b, `ALTER SYSTEM RESET wal_writer_delay`)
			source.exec(b, `SELECT pg_reload_conf()`)
		}()
	}
	stmt := `INSERT INTO sales VALUES ($1, $2, 1.00)`
	if os.Getenv("CDCQ_BENCH_FRESH_ASYNC") != "" {
		// The test server's default, synchronous_commit off: the server
		// sends a commit to the capture only once its WAL writer flushed it.
		stmt = `WITH async AS (SELECT set_config('synchronous_commit', 'off', true))
			INSERT INTO sales SELECT $1, $2, 1.00 FROM async`
	}
	commits, late, took := pacedCommits(b, src, rate, total, func(i int) (string, []any) {
		return stmt, []any{seed + 1 + i, i % queryGroups}
	})
	deadline := time.Now().Add(time.Minute)
	for visible.done.Load() < int64(total) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stopListening()
	<-listened
	b.StopTimer()
	stages := stagetrace.Take()
	time.Sleep(time.Second) // statistics are published at most every second
	stateTxns := float64(stateCommits()-commitsBefore) / took.Seconds()
	if d := visible.done.Load(); d < int64(total) {
		b.Fatalf("of %d commits, %d became visible in query_results within a minute of the last", total, d)
	}
	e2e := latencies(commits, visible.seen)
	b.ReportMetric(quantileMs(e2e, 0.5), "visible-p50-ms")
	b.ReportMetric(quantileMs(e2e, 0.99), "visible-p99-ms")
	b.ReportMetric(quantileMs(e2e, 1), "visible-max-ms")
	b.ReportMetric(float64(total)/took.Seconds(), "commits/s")
	b.ReportMetric(stateTxns, "state-txns/s")
	b.ReportMetric(0, "ns/op")

	var t strings.Builder
	fmt.Fprintf(&t, "%d commits in %s (%d behind schedule), %d groups; %.0f transactions/s in the job-state database\n",
		total, took.Round(time.Millisecond), late, queryGroups, stateTxns)
	fmt.Fprintf(&t, "%-20s %9s %9s %9s %9s %8s  %s\n", "stage (since commit)", "p50 ms", "p90 ms", "p99 ms", "max ms", "n", "")
	for _, st := range freshStages {
		d := stages[st.name]
		slices.Sort(d)
		if st.name == "results-committed" {
			b.ReportMetric(quantileMs(d, 0.5), "stored-p50-ms")
			b.ReportMetric(quantileMs(d, 0.99), "stored-p99-ms")
		}
		fmt.Fprintf(&t, "%-20s %9.1f %9.1f %9.1f %9.1f %8d  %s\n", st.name,
			quantileMs(d, 0.5), quantileMs(d, 0.9), quantileMs(d, 0.99), quantileMs(d, 1), len(d), st.what)
	}
	fmt.Fprintf(&t, "%-20s %9.1f %9.1f %9.1f %9.1f %8d  %s\n", "visible (writer)",
		quantileMs(e2e, 0.5), quantileMs(e2e, 0.9), quantileMs(e2e, 0.99), quantileMs(e2e, 1), len(e2e),
		"from the commit returning to its writer to the row's notification")
	fmt.Fprint(os.Stdout, t.String())
}
