package service

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/kafkabus"
)

// TestEmbeddedSourcePolicyRefusesLoopbackByDefault runs the workers as
// `cdcq worker` wires them from an environment without CDCQ_SOURCE_ALLOW:
// a source on the test server fails with the policy's reason, which names
// the variable that allows it, and no password. (The test server is both
// on loopback and the job-state database's server; the job-state rule is
// checked first.)
func TestEmbeddedSourcePolicyRefusesLoopbackByDefault(t *testing.T) {
	broker, err := kafkabus.StartEmbedded("", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	cfg, err := config.FromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.SourceAllow) != 0 {
		t.Fatalf("default CDCQ_SOURCE_ALLOW = %v, want nothing", cfg.SourceAllow)
	}
	base := config.Config{KafkaBrokers: broker.Brokers(), SourceAllow: []string{}}
	s := startSystemOn(t, base, func(inf *Infra, cfg config.Config, logger *slog.Logger) []WorkerDeps {
		deps, err := Engines(cfg, inf, logger)
		if err != nil {
			t.Fatal(err)
		}
		return []WorkerDeps{deps}
	})
	src, _ := sourceDatabase(t)
	env := uniqueEnv("pol")
	body := map[string]string{"connectionString": src, "environmentId": env}
	if res := s.postJSON("/createDatabaseConnection", body); res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	m := s.waitForStatus(src, env, "FAILED", func(m map[string]any) bool { return m["status"] == "FAILED" })
	reason, _ := m["reason"].(string)
	if !strings.Contains(reason, "cdcq's source policy refuses") || !strings.Contains(reason, "CDCQ_SOURCE_ALLOW=") {
		t.Errorf("reason = %q, want a policy refusal naming CDCQ_SOURCE_ALLOW", reason)
	}
	if strings.Contains(reason, knownPassword) {
		t.Errorf("reason repeats the password")
	}
}
