package service

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cdcq/cdcq/handlers"
	"github.com/cdcq/cdcq/internal/cachedquery"
	"github.com/cdcq/cdcq/internal/capture"
	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/dbzjson"
	"github.com/cdcq/cdcq/internal/debezium"
	"github.com/cdcq/cdcq/internal/embedded"
	"github.com/cdcq/cdcq/internal/flink"
	"github.com/cdcq/cdcq/internal/flink/kafkatopics"
	"github.com/cdcq/cdcq/internal/flink/processor"
	"github.com/cdcq/cdcq/internal/history"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/kafkaconnect"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/internal/pgsource"
	"github.com/cdcq/cdcq/internal/results"
	"github.com/cdcq/cdcq/internal/resulttopic"
	"github.com/cdcq/cdcq/internal/sourcepolicy"
	"github.com/cdcq/cdcq/internal/sourceschema"
	"github.com/cdcq/cdcq/internal/statusnudge"
	"github.com/cdcq/cdcq/projections"
)

// Version is cdcq's version, written into the source.version of the
// change records the embedded capture produces.
const Version = "0.1.0"

// Engines picks the capture engine and the query processor from the
// configuration: a Kafka Connect URL selects Debezium, otherwise cdcq's
// embedded capture runs in the workers.
func Engines(cfg config.Config, inf *Infra, logger *slog.Logger) (WorkerDeps, error) {
	var deps WorkerDeps
	source, err := SourceClient(cfg, inf)
	if err != nil {
		return WorkerDeps{}, err
	}
	deps.Source = source
	deps.LagSampleInterval = cfg.LagSampleInterval
	// Every worker prunes the job history; the deletes are idempotent.
	pruner, err := history.New(history.Config{Pool: inf.Pool, Retention: cfg.HistoryRetention, Logger: logger})
	if err != nil {
		return WorkerDeps{}, err
	}
	deps.Background = append(deps.Background, pruner.Run)
	logger.Info("source policy", "rules", source.Policy().Describe())
	// The embedded engines tell the status poller, wherever it runs, when
	// a status changes (RunWorker listens while it leads the poller).
	nudges := statusnudge.NewNotifier(inf.Pool, logger)
	if cfg.ConnectURL != "" {
		capture, err := kafkaConnectCapture(cfg, source)
		if err != nil {
			return WorkerDeps{}, err
		}
		if !capture.KeepsPasswordsOutOfConnect() {
			logger.Warn("CDCQ_CONNECT_SECRETS_DIR is not set: Kafka Connect will store the source databases' passwords in clear in the connector configurations and show them to whoever can read its REST API")
		}
		deps.Capture = capture
	} else {
		engine, err := capture.New(capture.Config{
			Pool: inf.Pool, Sealer: inf.Sealer, Kafka: inf.Kafka(), Logger: logger, Source: source,
			Version: dbzjson.Version(Version), StatusChanged: nudges.Notify,
			ChangeTopicRetention: cfg.ChangeTopicRetention,
		})
		if err != nil {
			return WorkerDeps{}, err
		}
		sup, err := capture.NewSupervisor(capture.SupervisorConfig{Engine: engine, DatabaseURL: inf.DatabaseURL, SessionTimeout: inf.LeaseTimeout, Logger: logger})
		if err != nil {
			return WorkerDeps{}, err
		}
		deps.Capture = engine
		deps.Background = append(deps.Background, sup.Run)
	}
	if cfg.FlinkGatewayURL != "" {
		topics, err := kafkatopics.New(inf.Kafka())
		if err != nil {
			return WorkerDeps{}, err
		}
		proc, err := flinkProcessor(cfg, inf.KafkaSecurity, topics)
		if err != nil {
			return WorkerDeps{}, err
		}
		withResults, follower, err := flinkResults(inf, proc, kafkatopics.NewProgress(topics), snapshots(deps.Capture), logger)
		if err != nil {
			return WorkerDeps{}, err
		}
		deps.Processor = withResults
		deps.Background = append(deps.Background, follower.Run, func(ctx context.Context) error {
			<-ctx.Done() // the worker stops: so does its Kafka admin client
			topics.Close()
			return nil
		})
	} else {
		proc, err := embeddedProcessor(inf, snapshots(deps.Capture), nudges.Notify, cfg.ChangeTopicRetention, cfg.CheckpointInterval, logger)
		if err != nil {
			return WorkerDeps{}, err
		}
		deps.Processor = proc
		deps.Background = append(deps.Background, proc.Run)
	}
	return deps, nil
}

// SourceClient is how the workers reach source databases: through the
// source policy of cfg (CDCQ_SOURCE_ALLOW, CDCQ_SOURCE_DENY), which also
// refuses the job-state database inf connects to.
func SourceClient(cfg config.Config, inf *Infra) (*pgsource.Client, error) {
	policy, err := sourcepolicy.New(sourcepolicy.Rules{Allow: cfg.SourceAllow, Deny: cfg.SourceDeny, JobStateURL: inf.DatabaseURL})
	if err != nil {
		return nil, err
	}
	return pgsource.New(pgsource.Config{Policy: policy})
}

