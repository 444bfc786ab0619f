package leader

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcq/cdcq/internal/pgsession"
)

// LeasesConfig configures a set of leases: many units of work (captures,
// cached queries), each run by exactly one of the processes that share a
// job-state database.
type LeasesConfig struct {
	// DatabaseURL is the job-state database. The leases are session-level
	// advisory locks held on one connection to it. Required.
	DatabaseURL string
	// Namespace keeps the lock keys of different kinds of work apart
	// ("capture", "query"). Required.
	Namespace string
	// Wanted lists the ids of the work that should run now. Required.
	Wanted func(ctx context.Context) ([]string, error)
	// Run does the work of one id until ctx ends. When it returns early,
	// the lease is released and taken again (possibly by another process)
	// on a later round. Required.
	Run func(ctx context.Context, id string)
	// Interval between rounds; a dead process's work moves within about
	// one Interval. Default 2s.
	Interval time.Duration
	// Wake, when set, starts a round at once each time a value arrives on
	// it, and a few more in the next second and a half (a unit of work
	// just registered may show in Wanted a moment later, when Wanted reads
	// a projection), so that new work starts without waiting an Interval.
	Wake <-chan struct{}
	// SessionTimeout is how long the lease session may fall silent before
	// the server ends it, releasing the leases (pgsession): another worker
	// takes over a paused or cut-off worker's work within about
	// SessionTimeout plus Interval. Default pgsession.DefaultTimeout.
	SessionTimeout time.Duration
	// Holder names this process in lease_epochs, for people reading it.
	// Default host name/pid.
	Holder string
	Logger *slog.Logger
}

// RunLeases takes the leases it can get, runs their work, and gives up
// work that is no longer wanted, until ctx ends. A process that dies, or
// loses its database session, loses its leases with the session, and the
// others pick its work up. Each run's context carries the Fence of its
// take (FenceFrom): writes checked against it are refused once another
// process took the lease.
func RunLeases(ctx context.Context, cfg LeasesConfig) error {
	if cfg.DatabaseURL == "" || cfg.Namespace == "" || cfg.Wanted == nil || cfg.Run == nil {
		return errors.New("leader: LeasesConfig needs DatabaseURL, Namespace, Wanted and Run")
	}
	if cfg.Interval == 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Holder == "" {
		host, _ := os.Hostname()
		cfg.Holder = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	l := &leases{cfg: cfg, running: map[string]*leased{}}
	for ctx.Err() == nil {
		err := l.session(ctx)
		l.stopAll()
		if ctx.Err() != nil {
			return nil
		}
		cfg.Logger.Warn("leases: lost the job-state session; work stopped", "namespace", cfg.Namespace, "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(cfg.Interval):
		}
	}
	return nil
}

type leases struct {
	cfg     LeasesConfig
	running map[string]*leased
	// swept is when epochs of work no longer wanted were last removed.
	swept time.Time
}

type leased struct {
	cancel context.CancelFunc
	done   chan struct{}
	key    int64
	epoch  int64
}

// LeaseKey is the advisory lock key of one unit of work.
func LeaseKey(namespace, id string) int64 {
	h := fnv.New64a()
	h.Write([]byte("cdcq/" + namespace + "/"))
	h.Write([]byte(id))
	return int64(h.Sum64())
}

func (l *leases) session(ctx context.Context) error {
	sess, err := pgsession.Connect(ctx, l.cfg.DatabaseURL, nil, l.cfg.SessionTimeout)
	if err != nil {
		return fmt.Errorf("connect to job-state database: %w", err)
	}
	defer sess.Close()
	if !sess.Bounded() {
		l.cfg.Logger.Warn("leases: the job-state server has no idle_session_timeout (PostgreSQL 13 or older): a worker whose host is lost keeps its leases until TCP keepalive notices", "namespace", l.cfg.Namespace)
	}
	t := time.NewTicker(l.cfg.Interval)
	defer t.Stop()
	// After a wake, rounds follow at wakeRounds' delays.
	var quick <-chan time.Time
	next := len(wakeRounds)
	for {
		if err := l.round(ctx, sess); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-sess.Lost():
			return sess.Err()
		case <-t.C:
		case <-l.cfg.Wake:
			next = 0
		case <-quick:
		}
		quick = nil
		if next < len(wakeRounds) {
			quick = time.After(wakeRounds[next])
			next++
		}
	}
}

