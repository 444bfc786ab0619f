package service

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/clustertest"
	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/projections"
)

// flinkJobs lists the real Flink cluster's jobs by name.
func flinkJobs(t *testing.T) map[string][]string {
	t.Helper()
	res, err := http.Get(clustertest.Shared(t).FlinkRESTURL() + "/jobs/overview")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Jobs []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"jobs"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, j := range body.Jobs {
		out[j.Name] = append(out[j.Name], j.State)
	}
	return out
}

// connectorExists asks the real Kafka Connect for a connector.
func connectorExists(t *testing.T, name string) bool {
	t.Helper()
	res, err := connectGetResponse(clustertest.Shared(t), "/connectors/"+name)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// With real Debezium and Flink: checkJobStatus shows the connector's and its
// task's states and the slot; a task that fails because its slot was
// dropped under it shows FAILED with Debezium's trace; deleting the
// connection removes the connector, the slot and the publication, and
// cancels the environment's Flink jobs.
func TestClusterStatusFailureAndDelete(t *testing.T) {
	s := startClusterSystem(t, clusterEngines{debezium: true, flink: true})
	src, srcConn := sourceDatabase(t)
	ctx := context.Background()
	if _, err := srcConn.Exec(ctx, storeTables+`;
		INSERT INTO customers VALUES (1, 'eu', 'ann', now()), (2, NULL, 'bob', now());
		INSERT INTO orders VALUES (1, 1, NULL, 10.50, 'paid', 1, now()), (2, 2, NULL, 3.25, NULL, 2, now())`); err != nil {
		t.Fatal(err)
	}
	env := uniqueEnv("cst")
	conn := map[string]string{"connectionString": src, "environmentId": env}
	if res := s.postForm("/createDatabaseConnection", conn); res.status != http.StatusCreated {
		t.Fatalf("create connection: %d %s", res.status, res.body)
	}
	m := s.waitForStatusWithin(src, env, "connector and task RUNNING, slot active", 2*time.Minute, func(m map[string]any) bool {
		c, _ := m["connector"].(map[string]any)
		tasks, _ := c["tasks"].([]any)
		slot, _ := m["slot"].(map[string]any)
		return c["state"] == "RUNNING" && len(tasks) == 1 && tasks[0].(map[string]any)["state"] == "RUNNING" &&
			slot["exists"] == true && slot["active"] == true && m["status"] == "RUNNING"
	})
	if m["publicationName"] != names.PublicationName(env) {
		t.Errorf("publicationName = %v", m["publicationName"])
	}
	if slots, pubs := slotAndPublicationCount(t, srcConn, env); slots != 1 || pubs != 1 {
		t.Errorf("in the source database: %d slots, %d publications; want 1 and 1", slots, pubs)
	}
	if !connectorExists(t, names.ConnectorName(env)) {
		t.Fatal("Kafka Connect does not know the connector")
	}

	// A cached query on Flink, grouped by a nullable column.
	res := s.postJSON("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": env,
		"schema": storeSchema, "sqlQuery": "SELECT region, count(*) AS n FROM customers GROUP BY region"})
	if res.status != http.StatusCreated {
		t.Fatalf("create query: %d %s", res.status, res.body)
	}
	id := res.json(t)["id"].(string)
	want := postgresCanonical(t, srcConn, "SELECT region, count(*) AS n FROM customers GROUP BY region")
	if got, ok := s.awaitResult(id, want, 2*time.Minute); !ok {
		t.Fatalf("the Flink query's result: %s\nstatus %s", got, s.queryStatus(id))
	}
	pipeline := names.PipelineName(env, id)
	if states := flinkJobs(t)[pipeline]; len(states) != 1 || states[0] != "RUNNING" {
		t.Fatalf("Flink jobs named %s: %v", pipeline, states)
	}

	// The slot dropped under the running connector: its task fails.
	dropSlotUnder(t, srcConn, names.SlotName(env))
	m = s.waitForStatusWithin(src, env, "the task FAILED", 2*time.Minute, func(m map[string]any) bool {
		c, _ := m["connector"].(map[string]any)
		tasks, _ := c["tasks"].([]any)
		return m["status"] == "FAILED" && len(tasks) == 1 && tasks[0].(map[string]any)["state"] == "FAILED"
	})
	task := m["connector"].(map[string]any)["tasks"].([]any)[0].(map[string]any)
	if trace, _ := task["trace"].(string); !strings.Contains(trace, "io.debezium") {
		t.Errorf("the failed task's trace is not Debezium's: %.300s", trace)
	}
	if reason, _ := m["reason"].(string); reason == "" {
		t.Error("a FAILED connection has no reason")
	}

	// Delete removes everything, in Connect, in the source and in Flink.
	if res := s.postForm("/deleteDatabaseConnection", conn); res.status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", res.status, res.body)
	}
	s.waitForStatusWithin(src, env, "DELETED", 2*time.Minute, func(m map[string]any) bool { return m["status"] == "DELETED" })
	if connectorExists(t, names.ConnectorName(env)) {
		t.Error("the connector is still in Kafka Connect")
	}
	if slots, pubs := slotAndPublicationCount(t, srcConn, env); slots != 0 || pubs != 0 {
		t.Errorf("left in the source database: %d slots, %d publications", slots, pubs)
	}
	waitFor(t, time.Minute, "the environment's Flink job canceled", func() bool {
		states := flinkJobs(t)[pipeline]
		return len(states) == 1 && states[0] == "CANCELED"
	})
}

