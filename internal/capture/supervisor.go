package capture

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// SupervisorConfig configures a Supervisor.
type SupervisorConfig struct {
	// Engine runs the captures. Required.
	Engine *Engine
	// DatabaseURL is the job-state database (the one Engine's pool
	// reaches). The supervisor keeps one session open on it to hold its
	// leases. Required.
	DatabaseURL string
	// Interval is how often the supervisor looks for captures to start or
	// stop and checks its session. Another worker takes over a dead
	// worker's captures within about one Interval. Default 2s.
	Interval time.Duration
	// Logger; default the Engine's.
	Logger *slog.Logger
}

// Supervisor runs, in one worker, the embedded captures whose leases it
// holds. Run one in every worker: each capture runs in exactly one of
// them. A lease is a session-level advisory lock on the job-state database,
// keyed by the environment; it lives as long as the supervisor's session,
// so when a worker dies (or loses the database) its locks are released
// and the other supervisors pick its captures up.
type Supervisor struct {
	cfg     SupervisorConfig
	running map[string]*runningCapture
}

type runningCapture struct {
	cancel context.CancelFunc
	done   chan struct{}
	key    int64
}

// NewSupervisor refuses a configuration without an Engine or a database.
func NewSupervisor(cfg SupervisorConfig) (*Supervisor, error) {
	if cfg.Engine == nil {
		return nil, errors.New("capture: SupervisorConfig.Engine is nil")
	}
	if cfg.DatabaseURL == "" {
		return nil, errors.New("capture: SupervisorConfig.DatabaseURL is empty")
	}
	if cfg.Interval == 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = cfg.Engine.cfg.Logger
	}
	return &Supervisor{cfg: cfg, running: map[string]*runningCapture{}}, nil
}

// leaseKey is the advisory lock of an environment's capture.
func leaseKey(environmentID string) int64 {
	h := fnv.New64a()
	h.Write([]byte("cdcq/capture/"))
	h.Write([]byte(environmentID))
	return int64(h.Sum64())
}

// Run supervises until ctx ends, then stops the captures it runs.
func (s *Supervisor) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		err := s.session(ctx)
		s.stopAll()
		if ctx.Err() != nil {
			return nil
		}
		s.cfg.Logger.Warn("capture supervisor: lost the job-state session; captures stopped", "error", err)
		if sleep(ctx, s.cfg.Interval) != nil {
			return nil
		}
	}
	return nil
}

// session holds one job-state session and the leases taken in it.
func (s *Supervisor) session(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("connect to job-state database: %w", err)
	}
	defer conn.Close(context.Background())
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		if err := s.round(ctx, conn); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// round stops captures no longer wanted and starts those whose lease it
// gets.
func (s *Supervisor) round(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, `SELECT 1`); err != nil {
		return err
	}
	wanted, err := s.cfg.Engine.store.wanted(ctx)
	if err != nil {
		s.cfg.Logger.Warn("capture supervisor: list captures", "error", err)
		return nil
	}
	want := make(map[string]bool, len(wanted))
	for _, id := range wanted {
		want[id] = true
	}
	for id, rc := range s.running {
		exited := false
		select {
		case <-rc.done:
			exited = true
		default:
		}
		if want[id] && !exited {
			continue
		}
		rc.cancel()
		<-rc.done
		delete(s.running, id)
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, rc.key); err != nil {
			return err
		}
		s.cfg.Logger.Info("capture supervisor: released capture", "environment_id", id)
	}
	for _, id := range wanted {
		if s.running[id] != nil {
			continue
		}
		key := leaseKey(id)
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
			return err
		}
		if !got {
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		rc := &runningCapture{cancel: cancel, done: make(chan struct{}), key: key}
		s.running[id] = rc
		s.cfg.Logger.Info("capture supervisor: running capture", "environment_id", id)
		go func() {
			defer close(rc.done)
			s.cfg.Engine.run(rctx, id)
		}()
	}
	return nil
}

// stopAll stops every capture this supervisor runs and waits for them.
func (s *Supervisor) stopAll() {
	for _, rc := range s.running {
		rc.cancel()
	}
	for id, rc := range s.running {
		<-rc.done
		delete(s.running, id)
	}
}