// wakeRounds are the delays between the quick rounds after a wake.
var wakeRounds = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond,
	200 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond}

// Nudge sends on a wake channel (of capacity 1) without blocking: a wake
// already pending covers this one.
func Nudge(wake chan<- struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}

// round stops work no longer wanted (or finished) and starts the work whose
// lease it gets. Waiting for work to stop happens outside the session, so
// that the keepalive goes on meanwhile.
func (l *leases) round(ctx context.Context, sess *pgsession.Session) error {
	if err := sess.Do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, `SELECT 1`)
		return err
	}); err != nil {
		return err
	}
	wanted, err := l.cfg.Wanted(ctx)
	if err != nil {
		l.cfg.Logger.Warn("leases: list work", "namespace", l.cfg.Namespace, "error", err)
		return nil
	}
	want := make(map[string]bool, len(wanted))
	for _, id := range wanted {
		want[id] = true
	}
	for id, r := range l.running {
		exited := false
		select {
		case <-r.done:
			exited = true
		default:
		}
		if want[id] && !exited {
			continue
		}
		r.cancel()
		<-r.done
		delete(l.running, id)
		if err := sess.Do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
			if !want[id] {
				if err := forgetEpoch(ctx, conn, l.cfg.Namespace, id, r.epoch); err != nil {
					return err
				}
			}
			_, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, r.key)
			return err
		}); err != nil {
			return err
		}
		l.cfg.Logger.Info("leases: released", "namespace", l.cfg.Namespace, "id", id)
	}
	for _, id := range wanted {
		if l.running[id] != nil {
			continue
		}
		key := LeaseKey(l.cfg.Namespace, id)
		var got bool
		var epoch int64
		if err := sess.Do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
			if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil || !got {
				return err
			}
			var err error
			epoch, err = drawEpoch(ctx, conn, l.cfg.Namespace, id, l.cfg.Holder)
			if err != nil {
				// Without an epoch the work cannot run fenced: give the
				// lease back and try again next round.
				_, uerr := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key)
				got = false
				if uerr != nil {
					return uerr
				}
				l.cfg.Logger.Warn("leases: take", "namespace", l.cfg.Namespace, "id", id, "error", err)
			}
			return nil
		}); err != nil {
			return err
		}
		if !got {
			continue
		}
		rctx, cancel := context.WithCancel(WithFence(ctx, Fence{Namespace: l.cfg.Namespace, ID: id, Epoch: epoch}))
		r := &leased{cancel: cancel, done: make(chan struct{}), key: key, epoch: epoch}
		l.running[id] = r
		l.cfg.Logger.Info("leases: running", "namespace", l.cfg.Namespace, "id", id, "epoch", epoch)
		go func() {
			defer close(r.done)
			l.cfg.Run(rctx, id)
		}()
	}
	if time.Since(l.swept) >= sweepEvery {
		l.swept = time.Now()
		if err := sess.Do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
			return sweepEpochs(ctx, conn, l.cfg.Namespace, want)
		}); err != nil {
			return err
		}
	}
	return nil
}

// sweepEvery is how often a round removes the epochs of work no longer
// wanted whose holder did not (it died first).
const sweepEvery = time.Minute

// sweepEpochs removes the namespace's epochs of work not in want whose
// lease nobody holds. A deposed holder still running such work, woken up,
// finds no epoch and its writes are refused.
func sweepEpochs(ctx context.Context, conn *pgx.Conn, namespace string, want map[string]bool) error {
	rows, err := conn.Query(ctx, `SELECT id FROM lease_epochs WHERE namespace = $1`, namespace)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, id := range ids {
		if want[id] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+epochLockTimeout+`'`); err != nil {
				return err
			}
			var free bool
			if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, LeaseKey(namespace, id)).Scan(&free); err != nil || !free {
				return err
			}
			_, err := tx.Exec(ctx, `DELETE FROM lease_epochs WHERE namespace = $1 AND id = $2`, namespace, id)
			return err
		})
		if err != nil && !lockTimedOut(err) {
			return err
		}
	}
	return nil
}

func (l *leases) stopAll() {
	for _, r := range l.running {
		r.cancel()
	}
	for id, r := range l.running {
		<-r.done
		delete(l.running, id)
	}
}
