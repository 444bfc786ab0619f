package jobs

import (
	"errors"
	"fmt"
	"testing"
)

func TestIsTerminal(t *testing.T) {
	base := errors.New("bad config")
	if !IsTerminal(fmt.Errorf("create: %w", Terminal(base))) {
		t.Fatal("wrapped terminal error not recognised")
	}
	if IsTerminal(base) {
		t.Fatal("plain error taken as terminal")
	}
	if Terminal(nil) != nil {
		t.Fatal("Terminal(nil) != nil")
	}
	if !errors.Is(Terminal(base), base) {
		t.Fatal("Terminal hides the cause from errors.Is")
	}
}

func TestCaptureStatusEqual(t *testing.T) {
	a := CaptureStatus{Status: StatusRunning, Connector: &ConnectorState{Name: "c", State: "RUNNING", Tasks: []TaskState{{ID: 0, State: "RUNNING"}}}, Slot: &SlotState{Name: "s", Exists: true, Active: true, RetainedWALBytes: 10}}
	b := a
	b.Connector = &ConnectorState{Name: "c", State: "RUNNING", Tasks: []TaskState{{ID: 0, State: "RUNNING"}}}
	if !a.Equal(b) {
		t.Fatal("equal observations differ")
	}
	b.Connector.Tasks[0].State = "FAILED"
	if a.Equal(b) {
		t.Fatal("a failed task went unnoticed")
	}
	c := a
	c.Slot = &SlotState{Name: "s", Exists: true, Active: true, RetainedWALBytes: 11}
	if a.Equal(c) {
		t.Fatal("retained WAL change went unnoticed")
	}
}
