package handlers

import (
	"context"
	"fmt"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/jobs"
)

// CreateDatabaseConnectionHandler consumes CreateDatabaseConnection and
// emits ConnectionRequested, then ConnectionObserved or ConnectionFailed.
// Idempotent: Capture.Ensure brings an existing capture to the spec, and
// the projector keeps a redelivered request from resetting the job.
type CreateDatabaseConnectionHandler struct {
	cfg WorkerConfig
}

// Handle carries out the command. It returns an error only when a retry
// can help; a terminal failure is recorded on the job and acknowledged.
func (h *CreateDatabaseConnectionHandler) Handle(ctx context.Context, cmd commands.CreateDatabaseConnection) error {
	_, err := h.ensure(ctx, cmd.Meta, cmd.Connection)
	if jobs.IsTerminal(err) {
		return nil
	}
	return err
}

// ensure creates or updates the capture and records the outcome. A
// terminal error has already been recorded as ConnectionFailed when it is
// returned.
func (h *CreateDatabaseConnectionHandler) ensure(ctx context.Context, m commands.Meta, conn commands.Connection) (CaptureSpec, error) {
	cfg := h.cfg
	plain, err := conn.Open(cfg.Sealer)
	if err != nil {
		err = jobs.Terminalf("%v (was it sealed with this deployment's CDCQ_SECRET_KEY?)", err)
		return CaptureSpec{}, h.fail(ctx, m, err)
	}
	spec := captureSpec(m.EnvironmentID, plain)
	// Record "create pending" before touching the engine, so that a crash
	// between the call and the next event shows as a PENDING job.
	requested := events.ConnectionRequested{
		Meta:               meta(cfg, m.EnvironmentID, m.CommandID),
		Engine:             cfg.Capture.Engine(),
		ConnectorName:      spec.ConnectorName,
		SlotName:           spec.SlotName,
		PublicationName:    spec.PublicationName,
		ConnectionRedacted: conn.Redacted,
		ConnectionSealed:   conn.Sealed,
	}
	if err := cfg.Events.Publish(ctx, requested); err != nil {
		return spec, err
	}
	if err := cfg.Capture.Ensure(ctx, spec); err != nil {
		if jobs.IsTerminal(err) {
			return spec, h.fail(ctx, m, err)
		}
		return spec, fmt.Errorf("ensure capture for %s: %w", m.EnvironmentID, err)
	}
	status, err := cfg.Capture.Observe(ctx, spec)
	if err != nil {
		// The capture exists; the status poller will observe it later.
		cfg.Logger.WarnContext(ctx, "observe capture after create", "environment_id", m.EnvironmentID, "error", err)
		return spec, nil
	}
	return spec, cfg.Events.Publish(ctx, events.ConnectionObserved{Meta: meta(cfg, m.EnvironmentID, m.CommandID), Capture: status})
}

// fail records a terminal error and returns it (or the publish error, which
// is worth a retry).
func (h *CreateDatabaseConnectionHandler) fail(ctx context.Context, m commands.Meta, cause error) error {
	ev := events.ConnectionFailed{Meta: meta(h.cfg, m.EnvironmentID, m.CommandID), Reason: cause.Error()}
	if err := h.cfg.Events.Publish(ctx, ev); err != nil {
		return err
	}
	return cause
}
