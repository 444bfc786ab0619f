package config

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", env: map[string]string{}, check: func(t *testing.T, c Config) {
			if c.HTTPAddr != "127.0.0.1:7000" || c.DataDir != ".cdcq" || c.StatusInterval != 10*time.Second || c.Partitions != 12 {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{name: "lists", env: map[string]string{"CDCQ_KAFKA_BROKERS": "a:9092, b:9092", "CDCQ_API_TOKENS": "t1,,t2"}, check: func(t *testing.T, c Config) {
			if len(c.KafkaBrokers) != 2 || c.KafkaBrokers[1] != "b:9092" || len(c.APITokens) != 2 {
				t.Errorf("lists = %v %v", c.KafkaBrokers, c.APITokens)
			}
		}},
		{name: "bad_connect_url", env: map[string]string{"CDCQ_CONNECT_URL": "localhost:8083"}, wantErr: "CDCQ_CONNECT_URL"},
		{name: "pgservice", env: map[string]string{"PGSERVICE": "prod"}, wantErr: "PGSERVICE is set"},
		{name: "half_flink", env: map[string]string{"CDCQ_FLINK_SQL_GATEWAY_URL": "http://gw:8083"}, wantErr: "both"},
		{name: "bad_interval", env: map[string]string{"CDCQ_STATUS_INTERVAL": "soon"}, wantErr: "CDCQ_STATUS_INTERVAL"},
		{name: "short_lease", env: map[string]string{"CDCQ_LEASE_TIMEOUT": "1s"}, wantErr: "CDCQ_LEASE_TIMEOUT is 1s; want at least 2s"},
		{name: "lease", env: map[string]string{"CDCQ_LEASE_TIMEOUT": "20s"}, check: func(t *testing.T, c Config) {
			if c.LeaseTimeout != 20*time.Second {
				t.Errorf("lease timeout %s", c.LeaseTimeout)
			}
		}},
		{name: "retention_defaults", env: map[string]string{}, check: func(t *testing.T, c Config) {
			if c.ChangeTopicRetention != -1 || c.HistoryRetention != 14*24*time.Hour || c.LagSampleInterval != time.Minute {
				t.Errorf("change topic retention %v, history retention %v, lag sample interval %v", c.ChangeTopicRetention, c.HistoryRetention, c.LagSampleInterval)
			}
		}},
		{name: "retentions", env: map[string]string{"CDCQ_CHANGE_TOPIC_RETENTION": "720h", "CDCQ_HISTORY_RETENTION": "48h", "CDCQ_LAG_SAMPLE_INTERVAL": "30s"}, check: func(t *testing.T, c Config) {
			if c.ChangeTopicRetention != 720*time.Hour || c.HistoryRetention != 48*time.Hour || c.LagSampleInterval != 30*time.Second {
				t.Errorf("change topic retention %v, history retention %v, lag sample interval %v", c.ChangeTopicRetention, c.HistoryRetention, c.LagSampleInterval)
			}
		}},
		{name: "change_topic_retention_forever", env: map[string]string{"CDCQ_CHANGE_TOPIC_RETENTION": "-1"}, check: func(t *testing.T, c Config) {
			if c.ChangeTopicRetention != -1 {
				t.Errorf("change topic retention %v, want -1", c.ChangeTopicRetention)
			}
		}},
		{name: "bad_change_topic_retention", env: map[string]string{"CDCQ_CHANGE_TOPIC_RETENTION": "7d"}, wantErr: "CDCQ_CHANGE_TOPIC_RETENTION"},
		{name: "bad_history_retention", env: map[string]string{"CDCQ_HISTORY_RETENTION": "-5m"}, wantErr: "CDCQ_HISTORY_RETENTION"},
		{name: "bad_lag_sample_interval", env: map[string]string{"CDCQ_LAG_SAMPLE_INTERVAL": "often"}, wantErr: "CDCQ_LAG_SAMPLE_INTERVAL"},
		{name: "bad_partitions", env: map[string]string{"CDCQ_TOPIC_PARTITIONS": "0"}, wantErr: "CDCQ_TOPIC_PARTITIONS"},
		{name: "write_rate", env: map[string]string{"CDCQ_API_WRITE_RATE": "0.5", "CDCQ_API_WRITE_BURST": "3", "CDCQ_SECRET_KEYS_PREVIOUS": "a,b"}, check: func(t *testing.T, c Config) {
			if c.APIWriteRate != 0.5 || c.APIWriteBurst != 3 || c.SecretKeysPrevious != "a,b" {
				t.Errorf("rate %v burst %d previous %q", c.APIWriteRate, c.APIWriteBurst, c.SecretKeysPrevious)
			}
		}},
		{name: "write_rate_default", env: map[string]string{}, check: func(t *testing.T, c Config) {
			if c.APIWriteRate != 50 || c.APIWriteBurst != 200 {
				t.Errorf("rate %v burst %d", c.APIWriteRate, c.APIWriteBurst)
			}
		}},
		{name: "bad_write_rate", env: map[string]string{"CDCQ_API_WRITE_RATE": "0"}, wantErr: "CDCQ_API_WRITE_RATE"},
		{name: "nan_write_rate", env: map[string]string{"CDCQ_API_WRITE_RATE": "NaN"}, wantErr: "CDCQ_API_WRITE_RATE"},
		{name: "bad_write_burst", env: map[string]string{"CDCQ_API_WRITE_BURST": "-1"}, wantErr: "CDCQ_API_WRITE_BURST"},
		{name: "connect_security", env: map[string]string{"CDCQ_CONNECT_SECRETS_DIR": " /run/cdcq-secrets ", "CDCQ_CONNECT_USERNAME": "cdcq", "CDCQ_CONNECT_PASSWORD": " pw with spaces"},
			check: func(t *testing.T, c Config) {
				want := "Basic " + base64.StdEncoding.EncodeToString([]byte("cdcq: pw with spaces"))
				if c.ConnectSecretsDir != "/run/cdcq-secrets" || c.ConnectAuthorization.Reveal() != want {
					t.Errorf("connect security = %q %q", c.ConnectSecretsDir, c.ConnectAuthorization.Reveal())
				}
			}},
		{name: "username_without_password", env: map[string]string{"CDCQ_CONNECT_USERNAME": "cdcq"}, wantErr: "CDCQ_CONNECT_PASSWORD"},
		{name: "authorization_and_basic", env: map[string]string{"CDCQ_CONNECT_AUTHORIZATION": "Bearer x", "CDCQ_CONNECT_USERNAME": "u", "CDCQ_CONNECT_PASSWORD": "p"}, wantErr: "not both"},
		{name: "authorization_two_lines", env: map[string]string{"CDCQ_CONNECT_AUTHORIZATION": "Bearer x\nX-Evil: 1"}, wantErr: "one line"},
		{name: "source_lists", env: map[string]string{"CDCQ_SOURCE_ALLOW": "loopback, 10.0.0.0/8,db.internal,jobstate", "CDCQ_SOURCE_DENY": "10.9.0.0/16,::1"}, check: func(t *testing.T, c Config) {
			if len(c.SourceAllow) != 4 || c.SourceAllow[1] != "10.0.0.0/8" || len(c.SourceDeny) != 2 {
				t.Errorf("source lists = %v %v", c.SourceAllow, c.SourceDeny)
			}
		}},
		{name: "source_lists_default_empty", env: map[string]string{}, check: func(t *testing.T, c Config) {
			if len(c.SourceAllow) != 0 || len(c.SourceDeny) != 0 {
				t.Errorf("source lists = %v %v, want none", c.SourceAllow, c.SourceDeny)
			}
		}},
		{name: "bad_source_allow", env: map[string]string{"CDCQ_SOURCE_ALLOW": "loopback,10.0.0.0/40"}, wantErr: `CDCQ_SOURCE_ALLOW entry "10.0.0.0/40"`},
		{name: "bad_source_deny", env: map[string]string{"CDCQ_SOURCE_DENY": "no such host"}, wantErr: `CDCQ_SOURCE_DENY entry "no such host"`},
		{name: "bad_log_level", env: map[string]string{"CDCQ_LOG_LEVEL": "loud"}, wantErr: "CDCQ_LOG_LEVEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// TestKafkaSecurity: the CDCQ_KAFKA_TLS* and CDCQ_KAFKA_SASL_* variables,
// their defaults and the errors the strings alone show; kafkasec.Load
// checks the files and the settings as a whole (TestLoadErrors there).
func TestKafkaSecurity(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	sasl := map[string]string{"CDCQ_KAFKA_SASL_MECHANISM": "scram-sha-256", "CDCQ_KAFKA_SASL_USERNAME": "u", "CDCQ_KAFKA_SASL_PASSWORD": "hunter2"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range sasl {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}

	c := fromMap(t, nil)
	if c.KafkaTLS || c.KafkaSASLMechanism != "" {
		t.Errorf("no settings: tls %v mechanism %q", c.KafkaTLS, c.KafkaSASLMechanism)
	}
	c = fromMap(t, map[string]string{"CDCQ_KAFKA_TLS_CA_FILE": ca})
	if !c.KafkaTLS || c.KafkaTLSCAFile != ca {
		t.Errorf("CA file: tls %v ca %q; a file implies TLS", c.KafkaTLS, c.KafkaTLSCAFile)
	}
	c = fromMap(t, with(map[string]string{"CDCQ_KAFKA_TLS": "true"}))
	if !c.KafkaTLS || c.KafkaSASLMechanism != "SCRAM-SHA-256" || c.KafkaSASLUsername != "u" || c.KafkaSASLPassword.Reveal() != "hunter2" {
		t.Errorf("SASL over TLS: %+v", c)
	}
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, "hunter2") {
		t.Errorf("a printed Config shows the password: %s", s)
	}

	for _, tt := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"bad tls", map[string]string{"CDCQ_KAFKA_TLS": "yes please"}, []string{"CDCQ_KAFKA_TLS"}},
		{"tls off with file", map[string]string{"CDCQ_KAFKA_TLS": "false", "CDCQ_KAFKA_TLS_CA_FILE": ca}, []string{"CDCQ_KAFKA_TLS", "CDCQ_KAFKA_TLS_CA_FILE"}},
	} {
		_, err := FromEnv(func(k string) string { return tt.env[k] })
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not name %q", tt.name, err, w)
			}
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error %q shows the password", tt.name, err)
		}
	}
}

