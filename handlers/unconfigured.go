package handlers

import (
	"context"

	"github.com/cdcq/cdcq/internal/jobs"
)

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
