// Package clustertest gives tests a real local cluster (internal/localcluster:
// Kafka, Kafka Connect with the Debezium PostgreSQL connector, Flink with the
// SQL Gateway): one per test binary, started on first use in a temporary
// directory on free ports, and stopped by Main.
//
// With CDCQ_TEST_CLUSTER_ENV set to an env file (as `make cluster-up` writes
// .cluster/env), the tests use that running cluster instead of starting one,
// which saves the start-up (about 15 s) while iterating. Tests that use it
// must leave it reusable: unique topic, connector and job names per run.
//
// A cluster that cannot start fails the test; it never skips it.
package clustertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/localcluster"
	"github.com/cdcq/cdcq/internal/pgtest"
)

// EnvFileVariable names the env file of an already running cluster to use
// instead of starting one.
const EnvFileVariable = "CDCQ_TEST_CLUSTER_ENV"

var (
	// fullJIT starts the cluster with the JVMs' normal JIT (see
	// ForBenchmarks) instead of the start-up-friendly C1-only one.
	fullJIT   atomic.Bool
	once      sync.Once
	shared    *localcluster.Cluster
	sharedErr error
	// dir is the temporary directory of a cluster this binary started;
	// empty when it uses one from an env file.
	dir string
)

// ForBenchmarks returns Shared's cluster, started with the JVMs' normal JIT
// when this call starts it: the C1-only JIT that tests use starts faster
// but runs slower, which a benchmark must not measure. A cluster from
// CDCQ_TEST_CLUSTER_ENV is used as it is.
func ForBenchmarks(b *testing.B) *localcluster.Cluster {
	b.Helper()
	fullJIT.Store(true)
	return Shared(b)
}

// Shared returns the test binary's cluster, starting it on first use (the
// first call waits about 15 s, longer when the jars are not resolved yet).
// Call Main from TestMain so that it is stopped when the tests end.
func Shared(t testing.TB) *localcluster.Cluster {
	t.Helper()
	once.Do(start)
	if sharedErr != nil {
		t.Fatalf("clustertest: %v", sharedErr)
	}
	return shared
}

func start() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if path := os.Getenv(EnvFileVariable); path != "" {
		c, err := localcluster.FromEnvFile(path)
		if err != nil {
			sharedErr = fmt.Errorf("%s=%s: %w", EnvFileVariable, path, err)
			return
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := c.Check(cctx); err != nil {
			sharedErr = fmt.Errorf("the cluster in %s=%s does not answer (is it up? `make cluster-up`): %w", EnvFileVariable, path, err)
			return
		}
		shared = c
		return
	}
	jars, err := localcluster.SharedJarDir()
	if err != nil {
		sharedErr = err
		return
	}
	removeAbandoned()
	if dir, err = os.MkdirTemp("", dirPattern); err != nil {
		sharedErr = fmt.Errorf("create cluster directory: %w", err)
		return
	}
	shared, sharedErr = localcluster.Up(ctx, localcluster.Config{
		Dir:           dir,
		JarDir:        jars,
		FreePorts:     true,
		FastStartup:   !fullJIT.Load(),
		DieWithParent: true,
		Progress:      prefixWriter{},
	})
	if sharedErr != nil {
		sharedErr = fmt.Errorf("start local cluster in %s (logs under logs/): %w", dir, sharedErr)
	}
}

const dirPattern = "cdcq-clustertest-"

// removeAbandoned removes the directories of earlier test binaries' clusters
// that neither run nor are starting (a binary killed by -timeout cannot stop
// its own; its JVMs die with it). A directory younger than a minute may
// belong to a binary that has not yet begun to start its cluster.
func removeAbandoned() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPattern+"*"))
	for _, d := range dirs {
		st, err := os.Stat(d)
		if err != nil || time.Since(st.ModTime()) < time.Minute || localcluster.Running(d) {
			continue
		}
		_ = os.RemoveAll(d)
	}
}

// prefixWriter shows the start-up's progress on stderr, where `go test`
// shows it for a failing package and with -v.
type prefixWriter struct{}

func (prefixWriter) Write(p []byte) (int, error) {
	_, err := fmt.Fprintf(os.Stderr, "clustertest: %s", p)
	return len(p), err
}

// Stop stops the cluster this binary started, if any, and removes its
// directory; a cluster from an env file is left running. Main calls it.
func Stop() {
	if dir == "" || sharedErr != nil { // a failed start keeps its logs
		return
	}
	if err := localcluster.Down(dir); err != nil {
		fmt.Fprintf(os.Stderr, "clustertest: stop cluster in %s: %v\n", dir, err)
		return // keep its logs
	}
	_ = os.RemoveAll(dir)
}

// Main runs the tests, then stops the shared cluster and pgtest's shared
// PostgreSQL server, and exits. Use it instead of pgtest.Main:
//
//	func TestMain(m *testing.M) { clustertest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	pgtest.Stop()
	os.Exit(code)
}
