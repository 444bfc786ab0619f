// Package processor implements the Processor port (handlers.Processor)
// with Flink: each cached query is a Flink SQL job submitted through the
// SQL Gateway and watched through the JobManager's REST API.
//
// EnsureQuery translates the query's plan (internal/flinksql), opens a
// gateway session, executes the statements one by one (settings, source
// tables, result sink, INSERT), records the job id of the INSERT and
// closes the session. The job's name is the query's deterministic pipeline
// name, which makes every call idempotent: a job of that name that is
// still alive is reported instead of submitted again. ObserveQuery finds
// the job by name and reports its state, with the root exception of a
// failure. DeleteEnvironment cancels the environment's jobs.
//
// It talks to Flink only through the Gateway and JobManager interfaces
// below (implemented by internal/flink). It must not import the handlers'
// implementations, projections, http or the embedded engines.
package processor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/cdcq/cdcq/handlers"
	"github.com/cdcq/cdcq/internal/flink"
	"github.com/cdcq/cdcq/internal/flinksql"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/internal/sourceschema"
)

// Engine is what Processor.Engine reports.
const Engine = "flink"

// Gateway is the part of the SQL Gateway API the processor uses. Errors
// say whether retrying helps through flink.IsRetriable; a statement Flink
// rejects is a *flink.OperationError.
type Gateway interface {
	OpenSession(ctx context.Context, opts flink.SessionOptions) (string, error)
	Run(ctx context.Context, session string, st flink.Statement) (flink.Result, error)
	CloseSession(ctx context.Context, session string) error
}

// JobManager is the part of the JobManager REST API the processor uses.
type JobManager interface {
	Jobs(ctx context.Context) ([]flink.JobOverview, error)
	Job(ctx context.Context, id string) (flink.JobDetails, error)
	JobExceptions(ctx context.Context, id string, max int) (flink.JobExceptions, error)
	CancelJob(ctx context.Context, id string) error
}

// Topics is the Kafka work the processor needs (implemented by
// internal/flink/kafkatopics).
type Topics interface {
	// TruncateStarts returns, per change topic (full name) and partition,
	// the offset after the topic's last truncate event; topics without
	// one are left out.
	TruncateStarts(ctx context.Context, topics []string) (map[string]map[int32]int64, error)
	// ClearQuery tombstones a query's rows in its result topic.
	ClearQuery(ctx context.Context, environmentID, queryID string) error
	// ForgetGroup deletes a consumer group's committed offsets.
	ForgetGroup(ctx context.Context, group string) error
}

var (
	_ handlers.Processor = (*Processor)(nil)
	_ handlers.Restarter = (*Processor)(nil)
	_ Gateway            = (*flink.Gateway)(nil)
	_ JobManager         = (*flink.JobManager)(nil)
)

// Config configures a Processor.
type Config struct {
	// KafkaBootstrapServers is the Kafka bootstrap list as the Flink
	// cluster reaches it (it may differ from cdcq's own). Required.
	KafkaBootstrapServers string
	// KafkaProperties are extra Kafka client properties for the jobs'
	// sources and sink, for example security.protocol and
	// sasl.jaas.config. Values of keys that name a secret (password,
	// secret, token, credential, jaas, keystore.key) are masked in errors
	// and statuses.
	KafkaProperties map[string]string
	// Settings are extra Flink settings for every job, executed as SET
	// statements (for example parallelism.default or
	// execution.checkpointing.interval).
	Settings map[string]string
	// CloseTimeout bounds closing a session, which happens even when the
	// caller's context is done. Default 10s.
	CloseTimeout time.Duration
	// Topics, when set, lets jobs start after a source's last TRUNCATE and
	// clears a query's old rows from the result topic when its job starts
	// again or it is deleted. Without it a truncate fails the job for good.
	Topics Topics
}

func (c *Config) setDefaults() {
	if c.CloseTimeout == 0 {
		c.CloseTimeout = 10 * time.Second
	}
	if _, ok := c.Settings[CheckpointIntervalSetting]; !ok {
		c.Settings = maps.Clone(c.Settings)
		if c.Settings == nil {
			c.Settings = map[string]string{}
		}
		c.Settings[CheckpointIntervalSetting] = DefaultCheckpointInterval
	}
}

