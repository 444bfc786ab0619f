package flink

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Defaults for the zero values of GatewayConfig and JobManagerConfig.
const (
	DefaultRequestTimeout   = 10 * time.Second
	DefaultAPIVersion       = "v2"
	DefaultOperationTimeout = 2 * time.Minute
	DefaultPollInterval     = 50 * time.Millisecond
	DefaultMaxPollInterval  = time.Second
)

// GatewayConfig configures a Gateway.
type GatewayConfig struct {
	// URL is the base URL of the SQL Gateway's REST endpoint, for example
	// http://sql-gateway:8083 (the gateway's default port, which is also
	// Kafka Connect's). Required.
	URL string
	// APIVersion is the path prefix of every call: "v1", "v2", ... Default
	// "v2", served by Flink 1.17 and later; the calls the client makes
	// mean the same in every version.
	APIVersion string
	// RequestTimeout bounds each request. Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// OperationTimeout bounds how long Run waits for one statement's
	// operation to leave PENDING/RUNNING. An INSERT's operation finishes
	// once the job is submitted (not when the job ends), which takes
	// seconds. Default DefaultOperationTimeout.
	OperationTimeout time.Duration
	// PollInterval is the first wait between two status requests; it
	// doubles up to MaxPollInterval. Defaults DefaultPollInterval and
	// DefaultMaxPollInterval.
	PollInterval    time.Duration
	MaxPollInterval time.Duration
	// HTTPClient sends the requests. Default: a client of its own with no
	// overall timeout (RequestTimeout applies per request).
	HTTPClient *http.Client
	// Header is added to every request (an Authorization header for a
	// gateway behind an authenticating proxy). Its values never appear in
	// errors.
	Header http.Header
}

func (c *GatewayConfig) setDefaults() {
	if c.APIVersion == "" {
		c.APIVersion = DefaultAPIVersion
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.OperationTimeout == 0 {
		c.OperationTimeout = DefaultOperationTimeout
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.MaxPollInterval == 0 {
		c.MaxPollInterval = DefaultMaxPollInterval
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
}

// Validate reports a configuration that cannot work.
func (c GatewayConfig) Validate() error {
	if err := validateURL("flink gateway", c.URL); err != nil {
		return err
	}
	if len(c.APIVersion) < 2 || c.APIVersion[0] != 'v' {
		return fmt.Errorf("flink gateway: APIVersion %q is not of the form v1, v2, ...", c.APIVersion)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"RequestTimeout", c.RequestTimeout},
		{"OperationTimeout", c.OperationTimeout},
		{"PollInterval", c.PollInterval},
		{"MaxPollInterval", c.MaxPollInterval},
	} {
		if d.v < 0 {
			return fmt.Errorf("flink gateway: %s %s is negative", d.name, d.v)
		}
	}
	if c.MaxPollInterval > 0 && c.PollInterval > c.MaxPollInterval {
		return fmt.Errorf("flink gateway: PollInterval %s exceeds MaxPollInterval %s", c.PollInterval, c.MaxPollInterval)
	}
	return nil
}

// JobManagerConfig configures a JobManager.
type JobManagerConfig struct {
	// URL is the base URL of the JobManager's REST API (the one the web UI
	// uses), for example http://jobmanager:8081. Required.
	URL string
	// RequestTimeout bounds each request. Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// HTTPClient sends the requests. Default: a client of its own.
	HTTPClient *http.Client
	// Header is added to every request; its values never appear in errors.
	Header http.Header
}

func (c *JobManagerConfig) setDefaults() {
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
}

// Validate reports a configuration that cannot work.
func (c JobManagerConfig) Validate() error {
	if err := validateURL("flink jobmanager", c.URL); err != nil {
		return err
	}
	if c.RequestTimeout < 0 {
		return fmt.Errorf("flink jobmanager: RequestTimeout %s is negative", c.RequestTimeout)
	}
	return nil
}

func validateURL(who, raw string) error {
	if raw == "" {
		return fmt.Errorf("%s: URL is required", who)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New(who + ": URL must be an http:// or https:// URL with a host")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New(who + ": URL must not have a query or fragment")
	}
	return nil
}
