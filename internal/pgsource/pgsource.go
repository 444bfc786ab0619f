// Package pgsource does what cdcq needs done in a customer's (source)
// PostgreSQL database outside the capture engine itself: report on a
// logical replication slot, and drop the slot and the publication a capture
// leaves behind.
//
// Connection strings carry a superuser's password: errors name the database
// only in the redacted form
// (connstr.Conn.Redacted). Failures that retrying cannot fix (wrong
// password, unknown role or database, missing privilege, an unusable
// connection string) are jobs.TerminalError; the rest (host unreachable,
// connection refused, timeouts, too many connections) are plain errors for
// the caller to retry.
//
// Every connection cdcq makes to a source database is configured by
// Client.ConnConfig: the connection string is parsed by connstr (only safe
// parameters, nothing from cdcq's environment) and every address is
// checked by the client's sourcepolicy.Policy after name resolution.
// Connection failures read as DescribeConnectError says: one reason for
// every way of not reaching a server, so that the reasons do not map the
// workers' network for a caller.
//
// This package may import internal/jobs, internal/connstr and
// internal/sourcepolicy only.
package pgsource

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdcq/cdcq/internal/connstr"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/sourcepolicy"
)

// Config tunes a Client. The zero value is usable.
type Config struct {
	// ConnectTimeout bounds connecting to the source database. Default 10s.
	ConnectTimeout time.Duration
	// ActiveSlotGrace is how long DropSlotAndPublication waits for the
	// consumer of an active slot (a connector task that is stopping) to
	// let go before it terminates that consumer's backend. Default 10s.
	ActiveSlotGrace time.Duration
	// ReleaseTimeout is how long it then waits for the terminated backend
	// to release the slot before giving up with a retriable error.
	// Default 10s.
	ReleaseTimeout time.Duration
	// PollInterval is how often the slot is looked at while waiting.
	// Default 100ms.
	PollInterval time.Duration
	// Policy decides which addresses source connections may reach; nil
	// is sourcepolicy.Strict (no loopback, link-local or unspecified
	// addresses).
	Policy *sourcepolicy.Policy
}

func (c *Config) setDefaults() {
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.ActiveSlotGrace == 0 {
		c.ActiveSlotGrace = 10 * time.Second
	}
	if c.ReleaseTimeout == 0 {
		c.ReleaseTimeout = 10 * time.Second
	}
	if c.PollInterval == 0 {
		c.PollInterval = 100 * time.Millisecond
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	for name, d := range map[string]time.Duration{
		"ConnectTimeout": c.ConnectTimeout, "ActiveSlotGrace": c.ActiveSlotGrace,
		"ReleaseTimeout": c.ReleaseTimeout, "PollInterval": c.PollInterval,
	} {
		if d < 0 {
			return fmt.Errorf("pgsource: %s %s is negative", name, d)
		}
	}
	return nil
}

// Client works on source databases. It holds no connections: each call
// connects, does its work and disconnects. It is safe for concurrent use.
type Client struct {
	cfg Config
}

// New returns a Client.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg}, nil
}

var defaultClient, _ = New(Config{})

// Policy is the client's source policy.
func (c *Client) Policy() *sourcepolicy.Policy { return c.cfg.Policy }

// Connect opens a connection to a source database, configured by
// ConnConfig. Its errors read as DescribeConnectError's: they name the
// database by the redacted connection string, never the password, and are
// jobs.TerminalError when retrying cannot help. A nil Client is one with
// the default Config, and so the strict source policy.
func (c *Client) Connect(ctx context.Context, connString string) (*pgx.Conn, error) {
	if c == nil {
		c = defaultClient
	}
	conn, _, err := c.connect(ctx, connString)
	return conn, err
}

// DropSlotAndPublication drops a slot and a publication with the default
// Config.
func DropSlotAndPublication(ctx context.Context, connString, slot, publication string) error {
	return defaultClient.DropSlotAndPublication(ctx, connString, slot, publication)
}

// SlotState reports whether the replication slot exists, whether a
// consumer is attached to it, and how much WAL it keeps the server from
// recycling. A slot that does not exist is not an error.
func (c *Client) SlotState(ctx context.Context, connString, slot string) (jobs.SlotState, error) {
	st := jobs.SlotState{Name: slot}
	conn, where, err := c.connect(ctx, connString)
	if err != nil {
		return st, err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	// On a standby pg_current_wal_lsn() fails; the replay position is the
	// equivalent there.
	const q = `
SELECT active,
       COALESCE(pg_wal_lsn_diff(
           CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
           restart_lsn), 0)::bigint
FROM pg_replication_slots
WHERE slot_name = $1`
	err = conn.QueryRow(ctx, q, slot).Scan(&st.Active, &st.RetainedWALBytes)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return st, nil
	case err != nil:
		return st, Classify(fmt.Sprintf("read replication slot %s in %s", slot, where), err)
	}
	st.Exists = true
	return st, nil
}