// CheckpointIntervalSetting is Flink's checkpoint interval. Jobs checkpoint
// so that a failure restarts them from their last checkpoint rather than
// from the beginning of their topics, and so that their Kafka sources
// commit the offsets they have read to their consumer group (the pipeline
// name), which is how cdcq tells that a job has caught up with its sources.
const CheckpointIntervalSetting = "execution.checkpointing.interval"

// DefaultCheckpointInterval applies unless Settings names another.
const DefaultCheckpointInterval = "10 s"

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if strings.TrimSpace(c.KafkaBootstrapServers) == "" {
		return errors.New("flink processor: KafkaBootstrapServers is required")
	}
	for k := range c.KafkaProperties {
		if k == "bootstrap.servers" || k == "group.id" {
			return fmt.Errorf("flink processor: KafkaProperties must not set %s", k)
		}
	}
	if _, ok := c.Settings["pipeline.name"]; ok {
		return errors.New("flink processor: Settings must not set pipeline.name: it names each query's job")
	}
	if c.CloseTimeout < 0 {
		return errors.New("flink processor: CloseTimeout is negative")
	}
	return nil
}

// Processor runs cached queries as Flink SQL jobs. Every method is
// idempotent and safe for concurrent use.
type Processor struct {
	gateway Gateway
	jm      JobManager
	cfg     Config
}

