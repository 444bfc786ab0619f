// Package debezium implements the Capture port (handlers.Capture) with
// Debezium's PostgreSQL connector on Kafka Connect: Ensure creates or
// updates the connector, Observe turns its status and the replication
// slot's state into a jobs.CaptureStatus, Delete removes the connector and
// then the slot and publication it left in the source database. With
// Config.SecretsDir, Kafka Connect never holds the source password: the
// connector configuration names a file that Connect's
// DirectoryConfigProvider reads (secrets.go).
//
// It talks to Kafka Connect and to the source database only through the
// Connect and Source interfaces below (implemented by
// internal/kafkaconnect and internal/pgsource). It must not import the
// handlers' implementations, projections, http or the embedded engines.
package debezium

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cdcq/cdcq/handlers"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/kafkaconnect"
	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/internal/pgsource"
)

// Engine is what Capture.Engine reports.
const Engine = "kafka-connect"

// Connect is the part of the Kafka Connect REST API the capture uses.
// Errors say whether retrying helps through kafkaconnect.IsRetriable, and a
// missing connector is reported so that kafkaconnect.IsNotFound is true.
type Connect interface {
	PutConnectorConfig(ctx context.Context, name string, config map[string]string) (created bool, err error)
	ConnectorConfig(ctx context.Context, name string) (map[string]string, error)
	ConnectorStatus(ctx context.Context, name string) (kafkaconnect.ConnectorStatus, error)
	DeleteConnector(ctx context.Context, name string) (existed bool, err error)
	ConnectorOffsets(ctx context.Context, name string) ([]kafkaconnect.SourceOffset, error)
	ConnectorsStatus(ctx context.Context) (map[string]kafkaconnect.ConnectorStatus, error)
	RestartConnector(ctx context.Context, name string) error
	StopConnector(ctx context.Context, name string) error
	ResetConnectorOffsets(ctx context.Context, name string) error
}

// Source is what the capture does in the source database. Errors that
// retrying cannot fix are jobs.TerminalError.
type Source interface {
	// CheckHost checks the connection string's host against cdcq's
	// source policy before the connector, which connects on its own, is
	// given it.
	CheckHost(ctx context.Context, connString string) error
	SlotState(ctx context.Context, connString, slot string) (jobs.SlotState, error)
	DropSlotAndPublication(ctx context.Context, connString, slot, publication string) error
}

var (
	_ handlers.Capture          = (*Capture)(nil)
	_ handlers.SnapshotReporter = (*Capture)(nil)
	_ Connect                   = (*kafkaconnect.Client)(nil)
	_ Source                    = (*pgsource.Client)(nil)
)

// Config tunes a Capture. The zero value is usable.
type Config struct {
	// DeleteTimeout bounds each wait of Delete: for the stopped connector
	// to be reported STOPPED, for its offsets to stay reset, and, after
	// deleting the connector, for Kafka Connect to stop reporting it (its
	// task holds the replication slot until then). Past it Delete fails
	// with a retriable error and leaves the slot alone. Default 60s.
	DeleteTimeout time.Duration
	// PollInterval is how often Delete asks for the connector's status
	// while waiting. Default 500ms.
	PollInterval time.Duration
	// SecretsDir, when set, is a directory that cdcq and every Kafka
	// Connect worker see at this same absolute path, the workers through
	// Kafka's DirectoryConfigProvider configured as ConfigProviderName.
	// The connector configuration then holds no password: Ensure writes it
	// to SecretsDir/SecretFileName(connector) (mode 0600) and sets
	// database.password to ${dir:<SecretsDir>:<file>}; Delete removes the
	// file. Empty: Kafka Connect stores the password in clear and shows it
	// to whoever can read its REST API.
	SecretsDir string
	// ChangeTopicRetention is the retention of the change topics the
	// connector creates (TopicCreationConfig; 0 or negative: for ever).
	ChangeTopicRetention time.Duration
}