// deleteOnCleanup deletes the connection when the test ends, and waits
// until the delete is done: the real cluster outlives the test's system,
// and a connector, a slot or Flink jobs left behind would weigh on every
// later test.
func (s *system) deleteOnCleanup(conn, env string) {
	s.t.Cleanup(func() {
		req := map[string]string{"connectionString": conn, "environmentId": env}
		if res := s.postJSON("/deleteDatabaseConnection", req); res.status != http.StatusAccepted {
			s.t.Errorf("delete %s: %d %s", env, res.status, res.body)
			return
		}
		ok := poll(2*time.Minute, func() bool {
			res := s.postJSON("/checkJobStatus", req)
			return res.status == http.StatusOK && res.json(s.t)["status"] == "DELETED"
		})
		if !ok {
			s.t.Errorf("environment %s not deleted within 2 min", env)
		}
	})
}

// dropSlotUnder ends the walsender that holds a slot and drops the slot
// before the connector can take it again.
func dropSlotUnder(t *testing.T, src *pgx.Conn, slot string) {
	t.Helper()
	ctx := context.Background()
	waitFor(t, 30*time.Second, "slot "+slot+" dropped", func() bool {
		_, _ = src.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, slot)
		_, err := src.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, slot)
		return err == nil
	})
}

// waitForStatusWithin is waitForStatus with a timeout of the caller's.
func (s *system) waitForStatusWithin(conn, env, what string, timeout time.Duration, cond func(m map[string]any) bool) map[string]any {
	s.t.Helper()
	var last response
	var m map[string]any
	ok := poll(timeout, func() bool {
		last = s.postJSON("/checkJobStatus", map[string]string{"connectionString": conn, "environmentId": env})
		if last.status != http.StatusOK {
			return false
		}
		m = last.json(s.t)
		return cond(m)
	})
	if !ok {
		s.t.Fatalf("%s: not reached within %s; last checkJobStatus %d %.3000s", what, timeout, last.status, last.body)
	}
	return m
}

// A TRUNCATE of a source table, which Flink's debezium-json format cannot
// apply, stops the query's Flink job; cdcq starts it again after the
// truncate with the old rows cleared, and the result equals PostgreSQL's.
// The status says what happened meanwhile. Run with real Debezium and with
// the embedded capture feeding Flink.
func TestClusterFlinkFollowsTruncate(t *testing.T) {
	for _, use := range []clusterEngines{{debezium: true, flink: true}, {flink: true}} {
		t.Run(fmt.Sprintf("debezium_%v", use.debezium), func(t *testing.T) {
			s := startClusterSystem(t, use)
			src, srcConn := sourceDatabase(t)
			ctx := context.Background()
			if _, err := srcConn.Exec(ctx, storeTables+`;
				INSERT INTO orders SELECT g, g % 5, NULL, g * 1.5, CASE WHEN g % 3 = 0 THEN NULL ELSE 's' || g % 2 END, 1, now()
				  FROM generate_series(1, 40) g`); err != nil {
				t.Fatal(err)
			}
			env := uniqueEnv("ctr")
			const query = "SELECT status, count(*) AS n, sum(total) AS revenue FROM orders GROUP BY status"
			res := s.postJSON("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": env,
				"schema": storeSchema, "sqlQuery": query})
			if res.status != http.StatusCreated {
				t.Fatalf("create query: %d %s", res.status, res.body)
			}
			id := res.json(t)["id"].(string)
			s.deleteOnCleanup(src, env)
			if got, ok := s.awaitResult(id, postgresCanonical(t, srcConn, query), 2*time.Minute); !ok {
				t.Fatalf("before the truncate: %s\nstatus %s", got, s.queryStatus(id))
			}
			if _, err := srcConn.Exec(ctx, `TRUNCATE orders;
				INSERT INTO orders VALUES (100, 1, NULL, 7.25, 'after', 1, now()), (101, 2, NULL, NULL, NULL, 1, now())`); err != nil {
				t.Fatal(err)
			}
			want := postgresCanonical(t, srcConn, query)
			if got, ok := s.awaitResult(id, want, 3*time.Minute); !ok {
				t.Fatalf("after the truncate the result is not PostgreSQL's: %s\nstatus %s", got, s.queryStatus(id))
			}
			// The job's history holds the observation that said why it
			// stopped.
			store, err := projections.NewStore(s.inf.Pool)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := store.Events(ctx, env, projections.MaxEventsLimit)
			if err != nil {
				t.Fatal(err)
			}
			var said bool
			for _, e := range evs {
				said = said || strings.Contains(string(e.Payload), "orders was truncated")
			}
			if !said {
				t.Errorf("no status said that the table was truncated; %d events", len(evs))
			}
		})
	}
}