// New returns a Processor. Both clients are required.
func New(gateway Gateway, jm JobManager, cfg Config) (*Processor, error) {
	if gateway == nil {
		return nil, errors.New("flink processor: nil SQL Gateway client")
	}
	if jm == nil {
		return nil, errors.New("flink processor: nil JobManager client")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Processor{gateway: gateway, jm: jm, cfg: cfg}, nil
}

// Engine names the implementation for status output.
func (p *Processor) Engine() string { return Engine }

// EnsureQuery makes the query's job run. A job named spec.PipelineName
// that has not reached a terminal state is reported as it is; otherwise
// (none, or one that FAILED, was CANCELED or FINISHED) the statements are
// submitted anew. A statement Flink rejects, or a plan Flink cannot run,
// is a jobs.TerminalError carrying Flink's (or the translator's) message;
// server errors, timeouts and unreachable endpoints are retriable.
func (p *Processor) EnsureQuery(ctx context.Context, spec handlers.QuerySpec) (jobs.QueryStatus, error) {
	if err := checkSpec(spec); err != nil {
		return jobs.QueryStatus{}, err
	}
	all, err := p.jm.Jobs(ctx)
	if err != nil {
		return jobs.QueryStatus{}, p.classify("list Flink jobs", err)
	}
	previous, existed := latest(all, spec.PipelineName)
	if existed && !flink.GloballyTerminal(previous.State) {
		st := p.status(ctx, previous.ID, previous.State, previous.Tasks)
		if !p.NeedsRestart(st) {
			return st, nil
		}
		// Stuck at a truncate it cannot apply, restarting from a checkpoint
		// before it again and again: cancel it and start anew after it.
		if err := p.cancelAndWait(ctx, previous.ID); err != nil {
			return jobs.QueryStatus{}, err
		}
	}
	if spec.Plan == nil {
		return jobs.QueryStatus{}, jobs.Terminalf("query %s carries no compiled plan", spec.QueryID)
	}
	starts, err := p.startOffsets(ctx, spec)
	if err != nil {
		return jobs.QueryStatus{}, err
	}
	if p.cfg.Topics != nil && (existed || len(starts) > 0) {
		// The new job computes the result afresh; rows of the old one that
		// it will not write again (groups that vanished while no job ran,
		// or before a truncate it skips) must not stay behind.
		if err := p.cfg.Topics.ClearQuery(ctx, spec.EnvironmentID, spec.QueryID); err != nil {
			return jobs.QueryStatus{}, fmt.Errorf("clear the old results of %s: %w", spec.QueryID, err)
		}
		// The old job's committed offsets would make the new one look
		// caught up before it has read anything.
		if err := p.cfg.Topics.ForgetGroup(ctx, spec.PipelineName); err != nil {
			return jobs.QueryStatus{}, err
		}
	}
	stmts, err := flinksql.Translate(spec.Plan, flinksql.Options{
		EnvironmentID:    spec.EnvironmentID,
		QueryID:          spec.QueryID,
		PipelineName:     spec.PipelineName,
		BootstrapServers: p.cfg.KafkaBootstrapServers,
		KafkaProperties:  p.cfg.KafkaProperties,
		Settings:         p.cfg.Settings,
		StartOffsets:     starts,
	})
	if err != nil {
		return jobs.QueryStatus{}, jobs.Terminal(fmt.Errorf("translate query %s: %w", spec.QueryID, err))
	}
	jobID, err := p.submit(ctx, spec.PipelineName, stmts)
	if err != nil {
		return jobs.QueryStatus{}, err
	}
	d, err := p.jm.Job(ctx, jobID)
	if err != nil {
		return jobs.QueryStatus{Status: jobs.StatusPending, JobID: jobID,
			Reason: fmt.Sprintf("submitted as Flink job %s; its state could not be read yet: %v", jobID, err)}, nil
	}
	return p.status(ctx, jobID, d.State, nil), nil
}

// startOffsets finds where the plan's sources start: after each change
// topic's last truncate, keyed by the plan's source topic.
func (p *Processor) startOffsets(ctx context.Context, spec handlers.QuerySpec) (map[string]map[int32]int64, error) {
	if p.cfg.Topics == nil {
		return nil, nil
	}
	full := map[string]string{}
	var topics []string
	for _, s := range spec.Plan.Sources {
		name := names.TopicPrefix(spec.EnvironmentID) + "." + s.Topic
		if _, ok := full[name]; !ok {
			full[name] = s.Topic
			topics = append(topics, name)
		}
	}
	found, err := p.cfg.Topics.TruncateStarts(ctx, topics)
	if err != nil {
		return nil, err
	}
	starts := map[string]map[int32]int64{}
	for name, offsets := range found {
		starts[full[name]] = offsets
	}
	return starts, nil
}

// submit runs the statements in one session, which it always closes, and
// returns the job id of the last (the INSERT).
func (p *Processor) submit(ctx context.Context, pipeline string, stmts []string) (jobID string, err error) {
	session, err := p.gateway.OpenSession(ctx, flink.SessionOptions{Name: pipeline})
	if err != nil {
		return "", p.classify("open a Flink SQL Gateway session", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.CloseTimeout)
		defer cancel()
		// A session left open expires on the gateway after its idle
		// timeout; failing to close it harms nothing else.
		_ = p.gateway.CloseSession(cctx, session)
	}()
	var res flink.Result
	for i, st := range stmts {
		res, err = p.gateway.Run(ctx, session, flink.Statement{SQL: st})
		if err != nil {
			var oe *flink.OperationError
			if errors.As(err, &oe) {
				se := &StatementError{Index: i + 1, Of: len(stmts), Head: head(st), Err: p.maskOperation(oe)}
				if oe.Retriable() {
					return "", se
				}
				return "", jobs.Terminal(se)
			}
			return "", p.classify(fmt.Sprintf("run statement %d of %d (%s)", i+1, len(stmts), head(st)), err)
		}
	}
	if res.JobID == "" {
		return "", fmt.Errorf("the INSERT of %s finished without a job id", pipeline)
	}
	return res.JobID, nil
}

// StatementError is a statement of a query's job that Flink did not run.
type StatementError struct {
	// Index counts from 1 among Of statements.
	Index, Of int
	// Head is the statement's first line.
	Head string
	Err  *flink.OperationError
}

func (e *StatementError) Error() string {
	verb := "rejected"
	if e.Err.Status != flink.OpError {
		verb = "did not finish"
	}
	return fmt.Sprintf("Flink %s statement %d of %d (%s): %s", verb, e.Index, e.Of, e.Head, e.Err.Reason)
}

func (e *StatementError) Unwrap() error { return e.Err }

// StateFingerprints lists, in one request for all jobs (GET
// /jobs/overview), the state of each environment's jobs
// (handlers.StateFingerprinter). Jobs are named by names.PipelineName.
func (p *Processor) StateFingerprints(ctx context.Context) (map[string]string, error) {
	all, err := p.jm.Jobs(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	out := map[string]string{}
	for _, j := range all {
		env, ok := pipelineEnvironment(j.Name)
		if ok {
			out[env] += j.ID + ":" + j.State + " "
		}
	}
	return out, nil
}

// pipelineEnvironment reads the environment of a job named by
// names.PipelineName ("cdcq-<environmentId>-q_<hex>").
func pipelineEnvironment(name string) (string, bool) {
	prefix := names.PipelineName("", "")
	prefix = prefix[:len(prefix)-1] // "cdcq-"
	rest, ok := strings.CutPrefix(name, prefix)
	i := strings.LastIndex(rest, "-q_")
	if !ok || i <= 0 {
		return "", false
	}
	return rest[:i], true
}

// ObserveQuery reports the state of the most recent job named
// spec.PipelineName. A FAILED job's Reason is the meaningful line of its
// latest exception and RootException the whole stack trace; no such job
// is FAILED with a reason that says so.
func (p *Processor) ObserveQuery(ctx context.Context, spec handlers.QuerySpec) (jobs.QueryStatus, error) {
	if spec.PipelineName == "" {
		return jobs.QueryStatus{}, jobs.Terminalf("query spec of %q lacks PipelineName", spec.QueryID)
	}
	all, err := p.jm.Jobs(ctx)
	if err != nil {
		return jobs.QueryStatus{}, p.classify("list Flink jobs", err)
	}
	j, ok := latest(all, spec.PipelineName)
	if !ok {
		return jobs.QueryStatus{Status: jobs.StatusFailed, Reason: "no Flink job named " + spec.PipelineName}, nil
	}
	return p.status(ctx, j.ID, j.State, j.Tasks), nil
}

// status maps a job's state onto a query status, reading the job's latest
// exception when the state calls for one. tasks are the job's task counts
// by state, when known: a RUNNING job whose tasks do not all run yet (they
// wait for a free task slot, or are being deployed) is still PENDING.
func (p *Processor) status(ctx context.Context, id, state string, tasks map[string]int) jobs.QueryStatus {
	out := jobs.QueryStatus{JobID: id, JobState: state}
	switch state {
	case flink.JobRunning:
		out.Status = jobs.StatusRunning
		// A bounded part of the plan (the one-row source that makes a
		// query without GROUP BY answer over no rows) finishes at once.
		if total, up := tasks["total"], tasks["running"]+tasks["finished"]; total > 0 && up < total {
			out.Status = jobs.StatusPending
			out.Reason = fmt.Sprintf("Flink job %s is RUNNING but %d of its %d tasks are not yet: they are being deployed, or wait for a free task slot (scheduled: %d)",
				id, total-up, total, tasks["scheduled"])
		}
	case flink.JobFailed, flink.JobFailing, flink.JobRestarting:
		out.Status = jobs.StatusFailed
		if state == flink.JobRestarting {
			// Flink recovers by itself; the failure is shown meanwhile.
			out.Status = jobs.StatusPending
		}
		trace, why := p.latestException(ctx, id)
		out.RootException = trace
		switch {
		case truncated(trace) != "":
			out.Reason = fmt.Sprintf("the source table %s was truncated, and Flink's debezium-json format cannot apply a TRUNCATE: "+
				"Flink job %s stopped there. cdcq starts the job again after the table's last truncate", truncated(trace), id)
			if p.cfg.Topics == nil {
				out.Reason = fmt.Sprintf("the source table %s was truncated, and Flink's debezium-json format cannot apply a TRUNCATE: "+
					"Flink job %s stopped there and the result is stale. Delete the cached query and create it again", truncated(trace), id)
			}
		case state == flink.JobFailed:
			out.Reason = fmt.Sprintf("Flink job %s FAILED: %s", id, why)
		default:
			out.Reason = fmt.Sprintf("Flink job %s is %s after a failure: %s", id, state, why)
		}
	case flink.JobCancelling, flink.JobCanceled:
		out.Status = jobs.StatusFailed
		out.Reason = fmt.Sprintf("Flink job %s is %s: it was canceled (outside cdcq, or with its connection); createCachedQuery starts it again", id, state)
	case flink.JobFinished:
		out.Status = jobs.StatusFailed
		out.Reason = fmt.Sprintf("Flink job %s FINISHED, but a cached query's job runs until it is canceled (was it stopped with a savepoint?)", id)
	case flink.JobSuspended:
		out.Status = jobs.StatusPending
		out.Reason = fmt.Sprintf("Flink job %s is SUSPENDED: its JobManager lost leadership", id)
	default: // INITIALIZING, CREATED, RECONCILING, or a state of a later Flink
		out.Status = jobs.StatusPending
		out.Reason = fmt.Sprintf("Flink job %s is %s", id, state)
	}
	return out
}

// NeedsRestart reports a job that stopped at a source's TRUNCATE, FAILED or
// failing over and over (a restart from a checkpoint meets the truncate
// again): starting it again (EnsureQuery) starts its sources after the
// truncate.
func (p *Processor) NeedsRestart(status jobs.QueryStatus) bool {
	switch status.JobState {
	case flink.JobFailed, flink.JobFailing, flink.JobRestarting:
		return p.cfg.Topics != nil && truncated(status.RootException) != ""
	}
	return false
}

// cancelAndWait cancels a job and waits until it has reached a terminal
// state, so that a job started after it is the latest of its name.
func (p *Processor) cancelAndWait(ctx context.Context, id string) error {
	if err := p.jm.CancelJob(ctx, id); err != nil && !flink.IsNotFound(err) {
		var ae *flink.APIError
		if !errors.As(err, &ae) || ae.StatusCode != 409 {
			return p.classify("cancel Flink job "+id, err)
		}
	}
	for range 60 {
		d, err := p.jm.Job(ctx, id)
		if err != nil && !flink.IsNotFound(err) {
			return p.classify("read Flink job "+id, err)
		}
		if err != nil || flink.GloballyTerminal(d.State) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("Flink job %s did not end within 30 s of its cancellation", id)
}

// truncateRE matches the exception Flink's debezium-json format throws for
// a truncate event, which quotes the event: its source names the table.
var truncateRE = regexp.MustCompile(`Unknown "op" value "t"\. The Debezium JSON message is '.*?"schema":"([^"]*)".*?"table":"([^"]*)"`)

// truncated returns the schema-qualified table whose truncate event failed
// a job, or "" when the trace shows no such failure.
func truncated(trace string) string {
	m := truncateRE.FindStringSubmatch(trace)
	if m == nil {
		if strings.Contains(trace, `Unknown "op" value "t"`) {
			return "(unknown)"
		}
		return ""
	}
	return m[1] + "." + m[2]
}

// latestException returns the latest failure's stack trace and its
// summary; the summary says why when there is none to show.
func (p *Processor) latestException(ctx context.Context, id string) (trace, summary string) {
	ex, err := p.jm.JobExceptions(ctx, id, 1)
	if err != nil {
		return "", "its exceptions could not be read: " + p.mask(err.Error())
	}
	trace, ok := ex.Latest()
	if !ok {
		return "", "Flink reports no exception"
	}
	trace = p.mask(trace)
	if s := flink.Summarize(flink.ParseTrace(trace)); s != "" {
		return trace, s
	}
	line, _, _ := strings.Cut(strings.TrimSpace(trace), "\n")
	return trace, line
}

// DeleteEnvironment cancels every job of the environment that has not
// reached a terminal state. Jobs that are gone or already ended count as
// canceled, so a repeated call succeeds.
func (p *Processor) DeleteEnvironment(ctx context.Context, environmentID string) error {
	if environmentID == "" {
		return jobs.Terminalf("DeleteEnvironment needs an environment id")
	}
	return p.cancelJobs(ctx, func(name string) bool { return ofEnvironment(name, environmentID) })
}

// DeleteQuery cancels every job of one cached query (named by its pipeline
// name) that is not in a terminal state. Idempotent.
func (p *Processor) DeleteQuery(ctx context.Context, spec handlers.QuerySpec) error {
	if spec.PipelineName == "" {
		return jobs.Terminalf("DeleteQuery needs a pipeline name")
	}
	if err := p.cancelJobs(ctx, func(name string) bool { return name == spec.PipelineName }); err != nil {
		return err
	}
	if p.cfg.Topics != nil && spec.EnvironmentID != "" && spec.QueryID != "" {
		return p.cfg.Topics.ClearQuery(ctx, spec.EnvironmentID, spec.QueryID)
	}
	return nil
}

// StopQuery cancels one cached query's jobs and leaves its result topic
// as it is: a query whose source's schema changed keeps its last result.
// Idempotent.
func (p *Processor) StopQuery(ctx context.Context, spec handlers.QuerySpec) error {
	if spec.PipelineName == "" {
		return jobs.Terminalf("StopQuery needs a pipeline name")
	}
	return p.cancelJobs(ctx, func(name string) bool { return name == spec.PipelineName })
}

// SourceSchemaOptions says how Flink reads the source columns: into the
// types the job's source tables declare (a numeric with a larger scale is
// rounded, a bigint does not fit an INT), and through debezium-json, which
// needs the before-image of every update and delete.
func (p *Processor) SourceSchemaOptions() sourceschema.Options {
	return sourceschema.Options{ExactTypes: true, NeedBeforeImages: true}
}

// cancelJobs cancels the jobs whose names match and that are not in a
// terminal state.
func (p *Processor) cancelJobs(ctx context.Context, match func(name string) bool) error {
	all, err := p.jm.Jobs(ctx)
	if err != nil {
		return p.classify("list Flink jobs", err)
	}
	var errs []error
	for _, j := range all {
		if !match(j.Name) || flink.GloballyTerminal(j.State) {
			continue
		}
		err := p.jm.CancelJob(ctx, j.ID)
		var ae *flink.APIError
		switch {
		case err == nil, flink.IsNotFound(err):
		case errors.As(err, &ae) && ae.StatusCode == 409:
			// Already in another terminal state.
		default:
			errs = append(errs, p.classify(fmt.Sprintf("cancel Flink job %s (%s)", j.ID, j.Name), err))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	joined := errors.Join(errs...)
	for _, e := range errs {
		if !jobs.IsTerminal(e) {
			return joined // retry the lot; canceled jobs are skipped then
		}
	}
	return jobs.Terminal(joined)
}

// ofEnvironment reports whether a job name is a pipeline name of the
// environment: names.PipelineName gives "cdcq-<env>-<query id>", and query
// ids hold no '-', so "cdcq-a-b-q_1" belongs to environment "a-b", not "a".
func ofEnvironment(jobName, environmentID string) bool {
	prefix := names.PipelineName(environmentID, "")
	rest, ok := strings.CutPrefix(jobName, prefix)
	return ok && rest != "" && !strings.Contains(rest, "-")
}

// latest returns the most recently started job with the name.
func latest(all []flink.JobOverview, name string) (flink.JobOverview, bool) {
	var named []flink.JobOverview
	for _, j := range all {
		if j.Name == name {
			named = append(named, j)
		}
	}
	if len(named) == 0 {
		return flink.JobOverview{}, false
	}
	sort.SliceStable(named, func(i, k int) bool { return named[i].StartTime > named[k].StartTime })
	return named[0], true
}

func checkSpec(spec handlers.QuerySpec) error {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"EnvironmentID", spec.EnvironmentID}, {"QueryID", spec.QueryID}, {"PipelineName", spec.PipelineName},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return jobs.Terminalf("query spec lacks %s", strings.Join(missing, ", "))
	}
	return nil
}

// classify wraps err with what failed; an answer from Flink that no retry
// can change makes it terminal. Everything else, including errors that do
// not say, is retried.
func (p *Processor) classify(what string, err error) error {
	wrapped := fmt.Errorf("%s: %w", what, err)
	var ae *flink.APIError
	var oe *flink.OperationError
	if (errors.As(err, &ae) || errors.As(err, &oe)) && !flink.IsRetriable(err) {
		return jobs.Terminal(maskedError{msg: p.mask(wrapped.Error()), err: err})
	}
	return maskedError{msg: p.mask(wrapped.Error()), err: err}
}

// maskedError carries an error whose message had secret values masked.
type maskedError struct {
	msg string
	err error
}

func (e maskedError) Error() string { return e.msg }
func (e maskedError) Unwrap() error { return e.err }

func (p *Processor) maskOperation(oe *flink.OperationError) *flink.OperationError {
	cp := *oe
	cp.Reason = p.mask(oe.Reason)
	cp.Trace = p.mask(oe.Trace)
	return &cp
}

// mask hides the values of secret Kafka properties in text from Flink,
// which may quote a statement's options.
func (p *Processor) mask(s string) string {
	for k, v := range p.cfg.KafkaProperties {
		if len(v) < 4 || !isSecretKey(k) {
			continue
		}
		s = strings.ReplaceAll(s, v, "***")
	}
	return s
}

func isSecretKey(k string) bool {
	k = strings.ToLower(k)
	for _, part := range []string{"password", "secret", "token", "credential", "jaas", "keystore.key"} {
		if strings.Contains(k, part) {
			return true
		}
	}
	return false
}

// head is a statement's first line, short enough for an error.
func head(stmt string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(stmt), "\n")
	line = strings.TrimSuffix(strings.TrimSpace(line), "(")
	if len(line) > 80 {
		line = line[:80] + "..."
	}
	return strings.TrimSpace(line)
}
