package service

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/cdcq/cdcq/internal/capture"
	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/dbzjson"
	"github.com/cdcq/cdcq/internal/debezium"
	"github.com/cdcq/cdcq/internal/embedded"
	"github.com/cdcq/cdcq/internal/flink"
	"github.com/cdcq/cdcq/internal/flink/processor"
	"github.com/cdcq/cdcq/internal/kafkaconnect"
	"github.com/cdcq/cdcq/internal/pgsource"
	"github.com/cdcq/cdcq/internal/results"
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
	if cfg.ConnectURL != "" {
		capture, err := kafkaConnectCapture(cfg.ConnectURL)
		if err != nil {
			return WorkerDeps{}, err
		}
		deps.Capture = capture
	} else {
		engine, err := capture.New(capture.Config{
			Pool: inf.Pool, Sealer: inf.Sealer, Brokers: inf.Brokers, Logger: logger,
			Version: dbzjson.Version(Version),
		})
		if err != nil {
			return WorkerDeps{}, err
		}
		sup, err := capture.NewSupervisor(capture.SupervisorConfig{Engine: engine, DatabaseURL: inf.DatabaseURL, Logger: logger})
		if err != nil {
			return WorkerDeps{}, err
		}
		deps.Capture = engine
		deps.Background = append(deps.Background, sup.Run)
	}
	if cfg.FlinkGatewayURL != "" {
		proc, err := flinkProcessor(cfg.FlinkGatewayURL, cfg.FlinkRESTURL, strings.Join(cfg.FlinkKafkaBrokers, ","))
		if err != nil {
			return WorkerDeps{}, err
		}
		deps.Processor = proc
	} else {
		proc, err := embeddedProcessor(inf, logger)
		if err != nil {
			return WorkerDeps{}, err
		}
		deps.Processor = proc
		deps.Background = append(deps.Background, proc.Run)
	}
	return deps, nil
}

// embeddedProcessor runs cached queries in cdcq's incremental engine, in
// the workers.
func embeddedProcessor(inf *Infra, logger *slog.Logger) (*embedded.Processor, error) {
	store, err := projections.NewStore(inf.Pool)
	if err != nil {
		return nil, err
	}
	res, err := results.New(inf.Pool)
	if err != nil {
		return nil, err
	}
	return embedded.New(embedded.Config{
		Brokers: inf.Brokers, DatabaseURL: inf.DatabaseURL, Results: res, Queries: store,
		NewEngine: embedded.NewIVMEngine, Logger: logger,
	})
}

// flinkProcessor runs cached queries as Flink SQL jobs submitted through the
// SQL Gateway at gatewayURL and watched through the JobManager at restURL.
func flinkProcessor(gatewayURL, restURL, kafkaBrokers string) (*processor.Processor, error) {
	gw, err := flink.NewGateway(flink.GatewayConfig{URL: gatewayURL})
	if err != nil {
		return nil, fmt.Errorf("CDCQ_FLINK_SQL_GATEWAY_URL: %w", err)
	}
	jm, err := flink.NewJobManager(flink.JobManagerConfig{URL: restURL})
	if err != nil {
		return nil, fmt.Errorf("CDCQ_FLINK_REST_URL: %w", err)
	}
	return processor.New(gw, jm, processor.Config{KafkaBootstrapServers: kafkaBrokers})
}

// kafkaConnectCapture is Debezium's PostgreSQL connector driven through the
// Kafka Connect REST API at url.
func kafkaConnectCapture(url string) (*debezium.Capture, error) {
	connect, err := kafkaconnect.New(kafkaconnect.Config{URL: url})
	if err != nil {
		return nil, fmt.Errorf("CDCQ_CONNECT_URL: %w", err)
	}
	source, err := pgsource.New(pgsource.Config{})
	if err != nil {
		return nil, err
	}
	return debezium.New(connect, source, debezium.Config{})
}
