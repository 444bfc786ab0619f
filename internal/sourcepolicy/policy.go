// Package sourcepolicy decides which network addresses cdcq may connect
// to as a customer's source database. A connection string comes from a
// caller; without a policy a caller could point the workers at their own
// loopback services, at the cloud metadata service (169.254.169.254) or at
// cdcq's own job-state database.
//
// The policy is applied to the resolved address of every connection, in
// the dialer (DialFunc), so that a name that resolves differently by the
// time of the connection (DNS rebinding) gains nothing. CheckHost applies
// it ahead of time for connections cdcq does not make itself (Debezium on
// Kafka Connect).
//
// Refused unless allowed: loopback (127.0.0.0/8, ::1), link-local
// (169.254.0.0/16, fe80::/10), unspecified (0.0.0.0/8, ::) and the host and
// port of the job-state database. Deny entries win over everything.
//
// This package must not import other cdcq packages.
package sourcepolicy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cdcq/cdcq/internal/connstr"
	"github.com/jackc/pgx/v5/pgconn"
)

// Environment variables that carry the rules; messages name them.
const (
	AllowVar = "CDCQ_SOURCE_ALLOW"
	DenyVar  = "CDCQ_SOURCE_DENY"
)

// Words that may stand in an allow or deny list for a class of addresses.
const (
	WordLoopback  = "loopback"
	WordLinkLocal = "link-local"
	WordJobState  = "jobstate"
)

// Rules are the operator's settings.
type Rules struct {
	// Allow and Deny are entries of CDCQ_SOURCE_ALLOW and
	// CDCQ_SOURCE_DENY: CIDRs (10.0.0.0/8), IP addresses, host names
	// (their addresses when a connection is checked), or the words
	// loopback, link-local and jobstate.
	Allow, Deny []string
	// JobStateURL is the job-state database's connection string
	// (CDCQ_DATABASE_URL). Its host and port are refused unless Allow
	// holds the word jobstate.
	JobStateURL string
	// Resolver looks up host names; nil is net.DefaultResolver.
	Resolver *net.Resolver
}

// Policy is a checked set of rules. A nil *Policy is the strict default:
// the built-in refusals only. It is safe for concurrent use.
type Policy struct {
	allow, deny []entry
	// jobState are the job-state database's hosts and ports (one per
	// host of its connection string; Unix sockets left out).
	jobState     []hostPort
	allowJob     bool
	denyJobState bool
	resolver     *net.Resolver
}

type hostPort struct {
	host string
	port uint16
}

// entry is one allow or deny entry.
type entry struct {
	text   string
	prefix netip.Prefix // valid for a CIDR or an IP address
	host   string       // a host name
	class  string       // WordLoopback, WordLinkLocal
}

// Strict is the policy with the built-in refusals only.
func Strict() *Policy { return nil }

// New checks rules and returns the policy. Errors name the variable and
// the entry.
func New(r Rules) (*Policy, error) {
	p := &Policy{resolver: r.Resolver}
	var err error
	if p.allow, p.allowJob, err = parseEntries(AllowVar, r.Allow); err != nil {
		return nil, err
	}
	if p.deny, p.denyJobState, err = parseEntries(DenyVar, r.Deny); err != nil {
		return nil, err
	}
	if r.JobStateURL != "" {
		hps, err := jobStateAddresses(r.JobStateURL)
		if err != nil {
			return nil, err
		}
		p.jobState = hps
	}
	return p, nil
}

// CheckEntry reports whether s is a valid allow or deny entry.
func CheckEntry(s string) error {
	_, _, err := parseEntry(s)
	return err
}

func parseEntries(variable string, list []string) ([]entry, bool, error) {
	var out []entry
	jobState := false
	for _, s := range list {
		e, isJob, err := parseEntry(s)
		if err != nil {
			return nil, false, fmt.Errorf("%s entry %q: %w", variable, s, err)
		}
		if isJob {
			jobState = true
			continue
		}
		out = append(out, e)
	}
	return out, jobState, nil
}

func parseEntry(s string) (entry, bool, error) {
	s = strings.TrimSpace(s)
	e := entry{text: s}
	switch strings.ToLower(s) {
	case "":
		return e, false, errors.New("is empty")
	case WordJobState:
		return e, true, nil
	case WordLoopback, WordLinkLocal:
		e.class = strings.ToLower(s)
		return e, false, nil
	}
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return e, false, errors.New("is not a CIDR such as 10.0.0.0/8 or fd00::/8")
		}
		e.prefix = pfx.Masked()
		return e, false, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return e, false, errors.New("has an IPv6 zone; give the address without it")
		}
		a = a.Unmap()
		e.prefix = netip.PrefixFrom(a, a.BitLen())
		return e, false, nil
	}
	if !connstr.IsHostName(s) {
		return e, false, fmt.Errorf("is not a CIDR, an IP address, a host name or one of %s, %s, %s", WordLoopback, WordLinkLocal, WordJobState)
	}
	e.host = strings.TrimSuffix(strings.ToLower(s), ".")
	return e, false, nil
}