// TestFlinkAuthorization: a whole header, or basic credentials, not both.
func TestFlinkAuthorization(t *testing.T) {
	c := fromMap(t, map[string]string{"CDCQ_FLINK_AUTHORIZATION": "Bearer abc"})
	if c.FlinkAuthorization.Reveal() != "Bearer abc" {
		t.Errorf("header = %q", c.FlinkAuthorization.Reveal())
	}
	c = fromMap(t, map[string]string{"CDCQ_FLINK_USERNAME": "flink", "CDCQ_FLINK_PASSWORD": "pw"})
	if want := "Basic " + base64.StdEncoding.EncodeToString([]byte("flink:pw")); c.FlinkAuthorization.Reveal() != want {
		t.Errorf("basic = %q, want %q", c.FlinkAuthorization.Reveal(), want)
	}
	if c.FlinkAuthorization.String() != "***" {
		t.Errorf("String() = %q, want ***", c.FlinkAuthorization.String())
	}
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"CDCQ_FLINK_AUTHORIZATION": "Bearer x", "CDCQ_FLINK_USERNAME": "u"}, "not both"},
		{map[string]string{"CDCQ_FLINK_USERNAME": "u"}, "CDCQ_FLINK_PASSWORD"},
		{map[string]string{"CDCQ_FLINK_PASSWORD": "hunter2"}, "CDCQ_FLINK_USERNAME"},
		{map[string]string{"CDCQ_FLINK_USERNAME": "a:b", "CDCQ_FLINK_PASSWORD": "hunter2"}, "CDCQ_FLINK_USERNAME"},
	} {
		_, err := FromEnv(func(k string) string { return tt.env[k] })
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%v: error %v, want one naming %s", tt.env, err, tt.want)
		}
	}
}

func fromMap(t *testing.T, env map[string]string) Config {
	t.Helper()
	c, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("FromEnv(%v): %v", env, err)
	}
	return c
}

// A Config printed whole shows none of the credentials it carries.
func TestPrintedConfigHidesCredentials(t *testing.T) {
	c, err := FromEnv(func(k string) string {
		return map[string]string{
			"CDCQ_CONNECT_USERNAME": "cdcq", "CDCQ_CONNECT_PASSWORD": "connect-pw-77",
			"CDCQ_FLINK_AUTHORIZATION": "Bearer flink-token-88",
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	s := fmt.Sprintf("%v %+v %#v", c, c, c)
	for _, secret := range []string{"connect-pw-77", "flink-token-88"} {
		if strings.Contains(s, secret) {
			t.Errorf("printed config shows %q", secret)
		}
	}
	c2, _ := FromEnv(func(k string) string {
		return map[string]string{"CDCQ_CONNECT_AUTHORIZATION": "Bearer connect-token-99"}[k]
	})
	if strings.Contains(fmt.Sprintf("%+v", c2), "connect-token-99") {
		t.Error("printed config shows the Connect Authorization header")
	}
}
