package service

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/clustertest"
	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/events"
	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/internal/pgcluster"
)

// Two `cdcq worker` processes share the control topic on the real Kafka
// broker; the API runs in the test. Commands for 40 environments are
// published, and a worker is stopped while it is in the middle of one
// (connecting to the sources is made slow, so that a create takes about a
// second): first with SIGTERM, then, after a third worker joined, with
// SIGKILL. The survivor takes over the stopped worker's partitions, and in
// the end every command was carried out exactly once: every environment's
// capture runs, the inbox recorded each command once, and the events topic
// holds one ConnectionRequested per create and one ConnectionDeleted per
// delete. A worker stopped with SIGTERM finishes what it has in hand. The
// only repeats allowed are the commands a SIGKILLed worker was in the
// middle of (at most one per partition it held): a killed process cannot
// record that it finished, so the survivor carries such a command out
// again, and the handlers are idempotent.
func TestClusterWorkersCarryOutEveryCommandOnce(t *testing.T) {
	c := clustertest.Shared(t)
	bin := buildCdcq(t)
	src := captureSourceServer(t)
	ns := uniqueEnv("wk")
	s := startSystemOn(t, config.Config{KafkaBrokers: strings.Split(c.KafkaBrokers(), ","), KafkaNamespace: ns},
		func(*Infra, config.Config, *slog.Logger) []WorkerDeps { return nil })
	t.Cleanup(func() { deleteNamespaceTopics(t, s.inf.Brokers, ns) })

	cl, err := kgo.NewClient(kgo.SeedBrokers(s.inf.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	group, topic, parts := s.inf.Names.WorkerGroup, s.inf.Names.Commands, int(s.cfg.Partitions)
	logDir := t.TempDir()
	if dir := os.Getenv("CDCQ_TEST_LOG_DIR"); dir != "" {
		logDir = dir
	}
	fleet := &workerFleet{t: t, bin: bin, dir: logDir, env: workerEnv(s, ns)}

	// Two source databases on one server, reached through a proxy that can
	// make connecting slow; environments alternate.
	proxy := startSlowProxy(t, fmt.Sprintf("127.0.0.1:%d", src.Port()), 300*time.Millisecond)
	sources := []string{proxy.url(src, "shop_a"), proxy.url(src, "shop_b")}
	var creates []sentCommand
	create := func(from, to int) {
		for i := from; i < to; i++ {
			env := fmt.Sprintf("%s-e%d", ns, i)
			conn := sources[i%len(sources)]
			res := s.postJSON("/createDatabaseConnection", map[string]string{"connectionString": conn, "environmentId": env})
			if res.status != http.StatusCreated {
				t.Fatalf("create %s: %d %s", env, res.status, res.body)
			}
			creates = append(creates, sentCommand{id: res.json(t)["commandId"].(string), env: env, conn: conn})
		}
	}

	// a joins alone first, so that its member id is known.
	start := time.Now()
	a := fleet.start("a")
	solo := waitForAssignment(t, adm, group, topic, 60*time.Second, "a to join",
		func(x assignment) bool { return x.settled(1, parts) })
	aID := solo.memberIDs()[0]
	b := fleet.start("b")
	first := waitForAssignment(t, adm, group, topic, 60*time.Second, "a and b to share the partitions",
		func(x assignment) bool { return x.settled(2, parts) && x.members[aID] != nil })
	aParts := first.members[aID]
	t.Logf("workers a and b joined in %v: %s (a is %s)", time.Since(start).Round(time.Millisecond), first, aID)

	// Phase 1: SIGTERM a while it is in the middle of a command. Connecting
	// to the sources is slow, so that handling a create takes a while.
	proxy.slow.Store(true)
	create(0, 20)
	partitionOf := commandPartitions(t, s.inf.Brokers, topic)
	inHand := waitForCommandInHand(t, s, creates, partitionOf, aParts)
	termAt, handledAtTerm := time.Now(), countHandled(t, s)
	a.signal(syscall.SIGTERM)
	a.waitExit(45 * time.Second)
	finished := a.handledSince(group, termAt)
	t.Logf("a stopped %v after SIGTERM (%v); it had %s in hand and %d of 20 commands were handled; it finished %d commands after the signal",
		time.Since(termAt).Round(time.Millisecond), a.exitErr, inHand, handledAtTerm, finished)
	if a.exitErr != nil {
		t.Errorf("worker a exited with %v after SIGTERM; want 0", a.exitErr)
	}
	if a.handledCommands(group)[inHand] != 1 {
		t.Errorf("a did not finish command %s, which it had in hand when it was stopped", inHand)
	}
	alone := waitForAssignment(t, adm, group, topic, 45*time.Second, "b to take over a's partitions",
		func(x assignment) bool { return x.settled(1, parts) })
	t.Logf("b holds every partition %v after SIGTERM: %s", time.Since(termAt).Round(time.Millisecond), alone)
	bID := alone.memberIDs()[0]
	waitForConnectionStatus(t, s, envsOf(creates), "RUNNING", 60*time.Second)

	// Phase 2: c joins; SIGKILL b while it is in the middle of a command.
	cw := fleet.start("c")
	second := waitForAssignment(t, adm, group, topic, 60*time.Second, "c to join b",
		func(x assignment) bool { return x.settled(2, parts) && x.members[bID] != nil })
	bParts := second.members[bID]
	t.Logf("b and c share the partitions: %s (b is %s)", second, bID)
	create(20, 40)
	partitionOf = commandPartitions(t, s.inf.Brokers, topic)
	inHand = waitForCommandInHand(t, s, creates[20:], partitionOf, bParts)
	killAt, handledAtKill := time.Now(), countHandled(t, s)
	b.signal(syscall.SIGKILL)
	b.waitExit(10 * time.Second)
	proxy.slow.Store(false)
	final := waitForAssignment(t, adm, group, topic, 60*time.Second, "c to take over b's partitions",
		func(x assignment) bool { return x.settled(1, parts) })
	t.Logf("c holds every partition %v after SIGKILL (b had %s in hand; %d of 40 commands were handled): %s",
		time.Since(killAt).Round(time.Millisecond), inHand, handledAtKill, final)
	waitForConnectionStatus(t, s, envsOf(creates), "RUNNING", 60*time.Second)
	// Each capture runs in one worker: b's moved to c.
	waitForSlots(t, src, envsOf(creates), len(creates), 30*time.Second)
	for _, cmd := range creates {
		res := s.postJSON("/checkJobStatus", map[string]string{"connectionString": cmd.conn, "environmentId": cmd.env})
		if res.status != http.StatusOK || res.json(t)["status"] != "RUNNING" {
			t.Errorf("checkJobStatus %s: %d %s", cmd.env, res.status, res.body)
		}
	}

	// Delete everything: the slots must go, and each delete is carried out
	// once too.
	var deletes []sentCommand
	for _, cmd := range creates {
		res := s.postJSON("/deleteDatabaseConnection", map[string]string{"connectionString": cmd.conn, "environmentId": cmd.env})
		if res.status != http.StatusAccepted {
			t.Fatalf("delete %s: %d %s", cmd.env, res.status, res.body)
		}
		deletes = append(deletes, sentCommand{id: res.json(t)["commandId"].(string), env: cmd.env, conn: cmd.conn})
	}
	waitForConnectionStatus(t, s, envsOf(creates), "DELETED", 60*time.Second)
	waitForSlots(t, src, envsOf(creates), 0, 30*time.Second)
	for _, db := range []string{"shop_a", "shop_b"} {
		if n := countPublications(t, src.URLFor(db), envsOf(creates)); n != 0 {
			t.Errorf("%s: %d publications left behind", db, n)
		}
	}

	stopAt := time.Now()
	cw.signal(syscall.SIGTERM)
	cw.waitExit(45 * time.Second)
	if cw.exitErr != nil {
		t.Errorf("worker c exited with %v after SIGTERM; want 0", cw.exitErr)
	}
	t.Logf("c stopped %v after SIGTERM", time.Since(stopAt).Round(time.Millisecond))

	// Exactly once.
	evs := eventsByCommand(t, s.inf.Brokers, s.inf.Names.Events)
	inbox := inboxRows(t, s)
	delivered := map[string]map[string]int{} // worker → command id → "message handled" lines
	for _, w := range []*workerProcess{a, b, cw} {
		delivered[w.name] = w.handledCommands(group)
	}
	// A command b was in the middle of when it was killed: on one of its
	// partitions, published in phase 2, never logged as handled by b.
	inFlightAtKill := func(cmd sentCommand) bool {
		return slices.Contains(bParts, partitionOf[cmd.id]) && delivered["b"][cmd.id] == 0
	}
	redone := map[int32]int{}
	all := append(slices.Clone(creates), deletes...)
	for i, cmd := range all {
		if n := inbox[cmd.id]; n != 1 {
			t.Errorf("command %s (%s): %d inbox rows, want 1", cmd.id, cmd.env, n)
		}
		var want string
		if i < len(creates) {
			want = events.NameConnectionRequested
		} else {
			want = events.NameConnectionDeleted
			if n := evs[cmd.id][events.NameConnectionDeleting]; n != 1 {
				t.Errorf("delete %s (%s): %d ConnectionDeleting events, want 1", cmd.id, cmd.env, n)
			}
		}
		switch n := evs[cmd.id][want]; {
		case n == 1:
		case n == 2 && i >= 20 && i < 40 && inFlightAtKill(cmd):
			redone[partitionOf[cmd.id]]++
			t.Logf("command %s (%s, partition %d) was in flight in b when it was killed; c carried it out again", cmd.id, cmd.env, partitionOf[cmd.id])
		default:
			t.Errorf("command %s (%s, partition %d): %d %s events, want 1 (deliveries: a %d, b %d, c %d)", cmd.id, cmd.env,
				partitionOf[cmd.id], n, want, delivered["a"][cmd.id], delivered["b"][cmd.id], delivered["c"][cmd.id])
		}
	}
	for p, n := range redone {
		if n > 1 {
			t.Errorf("partition %d: %d commands carried out twice; a killed worker has at most one in flight per partition", p, n)
		}
	}
	if len(inbox) != len(all) {
		t.Errorf("inbox has %d commands, want %d", len(inbox), len(all))
	}

	// What moved: commands redelivered to the survivor (the inbox skipped
	// those the stopped worker had recorded).
	redeliveredAfterTerm, redeliveredAfterKill := 0, 0
	for _, cmd := range all {
		na, nb, nc := delivered["a"][cmd.id], delivered["b"][cmd.id], delivered["c"][cmd.id]
		switch {
		case na+nb+nc == 0:
			t.Errorf("command %s (%s, partition %d) was never logged as handled", cmd.id, cmd.env, partitionOf[cmd.id])
		case na > 0 && nb > 0:
			redeliveredAfterTerm++
		case nb > 0 && nc > 0:
			redeliveredAfterKill++
		}
	}
	redoneTotal := 0
	for _, n := range redone {
		redoneTotal += n
	}
	t.Logf("a's partitions %v, b's (phase 2) %v; handled: a %d, b %d, c %d; redelivered and skipped by the inbox: %d after SIGTERM, %d after SIGKILL; carried out again after SIGKILL: %d; total %v",
		aParts, bParts, len(delivered["a"]), len(delivered["b"]), len(delivered["c"]),
		redeliveredAfterTerm, redeliveredAfterKill, redoneTotal, time.Since(start).Round(time.Millisecond))
}

// sentCommand is a command the test published through the API.
type sentCommand struct{ id, env, conn string }

func envsOf(cmds []sentCommand) []string {
	out := make([]string, len(cmds))
	for i, c := range cmds {
		out[i] = c.env
	}
	return out
}

// buildCdcq builds cmd/cdcq into the test's temporary directory.
func buildCdcq(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cdcq")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/cdcq/cdcq/cmd/cdcq").CombinedOutput()
	if err != nil {
		t.Fatalf("go build cdcq: %v\n%s", err, out)
	}
	return bin
}

// captureSourceServer starts a private PostgreSQL server with room for one
// replication slot and walsender per environment (the shared test server
// has 32, which other tests use too) and the databases shop_a and shop_b.
func captureSourceServer(t *testing.T) *pgcluster.Cluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "cdcq-pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Config{DataDir: dir + "/data", Settings: map[string]string{
		"max_replication_slots": "64", "max_wal_senders": "64", "max_connections": "300",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Stop(context.Background())
		_ = os.RemoveAll(dir)
	})
	for _, db := range []string{"shop_a", "shop_b"} {
		if err := c.CreateDatabase(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// slowProxy forwards TCP connections to a server; while slow is set, it
// holds each new connection for delay first; with a rate, it passes at
// most rate bytes per second from the server to each client.
type slowProxy struct {
	ln    net.Listener
	delay time.Duration
	rate  int
	slow  atomic.Bool
}

func startSlowProxy(t *testing.T, target string, delay time.Duration) *slowProxy {
	return startProxy(t, target, &slowProxy{delay: delay})
}

// startThrottledProxy passes rate bytes per second from the server.
func startThrottledProxy(t *testing.T, target string, rate int) *slowProxy {
	return startProxy(t, target, &slowProxy{rate: rate})
}

func startProxy(t *testing.T, target string, p *slowProxy) *slowProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.ln = ln
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			open[c] = true
		} else {
			delete(open, c)
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c, true)
			go func() {
				defer track(c, false)
				defer c.Close()
				if p.slow.Load() {
					time.Sleep(p.delay)
				}
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				go func() {
					_, _ = io.Copy(u, c)
					_ = u.(*net.TCPConn).CloseWrite()
				}()
				p.copyBack(c, u)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range open {
			c.Close()
		}
	})
	return p
}

