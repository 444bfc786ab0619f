package localcluster

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer collects progress lines written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestUpDown starts a real cluster on free ports, checks that every
// endpoint answers, starts it again (which finds it running), and stops it.
func TestUpDown(t *testing.T) {
	jars, err := SharedJarDir()
	if err != nil {
		t.Fatal(err)
	}
	progress := &syncBuffer{}
	cfg := Config{Dir: t.TempDir(), JarDir: jars, FreePorts: true, FastStartup: true, DieWithParent: true, Progress: progress}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t.Cleanup(func() { _ = Down(cfg.Dir) })

	t0 := time.Now()
	c, err := Up(ctx, cfg)
	if err != nil {
		t.Fatalf("Up: %v\nprogress:\n%s", err, progress)
	}
	t.Logf("Up took %s:\n%s", time.Since(t0).Round(100*time.Millisecond), progress)

	// Up waited for all of these; ask once more, as a user of the cluster would.
	if err := kafkaReady(ctx, c.KafkaBrokers()); err != nil {
		t.Error(err)
	}
	if err := connectReady(ctx, c.ConnectURL(), credential{User: c.ConnectUsername(), Password: c.ConnectPassword()}); err != nil {
		t.Error(err)
	}
	if c.ConnectAuthorization() == "" {
		t.Error("the cluster's Connect asks for no credentials")
	} else if err := connectReady(ctx, c.ConnectURL(), credential{}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Connect without credentials: %v, want 401", err)
	}
	for _, f := range []string{c.dirLayout().env(), c.dirLayout().state(), c.dirLayout().conf("connect", "rest-credentials.properties")} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, st.Mode().Perm())
		}
	}
	checkKafkaSASL(ctx, t, c)
	if err := flinkReady(ctx, c.FlinkRESTURL(), true); err != nil {
		t.Error(err)
	}
	if err := gatewayReady(ctx, c.SQLGatewayURL()); err != nil {
		t.Error(err)
	}
	env, err := os.ReadFile(c.dirLayout().env())
	if err != nil || string(env) != c.Env() {
		t.Errorf("env file = %q, %v; want %q", env, err, c.Env())
	}

	pids := map[string]int{}
	for _, name := range components {
		pid, ok := c.dirLayout().runningPID(name)
		if !ok {
			t.Fatalf("%s has no running pid", name)
		}
		pids[name] = pid
	}

	t1 := time.Now()
	again, err := Up(ctx, cfg)
	if err != nil {
		t.Fatalf("second Up: %v", err)
	}
	t.Logf("second Up took %s", time.Since(t1).Round(time.Millisecond))
	if again.ConnectAuthorization() != c.ConnectAuthorization() {
		t.Error("second Up does not know the running Connect's REST credentials")
	}
	if again.KafkaSASLPassword() != c.KafkaSASLPassword() {
		t.Error("second Up does not know the running Kafka SASL_SSL user's password")
	}
	if again.Ports() != c.Ports() {
		t.Errorf("second Up ports = %+v, want the running cluster's %+v", again.Ports(), c.Ports())
	}
	for name, pid := range pids {
		if now, _ := c.dirLayout().runningPID(name); now != pid {
			t.Errorf("second Up replaced %s: pid %d, was %d", name, now, pid)
		}
	}

	t2 := time.Now()
	if err := c.Down(); err != nil {
		t.Fatalf("Down: %v", err)
	}
	t.Logf("Down took %s", time.Since(t2).Round(time.Millisecond))
	for name, pid := range pids {
		if alive(pid) {
			t.Errorf("%s (pid %d) still runs after Down", name, pid)
		}
		if _, err := os.Stat(c.dirLayout().pid(name)); !os.IsNotExist(err) {
			t.Errorf("%s's pid file is still there: %v", name, err)
		}
	}
	if err := Down(cfg.Dir); err != nil {
		t.Errorf("Down of a stopped cluster: %v", err)
	}
}

// checkKafkaSASL: the SASL_SSL listener takes the cluster's SCRAM user over
// TLS with the cluster's CA, and refuses a wrong password and plaintext;
// the server's key file is its owner's only.
func checkKafkaSASL(ctx context.Context, t *testing.T, c *Cluster) {
	t.Helper()
	brokers, ca := c.KafkaSASLBrokers(), c.KafkaSASLCAFile()
	user := credential{User: c.KafkaSASLUsername(), Password: c.KafkaSASLPassword()}
	if brokers == "" || user.User == "" || user.Password == "" || ca == "" {
		t.Fatalf("the cluster names no complete SASL_SSL listener: %q %q %q", brokers, user.User, ca)
	}
	for _, u := range []credential{user, {User: user.User, Password: "wrong"}} {
		sec, err := kafkaSASLSecurity(ca, u)
		if err != nil {
			t.Fatal(err)
		}
		err = kafkaSASLReady(ctx, brokers, sec)
		if u == user && err != nil {
			t.Errorf("SASL_SSL listener: %v", err)
		}
		if u != user && err == nil {
			t.Error("the SASL_SSL listener took a wrong password")
		}
	}
	if err := kafkaReady(ctx, brokers); err == nil {
		t.Error("the SASL_SSL listener answered plaintext")
	}
	if st, err := os.Stat(c.dirLayout().tlsServer()); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v; want mode 0600", c.dirLayout().tlsServer(), err)
	}
}
