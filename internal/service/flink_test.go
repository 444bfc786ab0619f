package service

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/flink/flinkfake"
	"github.com/cdcq/cdcq/internal/flink/kafkatopics"
	"github.com/cdcq/cdcq/internal/kafkaconnect/connectfake"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/names"
)

const ordersSchema = `datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

model Customer {
  id     Int     @id
  region String
  orders Order[]

  @@map("customers")
}

model Order {
  id         Int      @id
  customerId Int      @map("customer_id")
  total      Decimal  @db.Decimal(10, 2)
  customer   Customer @relation(fields: [customerId], references: [id])

  @@map("orders")
}
`

// From POST /createCachedQuery to the statements Flink's SQL Gateway
// received, then a failed job seen by the status poller, then a delete
// that cancels the job.
func TestCachedQueryOnFlink(t *testing.T) {
	sys, fl := startWithConnectAndFlink(t)
	src := ordersDatabase(t)
	const env = "shop9"
	sql := "SELECT c.region, count(*) AS orders, sum(o.total) AS revenue\nFROM orders o JOIN customers c ON c.id = o.customer_id\nGROUP BY c.region HAVING count(*) > 1"
	res := sys.postForm("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": env, "schema": ordersSchema, "sqlQuery": sql})
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	queryID := res.json(t)["id"].(string)
	if res.header.Get("Location") != "/cachedQueries/"+queryID {
		t.Errorf("Location = %q", res.header.Get("Location"))
	}
	pipeline := names.PipelineName(env, queryID)
	m := sys.waitForStatus(src, env, "query RUNNING", func(m map[string]any) bool {
		qs, _ := m["cachedQueries"].([]any)
		return len(qs) == 1 && qs[0].(map[string]any)["status"] == "RUNNING" && qs[0].(map[string]any)["jobId"] != nil
	})
	q := m["cachedQueries"].([]any)[0].(map[string]any)
	if q["name"] != pipeline || q["engine"] != "flink" {
		t.Errorf("query = %v", q)
	}
	if m["status"] != "RUNNING" {
		t.Errorf("capture status = %v; createCachedQuery must ensure the capture", m["status"])
	}

	sessions := fl.Gateway.Sessions()
	if len(sessions) != 1 || !sessions[0].Closed {
		t.Fatalf("sessions = %+v, want one, closed", sessions)
	}
	all := strings.Join(sessions[0].Statements, ";\n")
	for _, want := range []string{
		"'pipeline.name' = '" + pipeline + "'",
		"'format' = 'debezium-json'",
		"'debezium-json.timestamp-format.standard' = 'ISO-8601'",
		"'scan.startup.mode' = 'earliest-offset'",
		"'connector' = 'upsert-kafka'",
		"'topic' = '" + env + "'",
		"INSERT INTO",
		"PRIMARY KEY",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("statements lack %s:\n%s", want, all)
		}
	}
	if !strings.Contains(all, env+`\.public\.orders`) && !strings.Contains(all, env+".public.orders") {
		t.Errorf("statements do not read the orders topic:\n%s", all)
	}

	jobs := fl.JobManager.JobsNamed(pipeline)
	if len(jobs) != 1 {
		t.Fatalf("jobs named %s: %+v", pipeline, jobs)
	}
	trace := "java.lang.RuntimeException: One or more fetchers have encountered exception\nCaused by: org.apache.kafka.common.errors.TopicAuthorizationException: Not authorized to access topics: [" + env + ".public.orders]"
	if err := fl.JobManager.FailJob(jobs[0].ID, trace); err != nil {
		t.Fatal(err)
	}
	m = sys.waitForStatus(src, env, "query FAILED", func(m map[string]any) bool {
		q := m["cachedQueries"].([]any)[0].(map[string]any)
		return q["status"] == "FAILED"
	})
	q = m["cachedQueries"].([]any)[0].(map[string]any)
	if reason, _ := q["reason"].(string); !strings.Contains(reason, "Not authorized to access topics") {
		t.Errorf("reason = %q", reason)
	}
	if root, _ := q["rootException"].(string); !strings.Contains(root, "TopicAuthorizationException") {
		t.Errorf("rootException = %q", root)
	}

	// Repeating the create submits the query again (the job failed) under
	// the same id.
	res = sys.postJSON("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": env, "schema": ordersSchema, "sqlQuery": strings.ReplaceAll(sql, "\n", " ")})
	if got := res.json(t)["id"]; got != queryID {
		t.Errorf("repeated create got id %v, want %s", got, queryID)
	}
	sys.waitForStatus(src, env, "query RUNNING again", func(m map[string]any) bool {
		return m["cachedQueries"].([]any)[0].(map[string]any)["status"] == "RUNNING"
	})
	if n := len(fl.JobManager.JobsNamed(pipeline)); n != 2 {
		t.Errorf("%d jobs named %s, want 2", n, pipeline)
	}

	sys.postForm("/deleteDatabaseConnection", map[string]string{"connectionString": src, "environmentId": env})
	sys.waitForStatus(src, env, "DELETED", func(m map[string]any) bool { return m["status"] == "DELETED" })
	for _, j := range fl.JobManager.JobsNamed(pipeline) {
		if j.State != "CANCELED" && j.State != "FAILED" {
			t.Errorf("job %s is %s after delete", j.ID, j.State)
		}
	}
	if q := sys.postJSON("/checkJobStatus", map[string]string{"connectionString": src, "environmentId": env}).json(t)["cachedQueries"].([]any)[0].(map[string]any); q["status"] != "DELETED" {
		t.Errorf("query after delete = %v", q)
	}
}

