// Command cdcq turns a customer's database into a live change stream and
// keeps aggregate SQL queries over it up to date.
//
//	cdcq dev       run everything in one process (API, worker, projector,
//	               in-process Kafka broker and Postgres when not configured)
//	cdcq api       run the HTTP API
//	cdcq worker    run a worker: commands, projector, status poller
//	cdcq migrate   apply the job-state database migrations
//	cdcq seal      read a connection string on stdin, print it sealed
//	cdcq keygen    print a new CDCQ_SECRET_KEY
//
// Configuration comes from CDCQ_* environment variables (see README.md).
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/connstr"
	"github.com/cdcq/cdcq/internal/secret"
	"github.com/cdcq/cdcq/internal/service"
	"github.com/cdcq/cdcq/migrations"
)

const usage = `usage: cdcq <command>

commands:
  dev       run the whole system in one process
  api       run the HTTP API (needs CDCQ_KAFKA_BROKERS, CDCQ_DATABASE_URL, CDCQ_SECRET_KEY, CDCQ_API_TOKENS)
  worker    run a worker (needs CDCQ_KAFKA_BROKERS, CDCQ_DATABASE_URL, CDCQ_SECRET_KEY);
            it refuses source databases on loopback, link-local and unspecified
            addresses and the job-state database's address unless
            CDCQ_SOURCE_ALLOW allows them (CDCQ_SOURCE_DENY refuses more)
  migrate   apply the job-state database migrations (needs CDCQ_DATABASE_URL)
  seal      read a connection string on stdin and print it sealed with CDCQ_SECRET_KEY
            (or, when unset, the dev key in CDCQ_DATA_DIR/secret.key)
  keygen    print a new random CDCQ_SECRET_KEY
`

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cdcq:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		fmt.Fprint(stderr, usage)
		return errors.New("expected exactly one command")
	}
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.LogLevel)
	slog.SetDefault(logger)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch args[0] {
	case "dev":
		return service.RunDev(ctx, cfg, stdout, logger)
	case "api":
		if len(cfg.APITokens) == 0 {
			return errors.New("CDCQ_API_TOKENS is required outside `cdcq dev`: a comma-separated list of bearer tokens")
		}
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listen on %s (set CDCQ_HTTP_ADDR): %w", cfg.HTTPAddr, err)
		}
		inf, err := service.Prepare(ctx, cfg, false, logger)
		if err != nil {
			ln.Close()
			return err
		}
		defer inf.Close()
		logger.Info("api listening", "addr", ln.Addr().String())
		return service.RunAPI(ctx, inf, service.APIOptions{Listener: ln, RequireAuth: true, Tokens: cfg.APITokens}, logger)
	case "worker":
		inf, err := service.Prepare(ctx, cfg, false, logger)
		if err != nil {
			return err
		}
		defer inf.Close()
		deps, err := service.Engines(cfg, inf, logger)
		if err != nil {
			return err
		}
		logger.Info("worker started", "capture", deps.Capture.Engine(), "processor", deps.Processor.Engine())
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error { return service.RunWorker(gctx, inf, deps, cfg.StatusInterval, logger) })
		return g.Wait()
	case "migrate":
		if cfg.DatabaseURL == "" {
			return errors.New("CDCQ_DATABASE_URL is required")
		}
		if err := migrations.Up(ctx, cfg.DatabaseURL); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "migrations applied")
		return nil
	case "seal":
		return seal(cfg, stdin, stdout)
	case "keygen":
		fmt.Fprintln(stdout, secret.NewKey())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// seal prints the sealed form of the connection string on stdin, for
// systems that publish commands directly.
func seal(cfg config.Config, stdin io.Reader, stdout io.Writer) error {
	var key []byte
	var err error
	if cfg.SecretKey != "" {
		key, err = secret.ParseKey(cfg.SecretKey)
	} else {
		path := filepath.Join(cfg.DataDir, "secret.key")
		if _, statErr := os.Stat(path); statErr != nil {
			return fmt.Errorf("set CDCQ_SECRET_KEY, or run `cdcq dev` once so that %s exists", path)
		}
		key, err = secret.LoadOrCreateKeyFile(path)
	}
	if err != nil {
		return err
	}
	s, err := secret.NewSealer(key)
	if err != nil {
		return err
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read stdin: %w", err)
	}
	c, err := connstr.Parse(strings.TrimSpace(line))
	if err != nil {
		return fmt.Errorf("connection string on stdin %w", err)
	}
	fmt.Fprintln(stdout, s.Seal(c.String()))
	return nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
