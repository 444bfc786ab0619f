package connstr

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Differences names the parts (host, port, database, user) in which a and b
// differ, in that order; none means they name the same database as the same
// user, whatever their passwords and parameters. An environment stays bound
// to the database it was created with: a connection string that differs in
// any of these parts names another database.
func Differences(a, b Conn) []string {
	var differ []string
	if !strings.EqualFold(a.Host, b.Host) {
		differ = append(differ, "host")
	}
	if a.Port != b.Port {
		differ = append(differ, "port")
	}
	if a.Database != b.Database {
		differ = append(differ, "database")
	}
	if a.User != b.User {
		differ = append(differ, "user")
	}
	return differ
}

// DescribeDifferences says which parts differ, as "its host differs" or
// "its host and port differ".
func DescribeDifferences(differ []string) string {
	verb := "differs"
	if len(differ) > 1 {
		verb = "differ"
	}
	return "its " + joinAnd(differ) + " " + verb
}

// DescribeMismatch says that environment env is bound to another database
// than other (the connection string compared, as "the command's
// connection string"), and which parts differ.
func DescribeMismatch(env string, differ []string, other string) string {
	return "environment " + env + " captures a different database: " + DescribeDifferences(differ) + " from " + other
}

// joinAnd joins words as "a", "a and b", "a, b and c".
func joinAnd(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// StoredIdentity reads the host, port, database and user of a connection
// string stored by an earlier cdcq, which accepted parameters Parse now
// refuses (target_session_attrs, options, host, ...): as Parse reads it
// when it can, otherwise as the PostgreSQL driver read it when cdcq
// connected with it (its first host). The result is for Differences; it
// is not a string to connect with.
func StoredIdentity(s string) (Conn, error) {
	if c, err := Parse(s); err == nil {
		return c, nil
	}
	if !strings.HasPrefix(s, "postgres://") && !strings.HasPrefix(s, "postgresql://") {
		return Conn{}, errors.New("is not a URL")
	}
	cfg, err := pgconn.ParseConfig(s)
	if err != nil {
		return Conn{}, errors.New("is not a connection string the PostgreSQL driver reads")
	}
	return Conn{Host: cfg.Host, Port: int(cfg.Port), Database: cfg.Database, User: cfg.User}, nil
}