// snapshots is the capture's report of its initial snapshots, nil when it
// gives none.
func snapshots(c handlers.Capture) handlers.SnapshotReporter {
	r, _ := c.(handlers.SnapshotReporter)
	return r
}

// embeddedProcessor runs cached queries in cdcq's incremental engine, in
// the workers; a query is LIVE once the capture's snapshot is complete and
// read.
func embeddedProcessor(inf *Infra, snaps handlers.SnapshotReporter, changed func(environmentID string), changeTopicRetention, checkpointEvery time.Duration, logger *slog.Logger) (*embedded.Processor, error) {
	store, err := projections.NewStore(inf.Pool)
	if err != nil {
		return nil, err
	}
	res, err := results.New(inf.Pool)
	if err != nil {
		return nil, err
	}
	return embedded.New(embedded.Config{
		Kafka: inf.Kafka(), DatabaseURL: inf.DatabaseURL, SessionTimeout: inf.LeaseTimeout, Results: res, Queries: store,
		NewEngine: embedded.NewIVMEngine, Snapshots: snaps, StatusChanged: changed, Logger: logger,
		ChangeTopicRetention: changeTopicRetention,
		CheckpointInterval:   checkpointEvery,
	})
}

// flinkResults materialises the results of the queries Flink runs, from
// the result topics into the job-state database, so that the API serves
// them as it serves the embedded engine's.
func flinkResults(inf *Infra, proc handlers.Processor, progress *kafkatopics.Progress, snaps handlers.SnapshotReporter, logger *slog.Logger) (handlers.Processor, *resulttopic.Follower, error) {
	store, err := projections.NewStore(inf.Pool)
	if err != nil {
		return nil, nil, err
	}
	res, err := results.New(inf.Pool)
	if err != nil {
		return nil, nil, err
	}
	tables := &queryTables{byQuery: map[string]map[string]bool{}}
	follower, err := resulttopic.NewFollower(resulttopic.FollowerConfig{
		Kafka: inf.Kafka(), DatabaseURL: inf.DatabaseURL, SessionTimeout: inf.LeaseTimeout, Results: res, Queries: store,
		Engine: processor.Engine, Logger: logger,
		// Flink reads a field a DDL renamed or dropped as NULL: what it
		// wrote after the source's schema was last found intact waits.
		SchemaChecked: res.SchemaChecked,
		// A result is current once the capture's snapshot is complete and
		// the job has read its sources up to where they ended then (or
		// when the job started, if later).
		CaughtUp: func(ctx context.Context, q projections.ActiveQuery) (bool, *results.Hydration, error) {
			var h *results.Hydration
			if snaps != nil {
				sp, err := snaps.SnapshotProgress(ctx, q.EnvironmentID)
				if err != nil {
					return false, nil, err
				}
				hy := results.NewHydration(sp, tables.of(q))
				h = &hy
				if !sp.Done {
					progress.Forget(q.PipelineName)
					return false, h, nil
				}
			}
			if q.Last.Status != jobs.StatusRunning {
				return false, h, nil
			}
			ok, err := progress.CaughtUp(ctx, q.PipelineName, q.Last.JobID)
			return ok, h, err
		},
	})
	if err != nil {
		return nil, nil, err
	}
	return materialised{Processor: proc, results: res, queries: store, kafka: inf.Kafka()}, follower, nil
}

// materialised is a Processor whose results a follower materialises:
// deleting a query also deletes its materialised rows, and creating it
// again lets them be written.
type materialised struct {
	handlers.Processor
	results *results.Store
	queries *projections.Store
	kafka   kafkasec.Cluster
}

// StateFingerprints lists the wrapped engine's job states, when it can
// (handlers.StateFingerprinter); nothing otherwise.
func (m materialised) StateFingerprints(ctx context.Context) (map[string]string, error) {
	if f, ok := m.Processor.(handlers.StateFingerprinter); ok {
		return f.StateFingerprints(ctx)
	}
	return nil, nil
}

// clockSkew is how far the clocks of the engine that writes result records
// and of the worker that checks the source schema may disagree.
const clockSkew = time.Second

// StopBrokenQuery stops the job and puts back the result as the result
// topic held it before the last intact schema check began (less clockSkew):
// nothing the engine wrote then can reflect the change. Without such a
// check the result stays as it is.
func (m materialised) StopBrokenQuery(ctx context.Context, spec handlers.QuerySpec, reason string, cleanAt time.Time) error {
	s, ok := m.Processor.(interface {
		StopQuery(ctx context.Context, spec handlers.QuerySpec) error
	})
	if !ok {
		return fmt.Errorf("the %s processor cannot stop a query", m.Engine())
	}
	if err := s.StopQuery(ctx, spec); err != nil {
		return err
	}
	if cleanAt.IsZero() {
		return m.results.MarkStale(ctx, spec.QueryID, reason)
	}
	rows, positions, err := resulttopic.RowsBefore(ctx, m.kafka, spec.EnvironmentID, spec.QueryID, cleanAt.Add(-clockSkew))
	if err != nil {
		return err
	}
	changes := make([]results.Change, 0, len(rows))
	for k, v := range rows {
		changes = append(changes, results.Change{Key: []byte(k), Row: v})
	}
	p := results.Progress{Positions: map[string]map[int32]int64{names.ResultTopic(spec.EnvironmentID): positions}}
	return m.results.ReplaceStale(ctx, spec.QueryID, changes, p, reason)
}

