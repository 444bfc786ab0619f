package service

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Without Kafka Connect, createDatabaseConnection starts the embedded
// capture: the source's rows reach the environment's Debezium topics,
// checkJobStatus reports the capture, and delete leaves no slot and no
// publication behind.
func TestEmbeddedCaptureLifecycle(t *testing.T) {
	s := startEmbeddedSystem(t)
	src, srcConn := sourceDatabase(t)
	ctx := context.Background()
	if _, err := srcConn.Exec(ctx, `CREATE TABLE orders (id int PRIMARY KEY, total numeric(10,2));
		INSERT INTO orders VALUES (1, 9.99), (2, 20.00)`); err != nil {
		t.Fatal(err)
	}
	env := uniqueEnv("emb")
	body := map[string]string{"connectionString": src, "environmentId": env}
	if res := s.postForm("/createDatabaseConnection", body); res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	m := s.waitForStatus(src, env, "snapshot done", func(m map[string]any) bool {
		snap, _ := m["snapshot"].(map[string]any)
		return m["status"] == "RUNNING" && snap["done"] == true
	})
	if m["engine"] != "embedded" {
		t.Errorf("engine = %v", m["engine"])
	}
	if _, err := srcConn.Exec(ctx, `UPDATE orders SET total = 10.50 WHERE id = 1; DELETE FROM orders WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	waitFor(t, 30*time.Second, "snapshot and changes on the topic", func() bool {
		recs = s.records(env + ".public.orders")
		return len(recs) >= 5 // 2 reads, 1 update, 1 delete, 1 tombstone
	})
	var ops []string
	for _, r := range recs {
		if r.Value == nil {
			ops = append(ops, "tombstone")
			continue
		}
		var v struct {
			Op    string         `json:"op"`
			After map[string]any `json:"after"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("record value %s: %v", r.Value, err)
		}
		ops = append(ops, v.Op)
		if v.Op == "u" && v.After["total"] != "10.50" {
			t.Errorf("update after = %v; numeric must be a string, as Debezium's decimal.handling.mode=string writes it", v.After)
		}
	}
	if got := strings.Join(ops, " "); got != "r r u d tombstone" {
		t.Errorf("ops = %s", got)
	}

	if res := s.postJSON("/deleteDatabaseConnection", body); res.status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", res.status, res.body)
	}
	s.waitForStatus(src, env, "DELETED", func(m map[string]any) bool { return m["status"] == "DELETED" })
	if slots, pubs := slotAndPublicationCount(t, srcConn, env); slots != 0 || pubs != 0 {
		t.Errorf("left behind: %d slots, %d publications", slots, pubs)
	}
}
