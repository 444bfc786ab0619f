package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/sourcepolicy"
)

// RunDev runs the whole system in one process until ctx ends: the API
// (without authentication unless CDCQ_API_TOKENS is set), a worker, the
// projector, the status poller, and, unless configured otherwise, an
// in-process Kafka broker and a private Postgres server under the data
// directory. It prints where everything listens to out, without passwords.
// Without API tokens it listens on loopback addresses only.
func RunDev(ctx context.Context, cfg config.Config, out io.Writer, logger *slog.Logger) error {
	if err := checkDevListen(cfg.HTTPAddr, len(cfg.APITokens) > 0); err != nil {
		return err
	}
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
	cfg.SourceAllow = slices.Concat(cfg.SourceAllow, []string{sourcepolicy.WordLoopback, sourcepolicy.WordJobState})
	deps, err := Engines(cfg, inf, logger)
	if err != nil {
		ln.Close()
		return err
	}
	printDev(out, cfg, inf, ln.Addr().String(), deps)
	g, gctx := errgroup.WithContext(ctx)
	opts := APIOptions{Listener: ln, RequireAuth: len(cfg.APITokens) > 0, Tokens: cfg.APITokens,
		WriteRate: cfg.APIWriteRate, WriteBurst: cfg.APIWriteBurst}
	g.Go(func() error { return RunAPI(gctx, inf, opts, logger) })
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
	if inf.KafkaSecurity.Secured() {
		kafka += " (" + inf.KafkaSecurity.String() + ")"
	}
	pg := redactURL(inf.DatabaseURL)
	if inf.EmbeddedPostgres {
		pg += " (data in " + abs(filepath.Join(cfg.DataDir, "postgres")) + ")"
	}
	fmt.Fprintf(out, "cdcq dev is running\n")
	auth := " (no authentication: loopback only)"
	if len(cfg.APITokens) > 0 {
		auth = " (bearer tokens from CDCQ_API_TOKENS)"
	}
	fmt.Fprintf(out, "  API:        http://%s%s\n", reachableAddr(httpAddr), auth)
	fmt.Fprintf(out, "  Kafka:      %s\n", kafka)
	fmt.Fprintf(out, "  Job state:  %s\n", pg)
	fmt.Fprintf(out, "  Capture:    %s\n", deps.Capture.Engine())
	fmt.Fprintf(out, "  Processor:  %s\n", deps.Processor.Engine())
	if cfg.SecretKey == "" {
		fmt.Fprintf(out, "  Secret key: %s\n", abs(filepath.Join(cfg.DataDir, "secret.key")))
	}
	fmt.Fprintf(out, "Press Ctrl-C to stop.\n")
}

// checkDevListen refuses to serve the unauthenticated dev API on anything
// but loopback addresses: every address the host part names must be a
// loopback one. With tokens, any address will do.
func checkDevListen(addr string, tokens bool) error {
	if tokens {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("CDCQ_HTTP_ADDR %q is not host:port: %w", addr, err)
	}
	refuse := fmt.Errorf("CDCQ_HTTP_ADDR %s is not a loopback address, and cdcq dev serves its API without authentication: "+
		"set CDCQ_API_TOKENS (comma-separated bearer tokens) to listen there, or listen on 127.0.0.1", addr)
	if host == "" {
		return refuse // every interface
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return refuse
		}
		return nil
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return fmt.Errorf("CDCQ_HTTP_ADDR %s: host does not resolve", addr)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return refuse
		}
	}
	return nil
}

// redactURL replaces the password of a URL-form connection string by ***;
// a string that is not a URL is not shown at all.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return "(set by CDCQ_DATABASE_URL)"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxx")
		return strings.Replace(u.String(), ":xxx@", ":***@", 1)
	}
	return u.String()
}

// reachableAddr is an address a client on this machine can use for the
// listener at addr: 127.0.0.1 in place of an unspecified host (0.0.0.0 or
// ::, which a listener on all interfaces reports).
func reachableAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", port) + " (listening on every interface)"
	}
	return addr
}