// SourceSchemaOptions passes the wrapped processor's answer on.
func (m materialised) SourceSchemaOptions() sourceschema.Options {
	if r, ok := m.Processor.(handlers.SchemaReader); ok {
		return r.SourceSchemaOptions()
	}
	return sourceschema.Options{}
}

func (m materialised) EnsureQuery(ctx context.Context, spec handlers.QuerySpec) (jobs.QueryStatus, error) {
	if err := m.results.Reset(ctx, spec.QueryID); err != nil {
		return jobs.QueryStatus{}, err
	}
	return m.Processor.EnsureQuery(ctx, spec)
}

func (m materialised) DeleteQuery(ctx context.Context, spec handlers.QuerySpec) error {
	if err := m.Processor.DeleteQuery(ctx, spec); err != nil {
		return err
	}
	return m.results.MarkDeleted(ctx, spec.QueryID)
}

func (m materialised) DeleteEnvironment(ctx context.Context, environmentID string) error {
	if err := m.Processor.DeleteEnvironment(ctx, environmentID); err != nil {
		return err
	}
	qs, err := m.queries.ActiveQueries(ctx)
	if err != nil {
		return err
	}
	for _, q := range qs {
		if q.EnvironmentID == environmentID && q.Engine == m.Engine() {
			if err := m.results.MarkDeleted(ctx, q.QueryID); err != nil {
				return err
			}
		}
	}
	return nil
}

// NeedsRestart passes the wrapped processor's answer on.
func (m materialised) NeedsRestart(status jobs.QueryStatus) bool {
	r, ok := m.Processor.(handlers.Restarter)
	return ok && r.NeedsRestart(status)
}

// flinkProcessor runs cached queries as Flink SQL jobs submitted through the
// SQL Gateway and watched through the JobManager, both sent
// cfg.FlinkAuthorization. The jobs reach Kafka at cfg.FlinkKafkaBrokers
// with sec's TLS and SASL; topics reaches it as cdcq does.
func flinkProcessor(cfg config.Config, sec kafkasec.Security, topics *kafkatopics.Topics) (*processor.Processor, error) {
	header := authHeader(cfg.FlinkAuthorization)
	gw, err := flink.NewGateway(flink.GatewayConfig{URL: cfg.FlinkGatewayURL, Header: header})
	if err != nil {
		return nil, fmt.Errorf("CDCQ_FLINK_SQL_GATEWAY_URL: %w", err)
	}
	jm, err := flink.NewJobManager(flink.JobManagerConfig{URL: cfg.FlinkRESTURL, Header: header})
	if err != nil {
		return nil, fmt.Errorf("CDCQ_FLINK_REST_URL: %w", err)
	}
	return processor.New(gw, jm, processor.Config{
		KafkaBootstrapServers: strings.Join(cfg.FlinkKafkaBrokers, ","),
		KafkaProperties:       sec.FlinkProperties(),
		Topics:                topics,
	})
}

// authHeader is the header sent with every request to Flink or Kafka
// Connect: Authorization, when configured.
func authHeader(authorization config.Secret) http.Header {
	if authorization == "" {
		return nil
	}
	return http.Header{"Authorization": {authorization.Reveal()}}
}

// kafkaConnectCapture is Debezium's PostgreSQL connector driven through the
// Kafka Connect REST API at cfg.ConnectURL, with cfg's credentials for it
// and its secrets directory.
func kafkaConnectCapture(cfg config.Config, source *pgsource.Client) (*debezium.Capture, error) {
	connect, err := kafkaconnect.New(kafkaconnect.Config{URL: cfg.ConnectURL, Header: authHeader(cfg.ConnectAuthorization)})
	if err != nil {
		return nil, fmt.Errorf("CDCQ_CONNECT_URL: %w", err)
	}
	capture, err := debezium.New(connect, source, debezium.Config{SecretsDir: cfg.ConnectSecretsDir, ChangeTopicRetention: cfg.ChangeTopicRetention})
	if err != nil {
		return nil, fmt.Errorf("CDCQ_CONNECT_SECRETS_DIR: %w", err)
	}
	return capture, nil
}

// queryTables remembers which tables ("<schema>.<table>") each query reads.
type queryTables struct {
	mu      sync.Mutex
	byQuery map[string]map[string]bool
}

func (t *queryTables) of(q projections.ActiveQuery) map[string]bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m, ok := t.byQuery[q.QueryID]; ok {
		return m
	}
	m := map[string]bool{}
	if c, err := cachedquery.Compile(q.Schema, q.SQLQuery); err == nil {
		for _, src := range c.Plan.Sources {
			m[src.Schema+"."+src.Name] = true
		}
	}
	t.byQuery[q.QueryID] = m
	return m
}
