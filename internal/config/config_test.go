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
		{name: "connect_security", env: map[string]string{"CDCQ_CONNECT_SECRETS_DIR": " /run/cdcq-secrets ", "CDCQ_CONNECT_USERNAME": "cdcq", "CDCQ_CONNECT_PASSWORD": " pw with spaces"},
			check: func(t *testing.T, c Config) {
				if c.ConnectSecretsDir != "/run/cdcq-secrets" || c.ConnectUsername != "cdcq" || c.ConnectPassword != " pw with spaces" {
					t.Errorf("connect security = %q %q", c.ConnectSecretsDir, c.ConnectUsername)
				}
			}},
		{name: "relative_secrets_dir", env: map[string]string{"CDCQ_CONNECT_SECRETS_DIR": "secrets"}, wantErr: "CDCQ_CONNECT_SECRETS_DIR"},
		{name: "secrets_dir_with_colon", env: map[string]string{"CDCQ_CONNECT_SECRETS_DIR": "/a:b"}, wantErr: "CDCQ_CONNECT_SECRETS_DIR"},
		{name: "username_without_password", env: map[string]string{"CDCQ_CONNECT_USERNAME": "cdcq"}, wantErr: "CDCQ_CONNECT_PASSWORD"},
		{name: "authorization_and_basic", env: map[string]string{"CDCQ_CONNECT_AUTHORIZATION": "Bearer x", "CDCQ_CONNECT_USERNAME": "u", "CDCQ_CONNECT_PASSWORD": "p"}, wantErr: "not both"},
		{name: "authorization_two_lines", env: map[string]string{"CDCQ_CONNECT_AUTHORIZATION": "Bearer x\nX-Evil: 1"}, wantErr: "one line"},
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