// DropSlotAndPublication drops the replication slot and the publication a
// capture created. Both may already be gone: dropping is idempotent. When
// the slot is still active (the connector's task is still stopping) it
// waits up to ActiveSlotGrace for the consumer to let go, then terminates
// the consumer's backend and drops the slot once it is released. An empty
// name skips that object.
func (c *Client) DropSlotAndPublication(ctx context.Context, connString, slot, publication string) error {
	conn, where, err := c.connect(ctx, connString)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	if slot != "" {
		if err := c.dropSlot(ctx, conn, where, slot); err != nil {
			return err
		}
	}
	if publication != "" {
		sql := "DROP PUBLICATION IF EXISTS " + pgx.Identifier{publication}.Sanitize()
		if _, err := conn.Exec(ctx, sql); err != nil {
			return Classify(fmt.Sprintf("drop publication %s in %s", publication, where), err)
		}
	}
	return nil
}

func (c *Client) dropSlot(ctx context.Context, conn *pgx.Conn, where, slot string) error {
	start := time.Now()
	var terminatedAt time.Time
	for {
		var active bool
		var pid *int32
		err := conn.QueryRow(ctx, `SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&active, &pid)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return Classify(fmt.Sprintf("read replication slot %s in %s", slot, where), err)
		}

		if active {
			switch {
			case time.Since(start) < c.cfg.ActiveSlotGrace:
				// The consumer is probably shutting down; give it time.
			case terminatedAt.IsZero():
				if pid != nil {
					if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend($1)`, *pid); err != nil {
						return Classify(fmt.Sprintf("terminate the consumer (pid %d) of replication slot %s in %s", *pid, slot, where), err)
					}
				}
				terminatedAt = time.Now()
			case time.Since(terminatedAt) > c.cfg.ReleaseTimeout:
				return fmt.Errorf("drop replication slot %s in %s: still active %s after terminating its consumer", slot, where, c.cfg.ReleaseTimeout)
			}
			if err := sleep(ctx, c.cfg.PollInterval); err != nil {
				return fmt.Errorf("drop replication slot %s in %s: %w", slot, where, err)
			}
			continue
		}

		_, err = conn.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, slot)
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &pgErr) && pgErr.Code == "42704": // undefined_object: dropped meanwhile
			return nil
		case errors.As(err, &pgErr) && pgErr.Code == "55006": // object_in_use: a consumer attached meanwhile
			if err := sleep(ctx, c.cfg.PollInterval); err != nil {
				return fmt.Errorf("drop replication slot %s in %s: %w", slot, where, err)
			}
			continue
		default:
			return Classify(fmt.Sprintf("drop replication slot %s in %s", slot, where), err)
		}
	}
}

// connect opens a connection to the source database. where is the
// redacted connection string, for error messages.
func (c *Client) connect(ctx context.Context, connString string) (*pgx.Conn, string, error) {
	cfg, parsed, err := c.ConnConfig(connString, 0)
	if err != nil {
		return nil, "", err
	}
	where := parsed.Redacted()
	cfg.RuntimeParams["application_name"] = "cdcq"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, where, DescribeConnectError(ctx, parsed, err, false)
	}
	return conn, where, nil
}

// ConnConfig is the one way cdcq configures a connection to a source
// database: connString is parsed by connstr.Parse (URL form, one host,
// only connstr.Params, checked by the driver's own parser, nothing taken
// from cdcq's environment or files) and every address the connection
// tries is checked by the client's policy after name resolution. The
// connect timeout is the smaller of timeout (0: the client's
// ConnectTimeout) and the string's connect_timeout. Errors are
// jobs.TerminalError and never hold the password.
func (c *Client) ConnConfig(connString string, timeout time.Duration) (*pgx.ConnConfig, connstr.Conn, error) {
	parsed, cfg, err := connstr.ParseDriver(connString)
	if err != nil {
		return nil, connstr.Conn{}, jobs.Terminalf("source connection string %w", err)
	}
	if timeout <= 0 {
		timeout = c.cfg.ConnectTimeout
	}
	if cfg.ConnectTimeout > 0 && cfg.ConnectTimeout < timeout {
		timeout = cfg.ConnectTimeout
	}
	cfg.ConnectTimeout = timeout
	cfg.DialFunc = c.cfg.Policy.DialFunc(parsed.Host, timeout)
	return cfg, parsed, nil
}

