package testcaddy

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Binary builds the project's Caddy (./cmd/caddy, the binary users build) once per test
// binary and returns its path. RemoveBinary, from TestMain, deletes it.
func Binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: runs without -short")
	}
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		buildDir, buildErr = os.MkdirTemp("", "testcaddy-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, "caddy"), "./cmd/caddy")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "caddy")
}

// RemoveBinary deletes what Binary built; call it from TestMain after m.Run.
func RemoveBinary() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// Process is a Caddy subprocess running a Caddyfile, in its own process group.
type Process struct {
	t    testing.TB
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	logs *syncBuffer
}

// StartProcess runs `bin run` with config (a Caddyfile) and waits until addr
// (host:port) accepts connections. Its stdout and stderr are kept (Logs). The process
// group is killed when the test ends, if it still runs.
func StartProcess(t testing.TB, bin, config, addr string) *Process {
	t.Helper()
	file := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &Process{t: t, done: make(chan struct{}), logs: new(syncBuffer)}
	p.cmd = exec.Command(bin, "run", "--config", file, "--adapter", "caddyfile")
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Its own HOME and XDG dirs: nothing of the user's Caddy data is touched.
	home := t.TempDir()
	p.cmd.Env = append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+home, "XDG_CONFIG_HOME="+home)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.Kill() })

	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("caddy exited before listening on %s: %v\n%s", addr, p.cmd.ProcessState, p.Logs())
		default:
		}
		if time.Now().After(deadline) {
			p.Kill()
			t.Fatalf("caddy not listening on %s after 20s\n%s", addr, p.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill sends SIGKILL to the process group and waits for the process to exit.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("caddy (pid %d) did not exit 10s after SIGKILL", p.cmd.Process.Pid)
	}
}

// Logs returns what the process wrote so far.
func (p *Process) Logs() string { return p.logs.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(b)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
