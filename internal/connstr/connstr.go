// Package connstr parses and redacts the PostgreSQL connection strings that
// callers hand to cdcq. A connection string carries a superuser's password:
// only String() returns it, and nothing returned by Parse's errors does.
//
// This package must not import other cdcq packages.
package connstr

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Conn is a parsed connection string.
type Conn struct {
	Host     string
	Port     int
	Database string
	User     string
	Password string
	// Params are the query parameters (sslmode and the like).
	Params map[string]string
}

// Parse reads a URL-form connection string
// (postgres://user:password@host:5432/database?sslmode=disable). Errors say
// what is wrong without repeating the string.
//
// Only the parameters in Params are accepted, each once: anything that
// would let the string name another server or user than its own parts
// (host, hostaddr, port, user, dbname, service), make the driver read a
// file (passfile, servicefile, sslkey, sslcert, sslrootcert) or change
// the server session (options) is refused by name.
func Parse(s string) (Conn, error) {
	return parseURL(s)
}

// ParseDriver is Parse followed by the PostgreSQL driver's own parser
// (DriverConfig), which must read the string the same way: for a string
// as it comes in (the API, cdcq seal) and for a caller about to connect.
func ParseDriver(s string) (Conn, *pgx.ConnConfig, error) {
	c, err := parseURL(s)
	if err != nil {
		return Conn{}, nil, err
	}
	cfg, err := c.DriverConfig()
	if err != nil {
		return Conn{}, nil, err
	}
	return c, cfg, nil
}

// parseURL reads and checks the URL's parts and parameters.
func parseURL(s string) (Conn, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Conn{}, errors.New("is empty")
	}
	if !strings.HasPrefix(s, "postgres://") && !strings.HasPrefix(s, "postgresql://") {
		return Conn{}, errors.New("must be a URL like postgres://user:password@host:5432/database")
	}
	if strings.ContainsRune(s, 0) {
		return Conn{}, errors.New("contains a NUL byte")
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the input; give only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			return Conn{}, fmt.Errorf("is not a valid URL: %s", redactURLReason(ue.Err))
		}
		return Conn{}, errors.New("is not a valid URL")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return Conn{}, errors.New("contains '#'; percent-encode it (%23) in the password")
	}
	c := Conn{Host: u.Hostname(), Port: 5432, Params: map[string]string{}}
	if c.Host == "" {
		return Conn{}, errors.New("has no host")
	}
	if strings.Contains(u.Host, ",") {
		return Conn{}, errors.New("names several hosts; give exactly one")
	}
	if err := checkHost(c.Host); err != nil {
		return Conn{}, err
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Conn{}, fmt.Errorf("has port %q; want 1-65535", p)
		}
		c.Port = n
	}
	if u.User == nil || u.User.Username() == "" {
		return Conn{}, errors.New("has no user name")
	}
	c.User = u.User.Username()
	c.Password, _ = u.User.Password()
	c.Database = strings.TrimPrefix(u.Path, "/")
	if c.Database == "" {
		return Conn{}, errors.New("has no database name (the path after the host)")
	}
	if strings.Contains(c.Database, "/") {
		return Conn{}, errors.New("has a database name with '/'")
	}
	if c.Params, err = parseParams(u.RawQuery); err != nil {
		return Conn{}, err
	}
	return c, nil
}

// checkHost accepts an IP address or a DNS name; a Unix socket directory,
// an IPv6 zone or anything else is refused.
func checkHost(h string) error {
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return errors.New("has an IPv6 address with a zone; give a routable address")
		}
		return nil
	}
	if !IsHostName(h) {
		return errors.New("has a host that is neither a DNS name nor an IP address")
	}
	return nil
}

var hostName = regexp.MustCompile(`^(?i)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$`)

// IsHostName reports whether h is a DNS name: labels of letters, digits,
// '-' and '_' of at most 63 characters, at most 253 in all.
func IsHostName(h string) bool { return len(h) <= 253 && hostName.MatchString(h) }

