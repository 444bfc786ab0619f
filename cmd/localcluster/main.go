// Command localcluster starts and stops a real single-node cluster on this
// machine without Docker: Kafka (KRaft), Kafka Connect with the Debezium
// PostgreSQL connector, and Flink (JobManager, TaskManager, SQL Gateway),
// from pinned Maven Central jars (internal/localcluster).
//
//	localcluster up   [-dir .cluster]   start (or find running), write <dir>/env, print it
//	localcluster down [-dir .cluster]   stop
//	localcluster env  [-dir .cluster]   print <dir>/env
//
// `make cluster-up`, `make cluster-down` and `make run-cluster` call it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/cdcq/cdcq/internal/localcluster"
)

const usage = `usage: localcluster <up|down|env> [-dir .cluster]

  up     start Kafka (127.0.0.1:9092), Kafka Connect with Debezium (:8083),
         Flink (REST :8081) and its SQL Gateway (:8084); write <dir>/env and
         print it; return while the cluster runs
  down   stop the cluster (data and logs stay in <dir>)
  env    print <dir>/env: eval it, or "set -a; . <dir>/env; set +a"
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) < 1 {
		fmt.Fprint(stderr, usage)
		return errors.New("expected a command")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".cluster", "the cluster's directory")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	switch args[0] {
	case "up":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		c, err := localcluster.Up(ctx, localcluster.Config{Dir: *dir, Progress: stderr})
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "logs in %s; stop with `make cluster-down`\n", filepath.Join(c.Dir(), "logs"))
		fmt.Fprint(stdout, c.Env())
		return nil
	case "down":
		return localcluster.Down(*dir)
	case "env":
		b, err := os.ReadFile(filepath.Join(*dir, "env"))
		if err != nil {
			return fmt.Errorf("read env file (is the cluster up?): %w", err)
		}
		_, err = stdout.Write(b)
		return err
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
