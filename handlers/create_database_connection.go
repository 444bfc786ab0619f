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

// Handle carries out the command, seq being its number among its
// environment's commands (0 if not numbered). It returns an error only when
// a retry can help; a terminal failure is recorded on the job and
// acknowledged.
func (h *CreateDatabaseConnectionHandler) Handle(ctx context.Context, cmd commands.CreateDatabaseConnection, seq int64) error {
	c := causeOf(cmd.Meta, seq)
	_, err := h.ensure(ctx, c, cmd.Connection)
	if isRejected(err) {
		return rejectCommand(ctx, h.cfg, c, cmd.CommandName(), err)
	}
	if jobs.IsTerminal(err) {
		return nil
	}
	return err
}

// rejectCommand records a command that was refused without changing
// anything; the environment's status lists it.
func rejectCommand(ctx context.Context, cfg WorkerConfig, c cause, name string, why error) error {
	return cfg.Events.Publish(ctx, events.CommandRejected{Meta: meta(cfg, c), CommandName: name, Reason: why.Error()})
}

// ensure creates or updates the capture and records the outcome. A
// terminal error has already been recorded as ConnectionFailed when it is
// returned, except a rejection (isRejected), which changed nothing. A new
// password for the bound database rotates the stored one.
func (h *CreateDatabaseConnectionHandler) ensure(ctx context.Context, c cause, conn commands.Connection) (CaptureSpec, error) {
	cfg := h.cfg
	b, err := resolve(ctx, cfg, c.environmentID, conn, true)
	switch {
	case isRejected(err):
		return CaptureSpec{}, err
	case jobs.IsTerminal(err):
		return CaptureSpec{}, h.fail(ctx, c, err)
	case err != nil:
		return CaptureSpec{}, fmt.Errorf("read the connection bound to %s: %w", c.environmentID, err)
	}
	if b.record {
		// Bound before the capture is touched: a delete that follows acts
		// on this database even if the create fails half way.
		if err := cfg.Bindings.Bind(ctx, c.environmentID, b.sealed); err != nil {
			return CaptureSpec{}, fmt.Errorf("bind %s to its database: %w", c.environmentID, err)
		}
	}
	spec := captureSpec(c.environmentID, b.plain)
	// Record "create pending" before touching the engine, so that a crash
	// between the call and the next event shows as a PENDING job.
	requested := events.ConnectionRequested{
		Meta:               meta(cfg, c),
		Engine:             cfg.Capture.Engine(),
		ConnectorName:      spec.ConnectorName,
		SlotName:           spec.SlotName,
		PublicationName:    spec.PublicationName,
		ConnectionRedacted: conn.Redacted,
		ConnectionSealed:   b.sealed,
	}
	if err := cfg.Events.Publish(ctx, requested); err != nil {
		return spec, err
	}
	err = cfg.Capture.Ensure(ctx, spec)
	if err != nil && jobs.IsTerminal(err) {
		return spec, h.fail(ctx, c, err)
	}
	// The engine may have made something in the source (even on a
	// retryable error): from now on only a delete frees the environment.
	if berr := cfg.Bindings.Establish(ctx, c.environmentID); berr != nil {
		return spec, fmt.Errorf("establish the binding of %s: %w", c.environmentID, berr)
	}
	if err != nil {
		return spec, fmt.Errorf("ensure capture for %s: %w", c.environmentID, err)
	}
	status, err := cfg.Capture.Observe(ctx, spec)
	if err != nil {
		// The capture exists; the status poller will observe it later.
		cfg.Logger.WarnContext(ctx, "observe capture after create", "environment_id", c.environmentID, "error", err)
		return spec, nil
	}
	if status.Gone {
		// Just created: the engine does not list it yet (Kafka Connect
		// starts a connector a moment after taking its configuration).
		// The status poller follows it from PENDING.
		status.Status, status.Reason = jobs.StatusPending, "the capture engine has not started the capture yet"
	}
	return spec, cfg.Events.Publish(ctx, events.ConnectionObserved{Meta: meta(cfg, c), Capture: status})
}

// fail records a terminal error and returns it (or the publish error, which
// is worth a retry).
func (h *CreateDatabaseConnectionHandler) fail(ctx context.Context, c cause, why error) error {
	ev := events.ConnectionFailed{Meta: meta(h.cfg, c), Reason: why.Error()}
	if err := h.cfg.Events.Publish(ctx, ev); err != nil {
		return err
	}
	return why
}
