package history_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/history"
	"github.com/cdcq/cdcq/internal/inbox"
	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/projections"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestPruneDeletesOnlyOldRows writes history through the projector and
// the inbox, ages part of it, and checks that a pass deletes the aged rows
// but each environment's newest event and rejected command, keeps the
// recent ones, and that the projector and the inbox still refuse what
// they saw recently.
func TestPruneDeletesOnlyOldRows(t *testing.T) {
	ctx := context.Background()
	_, pool := pgtest.NewJobState(t)
	store, err := projections.NewStore(pool)
	if err != nil {
		t.Fatal(err)
	}
	in, err := inbox.New(pool)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	// Environment "old" has only old history; "mixed" old and recent.
	rejected := func(env string, i int) events.CommandRejected {
		return events.CommandRejected{Meta: events.Meta{EventID: fmt.Sprintf("rej-%s-%d", env, i), EnvironmentID: env,
			CommandID: fmt.Sprintf("cmd-%s-%d", env, i), At: now}, CommandName: "createDatabaseConnection", Reason: "bad"}
	}
	for _, env := range []string{"old", "mixed"} {
		for i := range 5 {
			if err := store.Apply(ctx, rejected(env, i)); err != nil {
				t.Fatal(err)
			}
			if err := in.MarkHandled(ctx, fmt.Sprintf("cmd-%s-%d", env, i), "createDatabaseConnection", env); err != nil {
				t.Fatal(err)
			}
			if _, err := in.Sequence(ctx, env, fmt.Sprintf("cmd-%s-%d", env, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Age everything of "old", and the first three of "mixed".
	age := func(sql string) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, now.Add(-30*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	age(`UPDATE job_events SET recorded_at = $1, at = $1 WHERE environment_id = 'old' OR event_id IN ('rej-mixed-0', 'rej-mixed-1', 'rej-mixed-2')`)
	age(`UPDATE rejected_commands SET at = $1 WHERE environment_id = 'old' OR event_id IN ('rej-mixed-0', 'rej-mixed-1', 'rej-mixed-2')`)
	age(`UPDATE handled_commands SET handled_at = $1 WHERE environment_id = 'old' OR command_id IN ('cmd-mixed-0', 'cmd-mixed-1', 'cmd-mixed-2')`)
	age(`UPDATE command_order SET assigned_at = $1 WHERE environment_id = 'old' OR command_id IN ('cmd-mixed-0', 'cmd-mixed-1', 'cmd-mixed-2')`)

	p, err := history.New(history.Config{Pool: pool, Retention: 7 * 24 * time.Hour, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	n, err := p.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// job_events and rejected_commands: "old" keeps its newest (4 of 5
	// deleted), "mixed" loses its 3 old ones; so does command_order.
	// handled_commands: all 8 old.
	want := map[string]int64{"job_events": 7, "rejected_commands": 7, "handled_commands": 8, "command_order": 7}
	for k, v := range want {
		if n[k] != v {
			t.Errorf("deleted %d rows of %s, want %d", n[k], k, v)
		}
	}
	ids := func(sql string) []string {
		t.Helper()
		rows, err := pool.Query(ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	for sql, want := range map[string]string{
		`SELECT event_id FROM job_events ORDER BY event_id`:           "[rej-mixed-3 rej-mixed-4 rej-old-4]",
		`SELECT event_id FROM rejected_commands ORDER BY event_id`:    "[rej-mixed-3 rej-mixed-4 rej-old-4]",
		`SELECT command_id FROM handled_commands ORDER BY command_id`: "[cmd-mixed-3 cmd-mixed-4]",
		`SELECT command_id FROM command_order ORDER BY command_id`:    "[cmd-mixed-3 cmd-mixed-4 cmd-old-4]",
	} {
		if got := fmt.Sprint(ids(sql)); got != want {
			t.Errorf("%s: %s, want %s", sql, got, want)
		}
	}
	// The environment known only by its rejected commands still says why.
	v, err := store.Connection(ctx, "old")
	if err != nil {
		t.Fatalf("view of an environment with pruned history: %v", err)
	}
	if len(v.RejectedCommands) != 1 || v.RejectedCommands[0].CommandID != "cmd-old-4" {
		t.Errorf("rejected commands of old: %+v", v.RejectedCommands)
	}
	// Dedup of what is recent still works: a redelivered recent event adds
	// no row, a recent command is still handled.
	if err := store.Apply(ctx, rejected("mixed", 4)); err != nil {
		t.Fatal(err)
	}
	if got := ids(`SELECT event_id FROM rejected_commands WHERE environment_id = 'mixed'`); len(got) != 2 {
		t.Errorf("a redelivered recent event was applied again: %v", got)
	}
	if seen, err := in.Handled(ctx, "cmd-mixed-4"); err != nil || !seen {
		t.Errorf("Handled(cmd-mixed-4) = %v, %v; want true", seen, err)
	}
	// Numbers still only grow: a recent command keeps its number, and
	// (below) the next command of "old", whose older rows are gone, gets
	// the next one.
	if seq, err := in.Sequence(ctx, "mixed", "cmd-mixed-4"); err != nil || seq != 5 {
		t.Errorf("Sequence(cmd-mixed-4) = %d, %v; want 5", seq, err)
	}
	// A second pass finds nothing more.
	n, err = p.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n["job_events"]+n["rejected_commands"]+n["handled_commands"]+n["command_order"] != 0 {
		t.Errorf("second pass deleted %v", n)
	}
	if seq, err := in.Sequence(ctx, "old", "cmd-old-5"); err != nil || seq != 6 {
		t.Errorf("Sequence(cmd-old-5) = %d, %v; want 6", seq, err)
	}
}