// copyBack copies the server's bytes to the client, at most rate a second.
func (p *slowProxy) copyBack(client, server net.Conn) {
	if p.rate <= 0 {
		_, _ = io.Copy(client, server)
		return
	}
	buf := make([]byte, 16<<10)
	start, sent := time.Now(), 0
	for {
		n, err := server.Read(buf)
		if n > 0 {
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
			sent += n
			if ahead := time.Duration(float64(sent)/float64(p.rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
		if err != nil {
			return
		}
	}
}

// url is a connection string for database on src, through the proxy.
func (p *slowProxy) url(src *pgcluster.Cluster, database string) string {
	return p.redirect(src.URLFor(database))
}

// redirect is connection string dsn with its host and port replaced by
// the proxy's.
func (p *slowProxy) redirect(dsn string) string {
	u, err := neturl.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

// workerEnv is the environment of a `cdcq worker` of system s: the
// system's Kafka, job-state database and key, the embedded engines (no
// CDCQ_* from the test's own environment), and the test's source databases
// allowed (they are on loopback, on the job-state server).
func workerEnv(s *system, ns string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CDCQ_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"CDCQ_KAFKA_BROKERS="+strings.Join(s.inf.Brokers, ","),
		"CDCQ_DATABASE_URL="+s.cfg.DatabaseURL,
		"CDCQ_SECRET_KEY="+s.cfg.SecretKey,
		"CDCQ_KAFKA_NAMESPACE="+ns,
		fmt.Sprintf("CDCQ_TOPIC_PARTITIONS=%d", s.cfg.Partitions),
		"CDCQ_STATUS_INTERVAL=1s",
		"CDCQ_LOG_LEVEL=info",
		"CDCQ_SOURCE_ALLOW=loopback,jobstate",
	)
}

// workerFleet starts `cdcq worker` processes that log to files in dir.
type workerFleet struct {
	t   *testing.T
	bin string
	dir string
	env []string
}

// workerProcess is a running (or exited) `cdcq worker`.
type workerProcess struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	exitErr error // cmd.Wait's error, once exited is closed
}

func (f *workerFleet) start(name string) *workerProcess {
	t := f.t
	t.Helper()
	w := &workerProcess{t: t, name: name, logPath: filepath.Join(f.dir, name+".log"), exited: make(chan struct{})}
	log, err := os.Create(w.logPath)
	if err != nil {
		t.Fatal(err)
	}
	w.cmd = exec.Command(f.bin, "worker")
	w.cmd.Env = f.env
	w.cmd.Stdout, w.cmd.Stderr = log, log
	// A test binary killed by -timeout takes its workers with it.
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := w.cmd.Start(); err != nil {
		log.Close()
		t.Fatalf("start worker %s: %v", name, err)
	}
	go func() {
		w.exitErr = w.cmd.Wait()
		log.Close()
		close(w.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-w.exited:
		default:
			_ = w.cmd.Process.Kill()
			<-w.exited
		}
		if t.Failed() {
			w.logTail(80)
		}
	})
	return w
}

func (w *workerProcess) signal(sig syscall.Signal) {
	w.t.Helper()
	if err := w.cmd.Process.Signal(sig); err != nil {
		w.t.Fatalf("signal worker %s: %v", w.name, err)
	}
}

func (w *workerProcess) waitExit(timeout time.Duration) {
	w.t.Helper()
	select {
	case <-w.exited:
	case <-time.After(timeout):
		w.t.Fatalf("worker %s did not exit within %v", w.name, timeout)
	}
}

// handledLine is the Logging middleware's line for a message a handler
// finished (including those the inbox skipped).
var handledLine = regexp.MustCompile(`msg="message handled" handler=(\S+) .*message_id=(\S+)`)

// handledCommands counts the command handler's "message handled" lines
// per command id (a command's message id is its command id).
func (w *workerProcess) handledCommands(group string) map[string]int {
	w.t.Helper()
	f, err := os.Open(w.logPath)
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := handledLine.FindStringSubmatch(sc.Text()); m != nil && m[1] == group {
			out[m[2]]++
		}
	}
	return out
}

