// Package config reads cdcq's configuration from the environment. Every
// setting is a CDCQ_* variable; README.md lists them.
//
// This package must not import other cdcq packages.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config is the whole configuration of a cdcq process.
type Config struct {
	// HTTPAddr is where the API listens (CDCQ_HTTP_ADDR, default 127.0.0.1:7000).
	HTTPAddr string
	// DataDir holds dev-mode state: broker log, Postgres cluster, secret key
	// (CDCQ_DATA_DIR, default ./.cdcq).
	DataDir string
	// KafkaBrokers (CDCQ_KAFKA_BROKERS, comma-separated). Empty in dev mode
	// starts an in-process broker.
	KafkaBrokers []string
	// DatabaseURL is the job-state Postgres (CDCQ_DATABASE_URL). Empty in
	// dev mode starts a private server in DataDir.
	DatabaseURL string
	// ConnectURL is Kafka Connect's REST URL (CDCQ_CONNECT_URL); set, it
	// selects Debezium for capture.
	ConnectURL string
	// FlinkGatewayURL and FlinkRESTURL select Flink for cached queries
	// (CDCQ_FLINK_SQL_GATEWAY_URL, CDCQ_FLINK_REST_URL).
	FlinkGatewayURL string
	FlinkRESTURL    string
	// FlinkKafkaBrokers is Kafka's bootstrap list as Flink reaches it
	// (CDCQ_FLINK_KAFKA_BROKERS, default KafkaBrokers).
	FlinkKafkaBrokers []string
	// SecretKey is the base64 AES-256 key that seals connection strings
	// (CDCQ_SECRET_KEY). Dev mode keeps one in DataDir/secret.key.
	SecretKey string
	// APITokens are the accepted bearer tokens (CDCQ_API_TOKENS,
	// comma-separated). Required by `cdcq api` outside dev mode.
	APITokens []string
	// StatusInterval is the status poller's period (CDCQ_STATUS_INTERVAL,
	// a Go duration, default 10s).
	StatusInterval time.Duration
	// Partitions of the control and events topics when cdcq creates them
	// (CDCQ_TOPIC_PARTITIONS, default 12).
	Partitions int32
	// DevPostgresPort and DevKafkaPort are the ports of dev mode's own
	// servers (CDCQ_DEV_POSTGRES_PORT default 7432, CDCQ_DEV_KAFKA_PORT
	// default 9092).
	DevPostgresPort int
	DevKafkaPort    int
	// LogLevel is debug, info, warn or error (CDCQ_LOG_LEVEL, default info).
	LogLevel string
	// KafkaNamespace prefixes cdcq's own topics and consumer groups
	// (CDCQ_KAFKA_NAMESPACE; empty means cdcq: cdcq.commands, cdcq.events,
	// cdcq-worker, ...), so that deployments can share a Kafka cluster.
	// The API and every worker of a deployment must agree on it.
	KafkaNamespace string
	// SourceAllow and SourceDeny adjust which addresses the workers may
	// connect to as source databases (CDCQ_SOURCE_ALLOW,
	// CDCQ_SOURCE_DENY; comma-separated CIDRs, IP addresses, host names,
	// or the words loopback, link-local and jobstate). Loopback,
	// link-local, unspecified addresses and the job-state database are
	// refused unless allowed; a deny entry wins over an allow entry.
	// internal/sourcepolicy applies them.
	SourceAllow []string
	SourceDeny  []string
}

