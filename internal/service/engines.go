package service

import (
	"fmt"
	"log/slog"

	"github.com/cdcq/cdcq/handlers"
	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/debezium"
	"github.com/cdcq/cdcq/internal/kafkaconnect"
	"github.com/cdcq/cdcq/internal/pgsource"
)

// Engines picks the capture engine and the query processor from the
// configuration: a Kafka Connect URL selects Debezium; without one, jobs
// fail with a reason that says what to configure.
func Engines(cfg config.Config, logger *slog.Logger) (WorkerDeps, error) {
	deps := WorkerDeps{Capture: handlers.UnconfiguredCapture{}, Processor: handlers.UnconfiguredProcessor{}}
	if cfg.ConnectURL != "" {
		capture, err := kafkaConnectCapture(cfg.ConnectURL)
		if err != nil {
			return WorkerDeps{}, err
		}
		deps.Capture = capture
	}
	return deps, nil
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