// handledSince counts the command handler's "message handled" lines
// logged at or after t0.
func (w *workerProcess) handledSince(group string, t0 time.Time) int {
	w.t.Helper()
	b, err := os.ReadFile(w.logPath)
	if err != nil {
		w.t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		m := handledLine.FindStringSubmatch(line)
		ts, ok := strings.CutPrefix(line, "time=")
		if m == nil || m[1] != group || !ok {
			continue
		}
		ts, _, _ = strings.Cut(ts, " ")
		if at, err := time.Parse(time.RFC3339Nano, ts); err == nil && !at.Before(t0) {
			n++
		}
	}
	return n
}

// log is the worker's log so far.
func (w *workerProcess) log() string {
	b, _ := os.ReadFile(w.logPath)
	return string(b)
}

func (w *workerProcess) logTail(n int) {
	b, err := os.ReadFile(w.logPath)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	w.t.Logf("last %d lines of worker %s's log (%v):\n%s", min(n, len(lines)), w.name, w.exitErr,
		strings.Join(lines[max(0, len(lines)-n):], "\n"))
}

// assignment is a consumer group's state and the partitions of one topic
// that each member holds.
type assignment struct {
	state   string
	members map[string][]int32 // member id → partitions
}

// settled says the group is stable with n members, each holding at least
// one partition, and every partition held by exactly one member.
func (a assignment) settled(n, partitions int) bool {
	if a.state != "Stable" || len(a.members) != n {
		return false
	}
	held := map[int32]bool{}
	for _, ps := range a.members {
		if len(ps) == 0 {
			return false
		}
		for _, p := range ps {
			if held[p] {
				return false
			}
			held[p] = true
		}
	}
	return len(held) == partitions
}

