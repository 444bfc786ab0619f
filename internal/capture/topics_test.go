package capture

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/pgtest"
)

// TestChangeTopicSettings checks the settings the capture creates its
// topics with, as the broker describes them: change topics deleted after
// ChangeTopicRetention and never compacted (the TRUNCATE record, which
// has no key, is written), the heartbeat topic compacted.
func TestChangeTopicSettings(t *testing.T) {
	h := newHarness(t)
	dsn := pgtest.NewDatabase(t)
	src := connect(t, dsn)
	exec(t, src, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a')`)
	const env = "envtopics"
	e := h.engine("a", func(c *Config) { c.ChangeTopicRetention = 72 * time.Hour })
	if err := e.Ensure(context.Background(), spec(env, dsn)); err != nil {
		t.Fatal(err)
	}
	cons := consume(t, h.brokers, env+".public.t")
	h.supervise(e)
	streamingRow(t, e, env)
	exec(t, src, `TRUNCATE t`)
	eventually(t, 20*time.Second, "the truncate record", func() (bool, string) {
		got := ops(decodeAll(t, cons.all()))
		return got == "rt", got
	})

	cl, err := kgo.NewClient(kgo.SeedBrokers(h.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	heartbeats := HeartbeatTopicPrefix + env
	eventually(t, 10*time.Second, "the heartbeat topic", func() (bool, string) {
		topics, err := adm.ListTopics(context.Background(), heartbeats)
		return err == nil && topics.Has(heartbeats), "not yet"
	})
	rcs, err := adm.DescribeTopicConfigs(context.Background(), env+".public.t", heartbeats)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		env + ".public.t": {"cleanup.policy": "delete", "retention.ms": "259200000"},
		heartbeats:        {"cleanup.policy": "compact"},
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			t.Fatalf("describe %s: %v", rc.Name, rc.Err)
		}
		got := map[string]string{}
		for _, c := range rc.Configs {
			if c.Value != nil {
				got[c.Key] = *c.Value
			}
		}
		for k, v := range want[rc.Name] {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", rc.Name, k, got[k], v)
			}
		}
		delete(want, rc.Name)
	}
	if len(want) != 0 {
		t.Errorf("not described: %v", want)
	}
}
