package capture

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/cdcq/cdcq/internal/dbzjson"
	"github.com/cdcq/cdcq/internal/jobs"
)

func TestStatusFromRow(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fresh, stale := now.Add(-time.Second), now.Add(-time.Hour)
	e := &Engine{cfg: Config{StaleAfter: time.Minute}}
	snap := &jobs.SnapshotProgress{Done: true, RowsCopied: 3, RowsEstimate: 3}
	for _, tc := range []struct {
		name       string
		row        captureRow
		missing    bool
		wantStatus jobs.Status
		wantReason string
	}{
		{name: "not_registered", missing: true, wantStatus: jobs.StatusPending, wantReason: "not registered"},
		{name: "deleted", row: captureRow{Deleted: true}, wantStatus: jobs.StatusDeleting},
		{name: "registered_not_started", row: captureRow{}, wantStatus: jobs.StatusPending, wantReason: "waiting for a worker"},
		{name: "starting", row: captureRow{Phase: phaseStarting, HeartbeatAt: &fresh}, wantStatus: jobs.StatusPending, wantReason: "starting"},
		{name: "snapshot", row: captureRow{Phase: phaseSnapshot, HeartbeatAt: &fresh}, wantStatus: jobs.StatusRunning},
		{name: "streaming", row: captureRow{Phase: phaseStreaming, HeartbeatAt: &fresh, Snapshot: snap}, wantStatus: jobs.StatusRunning},
		{name: "streaming_but_stale", row: captureRow{Phase: phaseStreaming, HeartbeatAt: &stale}, wantStatus: jobs.StatusPending, wantReason: "no worker has reported"},
		{name: "retrying_terminal", row: captureRow{Phase: phaseRetrying, HeartbeatAt: &fresh, LastError: "wal_level is replica", LastErrorTerminal: true},
			wantStatus: jobs.StatusFailed, wantReason: "wal_level is replica"},
		{name: "retrying_transient", row: captureRow{Phase: phaseRetrying, HeartbeatAt: &fresh, LastError: "connection refused"},
			wantStatus: jobs.StatusPending, wantReason: "retrying after: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.status(tc.row, !tc.missing, now)
			if got.Status != tc.wantStatus {
				t.Errorf("status %s, want %s (%+v)", got.Status, tc.wantStatus, got)
			}
			if tc.wantReason != "" && !strings.Contains(got.Reason, tc.wantReason) {
				t.Errorf("reason %q, want it to say %q", got.Reason, tc.wantReason)
			}
			if tc.row.Snapshot != nil && got.Snapshot != tc.row.Snapshot {
				t.Errorf("snapshot progress not reported")
			}
		})
	}
}

func TestAckQueueConfirmsOnlyAcknowledgedPrefix(t *testing.T) {
	p := &producer{}
	var q ackQueue
	q.confirmed = 100
	b1, b2, b3 := p.newBatch(time.Now()), p.newBatch(time.Now()), p.newBatch(time.Now())
	b1.pending.Add(2)
	b2.pending.Add(1)
	b1.end, b2.end, b3.end = 200, 300, 400
	q.push(b1)
	q.push(b2)
	q.push(b3) // a keepalive position: nothing to wait for
	if got := q.advance(); got != 100 {
		t.Fatalf("nothing acknowledged: confirmed %s", got)
	}
	b2.ack(nil, nil) // acknowledged out of order
	if got := q.advance(); got != 100 {
		t.Fatalf("later batch acknowledged first: confirmed %s", got)
	}
	b1.ack(nil, nil)
	b1.ack(nil, nil)
	if got := q.advance(); got != pglogrepl.LSN(400) {
		t.Fatalf("all acknowledged: confirmed %s, want the last batch's end", got)
	}
	if _, ok := q.oldest(); ok {
		t.Fatal("oldest unacknowledged reported with none left")
	}
	b4 := p.newBatch(time.Now())
	b4.pending.Add(1)
	b4.end = 500
	q.push(b4)
	b4.ack(nil, errors.New("broker gone"))
	if p.failed() == nil {
		t.Fatal("produce error not recorded")
	}
	// A record that failed is not acknowledged: the position stays before
	// it, so that the capture reads it again.
	b5 := p.newBatch(time.Now())
	b5.end = 600
	q.push(b5)
	if got := q.advance(); got != pglogrepl.LSN(400) {
		t.Fatalf("a batch with a failed record: confirmed %s, want 0/190", got)
	}
}

