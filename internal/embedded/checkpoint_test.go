package embedded

import (
	"log/slog"
	"testing"
	"time"
)

// A run that stops does not wait for a checkpoint write longer than
// stopWait: the write is cancelled and forgotten. One already written is
// collected, not cancelled.
func TestCheckpointStopAbandonsAWriteUnderWay(t *testing.T) {
	cancelled := false
	c := &checkpointer{log: slog.New(slog.DiscardHandler), done: make(chan error, 1),
		cancel: func() { cancelled = true }, stopWait: time.Millisecond}
	c.stop() // nothing is ever sent on done: without the cap this blocks
	if !cancelled {
		t.Error("the write under way was not cancelled")
	}
	if c.done != nil {
		t.Error("the abandoned write is still waited for")
	}

	written := &checkpointer{log: slog.New(slog.DiscardHandler), done: make(chan error, 1),
		cancel: func() { t.Error("a write that ended was cancelled") }, stopWait: time.Hour}
	written.done <- nil
	written.stop()
	if written.done != nil {
		t.Error("the ended write was not collected")
	}
}
