package debezium_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdcq/cdcq/handlers"
	"github.com/cdcq/cdcq/internal/debezium"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/names"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fakePassword is not a real credential; tests check it never leaks into
// errors.
const fakePassword = "fake-pw-0123456789"

func specFor(env, connString string) handlers.CaptureSpec {
	return handlers.CaptureSpec{
		EnvironmentID:    env,
		ConnectionString: connString,
		ConnectorName:    names.ConnectorName(env),
		SlotName:         names.SlotName(env),
		PublicationName:  names.PublicationName(env),
		TopicPrefix:      names.TopicPrefix(env),
	}
}

func TestConnectorConfigGolden(t *testing.T) {
	spec := specFor("env1", "postgres://shop_owner:"+fakePassword+"@db.example.com:6543/shop?sslmode=require")
	cfg, err := debezium.ConnectorConfig(spec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(cfg, "", "  ") // map keys come out sorted
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "connector_config.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("generated config differs from %s (run go test -update if the change is intended)\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestConnectorConfig(t *testing.T) {
	tests := []struct {
		name     string
		spec     handlers.CaptureSpec
		want     map[string]string // keys that must have these values
		absent   []string          // keys that must not be set
		terminal bool
	}{
		{
			name:   "default_port_and_no_sslmode",
			spec:   specFor("env2", "postgres://u:"+fakePassword+"@10.0.0.7/app"),
			want:   map[string]string{"database.hostname": "10.0.0.7", "database.port": "5432", "database.dbname": "app", "database.user": "u", "database.password": fakePassword, "topic.prefix": "env2", "slot.name": "cdcq_env2", "publication.name": "cdcq_env2"},
			absent: []string{"database.sslmode", "name"},
		},
		{
			name: "sslmode_is_passed_on",
			spec: specFor("env3", "postgresql://u:"+fakePassword+"@db:5433/app?sslmode=verify-full"),
			want: map[string]string{"database.sslmode": "verify-full", "database.port": "5433"},
		},
		{
			name: "hyphenated_environment_gets_a_valid_slot_name",
			spec: specFor("Env-4", "postgres://u:"+fakePassword+"@db/app"),
			want: map[string]string{"slot.name": names.SlotName("Env-4"), "topic.prefix": "Env-4"},
		},
		{
			name:     "unparsable_connection_string",
			spec:     specFor("env5", "host=db password="+fakePassword),
			terminal: true,
		},
		{
			name:     "missing_slot_name",
			spec:     func() handlers.CaptureSpec { s := specFor("env6", "postgres://u@db/app"); s.SlotName = ""; return s }(),
			terminal: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := debezium.ConnectorConfig(tt.spec)
			if tt.terminal {
				if !jobs.IsTerminal(err) {
					t.Fatalf("err = %v, want a terminal error", err)
				}
				if strings.Contains(err.Error(), fakePassword) {
					t.Fatalf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if cfg[k] != v {
					t.Errorf("%s = %q, want %q", k, cfg[k], v)
				}
			}
			for _, k := range tt.absent {
				if _, ok := cfg[k]; ok {
					t.Errorf("%s is set to %q, want it absent", k, cfg[k])
				}
			}
		})
	}
}
