package service

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/names"
)

// With the status poller's rounds a minute apart, the embedded engines'
// nudges bring their states to the API at once: the capture streaming, a
// cached query's result LIVE, and the capture failing, each shown within
// a bound the rounds miss (the first round runs when the worker starts,
// before anything exists; the next one is a minute later).
func TestStatusFollowsTheEmbeddedEnginesWithoutWaitingForARound(t *testing.T) {
	s := startSystemEvery(t, time.Minute)
	adminURL, admin := sourceDatabase(t)
	ctx := context.Background()
	// A role that is not a superuser, so that taking its REPLICATION away
	// fails the capture.
	role := uniqueEnv("nudger")
	var db string
	if err := admin.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`CREATE ROLE ` + role + ` LOGIN REPLICATION PASSWORD 'pw'`,
		`GRANT CREATE ON DATABASE ` + db + ` TO ` + role,
		`GRANT ALL ON SCHEMA public TO ` + role,
		`SET ROLE ` + role,
		freshnessTable,
		`INSERT INTO orders SELECT i, i % 100 FROM generate_series(1, 1000) i`,
		`RESET ROLE`,
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	src := strings.Replace(adminURL, "postgres://cdcq:", "postgres://"+role+":", 1)
	if src == adminURL {
		t.Fatalf("source URL %q does not name the cdcq role", strings.SplitN(adminURL, "@", 2)[1])
	}
	env := uniqueEnv("nudge")
	t.Cleanup(func() {
		admin.Exec(context.Background(), `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`, names.SlotName(env))
	})

	capture, query := s.statusLags(t, src, env, 20*time.Second)
	t.Logf("with rounds a minute apart: checkJobStatus showed the capture streaming %s after it did, GET /cachedQueries/{id} the result LIVE %s after it was",
		capture.Round(time.Millisecond), query.Round(time.Millisecond))

	// The role loses REPLICATION and its replication connection: the
	// capture's next session fails its preflight for good.
	if _, err := admin.Exec(ctx, `ALTER ROLE `+role+` NOREPLICATION`); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND backend_type = 'walsender'`, role); err != nil {
		t.Fatal(err)
	}
	broke := time.Now()
	body := map[string]string{"connectionString": src, "environmentId": env}
	var last response
	if !poll(15*time.Second, func() bool {
		last = s.postJSON("/checkJobStatus", body)
		m := last.json(t)
		reason, _ := m["reason"].(string)
		return last.status == http.StatusOK && m["status"] == "FAILED" && strings.Contains(reason, "may not use replication")
	}) {
		t.Fatalf("the capture's failure not shown within 15s: %d %s", last.status, last.body)
	}
	t.Logf("checkJobStatus showed the capture FAILED %s after its replication connection was cut (including the capture's 1s retry)",
		time.Since(broke).Round(time.Millisecond))
}

// The worker that leads the status poller runs no capture and no query; a
// second worker runs them: its nudges reach the leader through the
// job-state database (LISTEN/NOTIFY), with the rounds a minute apart.
func TestStatusNudgesReachTheLeaderFromAnotherWorker(t *testing.T) {
	broker, err := kafkabus.StartEmbedded("", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	s := startSystemOn(t, config.Config{KafkaBrokers: broker.Brokers(), StatusInterval: time.Minute},
		func(inf *Infra, cfg config.Config, logger *slog.Logger) []WorkerDeps {
			deps, err := Engines(cfg, inf, logger)
			if err != nil {
				t.Fatal(err)
			}
			deps.Background = nil // no capture supervisor, no query runner
			return []WorkerDeps{deps}
		})
	leads := fmt.Sprintf(`msg="became leader" lock_id=%d`, statusPollerLock)
	waitFor(t, 30*time.Second, "the first worker to lead the status poller", func() bool { return strings.Contains(s.logs.String(), leads) })
	s.startEmbeddedWorkers(2)
	if n := strings.Count(s.logs.String(), leads); n != 1 {
		t.Fatalf("%d workers led the status poller", n)
	}
	src, srcConn := sourceDatabase(t)
	if _, err := srcConn.Exec(context.Background(), freshnessTable+`;
		INSERT INTO orders SELECT i, i % 100 FROM generate_series(1, 1000) i`); err != nil {
		t.Fatal(err)
	}
	capture, query := s.statusLags(t, src, uniqueEnv("nudge"), 20*time.Second)
	t.Logf("nudged from the other worker: capture streaming shown %s after, result LIVE %s after",
		capture.Round(time.Millisecond), query.Round(time.Millisecond))
	if n := strings.Count(s.logs.String(), leads); n != 1 {
		t.Fatalf("leadership moved (%d workers led the status poller)", n)
	}
}
