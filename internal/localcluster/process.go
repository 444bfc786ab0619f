package localcluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cdcq/cdcq/internal/atomicfile"
)

// process is a JVM this process started.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the JVM has exited
	waitErr error         // how it exited; read after done
}

// exitedErr says that a JVM is gone during start-up, with how it ended and
// the end of its log.
func (p *process) exitedErr() error {
	how := "exited"
	if p.waitErr != nil {
		how = p.waitErr.Error()
	} else if p.cmd.ProcessState != nil {
		how = p.cmd.ProcessState.String()
	}
	return fmt.Errorf("localcluster: %s stopped during start-up (%s); last lines of %s:\n%s", p.name, how, p.logPath, tailFile(p.logPath, 30))
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startJVM starts java with args as component name, in a session of its own,
// with its output in logs/<name>.log (the previous one kept as .log.1), and
// records its pid.
func startJVM(l layout, cfg Config, java, name string, env []string, args ...string) (*process, error) {
	logPath := l.log(name)
	if _, err := os.Stat(logPath); err == nil {
		_ = os.Rename(logPath, logPath+".1")
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("localcluster: start %s: %w", name, err)
	}
	defer logFile.Close() // the JVM has its own copy
	cmd := exec.Command(java, args...)
	cmd.Dir = l.dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if cfg.DieWithParent {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	fmt.Fprintf(logFile, "# %s %s\n", java, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("localcluster: start %s: %w", name, err)
	}
	p := &process{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	if err := atomicfile.Write(l.pid(name), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return nil, fmt.Errorf("localcluster: start %s: write pid file: %w", name, err)
	}
	return p, nil
}

// runningPID is the pid in the component's pid file if that process still
// runs and is this cluster's (its command line names the cluster's conf
// directory, so a pid reused by another program is not taken for it). A
// pid file of a process that is gone is removed.
func (l layout) runningPID(name string) (int, bool) {
	b, err := os.ReadFile(l.pid(name))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err == nil && pid > 0 && alive(pid) && l.owns(pid) {
		return pid, true
	}
	_ = os.Remove(l.pid(name))
	return 0, false
}

// owns reports whether pid is one of this cluster's JVMs.
func (l layout) owns(pid int) bool {
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	return bytes.Contains(cmdline, []byte(l.conf()+string(filepath.Separator)))
}

// alive reports whether pid runs. A zombie (exited, not yet reaped by its
// parent) does not.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || (stat[i+2] != 'Z' && stat[i+2] != 'X')
}

// stopOrder stops the clients before what they talk to: Connect commits its
// offsets and leaves its group while Kafka still answers.
var stopOrder = [][]string{{SQLGateway, Connect, TaskManager}, {JobManager}, {Kafka}}

// stopGrace is how long a component has to stop after SIGTERM before it gets
// SIGKILL.
const stopGrace = 20 * time.Second

// Down stops the cluster in dir: SIGTERM to each JVM's process group, then
// SIGKILL to those still running after 20 seconds, and removes <dir>/env.
// Stopping a cluster that does not run is not an error; data and logs stay.
func Down(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("localcluster: directory %q: %w", dir, err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	l := layout{dir: abs}
	if err := stop(l, stopGrace); err != nil {
		return err
	}
	// The env file and state describe a running cluster only.
	for _, path := range []string{l.env(), l.state()} {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("localcluster: %w", err)
		}
	}
	return nil
}

// Running reports whether any JVM of the cluster in dir runs, or an Up is
// starting it.
func Running(dir string) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	l := layout{dir: abs}
	if f, err := os.Open(filepath.Join(l.dir, "run", "lock")); err == nil {
		defer f.Close()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); errors.Is(err, syscall.EWOULDBLOCK) {
			return true // Up holds it
		}
	}
	for _, name := range components {
		if _, ok := l.runningPID(name); ok {
			return true
		}
	}
	return false
}

func stop(l layout, grace time.Duration) error {
	var errs []error
	for _, stage := range stopOrder {
		pids := map[string]int{}
		for _, name := range stage {
			if pid, ok := l.runningPID(name); ok {
				pids[name] = pid
			}
		}
		for name, pid := range pids {
			// Setsid made the JVM a process group leader: the group is -pid.
			if err := syscall.Kill(-pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("localcluster: stop %s (pid %d): %w", name, pid, err))
			}
		}
		deadline := time.Now().Add(grace)
		for len(pids) > 0 {
			for name, pid := range pids {
				if !alive(pid) {
					delete(pids, name)
					_ = os.Remove(l.pid(name))
				}
			}
			if len(pids) == 0 {
				break
			}
			if time.Now().After(deadline) {
				for name, pid := range pids {
					_ = syscall.Kill(-pid, syscall.SIGKILL)
					if !waitGone(pid, 5*time.Second) {
						errs = append(errs, fmt.Errorf("localcluster: %s (pid %d) survived SIGKILL", name, pid))
						continue
					}
					_ = os.Remove(l.pid(name))
				}
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for alive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// tailFile is the end of a file, at most n lines, read from at most its last
// 64 KiB.
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	defer f.Close()
	const max = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, 0)
	}
	b := make([]byte, max)
	k, _ := f.Read(b)
	return lastLines(string(b[:k]), n)
}
