package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/leader"
	"github.com/cdcq/cdcq/internal/pgsource"
)

// liveStatus is what a running capture knows about itself; the reporter
// publishes it.
type liveStatus struct {
	mu       sync.Mutex
	phase    string
	snapshot *jobs.SnapshotProgress
	warnings []string

	// changed nudges the reporter to publish at once (a new phase).
	changed chan struct{}

	// acked is the position Kafka acknowledged everything up to.
	acked atomic.Uint64
	// oldestUnacked is the commit time (unix ns) of the oldest change not
	// yet acknowledged, 0 when there is none.
	oldestUnacked atomic.Int64
}

func (l *liveStatus) setPhase(p string) {
	l.mu.Lock()
	l.phase = p
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

func (l *liveStatus) setWarnings(w []string) {
	l.mu.Lock()
	l.warnings = w
	l.mu.Unlock()
}

// updateSnapshot lets fn change the snapshot progress under the lock.
func (l *liveStatus) updateSnapshot(fn func(p *jobs.SnapshotProgress)) {
	l.mu.Lock()
	if l.snapshot == nil {
		l.snapshot = &jobs.SnapshotProgress{}
	}
	fn(l.snapshot)
	l.mu.Unlock()
}

func (l *liveStatus) read() (phase string, snap *jobs.SnapshotProgress, warnings []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.snapshot != nil {
		s := *l.snapshot
		s.Tables = append([]jobs.TableProgress(nil), l.snapshot.Tables...)
		snap = &s
	}
	return l.phase, snap, append([]string(nil), l.warnings...)
}

// run runs one environment's capture until ctx ends or the capture is
// deleted. The caller holds the environment's lease. Failures are recorded
// and retried with backoff: a terminal one (the source lost wal_level or a
// privilege) shows as FAILED until the user fixes the source.
func (e *Engine) run(ctx context.Context, environmentID string) {
	log := e.cfg.Logger.With("environment_id", environmentID)
	backoff := e.cfg.RetryMin
	for ctx.Err() == nil {
		row, ok, err := e.store.load(ctx, environmentID)
		if err != nil {
			log.Warn("embedded capture: read state", "error", err)
			if sleep(ctx, backoff) != nil {
				return
			}
			continue
		}
		if !ok || row.Deleted {
			return
		}
		started := time.Now()
		err = e.session(ctx, row, log)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errNotWanted), errors.Is(err, errChanged):
			continue
		case errors.Is(err, leader.ErrFenced):
			// Another worker took the capture over: stop without a word
			// to the job state, which is now its successor's.
			log.Warn("embedded capture: another worker took it over; stopped", "error", err)
			return
		}
		if time.Since(started) > 2*e.cfg.RetryMax {
			backoff = e.cfg.RetryMin
		}
		log.Warn("embedded capture stopped; retrying", "error", err, "retry_in", backoff)
		if rerr := e.store.recordError(ctx, environmentID, row.Version, e.cfg.WorkerID, err); rerr != nil && ctx.Err() == nil {
			log.Warn("embedded capture: record error", "error", rerr)
		} else if rerr == nil {
			e.statusChanged(environmentID) // failed, or retrying
		}
		if e.wait(ctx, environmentID, row.Version, backoff) != nil {
			return
		}
		backoff = min(backoff*2, e.cfg.RetryMax)
	}
}

// wait sleeps d, keeping the capture's heartbeat fresh.
func (e *Engine) wait(ctx context.Context, environmentID string, version int64, d time.Duration) error {
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return nil
		}
		if err := sleep(ctx, min(left, 10*time.Second)); err != nil {
			return err
		}
		_ = e.store.touch(ctx, environmentID, version)
	}
}

// session is one attempt: connect, prepare, snapshot if needed, stream. It
// returns errNotWanted or errChanged when the reporter found the capture
// deleted or changed.
func (e *Engine) session(ctx context.Context, row captureRow, log *slog.Logger) error {
	plain, err := e.cfg.Sealer.Open(row.ConnectionSealed, row.EnvironmentID)
	if err != nil {
		return jobs.Terminalf("the stored connection string does not open with this worker's key (is CDCQ_SECRET_KEY the same everywhere?): %v", err)
	}
	src, err := parseSource(e.cfg.Source, plain, e.cfg.ConnectTimeout)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	live := &liveStatus{phase: phaseStarting, snapshot: row.Snapshot, changed: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.report(ctx, cancel, row, src, live, log)
	}()
	err = e.capture(ctx, cancel, &wg, row, src, live, log)
	cause := context.Cause(ctx)
	cancel(nil)
	wg.Wait()
	if errors.Is(cause, errNotWanted) || errors.Is(cause, errChanged) || errors.Is(cause, leader.ErrFenced) {
		return cause
	}
	return err
}