// jobStateAddresses reads the hosts and ports of the job-state connection
// string the way the driver does (URL or keyword/value form, several
// hosts).
func jobStateAddresses(url string) ([]hostPort, error) {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		// The driver's message may quote the string, password included.
		return nil, errors.New("CDCQ_DATABASE_URL is not a connection string the PostgreSQL driver accepts")
	}
	var out []hostPort
	add := func(host string, port uint16) {
		if strings.HasPrefix(host, "/") { // a Unix socket: never a TCP address
			return
		}
		hp := hostPort{host: strings.TrimSuffix(strings.ToLower(host), "."), port: port}
		for _, seen := range out {
			if seen == hp {
				return
			}
		}
		out = append(out, hp)
	}
	add(cfg.Host, cfg.Port)
	for _, fb := range cfg.Fallbacks {
		add(fb.Host, fb.Port)
	}
	return out, nil
}

// RefusedError says that the policy refuses an address. Its message names
// the rule and how an operator can change it; it never holds a password.
type RefusedError struct {
	// Host is the host as the connection string names it ("" when only
	// the address is known).
	Host string
	// Addr is the refused address.
	Addr netip.AddrPort
	// Rule is why: a sentence without the host.
	Rule string
}

func (e *RefusedError) Error() string {
	what := e.Addr.String()
	switch {
	case !e.Addr.IsValid():
		what = e.Host
	case e.Host != "" && e.Host != e.Addr.Addr().String():
		// The address a name resolves to is not shown: a caller would
		// learn the worker's view of internal DNS.
		what = fmt.Sprintf("%s (port %d)", e.Host, e.Addr.Port())
	}
	return fmt.Sprintf("cdcq's source policy refuses %s: %s", what, e.Rule)
}

// IsRefused reports whether err is, or wraps, a *RefusedError.
func IsRefused(err error) bool {
	var re *RefusedError
	return errors.As(err, &re)
}

// Check decides about one resolved address. host is the host as the
// connection string names it, for the message. A nil *Policy applies the
// built-in refusals only.
func (p *Policy) Check(ctx context.Context, host string, ap netip.AddrPort) error {
	a := ap.Addr().Unmap().WithZone("")
	ap = netip.AddrPortFrom(a, ap.Port())
	refuse := func(rule string) error { return &RefusedError{Host: host, Addr: ap, Rule: rule} }
	if p != nil {
		e, ok, err := p.match(ctx, p.deny, a)
		switch {
		case ok:
			return refuse(fmt.Sprintf("the address is denied by %s entry %q", DenyVar, e.text))
		case err != nil:
			// A deny entry that cannot be resolved might cover this
			// address: refuse rather than let it through.
			return refuse(fmt.Sprintf("%s entry %q cannot be resolved now (%v), so cdcq cannot tell whether it covers this address", DenyVar, e.text, err))
		}
		job, err := p.isJobState(ctx, ap)
		switch {
		case err != nil:
			return refuse(fmt.Sprintf("the job-state database's host cannot be resolved now (%v), so cdcq cannot tell whether this is its own database", err))
		case job && p.denyJobState:
			return refuse(fmt.Sprintf("it is cdcq's own job-state database (CDCQ_DATABASE_URL), denied by %s entry %q", DenyVar, WordJobState))
		case job && !p.allowJob:
			return refuse(fmt.Sprintf("it is cdcq's own job-state database (CDCQ_DATABASE_URL), which cannot be a source; an operator can allow it with %s=%s", AllowVar, WordJobState))
		}
		// An allow entry that cannot be resolved allows nothing.
		if _, ok, _ := p.match(ctx, p.allow, a); ok {
			return nil
		}
	}
	switch {
	case a.IsLoopback():
		return refuse(fmt.Sprintf("loopback addresses are not allowed; an operator can allow them with %s=%s", AllowVar, WordLoopback))
	case a.IsLinkLocalUnicast():
		return refuse(fmt.Sprintf("link-local addresses (where cloud metadata services answer) are not allowed; an operator can allow them with %s=%s", AllowVar, WordLinkLocal))
	case a.IsUnspecified() || (a.Is4() && a.As4()[0] == 0):
		return refuse(fmt.Sprintf("unspecified addresses (0.0.0.0/8, ::) reach the worker itself and are not allowed; an operator can allow them with %s=<CIDR>", AllowVar))
	case a.Is6() && isIPv4Compatible(a):
		return refuse(fmt.Sprintf("IPv4-compatible IPv6 addresses (::/96) are not allowed; an operator can allow them with %s=<CIDR>", AllowVar))
	case a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return refuse("multicast and broadcast addresses are not PostgreSQL servers")
	}
	return nil
}

