package capture

import (
	"context"
	"regexp"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdcq/cdcq/internal/connstr"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/pgsource"
)

// sessionSettings make the server print values the way internal/dbzjson
// reads them, in the snapshot's SELECTs and in pgoutput's text values
// alike (the walsender formats them with its session's settings).
var sessionSettings = map[string]string{
	"DateStyle":          "ISO",
	"IntervalStyle":      "postgres",
	"TimeZone":           "UTC",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
	"application_name":   "cdcq-capture",
}

// source is a parsed source connection string.
type source struct {
	conn connstr.Conn
	// where is the redacted connection string, for messages.
	where string
	// cfg is the driver configuration pgsource.Client.ConnConfig built,
	// with the source policy's dial hook.
	cfg *pgx.ConnConfig
}

// parseSource configures connections to the source database through
// client (its policy decides which addresses may be reached).
func parseSource(client *pgsource.Client, connString string, timeout time.Duration) (source, error) {
	cfg, c, err := client.ConnConfig(connString, timeout)
	if err != nil {
		return source{}, err
	}
	for k, v := range sessionSettings {
		cfg.RuntimeParams[k] = v
	}
	return source{conn: c, where: c.Redacted(), cfg: cfg}, nil
}

// connect opens an ordinary connection. strict makes every failure to
// reach the server terminal (right for a create, where it means a wrong
// connection string); otherwise it is retried (a server restarting
// refuses connections for a while).
func (s source) connect(ctx context.Context, strict bool) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.cfg.Copy())
	if err != nil {
		return nil, pgsource.DescribeConnectError(ctx, s.conn, err, strict)
	}
	return conn, nil
}

// connectReplication opens a logical replication connection
// (replication=database) to the source database.
func (s source) connectReplication(ctx context.Context, strict bool) (*pgconn.PgConn, error) {
	pc := s.cfg.Config.Copy()
	pc.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, pgsource.DescribeConnectError(ctx, s.conn, err, strict)
	}
	return conn, nil
}

// serverFacts is what preflight learns about the source server.
type serverFacts struct {
	VersionNum  int
	Version     string
	WALLevel    string
	User        string
	Superuser   bool
	Replication bool
	MaxSlots    int
	UsedSlots   int
	SlotExists  bool
	MaxSenders  int
	InRecovery  bool
	Database    string
}

// checkServer reads the server's facts and says, as a terminal error a user
// can act on, why it cannot be captured.
func checkServer(ctx context.Context, conn *pgx.Conn, where, slot string) (serverFacts, error) {
	var f serverFacts
	err := conn.QueryRow(ctx, `
		SELECT current_setting('server_version_num')::int, current_setting('server_version'),
		       current_setting('wal_level'), current_user, current_database(),
		       r.rolsuper,
		       r.rolreplication OR COALESCE((SELECT pg_has_role(current_user, g.oid, 'MEMBER')
		                                     FROM pg_roles g WHERE g.rolname = 'rds_replication'), false),
		       current_setting('max_replication_slots')::int,
		       (SELECT count(*) FROM pg_replication_slots)::int,
		       EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1),
		       current_setting('max_wal_senders')::int,
		       pg_is_in_recovery()
		FROM pg_roles r WHERE r.rolname = current_user`, slot).Scan(
		&f.VersionNum, &f.Version, &f.WALLevel, &f.User, &f.Database, &f.Superuser, &f.Replication,
		&f.MaxSlots, &f.UsedSlots, &f.SlotExists, &f.MaxSenders, &f.InRecovery)
	if err != nil {
		return f, pgsource.Classify("inspect source database "+where, err)
	}
	switch {
	case f.VersionNum < 100000:
		return f, jobs.Terminalf("source database %s runs PostgreSQL %s; capture needs PostgreSQL 10 or later (logical replication with pgoutput)", where, f.Version)
	case f.InRecovery && f.VersionNum < 160000:
		return f, jobs.Terminalf("source database %s is a standby; logical replication from a standby needs PostgreSQL 16 or later: connect to the primary", where)
	case f.WALLevel != "logical":
		return f, jobs.Terminalf("wal_level is %s; set wal_level=logical and restart the server (source database %s)", f.WALLevel, where)
	case !f.Superuser && !f.Replication:
		return f, jobs.Terminalf("role %s may not use replication: run ALTER ROLE %s WITH REPLICATION as a superuser, or connect as a superuser (source database %s)",
			sqlName(f.User), sqlName(f.User), where)
	case f.MaxSenders < 1:
		return f, jobs.Terminalf("max_wal_senders is 0; set it to at least 1 and restart the server (source database %s)", where)
	case !f.SlotExists && f.UsedSlots >= f.MaxSlots:
		return f, jobs.Terminalf("all %d replication slots of the source server are in use; drop unused slots (see pg_replication_slots) or raise max_replication_slots and restart the server (source database %s)", f.MaxSlots, where)
	}
	return f, nil
}

// checkReplicationConnection proves that pg_hba.conf lets the role open a
// replication connection.
func checkReplicationConnection(ctx context.Context, src source, strict bool) error {
	conn, err := src.connectReplication(ctx, strict)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := pglogrepl.IdentifySystem(ctx, conn); err != nil {
		return pgsource.Classify("identify system over a replication connection to "+src.where, err)
	}
	return nil
}

var plainName = regexp.MustCompile(`^[a-z_][a-z0-9_$]*$`)

// sqlName quotes an identifier for a message only when SQL needs it.
func sqlName(s string) string {
	if plainName.MatchString(s) {
		return s
	}
	return pgx.Identifier{s}.Sanitize()
}
