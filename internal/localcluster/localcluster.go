// Package localcluster runs a real single-node cluster on this machine,
// without Docker: Kafka (KRaft, broker and controller in one JVM), Kafka
// Connect in distributed mode with the Debezium PostgreSQL connector as a
// plugin, and a Flink session cluster (JobManager, TaskManager) with the
// Flink SQL Gateway. Every JVM runs from jars that Maven resolves from pinned
// Maven Central coordinates (jars.go).
//
// It owns the directory it is given:
//
//	lib/<kafka|connect|flink>/   resolved jars, re-resolved only when a pin changes
//	plugins/debezium-postgres/   the Debezium connector (Connect's plugin.path is plugins/)
//	conf/                        generated configuration, rewritten at every start
//	data/kafka/                  Kafka's log directory, kept across restarts
//	logs/<component>.log         each JVM's output (the previous run's in .log.1)
//	run/<component>.pid          each running JVM's process id
//	tmp/                         Flink's temporary files
//	secrets/                     passwords cdcq writes for Connect's "dir" config provider (mode 0700)
//	tls/                         the CA (ca.pem) and Kafka's SASL_SSL key and certificate (server.pem), made once
//	env                          the CDCQ_* variables that point cdcq at the cluster
//
// `make cluster-up` (cmd/localcluster) and the tests' harness
// (internal/clustertest) use it. ConnectWorker runs one more Connect worker,
// in a group of its own, for tests that kill it. The JVMs run in sessions of
// their own, so a cluster outlives the process that started it unless
// Config.DieWithParent says otherwise.
//
// This package imports no cdcq package but the leaf packages
// internal/kafkasec, internal/selfsigned and internal/atomicfile.
package localcluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cdcq/cdcq/internal/atomicfile"
	"github.com/cdcq/cdcq/internal/kafkasec"
)

// Component names: the names of the log and pid files, and what errors call
// the JVMs.
const (
	Kafka       = "kafka"
	Connect     = "connect"
	JobManager  = "jobmanager"
	TaskManager = "taskmanager"
	SQLGateway  = "sql-gateway"
)

// components in start order.
var components = []string{Kafka, JobManager, TaskManager, Connect, SQLGateway}

// Ports are the TCP ports the cluster listens on, all on 127.0.0.1.
type Ports struct {
	// Kafka is the broker's PLAINTEXT listener (CDCQ_KAFKA_BROKERS).
	Kafka int `json:"kafka"`
	// KafkaSASL is the broker's SASL_SSL listener: SCRAM-SHA-256 over TLS
	// (CDCQ_TEST_KAFKA_SASL_BROKERS).
	KafkaSASL int `json:"kafkaSasl"`
	// KafkaController is the KRaft controller's listener.
	KafkaController int `json:"kafkaController"`
	// Connect is Kafka Connect's REST API (CDCQ_CONNECT_URL).
	Connect int `json:"connect"`
	// FlinkREST is the JobManager's REST API and web UI (CDCQ_FLINK_REST_URL).
	FlinkREST int `json:"flinkRest"`
	// FlinkRPC is the JobManager's RPC port (jobmanager.rpc.port).
	FlinkRPC int `json:"flinkRpc"`
	// FlinkBlob is the JobManager's blob server.
	FlinkBlob int `json:"flinkBlob"`
	// SQLGateway is the Flink SQL Gateway's REST API
	// (CDCQ_FLINK_SQL_GATEWAY_URL). Its own default, 8083, is Connect's.
	SQLGateway int `json:"sqlGateway"`
}

// DefaultPorts are the ports `make cluster-up` uses: the components' usual
// ones, and 8084 for the SQL Gateway (as in compose.yaml).
func DefaultPorts() Ports {
	return Ports{Kafka: 9092, KafkaController: 9093, KafkaSASL: 9094, Connect: 8083, FlinkREST: 8081, FlinkRPC: 6123, FlinkBlob: 6124, SQLGateway: 8084}
}

