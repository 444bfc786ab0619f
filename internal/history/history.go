// Package history keeps the job-state tables that only grow bounded:
// job_events, rejected_commands, handled_commands and command_order lose
// their rows older than a retention (CDCQ_HISTORY_RETENTION).
//
// Every worker runs a Pruner: its DELETEs are idempotent and take small
// batches of rows that no other worker is deleting (SKIP LOCKED), so
// workers need no election and never hold many row locks at once.
//
// What is kept, and why:
//   - job_events: each environment's newest event, however old, so that
//     the events of a quiet environment do not read empty. job_events also
//     makes the projector idempotent (an event id already there is not
//     applied again): only a redelivery older than the retention could be
//     applied twice, and the events topic is consumed in order within
//     minutes.
//   - rejected_commands: each environment's newest, so that an environment
//     known only by its rejected commands keeps its FAILED view and reason.
//   - handled_commands: no row is special (dedup is by command id), but the
//     retention must outlast any redelivery of a command: the control
//     topic's retention, and Kafka's retention of the consumer group's
//     offsets. The default, 14 days, is twice Kafka's default of both.
//   - command_order: each environment's highest number. The counter is
//     command_sequence (inbox.Sequence), never pruned, so numbers still
//     only grow; an older row only maps an old command id to its number.
//     A command redelivered after its row was pruned gets a new, larger
//     number, as a new command would: the same bound as handled_commands,
//     whose retention it shares, and such a command was handled already.
package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultRetention is CDCQ_HISTORY_RETENTION's default.
const DefaultRetention = 14 * 24 * time.Hour

// Config configures a Pruner.
type Config struct {
	// Pool is the job-state database. Required.
	Pool *pgxpool.Pool
	// Retention is how long rows are kept. Default DefaultRetention.
	Retention time.Duration
	// Every is how often a pruning pass runs, give or take a tenth so
	// that workers started together spread out. Default 5m.
	Every time.Duration
	// Batch is how many rows one DELETE takes at most. Default 1000.
	Batch int
	// Now is the clock. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Pruner deletes old job history.
type Pruner struct{ cfg Config }

// New refuses a nil pool.
func New(cfg Config) (*Pruner, error) {
	if cfg.Pool == nil {
		return nil, errors.New("history: nil pool")
	}
	if cfg.Retention < 0 || cfg.Every < 0 || cfg.Batch < 0 {
		return nil, errors.New("history: Retention, Every and Batch must not be negative")
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Every == 0 {
		cfg.Every = 5 * time.Minute
	}
	if cfg.Batch == 0 {
		cfg.Batch = 1000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Retention < KafkaDefaultRetention {
		cfg.Logger.Warn("history: CDCQ_HISTORY_RETENTION is shorter than Kafka's default retention of the control topic; "+
			"a command redelivered after its handled_commands row was pruned is carried out again (the handlers are idempotent, "+
			"but its work is repeated). Keep it longer than the control topic's retention.ms",
			"retention", cfg.Retention, "kafka_default", KafkaDefaultRetention)
	}
	return &Pruner{cfg: cfg}, nil
}

// KafkaDefaultRetention is Kafka's default retention.ms (7 days), which
// the control topic has unless its operator changed it.
const KafkaDefaultRetention = 7 * 24 * time.Hour

// tables are the pruning statements: $1 is the cutoff, $2 the batch size.
// Each deletes one batch and reports how many rows it deleted.
var tables = []struct{ name, sql string }{
	{"job_events", `
		DELETE FROM job_events WHERE id IN (
			SELECT e.id FROM job_events e
			WHERE e.recorded_at < $1
			  AND EXISTS (SELECT 1 FROM job_events n WHERE n.environment_id = e.environment_id AND n.id > e.id)
			ORDER BY e.recorded_at LIMIT $2 FOR UPDATE SKIP LOCKED)`},
	{"rejected_commands", `
		DELETE FROM rejected_commands WHERE id IN (
			SELECT r.id FROM rejected_commands r
			WHERE r.at < $1
			  AND EXISTS (SELECT 1 FROM rejected_commands n WHERE n.environment_id = r.environment_id
			              AND (n.at, n.id) > (r.at, r.id))
			ORDER BY r.at LIMIT $2 FOR UPDATE SKIP LOCKED)`},
	{"handled_commands", `
		DELETE FROM handled_commands WHERE command_id IN (
			SELECT command_id FROM handled_commands
			WHERE handled_at < $1
			ORDER BY handled_at LIMIT $2 FOR UPDATE SKIP LOCKED)`},
	{"command_order", `
		DELETE FROM command_order WHERE command_id IN (
			SELECT o.command_id FROM command_order o
			WHERE o.assigned_at < $1
			  AND EXISTS (SELECT 1 FROM command_order n WHERE n.environment_id = o.environment_id AND n.seq > o.seq)
			ORDER BY o.assigned_at LIMIT $2 FOR UPDATE SKIP LOCKED)`},
}

// Prune deletes the rows older than the retention, batch by batch, and
// returns how many it deleted of each table.
func (p *Pruner) Prune(ctx context.Context) (map[string]int64, error) {
	cutoff := p.cfg.Now().Add(-p.cfg.Retention)
	out := map[string]int64{}
	for _, t := range tables {
		for {
			tag, err := p.cfg.Pool.Exec(ctx, t.sql, cutoff, p.cfg.Batch)
			if err != nil {
				return out, fmt.Errorf("history: prune %s: %w", t.name, err)
			}
			out[t.name] += tag.RowsAffected()
			if tag.RowsAffected() < int64(p.cfg.Batch) {
				break
			}
		}
	}
	return out, nil
}

// Run prunes every Every until ctx ends. A failed pass is logged and the
// next one tries again.
func (p *Pruner) Run(ctx context.Context) error {
	for {
		wait := p.cfg.Every + time.Duration((rand.Float64()-0.5)*0.2*float64(p.cfg.Every))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		n, err := p.Prune(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			p.cfg.Logger.Warn("prune job history", "error", err)
		case n["job_events"]+n["rejected_commands"]+n["handled_commands"]+n["command_order"] > 0:
			p.cfg.Logger.Info("pruned job history", "retention", p.cfg.Retention,
				"job_events", n["job_events"], "rejected_commands", n["rejected_commands"], "handled_commands", n["handled_commands"],
				"command_order", n["command_order"])
		}
	}
}
