package names

import (
	"regexp"
	"strings"
	"testing"
)

func TestValidateEnvironmentID(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		wantErr string
	}{
		{name: "plain", id: "env1"},
		{name: "uuid", id: "0b8c5a9e-3f1d-4c1e-9a57-1c2b3d4e5f60"},
		{name: "underscore", id: "prod_eu"},
		{name: "empty", id: "", wantErr: "is empty"},
		{name: "dot", id: "a.b", wantErr: `'.' at position 2`},
		{name: "space", id: "a b", wantErr: "position 2"},
		{name: "leading_dash", id: "-a", wantErr: "position 1"},
		{name: "too_long", id: strings.Repeat("a", 49), wantErr: "limit is 48"},
		{name: "unicode", id: "envé", wantErr: "position 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateEnvironmentID(tt.id)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

var slotPattern = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

func TestSlotNameIsValidAndDistinct(t *testing.T) {
	ids := []string{"env1", "a-b", "a_b", "A_B", "0b8c5a9e-3f1d-4c1e-9a57-1c2b3d4e5f60", strings.Repeat("Z", 48)}
	seen := map[string]string{}
	for _, id := range ids {
		s := SlotName(id)
		if !slotPattern.MatchString(s) {
			t.Errorf("SlotName(%q) = %q is not a valid slot name", id, s)
		}
		if other, ok := seen[s]; ok {
			t.Errorf("SlotName(%q) = SlotName(%q) = %q", id, other, s)
		}
		seen[s] = id
		if SlotName(id) != s {
			t.Errorf("SlotName(%q) is not deterministic", id)
		}
	}
	if got := SlotName("env1"); got != "cdcq_env1" {
		t.Errorf("SlotName(env1) = %q, want cdcq_env1", got)
	}
}

func TestControlPlaneNames(t *testing.T) {
	def := ControlPlaneNames("")
	if def.Commands != "cdcq.commands" || def.CommandsDead != "cdcq.commands.dead" || def.Events != "cdcq.events" ||
		def.EventsDead != "cdcq.events.dead" || def.WorkerGroup != "cdcq-worker" || def.ProjectorGroup != "cdcq-projector" {
		t.Fatalf("default names %+v", def)
	}
	if got := ControlPlaneNames("staging"); got.Commands != "staging.commands" || got.WorkerGroup != "staging-worker" {
		t.Fatalf("staging names %+v", got)
	}
	for _, bad := range []string{"", "a.b", "a b", strings.Repeat("x", 101)} {
		if ValidateNamespace(bad) == nil {
			t.Errorf("ValidateNamespace(%q) accepted it", bad)
		}
	}
	if err := ValidateNamespace("team_1-prod"); err != nil {
		t.Errorf("ValidateNamespace refused a good namespace: %v", err)
	}
}
