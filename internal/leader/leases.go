package leader

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
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
	Wake   <-chan struct{}
	Logger *slog.Logger
}

// RunLeases takes the leases it can get, runs their work, and gives up
// work that is no longer wanted, until ctx ends. A process that dies, or
// loses its database session, loses its leases with the session, and the
// others pick its work up.
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
}

type leased struct {
	cancel context.CancelFunc
	done   chan struct{}
	key    int64
}

// LeaseKey is the advisory lock key of one unit of work.
func LeaseKey(namespace, id string) int64 {
	h := fnv.New64a()
	h.Write([]byte("cdcq/" + namespace + "/"))
	h.Write([]byte(id))
	return int64(h.Sum64())
}

func (l *leases) session(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, l.cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("connect to job-state database: %w", err)
	}
	defer conn.Close(context.Background())
	t := time.NewTicker(l.cfg.Interval)
	defer t.Stop()
	// After a wake, rounds follow at wakeRounds' delays.
	var quick <-chan time.Time
	next := len(wakeRounds)
	for {
		if err := l.round(ctx, conn); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
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
// lease it gets.
func (l *leases) round(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, `SELECT 1`); err != nil {
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
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, r.key); err != nil {
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
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
			return err
		}
		if !got {
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		r := &leased{cancel: cancel, done: make(chan struct{}), key: key}
		l.running[id] = r
		l.cfg.Logger.Info("leases: running", "namespace", l.cfg.Namespace, "id", id)
		go func() {
			defer close(r.done)
			l.cfg.Run(rctx, id)
		}()
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
