package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cdcq/cdcq/internal/atomicfile"
)

// ConnectWorkerConfig describes a Kafka Connect worker of its own beside a
// cluster (see ConnectWorker).
type ConnectWorkerConfig struct {
	// Dir holds the worker's conf/, logs/connect.log and run/connect.pid.
	// Required.
	Dir string
	// JarDir holds lib/connect and plugins/ as Up resolves them: a
	// cluster's Dir, or SharedJarDir. Missing or stale jars are resolved
	// (with Maven) at Start. Empty: Dir.
	JarDir string
	// KafkaBrokers is the bootstrap list of the Kafka the worker uses.
	// Required.
	KafkaBrokers string
	// GroupID is the worker's Connect group. It also names the group's
	// topics: <GroupID>-configs, <GroupID>-offsets, <GroupID>-status.
	// Required; a worker started again with the same GroupID finds its
	// connectors and their offsets.
	GroupID string
	// Port is the REST API's port on 127.0.0.1; 0 picks a free one at the
	// first Start, kept for the later ones.
	Port int
	// Java and Maven binaries, as in Config.
	Java, Maven string
	// FastStartup, DieWithParent, StartTimeout and Progress as in Config.
	FastStartup   bool
	DieWithParent bool
	StartTimeout  time.Duration
	Progress      io.Writer
}

// ConnectWorker is a distributed Kafka Connect worker with the Debezium
// PostgreSQL plugin, in a group and on topics of its own, so that a test
// can kill it (SIGKILL) in the middle of a connector's work and start it
// again without touching the cluster's own worker. Its methods are not
// safe for concurrent use.
type ConnectWorker struct {
	cfg  Config
	wcfg ConnectWorkerConfig
	l    layout
	proc *process
}

// NewConnectWorker checks cfg and picks the port; Start starts the JVM.
func NewConnectWorker(cfg ConnectWorkerConfig) (*ConnectWorker, error) {
	if cfg.Dir == "" || cfg.KafkaBrokers == "" || cfg.GroupID == "" {
		return nil, errors.New("localcluster: a Connect worker needs Dir, KafkaBrokers and GroupID")
	}
	c := Config{Dir: cfg.Dir, JarDir: cfg.JarDir, Java: cfg.Java, Maven: cfg.Maven, FastStartup: cfg.FastStartup,
		DieWithParent: cfg.DieWithParent, StartTimeout: cfg.StartTimeout, Progress: cfg.Progress}
	if err := c.setDefaults(); err != nil {
		return nil, err
	}
	if cfg.Port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("localcluster: find a free port: %w", err)
		}
		cfg.Port = ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
	}
	return &ConnectWorker{cfg: c, wcfg: cfg, l: layout{dir: c.Dir, jarDir: c.JarDir}}, nil
}

// SecretsDir is the directory the worker's "dir" config provider reads
// (see workerProperties): <Dir>/secrets.
func (w *ConnectWorker) SecretsDir() string { return w.l.secrets() }

// URL is the worker's REST URL.
func (w *ConnectWorker) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", w.wcfg.Port) }

// LogFile is the worker's log.
func (w *ConnectWorker) LogFile() string { return w.l.log(Connect) }

// Running reports whether the worker's JVM runs.
func (w *ConnectWorker) Running() bool { return w.proc != nil && !w.proc.exited() }

// Start writes the worker's configuration, starts its JVM and returns when
// its REST API lists the Debezium connector plugin and answers for its
// group. A worker that runs already is an error.
func (w *ConnectWorker) Start(ctx context.Context) error {
	if w.Running() {
		return errors.New("localcluster: the Connect worker runs already")
	}
	if err := w.l.mkdirs(); err != nil {
		return err
	}
	if err := resolveJars(ctx, w.l, w.cfg); err != nil {
		return err
	}
	for path, text := range map[string]string{
		w.l.conf("log4j2.properties"):            log4jProperties,
		w.l.conf("connect", "worker.properties"): workerProperties(w.wcfg.KafkaBrokers, w.wcfg.Port, w.wcfg.GroupID, w.wcfg.GroupID, w.l.plugins(), w.SecretsDir()),
	} {
		if err := atomicfile.Write(path, []byte(text), 0o644); err != nil {
			return fmt.Errorf("localcluster: write %s: %w", path, err)
		}
	}
	s := &starter{cfg: w.cfg, l: w.l}
	var err error
	if s.java, err = lookPath("Java", w.cfg.Java); err != nil {
		return err
	}
	s.t0 = time.Now()
	ctx, cancel := context.WithTimeout(ctx, w.cfg.StartTimeout)
	defer cancel()
	p, err := s.launch(Connect, nil, connectArgs(w.l, false)...)
	if err != nil {
		return err
	}
	w.proc = p
	if err := s.waitFor(ctx, Connect, Connect, func(ctx context.Context) error { return connectReady(ctx, w.URL(), credential{}) }); err != nil {
		_ = w.Kill()
		return err
	}
	return nil
}

// Kill ends the worker's JVM with SIGKILL, as a crash or a lost host
// would: nothing is flushed or committed, and the group learns of it only
// when the worker's session times out. It returns once the JVM is gone.
func (w *ConnectWorker) Kill() error { return w.signal(syscall.SIGKILL, 10*time.Second) }

// Stop stops the worker with SIGTERM (Connect stops its tasks, commits
// their offsets and leaves its group), and with SIGKILL when it still runs
// after 20 seconds. Stopping a worker that does not run does nothing.
func (w *ConnectWorker) Stop() error {
	if err := w.signal(syscall.SIGTERM, stopGrace); err == nil || !w.Running() {
		return err
	}
	return w.Kill()
}

// signal sends sig to the JVM's process group and waits up to wait for it
// to exit.
func (w *ConnectWorker) signal(sig syscall.Signal, wait time.Duration) error {
	if !w.Running() {
		return nil
	}
	pid := w.proc.cmd.Process.Pid
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("localcluster: signal the Connect worker (pid %d): %w", pid, err)
	}
	select {
	case <-w.proc.done:
		_ = os.Remove(w.l.pid(Connect))
		return nil
	case <-time.After(wait):
		return fmt.Errorf("localcluster: the Connect worker (pid %d) still runs %s after %s; log %s", pid, wait, sig, filepath.Clean(w.LogFile()))
	}
}
