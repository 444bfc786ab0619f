package service

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/pgtest"
)

// salesAggregates is the query of issue 9's measurements, over the sales
// table of salesSchema.
const salesAggregates = `SELECT grp, COUNT(*) AS n, SUM(amount) AS total, AVG(amount) AS mean, MIN(amount) AS lo, MAX(amount) AS hi FROM sales GROUP BY grp`

// BenchmarkServing measures what a user of a cached query meets, on the
// shape of issue 9: a 1,000,000-row table, 1,000 groups, the query below,
// the whole system in this process (embedded capture and engine, API) on a
// private Postgres and the in-process broker. Figures, side by side, on
// stdout ("serving: ...") and as metrics; nothing is asserted.
//
//	go test -run '^$' -bench Serving -benchtime 1x ./internal/service/
//
// CDCQ_BENCH_SERVING_ROWS changes the table's size.
func BenchmarkServing(b *testing.B) {
	rows := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("CDCQ_BENCH_SERVING_ROWS")); err == nil && v > 0 {
		rows = v
	}
	const groups = 1000
	s, src, source := startBenchSystem(b)
	source.exec(b, `CREATE TABLE sales (id int PRIMARY KEY, grp int NOT NULL, amount numeric(12,2))`)
	source.exec(b, fmt.Sprintf(`INSERT INTO sales SELECT g, g %% %d, CASE WHEN g %% 97 = 0 THEN NULL ELSE (g %% 10000) / 100.0 END
		FROM generate_series(1, %d) g`, groups, rows))
	source.exec(b, `ANALYZE sales`)
	start := time.Now()
	id := createQuery(b, s, src, uniqueEnv("serve"), salesSchema, salesAggregates)
	waitCaughtUp(b, s, id, func(body resultBody) bool { return sumN(body) == rows && len(body.Rows) == groups })
	hydrate := time.Since(start)
	out := func(format string, args ...any) { fmt.Printf("serving: "+format+"\n", args...) }
	out("%d-row table, %d groups: create -> complete LIVE result %.1f s = %.0f rows/s end to end", rows, groups, hydrate.Seconds(), float64(rows)/hydrate.Seconds())
	b.ReportMetric(float64(rows)/hydrate.Seconds(), "create-rows/s")
	// Reads: one keep-alive client, whole body read.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	get := func(extra string) int {
		res, err := client.Get(s.apiURL + "/cachedQueries/" + id + "/result" + extra)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("GET: %d", res.StatusCode)
		}
		return int(n)
	}
	size := get("")
	get("")
	api := sample(3000, func() { get("") })
	page := sample(3000, func() { get("?limit=100") })
	report(b, "get", api)
	// Several clients at once.
	const clients = 4
	var wg sync.WaitGroup
	var mu sync.Mutex
	var all []time.Duration
	t0 := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := sample(2000, func() { get("") })
			mu.Lock()
			all = append(all, d...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	rps := float64(len(all)) / time.Since(t0).Seconds()

	direct, how := directAggregate(b, source.conn, salesAggregates)
	out("GET /result (%d rows, %d kB), one keep-alive client: p50 %.3f ms, p99 %.3f ms; ?limit=100: p50 %.3f ms, p99 %.3f ms",
		groups, size/1024, pct(api, 50), pct(api, 99), pct(page, 50), pct(page, 99))
	out("GET /result, %d clients at once: p50 %.3f ms, p99 %.3f ms, %.0f requests/s", clients, pct(all, 50), pct(all, 99), rps)
	out("the aggregate on PostgreSQL (%s): p50 %.1f ms, p99 %.1f ms -> the API is %.0fx faster at p50, %.0fx at p99",
		how, pct(direct, 50), pct(direct, 99), pct(direct, 50)/pct(api, 50), pct(direct, 99)/pct(api, 99))
	b.ReportMetric(pct(direct, 50)/pct(api, 50), "speedup-p50")

	// Freshness: 4 writers, 2,000 commits/s in all, each an insert into a
	// random group; a commit is visible when the group's count in the
	// pushed changes covers it.
	fresh, achieved := measureFreshness(b, s, src, id, groups, 1, 2000)
	out("commit -> change event (SSE) with 4 writers at %.0f commits/s into %d groups: p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		achieved, groups, pct(fresh, 50), pct(fresh, 99), pct(fresh, 100))
	report(b, "freshness", fresh)
	// 1,000 subscribers, their clients in this process too: at 200
	// commits/s, 200,000 events/s leave the API.
	fan, achieved := measureFreshness(b, s, src, id, groups, 1000, 200)
	out("commit -> change event at each of 1,000 subscribers (4 writers, %.0f commits/s, %.0f events/s out): p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		achieved, achieved*1000, pct(fan, 50), pct(fan, 99), pct(fan, 100))
	report(b, "sse-1000", fan)

	// The memory the API's cache holds per 1,000 rows and per subscriber
	// is measured apart, on a quiet process: BenchmarkCacheMemory in
	// internal/serving.
}

// directAggregate times the query on PostgreSQL: with pgbench -M prepared
// when it is installed (as a user would measure it), else with a prepared
// statement from here.
func directAggregate(b *testing.B, conn *pgx.Conn, query string) ([]time.Duration, string) {
	b.Helper()
	cfg := conn.Config()
	if bin, err := pgtest.Shared(b).Tool("pgbench"); err == nil {
		dir := b.TempDir()
		script := filepath.Join(dir, "agg.sql")
		os.WriteFile(script, []byte(query+";\n"), 0o600)
		cmd := exec.Command(bin, "-n", "-M", "prepared", "-f", script, "-T", "10", "-c", "1",
			"-l", "--log-prefix", filepath.Join(dir, "log"),
			"-h", cfg.Host, "-p", strconv.Itoa(int(cfg.Port)), "-U", cfg.User, cfg.Database)
		cmd.Dir = dir
		if outb, err := cmd.CombinedOutput(); err != nil {
			b.Logf("pgbench: %v\n%s", err, outb)
		} else if d := pgbenchLatencies(b, dir); len(d) > 0 {
			return d, "pgbench -M prepared, 10 s"
		}
	}
	ctx := context.Background()
	return sample(30, func() {
		rs, err := conn.Query(ctx, query)
		if err != nil {
			b.Fatal(err)
		}
		for rs.Next() {
		}
		rs.Close()
	}), "a prepared statement, 30 runs"
}

// pgbenchLatencies reads pgbench's per-transaction log (the third field is
// the latency in microseconds).
func pgbenchLatencies(b *testing.B, dir string) []time.Duration {
	files, _ := filepath.Glob(filepath.Join(dir, "log*"))
	var out []time.Duration
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) >= 3 {
				if us, err := strconv.ParseInt(fields[2], 10, 64); err == nil {
					out = append(out, time.Duration(us)*time.Microsecond)
				}
			}
		}
		fh.Close()
	}
	return out
}