func TestTupleValuesFillsUnchangedToastFromOldRow(t *testing.T) {
	old := []dbzjson.Value{ptr("1"), ptr("big value")}
	tuple := &pglogrepl.TupleData{Columns: []*pglogrepl.TupleDataColumn{
		{DataType: pglogrepl.TupleDataTypeText, Data: []byte("1")},
		{DataType: pglogrepl.TupleDataTypeToast},
	}}
	got := tupleValues(tuple, old)
	if *got[0] != "1" || got[1] != old[1] {
		t.Errorf("with old row: %v", got)
	}
	got = tupleValues(tuple, nil)
	if got[1] != dbzjson.Unchanged {
		t.Errorf("without old row: %v, want dbzjson.Unchanged", got[1])
	}
	null := tupleValues(&pglogrepl.TupleData{Columns: []*pglogrepl.TupleDataColumn{{DataType: pglogrepl.TupleDataTypeNull}}}, nil)
	if null[0] != nil {
		t.Errorf("NULL became %v", null[0])
	}
}

func TestKeyChanged(t *testing.T) {
	rs := &relState{keys: []int{0}}
	for _, tc := range []struct {
		name       string
		old, after []dbzjson.Value
		want       bool
	}{
		{"same_key", []dbzjson.Value{ptr("1"), ptr("a")}, []dbzjson.Value{ptr("1"), ptr("b")}, false},
		{"new_key", []dbzjson.Value{ptr("1"), ptr("a")}, []dbzjson.Value{ptr("2"), ptr("a")}, true},
		{"old_key_unknown", []dbzjson.Value{nil, ptr("a")}, []dbzjson.Value{ptr("2"), ptr("a")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := keyChanged(rs, tc.old, tc.after); got != tc.want {
				t.Errorf("keyChanged = %v, want %v", got, tc.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestCanonicalKey(t *testing.T) {
	same := [][2]string{
		{`{"id":1}`, `{"id":1}`},
		{`{"a":1,"b":"x"}`, `{"b":"x","a":1}`},
		{`{"a":1, "b":"x"}`, `{"a":1,"b":"x"}`},
		{`{"s":"a,b"}`, `{"s":"a,b"}`},
		{`{"s": "<a>"}`, `{"s":"<a>"}`},
		{`{"s":"\u00e9"}`, `{"s":"é"}`},
	}
	for _, c := range same {
		x, err := canonicalKey([]byte(c[0]))
		if err != nil {
			t.Fatal(err)
		}
		y, err := canonicalKey([]byte(c[1]))
		if err != nil {
			t.Fatal(err)
		}
		if x != y {
			t.Errorf("%s and %s differ", c[0], c[1])
		}
	}
	differ := [][2]string{{`{"id":1}`, `{"id":2}`}, {`{"a":1,"b":2}`, `{"a":2,"b":1}`}, {`{"id":"1"}`, `{"id":1}`}}
	for _, c := range differ {
		x, _ := canonicalKey([]byte(c[0]))
		y, _ := canonicalKey([]byte(c[1]))
		if x == y {
			t.Errorf("%s and %s are the same", c[0], c[1])
		}
	}
	if _, err := canonicalKey([]byte(`{"a":1,`)); err == nil {
		t.Error("a broken key was accepted")
	}
}

func TestRecordOp(t *testing.T) {
	for value, want := range map[string]string{
		`{"before":null,"after":{"op":"x"},"source":{},"transaction":null,"op":"c","ts_ms":1}`: "c",
		`{"before":{"id":1},"after":null,"source":{},"transaction":null,"op":"d","ts_ms":1}`:   "d",
		`{"op":"t"}`: "t",
		`{}`:         "",
	} {
		if got := recordOp([]byte(value)); got != want {
			t.Errorf("recordOp(%s) = %q, want %q", value, got, want)
		}
	}
}
