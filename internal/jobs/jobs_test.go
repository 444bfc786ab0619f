package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
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

func TestCaptureStatusEqualSeesProgressLagAndErrors(t *testing.T) {
	base := CaptureStatus{Status: StatusRunning,
		Snapshot: &SnapshotProgress{RowsCopied: 1, RowsEstimate: 2, Tables: []TableProgress{{Schema: "s", Table: "t", RowsCopied: 1}}},
		Lag:      &StreamLag{Bytes: 10, Seconds: 0.5}}
	same := base
	same.Snapshot = &SnapshotProgress{RowsCopied: 1, RowsEstimate: 2, Tables: []TableProgress{{Schema: "s", Table: "t", RowsCopied: 1}}}
	same.Lag = &StreamLag{Bytes: 10, Seconds: 0.5}
	if !base.Equal(same) {
		t.Fatal("equal observations differ")
	}
	for name, change := range map[string]func(*CaptureStatus){
		"rows_copied":   func(s *CaptureStatus) { s.Snapshot = &SnapshotProgress{RowsCopied: 2, RowsEstimate: 2} },
		"snapshot_gone": func(s *CaptureStatus) { s.Snapshot = nil },
		"lag":           func(s *CaptureStatus) { s.Lag = &StreamLag{Bytes: 11, Seconds: 0.5} },
		"last_error":    func(s *CaptureStatus) { s.LastError = "connection refused" },
		"warnings":      func(s *CaptureStatus) { s.Warnings = []string{"table t: no before-image"} },
	} {
		o := base
		change(&o)
		if base.Equal(o) {
			t.Errorf("%s: change went unnoticed", name)
		}
	}
}

func TestCaptureStatusEqualSeesSchemaChanges(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.FixedZone("CET", 3600))
	base := CaptureStatus{Status: StatusRunning, SchemaChanges: []SchemaChange{
		{LSN: 100, Table: "public.orders", Change: "column region renamed to area", At: at}}}
	// As the read model keeps it: JSON, the time in UTC.
	b, err := json.Marshal(base)
	if err != nil {
		t.Fatal(err)
	}
	var back CaptureStatus
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !base.Equal(back) {
		t.Fatalf("status read back from %s differs", b)
	}
	newer := base
	newer.SchemaChanges = append([]SchemaChange{{LSN: 200, Table: "public.orders", Change: "column note dropped", At: at}}, base.SchemaChanges...)
	if base.Equal(newer) {
		t.Fatal("a new schema change went unnoticed")
	}
}

func TestCaptureStatusSameStateIgnoresOnlyTheFigures(t *testing.T) {
	base := func() CaptureStatus {
		return CaptureStatus{Status: StatusRunning,
			Slot:     &SlotState{Name: "s", Exists: true, Active: true, RetainedWALBytes: 100},
			Snapshot: &SnapshotProgress{Done: false, RowsCopied: 5, RowsEstimate: 10, Tables: []TableProgress{{Schema: "public", Table: "t", RowsCopied: 5}}},
			Lag:      &StreamLag{Bytes: 10, Seconds: 0.5}}
	}
	figures := base()
	figures.Slot.RetainedWALBytes, figures.Lag.Bytes, figures.Lag.Seconds = 9000, 4000, 3
	figures.Snapshot.RowsCopied, figures.Snapshot.Tables[0].RowsCopied, figures.Snapshot.RowsEstimate = 8, 8, 12
	if !base().SameState(figures) || base().Equal(figures) {
		t.Errorf("figures alone: SameState %v (want true), Equal %v (want false)", base().SameState(figures), base().Equal(figures))
	}
	if base().Slot.RetainedWALBytes != 100 {
		t.Error("SameState changed its argument")
	}
	for name, change := range map[string]func(*CaptureStatus){
		"status":        func(s *CaptureStatus) { s.Status = StatusFailed },
		"last error":    func(s *CaptureStatus) { s.LastError = "boom" },
		"warnings":      func(s *CaptureStatus) { s.Warnings = []string{"w"} },
		"snapshot done": func(s *CaptureStatus) { s.Snapshot.Done = true },
		"table done":    func(s *CaptureStatus) { s.Snapshot.Tables[0].Done = true },
		"slot inactive": func(s *CaptureStatus) { s.Slot.Active = false },
		"lag unknown":   func(s *CaptureStatus) { s.Lag.Bytes = -1 },
		"lag appears":   func(s *CaptureStatus) { s.Lag = nil },
		"schema changes": func(s *CaptureStatus) {
			s.SchemaChanges = []SchemaChange{{Table: "public.t", Change: "column x added"}}
		},
	} {
		s := base()
		change(&s)
		if base().SameState(s) {
			t.Errorf("%s: SameState is true", name)
		}
	}
}
