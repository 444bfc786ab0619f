package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/handlers"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/leader"
	"github.com/cdcq/cdcq/internal/pgsource"
	"github.com/cdcq/cdcq/internal/secret"
)

// EngineName is what Engine.Engine reports.
const EngineName = "embedded"

// HeartbeatTopicPrefix starts the topic of Debezium-style heartbeat records:
// __debezium-heartbeat.<topic prefix>.
const HeartbeatTopicPrefix = "__debezium-heartbeat."

// Config configures the embedded capture engine.
type Config struct {
	// Pool is the job-state database, with migrations applied (the
	// embedded_captures table). Required.
	Pool *pgxpool.Pool
	// Sealer seals the connection strings kept in embedded_captures.
	// Required.
	Sealer *secret.Sealer
	// Kafka is the cluster the changes go to: bootstrap addresses
	// (required) and security.
	Kafka kafkasec.Cluster
	// Source inspects and drops slots in source databases and configures
	// every connection the engine makes to them (pgsource.Client.ConnConfig:
	// its source policy decides which addresses may be reached). Default:
	// a pgsource client with its defaults, whose policy refuses loopback,
	// link-local and unspecified addresses.
	Source *pgsource.Client
	// Version is written as source.version; "" writes dbzjson's default.
	Version string
	// WorkerID names this process in status output. Default host:pid.
	WorkerID string
	// ConnectTimeout bounds connecting to a source database. Default 10s.
	ConnectTimeout time.Duration
	// StatusInterval is how often the position Kafka acknowledged is
	// confirmed to the slot. Default 1s.
	StatusInterval time.Duration
	// HeartbeatInterval is how often a heartbeat record is written to
	// __debezium-heartbeat.<prefix> while streaming, each saying that every
	// transaction acknowledged before its time is in Kafka (freshness.go);
	// the slot is advanced past WAL that carries no captured change
	// whenever the server reports it, independent of this. Default 1s;
	// negative disables heartbeat records.
	HeartbeatInterval time.Duration
	// ProgressInterval is how often a running capture records its
	// progress, lag and health in the job-state database, and notices
	// that it was deleted or changed. Default 1s.
	ProgressInterval time.Duration
	// RefreshInterval is how often a streaming capture adds new tables to
	// a FOR TABLE publication and sets their REPLICA IDENTITY. Default 1m.
	RefreshInterval time.Duration
	// StaleAfter: Observe reports a capture PENDING when no worker has
	// reported on it for this long. Default 2m.
	StaleAfter time.Duration
	// SnapshotChunkRows is how many rows the snapshot fetches at a time.
	// Default 10000.
	SnapshotChunkRows int
	// RetryMin and RetryMax bound the backoff between attempts of a
	// failing capture. Defaults 1s and 30s.
	RetryMin, RetryMax time.Duration
	// TakeoverGrace is how long a worker that took over a capture waits for
	// the previous worker's replication connection to let go of the slot
	// before terminating it. Default 1s: a lease moves only when its
	// holder's session ended (the process died, or fell silent for the
	// session's timeout), so a connection still attached belongs to a
	// worker that is gone or paused, and its records, should it wake up,
	// carry an older epoch (EpochHeader) than the successor's.
	TakeoverGrace time.Duration
	// TopicPartitions and TopicReplicationFactor are used for the change
	// topics the capture creates (-1 replication: the broker's default).
	// Defaults 1 and -1.
	TopicPartitions        int32
	TopicReplicationFactor int16
	// ChangeTopicRetention is the retention of the change topics the
	// capture creates (kafkabus.ChangeTopicConfigs; 0 or negative: kept
	// for ever). Heartbeat topics are compacted instead.
	ChangeTopicRetention time.Duration
	// TopicConfigs are extra configs for created change topics, set over
	// kafkabus.ChangeTopicConfigs.
	TopicConfigs map[string]*string
	// ProducerLinger, MaxBufferedRecords and Compression tune the Kafka
	// producer. Defaults 5ms, 20000 and none (on a small machine the
	// encoding CPU matters more than the bytes).
	ProducerLinger     time.Duration
	MaxBufferedRecords int
	Compression        []kgo.CompressionCodec
	// Logger; default slog.Default().
	Logger *slog.Logger
	// StatusChanged, when set, is called with the environment id when what
	// Observe reports changed status: a capture that started its snapshot
	// or streaming, or that failed. It must not block (the status poller
	// is nudged through statusnudge).
	StatusChanged func(environmentID string)

	// onAck is a test hook: it sees every acknowledged change record.
	onAck func(commit time.Time)
	// crashOnStop makes a stopping capture leave at once, as a crashed
	// worker would, instead of confirming what is in flight (tests).
	crashOnStop bool
	// at is a test hook called at named points of a capture's life
	// ("snapshot-start", "snapshot-chunk", "snapshot-copied"); it may
	// block until ctx ends, to crash the capture there.
	at func(ctx context.Context, point string)
	// keepReplicaIdentity leaves the tables' REPLICA IDENTITY as it is
	// (tests of tables at DEFAULT that a superuser captures).
	keepReplicaIdentity bool
}

