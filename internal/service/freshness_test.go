package service

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	neturl "net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/results"
)

// TestFreshThroughQuietAndStuck: the embedded capture's heartbeats keep a
// live query's fresh-through time advancing while its source is quiet; a
// write is in the result once the time passed its commit; a capture whose
// replication stream is blocked (a proxy that stops passing the server's
// bytes on the replication connection, while its other connections to the
// source work) stops the time, so the lag grows; unblocked, it advances
// again.
func TestFreshThroughQuietAndStuck(t *testing.T) {
	s := startEmbeddedSystem(t)
	src, conn := sourceDatabase(t)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `CREATE TABLE orders (id int PRIMARY KEY, region text NOT NULL, total numeric(10,2) NOT NULL);
		INSERT INTO orders SELECT g, 'r' || (g % 3), g FROM generate_series(1, 30) g`); err != nil {
		t.Fatal(err)
	}
	u, err := neturl.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startPausableProxy(t, u.Host)
	u.Host = proxy.addr()
	res := s.postJSON("/createCachedQuery", map[string]string{"connectionString": u.String(), "environmentId": uniqueEnv("fresh"),
		"schema": benchSchema, "sqlQuery": `SELECT count(*) AS n FROM orders`})
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	id := res.json(t)["id"].(string)
	store, err := results.New(s.inf.Pool)
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		r, err := store.Result(ctx, id)
		if err != nil || len(r.Rows) != 1 {
			return -1
		}
		var row struct{ N int }
		if err := json.Unmarshal(r.Rows[0], &row); err != nil {
			return -1
		}
		return row.N
	}
	fresh := func() time.Time {
		p, err := store.Progress(ctx, id)
		if err != nil || p.FreshThrough == nil {
			return time.Time{}
		}
		return *p.FreshThrough
	}
	waitFor(t, time.Minute, "the query to be live with 30 rows and fresh", func() bool {
		return count() == 30 && !fresh().IsZero()
	})

	// Quiet: the time keeps up with the clock.
	seen := map[time.Time]bool{}
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		seen[fresh()] = true
	}
	if lag := time.Since(fresh()); len(seen) < 3 || lag > 2500*time.Millisecond {
		t.Fatalf("quiet source: %d fresh-through times in 4 s, lag %s; want it advancing about every second", len(seen), lag)
	} else {
		t.Logf("quiet source: %d fresh-through times in 4 s, lag %s", len(seen), lag.Round(time.Millisecond))
	}

	// A commit is in the result once the time has passed it.
	if _, err := conn.Exec(ctx, `INSERT INTO orders VALUES (31, 'r1', 1)`); err != nil {
		t.Fatal(err)
	}
	committed := time.Now()
	waitFor(t, 10*time.Second, "the time to pass the commit", func() bool { return fresh().After(committed) })
	if n := count(); n != 31 {
		t.Fatalf("fresh through %s, after the commit at %s, but the result counts %d rows, want 31", fresh(), committed, n)
	}
	t.Logf("fresh through the commit %s after it", time.Since(committed).Round(time.Millisecond))

	// Stuck: the replication connection gets nothing from the server.
	proxy.pause(true)
	time.Sleep(time.Second) // a heartbeat in flight lands
	stuckAt := fresh()
	time.Sleep(3 * time.Second)
	if f := fresh(); !f.Equal(stuckAt) || time.Since(f) < 3*time.Second {
		t.Fatalf("stuck capture: fresh through %s (was %s at the block), lag %s; want it stopped", f, stuckAt, time.Since(f))
	}
	t.Logf("stuck capture: lag %s and growing", time.Since(stuckAt).Round(time.Millisecond))
	proxy.pause(false)
	resumed := time.Now()
	waitFor(t, 30*time.Second, "the time to advance again", func() bool { return time.Since(fresh()) < 2*time.Second })
	t.Logf("unblocked: fresh again after %s", time.Since(resumed).Round(time.Millisecond))
}

// pausableProxy forwards TCP connections to a server; while paused, it
// passes nothing from the server to the replication connections (their
// reads block, as on a hung connection).
type pausableProxy struct {
	ln     net.Listener
	paused atomic.Bool
	mu     sync.Mutex
	resume chan struct{}
}

func startPausableProxy(t *testing.T, target string) *pausableProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pausableProxy{ln: ln, resume: make(chan struct{})}
	var wg sync.WaitGroup
	var conns sync.Map
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			conns.Store(c, u)
			var replication atomic.Bool
			wg.Add(2)
			go func() {
				defer wg.Done()
				defer u.Close()
				// The startup message of a replication connection has the
				// parameter replication=database; nothing comes from the
				// server before it.
				buf := make([]byte, 32<<10)
				for i := 0; ; i++ {
					n, err := c.Read(buf)
					if n > 0 {
						if i < 3 && bytes.Contains(buf[:n], []byte("replication\x00database\x00")) {
							replication.Store(true)
						}
						if _, werr := u.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := u.Read(buf)
					if n > 0 && replication.Load() {
						p.wait()
					}
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.pause(false)
		conns.Range(func(k, v any) bool {
			k.(net.Conn).Close()
			v.(net.Conn).Close()
			return true
		})
		wg.Wait()
	})
	return p
}

func (p *pausableProxy) addr() string { return p.ln.Addr().String() }

func (p *pausableProxy) pause(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused.Swap(on) == on {
		return
	}
	if !on {
		close(p.resume)
		p.resume = make(chan struct{})
	}
}

// wait blocks while the proxy is paused.
func (p *pausableProxy) wait() {
	for {
		p.mu.Lock()
		paused, resume := p.paused.Load(), p.resume
		p.mu.Unlock()
		if !paused {
			return
		}
		<-resume
	}
}