// named lists the ports with what uses them, in a fixed order.
func (p *Ports) named() []struct {
	name string
	port *int
} {
	return []struct {
		name string
		port *int
	}{
		{"Kafka", &p.Kafka}, {"Kafka controller", &p.KafkaController}, {"Kafka SASL_SSL", &p.KafkaSASL},
		{"Kafka Connect", &p.Connect},
		{"Flink REST", &p.FlinkREST}, {"Flink RPC", &p.FlinkRPC}, {"Flink blob server", &p.FlinkBlob},
		{"Flink SQL Gateway", &p.SQLGateway},
	}
}

// Config says where and how to run the cluster.
type Config struct {
	// Dir holds the cluster (see the package comment). Required. Up on a Dir
	// whose cluster runs and answers returns that cluster.
	Dir string
	// JarDir, when set, holds lib/ and plugins/ instead of Dir, so that
	// several clusters share one copy of the jars (about 240 MB); the tests
	// use SharedJarDir. Resolution holds a file lock there, so concurrent
	// Ups may share it.
	JarDir string
	// Ports to listen on. A zero field takes its value from DefaultPorts, or
	// a free port when FreePorts is set. A cluster that is already running
	// keeps its ports.
	Ports Ports
	// FreePorts makes zero ports pick free ones (tests) instead of the
	// defaults.
	FreePorts bool
	// Java is the java binary (17 or later: Kafka 4 needs it). Empty:
	// $JAVA_HOME/bin/java when JAVA_HOME is set, else java on PATH.
	Java string
	// Maven is the mvn binary that resolves the jars. Empty: mvn on PATH.
	Maven string
	// Progress receives a line per step (jars resolved, component ready),
	// one Write at a time. Nil discards them.
	Progress io.Writer
	// StartTimeout bounds starting the JVMs and waiting until every one
	// answers. Default 5 minutes. Jar resolution is bounded by the context
	// only: a cold Maven cache downloads about 240 MB.
	StartTimeout time.Duration
	// FastStartup runs the JVMs with the C1 compiler only
	// (-XX:TieredStopAtLevel=1): on a 2-core machine the cluster answers
	// about a third sooner (10-13 s become 7-10 s), and hot code runs slower
	// afterwards. Tests set it; leave it off to measure throughput.
	FastStartup bool
	// DieWithParent has the kernel kill every JVM (SIGKILL) when the process
	// that called Up exits, so a test binary that crashes leaves nothing
	// running. (Linux delivers it when the thread that started the JVM ends;
	// Go ends threads only when a goroutine exits while locked to one, so do
	// not call Up from such a goroutine.) Leave it off for a cluster that
	// must outlive its starter, as `make cluster-up`'s does.
	DieWithParent bool
}

func (c *Config) setDefaults() error {
	if c.StartTimeout == 0 {
		c.StartTimeout = 5 * time.Minute
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	c.Progress = &lockedWriter{w: c.Progress}
	if c.Java == "" {
		if home := os.Getenv("JAVA_HOME"); home != "" {
			c.Java = filepath.Join(home, "bin", "java")
		} else {
			c.Java = "java"
		}
	}
	if c.Maven == "" {
		c.Maven = "mvn"
	}
	var err error
	if c.Dir, err = filepath.Abs(c.Dir); err != nil {
		return fmt.Errorf("localcluster: directory %q: %w", c.Dir, err)
	}
	if c.JarDir == "" {
		c.JarDir = c.Dir
	}
	if c.JarDir, err = filepath.Abs(c.JarDir); err != nil {
		return fmt.Errorf("localcluster: jar directory %q: %w", c.JarDir, err)
	}
	return nil
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("localcluster: Dir is required")
	}
	seen := map[int]string{}
	for _, p := range c.Ports.named() {
		if *p.port < 0 || *p.port > 65535 {
			return fmt.Errorf("localcluster: %s port %d is out of range", p.name, *p.port)
		}
		if *p.port == 0 {
			continue
		}
		if other, ok := seen[*p.port]; ok {
			return fmt.Errorf("localcluster: %s and %s both use port %d", other, p.name, *p.port)
		}
		seen[*p.port] = p.name
	}
	if c.StartTimeout < 0 {
		return fmt.Errorf("localcluster: StartTimeout %s is negative", c.StartTimeout)
	}
	return nil
}