func (a assignment) memberIDs() []string {
	ids := make([]string, 0, len(a.members))
	for id := range a.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (a assignment) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", a.state)
	for _, id := range a.memberIDs() {
		fmt.Fprintf(&b, " %s:%v", id, a.members[id])
	}
	return b.String()
}

func describeAssignment(ctx context.Context, adm *kadm.Client, group, topic string) (assignment, error) {
	groups, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return assignment{}, err
	}
	g, ok := groups[group]
	if !ok {
		return assignment{}, fmt.Errorf("group %s not described", group)
	}
	if g.Err != nil {
		return assignment{}, g.Err
	}
	a := assignment{state: g.State, members: map[string][]int32{}}
	for _, m := range g.Members {
		var ps []int32
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range c.Topics {
				if tp.Topic == topic {
					ps = append(ps, tp.Partitions...)
				}
			}
		}
		slices.Sort(ps)
		a.members[m.MemberID] = ps
	}
	return a, nil
}

// waitForAssignment polls the group until cond holds.
func waitForAssignment(t *testing.T, adm *kadm.Client, group, topic string, timeout time.Duration, what string, cond func(assignment) bool) assignment {
	t.Helper()
	var last assignment
	var lastErr error
	ok := poll(timeout, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		last, lastErr = describeAssignment(ctx, adm, group, topic)
		return lastErr == nil && cond(last)
	})
	if !ok {
		t.Fatalf("%s: not within %v; group %s: %s (%v)", what, timeout, group, last, lastErr)
	}
	return last
}