// hook calls the test hook at point.
func (e *Engine) hook(ctx context.Context, point string) {
	if e.cfg.at != nil {
		e.cfg.at(ctx, point)
	}
}

func (c *Config) setDefaults() {
	if c.Source == nil {
		c.Source, _ = pgsource.New(pgsource.Config{})
	}
	if c.WorkerID == "" {
		host, _ := os.Hostname()
		c.WorkerID = host + ":" + strconv.Itoa(os.Getpid())
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.ConnectTimeout, 10*time.Second)
	def(&c.StatusInterval, time.Second)
	def(&c.HeartbeatInterval, time.Second)
	def(&c.ProgressInterval, time.Second)
	def(&c.RefreshInterval, time.Minute)
	def(&c.StaleAfter, 2*time.Minute)
	def(&c.RetryMin, time.Second)
	def(&c.RetryMax, 30*time.Second)
	def(&c.TakeoverGrace, time.Second)
	def(&c.ProducerLinger, 5*time.Millisecond)
	if c.SnapshotChunkRows == 0 {
		c.SnapshotChunkRows = 10000
	}
	if c.TopicPartitions == 0 {
		c.TopicPartitions = 1
	}
	if c.TopicReplicationFactor == 0 {
		c.TopicReplicationFactor = -1
	}
	if c.MaxBufferedRecords == 0 {
		c.MaxBufferedRecords = 20000
	}
	if len(c.Compression) == 0 {
		c.Compression = []kgo.CompressionCodec{kgo.NoCompression()}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Pool == nil:
		return errors.New("capture: Config.Pool is nil")
	case c.Sealer == nil:
		return errors.New("capture: Config.Sealer is nil")
	case len(c.Kafka.Brokers) == 0:
		return errors.New("capture: Config.Kafka.Brokers is empty")
	case c.SnapshotChunkRows < 1:
		return errors.New("capture: SnapshotChunkRows must be positive")
	case c.RetryMax < c.RetryMin:
		return errors.New("capture: RetryMax is below RetryMin")
	}
	return nil
}

// Engine is the embedded capture (handlers.Capture). Ensure and
// Delete work on the source database and record the capture in the
// job-state database; the capture itself runs in whichever worker's
// Supervisor holds its lease.
type Engine struct {
	cfg   Config
	store *store
	// wake tells this process's Supervisor that a capture was registered.
	wake chan struct{}
}

var (
	_ handlers.Capture          = (*Engine)(nil)
	_ handlers.SnapshotReporter = (*Engine)(nil)
)

// New returns the engine.
func New(cfg Config) (*Engine, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg, store: &store{pool: cfg.Pool}, wake: make(chan struct{}, 1)}, nil
}

// Engine names the implementation for status output.
func (e *Engine) Engine() string { return EngineName }

// NotifiesStatus says whether the engine tells of its status changes
// (Config.StatusChanged): the status poller need not poll its pending
// captures faster (handlers.StatusNotifier).
func (e *Engine) NotifiesStatus() bool { return e.cfg.StatusChanged != nil }

