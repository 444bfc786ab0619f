package capture

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// workloadDDL: each transaction bumps one counter and logs the new value
// in events; every seventh deletes the counter and inserts it again, so
// the stream carries updates, deletes and inserts of the same keys.
const workloadDDL = `
CREATE TABLE counters (k integer PRIMARY KEY, v bigint NOT NULL);
CREATE TABLE events (id bigserial PRIMARY KEY, k integer NOT NULL, v bigint NOT NULL);
INSERT INTO counters SELECT k, 0 FROM generate_series(1, %d) k;`

// workload writes transactions until stopped. It survives the server
// going away: it reconnects and goes on. Whether a commit that failed
// took effect is settled at the end by reading the tables.
type workload struct {
	cancel context.CancelFunc
	done   chan struct{}
	txs    atomic.Int64
}

func startWorkload(t testing.TB, dsn string, keys int, pause time.Duration) *workload {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &workload{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var conn *pgx.Conn
		defer func() {
			if conn != nil {
				conn.Close(context.Background())
			}
		}()
		rng := rand.New(rand.NewPCG(1, 2))
		for n := 0; ctx.Err() == nil; n++ {
			if conn == nil {
				c, err := pgx.Connect(ctx, dsn)
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				conn = c
			}
			k := 1 + rng.IntN(keys)
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				var v int64
				if err := tx.QueryRow(ctx, `UPDATE counters SET v = v + 1 WHERE k = $1 RETURNING v`, k).Scan(&v); err != nil {
					return err
				}
				if n%7 == 6 {
					if _, err := tx.Exec(ctx, `DELETE FROM counters WHERE k = $1`, k); err != nil {
						return err
					}
					v++
					if _, err := tx.Exec(ctx, `INSERT INTO counters VALUES ($1, $2)`, k, v); err != nil {
						return err
					}
				}
				_, err := tx.Exec(ctx, `INSERT INTO events (k, v) VALUES ($1, $2)`, k, v)
				return err
			})
			if err != nil {
				conn.Close(context.Background())
				conn = nil
				continue
			}
			w.txs.Add(1)
			if pause > 0 {
				time.Sleep(pause)
			}
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *workload) stop() {
	w.cancel()
	<-w.done
}

// truth is what the source holds once the workload stopped.
type truth struct {
	counters map[int64]int64
	events   map[int64]bool
}