func countHandled(t *testing.T, s *system) int {
	t.Helper()
	var n int
	if err := s.inf.Pool.QueryRow(context.Background(), "SELECT count(*) FROM handled_commands").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitForCommandInHand waits until one of cmds on one of partitions was
// started (its ConnectionRequested is projected) but not finished (it is
// not in the inbox), and returns its id.
func waitForCommandInHand(t *testing.T, s *system, cmds []sentCommand, partitionOf map[string]int32, partitions []int32) string {
	t.Helper()
	var ids []string
	for _, c := range cmds {
		if slices.Contains(partitions, partitionOf[c.id]) {
			ids = append(ids, c.id)
		}
	}
	if len(ids) == 0 {
		t.Fatalf("no command on partitions %v", partitions)
	}
	var id string
	waitFor(t, 30*time.Second, fmt.Sprintf("a command on partitions %v to be in hand", partitions), func() bool {
		err := s.inf.Pool.QueryRow(context.Background(), `SELECT command_id FROM job_events
			WHERE name = $1 AND command_id = ANY($2) AND command_id NOT IN (SELECT command_id FROM handled_commands)
			LIMIT 1`, events.NameConnectionRequested, ids).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		return true
	})
	return id
}

// inboxRows counts the inbox's rows per command id.
func inboxRows(t *testing.T, s *system) map[string]int {
	t.Helper()
	rows, err := s.inf.Pool.Query(context.Background(), "SELECT command_id, count(*) FROM handled_commands GROUP BY command_id")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitForConnectionStatus waits until every environment's job (the
// projection checkJobStatus reads) has status.
func waitForConnectionStatus(t *testing.T, s *system, envs []string, status string, timeout time.Duration) {
	t.Helper()
	var others map[string]string
	ok := poll(timeout, func() bool {
		rows, err := s.inf.Pool.Query(context.Background(),
			"SELECT environment_id, status || ' ' || reason FROM connections WHERE environment_id = ANY($1) AND status <> $2", envs, status)
		if err != nil {
			t.Fatal(err)
		}
		others = map[string]string{}
		var missing int
		for rows.Next() {
			var env, st string
			if err := rows.Scan(&env, &st); err != nil {
				t.Fatal(err)
			}
			others[env] = st
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if err := s.inf.Pool.QueryRow(context.Background(),
			"SELECT $2::int - count(*) FROM connections WHERE environment_id = ANY($1)", envs, len(envs)).Scan(&missing); err != nil {
			t.Fatal(err)
		}
		if missing > 0 {
			others["(no job yet)"] = fmt.Sprint(missing)
		}
		return len(others) == 0
	})
	if !ok {
		t.Fatalf("%d environments not %s within %v: %v", len(others), status, timeout, others)
	}
}

// waitForSlots waits until the environments have want replication slots on
// the source server, every one of them active (a capture streams from it).
func waitForSlots(t *testing.T, src *pgcluster.Cluster, envs []string, want int, timeout time.Duration) {
	t.Helper()
	slots := make([]string, len(envs))
	for i, env := range envs {
		slots[i] = names.SlotName(env)
	}
	conn, err := pgx.Connect(context.Background(), src.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var total, active int
	ok := poll(timeout, func() bool {
		if err := conn.QueryRow(context.Background(),
			"SELECT count(*), count(*) FILTER (WHERE active) FROM pg_replication_slots WHERE slot_name = ANY($1)", slots).Scan(&total, &active); err != nil {
			t.Fatal(err)
		}
		return total == want && active == want
	})
	if !ok {
		t.Fatalf("replication slots: %d, %d active; want %d active within %v", total, active, want, timeout)
	}
}

func countPublications(t *testing.T, url string, envs []string) int {
	t.Helper()
	pubs := make([]string, len(envs))
	for i, env := range envs {
		pubs[i] = names.PublicationName(env)
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_publication WHERE pubname = ANY($1)", pubs).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// commandPartitions reads the control topic: the partition of each command.
func commandPartitions(t *testing.T, brokers []string, topic string) map[string]int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string]int32{}
	if err := kafkabus.Scan(ctx, kafkasec.Plaintext(brokers...), topic, func(r *kgo.Record) {
		out[header(r, commands.CommandIDHeader)] = r.Partition
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// eventsByCommand reads the events topic: how many events of each name
// carry each command id.
func eventsByCommand(t *testing.T, brokers []string, topic string) map[string]map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string]map[string]int{}
	if err := kafkabus.Scan(ctx, kafkasec.Plaintext(brokers...), topic, func(r *kgo.Record) {
		var m events.Meta
		if err := json.Unmarshal(r.Value, &m); err != nil || m.CommandID == "" {
			return
		}
		if out[m.CommandID] == nil {
			out[m.CommandID] = map[string]int{}
		}
		out[m.CommandID][header(r, events.NameHeader)]++
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// deleteNamespaceTopics deletes the topics of namespace ns and of its
// environments (named ns-…) from the shared cluster.
func deleteNamespaceTopics(t *testing.T, brokers []string, ns string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Logf("delete topics of %s: %v", ns, err)
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Logf("delete topics of %s: %v", ns, err)
		return
	}
	var ours []string
	for _, name := range topics.Names() {
		if strings.HasPrefix(name, ns+".") || strings.HasPrefix(name, ns+"-") || strings.Contains(name, "."+ns+"-") {
			ours = append(ours, name)
		}
	}
	if len(ours) == 0 {
		return
	}
	resp, err := adm.DeleteTopics(ctx, ours...)
	if err == nil {
		err = errors.Join(func() []error {
			var errs []error
			for _, r := range resp.Sorted() {
				errs = append(errs, r.Err)
			}
			return errs
		}()...)
	}
	if err != nil {
		t.Logf("delete topics of %s: %v", ns, err)
	}
}