// CheckHost parses connString and checks, by the client's policy, every
// address its host resolves to now: for connections another program
// makes (Debezium on Kafka Connect), which resolves the name again on its
// own. Errors read as DescribeConnectError's.
func (c *Client) CheckHost(ctx context.Context, connString string) error {
	parsed, err := connstr.Parse(connString)
	if err != nil {
		return jobs.Terminalf("source connection string %w", err)
	}
	if err := c.cfg.Policy.CheckHost(ctx, parsed.Host, parsed.Port); err != nil {
		return DescribeConnectError(ctx, parsed, err, true)
	}
	return nil
}

// DescribeConnectError turns a failure to connect to the source database
// conn into the reason a caller reads:
//
//   - refused by cdcq's source policy: the rule and the variable that
//     changes it (terminal);
//   - an error from the PostgreSQL server (authentication failed, the
//     database does not exist, pg_hba.conf, ...): the server's message,
//     terminal as Classify says;
//   - TLS that the server refuses or whose certificate does not verify
//     (terminal);
//   - anything else (host not found, connection refused, timeout,
//     unreachable network, something other than PostgreSQL answering):
//     one and the same "cannot reach" reason, so that the reasons do not
//     tell open ports from closed ones or existing hosts from missing
//     ones. strict makes it terminal (right for a create); otherwise it is
//     retried.
//
// The caller's own cancellation is returned as it is.
func DescribeConnectError(ctx context.Context, conn connstr.Conn, err error, strict bool) error {
	if ctx.Err() != nil {
		return fmt.Errorf("connect to source database %s: %w", conn.Redacted(), ctx.Err())
	}
	where := conn.Redacted()
	var refused *sourcepolicy.RefusedError
	var pgErr *pgconn.PgError
	var unknownAuthority x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &refused):
		return jobs.Terminalf("connect to source database %s: %s", where, refused.Error())
	case errors.As(err, &pgErr):
		return Classify("connect to source database "+where, pgErr)
	case errors.As(err, &unknownAuthority), errors.As(err, &badHost), errors.As(err, &invalidCert), errors.As(err, &verify):
		return jobs.Terminalf("connect to source database %s: the server's TLS certificate does not verify (sslmode=%s); use a certificate from a public CA matching the host name, or a weaker sslmode",
			where, conn.Params["sslmode"])
	case requiresTLS(conn.Params["sslmode"]) && strings.Contains(err.Error(), "server refused TLS connection"):
		// With sslmode prefer or allow a refusal is not the cause: pgx
		// tries without TLS too, and what answered was then no PostgreSQL.
		return jobs.Terminalf("connect to source database %s: the server at %s does not accept TLS, and sslmode=%s requires it (or what answers there is not PostgreSQL)",
			where, net.JoinHostPort(conn.Host, strconv.Itoa(conn.Port)), conn.Params["sslmode"])
	}
	e := fmt.Errorf("connect to source database %s: cannot reach a PostgreSQL server at %s; check the host name, port and firewall",
		where, net.JoinHostPort(conn.Host, strconv.Itoa(conn.Port)))
	if strict {
		return jobs.Terminal(e)
	}
	return e
}

// requiresTLS reports whether sslmode makes a connection without TLS fail.
func requiresTLS(sslmode string) bool {
	switch sslmode {
	case "require", "verify-ca", "verify-full":
		return true
	}
	return false
}

// Classify wraps err with what failed and marks it terminal
// (jobs.TerminalError) when it is a PostgreSQL error that retrying cannot
// fix: authentication, a missing database, a missing privilege, a server
// setting such as wal_level.
func Classify(what string, err error) error {
	wrapped := fmt.Errorf("%s: %w", what, err)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && terminalCode(pgErr.Code) {
		return jobs.Terminal(wrapped)
	}
	return wrapped
}

// terminalCode reports SQLSTATEs that the same request will meet again.
func terminalCode(code string) bool {
	switch {
	case len(code) == 5 && code[:2] == "28": // invalid authorization: wrong password, unknown role, pg_hba reject
		return true
	case code == "3D000": // invalid_catalog_name: the database does not exist
		return true
	case code == "42501": // insufficient_privilege
		return true
	case code == "55000": // object_not_in_prerequisite_state, e.g. wal_level is not logical
		return true
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