// Cluster is a running cluster: one that Up started or found running, or
// one that an env file describes (FromEnvFile).
type Cluster struct {
	dir   string // empty for a cluster read from an env file
	ports Ports
	vars  envVars
}

// envVars are the values of the env file.
type envVars struct {
	KafkaBrokers  string
	ConnectURL    string
	SQLGatewayURL string
	FlinkRESTURL  string
	// SecretsDir is the directory Connect's "dir" config provider reads
	// (CDCQ_CONNECT_SECRETS_DIR); empty for an env file that does not set it.
	SecretsDir string
	// ConnectAuth is the user of Connect's REST API
	// (CDCQ_CONNECT_USERNAME, CDCQ_CONNECT_PASSWORD); zero for none.
	ConnectAuth credential
	// KafkaSASLBrokers is the bootstrap list of the broker's SASL_SSL
	// listener, KafkaSASL its user and KafkaSASLCAFile the PEM file of the
	// CA that signed its certificate (CDCQ_TEST_KAFKA_SASL_*); empty for
	// an env file that does not set them.
	KafkaSASLBrokers string
	KafkaSASL        credential
	KafkaSASLCAFile  string
}

func newCluster(dir string, p Ports, auth, sasl credential) *Cluster {
	c := &Cluster{dir: dir, ports: p, vars: envVars{
		KafkaBrokers:  fmt.Sprintf("127.0.0.1:%d", p.Kafka),
		ConnectURL:    fmt.Sprintf("http://127.0.0.1:%d", p.Connect),
		SQLGatewayURL: fmt.Sprintf("http://127.0.0.1:%d", p.SQLGateway),
		FlinkRESTURL:  fmt.Sprintf("http://127.0.0.1:%d", p.FlinkREST),
		ConnectAuth:   auth,
	}}
	if dir != "" {
		c.vars.SecretsDir = layout{dir: dir}.secrets()
	}
	if sasl.User != "" {
		c.vars.KafkaSASLBrokers = fmt.Sprintf("127.0.0.1:%d", p.KafkaSASL)
		c.vars.KafkaSASL = sasl
		c.vars.KafkaSASLCAFile = layout{dir: dir}.tlsCA()
	}
	return c
}

// Dir is the cluster's directory; empty for a cluster read from an env file.
func (c *Cluster) Dir() string { return c.dir }

// Ports are the cluster's ports; zero for a cluster read from an env file.
func (c *Cluster) Ports() Ports { return c.ports }

// KafkaBrokers is the bootstrap list, host:port (CDCQ_KAFKA_BROKERS).
func (c *Cluster) KafkaBrokers() string { return c.vars.KafkaBrokers }

// ConnectURL is Kafka Connect's REST URL (CDCQ_CONNECT_URL).
func (c *Cluster) ConnectURL() string { return c.vars.ConnectURL }

// SQLGatewayURL is the Flink SQL Gateway's REST URL (CDCQ_FLINK_SQL_GATEWAY_URL).
func (c *Cluster) SQLGatewayURL() string { return c.vars.SQLGatewayURL }

// FlinkRESTURL is the JobManager's REST URL (CDCQ_FLINK_REST_URL).
func (c *Cluster) FlinkRESTURL() string { return c.vars.FlinkRESTURL }

// ConnectSecretsDir is the directory whose files Kafka Connect's "dir"
// config provider reads (CDCQ_CONNECT_SECRETS_DIR); empty for an env file
// that does not set it.
func (c *Cluster) ConnectSecretsDir() string { return c.vars.SecretsDir }

// ConnectUsername and ConnectPassword are the basic-authentication user of
// Connect's REST API (CDCQ_CONNECT_USERNAME, CDCQ_CONNECT_PASSWORD); empty
// when it asks for none.
func (c *Cluster) ConnectUsername() string { return c.vars.ConnectAuth.User }
func (c *Cluster) ConnectPassword() string { return c.vars.ConnectAuth.Password }

// ConnectAuthorization is the Authorization header of requests to Connect's
// REST API, as net/http's Request.SetBasicAuth sets it; empty when it asks
// for none.
func (c *Cluster) ConnectAuthorization() string {
	a := c.vars.ConnectAuth
	if a.User == "" {
		return ""
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(a.User+":"+a.Password))
}