// With the status poller's rounds ten minutes apart, a Debezium task that
// fails and a Flink job that is canceled while running show in
// checkJobStatus and GET /cachedQueries/{id} within seconds: the poller
// lists every connector's and job's state each second
// (handlers.StateFingerprinter).
func TestClusterRunningJobFailureShowsAtOnce(t *testing.T) {
	s := startClusterSystem(t, clusterEngines{debezium: true, flink: true, statusInterval: 10 * time.Minute})
	src, srcConn := sourceDatabase(t)
	ctx := context.Background()
	if _, err := srcConn.Exec(ctx, storeTables+`;
		INSERT INTO customers VALUES (1, 'eu', 'ann', now()), (2, NULL, 'bob', now())`); err != nil {
		t.Fatal(err)
	}
	env := uniqueEnv("fast")
	res := s.postJSON("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": env,
		"schema": storeSchema, "sqlQuery": "SELECT region, count(*) AS n FROM customers GROUP BY region"})
	if res.status != http.StatusCreated {
		t.Fatalf("create query: %d %s", res.status, res.body)
	}
	id := res.json(t)["id"].(string)
	s.deleteOnCleanup(src, env)
	if got, ok := s.awaitResult(id, postgresCanonical(t, srcConn, "SELECT region, count(*) AS n FROM customers GROUP BY region"), 3*time.Minute); !ok {
		t.Fatalf("the Flink query's result: %s\nstatus %s", got, s.queryStatus(id))
	}
	s.waitForStatusWithin(src, env, "the connection RUNNING", 2*time.Minute, func(m map[string]any) bool { return m["status"] == "RUNNING" })
	waitFor(t, 2*time.Minute, "the query RUNNING", func() bool { return strings.Contains(s.queryStatus(id), `"status":"RUNNING"`) })
	// Past the fast polling of new jobs (their first minute).
	time.Sleep(time.Minute)

	// The Flink job canceled behind cdcq's back.
	cl := clustertest.Shared(t)
	var jid string
	waitFor(t, time.Minute, "the job's id", func() bool {
		res, err := http.Get(cl.FlinkRESTURL() + "/jobs/overview")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var body struct {
			Jobs []struct{ Jid, Name, State string }
		}
		json.NewDecoder(res.Body).Decode(&body)
		for _, j := range body.Jobs {
			if j.Name == names.PipelineName(env, id) && j.State == "RUNNING" {
				jid = j.Jid
			}
		}
		return jid != ""
	})
	req, _ := http.NewRequest(http.MethodPatch, cl.FlinkRESTURL()+"/jobs/"+jid+"?mode=cancel", nil)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode >= 300 {
		t.Fatalf("cancel the Flink job: %v %v", res, err)
	}
	canceled := time.Now()
	waitFor(t, 30*time.Second, "the query FAILED", func() bool { return strings.Contains(s.queryStatus(id), `"status":"FAILED"`) })
	t.Logf("the canceled Flink job showed FAILED in GET /cachedQueries/{id} %s after the cancel", time.Since(canceled).Round(time.Millisecond))

	// The slot dropped under the running connector: once Kafka Connect
	// says its task FAILED, checkJobStatus says so within seconds.
	dropSlotUnder(t, srcConn, names.SlotName(env))
	var failed time.Time
	waitFor(t, 2*time.Minute, "Kafka Connect's task FAILED", func() bool {
		res, err := connectGetResponse(cl, "/connectors/"+names.ConnectorName(env)+"/status")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var st struct {
			Tasks []struct{ State string }
		}
		json.NewDecoder(res.Body).Decode(&st)
		failed = time.Now()
		return len(st.Tasks) == 1 && st.Tasks[0].State == "FAILED"
	})
	s.waitForStatusWithin(src, env, "checkJobStatus FAILED", 30*time.Second, func(m map[string]any) bool { return m["status"] == "FAILED" })
	t.Logf("checkJobStatus said FAILED %s after Kafka Connect did", time.Since(failed).Round(time.Millisecond))
}

