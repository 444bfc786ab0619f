// Package pgcluster initialises and runs a private PostgreSQL server from the
// system's PostgreSQL binaries. `cdcq dev` keeps its job-state database in one,
// and tests start throwaway ones (private data directory, free port,
// wal_level=logical).
//
// PostgreSQL refuses to run as root, so when the process is root the server
// runs as the unprivileged `postgres` user that Debian's postgresql package
// creates, and the data directory is handed to that user.
//
// This package must not import other cdcq packages.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config says where and how to run the server.
type Config struct {
	// DataDir holds the cluster. It is initialised when it has no PG_VERSION
	// file and reused otherwise. Required.
	DataDir string
	// Port to listen on, on 127.0.0.1. Zero picks a free port.
	Port int
	// BinDir holds initdb, pg_ctl and postgres. Empty searches
	// /usr/lib/postgresql/*/bin (newest first) and then PATH.
	BinDir string
	// Superuser is the name of the cluster's superuser. Default "cdcq".
	Superuser string
	// Database is created on first start. Default "cdcq".
	Database string
	// Durable keeps fsync on. Tests leave it off: they do not survive
	// power loss and run several times faster without it.
	Durable bool
	// Settings are extra postgresql.conf lines written at initialisation.
	Settings map[string]string
}

func (c *Config) setDefaults() {
	if c.Superuser == "" {
		c.Superuser = "cdcq"
	}
	if c.Database == "" {
		c.Database = "cdcq"
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("pgcluster: DataDir is required")
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("pgcluster: port %d is out of range", c.Port)
	}
	return nil
}

// Cluster is a running server.
type Cluster struct {
	cfg    Config
	binDir string
	port   int
	runAs  *user.User // nil when the process is not root
}

// Start initialises the cluster if needed and starts the server. It waits
// until the server accepts connections.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: data directory %q: %w", cfg.DataDir, err)
	}
	cfg.DataDir = dataDir
	binDir, err := findBinDir(cfg.BinDir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, binDir: binDir, port: cfg.Port}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgcluster: running as root, PostgreSQL needs an unprivileged user named postgres (install the postgresql package): %w", err)
		}
		c.runAs = u
	}
	if c.port == 0 {
		if c.port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	fresh := false
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx); err != nil {
			return nil, err
		}
		fresh = true
	}
	if !fresh {
		// A server of this data directory left running by a process that
		// died (SIGKILL, say) holds the directory: stop it in an orderly way
		// and start it as this process's own.
		if err := c.Stop(ctx); err != nil {
			return nil, err
		}
	}
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	// Also when not fresh: a first start that failed after initdb (its
	// port taken, say) left a data directory without the database.
	if err := c.createDatabase(ctx); err != nil {
		_ = c.Stop(context.Background())
		return nil, err
	}
	return c, nil
}

// Port is the TCP port the server listens on.
func (c *Cluster) Port() int { return c.port }

// DataDir is the cluster's data directory.
func (c *Cluster) DataDir() string { return c.cfg.DataDir }

// URL is a connection string for the configured database.
func (c *Cluster) URL() string { return c.URLFor(c.cfg.Database) }

// URLFor is a connection string for another database on the same server.
func (c *Cluster) URLFor(database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", c.cfg.Superuser, c.port, database)
}

// Stop shuts the server down (fast mode: open transactions roll back).
func (c *Cluster) Stop(ctx context.Context) error {
	out, err := c.run(ctx, "pg_ctl", "-D", c.cfg.DataDir, "-m", "fast", "-w", "stop")
	if err != nil && !strings.Contains(string(out), "Is server running?") {
		return fmt.Errorf("pgcluster: stop: %w: %s", err, out)
	}
	return nil
}

// Restart stops and starts the server on the same port, as a crash-free
// restart of a production server would.
func (c *Cluster) Restart(ctx context.Context) error {
	if err := c.Stop(ctx); err != nil {
		return err
	}
	return c.start(ctx)
}