// KafkaSASLBrokers is the bootstrap list of the broker's SASL_SSL
// listener, which takes SCRAM-SHA-256 over TLS only
// (CDCQ_TEST_KAFKA_SASL_BROKERS); empty when the cluster has none.
func (c *Cluster) KafkaSASLBrokers() string { return c.vars.KafkaSASLBrokers }

// KafkaSASLUsername and KafkaSASLPassword are the SCRAM-SHA-256 user of
// the SASL_SSL listener (CDCQ_TEST_KAFKA_SASL_USERNAME,
// CDCQ_TEST_KAFKA_SASL_PASSWORD).
func (c *Cluster) KafkaSASLUsername() string { return c.vars.KafkaSASL.User }
func (c *Cluster) KafkaSASLPassword() string { return c.vars.KafkaSASL.Password }

// KafkaSASLCAFile is the PEM file of the CA that signed the SASL_SSL
// listener's certificate (CDCQ_TEST_KAFKA_SASL_CA_FILE).
func (c *Cluster) KafkaSASLCAFile() string { return c.vars.KafkaSASLCAFile }

// LogFile is the path of a component's log (Kafka, Connect, JobManager,
// TaskManager, SQLGateway); empty for a cluster read from an env file.
func (c *Cluster) LogFile(component string) string {
	if c.dir == "" {
		return ""
	}
	return layout{dir: c.dir}.log(component)
}

// Env is the cluster's address as shell lines, the content of <Dir>/env:
//
//	export CDCQ_KAFKA_BROKERS=127.0.0.1:9092
//	export CDCQ_CONNECT_URL=http://127.0.0.1:8083
//	export CDCQ_FLINK_SQL_GATEWAY_URL=http://127.0.0.1:8084
//	export CDCQ_FLINK_REST_URL=http://127.0.0.1:8081
//	export CDCQ_CONNECT_SECRETS_DIR=<Dir>/secrets
//	export CDCQ_CONNECT_USERNAME=cdcq
//	export CDCQ_CONNECT_PASSWORD=<drawn at start>
//	export CDCQ_TEST_KAFKA_SASL_BROKERS=127.0.0.1:9094
//	export CDCQ_TEST_KAFKA_SASL_USERNAME=cdcq-test
//	export CDCQ_TEST_KAFKA_SASL_PASSWORD=<drawn at start>
//	export CDCQ_TEST_KAFKA_SASL_CA_FILE=<Dir>/tls/ca.pem
//
// The SASL_SSL listener's variables are not cdcq's own (CDCQ_KAFKA_*), so
// that a shell that sources the file still runs cdcq on the PLAINTEXT
// listener; tests read them.
func (c *Cluster) Env() string {
	var b strings.Builder
	for _, kv := range c.EnvVars() {
		b.WriteString("export " + kv + "\n")
	}
	return b.String()
}

// envVar is a variable of the env file and the field that holds its value.
type envVar struct {
	name  string
	field *string
	// required: FromEnvFile fails without it.
	required bool
	// with, when set, is the field without which the variable is left
	// out of the env file (the user of a credential).
	with *string
}

// table lists the env file's variables, in its order; EnvVars writes them
// and FromEnvFile reads them.
func (v *envVars) table() []envVar {
	return []envVar{
		{name: "CDCQ_KAFKA_BROKERS", field: &v.KafkaBrokers, required: true},
		{name: "CDCQ_CONNECT_URL", field: &v.ConnectURL, required: true},
		{name: "CDCQ_FLINK_SQL_GATEWAY_URL", field: &v.SQLGatewayURL, required: true},
		{name: "CDCQ_FLINK_REST_URL", field: &v.FlinkRESTURL, required: true},
		{name: "CDCQ_CONNECT_SECRETS_DIR", field: &v.SecretsDir},
		{name: "CDCQ_CONNECT_USERNAME", field: &v.ConnectAuth.User, with: &v.ConnectAuth.User},
		{name: "CDCQ_CONNECT_PASSWORD", field: &v.ConnectAuth.Password, with: &v.ConnectAuth.User},
		{name: "CDCQ_TEST_KAFKA_SASL_BROKERS", field: &v.KafkaSASLBrokers, with: &v.KafkaSASL.User},
		{name: "CDCQ_TEST_KAFKA_SASL_USERNAME", field: &v.KafkaSASL.User, with: &v.KafkaSASL.User},
		{name: "CDCQ_TEST_KAFKA_SASL_PASSWORD", field: &v.KafkaSASL.Password, with: &v.KafkaSASL.User},
		{name: "CDCQ_TEST_KAFKA_SASL_CA_FILE", field: &v.KafkaSASLCAFile, with: &v.KafkaSASL.User},
	}
}