// report publishes the live status every ProgressInterval and cancels the
// session when the capture was deleted or changed.
func (e *Engine) report(ctx context.Context, cancel context.CancelCauseFunc, row captureRow, src source, live *liveStatus, log *slog.Logger) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	t := time.NewTicker(e.cfg.ProgressInterval)
	defer t.Stop()
	published := "" // the phase last recorded
	for {
		phase, snap, warnings := live.read()
		r := report{Phase: phase, Worker: e.cfg.WorkerID, Snapshot: snap, Warnings: warnings}
		if phase == phaseStreaming {
			r.Lag = e.lag(ctx, &conn, src, live)
		}
		switch err := e.store.publish(ctx, row.EnvironmentID, row.Version, r); {
		case errors.Is(err, errNotWanted), errors.Is(err, errChanged), errors.Is(err, leader.ErrFenced):
			cancel(err)
			return
		case err != nil && ctx.Err() == nil:
			log.Warn("embedded capture: report progress", "error", err)
		case err == nil && phase != published:
			// Starting, snapshot, streaming: the status poller shows it at
			// once instead of on its next round.
			published = phase
			e.statusChanged(row.EnvironmentID)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-live.changed:
		}
	}
}

// lag measures how far the stream is behind: WAL bytes since the position
// Kafka acknowledged, and seconds since the oldest unacknowledged commit.
// It keeps its own connection; when the source cannot be asked the bytes
// are left out (-1).
func (e *Engine) lag(ctx context.Context, conn **pgx.Conn, src source, live *liveStatus) *jobs.StreamLag {
	out := &jobs.StreamLag{Bytes: -1}
	if ns := live.oldestUnacked.Load(); ns != 0 {
		out.Seconds = math.Round(time.Since(time.Unix(0, ns)).Seconds()*10) / 10
		out.Seconds = max(out.Seconds, 0)
	}
	if *conn == nil {
		c, err := src.connect(ctx, false)
		if err != nil {
			return out
		}
		*conn = c
	}
	var current string
	err := (*conn).QueryRow(ctx, `SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text`).Scan(&current)
	if err != nil {
		(*conn).Close(context.Background())
		*conn = nil
		return out
	}
	lsn, err := pglogrepl.ParseLSN(current)
	if err != nil {
		return out
	}
	out.Bytes = max(int64(lsn)-int64(live.acked.Load()), 0)
	return out
}

