// Package config reads cdcq's configuration from the environment. Every
// setting is a CDCQ_* variable; README.md lists them.
//
// This package imports no cdcq package but internal/sourcepolicy, which
// checks the CDCQ_SOURCE_ALLOW and CDCQ_SOURCE_DENY entries.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cdcq/cdcq/internal/pgsession"
	"github.com/cdcq/cdcq/internal/sourcepolicy"
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
	// ConnectSecretsDir is a directory that cdcq and every Kafka Connect
	// worker see at the same absolute path (CDCQ_CONNECT_SECRETS_DIR). Set,
	// the connector configurations hold no password: cdcq writes each one
	// to a file there (mode 0600) and the configuration names it through
	// Kafka Connect's DirectoryConfigProvider, ${dir:<dir>:<file>}. Empty,
	// Kafka Connect stores and shows the passwords in clear.
	ConnectSecretsDir string
	// ConnectAuthorization is the Authorization header sent with every
	// request to Kafka Connect's REST API: CDCQ_CONNECT_AUTHORIZATION as it
	// is (for example "Bearer ..." for a proxy in front of the workers), or
	// basic authentication with CDCQ_CONNECT_USERNAME and
	// CDCQ_CONNECT_PASSWORD, as Connect's BasicAuthSecurityRestExtension
	// checks it. Empty: none.
	ConnectAuthorization Secret
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
	// SecretKeysPrevious are older keys, base64, comma-separated
	// (CDCQ_SECRET_KEYS_PREVIOUS): they still open what they sealed, until
	// `cdcq reseal` has rewritten it under SecretKey.
	SecretKeysPrevious string
	// APITokens are the accepted bearer tokens (CDCQ_API_TOKENS,
	// comma-separated). Required by `cdcq api` outside dev mode.
	APITokens []string
	// APIWriteRate and APIWriteBurst limit each API token's POST and DELETE
	// requests (CDCQ_API_WRITE_RATE per second, default 50;
	// CDCQ_API_WRITE_BURST, default 200). Past them the API answers 429.
	APIWriteRate  float64
	APIWriteBurst int
	// StatusInterval is the status poller's period (CDCQ_STATUS_INTERVAL,
	// a Go duration, default 10s).
	StatusInterval time.Duration
	// LeaseTimeout is how long a worker may fall silent before the
	// job-state server ends the sessions that hold its leases, elections
	// and command locks, so that other workers take its work over
	// (CDCQ_LEASE_TIMEOUT, a Go duration, default 10s, at least 2s;
	// internal/pgsession).
	LeaseTimeout time.Duration
	// ChangeTopicRetention is the retention.ms of the change topics cdcq
	// creates, and Debezium's connector with it
	// (CDCQ_CHANGE_TOPIC_RETENTION, a Go duration such as 720h, or -1 for
	// ever; default -1): a query rebuilds its state from them.
	ChangeTopicRetention time.Duration
	// HistoryRetention is how long rows of job_events, handled_commands
	// and rejected_commands are kept (CDCQ_HISTORY_RETENTION, a Go
	// duration, default 336h: twice Kafka's default retention of the
	// control topic, whose commands handled_commands keeps from being
	// carried out twice).
	HistoryRetention time.Duration
	// LagSampleInterval is how often the status poller records a status
	// whose only change is its lag or retained WAL
	// (CDCQ_LAG_SAMPLE_INTERVAL, a Go duration, default 1m).
	LagSampleInterval time.Duration
	// CheckpointInterval is how often the embedded engine checkpoints a
	// live cached query's state into the job-state database, so that a
	// restart goes on from there instead of reading the change topics
	// from their start (CDCQ_CHECKPOINT_INTERVAL, a Go duration, default
	// 30s; "off" gives -1: no checkpoints). A query also checkpoints after
	// every 100,000 source records.
	CheckpointInterval time.Duration
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
	// KafkaTLS turns on TLS to Kafka (CDCQ_KAFKA_TLS, true or false;
	// setting any of the files below turns it on too).
	KafkaTLS bool
	// KafkaTLSCAFile is a PEM file of the authorities that sign the
	// brokers' certificates (CDCQ_KAFKA_TLS_CA_FILE; empty: the system's).
	KafkaTLSCAFile string
	// KafkaTLSCertFile and KafkaTLSKeyFile are a client certificate and
	// its key, both PEM (CDCQ_KAFKA_TLS_CERT_FILE, CDCQ_KAFKA_TLS_KEY_FILE;
	// both or neither).
	KafkaTLSCertFile string
	KafkaTLSKeyFile  string
	// KafkaSASLMechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	// (CDCQ_KAFKA_SASL_MECHANISM; empty: no SASL). It needs
	// KafkaSASLUsername and KafkaSASLPassword (CDCQ_KAFKA_SASL_USERNAME,
	// CDCQ_KAFKA_SASL_PASSWORD).
	KafkaSASLMechanism string
	KafkaSASLUsername  string
	KafkaSASLPassword  Secret
	// FlinkAuthorization is the Authorization header sent to Flink's SQL
	// Gateway and REST API: CDCQ_FLINK_AUTHORIZATION as is, or Basic
	// credentials from CDCQ_FLINK_USERNAME and CDCQ_FLINK_PASSWORD.
	// Empty: none.
	FlinkAuthorization Secret
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

