package localcluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeJava stands in for java: the tools succeed, Kafka dies at once, and
// every other JVM runs until it is stopped.
const fakeJava = `#!/bin/sh
case "$*" in
*StorageTool*) exit 0 ;;
*BashJavaUtils*) echo "BASH_JAVA_UTILS_EXEC_RESULT:-Xmx64m"; echo "BASH_JAVA_UTILS_EXEC_RESULT:-D a=b"; exit 0 ;;
*kafka.Kafka*) echo "ERROR Exiting Kafka: boom"; exit 3 ;;
*) sleep 60 ;;
esac
`

func TestUpFailsAtOnceWhenAJVMExits(t *testing.T) {
	dir := t.TempDir()
	java := filepath.Join(dir, "java")
	if err := os.WriteFile(java, []byte(fakeJava), 0o755); err != nil {
		t.Fatal(err)
	}
	// Jars that look resolved, so that Maven is not asked.
	jars := filepath.Join(dir, "jars")
	for _, s := range jarSets {
		if err := os.MkdirAll(filepath.Join(jars, s.dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(jars, s.dir, markerFile), []byte(s.hash()+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{Dir: filepath.Join(dir, "cluster"), JarDir: jars, Java: java, Maven: "/nonexistent/mvn",
		FreePorts: true, DieWithParent: true, StartTimeout: time.Minute}
	t0 := time.Now()
	_, err := Up(context.Background(), cfg)
	if err == nil {
		_ = Down(cfg.Dir)
		t.Fatal("Up succeeded with a Kafka that exits")
	}
	if d := time.Since(t0); d > 20*time.Second {
		t.Errorf("Up took %s to notice", d)
	}
	for _, want := range []string{"kafka stopped during start-up", "exit status 3", "ERROR Exiting Kafka: boom"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	t.Logf("Up: %v", err)
	l := layout{dir: cfg.Dir, jarDir: jars}
	for _, name := range components {
		if pid, ok := l.runningPID(name); ok {
			t.Errorf("%s (pid %d) still runs after the failed Up", name, pid)
		}
	}
}

func TestStalePIDFilesAreRemoved(t *testing.T) {
	l := layout{dir: t.TempDir()}
	if err := os.MkdirAll(filepath.Join(l.dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	done := exec.Command("true")
	if err := done.Run(); err != nil {
		t.Fatal(err)
	}
	for name, pid := range map[string]int{
		Kafka:   done.Process.Pid, // gone
		Connect: os.Getpid(),      // alive, but not one of this cluster's JVMs
	} {
		if err := os.WriteFile(l.pid(name), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, ok := l.runningPID(name); ok {
			t.Errorf("%s: pid %d taken for a running JVM of the cluster", name, pid)
		}
		if _, err := os.Stat(l.pid(name)); !os.IsNotExist(err) {
			t.Errorf("%s: stale pid file kept: %v", name, err)
		}
	}
	if err := Down(l.dir); err != nil {
		t.Errorf("Down of a cluster that does not run: %v", err)
	}
}

func TestRunningWhileUpHoldsTheLock(t *testing.T) {
	l := layout{dir: t.TempDir()}
	if err := os.MkdirAll(filepath.Join(l.dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if Running(l.dir) {
		t.Fatal("an empty directory runs")
	}
	unlock, err := lockFile(context.Background(), filepath.Join(l.dir, "run", "lock"))
	if err != nil {
		t.Fatal(err)
	}
	if !Running(l.dir) {
		t.Error("a directory whose lock an Up holds does not run")
	}
	unlock()
	if Running(l.dir) {
		t.Error("the directory still runs after the lock is released")
	}
}