// capture prepares the source, takes the snapshot when one is due, and
// streams.
func (e *Engine) capture(ctx context.Context, cancel context.CancelCauseFunc, wg *sync.WaitGroup,
	row captureRow, src source, live *liveStatus, log *slog.Logger) error {
	side, err := src.connect(ctx, false)
	if err != nil {
		return err
	}
	defer side.Close(context.Background())
	facts, err := checkServer(ctx, side, src.where, row.SlotName)
	if err != nil {
		return err
	}
	warnings, err := e.preparePublication(ctx, side, row, facts)
	if err != nil {
		return err
	}
	live.setWarnings(warnings)

	slot, err := readSlot(ctx, side, row.SlotName)
	if err != nil {
		return err
	}
	if slot.exists {
		if err := slot.check(row.SlotName, facts.Database, src.where); err != nil {
			return err
		}
		if err := e.takeOver(ctx, side, row.SlotName, log); err != nil {
			return err
		}
	}
	prod, err := newProducer(e.cfg)
	if err != nil {
		return err
	}
	defer prod.close()
	prod.useFence(ctx)
	defer prod.follow(ctx)() // after the stream's own flush, before close
	repl, err := src.connectReplication(ctx, false)
	if err != nil {
		return err
	}
	defer repl.Close(context.Background())

	if row.SnapshotLSN == nil || !slot.exists {
		if row.SnapshotRequested != "" {
			log.Warn("embedded capture: a new snapshot was requested; taking it", "requested_by", row.SnapshotRequested)
		}
		if row.SnapshotLSN != nil {
			log.Warn("embedded capture: the replication slot is gone; taking a new snapshot", "slot", row.SlotName)
			if err := e.store.setSnapshotLSN(ctx, row.EnvironmentID, row.Version, nil, nil); err != nil {
				return err
			}
		}
		// The progress of an abandoned snapshot is not this one's.
		live.updateSnapshot(func(p *jobs.SnapshotProgress) { *p = jobs.SnapshotProgress{} })
		if slot.exists {
			// A snapshot that did not finish: start over from a new slot.
			// Only while this worker still holds the lease: a deposed
			// one, woken up, must not drop its successor's slot.
			if err := e.store.checkFence(ctx); err != nil {
				return err
			}
			if _, err := side.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, row.SlotName); err != nil {
				return pgsource.Classify("drop unfinished replication slot "+row.SlotName, err)
			}
		}
		live.setPhase(phaseSnapshot)
		var created pglogrepl.CreateReplicationSlotResult
		err := e.store.fence(ctx, row.EnvironmentID, row.Version, func() error {
			var err error
			created, err = pglogrepl.CreateReplicationSlot(ctx, repl, row.SlotName, "pgoutput",
				pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT"})
			if err != nil {
				return pgsource.Classify("create replication slot "+row.SlotName+" in "+src.where, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		at, err := pglogrepl.ParseLSN(created.ConsistentPoint)
		if err != nil {
			return fmt.Errorf("replication slot %s: consistent point %q: %w", row.SlotName, created.ConsistentPoint, err)
		}
		log.Info("embedded capture: slot created; taking the initial snapshot", "slot", row.SlotName, "lsn", at)
		e.hook(ctx, "snapshot-start")
		progress, descs, err := e.snapshot(ctx, src, created.SnapshotName, at, row, facts, prod, live)
		if err != nil {
			return err
		}
		e.hook(ctx, "snapshot-copied")
		if err := ctx.Err(); err != nil {
			return err
		}
		// The tables as the snapshot copied them: a DDL between the
		// snapshot and a table's first change is a change too, and so is
		// one a snapshot taken again finds.
		relLog := newRelationLog(e.store, row.EnvironmentID, log)
		for _, d := range descs {
			if _, err := relLog.observe(ctx, d.oid, at, d.desc); err != nil {
				return err
			}
		}
		lsn := int64(at)
		if err := e.store.setSnapshotLSN(ctx, row.EnvironmentID, row.Version, &lsn, progress); err != nil {
			return err
		}
		log.Info("embedded capture: snapshot complete", "rows", progress.RowsCopied)
	}
	live.setPhase(phaseStreaming)
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.refresh(ctx, cancel, row, src, facts, live, log)
	}()
	s := &streamer{e: e, row: row, db: facts.Database, facts: facts, repl: repl, side: side,
		cat: newCatalog(facts.VersionNum), prod: prod, live: live, log: log,
		relLog: newRelationLog(e.store, row.EnvironmentID, log)}
	return s.run(ctx)
}

// preparePublication creates or completes the publication (fenced against
// a concurrent Delete) and sets REPLICA IDENTITY FULL where it may.
func (e *Engine) preparePublication(ctx context.Context, side *pgx.Conn, row captureRow, facts serverFacts) ([]string, error) {
	var warnings []string
	err := e.store.fence(ctx, row.EnvironmentID, row.Version, func() error {
		var err error
		warnings, err = ensurePublication(ctx, side, row.PublicationName, facts.Superuser)
		return err
	})
	if err != nil {
		return nil, err
	}
	tables, err := publishedTables(ctx, side, row.PublicationName)
	if err != nil {
		return nil, err
	}
	if e.cfg.keepReplicaIdentity {
		return warnings, nil
	}
	return append(warnings, ensureReplicaIdentity(ctx, side, tables)...), nil
}

// refresh completes the publication with tables created since (FOR TABLE
// publications) and sets REPLICA IDENTITY FULL on new tables every
// RefreshInterval, on a connection of its own so that waiting for a table
// lock never holds the stream up. The connection is opened for each
// refresh and closed after it: kept open, it would be one more idle
// session per capture on the source server (which a worker of hundreds of
// captures runs out of) for a query a minute.
func (e *Engine) refresh(ctx context.Context, cancel context.CancelCauseFunc, row captureRow, src source, facts serverFacts, live *liveStatus, log *slog.Logger) {
	for sleep(ctx, e.cfg.RefreshInterval) == nil {
		conn, err := src.connect(ctx, false)
		if err != nil {
			continue
		}
		warnings, err := e.preparePublication(ctx, conn, row, facts)
		conn.Close(context.Background())
		switch {
		case errors.Is(err, errNotWanted), errors.Is(err, errChanged):
			cancel(err)
			return
		case err != nil && ctx.Err() == nil:
			log.Warn("embedded capture: refresh publication", "error", err)
		case err == nil:
			live.setWarnings(warnings)
		}
	}
}

// slotInfo is a replication slot as pg_replication_slots shows it.
type slotInfo struct {
	exists    bool
	logical   bool
	plugin    string
	database  string
	active    bool
	pid       int32
	app       string
	confirmed pglogrepl.LSN
}

func readSlot(ctx context.Context, conn *pgx.Conn, slot string) (slotInfo, error) {
	var s slotInfo
	var slotType string
	var plugin, database, app, confirmed *string
	var pid *int32
	err := conn.QueryRow(ctx, `
		SELECT s.slot_type, s.plugin, s.database::text, s.active, s.active_pid, a.application_name,
		       s.confirmed_flush_lsn::text
		FROM pg_replication_slots s LEFT JOIN pg_stat_activity a ON a.pid = s.active_pid
		WHERE s.slot_name = $1`, slot).Scan(&slotType, &plugin, &database, &s.active, &pid, &app, &confirmed)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, pgsource.Classify("read replication slot "+slot, err)
	}
	s.exists, s.logical = true, slotType == "logical"
	if plugin != nil {
		s.plugin = *plugin
	}
	if database != nil {
		s.database = *database
	}
	if pid != nil {
		s.pid = *pid
	}
	if app != nil {
		s.app = *app
	}
	if confirmed != nil {
		s.confirmed, _ = pglogrepl.ParseLSN(*confirmed)
	}
	return s, nil
}

// check refuses a slot of that name that cdcq cannot use.
func (s slotInfo) check(name, database, where string) error {
	switch {
	case !s.logical:
		return jobs.Terminalf("replication slot %s in %s is a physical slot; drop it or choose another environment id", name, where)
	case s.plugin != "pgoutput":
		return jobs.Terminalf("replication slot %s in %s uses plugin %s, not pgoutput; drop it (SELECT pg_drop_replication_slot('%s'))", name, where, s.plugin, name)
	case s.database != database:
		return jobs.Terminalf("replication slot %s belongs to database %s, not %s; drop it there or use another environment id", name, s.database, database)
	}
	return nil
}

// takeOver waits for the slot to be free. The caller holds the lease, so
// a cdcq capture still attached to the slot belongs to a worker that lost
// its lease: after TakeoverGrace it is terminated. Anything else attached
// is left alone and reported.
func (e *Engine) takeOver(ctx context.Context, side *pgx.Conn, slot string, log *slog.Logger) error {
	deadline := time.Now().Add(e.cfg.TakeoverGrace)
	terminated := false
	for {
		s, err := readSlot(ctx, side, slot)
		if err != nil {
			return err
		}
		if !s.exists || !s.active {
			return nil
		}
		if time.Now().After(deadline) {
			switch {
			case terminated:
				return fmt.Errorf("replication slot %s is still in use by pid %d after terminating it", slot, s.pid)
			case s.app != sessionSettings["application_name"]:
				return fmt.Errorf("replication slot %s is in use by another client (pid %d, application_name %q)", slot, s.pid, s.app)
			}
			log.Warn("embedded capture: terminating the previous holder of the slot", "slot", slot, "pid", s.pid)
			// A deposed worker, woken up, must not terminate its
			// successor's stream.
			if err := e.store.checkFence(ctx); err != nil {
				return err
			}
			if _, err := side.Exec(ctx, `SELECT pg_terminate_backend($1)`, s.pid); err != nil {
				return pgsource.Classify(fmt.Sprintf("terminate pid %d holding replication slot %s", s.pid, slot), err)
			}
			terminated = true
			deadline = time.Now().Add(10 * time.Second)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