// An environment deleted and created again under the same id on real
// Debezium: Kafka Connect keeps a deleted connector's offsets, and the new
// connector, of the same name, must not resume from an LSN of the slot the
// delete dropped (its task would fail with "... no longer available on the
// server"). It snapshots again: RUNNING, the change topic gets the rows of
// the second life, and a cached query equals PostgreSQL.
func TestClusterDebeziumRecreateAfterDelete(t *testing.T) {
	s := startClusterSystem(t, clusterEngines{debezium: true})
	src, srcConn := sourceDatabase(t)
	ctx := context.Background()
	if _, err := srcConn.Exec(ctx, storeTables+`;
		INSERT INTO customers VALUES (1, 'eu', 'ann', now()), (2, NULL, 'bob', now())`); err != nil {
		t.Fatal(err)
	}
	env := uniqueEnv("rcr")
	conn := map[string]string{"connectionString": src, "environmentId": env}
	topic := env + ".public.customers"
	connector := names.ConnectorName(env)
	running := func(what string) {
		t.Helper()
		s.waitForStatusWithin(src, env, what, 2*time.Minute, func(m map[string]any) bool {
			if m["status"] == "FAILED" {
				t.Fatalf("%s: the connection FAILED: %v", what, m["reason"])
			}
			return m["status"] == "RUNNING"
		})
	}

	// First life: snapshot, then streamed rows whose offsets Connect
	// commits.
	if res := s.postForm("/createDatabaseConnection", conn); res.status != http.StatusCreated {
		t.Fatalf("create connection: %d %s", res.status, res.body)
	}
	running("first life RUNNING")
	if _, err := srcConn.Exec(ctx, `INSERT INTO customers VALUES (3, 'us', 'cy', now())`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "first life's rows on the change topic", func() bool {
		return customerIDs(t, s.records(topic))[3]
	})
	waitFor(t, time.Minute, "an offset of the streamed row committed", func() bool {
		offsets := connectGet(t, clustertest.Shared(t), "/connectors/"+connector+"/offsets")
		return strings.Contains(offsets, `"lsn"`) && !strings.Contains(offsets, `"snapshot"`)
	})

	if res := s.postForm("/deleteDatabaseConnection", conn); res.status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", res.status, res.body)
	}
	s.waitForStatusWithin(src, env, "DELETED", 2*time.Minute, func(m map[string]any) bool { return m["status"] == "DELETED" })
	if connectorExists(t, connector) {
		t.Fatal("the connector is still in Kafka Connect")
	}

	// Second life, with rows written while there was no slot.
	if _, err := srcConn.Exec(ctx, `INSERT INTO customers VALUES (4, 'eu', 'dan', now()); UPDATE customers SET region = 'us' WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	if res := s.postForm("/createDatabaseConnection", conn); res.status != http.StatusCreated {
		t.Fatalf("create connection again: %d %s", res.status, res.body)
	}
	s.deleteOnCleanup(src, env)
	running("second life RUNNING")
	if _, err := srcConn.Exec(ctx, `INSERT INTO customers VALUES (5, NULL, 'eve', now())`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "second life's rows on the change topic", func() bool {
		ids := customerIDs(t, s.records(topic))
		return ids[4] && ids[5]
	})
	running("still RUNNING")

	const query = "SELECT region, count(*) AS n FROM customers GROUP BY region"
	res := s.postJSON("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": env,
		"schema": storeSchema, "sqlQuery": query})
	if res.status != http.StatusCreated {
		t.Fatalf("create query: %d %s", res.status, res.body)
	}
	id := res.json(t)["id"].(string)
	if got, ok := s.awaitResult(id, postgresCanonical(t, srcConn, query), 2*time.Minute); !ok {
		t.Fatalf("the query's result: %s\nstatus %s", got, s.queryStatus(id))
	}
}

// customerIDs lists the ids of the rows that Debezium change records of
// customers carry after the change.
func customerIDs(t *testing.T, recs []*kgo.Record) map[int]bool {
	t.Helper()
	ids := map[int]bool{}
	for _, r := range recs {
		if len(r.Value) == 0 {
			continue
		}
		var v struct {
			After   *struct{ ID int } `json:"after"`
			Payload struct {
				After *struct{ ID int } `json:"after"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("change record %.200s: %v", r.Value, err)
		}
		for _, a := range []*struct{ ID int }{v.After, v.Payload.After} {
			if a != nil {
				ids[a.ID] = true
			}
		}
	}
	return ids
}
