package service

import (
	"cmp"
	"context"
	"errors"
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
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/config"
)

// The storm: for a handful of environments, creates and deletes of the
// connection and creates of a cached query, sent at the same time from
// several clients, on the embedded capture and engine with two workers and
// the status poller running every 200 ms. Every status the job-state
// database takes is recorded by a trigger, and the history must be
// monotonic for each command: an older command's state never follows a
// newer command's, and within one command the status only moves forward
// (PENDING, then RUNNING/PAUSED/FAILED, then DELETING, then DELETED). In
// the end each environment shows what its last command asked for.
func TestStatusOrderUnderCreateDeleteStorm(t *testing.T) {
	s := startSystemWith(t, func(inf *Infra, cfg config.Config, logger *slog.Logger) []WorkerDeps {
		var out []WorkerDeps
		for range 2 {
			deps, err := Engines(cfg, inf, logger)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, deps)
		}
		return out
	})
	src, srcConn := sourceDatabase(t)
	ctx := context.Background()
	if _, err := srcConn.Exec(ctx, `CREATE TABLE orders (id int PRIMARY KEY, total numeric(10,2));
		INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 50) g`); err != nil {
		t.Fatal(err)
	}
	recordStatusHistory(t, s.inf.Pool)

	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 14))
	const (
		environments = 4
		clients      = 3 // per environment, sending at the same time
		perClient    = 4
	)
	type plan struct {
		env   string
		delay time.Duration
		op    string
	}
	var plans [][]plan
	var envs []string
	for range environments {
		env := uniqueEnv("storm")
		envs = append(envs, env)
		for range clients {
			var p []plan
			for range perClient {
				op := []string{"/createDatabaseConnection", "/deleteDatabaseConnection", "/createCachedQuery"}[rng.IntN(3)]
				p = append(p, plan{env: env, delay: time.Duration(rng.IntN(400)) * time.Millisecond, op: op})
			}
			plans = append(plans, p)
		}
	}
	var wg sync.WaitGroup
	for _, p := range plans {
		wg.Go(func() {
			for _, step := range p {
				time.Sleep(step.delay)
				body := map[string]string{"connectionString": src, "environmentId": step.env}
				want := http.StatusCreated
				switch step.op {
				case "/deleteDatabaseConnection":
					want = http.StatusAccepted
				case "/createCachedQuery":
					body["schema"], body["sqlQuery"] = stormSchema, stormQuery
				}
				if res := s.postJSON(step.op, body); res.status != want {
					t.Errorf("%s %s: %d %s", step.op, step.env, res.status, res.body)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// The order in which the workers carry the commands out is the order
	// of the control topic (one partition per environment).
	order := map[string][]stormCommand{}
	for _, r := range s.records(s.inf.Names.Commands) {
		env := header(r, commands.EnvironmentHeader)
		order[env] = append(order[env], stormCommand{
			id: header(r, commands.CommandIDHeader), name: header(r, commands.NameHeader), offset: r.Offset,
		})
	}
	for _, env := range envs {
		slices.SortFunc(order[env], func(a, b stormCommand) int { return cmp.Compare(a.offset, b.offset) })
		if got := len(order[env]); got != clients*perClient {
			t.Fatalf("%s: %d commands on the control topic, want %d", env, got, clients*perClient)
		}
	}

	// Every environment settles in the state its last command asked for.
	for _, env := range envs {
		want := expectedFinal(order[env])
		var got stormFinal
		settled := poll(120*time.Second, func() bool {
			got = readFinal(t, s.inf.Pool, env)
			return got.equal(want)
		})
		if !settled {
			t.Errorf("%s did not settle as its last command asks: got %s, want %s; commands %s", env, got, want, describe(order[env]))
		}
	}

	// And every status it took on the way is in order.
	for _, env := range envs {
		index := map[string]int{}
		for i, c := range order[env] {
			index[c.id] = i
		}
		for _, table := range []string{"connections", "cached_queries"} {
			hist := readHistory(t, s.inf.Pool, table, env)
			if problem := checkMonotonic(table, hist, order[env], index); problem != "" {
				t.Errorf("%s %s: %s\nhistory:\n%s\ncommands %s", env, table, problem, formatHistory(hist, index), describe(order[env]))
			}
		}
	}
}

const (
	stormSchema = "model orders {\n  id    Int      @id\n  total Decimal? @db.Decimal(10, 2)\n}\n"
	stormQuery  = "SELECT count(*) AS n, sum(total) AS revenue FROM orders"
)

type stormCommand struct {
	id, name string
	offset   int64
}

func describe(cmds []stormCommand) string {
	var b strings.Builder
	for i, c := range cmds {
		fmt.Fprintf(&b, "\n  %d %s %s", i, c.name, c.id)
	}
	return b.String()
}

// stormFinal is an environment's connection and query status, "" for a
// row that does not exist, and the commands the rows reflect.
type stormFinal struct {
	conn, connCommand, query, queryCommand string
}

// equal compares a state read (f) with the one expected (o).
func (f stormFinal) equal(o stormFinal) bool {
	return f == o
}

func (f stormFinal) String() string {
	return fmt.Sprintf("connection %q (command %s), query %q (command %s)", f.conn, f.connCommand, f.query, f.queryCommand)
}

// expectedFinal is what the commands, carried out in order, leave: the
// connection RUNNING after a create (of the connection or of a query) and
// DELETED after a delete; the query RUNNING when a createCachedQuery came
// after the last delete, DELETED by the first delete after its last create,
// and no query at all when none was ever created.
func expectedFinal(cmds []stormCommand) stormFinal {
	var f stormFinal
	for _, c := range cmds {
		switch c.name {
		case commands.NameCreateDatabaseConnection:
			f.conn, f.connCommand = "RUNNING", c.id
		case commands.NameCreateCachedQuery:
			f.conn, f.connCommand, f.query, f.queryCommand = "RUNNING", c.id, "RUNNING", c.id
		case commands.NameDeleteDatabaseConnection:
			if f.conn != "" { // a delete of what never existed leaves no row
				f.conn, f.connCommand = "DELETED", c.id
			}
			if f.query == "RUNNING" { // a deleted query stays as its delete left it
				f.query, f.queryCommand = "DELETED", c.id
			}
		}
	}
	return f
}

func readFinal(t *testing.T, pool *pgxpool.Pool, env string) stormFinal {
	t.Helper()
	var f stormFinal
	ctx := context.Background()
	err := pool.QueryRow(ctx, `SELECT status, last_command_id FROM connections WHERE environment_id = $1`, env).Scan(&f.conn, &f.connCommand)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	err = pool.QueryRow(ctx, `SELECT status, last_command_id FROM cached_queries WHERE environment_id = $1`, env).Scan(&f.query, &f.queryCommand)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	return f
}

// recordStatusHistory makes the job-state database remember every status
// (and every change of the command a row reflects) that the projector
// writes to connections and cached_queries, in the order it wrote them.
func recordStatusHistory(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `
		CREATE TABLE test_status_history (
			id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			table_name     text NOT NULL,
			environment_id text NOT NULL,
			status         text NOT NULL,
			reason         text NOT NULL,
			command_id     text NOT NULL
		);
		CREATE FUNCTION test_record_status() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status
			   OR NEW.last_command_id IS DISTINCT FROM OLD.last_command_id THEN
				INSERT INTO test_status_history (table_name, environment_id, status, reason, command_id)
				VALUES (TG_TABLE_NAME, NEW.environment_id, NEW.status, NEW.reason, NEW.last_command_id);
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER test_connections_history AFTER INSERT OR UPDATE ON connections
			FOR EACH ROW EXECUTE FUNCTION test_record_status();
		CREATE TRIGGER test_cached_queries_history AFTER INSERT OR UPDATE ON cached_queries
			FOR EACH ROW EXECUTE FUNCTION test_record_status();`)
	if err != nil {
		t.Fatal(err)
	}
}

type historyEntry struct {
	status, reason, command string
}

func readHistory(t *testing.T, pool *pgxpool.Pool, table, env string) []historyEntry {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT status, reason, command_id FROM test_status_history
		WHERE table_name = $1 AND environment_id = $2 ORDER BY id`, table, env)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []historyEntry
	for rows.Next() {
		var h historyEntry
		if err := rows.Scan(&h.status, &h.reason, &h.command); err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func formatHistory(hist []historyEntry, index map[string]int) string {
	var b strings.Builder
	for _, h := range hist {
		i, ok := index[h.command]
		at := fmt.Sprint(i)
		if !ok {
			at = "?"
		}
		reason := h.reason
		if len(reason) > 100 {
			reason = reason[:100] + "…"
		}
		fmt.Fprintf(&b, "  command %s %-8s %s\n", at, h.status, reason)
	}
	return b.String()
}

// statusRank orders a lifecycle: PENDING, then what the engine reports of
// a job that was started (RUNNING, PAUSED, FAILED), then DELETING, then
// DELETED.
var statusRank = map[string]int{"PENDING": 0, "RUNNING": 1, "PAUSED": 1, "FAILED": 1, "DELETING": 2, "DELETED": 3}

// checkMonotonic says what is wrong with a row's status history, or "".
// Each entry names the command whose state it shows: the commands must
// follow the control topic's order, and within one command the status may
// only move forward. FAILED may follow any status but DELETED (a delete
// can fail). Which statuses a command may cause depends on what it is.
func checkMonotonic(table string, hist []historyEntry, cmds []stormCommand, index map[string]int) string {
	prev := -1
	prevStatus := ""
	for n, h := range hist {
		i, ok := index[h.command]
		if !ok {
			return fmt.Sprintf("entry %d (%s) names command %q, which is not on the control topic", n, h.status, h.command)
		}
		if i < prev {
			return fmt.Sprintf("entry %d: %s of command %d follows the state of the newer command %d", n, h.status, i, prev)
		}
		if !mayCause(table, cmds[i].name, h.status) {
			return fmt.Sprintf("entry %d: %s is not a status command %d (%s) causes", n, h.status, i, cmds[i].name)
		}
		if i == prev {
			back := statusRank[h.status] < statusRank[prevStatus]
			if h.status == "FAILED" && prevStatus != "DELETED" {
				back = false
			}
			if back {
				return fmt.Sprintf("entry %d: %s after %s within command %d", n, h.status, prevStatus, i)
			}
		}
		prev, prevStatus = i, h.status
	}
	return ""
}

func mayCause(table, command, status string) bool {
	switch {
	case command == commands.NameDeleteDatabaseConnection && table == "connections":
		return status == "DELETING" || status == "DELETED" || status == "FAILED"
	case command == commands.NameDeleteDatabaseConnection:
		return status == "DELETED"
	case command == commands.NameCreateDatabaseConnection && table == "cached_queries":
		return false
	default: // a create
		return status == "PENDING" || status == "RUNNING" || status == "PAUSED" || status == "FAILED"
	}
}
