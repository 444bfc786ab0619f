package processor_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/flink"
	"github.com/cdcq/cdcq/internal/flink/flinkfake"
	"github.com/cdcq/cdcq/internal/flink/processor"
	"github.com/cdcq/cdcq/internal/jobs"
)

// fakeTopics records what the processor asks of Kafka.
type fakeTopics struct {
	mu      sync.Mutex
	starts  map[string]map[int32]int64
	cleared []string
	forgot  []string
}

func (f *fakeTopics) TruncateStarts(_ context.Context, topics []string) (map[string]map[int32]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]map[int32]int64{}
	for _, t := range topics {
		if s, ok := f.starts[t]; ok {
			out[t] = s
		}
	}
	return out, nil
}

func (f *fakeTopics) ClearQuery(_ context.Context, env, queryID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleared = append(f.cleared, env+"/"+queryID)
	return nil
}

func (f *fakeTopics) ForgetGroup(_ context.Context, group string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgot = append(f.forgot, group)
	return nil
}

// The exception Flink's debezium-json format throws at a truncate event.
const truncateTrace = `java.io.IOException: Failed to deserialize consumer record due to
Caused by: java.io.IOException: Unknown "op" value "t". The Debezium JSON message is '{"before":null,"after":null,"source":{"version":"3.6.1.Final","connector":"postgresql","name":"env1","db":"shop","schema":"public","table":"orders","txId":1054},"op":"t"}'
	at org.apache.flink.formats.json.debezium.DebeziumJsonDeserializationSchema.deserialize(DebeziumJsonDeserializationSchema.java:180)`

// A job restarting at a truncate again and again is reported plainly,
// and EnsureQuery cancels it and starts a new one after the truncate, with
// the query's old rows cleared and its group's offsets forgotten.
func TestJobStuckAtTruncateStartsAgainAfterIt(t *testing.T) {
	s := flinkfake.NewServer(t)
	topics := &fakeTopics{}
	c := cfg()
	c.Topics = topics
	p := processorOn(t, s, c)
	ctx := context.Background()
	sp := spec(env, queryID)
	if _, err := p.EnsureQuery(ctx, sp); err != nil {
		t.Fatal(err)
	}
	if len(topics.cleared) != 0 {
		t.Fatalf("a first job with no truncate to skip cleared the result: %v", topics.cleared)
	}
	first := s.JobManager.JobsNamed(sp.PipelineName)[0]
	topics.mu.Lock()
	topics.starts = map[string]map[int32]int64{env + ".public.orders": {0: 42}}
	topics.mu.Unlock()
	if err := s.JobManager.AddException(first.ID, truncateTrace); err != nil {
		t.Fatal(err)
	}
	if err := s.JobManager.SetJobState(first.ID, flink.JobRestarting); err != nil {
		t.Fatal(err)
	}
	st, err := p.ObserveQuery(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.Reason, "public.orders was truncated") || !p.NeedsRestart(st) {
		t.Fatalf("observed %+v (NeedsRestart %v)", st, p.NeedsRestart(st))
	}
	// Canceling takes the fake a moment, as it takes Flink.
	go func() {
		time.Sleep(20 * time.Millisecond)
		_ = s.JobManager.SetJobState(first.ID, flink.JobCanceled)
	}()
	st, err = p.EnsureQuery(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	named := s.JobManager.JobsNamed(sp.PipelineName)
	if len(named) != 2 || st.JobID == first.ID || st.Status == jobs.StatusFailed {
		t.Fatalf("after EnsureQuery: %+v, jobs %+v", st, named)
	}
	sessions := s.Gateway.Sessions()
	last := strings.Join(sessions[len(sessions)-1].Statements, "\n")
	if !strings.Contains(last, "'scan.startup.specific-offsets' = 'partition:0,offset:42'") || !strings.Contains(last, "'topic' = 'env1.public.orders'") {
		t.Fatalf("the new job does not start after the truncate:\n%s", last)
	}
	if len(topics.cleared) != 1 || len(topics.forgot) != 1 || topics.forgot[0] != sp.PipelineName {
		t.Fatalf("cleared %v, forgot %v", topics.cleared, topics.forgot)
	}
	// Without Topics cdcq cannot start after a truncate: it says so.
	second := named[0]
	if second.ID == first.ID {
		second = named[1]
	}
	if err := s.JobManager.FailJob(second.ID, truncateTrace); err != nil {
		t.Fatal(err)
	}
	plain := processorOn(t, s, cfg())
	st, err = plain.ObserveQuery(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	if plain.NeedsRestart(st) || st.Status != jobs.StatusFailed || !strings.Contains(st.Reason, "Delete the cached query and create it again") {
		t.Fatalf("without Topics: %+v", st)
	}
}

var _ processor.Topics = (*fakeTopics)(nil)
