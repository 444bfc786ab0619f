package localcluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cdcq/cdcq/internal/atomicfile"
	"golang.org/x/sync/errgroup"
)

// quickJIT has a JVM compile with C1 only: it starts sooner and runs hot
// code slower. The short-lived tools (storage format, Flink's memory
// calculation) always use it, the cluster's JVMs with Config.FastStartup.
const quickJIT = "-XX:TieredStopAtLevel=1"

// starter starts the JVMs of one Up and watches them until all answer.
type starter struct {
	cfg   Config
	l     layout
	ports Ports
	// auth is the user of the Connect REST API.
	auth credential
	// sasl is the user of Kafka's SASL_SSL listener.
	sasl credential
	java string
	t0   time.Time

	mu    sync.Mutex
	procs []*process
}

func (s *starter) start(ctx context.Context) (err error) {
	if s.java, err = lookPath("Java", s.cfg.Java); err != nil {
		return err
	}
	s.t0 = time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	defer func() {
		if err != nil {
			// Leave nothing half-started behind.
			_ = stop(s.l, 5*time.Second)
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.kafkaAndConnect(gctx) })
	g.Go(func() error { return s.flink(gctx) })
	return g.Wait()
}

func (s *starter) kafkaAndConnect(ctx context.Context) error {
	if err := s.formatKafka(ctx); err != nil {
		return err
	}
	if _, err := s.launch(Kafka, nil,
		"-Xms256m", "-Xmx512m", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile="+s.l.conf("log4j2.properties"),
		"-cp", filepath.Join(s.l.lib("kafka"), "*"),
		"kafka.Kafka", s.l.conf("kafka", "server.properties"),
	); err != nil {
		return err
	}
	brokers := fmt.Sprintf("127.0.0.1:%d", s.ports.Kafka)
	if err := s.waitFor(ctx, Kafka, Kafka, func(ctx context.Context) error { return kafkaReady(ctx, brokers) }); err != nil {
		return err
	}
	if _, err := s.launch(Connect, nil, connectArgs(s.l, true)...); err != nil {
		return err
	}
	if err := s.kafkaSASL(ctx, brokers); err != nil {
		return err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", s.ports.Connect)
	return s.waitFor(ctx, Connect, Connect, func(ctx context.Context) error { return connectReady(ctx, url, s.auth) })
}

// kafkaSASL creates the SASL_SSL listener's user through the PLAINTEXT
// listener at brokers, then waits until the listener takes it: the
// credential reaches the broker through the metadata log.
func (s *starter) kafkaSASL(ctx context.Context, brokers string) error {
	if err := addSCRAMUser(ctx, brokers, s.sasl); err != nil {
		return err
	}
	sec, err := kafkaSASLSecurity(s.l.tlsCA(), s.sasl)
	if err != nil {
		return err
	}
	saslBrokers := fmt.Sprintf("127.0.0.1:%d", s.ports.KafkaSASL)
	return s.waitFor(ctx, Kafka, "kafka SASL_SSL listener", func(ctx context.Context) error {
		return kafkaSASLReady(ctx, saslBrokers, sec)
	})
}

// connectArgs are the Java arguments of a Connect worker configured by
// conf/connect/worker.properties; with restAuth, its REST extension is on
// the class path and reads conf/connect/jaas.conf.
func connectArgs(l layout, restAuth bool) []string {
	args := []string{"-Xms256m", "-Xmx768m", "-Djava.awt.headless=true", "-Dlog4j2.configurationFile=" + l.conf("log4j2.properties")}
	cp := filepath.Join(l.lib("connect"), "*")
	if restAuth {
		args = append(args, "-Djava.security.auth.login.config="+l.conf("connect", "jaas.conf"))
		cp += string(filepath.ListSeparator) + filepath.Join(l.lib("connect-rest-auth"), "*")
	}
	return append(args, "-cp", cp,
		"org.apache.kafka.connect.cli.ConnectDistributed", l.conf("connect", "worker.properties"))
}

// formatKafka formats Kafka's log directory with a new cluster id, once.
func (s *starter) formatKafka(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(s.l.kafkaData(), "meta.properties")); err == nil {
		return nil
	}
	// A cluster id is 16 random bytes in URL-safe base64; one that starts
	// with "-" would read as an option (Kafka's own Uuid.randomUuid avoids
	// those too), so such ids are drawn again.
	var clusterID string
	for clusterID == "" || clusterID[0] == '-' {
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return fmt.Errorf("localcluster: kafka cluster id: %w", err)
		}
		clusterID = base64.RawURLEncoding.EncodeToString(id)
	}
	out, err := exec.CommandContext(ctx, s.java, quickJIT,
		"-Dlog4j2.configurationFile="+s.l.conf("log4j2.properties"),
		"-cp", filepath.Join(s.l.lib("kafka"), "*"),
		"kafka.tools.StorageTool", "format", "-t", clusterID,
		"-c", s.l.conf("kafka", "server.properties"),
	).CombinedOutput()
	if err != nil {
		return fmt.Errorf("localcluster: format kafka storage in %s: %w\n%s", s.l.kafkaData(), err, lastLines(string(out), 30))
	}
	return nil
}