func (c *Config) setDefaults() {
	if c.DeleteTimeout == 0 {
		c.DeleteTimeout = 60 * time.Second
	}
	if c.PollInterval == 0 {
		c.PollInterval = 500 * time.Millisecond
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.DeleteTimeout < 0 || c.PollInterval < 0 {
		return errors.New("debezium: DeleteTimeout and PollInterval must not be negative")
	}
	if c.SecretsDir != "" {
		return checkSecretsDir(c.SecretsDir)
	}
	return nil
}

// Capture runs captures as Debezium connectors on Kafka Connect. Every
// method is idempotent.
type Capture struct {
	connect Connect
	source  Source
	cfg     Config
	// secrets is nil without Config.SecretsDir.
	secrets *secretStore
}

// New returns a Capture. Both dependencies are required.
func New(connect Connect, source Source, cfg Config) (*Capture, error) {
	if connect == nil {
		return nil, errors.New("debezium: nil Kafka Connect client")
	}
	if source == nil {
		return nil, errors.New("debezium: nil source database client")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Capture{connect: connect, source: source, cfg: cfg}
	if cfg.SecretsDir != "" {
		c.secrets = &secretStore{dir: filepath.Clean(cfg.SecretsDir)}
	}
	return c, nil
}

// KeepsPasswordsOutOfConnect reports whether connector configurations
// refer to password files (Config.SecretsDir) instead of holding them.
func (c *Capture) KeepsPasswordsOutOfConnect() bool { return c.secrets != nil }

// Engine names the implementation for status output.
func (c *Capture) Engine() string { return Engine }

// Ensure makes the connector exist with the configuration spec calls for.
// A connector already configured that way is left alone (a PUT would
// restart it for nothing); otherwise the configuration is PUT, which
// creates or updates it. A configuration Connect rejects (400) is a
// jobs.TerminalError carrying Connect's message.
//
// With Config.SecretsDir the password goes to its file first. A rotated
// password leaves the configuration as it was (it names the file), so
// Ensure restarts the connector and its tasks, which makes them read the
// file again; until that succeeds a marker beside the file keeps the
// restart pending for the next Ensure.
//
// The connection string's host is checked against cdcq's source policy
// first (Source.CheckHost). Kafka Connect resolves the name again on its
// own; cdcq cannot check what that resolution returns.
func (c *Capture) Ensure(ctx context.Context, spec handlers.CaptureSpec) error {
	want, err := ConnectorConfig(spec)
	if err != nil {
		return err
	}
	maps.Copy(want, TopicCreationConfig(c.cfg.ChangeTopicRetention))
	err = c.source.CheckHost(ctx, spec.ConnectionString)
	if err != nil {
		return err
	}
	name := spec.ConnectorName
	file, err := c.storePassword(want, name)
	if err != nil {
		return err
	}
	current, err := c.connect.ConnectorConfig(ctx, name)
	switch {
	case err == nil && sameConfig(current, want):
		return c.restartIfRotated(ctx, name, file)
	case err != nil && !kafkaconnect.IsNotFound(err):
		return classify(fmt.Sprintf("read config of connector %s", name), err)
	}
	if _, err := c.connect.PutConnectorConfig(ctx, name, want); err != nil {
		return classify(fmt.Sprintf("put config of connector %s", name), err)
	}
	// A new or changed configuration restarts the tasks: they read the
	// file as it is now.
	if file != "" {
		return c.secrets.restarted(file)
	}
	return nil
}

// storePassword moves the password of connector config cfg into its file
// and replaces it with a reference to the file, when SecretsDir is set and
// there is a password. It returns the file's name ("" when it did
// nothing); a spec without password leaves no stale file behind.
func (c *Capture) storePassword(cfg map[string]string, connector string) (string, error) {
	if c.secrets == nil {
		return "", nil
	}
	file := SecretFileName(connector)
	password := cfg[passwordKey]
	if password == "" {
		if err := c.secrets.remove(file); err != nil {
			return "", fmt.Errorf("connector %s: %w", connector, err)
		}
		return "", nil
	}
	if err := c.secrets.write(file, password); err != nil {
		return "", fmt.Errorf("connector %s: %w", connector, err)
	}
	cfg[passwordKey] = c.secrets.reference(file)
	return file, nil
}

// restartIfRotated restarts a connector whose password file was rewritten
// since its tasks last started.
func (c *Capture) restartIfRotated(ctx context.Context, name, file string) error {
	if file == "" || !c.secrets.restartPending(file) {
		return nil
	}
	if err := c.connect.RestartConnector(ctx, name); err != nil {
		return classify(fmt.Sprintf("restart connector %s for its new password", name), err)
	}
	return c.secrets.restarted(file)
}

// sameConfig compares a stored configuration with a wanted one, ignoring
// the "name" key that Connect adds.
func sameConfig(stored, want map[string]string) bool {
	stored = maps.Clone(stored)
	delete(stored, "name")
	return maps.Equal(stored, want)
}

// Observe reports the connector's and the slot's state. A slot that cannot
// be read is reported in SlotState.Error; only a failure to ask Kafka
// Connect fails the observation.
func (c *Capture) Observe(ctx context.Context, spec handlers.CaptureSpec) (jobs.CaptureStatus, error) {
	name := spec.ConnectorName
	var out jobs.CaptureStatus
	st, err := c.connect.ConnectorStatus(ctx, name)
	switch {
	case kafkaconnect.IsNotFound(err):
		out = jobs.CaptureStatus{Status: jobs.StatusFailed, Reason: fmt.Sprintf("connector %s does not exist in Kafka Connect", name), Gone: true}
	case err != nil:
		return jobs.CaptureStatus{}, classify(fmt.Sprintf("read status of connector %s", name), err)
	default:
		out = captureStatus(st)
	}

	slot, err := c.source.SlotState(ctx, spec.ConnectionString, spec.SlotName)
	if err != nil {
		slot = jobs.SlotState{Error: err.Error()}
	}
	slot.Name = spec.SlotName
	out.Slot = &slot
	return out, nil
}

// StateFingerprints lists, in one request for all connectors (GET
// /connectors?expand=status), the state of each environment's connector
// and tasks (handlers.StateFingerprinter).
func (c *Capture) StateFingerprints(ctx context.Context) (map[string]string, error) {
	all, err := c.connect.ConnectorsStatus(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(all))
	for name, st := range all {
		env, ok := strings.CutPrefix(name, names.ConnectorName(""))
		if !ok {
			continue
		}
		var b strings.Builder
		b.WriteString(st.Connector.State)
		for _, t := range st.Tasks {
			fmt.Fprintf(&b, " %d:%s", t.ID, t.State)
		}
		out[env] = b.String()
	}
	return out, nil
}

// SnapshotProgress reports whether the connector's initial snapshot is
// complete, from the offsets Kafka Connect committed for it: Debezium's
// PostgreSQL connector commits {"snapshot": "INITIAL", "snapshot_completed":
// false, ...} while it snapshots and an offset without them once it
// streams. No offset yet means the snapshot has not started or committed
// nothing. Connect commits only offsets of records Kafka acknowledged, so
// Done implies that the snapshot's records are all in Kafka. Debezium
// reports no row counts here.
func (c *Capture) SnapshotProgress(ctx context.Context, environmentID string) (jobs.SnapshotProgress, error) {
	name := names.ConnectorName(environmentID)
	offsets, err := c.connect.ConnectorOffsets(ctx, name)
	if kafkaconnect.IsNotFound(err) {
		return jobs.SnapshotProgress{}, nil
	}
	if err != nil {
		return jobs.SnapshotProgress{}, classify(fmt.Sprintf("read offsets of connector %s", name), err)
	}
	server := names.TopicPrefix(environmentID)
	for _, o := range offsets {
		if o.Partition["server"] != server {
			continue
		}
		return jobs.SnapshotProgress{Done: snapshotCompleted(o.Offset)}, nil
	}
	return jobs.SnapshotProgress{}, nil
}

// snapshotCompleted reads Debezium's offset: snapshot_completed when
// present, otherwise the absence of the snapshot marker.
func snapshotCompleted(offset map[string]any) bool {
	if done, ok := offset["snapshot_completed"].(bool); ok {
		return done
	}
	_, snapshotting := offset["snapshot"]
	_, last := offset["last_snapshot_record"]
	return !snapshotting && !last
}

// captureStatus maps a Connect status onto a job status. Failure wins over
// everything, then a pause; RUNNING needs the connector and at least one
// task, all of them RUNNING; anything else (UNASSIGNED, RESTARTING, no
// tasks yet) is still pending.
func captureStatus(st kafkaconnect.ConnectorStatus) jobs.CaptureStatus {
	tasks := append([]kafkaconnect.TaskState(nil), st.Tasks...)
	sort.Slice(tasks, func(i, j int) bool { return tasks[i].ID < tasks[j].ID })
	cs := &jobs.ConnectorState{
		Name:     st.Name,
		State:    st.Connector.State,
		WorkerID: st.Connector.WorkerID,
		Trace:    st.Connector.Trace,
		Tasks:    make([]jobs.TaskState, 0, len(tasks)),
	}
	var failed []kafkaconnect.TaskState
	allRunning := len(tasks) > 0
	for _, t := range tasks {
		cs.Tasks = append(cs.Tasks, jobs.TaskState{ID: t.ID, State: t.State, WorkerID: t.WorkerID, Trace: t.Trace})
		if t.State == kafkaconnect.StateFailed {
			failed = append(failed, t)
		}
		if t.State != kafkaconnect.StateRunning {
			allRunning = false
		}
	}
	out := jobs.CaptureStatus{Connector: cs}
	switch state := st.Connector.State; {
	case state == kafkaconnect.StateFailed:
		out.Status = jobs.StatusFailed
		out.Reason = fmt.Sprintf("connector %s FAILED: %s", st.Name, firstLine(st.Connector.Trace))
	case len(failed) > 0:
		out.Status = jobs.StatusFailed
		out.Reason = fmt.Sprintf("task %d of connector %s FAILED: %s", failed[0].ID, st.Name, firstLine(failed[0].Trace))
		if len(failed) > 1 {
			out.Reason += fmt.Sprintf(" (%d tasks failed)", len(failed))
		}
	case state == kafkaconnect.StatePaused, state == kafkaconnect.StateStopped:
		out.Status = jobs.StatusPaused
		out.Reason = fmt.Sprintf("connector %s is %s", st.Name, state)
	case state == kafkaconnect.StateRunning && allRunning:
		out.Status = jobs.StatusRunning
	default:
		out.Status = jobs.StatusPending
		out.Reason = pendingReason(st.Name, state, tasks)
	}
	return out
}

func pendingReason(name, state string, tasks []kafkaconnect.TaskState) string {
	if state != kafkaconnect.StateRunning {
		return fmt.Sprintf("connector %s is %s", name, state)
	}
	if len(tasks) == 0 {
		return fmt.Sprintf("connector %s is RUNNING but has no tasks yet", name)
	}
	for _, t := range tasks {
		if t.State != kafkaconnect.StateRunning {
			return fmt.Sprintf("task %d of connector %s is %s", t.ID, name, t.State)
		}
	}
	return ""
}

// firstLine is the exception line of a Java stack trace.
func firstLine(trace string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(trace), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return "no trace reported"
	}
	return line
}

// Delete stops the connector and resets its offsets, removes it, waits
// until Kafka Connect no longer reports it (so that its task has let go of
// the slot), then drops the slot and the publication in the source
// database. Each step succeeds when its object is already gone, so Delete
// can be repeated.
//
// Connect keeps a deleted connector's offsets, and a connector created
// again under the same name (the same environment id) would resume from
// them: from an LSN of the slot Delete dropped, which the new slot no
// longer has. Resetting them first makes the next connector of that name
// start afresh, with a snapshot. The offsets are reset before the
// connector is deleted, so a connector found gone had its offsets reset.
func (c *Capture) Delete(ctx context.Context, spec handlers.CaptureSpec) error {
	name := spec.ConnectorName
	if name == "" {
		return jobs.Terminalf("capture spec of environment %q lacks ConnectorName", spec.EnvironmentID)
	}
	if err := c.resetOffsets(ctx, name); err != nil {
		return err
	}
	if _, err := c.connect.DeleteConnector(ctx, name); err != nil {
		return classify(fmt.Sprintf("delete connector %s", name), err)
	}
	// The connector is gone, or was already: its running tasks resolved
	// the password when they started, and nothing will read the file again.
	if c.secrets != nil {
		if err := c.secrets.remove(SecretFileName(name)); err != nil {
			return fmt.Errorf("connector %s: %w", name, err)
		}
	}
	if err := c.waitGone(ctx, name); err != nil {
		return err
	}
	if err := c.source.DropSlotAndPublication(ctx, spec.ConnectionString, spec.SlotName, spec.PublicationName); err != nil {
		return fmt.Errorf("drop slot %s and publication %s of connector %s: %w", spec.SlotName, spec.PublicationName, name, err)
	}
	return nil
}

// resetOffsets stops the connector, waits until Connect reports it
// STOPPED without tasks, then deletes its offsets until Connect reports
// none. A connector that does not exist has nothing to
// reset. Connect refuses (400) to reset a connector its leader does not
// see stopped yet; that error stays retriable, and the retry stops the
// connector again.
func (c *Capture) resetOffsets(ctx context.Context, name string) error {
	err := c.connect.StopConnector(ctx, name)
	switch {
	case kafkaconnect.IsNotFound(err):
		return nil
	case err != nil:
		return classify(fmt.Sprintf("stop connector %s", name), err)
	}
	deadline := time.Now().Add(c.cfg.DeleteTimeout)
	for {
		st, err := c.connect.ConnectorStatus(ctx, name)
		switch {
		case kafkaconnect.IsNotFound(err):
			return nil
		case err != nil && !kafkaconnect.IsRetriable(err):
			return classify(fmt.Sprintf("wait for connector %s to stop", name), err)
		}
		if err == nil && st.Connector.State == kafkaconnect.StateStopped && len(st.Tasks) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("connector %s is not STOPPED %s after it was asked to stop; it was left in Kafka Connect", name, c.cfg.DeleteTimeout)
		}
		if err := c.sleep(ctx, fmt.Sprintf("wait for connector %s to stop", name)); err != nil {
			return err
		}
	}
	for {
		err := c.connect.ResetConnectorOffsets(ctx, name)
		switch {
		case kafkaconnect.IsNotFound(err):
			return nil
		case err != nil:
			return fmt.Errorf("reset offsets of connector %s: %w", name, err)
		}
		// Connect allows the reset once its leader has recorded the stop,
		// which can be before every task has stopped, and a stopping task
		// commits its offsets one last time: look, and reset again if one
		// came in.
		offsets, err := c.connect.ConnectorOffsets(ctx, name)
		switch {
		case kafkaconnect.IsNotFound(err):
			return nil
		case err != nil:
			return fmt.Errorf("read offsets of connector %s after their reset: %w", name, err)
		case len(offsets) == 0:
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("connector %s still has offsets %s after they were reset; it was left in Kafka Connect", name, c.cfg.DeleteTimeout)
		}
		if err := c.sleep(ctx, fmt.Sprintf("reset offsets of connector %s", name)); err != nil {
			return err
		}
	}
}

