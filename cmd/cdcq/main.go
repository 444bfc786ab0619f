// Command cdcq turns a customer's database into a live change stream and
// keeps aggregate SQL queries over it up to date.
//
//	cdcq dev       run everything in one process (API, worker, projector,
//	               in-process Kafka broker and Postgres when not configured)
//	cdcq api       run the HTTP API
//	cdcq worker    run a worker: commands, projector, status poller
//	cdcq migrate   apply the job-state database migrations
//	cdcq seal ENV  read a connection string on stdin, print it sealed for ENV
//	cdcq reseal    rewrite stored connection strings under CDCQ_SECRET_KEY
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

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcq/cdcq/internal/bindings"
	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/connstr"
	"github.com/cdcq/cdcq/internal/names"
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
  seal ENV  read a connection string on stdin and print it sealed with CDCQ_SECRET_KEY
            (or, when unset, the dev key in CDCQ_DATA_DIR/secret.key) for environment ENV
  reseal    rewrite every stored connection string under CDCQ_SECRET_KEY; older keys must
            be in CDCQ_SECRET_KEYS_PREVIOUS (needs CDCQ_DATABASE_URL)
  keygen    print a new random CDCQ_SECRET_KEY
`

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cdcq:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || (len(args) > 1 && args[0] != "seal") || (args[0] == "seal" && len(args) != 2) {
		fmt.Fprint(stderr, usage)
		if len(args) > 0 && args[0] == "seal" {
			return errors.New("seal needs the environmentId the connection string is for: cdcq seal ENV")
		}
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
		return service.RunAPI(ctx, inf, service.APIOptions{Listener: ln, RequireAuth: true, Tokens: cfg.APITokens,
			WriteRate: cfg.APIWriteRate, WriteBurst: cfg.APIWriteBurst}, logger)
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
		return seal(cfg, args[1], stdin, stdout)
	case "reseal":
		return reseal(ctx, cfg, stdout)
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
// environment env, for systems that publish commands directly.
func seal(cfg config.Config, env string, stdin io.Reader, stdout io.Writer) error {
	if err := names.ValidateEnvironmentID(env); err != nil {
		return fmt.Errorf("environmentId %q %w", env, err)
	}
	if cfg.SecretKey == "" {
		path := filepath.Join(cfg.DataDir, "secret.key")
		if _, statErr := os.Stat(path); statErr != nil {
			return fmt.Errorf("set CDCQ_SECRET_KEY, or run `cdcq dev` once so that %s exists", path)
		}
	}
	s, err := service.LoadSealer(cfg, true)
	if err != nil {
		return err
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read stdin: %w", err)
	}
	c, _, err := connstr.ParseDriver(strings.TrimSpace(line))
	if err != nil {
		return fmt.Errorf("connection string on stdin %w", err)
	}
	fmt.Fprintln(stdout, s.Seal(c.String(), env))
	return nil
}

// reseal rewrites the stored connection strings under the current key and
// says what it did; it fails when any value opens with none of the keys.
func reseal(ctx context.Context, cfg config.Config, stdout io.Writer) error {
	if cfg.DatabaseURL == "" {
		return errors.New("CDCQ_DATABASE_URL is required")
	}
	if cfg.SecretKey == "" {
		return errors.New("CDCQ_SECRET_KEY is required: the key to reseal under (list the old ones in CDCQ_SECRET_KEYS_PREVIOUS)")
	}
	s, err := service.LoadSealer(cfg, false)
	if err != nil {
		return err
	}
	if err := migrations.Up(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("CDCQ_DATABASE_URL: %w", err)
	}
	defer pool.Close()
	reports, err := bindings.Reseal(ctx, pool, s)
	var failed []string
	for _, r := range reports {
		fmt.Fprintf(stdout, "%s: %d resealed under key %s, %d already current, %d failed\n",
			r.Table, r.Resealed, s.CurrentKeyID(), r.Unchanged, len(r.Failed))
		for _, env := range r.Failed {
			failed = append(failed, r.Table+"/"+env)
		}
	}
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d stored connection strings open with none of the keys (add the key that sealed them to CDCQ_SECRET_KEYS_PREVIOUS): %s",
			len(failed), strings.Join(failed, ", "))
	}
	return nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
