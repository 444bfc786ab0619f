// Package capturetest helps tests check a change topic against its source
// table: a writer that inserts, updates and deletes rows of a table
// (id int PRIMARY KEY, grp int NOT NULL, amount numeric NULL), the table's
// rows, the rows a topic says exist (replayed from its records), and how
// the two differ. Tests of the capture and end-to-end tests share it.
package capturetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Writer changes rows of a table until stopped.
type Writer struct {
	// Ops counts the statements that succeeded.
	Ops  atomic.Int64
	stop func()
}

// StartWriter inserts rows with ids above rows, and updates and deletes
// random rows of table, one statement every pause, until Stop (or the
// test's end).
func StartWriter(t testing.TB, dsn, table string, rows int, pause time.Duration) *Writer {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	ident := pgx.Identifier{table}.Sanitize()
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer conn.Close(context.Background())
		rng := rand.New(rand.NewPCG(uint64(rows), uint64(len(table))))
		next := rows + 1
		// Statements run to completion, not under ctx: one cancelled by
		// closing the connection may still commit after Stop.
		bg := context.Background()
		for ctx.Err() == nil {
			var err error
			switch id := 1 + rng.IntN(next-1); rng.IntN(3) {
			case 0:
				_, err = conn.Exec(bg, `INSERT INTO `+ident+` VALUES ($1, $2, $3)`, next, next%100, float64(next%1000)/4)
				next++
			case 1:
				_, err = conn.Exec(bg, `UPDATE `+ident+` SET amount = amount + 1, grp = (grp + 1) % 100 WHERE id = $1`, id)
			default:
				_, err = conn.Exec(bg, `DELETE FROM `+ident+` WHERE id = $1`, id)
			}
			if err == nil {
				w.Ops.Add(1)
			}
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
		}
	}()
	var once sync.Once
	w.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(w.stop)
	return w
}

// Stop stops the writer once its last statement has finished.
func (w *Writer) Stop() { w.stop() }

// SourceRows reads table as id -> "grp|amount" (amount "NULL" when null).
func SourceRows(t testing.TB, conn *pgx.Conn, table string) map[string]string {
	t.Helper()
	rs, err := conn.Query(context.Background(),
		`SELECT id::text, grp::text, coalesce(amount::text, 'NULL') FROM `+pgx.Identifier{table}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for rs.Next() {
		var id, grp, amount string
		if err := rs.Scan(&id, &grp, &amount); err != nil {
			t.Fatal(err)
		}
		out[id] = grp + "|" + amount
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TopicRows replays a change topic's records in order: the keys whose last
// record is not a delete (or a tombstone), as id -> "grp|amount"; a
// truncate empties it.
func TopicRows(t testing.TB, records []*kgo.Record) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range records {
		if r.Key == nil {
			if r.Value != nil && strings.Contains(string(r.Value), `"op":"t"`) {
				clear(out)
			}
			continue
		}
		var key struct {
			ID json.Number `json:"id"`
		}
		if err := json.Unmarshal(r.Key, &key); err != nil {
			t.Fatalf("key %s: %v", r.Key, err)
		}
		id := key.ID.String()
		if r.Value == nil {
			delete(out, id)
			continue
		}
		var env struct {
			Op    string `json:"op"`
			After *struct {
				Grp    json.Number `json:"grp"`
				Amount *string     `json:"amount"`
			} `json:"after"`
		}
		if err := json.Unmarshal(r.Value, &env); err != nil {
			t.Fatalf("value %s: %v", r.Value, err)
		}
		if env.Op == "d" || env.After == nil {
			delete(out, id)
			continue
		}
		amount := "NULL"
		if env.After.Amount != nil {
			amount = *env.After.Amount
		}
		out[id] = env.After.Grp.String() + "|" + amount
	}
	return out
}

// Diff says how got differs from want ("" when equal): rows missing, rows
// that do not exist in want (ghosts) and rows with another value.
func Diff(want, got map[string]string) string {
	var missing, ghost, wrong []string
	for id, v := range want {
		switch g, ok := got[id]; {
		case !ok:
			missing = append(missing, id)
		case g != v:
			wrong = append(wrong, id+": "+g+" want "+v)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			ghost = append(ghost, id)
		}
	}
	if len(missing)+len(ghost)+len(wrong) == 0 {
		return ""
	}
	first := func(s []string) string {
		sort.Strings(s)
		return strings.Join(s[:min(len(s), 5)], ", ")
	}
	return fmt.Sprintf("%d missing (%s), %d ghost (%s), %d wrong (%s)", len(missing), first(missing),
		len(ghost), first(ghost), len(wrong), first(wrong))
}