// statusChanged calls Config.StatusChanged.
func (e *Engine) statusChanged(environmentID string) {
	if e.cfg.StatusChanged != nil {
		e.cfg.StatusChanged(environmentID)
	}
}

// replicationName is what PostgreSQL accepts, unquoted, as a slot name and
// what cdcq's names package produces.
var replicationName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

func checkSpec(spec handlers.CaptureSpec) error {
	switch {
	case spec.EnvironmentID == "":
		return jobs.Terminalf("capture spec has no environment id")
	case !replicationName.MatchString(spec.SlotName):
		return jobs.Terminalf("capture spec of %s has slot name %q; want 1-63 of a-z, 0-9 and _", spec.EnvironmentID, spec.SlotName)
	case !replicationName.MatchString(spec.PublicationName):
		return jobs.Terminalf("capture spec of %s has publication name %q; want 1-63 of a-z, 0-9 and _", spec.EnvironmentID, spec.PublicationName)
	case spec.TopicPrefix == "":
		return jobs.Terminalf("capture spec of %s has no topic prefix", spec.EnvironmentID)
	}
	return nil
}

// Ensure checks that the source database can be captured, creates the
// publication and registers the capture, which a Supervisor then runs:
// it creates the slot, takes the initial snapshot and streams. A source
// that cannot be captured (wal_level, privileges, version, a wrong host or
// port, a refused login) is a jobs.TerminalError whose message says what to
// change. Idempotent: a registered capture with the same settings is left
// running; changed settings restart it.
func (e *Engine) Ensure(ctx context.Context, spec handlers.CaptureSpec) error {
	if err := checkSpec(spec); err != nil {
		return err
	}
	src, err := parseSource(e.cfg.Source, spec.ConnectionString, e.cfg.ConnectTimeout)
	if err != nil {
		return err
	}
	conn, err := src.connect(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	facts, err := checkServer(ctx, conn, src.where, spec.SlotName)
	if err != nil {
		return err
	}
	if err := checkReplicationConnection(ctx, src, true); err != nil {
		return err
	}

	cur, ok, err := e.store.load(ctx, spec.EnvironmentID)
	if err != nil {
		return err
	}
	if !ok || cur.Deleted || !e.sameSpec(cur, spec) {
		if err := e.store.register(ctx, captureRow{
			EnvironmentID:    spec.EnvironmentID,
			ConnectionSealed: e.cfg.Sealer.Seal(spec.ConnectionString, spec.EnvironmentID),
			SlotName:         spec.SlotName,
			PublicationName:  spec.PublicationName,
			TopicPrefix:      spec.TopicPrefix,
		}); err != nil {
			return err
		}
		if cur, _, err = e.store.load(ctx, spec.EnvironmentID); err != nil {
			return err
		}
		leader.Nudge(e.wake) // start it now rather than at the next round
	}
	// Creating the publication here makes a missing privilege fail the
	// create instead of a later run.
	return e.store.fence(ctx, spec.EnvironmentID, cur.Version, func() error {
		_, err := ensurePublication(ctx, conn, spec.PublicationName, facts.Superuser)
		return err
	})
}

func (e *Engine) sameSpec(r captureRow, spec handlers.CaptureSpec) bool {
	if r.SlotName != spec.SlotName || r.PublicationName != spec.PublicationName || r.TopicPrefix != spec.TopicPrefix {
		return false
	}
	plain, err := e.cfg.Sealer.Open(r.ConnectionSealed, r.EnvironmentID)
	return err == nil && plain == spec.ConnectionString
}

// Observe reports the capture as the worker running it last recorded it,
// with the slot's state from the source database and the last relation
// changes the capture recorded (newest first). A slot that cannot be read
// is reported in SlotState.Error.
func (e *Engine) Observe(ctx context.Context, spec handlers.CaptureSpec) (jobs.CaptureStatus, error) {
	row, ok, err := e.store.load(ctx, spec.EnvironmentID)
	if err != nil {
		return jobs.CaptureStatus{}, err
	}
	out := e.status(row, ok, time.Now())
	if ok && !row.Deleted {
		if out.SchemaChanges, err = e.store.recentSchemaChanges(ctx, spec.EnvironmentID); err != nil {
			return jobs.CaptureStatus{}, err
		}
		slot, err := e.cfg.Source.SlotState(ctx, spec.ConnectionString, spec.SlotName)
		if err != nil {
			slot = jobs.SlotState{Error: err.Error()}
		}
		slot.Name = spec.SlotName
		out.Slot = &slot
	}
	return out, nil
}

// SnapshotProgress reports the environment's initial snapshot. It is Done
// once the runner recorded the snapshot's position, which it does after
// Kafka acknowledged every record of the snapshot (and the deletes of
// rows a snapshot that started over no longer found).
func (e *Engine) SnapshotProgress(ctx context.Context, environmentID string) (jobs.SnapshotProgress, error) {
	row, ok, err := e.store.load(ctx, environmentID)
	if err != nil || !ok || row.Deleted {
		return jobs.SnapshotProgress{}, err
	}
	var out jobs.SnapshotProgress
	if row.Snapshot != nil {
		out = *row.Snapshot
	}
	out.Done = row.SnapshotLSN != nil
	return out, nil
}

// RequestSnapshot makes the environment's capture take a whole new
// snapshot, as it does when its replication slot is gone: a cached query
// whose change-topic records were deleted by the broker's retention before
// it read them asks for one (embedded.SnapshotRequester). SnapshotProgress
// says not Done from now until that snapshot is complete. reason is
// logged by the capture. ends are where the requester's topics end now,
// starts where it reads them from (their log starts); it says whether a
// new snapshot was requested: not when the one under way, or the last one
// requested and complete, serves (store.requestSnapshot).
func (e *Engine) RequestSnapshot(ctx context.Context, environmentID, reason string, ends, starts map[string]map[int32]int64) (bool, error) {
	requested, err := e.store.requestSnapshot(ctx, environmentID, reason, ends, starts)
	if err != nil {
		return false, err
	}
	if requested {
		e.statusChanged(environmentID)
	}
	return requested, nil
}

// status turns a row into a status.
func (e *Engine) status(row captureRow, ok bool, now time.Time) jobs.CaptureStatus {
	switch {
	case !ok:
		return jobs.CaptureStatus{Status: jobs.StatusPending, Reason: "the embedded capture is not registered yet (createDatabaseConnection registers it)"}
	case row.Deleted:
		return jobs.CaptureStatus{Status: jobs.StatusDeleting, Reason: "the embedded capture was deleted"}
	}
	out := jobs.CaptureStatus{Snapshot: row.Snapshot, Lag: row.Lag, LastError: row.LastError, Warnings: row.Warnings}
	stale := row.HeartbeatAt == nil || now.Sub(*row.HeartbeatAt) > e.cfg.StaleAfter
	switch {
	case row.Phase == phaseNone:
		out.Status, out.Reason = jobs.StatusPending, "waiting for a worker to start the capture"
	case stale:
		out.Status = jobs.StatusPending
		out.Reason = fmt.Sprintf("no worker has reported on the capture since %s", row.HeartbeatAt.UTC().Format(time.RFC3339))
	case row.Phase == phaseRetrying && row.LastErrorTerminal:
		out.Status, out.Reason = jobs.StatusFailed, row.LastError
	case row.Phase == phaseRetrying:
		out.Status, out.Reason = jobs.StatusPending, "retrying after: "+row.LastError
	case row.Phase == phaseStarting:
		out.Status, out.Reason = jobs.StatusPending, "starting"
	default: // snapshot, streaming
		out.Status = jobs.StatusRunning
	}
	return out
}

// Delete stops the capture, wherever it runs, and drops its slot and
// publication. Idempotent: deleting a capture that is gone succeeds.
func (e *Engine) Delete(ctx context.Context, spec handlers.CaptureSpec) error {
	// Marking it deleted first keeps every runner from creating anything
	// again; the running one notices within ProgressInterval and lets go
	// of the slot, and pgsource terminates it if it does not.
	if err := e.store.markDeleted(ctx, spec.EnvironmentID); err != nil {
		return err
	}
	return e.cfg.Source.DropSlotAndPublication(ctx, spec.ConnectionString, spec.SlotName, spec.PublicationName)
}