// EnvVars are the same variables as KEY=value pairs, as os/exec's Cmd.Env
// takes them.
func (c *Cluster) EnvVars() []string {
	var vars []string
	for _, e := range c.vars.table() {
		if e.with == nil || *e.with != "" {
			vars = append(vars, e.name+"="+*e.field)
		}
	}
	return vars
}

// FromEnvFile describes the cluster that an env file (as Up writes it, with
// or without "export ") points at. It does not check that the cluster
// answers: Check does.
func FromEnvFile(path string) (*Cluster, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("localcluster: read env file: %w", err)
	}
	c := &Cluster{}
	fields := map[string]*string{}
	table := c.vars.table()
	for _, e := range table {
		fields[e.name] = e.field
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			return nil, fmt.Errorf("localcluster: env file %s: line %q is not KEY=value", path, line)
		}
		if f := fields[strings.TrimSpace(k)]; f != nil {
			*f = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	for _, e := range table {
		if e.required && *e.field == "" {
			return nil, fmt.Errorf("localcluster: env file %s does not set %s", path, e.name)
		}
	}
	return c, nil
}

// Check asks every component once whether it is ready: Kafka answers a
// metadata request with a controller (on the SASL_SSL listener too, with
// its user, when the cluster has one), Connect lists the Debezium PostgreSQL
// connector, the JobManager has a TaskManager, the SQL Gateway answers.
func (c *Cluster) Check(ctx context.Context) error {
	v := c.vars
	var sasl kafkasec.Security
	if v.KafkaSASLBrokers != "" {
		var err error
		if sasl, err = kafkaSASLSecurity(v.KafkaSASLCAFile, v.KafkaSASL); err != nil {
			return err
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return kafkaReady(ctx, v.KafkaBrokers) })
	if v.KafkaSASLBrokers != "" {
		g.Go(func() error { return kafkaSASLReady(ctx, v.KafkaSASLBrokers, sasl) })
	}
	g.Go(func() error { return connectReady(ctx, c.vars.ConnectURL, c.vars.ConnectAuth) })
	g.Go(func() error { return flinkReady(ctx, c.vars.FlinkRESTURL, false) })
	g.Go(func() error { return gatewayReady(ctx, c.vars.SQLGatewayURL) })
	return g.Wait()
}

// Down stops the cluster (see the package function Down).
func (c *Cluster) Down() error {
	if c.dir == "" {
		return errors.New("localcluster: a cluster read from an env file is not stopped from here")
	}
	return Down(c.dir)
}

