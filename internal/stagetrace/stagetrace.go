// Package stagetrace records, when enabled, how long after its source
// commit a change reached each stage of the embedded pipeline (capture,
// Kafka, engine, results in Postgres, result topic), for the freshness
// benchmarks. It is off unless CDCQ_TRACE_STAGES is set or Enable is
// called; off, every call is one atomic load.
//
// The commit time is the source database's (pgoutput's commit timestamp,
// or a record's source.ts_us), and the stage's time is the local clock:
// both are the same machine's clock in the benchmarks.
//
// This package must not import other cdcq packages.
package stagetrace

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

var (
	enabled atomic.Bool
	mu      sync.Mutex
	marks   = map[string][]time.Duration{}
)

func init() {
	if os.Getenv("CDCQ_TRACE_STAGES") != "" {
		enabled.Store(true)
	}
}

// Enable turns recording on; Disable turns it off.
func Enable()  { enabled.Store(true) }
func Disable() { enabled.Store(false) }

// On says whether recording is on.
func On() bool { return enabled.Load() }

// Mark records that a change committed at commit reached stage at now.
func Mark(stage string, commit, now time.Time) {
	if !enabled.Load() || commit.IsZero() {
		return
	}
	mu.Lock()
	marks[stage] = append(marks[stage], now.Sub(commit))
	mu.Unlock()
}

// MarkAll records that changes committed at commits (Unix microseconds)
// reached stage at now.
func MarkAll(stage string, commits []int64, now time.Time) {
	if !enabled.Load() || len(commits) == 0 {
		return
	}
	us := now.UnixMicro()
	mu.Lock()
	for _, c := range commits {
		if c > 0 {
			marks[stage] = append(marks[stage], time.Duration(us-c)*time.Microsecond)
		}
	}
	mu.Unlock()
}

// Take returns what was recorded per stage and forgets it.
func Take() map[string][]time.Duration {
	mu.Lock()
	defer mu.Unlock()
	out := marks
	marks = map[string][]time.Duration{}
	return out
}

var (
	sourceBlock = []byte(`"source":{`)
	tsUs        = []byte(`"ts_us":`)
)

// CommitMicros reads source.ts_us (the commit time in Unix microseconds)
// from a Debezium envelope without decoding it: the first ts_us after the
// source block's start. 0 when absent.
func CommitMicros(value []byte) int64 {
	s := bytes.Index(value, sourceBlock)
	if s < 0 {
		return 0
	}
	i := bytes.Index(value[s:], tsUs)
	if i < 0 {
		return 0
	}
	rest := value[s+i+len(tsUs):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	n, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	if err != nil {
		return 0
	}
	return n
}