func (s *starter) flink(ctx context.Context) error {
	params, err := s.flinkResourceParams(ctx)
	if err != nil {
		return err
	}
	log4j := "-Dlog4j.configurationFile=file:" + s.l.conf("log4j2.properties")
	classpath := filepath.Join(s.l.lib("flink"), "*")
	confDir := s.l.conf("flink")
	entry := func(jvm []string, main string, dynamic []string) []string {
		args := append(append(append([]string{}, jvm...), flinkJava17Opts...), log4j, "-cp", classpath, main, "--configDir", confDir)
		return append(args, dynamic...)
	}
	if _, err := s.launch(JobManager, nil, entry(params.JobManagerJVM,
		"org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint", params.JobManagerDynamic)...); err != nil {
		return err
	}
	if _, err := s.launch(TaskManager, nil, entry(params.TaskManagerJVM,
		"org.apache.flink.runtime.taskexecutor.TaskManagerRunner", params.TaskManagerDynamic)...); err != nil {
		return err
	}
	restURL := fmt.Sprintf("http://127.0.0.1:%d", s.ports.FlinkREST)
	if err := s.waitFor(ctx, JobManager, JobManager, func(ctx context.Context) error { return jobManagerAnswers(ctx, restURL) }); err != nil {
		return err
	}
	gatewayArgs := append(append([]string{"-Xmx768m"}, flinkJava17Opts...), log4j,
		"-cp", classpath, "org.apache.flink.table.gateway.SqlGateway")
	if _, err := s.launch(SQLGateway, []string{"FLINK_CONF_DIR=" + confDir}, gatewayArgs...); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return s.waitFor(gctx, TaskManager, TaskManager, func(ctx context.Context) error { return flinkReady(ctx, restURL, true) })
	})
	g.Go(func() error {
		gatewayURL := fmt.Sprintf("http://127.0.0.1:%d", s.ports.SQLGateway)
		return s.waitFor(gctx, SQLGateway, SQLGateway, func(ctx context.Context) error { return gatewayReady(ctx, gatewayURL) })
	})
	return g.Wait()
}

// flinkParams are the JVM options and dynamic configuration of the
// JobManager and TaskManager, computed from config.yaml's memory settings
// as Flink's scripts compute them.
type flinkParams struct {
	Key                string   `json:"key"`
	JobManagerJVM      []string `json:"jobManagerJVM"`
	JobManagerDynamic  []string `json:"jobManagerDynamic"`
	TaskManagerJVM     []string `json:"taskManagerJVM"`
	TaskManagerDynamic []string `json:"taskManagerDynamic"`
}