// Up starts the cluster in cfg.Dir and returns when every component answers:
// Kafka and the Flink JVMs at once, Connect when Kafka answers, the SQL
// Gateway when the JobManager answers. If the cluster already runs and
// answers, Up returns it; components left over from a cluster that is only
// partly running are stopped first. A JVM that exits during start-up fails Up
// at once with the tail of its log; a failed Up stops what it started.
// Up writes <Dir>/env (Cluster.Env).
func Up(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	var err error
	l := layout{dir: cfg.Dir, jarDir: cfg.JarDir}
	if err := l.mkdirs(); err != nil {
		return nil, err
	}
	// Down must find the JVMs by the same path, however it is spelled.
	if l.dir, err = filepath.EvalSymlinks(l.dir); err != nil {
		return nil, fmt.Errorf("localcluster: directory %s: %w", cfg.Dir, err)
	}
	unlock, err := lockFile(ctx, filepath.Join(l.dir, "run", "lock"))
	if err != nil {
		return nil, fmt.Errorf("localcluster: lock %s: %w", l.dir, err)
	}
	defer unlock()

	if c, err := running(ctx, l, cfg); c != nil || err != nil {
		if c != nil {
			fmt.Fprintf(cfg.Progress, "cluster in %s is already running\n", l.dir)
		}
		return c, err
	}
	ports, err := choosePorts(cfg.Ports, cfg.FreePorts)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := resolveJars(ctx, l, cfg); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Progress, "jars ready in %s (%.1fs)\n", l.jarDir, time.Since(t0).Seconds())
	auth, err := newCredential(connectRESTUser, "Connect REST")
	if err != nil {
		return nil, err
	}
	sasl, err := newCredential(kafkaSASLUser, "Kafka SASL")
	if err != nil {
		return nil, err
	}
	if err := ensureTLS(l); err != nil {
		return nil, err
	}
	if err := writeConfig(l, ports, auth); err != nil {
		return nil, err
	}
	s := &starter{cfg: cfg, l: l, ports: ports, auth: auth, sasl: sasl}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	c := newCluster(l.dir, ports, auth, sasl)
	if err := writeState(l, c); err != nil {
		_ = Down(l.dir)
		return nil, err
	}
	fmt.Fprintf(cfg.Progress, "cluster ready in %.1fs\n", time.Since(t0).Seconds())
	return c, nil
}

// running returns the cluster in l if every component runs and answers. It
// stops the survivors of a cluster that only partly runs, and removes pid
// files of processes that are gone.
func running(ctx context.Context, l layout, cfg Config) (*Cluster, error) {
	alive := 0
	for _, name := range components {
		if pid, ok := l.runningPID(name); ok && pid > 0 {
			alive++
		}
	}
	if alive == 0 {
		return nil, nil
	}
	var st state
	b, err := os.ReadFile(l.state())
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if alive == len(components) && err == nil && st.KafkaSASL.User == "" {
		// Started by a version without the SASL_SSL listener.
		fmt.Fprintf(cfg.Progress, "cluster in %s has no Kafka SASL_SSL listener; restarting it\n", l.dir)
	} else if alive == len(components) && err == nil {
		c := newCluster(l.dir, st.Ports, st.ConnectAuth, st.KafkaSASL)
		// A running cluster may be busy for a moment (Connect rebalancing).
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := c.Check(cctx)
		for err != nil && cctx.Err() == nil {
			time.Sleep(500 * time.Millisecond)
			err = c.Check(cctx)
		}
		cancel()
		if err == nil {
			if err := conflictingPorts(cfg.Ports, st.Ports); err != nil {
				return nil, err
			}
			// Rewrite env in case someone removed it.
			return c, writeState(l, c)
		}
		fmt.Fprintf(cfg.Progress, "cluster in %s runs but does not answer (%v); restarting it\n", l.dir, err)
	} else {
		fmt.Fprintf(cfg.Progress, "cluster in %s runs only partly; restarting it\n", l.dir)
	}
	if err := Down(l.dir); err != nil {
		return nil, err
	}
	return nil, nil
}

// conflictingPorts reports ports asked for explicitly that the running
// cluster does not use.
func conflictingPorts(want, have Ports) error {
	h := have.named()
	for i, p := range want.named() {
		if *p.port != 0 && *p.port != *h[i].port {
			return fmt.Errorf("localcluster: the running cluster's %s port is %d, not %d; run Down first to change ports", p.name, *h[i].port, *p.port)
		}
	}
	return nil
}

// state is what run/cluster.json records about a running cluster.
type state struct {
	Ports Ports `json:"ports"`
	// ConnectAuth is the user of Connect's REST API.
	ConnectAuth credential `json:"connectAuth,omitzero"`
	// KafkaSASL is the user of the broker's SASL_SSL listener.
	KafkaSASL credential `json:"kafkaSasl,omitzero"`
}

