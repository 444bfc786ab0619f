package config

import (
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
		{name: "half_flink", env: map[string]string{"CDCQ_FLINK_SQL_GATEWAY_URL": "http://gw:8083"}, wantErr: "both"},
		{name: "bad_interval", env: map[string]string{"CDCQ_STATUS_INTERVAL": "soon"}, wantErr: "CDCQ_STATUS_INTERVAL"},
		{name: "bad_partitions", env: map[string]string{"CDCQ_TOPIC_PARTITIONS": "0"}, wantErr: "CDCQ_TOPIC_PARTITIONS"},
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
