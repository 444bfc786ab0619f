package capture

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/cdcq/cdcq/internal/leader"
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
	// SessionTimeout: see leader.LeasesConfig.SessionTimeout.
	SessionTimeout time.Duration
	// Logger; default the Engine's.
	Logger *slog.Logger
}

// Supervisor runs, in one worker, the embedded captures whose leases it
// holds. Run one in every worker: each capture runs in exactly one of
// them. A lease is a session-level advisory lock on the job-state database,
// keyed by the environment (internal/leader); it lives as long as the
// supervisor's session, so when a worker dies (or loses the database) its
// locks are released and the other supervisors pick its captures up.
type Supervisor struct {
	cfg SupervisorConfig
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
	return &Supervisor{cfg: cfg}, nil
}

// leaseNamespace keeps capture leases apart from other kinds of work.
const leaseNamespace = "capture"

// leaseKey is the advisory lock of an environment's capture.
func leaseKey(environmentID string) int64 {
	return leader.LeaseKey(leaseNamespace, environmentID)
}

// Run supervises until ctx ends, then stops the captures it runs.
func (s *Supervisor) Run(ctx context.Context) error {
	return leader.RunLeases(ctx, leader.LeasesConfig{
		DatabaseURL:    s.cfg.DatabaseURL,
		Namespace:      leaseNamespace,
		Wanted:         s.cfg.Engine.store.wanted,
		Run:            s.cfg.Engine.run,
		Interval:       s.cfg.Interval,
		SessionTimeout: s.cfg.SessionTimeout,
		Wake:           s.cfg.Engine.wake,
		Logger:         s.cfg.Logger,
	})
}