// writeState writes run/cluster.json and env, both its owner's only: they
// hold Connect's REST password and the Kafka SASL password.
func writeState(l layout, c *Cluster) error {
	b, err := json.MarshalIndent(state{Ports: c.ports, ConnectAuth: c.vars.ConnectAuth, KafkaSASL: c.vars.KafkaSASL}, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(l.state(), b, 0o600); err != nil {
		return fmt.Errorf("localcluster: write cluster state: %w", err)
	}
	if err := atomicfile.Write(l.env(), []byte(c.Env()), 0o600); err != nil {
		return fmt.Errorf("localcluster: write env file: %w", err)
	}
	return nil
}

// choosePorts fills zero ports with defaults or free ports and checks that
// every port is free, so that a port in use fails with its name rather than
// as a JVM's BindException.
func choosePorts(want Ports, free bool) (Ports, error) {
	p := want
	def := DefaultPorts()
	d := def.named()
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			_ = ln.Close()
		}
	}()
	for i, np := range p.named() {
		if *np.port != 0 {
			continue
		}
		if !free {
			*np.port = *d[i].port
			continue
		}
		// Hold each port until all are chosen, so none is chosen twice.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return Ports{}, fmt.Errorf("localcluster: find a free port: %w", err)
		}
		held = append(held, ln)
		*np.port = ln.Addr().(*net.TCPAddr).Port
	}
	for _, ln := range held {
		_ = ln.Close()
	}
	held = nil
	for _, np := range p.named() {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*np.port)))
		if err != nil {
			return Ports{}, fmt.Errorf("localcluster: %s port %d is in use on 127.0.0.1 (another cluster, or `cdcq dev`'s broker?): %w", np.name, *np.port, err)
		}
		_ = ln.Close()
	}
	return p, nil
}

// layout names the paths of a cluster directory.
type layout struct {
	dir    string
	jarDir string
}

func (l layout) lib(component string) string { return filepath.Join(l.jarDir, "lib", component) }
func (l layout) plugins() string             { return filepath.Join(l.jarDir, "plugins") }
func (l layout) conf(parts ...string) string {
	return filepath.Join(append([]string{l.dir, "conf"}, parts...)...)
}
func (l layout) kafkaData() string           { return filepath.Join(l.dir, "data", "kafka") }
func (l layout) tmp() string                 { return filepath.Join(l.dir, "tmp") }
func (l layout) log(component string) string { return filepath.Join(l.dir, "logs", component+".log") }
func (l layout) pid(component string) string { return filepath.Join(l.dir, "run", component+".pid") }
func (l layout) state() string               { return filepath.Join(l.dir, "run", "cluster.json") }
func (l layout) env() string                 { return filepath.Join(l.dir, "env") }
func (l layout) secrets() string             { return filepath.Join(l.dir, "secrets") }
func (l layout) tlsDir() string              { return filepath.Join(l.dir, "tls") }
func (l layout) tlsCA() string               { return filepath.Join(l.tlsDir(), "ca.pem") }
func (l layout) tlsServer() string           { return filepath.Join(l.tlsDir(), "server.pem") }

func (l layout) mkdirs() error {
	for _, d := range []string{
		l.dir, filepath.Join(l.jarDir, "lib"), l.plugins(), l.conf("kafka"), l.conf("connect"), l.conf("flink"),
		l.kafkaData(), filepath.Join(l.dir, "logs"), filepath.Join(l.dir, "run"), l.tmp(),
	} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("localcluster: create %s: %w", d, err)
		}
	}
	// Only its owner (cdcq's tests, and the JVMs) may list and read the
	// secrets; Chmod also tightens a directory created before.
	if err := os.MkdirAll(l.secrets(), 0o700); err != nil {
		return fmt.Errorf("localcluster: create %s: %w", l.secrets(), err)
	}
	if err := os.Chmod(l.secrets(), 0o700); err != nil {
		return fmt.Errorf("localcluster: restrict %s: %w", l.secrets(), err)
	}
	return nil
}

// lockedWriter serialises the progress lines of concurrent start-up steps.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// lookPath resolves a binary for a clear error before anything starts.
func lookPath(what, bin string) (string, error) {
	p, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("localcluster: %s binary %q not found (install openjdk-17-jdk-headless and maven, or run `make deps-system`): %w", what, bin, err)
	}
	return p, nil
}

func (c *Cluster) dirLayout() layout { return layout{dir: c.dir} }