// measureFreshness runs 4 writers at 2,000 commits/s for 5 s and returns,
// for every commit and subscriber, the time from the commit to the change
// event that shows it.
func measureFreshness(b *testing.B, s *system, src, id string, groups, subscribers, rate int) ([]time.Duration, float64) {
	b.Helper()
	ctx := context.Background()
	// Each subscriber: the latest count per group it has seen.
	type counts struct {
		mu sync.Mutex
		n  map[int]int64
		// seenAt[g] lists when each count of group g was first seen.
		seenAt map[int][]time.Time
	}
	subs := make([]*counts, subscribers)
	var streams []*sseClient
	var wg sync.WaitGroup
	for i := range subs {
		c := &counts{n: map[int]int64{}, seenAt: map[int][]time.Time{}}
		subs[i] = c
		st := openChanges(b, s.apiURL, id, "")
		streams = append(streams, st)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ev, err := st.next()
				if err != nil {
					return
				}
				now := time.Now()
				apply := func(row []byte) {
					r, ok := grpAndN(row)
					if !ok {
						b.Errorf("row %s", row)
						return
					}
					c.mu.Lock()
					if old, ok := c.n[r.Grp]; ok {
						for k := old + 1; k <= r.N; k++ {
							c.seenAt[r.Grp] = append(c.seenAt[r.Grp], now)
						}
					}
					c.n[r.Grp] = r.N
					c.mu.Unlock()
				}
				switch ev.event {
				case "snapshot":
					var a resultAnswer
					json.Unmarshal([]byte(ev.data), &a)
					for _, r := range a.Rows {
						apply(r)
					}
				case "change":
					// Cut the row out without decoding the event: with a
					// thousand subscribers in this process the clients'
					// decoding would be what is measured.
					_, row, ok := strings.Cut(ev.data, `"row":`)
					if ok && !strings.HasPrefix(row, "null") {
						apply([]byte(row))
					}
				}
			}
		}()
	}
	// Wait until every subscriber has its snapshot.
	waitFor(b, time.Minute, "the subscribers' snapshots", func() bool {
		for _, c := range subs {
			c.mu.Lock()
			n := len(c.n)
			c.mu.Unlock()
			if n < groups {
				return false
			}
		}
		return true
	})

	const writers, seconds = 4, 5
	type commit struct {
		grp int
		at  time.Time
	}
	commits := make([][]commit, writers)
	var base int
	source, err := pgx.Connect(ctx, src)
	if err != nil {
		b.Fatal(err)
	}
	source.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM sales`).Scan(&base)
	source.Close(ctx)
	var ww sync.WaitGroup
	start := time.Now()
	for w := range writers {
		conn, err := pgx.Connect(ctx, src)
		if err != nil {
			b.Fatal(err)
		}
		// PostgreSQL's default, which the test server turns off: with
		// asynchronous commits the walsender sends a transaction only
		// once the WAL writer flushed it (wal_writer_delay, 200 ms).
		if _, err := conn.Exec(ctx, `SET synchronous_commit = on`); err != nil {
			b.Fatal(err)
		}
		ww.Add(1)
		go func() {
			defer ww.Done()
			defer conn.Close(ctx)
			rng := rand.New(rand.NewPCG(uint64(w), 3))
			per := rate / writers
			for i := range per * seconds {
				next := start.Add(time.Duration(i) * time.Second / time.Duration(per))
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				g := rng.IntN(groups)
				id := base + 1 + w + writers*i
				if _, err := conn.Exec(ctx, `INSERT INTO sales VALUES ($1, $2, 1.00)`, id, g); err != nil {
					b.Error(err)
					return
				}
				commits[w] = append(commits[w], commit{grp: g, at: time.Now()})
			}
		}()
	}
	ww.Wait()
	achieved := float64(rate*seconds) / time.Since(start).Seconds()
	// Commits per group, in commit order.
	perGroup := map[int][]time.Time{}
	for _, cs := range commits {
		for _, c := range cs {
			perGroup[c.grp] = append(perGroup[c.grp], c.at)
		}
	}
	for _, ts := range perGroup {
		slices.SortFunc(ts, time.Time.Compare)
	}
	waitFor(b, 2*time.Minute, "every commit at every subscriber", func() bool {
		for _, c := range subs {
			c.mu.Lock()
			ok := true
			for g, ts := range perGroup {
				if len(c.seenAt[g]) < len(ts) {
					ok = false
					break
				}
			}
			c.mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	})
	var lat []time.Duration
	for _, c := range subs {
		c.mu.Lock()
		for g, ts := range perGroup {
			seen := c.seenAt[g]
			for k, at := range ts {
				lat = append(lat, max(seen[len(seen)-len(ts)+k].Sub(at), 0))
			}
		}
		c.mu.Unlock()
	}
	for _, st := range streams {
		st.close()
	}
	wg.Wait()
	return lat, achieved
}

type grpN struct {
	Grp int
	N   int64
}

// grpAndN reads the grp and n fields at the start of a served row
// ({"grp":5,"n":1001,...}).
func grpAndN(row []byte) (grpN, bool) {
	var r grpN
	rest, ok := strings.CutPrefix(string(row), `{"grp":`)
	if !ok {
		return r, false
	}
	g, rest, ok := strings.Cut(rest, `,"n":`)
	if !ok {
		return r, false
	}
	n, _, _ := strings.Cut(rest, ",")
	var err1, err2 error
	r.Grp, err1 = strconv.Atoi(g)
	r.N, err2 = strconv.ParseInt(n, 10, 64)
	return r, err1 == nil && err2 == nil
}