// A SQL error reported by Flink fails the query with Flink's message.
func TestCachedQueryFlinkSQLErrorFailsQuery(t *testing.T) {
	sys, fl := startWithConnectAndFlink(t)
	src := ordersDatabase(t)
	fl.Gateway.FailStatement(flinkfake.StatementFailure{
		Contains: "INSERT INTO",
		Chain:    []string{"org.apache.flink.table.api.ValidationException: SQL validation failed. Cannot apply 'SUM' to arguments of type 'SUM(<VARCHAR(2147483647)>)'"},
	})
	res := sys.postJSON("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": "shop8",
		"schema": ordersSchema, "sqlQuery": "SELECT count(*) FROM orders"})
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	m := sys.waitForStatus(src, "shop8", "query FAILED", func(m map[string]any) bool {
		qs, _ := m["cachedQueries"].([]any)
		return len(qs) == 1 && qs[0].(map[string]any)["status"] == "FAILED"
	})
	reason := fmt.Sprint(m["cachedQueries"].([]any)[0].(map[string]any)["reason"])
	if !strings.Contains(reason, "Cannot apply 'SUM'") {
		t.Errorf("reason = %q, want Flink's message", reason)
	}
}

// ordersDatabase is a source database with the tables ordersSchema
// describes: the worker checks them before it starts a query.
func ordersDatabase(t *testing.T) string {
	t.Helper()
	src, conn := sourceDatabase(t)
	if _, err := conn.Exec(context.Background(), `
		CREATE TABLE customers (id integer PRIMARY KEY, region text NOT NULL);
		CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer NOT NULL, total numeric(10,2) NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return src
}

func startWithConnectAndFlink(t *testing.T) (*system, *flinkfake.Server) {
	t.Helper()
	fl := flinkfake.NewServer(t)
	fl.Gateway.SetStatusPolls(0)
	flinkCfg := config.Config{FlinkGatewayURL: fl.GatewayURL, FlinkRESTURL: fl.JobManagerURL, FlinkKafkaBrokers: []string{"kafka:9092"}}
	return startWithConnectAndFlinkConfig(t, flinkCfg, nil), fl
}

// startWithConnectAndFlinkConfig starts the system with Debezium on a fake
// Kafka Connect and Flink as flinkCfg names it, its jobs given the Kafka
// security sec (nil: the system's own).
func startWithConnectAndFlinkConfig(t *testing.T, flinkCfg config.Config, sec *kafkasec.Security) *system {
	t.Helper()
	connect := connectfake.NewServer(t)
	return startSystemWith(t, func(inf *Infra, cfg config.Config, _ *slog.Logger) []WorkerDeps {
		source, err := SourceClient(cfg, inf)
		if err != nil {
			t.Fatal(err)
		}
		capture, err := kafkaConnectCapture(config.Config{ConnectURL: connect.URL}, source)
		if err != nil {
			t.Fatal(err)
		}
		topics, err := kafkatopics.New(inf.Kafka())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(topics.Close)
		jobSec := inf.KafkaSecurity
		if sec != nil {
			jobSec = *sec
		}
		proc, err := flinkProcessor(flinkCfg, jobSec, topics)
		if err != nil {
			t.Fatal(err)
		}
		return []WorkerDeps{{Capture: capture, Processor: proc, Source: source}}
	})
}