// sleep waits PollInterval, or fails when ctx ends first.
func (c *Capture) sleep(ctx context.Context, what string) error {
	t := time.NewTimer(c.cfg.PollInterval)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
}

func (c *Capture) waitGone(ctx context.Context, name string) error {
	deadline := time.Now().Add(c.cfg.DeleteTimeout)
	for {
		_, err := c.connect.ConnectorStatus(ctx, name)
		switch {
		case kafkaconnect.IsNotFound(err):
			return nil
		case err != nil && !kafkaconnect.IsRetriable(err):
			return classify(fmt.Sprintf("wait for deleted connector %s to stop", name), err)
		}
		// Still reported, or a passing error: look again.
		if time.Now().After(deadline) {
			return fmt.Errorf("connector %s is still reported by Kafka Connect %s after its deletion; its replication slot was left alone", name, c.cfg.DeleteTimeout)
		}
		if err := c.sleep(ctx, fmt.Sprintf("wait for deleted connector %s to stop", name)); err != nil {
			return err
		}
	}
}

// classify wraps err with what failed; an answer from Connect that no
// retry can change (a 4xx other than 408, 409 and 429) makes it terminal.
// Everything else, including errors that do not say, is retried.
func classify(what string, err error) error {
	wrapped := fmt.Errorf("%s: %w", what, err)
	var ae *kafkaconnect.APIError
	if errors.As(err, &ae) && !ae.Retriable() {
		return jobs.Terminal(wrapped)
	}
	return wrapped
}