// FromEnv reads the configuration through getenv (os.Getenv in main).
// Errors name the variable.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		HTTPAddr:          or(getenv("CDCQ_HTTP_ADDR"), "127.0.0.1:7000"),
		DataDir:           or(getenv("CDCQ_DATA_DIR"), ".cdcq"),
		KafkaBrokers:      list(getenv("CDCQ_KAFKA_BROKERS")),
		DatabaseURL:       strings.TrimSpace(getenv("CDCQ_DATABASE_URL")),
		ConnectURL:        strings.TrimSpace(getenv("CDCQ_CONNECT_URL")),
		FlinkGatewayURL:   strings.TrimSpace(getenv("CDCQ_FLINK_SQL_GATEWAY_URL")),
		FlinkRESTURL:      strings.TrimSpace(getenv("CDCQ_FLINK_REST_URL")),
		FlinkKafkaBrokers: list(getenv("CDCQ_FLINK_KAFKA_BROKERS")),
		SecretKey:         strings.TrimSpace(getenv("CDCQ_SECRET_KEY")),
		APITokens:         list(getenv("CDCQ_API_TOKENS")),
		LogLevel:          or(getenv("CDCQ_LOG_LEVEL"), "info"),
		KafkaNamespace:    strings.TrimSpace(getenv("CDCQ_KAFKA_NAMESPACE")),
		SourceAllow:       list(getenv("CDCQ_SOURCE_ALLOW")),
		SourceDeny:        list(getenv("CDCQ_SOURCE_DENY")),
	}
	var err error
	if c.StatusInterval, err = duration(getenv, "CDCQ_STATUS_INTERVAL", 10*time.Second); err != nil {
		return Config{}, err
	}
	p, err := integer(getenv, "CDCQ_TOPIC_PARTITIONS", 12, 1, 10000)
	if err != nil {
		return Config{}, err
	}
	c.Partitions = int32(p)
	if c.DevPostgresPort, err = integer(getenv, "CDCQ_DEV_POSTGRES_PORT", 7432, 0, 65535); err != nil {
		return Config{}, err
	}
	if c.DevKafkaPort, err = integer(getenv, "CDCQ_DEV_KAFKA_PORT", 9092, 0, 65535); err != nil {
		return Config{}, err
	}
	for _, v := range []struct{ name, value string }{
		{"CDCQ_CONNECT_URL", c.ConnectURL},
		{"CDCQ_FLINK_SQL_GATEWAY_URL", c.FlinkGatewayURL},
		{"CDCQ_FLINK_REST_URL", c.FlinkRESTURL},
	} {
		if v.value == "" {
			continue
		}
		u, err := url.Parse(v.value)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Config{}, fmt.Errorf("%s must be an http(s) URL such as http://localhost:8083", v.name)
		}
	}
	if (c.FlinkGatewayURL == "") != (c.FlinkRESTURL == "") {
		return Config{}, fmt.Errorf("set both CDCQ_FLINK_SQL_GATEWAY_URL and CDCQ_FLINK_REST_URL, or neither")
	}
	if len(c.FlinkKafkaBrokers) == 0 {
		c.FlinkKafkaBrokers = c.KafkaBrokers
	}
	if c.FlinkGatewayURL != "" && len(c.FlinkKafkaBrokers) == 0 {
		return Config{}, fmt.Errorf("Flink needs to reach Kafka: set CDCQ_FLINK_KAFKA_BROKERS (or CDCQ_KAFKA_BROKERS); the in-process broker of cdcq dev is not reachable from a Flink cluster")
	}
	for _, v := range []struct {
		name    string
		entries []string
	}{{"CDCQ_SOURCE_ALLOW", c.SourceAllow}, {"CDCQ_SOURCE_DENY", c.SourceDeny}} {
		for _, e := range v.entries {
			if err := checkAddressEntry(e); err != nil {
				return Config{}, fmt.Errorf("%s entry %q %v", v.name, e, err)
			}
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return Config{}, fmt.Errorf("CDCQ_LOG_LEVEL is %q; want debug, info, warn or error", c.LogLevel)
	}
	return c, nil
}

var hostName = regexp.MustCompile(`^(?i)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$`)

// checkAddressEntry accepts what internal/sourcepolicy reads from
// CDCQ_SOURCE_ALLOW and CDCQ_SOURCE_DENY.
func checkAddressEntry(e string) error {
	switch strings.ToLower(e) {
	case "loopback", "link-local", "jobstate":
		return nil
	}
	if strings.Contains(e, "/") {
		if _, err := netip.ParsePrefix(e); err != nil {
			return errors.New("is not a CIDR such as 10.0.0.0/8 or fd00::/8")
		}
		return nil
	}
	if a, err := netip.ParseAddr(e); err == nil {
		if a.Zone() != "" {
			return errors.New("has an IPv6 zone; give the address without it")
		}
		return nil
	}
	if len(e) > 253 || !hostName.MatchString(e) {
		return errors.New("is not a CIDR, an IP address, a host name, or one of loopback, link-local, jobstate")
	}
	return nil
}

func or(v, def string) string {
	if v = strings.TrimSpace(v); v != "" {
		return v
	}
	return def
}

func list(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func duration(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s is %q; want a positive Go duration such as 10s", name, v)
	}
	return d, nil
}

func integer(getenv func(string) string, name string, def, lo, hi int) (int, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s is %q; want a whole number from %d to %d", name, v, lo, hi)
	}
	return n, nil
}
