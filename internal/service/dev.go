package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/sourcepolicy"
)

// RunDev runs the whole system in one process until ctx ends: the API
// (without authentication), a worker, the projector, the status poller,
// and, unless configured otherwise, an in-process Kafka broker and a private
// Postgres server under the data directory. It prints where everything
// listens to out.
func RunDev(ctx context.Context, cfg config.Config, out io.Writer, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (set CDCQ_HTTP_ADDR): %w", cfg.HTTPAddr, err)
	}
	inf, err := Prepare(ctx, cfg, true, logger)
	if err != nil {
		ln.Close()
		return err
	}
	defer inf.Close()
	// Dev mode's sources are local: usually databases on the dev server,
	// which is also the job-state database. CDCQ_SOURCE_DENY still wins.
	cfg.SourceAllow = append(cfg.SourceAllow, sourcepolicy.WordLoopback, sourcepolicy.WordJobState)
	deps, err := Engines(cfg, inf, logger)
	if err != nil {
		ln.Close()
		return err
	}
	printDev(out, cfg, inf, ln.Addr().String(), deps)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return RunAPI(gctx, inf, APIOptions{Listener: ln}, logger) })
	g.Go(func() error { return RunWorker(gctx, inf, deps, cfg.StatusInterval, logger) })
	return g.Wait()
}

func printDev(out io.Writer, cfg config.Config, inf *Infra, httpAddr string, deps WorkerDeps) {
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	kafka := strings.Join(inf.Brokers, ",")
	if inf.EmbeddedKafka {
		kafka += " (in-process broker, log in " + abs(filepath.Join(cfg.DataDir, "kafka")) + ")"
	}
	pg := inf.DatabaseURL
	if inf.EmbeddedPostgres {
		pg += " (data in " + abs(filepath.Join(cfg.DataDir, "postgres")) + ")"
	}
	fmt.Fprintf(out, "cdcq dev is running\n")
	fmt.Fprintf(out, "  API:        http://%s\n", httpAddr)
	fmt.Fprintf(out, "  Kafka:      %s\n", kafka)
	fmt.Fprintf(out, "  Job state:  %s\n", pg)
	fmt.Fprintf(out, "  Capture:    %s\n", deps.Capture.Engine())
	fmt.Fprintf(out, "  Processor:  %s\n", deps.Processor.Engine())
	if cfg.SecretKey == "" {
		fmt.Fprintf(out, "  Secret key: %s\n", abs(filepath.Join(cfg.DataDir, "secret.key")))
	}
	fmt.Fprintf(out, "Press Ctrl-C to stop.\n")
}
