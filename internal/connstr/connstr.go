// Package connstr parses and redacts the PostgreSQL connection strings that
// callers hand to cdcq. A connection string carries a superuser's password:
// only String() returns it, and nothing returned by Parse's errors does.
//
// This package must not import other cdcq packages.
package connstr

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
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
func Parse(s string) (Conn, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Conn{}, errors.New("is empty")
	}
	if !strings.HasPrefix(s, "postgres://") && !strings.HasPrefix(s, "postgresql://") {
		return Conn{}, errors.New("must be a URL like postgres://user:password@host:5432/database")
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
	c := Conn{Host: u.Hostname(), Port: 5432, Params: map[string]string{}}
	if c.Host == "" {
		return Conn{}, errors.New("has no host")
	}
	if strings.Contains(u.Host, ",") {
		return Conn{}, errors.New("names several hosts; give exactly one")
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
	for k, vs := range u.Query() {
		if k == "password" {
			return Conn{}, errors.New("carries the password as a query parameter; put it in the user part")
		}
		if len(vs) > 0 {
			c.Params[k] = vs[len(vs)-1]
		}
	}
	return c, nil
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
		keys := make([]string, 0, len(c.Params))
		for k := range c.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
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