// isIPv4Compatible reports an address of the deprecated ::a.b.c.d form
// (::/96 other than :: and ::1), which some stacks route as IPv4.
func isIPv4Compatible(a netip.Addr) bool {
	b := a.As16()
	for _, x := range b[:12] {
		if x != 0 {
			return false
		}
	}
	return true
}

// match returns the first entry that covers a. When none does and a host
// entry could not be resolved, it returns that entry and the error.
func (p *Policy) match(ctx context.Context, entries []entry, a netip.Addr) (entry, bool, error) {
	var unresolved entry
	var lookupErr error
	for _, e := range entries {
		switch {
		case e.class == WordLoopback && a.IsLoopback():
			return e, true, nil
		case e.class == WordLinkLocal && a.IsLinkLocalUnicast():
			return e, true, nil
		case e.prefix.IsValid() && e.prefix.Contains(a):
			return e, true, nil
		case e.host != "":
			addrs, err := p.resolve(ctx, e.host)
			if err != nil && lookupErr == nil {
				unresolved, lookupErr = e, err
			}
			if slices.Contains(addrs, a) {
				return e, true, nil
			}
		}
	}
	return unresolved, false, lookupErr
}

// isJobState reports whether ap is an address of the job-state database.
func (p *Policy) isJobState(ctx context.Context, ap netip.AddrPort) (bool, error) {
	for _, hp := range p.jobState {
		if hp.port != ap.Port() {
			continue
		}
		addrs, err := p.resolve(ctx, hp.host)
		if err != nil {
			return false, err
		}
		if slices.Contains(addrs, ap.Addr()) {
			return true, nil
		}
	}
	return false, nil
}

// resolve resolves host within 5 seconds (an IP literal resolves to
// itself), as addresses without zone, IPv4-mapped ones unmapped.
func (p *Policy) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap().WithZone("")}, nil
	}
	r := net.DefaultResolver
	if p != nil && p.resolver != nil {
		r = p.resolver
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	for i, a := range addrs {
		addrs[i] = a.Unmap().WithZone("")
	}
	return addrs, nil
}

// CheckHost resolves host and checks every address it resolves to, for a
// connection that another program makes (Debezium on Kafka Connect): that
// program resolves the name again, which cdcq cannot control. A name that
// does not resolve is returned as the resolver's error.
func (p *Policy) CheckHost(ctx context.Context, host string, port int) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("port %d is out of range", port)
	}
	addrs, err := p.resolve(ctx, host)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if err := p.Check(ctx, host, netip.AddrPortFrom(a, uint16(port))); err != nil {
			return err
		}
	}
	return nil
}

// DialFunc returns a dialer for pgconn.Config.DialFunc that checks each
// address after name resolution, right before connecting: TCP only (a
// Unix socket is a file on the worker), and only to addresses the policy
// allows. host is the host as the connection string names it.
func (p *Policy) DialFunc(host string, timeout time.Duration) pgconn.DialFunc {
	d := &net.Dialer{
		Timeout:   timeout,
		KeepAlive: 5 * time.Minute,
		ControlContext: func(ctx context.Context, network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("cdcq's source policy cannot read the address %q", address)
			}
			return p.Check(ctx, host, ap)
		},
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if network != "tcp" && network != "tcp4" && network != "tcp6" {
			return nil, &RefusedError{Host: host, Rule: "only TCP connections are allowed, not Unix-domain sockets"}
		}
		return d.DialContext(ctx, network, addr)
	}
}

// Describe is a short text of the rules for logs: the entries, never a
// password.
func (p *Policy) Describe() string {
	if p == nil {
		return "built-in refusals only"
	}
	var b strings.Builder
	list := func(name string, es []entry, job bool) {
		var parts []string
		for _, e := range es {
			parts = append(parts, e.text)
		}
		if job {
			parts = append(parts, WordJobState)
		}
		if len(parts) > 0 {
			fmt.Fprintf(&b, "%s=%s ", name, strings.Join(parts, ","))
		}
	}
	list(AllowVar, p.allow, p.allowJob)
	list(DenyVar, p.deny, p.denyJobState)
	for _, hp := range p.jobState {
		fmt.Fprintf(&b, "job-state database %s ", net.JoinHostPort(hp.host, strconv.Itoa(int(hp.port))))
	}
	return strings.TrimSpace(b.String())
}