func (c *Cluster) initdb(ctx context.Context) error {
	if err := os.MkdirAll(c.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("pgcluster: create data directory: %w", err)
	}
	if err := c.handOver(c.cfg.DataDir); err != nil {
		return err
	}
	out, err := c.run(ctx, "initdb", "-D", c.cfg.DataDir, "-U", c.cfg.Superuser,
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions")
	if err != nil {
		return fmt.Errorf("pgcluster: initdb: %w: %s", err, out)
	}
	settings := map[string]string{
		"listen_addresses":        "'127.0.0.1'",
		"unix_socket_directories": "''",
		"wal_level":               "logical",
		"max_replication_slots":   "32",
		"max_wal_senders":         "32",
		"max_connections":         "200",
		"shared_buffers":          "64MB",
		"log_min_messages":        "warning",
	}
	if !c.cfg.Durable {
		settings["fsync"] = "off"
		settings["synchronous_commit"] = "off"
		settings["full_page_writes"] = "off"
	}
	for k, v := range c.cfg.Settings {
		settings[k] = v
	}
	keys := slices.Sorted(maps.Keys(settings))
	var conf bytes.Buffer
	conf.WriteString("\n# written by cdcq pgcluster\n")
	for _, k := range keys {
		fmt.Fprintf(&conf, "%s = %s\n", k, settings[k])
	}
	f, err := os.OpenFile(filepath.Join(c.cfg.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgcluster: open postgresql.conf: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(conf.Bytes()); err != nil {
		return fmt.Errorf("pgcluster: write postgresql.conf: %w", err)
	}
	return nil
}

func (c *Cluster) start(ctx context.Context) error {
	logFile := filepath.Join(c.cfg.DataDir, "server.log")
	out, err := c.run(ctx, "pg_ctl", "-D", c.cfg.DataDir, "-l", logFile, "-w", "-t", "60",
		"-o", "-p "+strconv.Itoa(c.port), "start")
	if err != nil {
		tail, _ := os.ReadFile(logFile)
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return fmt.Errorf("pgcluster: start on port %d: %w: %s\nserver log:\n%s", c.port, err, out, tail)
	}
	return nil
}

// createDatabase creates the configured database unless it exists.
func (c *Cluster) createDatabase(ctx context.Context) error {
	if c.cfg.Database == "postgres" {
		return nil
	}
	out, err := c.run(ctx, "createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(c.port), "-U", c.cfg.Superuser, c.cfg.Database)
	if err != nil && !bytes.Contains(out, []byte("already exists")) {
		return fmt.Errorf("pgcluster: createdb %s: %w: %s", c.cfg.Database, err, out)
	}
	return nil
}

// CreateDatabase adds a database to the running server.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	out, err := c.run(ctx, "createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(c.port), "-U", c.cfg.Superuser, name)
	if err != nil {
		return fmt.Errorf("pgcluster: createdb %s: %w: %s", name, err, out)
	}
	return nil
}

// Tool is the path of one of the server's client programs (pgbench, psql)
// in its binary directory; an error when it is not there.
func (c *Cluster) Tool(name string) (string, error) {
	path := filepath.Join(c.binDir, name)
	if _, err := os.Stat(path); err != nil {
		return "", err
	}
	return path, nil
}

// run executes one of the server binaries, as the postgres user when root.
func (c *Cluster) run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	path := filepath.Join(c.binDir, tool)
	var cmd *exec.Cmd
	if c.runAs != nil {
		all := append([]string{"--reuid=" + c.runAs.Uid, "--regid=" + c.runAs.Gid, "--init-groups", "--", path}, args...)
		cmd = exec.CommandContext(ctx, "setpriv", all...)
		cmd.Env = append(os.Environ(), "HOME="+c.runAs.HomeDir, "USER=postgres")
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	// The server must outlive a cancelled caller context only through
	// pg_ctl, which detaches it; keep the child's output for errors.
	return cmd.CombinedOutput()
}

// handOver gives the data directory to the postgres user and makes sure it
// can reach it through the parent directories.
func (c *Cluster) handOver(dir string) error {
	if c.runAs == nil {
		return nil
	}
	uid, _ := strconv.Atoi(c.runAs.Uid)
	gid, _ := strconv.Atoi(c.runAs.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("pgcluster: hand %s to postgres: %w", dir, err)
	}
	for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, st.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("pgcluster: let postgres traverse %s: %w", p, err)
			}
		}
	}
	return nil
}

// findBinDir locates the PostgreSQL server binaries.
func findBinDir(configured string) (string, error) {
	if configured != "" {
		if _, err := os.Stat(filepath.Join(configured, "pg_ctl")); err != nil {
			return "", fmt.Errorf("pgcluster: no pg_ctl in %s: %w", configured, err)
		}
		return configured, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("pgcluster: PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin and PATH); install the postgresql package")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgcluster: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