// Secret is a setting that must not be printed. Its String and GoString
// hide it, so a Config printed whole does not leak it.
type Secret string

// String hides the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "***"
}

// GoString hides the secret from %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Reveal is the secret's value, for the one place that sends it.
func (s Secret) Reveal() string { return string(s) }

// FromEnv reads the configuration through getenv (os.Getenv in main).
// Errors name the variable.
func FromEnv(getenv func(string) string) (Config, error) {
	if getenv("PGSERVICE") != "" {
		// The PostgreSQL driver applies the service to every connection
		// string, a caller's source too, and it cannot be kept out.
		return Config{}, errors.New("PGSERVICE is set: cdcq cannot keep its service out of the connections it makes to callers' databases; unset it and give the job-state database in CDCQ_DATABASE_URL")
	}
	c := Config{
		HTTPAddr:           or(getenv("CDCQ_HTTP_ADDR"), "127.0.0.1:7000"),
		DataDir:            or(getenv("CDCQ_DATA_DIR"), ".cdcq"),
		KafkaBrokers:       list(getenv("CDCQ_KAFKA_BROKERS")),
		DatabaseURL:        strings.TrimSpace(getenv("CDCQ_DATABASE_URL")),
		ConnectURL:         strings.TrimSpace(getenv("CDCQ_CONNECT_URL")),
		ConnectSecretsDir:  strings.TrimSpace(getenv("CDCQ_CONNECT_SECRETS_DIR")),
		FlinkGatewayURL:    strings.TrimSpace(getenv("CDCQ_FLINK_SQL_GATEWAY_URL")),
		FlinkRESTURL:       strings.TrimSpace(getenv("CDCQ_FLINK_REST_URL")),
		FlinkKafkaBrokers:  list(getenv("CDCQ_FLINK_KAFKA_BROKERS")),
		SecretKey:          strings.TrimSpace(getenv("CDCQ_SECRET_KEY")),
		SecretKeysPrevious: strings.TrimSpace(getenv("CDCQ_SECRET_KEYS_PREVIOUS")),
		APITokens:          list(getenv("CDCQ_API_TOKENS")),
		LogLevel:           or(getenv("CDCQ_LOG_LEVEL"), "info"),
		KafkaNamespace:     strings.TrimSpace(getenv("CDCQ_KAFKA_NAMESPACE")),
		SourceAllow:        list(getenv("CDCQ_SOURCE_ALLOW")),
		SourceDeny:         list(getenv("CDCQ_SOURCE_DENY")),
	}
	var err error
	if c.StatusInterval, err = duration(getenv, "CDCQ_STATUS_INTERVAL", 10*time.Second); err != nil {
		return Config{}, err
	}
	if c.LeaseTimeout, err = duration(getenv, "CDCQ_LEASE_TIMEOUT", pgsession.DefaultTimeout); err != nil {
		return Config{}, err
	}
	if c.LeaseTimeout < pgsession.MinTimeout {
		return Config{}, fmt.Errorf("CDCQ_LEASE_TIMEOUT is %s; want at least %s", c.LeaseTimeout, pgsession.MinTimeout)
	}
	if c.ChangeTopicRetention, err = retention(getenv, "CDCQ_CHANGE_TOPIC_RETENTION"); err != nil {
		return Config{}, err
	}
	if c.HistoryRetention, err = duration(getenv, "CDCQ_HISTORY_RETENTION", 14*24*time.Hour); err != nil {
		return Config{}, err
	}
	if c.LagSampleInterval, err = duration(getenv, "CDCQ_LAG_SAMPLE_INTERVAL", time.Minute); err != nil {
		return Config{}, err
	}
	if strings.TrimSpace(getenv("CDCQ_CHECKPOINT_INTERVAL")) == "off" {
		c.CheckpointInterval = -1
	} else if c.CheckpointInterval, err = duration(getenv, "CDCQ_CHECKPOINT_INTERVAL", 30*time.Second); err != nil {
		return Config{}, fmt.Errorf("%w, or off", err)
	}
	p, err := integer(getenv, "CDCQ_TOPIC_PARTITIONS", 12, 1, 10000)
	if err != nil {
		return Config{}, err
	}
	c.Partitions = int32(p)
	if c.APIWriteBurst, err = integer(getenv, "CDCQ_API_WRITE_BURST", 200, 1, 1000000); err != nil {
		return Config{}, err
	}
	if v := strings.TrimSpace(getenv("CDCQ_API_WRITE_RATE")); v == "" {
		c.APIWriteRate = 50
	} else if c.APIWriteRate, err = strconv.ParseFloat(v, 64); err != nil || !(c.APIWriteRate > 0 && c.APIWriteRate <= 1e6) {
		return Config{}, fmt.Errorf("CDCQ_API_WRITE_RATE is %q; want requests per second, a number above 0 such as 50 or 0.5", v)
	}
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
	if c.ConnectAuthorization, err = authorization(getenv, "CONNECT"); err != nil {
		return Config{}, err
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
	if err := c.readKafkaSecurity(getenv); err != nil {
		return Config{}, err
	}
	if c.FlinkAuthorization, err = authorization(getenv, "FLINK"); err != nil {
		return Config{}, err
	}
	for _, v := range []struct {
		name    string
		entries []string
	}{{"CDCQ_SOURCE_ALLOW", c.SourceAllow}, {"CDCQ_SOURCE_DENY", c.SourceDeny}} {
		for _, e := range v.entries {
			if err := sourcepolicy.CheckEntry(e); err != nil {
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

// readKafkaSecurity reads the CDCQ_KAFKA_TLS* and CDCQ_KAFKA_SASL_*
// variables. It checks only what the strings alone say (CDCQ_KAFKA_TLS and
// the files named); kafkasec.Load, at start-up, reads the files and checks
// the settings as a whole.
func (c *Config) readKafkaSecurity(getenv func(string) string) error {
	c.KafkaTLSCAFile = strings.TrimSpace(getenv("CDCQ_KAFKA_TLS_CA_FILE"))
	c.KafkaTLSCertFile = strings.TrimSpace(getenv("CDCQ_KAFKA_TLS_CERT_FILE"))
	c.KafkaTLSKeyFile = strings.TrimSpace(getenv("CDCQ_KAFKA_TLS_KEY_FILE"))
	c.KafkaSASLMechanism = strings.ToUpper(strings.TrimSpace(getenv("CDCQ_KAFKA_SASL_MECHANISM")))
	c.KafkaSASLUsername = strings.TrimSpace(getenv("CDCQ_KAFKA_SASL_USERNAME"))
	c.KafkaSASLPassword = Secret(getenv("CDCQ_KAFKA_SASL_PASSWORD"))

	anyFile := ""
	for _, f := range []struct{ name, path string }{
		{"CDCQ_KAFKA_TLS_CA_FILE", c.KafkaTLSCAFile},
		{"CDCQ_KAFKA_TLS_CERT_FILE", c.KafkaTLSCertFile},
		{"CDCQ_KAFKA_TLS_KEY_FILE", c.KafkaTLSKeyFile},
	} {
		if f.path != "" {
			anyFile = f.name
			break
		}
	}
	v := strings.TrimSpace(getenv("CDCQ_KAFKA_TLS"))
	if v == "" {
		c.KafkaTLS = anyFile != ""
		return nil
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("CDCQ_KAFKA_TLS is %q; want true or false", v)
	}
	if !on && anyFile != "" {
		return fmt.Errorf("CDCQ_KAFKA_TLS is false but %s is set; a TLS file implies TLS", anyFile)
	}
	c.KafkaTLS = on
	return nil
}

// authorization is the Authorization header for a service's REST API
// from CDCQ_<service>_AUTHORIZATION as it is, or basic authentication with
// CDCQ_<service>_USERNAME and CDCQ_<service>_PASSWORD (taken as they are:
// spaces may belong to them); empty without either. Errors name the
// variables, never their values.
func authorization(getenv func(string) string, service string) (Secret, error) {
	v := func(name string) string { return "CDCQ_" + service + "_" + name }
	header := strings.TrimSpace(getenv(v("AUTHORIZATION")))
	user, pass := getenv(v("USERNAME")), getenv(v("PASSWORD"))
	switch {
	case header != "" && (user != "" || pass != ""):
		return "", fmt.Errorf("set %s or %s and %s, not both", v("AUTHORIZATION"), v("USERNAME"), v("PASSWORD"))
	case header != "":
		if strings.ContainsAny(header, "\r\n") {
			return "", fmt.Errorf("%s must be one line", v("AUTHORIZATION"))
		}
		return Secret(header), nil
	case user == "" && pass == "":
		return "", nil
	case user == "" || pass == "":
		return "", fmt.Errorf("set both %s and %s, or neither", v("USERNAME"), v("PASSWORD"))
	case strings.Contains(user, ":"):
		return "", fmt.Errorf("%s must not contain ':' (basic authentication separates it from the password with one)", v("USERNAME"))
	}
	return Secret("Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))), nil
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

// retention reads a topic retention: a positive Go duration, or -1 (the
// default) for records kept for ever.
func retention(getenv func(string) string, name string) (time.Duration, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" || v == "-1" {
		return -1, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Millisecond {
		return 0, fmt.Errorf("%s is %q; want a Go duration of at least 1ms such as 720h, or -1 to keep records for ever", name, v)
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
