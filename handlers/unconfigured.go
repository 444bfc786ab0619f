package handlers

import (
	"context"

	"github.com/cdcq/cdcq/internal/jobs"
)

// UnconfiguredCapture stands in when no capture engine is configured. Every
// create fails the job with a reason that says what to configure; deletes
// succeed, since nothing was created.
type UnconfiguredCapture struct{}

const noCaptureReason = "no capture engine is configured: set CDCQ_CONNECT_URL to a Kafka Connect REST URL with the Debezium PostgreSQL connector installed"

func (UnconfiguredCapture) Engine() string { return "none" }

func (UnconfiguredCapture) Ensure(context.Context, CaptureSpec) error {
	return jobs.Terminalf(noCaptureReason)
}

func (UnconfiguredCapture) Observe(context.Context, CaptureSpec) (jobs.CaptureStatus, error) {
	return jobs.CaptureStatus{Status: jobs.StatusFailed, Reason: noCaptureReason}, nil
}

func (UnconfiguredCapture) Delete(context.Context, CaptureSpec) error { return nil }

// UnconfiguredProcessor stands in when no query processor is configured.
type UnconfiguredProcessor struct{}

const noProcessorReason = "no query processor is configured: set CDCQ_FLINK_SQL_GATEWAY_URL and CDCQ_FLINK_REST_URL to run cached queries on Flink"

func (UnconfiguredProcessor) Engine() string { return "none" }

func (UnconfiguredProcessor) EnsureQuery(context.Context, QuerySpec) (jobs.QueryStatus, error) {
	return jobs.QueryStatus{}, jobs.Terminalf(noProcessorReason)
}

func (UnconfiguredProcessor) ObserveQuery(context.Context, QuerySpec) (jobs.QueryStatus, error) {
	return jobs.QueryStatus{Status: jobs.StatusFailed, Reason: noProcessorReason}, nil
}

func (UnconfiguredProcessor) DeleteQuery(context.Context, QuerySpec) error { return nil }

func (UnconfiguredProcessor) DeleteEnvironment(context.Context, string) error { return nil }