func readTruth(t testing.TB, dsn string) truth {
	t.Helper()
	conn := connect(t, dsn)
	tr := truth{counters: map[int64]int64{}, events: map[int64]bool{}}
	rows, err := conn.Query(context.Background(), `SELECT k, v FROM counters`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k, v int64
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		tr.counters[k] = v
	}
	rows, err = conn.Query(context.Background(), `SELECT id FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		tr.events[id] = true
	}
	return tr
}

// caughtUp reports whether the topics show the final state.
func caughtUp(t testing.TB, cs []change, tr truth, env string) (bool, string) {
	last := map[int64]int64{}
	events := map[int64]bool{}
	for _, c := range cs {
		if c.Tombstone || c.After == nil {
			continue
		}
		switch c.Topic {
		case env + ".public.counters":
			last[asInt(t, c.After["k"])] = asInt(t, c.After["v"])
		case env + ".public.events":
			events[asInt(t, c.After["id"])] = true
		}
	}
	for k, v := range tr.counters {
		if last[k] != v {
			return false, fmt.Sprintf("counter %d at %d of %d", k, last[k], v)
		}
	}
	for id := range tr.events {
		if !events[id] {
			return false, fmt.Sprintf("event %d missing (%d of %d seen)", id, len(events), len(tr.events))
		}
	}
	return true, ""
}

// verifyWorkload checks that every committed change is on the topics, in
// commit order per key, and that every duplicate is a replay carrying the
// lsn (and content) of the record it repeats. It returns how many
// duplicates it saw.
func verifyWorkload(t testing.TB, cs []change, tr truth, env string) int {
	t.Helper()
	dups := 0
	perKey := map[int64][]change{}
	eventIDs := map[int64]int{}
	for _, c := range cs {
		switch c.Topic {
		case env + ".public.counters":
			perKey[asInt(t, c.Key["k"])] = append(perKey[asInt(t, c.Key["k"])], c)
		case env + ".public.events":
			if c.Tombstone {
				t.Errorf("tombstone on events: %v", c.Key)
				continue
			}
			id := asInt(t, c.After["id"])
			if !tr.events[id] {
				t.Errorf("event %d is on the topic but was never committed", id)
			}
			eventIDs[id]++
			if eventIDs[id] > 1 {
				dups++
			}
		}
	}
	for id := range tr.events {
		if eventIDs[id] == 0 {
			t.Errorf("committed event %d is not on the topic", id)
		}
	}
	// A snapshot record carries the slot's consistent point as its lsn,
	// which the first streamed change may share; at one lsn a snapshot
	// record comes first, then (a primary-key change) the delete.
	type position struct {
		lsn  int64
		rank int
	}
	rank := map[string]int{"r": 0, "d": 1, "c": 2, "u": 2}
	less := func(a, b position) bool { return a.lsn < b.lsn || (a.lsn == b.lsn && a.rank < b.rank) }
	for k, final := range tr.counters {
		seen := map[position]change{}
		last := position{lsn: -1}
		var values []int64
		var prevOp string
		for _, c := range perKey[k] {
			if c.Tombstone {
				if prevOp != "d" {
					t.Errorf("key %d: tombstone after %q", k, prevOp)
				}
				prevOp = "-"
				continue
			}
			prevOp = c.Op
			if c.Source.LSN == nil {
				t.Fatalf("key %d: record without lsn: %s", k, c.Raw)
			}
			pos := position{*c.Source.LSN, rank[c.Op]}
			if _, replay := seen[pos]; !replay && last.rank == 0 && c.Op != "r" && pos.lsn < last.lsn {
				// A change whose transaction began before the snapshot's
				// consistent point (the snapshot record's lsn) and committed
				// after it: the snapshot does not hold it, so it is streamed
				// after the snapshot record although its own lsn is lower.
				// The values below show that it is applied once, in order.
				seen[pos] = c
				if c.Op != "d" {
					values = append(values, asInt(t, c.After["v"]))
				}
				continue
			}
			if !less(last, pos) {
				first, ok := seen[pos]
				if !ok {
					t.Errorf("key %d: record at %+v (%s) goes back from %+v without repeating an earlier record", k, pos, c.Op, last)
					continue
				}
				if first.Op != c.Op || !reflect.DeepEqual(first.Before, c.Before) || !reflect.DeepEqual(first.After, c.After) || *first.Source.TxID != *c.Source.TxID {
					t.Errorf("key %d: replay at lsn %d differs:\n%s\n%s", k, pos.lsn, first.Raw, c.Raw)
				}
				dups++
				continue
			}
			seen[pos], last = c, pos
			if c.Op != "d" {
				values = append(values, asInt(t, c.After["v"]))
			}
		}
		// The snapshot holds each counter as it was when the slot was
		// created; from there on every committed value follows.
		if len(perKey[k]) == 0 || perKey[k][0].Op != "r" || len(values) == 0 {
			t.Errorf("key %d: no snapshot record first: %q", k, ops(perKey[k]))
			continue
		}
		var want []int64
		for v := values[0]; v <= final; v++ {
			want = append(want, v)
		}
		if !reflect.DeepEqual(values, want) {
			t.Errorf("key %d: values after dropping replays %v, want %d..%d", k, values, values[0], final)
		}
	}
	return dups
}

func asInt(t testing.TB, v any) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(fmt.Sprint(v), &n); err != nil {
		t.Fatalf("not a number: %#v", v)
	}
	return n
}