// flinkResourceParams asks Flink's BashJavaUtils, as jobmanager.sh and
// taskmanager.sh do, and keeps the answer in conf/flink/resource-params.json
// for as long as config.yaml and the jars stay the same.
func (s *starter) flinkResourceParams(ctx context.Context) (flinkParams, error) {
	confDir := s.l.conf("flink")
	yaml, err := os.ReadFile(filepath.Join(confDir, "config.yaml"))
	if err != nil {
		return flinkParams{}, fmt.Errorf("localcluster: flink memory parameters: %w", err)
	}
	marker, _ := os.ReadFile(filepath.Join(s.l.lib("flink"), markerFile))
	sum := sha256.Sum256(append(yaml, marker...))
	key := hex.EncodeToString(sum[:])
	cache := filepath.Join(confDir, "resource-params.json")
	var p flinkParams
	if b, err := os.ReadFile(cache); err == nil && json.Unmarshal(b, &p) == nil && p.Key == key {
		return p, nil
	}
	p = flinkParams{Key: key}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		p.JobManagerJVM, p.JobManagerDynamic, err = s.bashJavaUtils(gctx, "GET_JM_RESOURCE_PARAMS")
		return err
	})
	g.Go(func() (err error) {
		p.TaskManagerJVM, p.TaskManagerDynamic, err = s.bashJavaUtils(gctx, "GET_TM_RESOURCE_PARAMS")
		return err
	})
	if err := g.Wait(); err != nil {
		return flinkParams{}, err
	}
	if b, err := json.MarshalIndent(p, "", "  "); err == nil {
		_ = atomicfile.Write(cache, b, 0o644)
	}
	return p, nil
}

// bashJavaUtils runs one BashJavaUtils command. Its answer is two lines
// prefixed BASH_JAVA_UTILS_EXEC_RESULT: the JVM options, then the dynamic
// configuration ("-D key=value …") for after --configDir.
func (s *starter) bashJavaUtils(ctx context.Context, command string) (jvm, dynamic []string, err error) {
	cmd := exec.CommandContext(ctx, s.java, quickJIT, "-cp", filepath.Join(s.l.lib("flink"), "*"),
		"org.apache.flink.runtime.util.bash.BashJavaUtils", command, "--configDir", s.l.conf("flink"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, nil, fmt.Errorf("localcluster: flink %s: %w\n%s", command, err, lastLines(out.String(), 30))
	}
	jvm, dynamic, err = parseBashJavaUtils(out.String())
	if err != nil {
		return nil, nil, fmt.Errorf("localcluster: flink %s: %w\n%s", command, err, lastLines(out.String(), 30))
	}
	return jvm, dynamic, nil
}

func parseBashJavaUtils(out string) (jvm, dynamic []string, err error) {
	const prefix = "BASH_JAVA_UTILS_EXEC_RESULT:"
	var results []string
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			results = append(results, rest)
		}
	}
	if len(results) != 2 {
		return nil, nil, fmt.Errorf("expected 2 %s lines, got %d", prefix, len(results))
	}
	return strings.Fields(results[0]), strings.Fields(results[1]), nil
}

// launch starts a JVM and adds it to the processes that waitFor watches.
func (s *starter) launch(name string, env []string, args ...string) (*process, error) {
	if s.cfg.FastStartup {
		args = append([]string{quickJIT}, args...)
	}
	p, err := startJVM(s.l, s.cfg, s.java, name, env, args...)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	fmt.Fprintf(s.cfg.Progress, "started %s (pid %d), log %s\n", name, p.cmd.Process.Pid, p.logPath)
	return p, nil
}

// waitFor polls ready until it succeeds. It fails at once when any JVM of
// this start has exited, and with ready's last error when ctx ends.
// component names the log to look at; ready's errors say which part of it
// they wait for, as the SASL_SSL listener's do.
func (s *starter) waitFor(ctx context.Context, component, what string, ready func(context.Context) error) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		procs := append([]*process(nil), s.procs...)
		s.mu.Unlock()
		for _, p := range procs {
			if p.exited() {
				return p.exitedErr()
			}
		}
		err := ready(ctx)
		if err == nil {
			fmt.Fprintf(s.cfg.Progress, "%s ready (%.1fs)\n", what, time.Since(s.t0).Seconds())
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("localcluster: %s %w after %s: %v; see %s", what, errNotReady, s.cfg.StartTimeout, err, s.l.log(component))
			}
			return fmt.Errorf("localcluster: wait for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
}