// paramName is a parameter name safe to repeat in a message.
var paramName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,40}$`)

// Params are the query parameters a caller may set, each with its check
// of the value. Everything else is refused.
var Params = map[string]func(string) error{
	// The TLS mode; libpq and Debezium share these values.
	"sslmode": oneOf("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
	// Seconds to wait for the connection; cdcq's own limit still applies.
	"connect_timeout": func(v string) error {
		if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 3600 {
			return errors.New("want a whole number of seconds from 0 to 3600")
		}
		return nil
	},
	// A label for pg_stat_activity; cdcq replaces it with its own.
	"application_name": func(v string) error {
		if len(v) > 63 || strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
			return errors.New("want at most 63 printable ASCII characters")
		}
		return nil
	},
	// SCRAM channel binding; can only make authentication stricter.
	"channel_binding": oneOf("disable", "prefer", "require"),
}

// AcceptedParams lists the names of Params, sorted.
func AcceptedParams() []string {
	names := make([]string, 0, len(Params))
	for k := range Params {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func oneOf(values ...string) func(string) error {
	return func(v string) error {
		for _, w := range values {
			if v == w {
				return nil
			}
		}
		return fmt.Errorf("want one of %s", strings.Join(values, ", "))
	}
}

// parseParams reads the raw query. Names and values are percent-decoded
// first, so an encoded name (h%6Fst) is checked as what it decodes to.
func parseParams(raw string) (map[string]string, error) {
	params := map[string]string{}
	if raw == "" {
		return params, nil
	}
	for _, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return nil, errors.New("has a query parameter name with a bad percent-escape")
		}
		if key == "password" {
			return nil, errors.New("carries the password as a query parameter; put it in the user part")
		}
		if !paramName.MatchString(key) {
			return nil, errors.New("has a query parameter with an unusual name; only " +
				strings.Join(AcceptedParams(), ", ") + " are accepted")
		}
		check, ok := Params[key]
		if !ok {
			return nil, fmt.Errorf("has query parameter %q, which cdcq does not accept%s; only %s are accepted",
				key, paramHint(key), strings.Join(AcceptedParams(), ", "))
		}
		if _, dup := params[key]; dup {
			return nil, fmt.Errorf("has query parameter %q more than once; give it once", key)
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, fmt.Errorf("has query parameter %q with a bad percent-escape", key)
		}
		if err := check(value); err != nil {
			return nil, fmt.Errorf("has query parameter %q with a value cdcq does not accept: %v", key, err)
		}
		params[key] = value
	}
	return params, nil
}

// paramHint says where a refused parameter's setting belongs.
func paramHint(key string) string {
	switch key {
	case "host", "hostaddr", "port", "user", "dbname", "database":
		return " (give host, port, user and database in the URL itself)"
	case "passfile", "servicefile", "service", "sslkey", "sslcert", "sslrootcert", "sslpassword", "sslcrl", "sslcrldir":
		return " (it names a file on cdcq's servers)"
	}
	return ""
}

// driverOverrides are settings DriverConfig always gives the driver, so
// that neither the PG* environment variables of cdcq's process nor files
// in its home directory (~/.pgpass, ~/.pg_service.conf, ~/.postgresql/*)
// apply to a connection a caller described.
var driverOverrides = map[string]string{
	"passfile":             "",
	"servicefile":          "",
	"sslcert":              "",
	"sslkey":               "",
	"sslrootcert":          "",
	"sslpassword":          "",
	"sslcertmode":          "disable",
	"sslnegotiation":       "postgres",
	"sslsni":               "1",
	"target_session_attrs": "any",
	"min_protocol_version": "",
	"max_protocol_version": "",
	"require_auth":         "",
	"options":              "",
	"connect_timeout":      "0",
}

// driverKeys are the only keys the driver is told to accept: the URL's
// parts, the fixed settings and the accepted parameters. A Conn whose
// Params hold anything else (built by hand, not by Parse) is refused.
var driverKeys = slices.Concat([]string{"host", "port", "user", "password", "dbname", "sslmode", "channel_binding"},
	slices.Collect(maps.Keys(driverOverrides)), slices.Collect(maps.Keys(Params)))

// DriverConfig builds the pgx configuration for c with the driver's own
// parser, from c's parts only: host, port, user, password and database
// are given explicitly, every setting the driver would otherwise take from
// cdcq's environment or home directory is given a fixed value, and the
// driver is told to accept no other keys. The result is checked to name
// exactly c's server, user and database. No runtime parameters are set.
// Errors never hold the password.
func (c Conn) DriverConfig() (*pgx.ConnConfig, error) {
	if os.Getenv("PGSERVICE") != "" {
		return nil, errors.New("cannot be used while cdcq's own environment sets PGSERVICE; an operator must unset it")
	}
	settings := map[string]string{
		"host": c.Host, "port": strconv.Itoa(c.Port), "user": c.User, "password": c.Password, "dbname": c.Database,
		"sslmode": "prefer", "channel_binding": "prefer",
	}
	for k, v := range driverOverrides {
		settings[k] = v
	}
	for k, v := range c.Params {
		settings[k] = v
	}
	keys := slices.Sorted(maps.Keys(settings))
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s='%s' ", k, quoteKeywordValue(settings[k]))
	}
	cfg, err := pgx.ParseConfigWithOptions(b.String(), pgx.ParseConfigOptions{
		ParseConfigOptions: pgconn.ParseConfigOptions{ConnStringAllowedKeys: driverKeys},
	})
	if err != nil {
		// The driver's errors may quote the string, password included.
		return nil, errors.New("is not accepted by the PostgreSQL driver")
	}
	if cfg.Host != c.Host || int(cfg.Port) != c.Port || cfg.User != c.User || cfg.Password != c.Password || cfg.Database != c.Database {
		return nil, errors.New("is read differently by the PostgreSQL driver")
	}
	for _, fb := range cfg.Fallbacks {
		if fb.Host != c.Host || int(fb.Port) != c.Port {
			return nil, errors.New("is read as several servers by the PostgreSQL driver")
		}
	}
	// cdcq names its own sessions (pgsource, the capture): the caller's
	// application_name is accepted and not sent.
	cfg.RuntimeParams = map[string]string{}
	return cfg, nil
}

// quoteKeywordValue escapes v for a single-quoted keyword/value value.
func quoteKeywordValue(v string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v)
}

func redactURLReason(err error) string {
	if err == nil {
		return "malformed"
	}
	var esc url.EscapeError
	if errors.As(err, &esc) {
		return "bad percent-escape"
	}
	var host url.InvalidHostError
	if errors.As(err, &host) {
		return "invalid character in host"
	}
	if strings.Contains(err.Error(), "port") {
		return "invalid port"
	}
	return "malformed"
}

// String is the full connection string, password included. Use it only to
// connect.
func (c Conn) String() string { return c.url(true) }

// Redacted is the connection string with the password replaced by ***.
func (c Conn) Redacted() string { return c.url(false) }

func (c Conn) url(withPassword bool) string {
	u := url.URL{Scheme: "postgres", Host: c.Host + ":" + strconv.Itoa(c.Port), Path: "/" + c.Database}
	if strings.Contains(c.Host, ":") { // IPv6 literal
		u.Host = "[" + c.Host + "]:" + strconv.Itoa(c.Port)
	}
	switch {
	case withPassword && c.Password != "":
		u.User = url.UserPassword(c.User, c.Password)
	case c.Password != "":
		u.User = url.UserPassword(c.User, "***")
	default:
		u.User = url.User(c.User)
	}
	if len(c.Params) > 0 {
		keys := slices.Sorted(maps.Keys(c.Params))
		q := url.Values{}
		for _, k := range keys {
			q.Set(k, c.Params[k])
		}
		u.RawQuery = q.Encode()
	}
	s := u.String()
	if !withPassword {
		s = strings.Replace(s, "%2A%2A%2A", "***", 1)
	}
	return s
}
