package testutil

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Memory of another process, from Linux's /proc: what a Caddy started with
// testcaddy.StartProcess holds.

// ChildPID is the process id of the child of this process running the executable exe
// (a path), waiting up to 10 s for it to appear.
func ChildPID(t testing.TB, exe string) int {
	t.Helper()
	want, err := filepath.EvalSymlinks(exe)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			stat, err := os.ReadFile(filepath.Join(d, "stat"))
			if err != nil {
				continue
			}
			// pid (comm) state ppid …; comm may hold spaces and parentheses.
			i := bytes.LastIndexByte(stat, ')')
			f := strings.Fields(string(stat[i+1:]))
			if len(f) < 2 || f[1] != strconv.Itoa(os.Getpid()) {
				continue
			}
			if got, err := os.Readlink(filepath.Join(d, "exe")); err == nil && got == want {
				pid, _ := strconv.Atoi(filepath.Base(d))
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no child process runs %s", exe)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ProcStatus reads a memory field of /proc/<pid>/status ("VmRSS", "VmHWM"), in bytes.
func ProcStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		return kb << 10, err
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// PeakRSS follows the resident memory of process pid from now on: it resets the
// kernel's high-water mark (VmHWM; writing 5 to clear_refs) and samples VmRSS besides,
// every 10 ms, in case the kernel does not allow the reset. Peak stops it and returns
// the most seen.
type PeakRSS struct {
	pid   int
	reset bool // the high-water mark was reset
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	max   int64
}

// FollowRSS starts following the resident memory of pid.
func FollowRSS(pid int) *PeakRSS {
	p := &PeakRSS{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	p.reset = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
	go func() {
		defer close(p.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if v, err := ProcStatus(pid, "VmRSS"); err == nil {
				p.mu.Lock()
				p.max = max(p.max, v)
				p.mu.Unlock()
			}
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// Peak stops following and returns the most resident memory seen (bytes), and whether
// it includes the kernel's high-water mark.
func (p *PeakRSS) Peak() (int64, bool) {
	close(p.stop)
	<-p.done
	peak := p.max
	if p.reset {
		if hwm, err := ProcStatus(p.pid, "VmHWM"); err == nil {
			peak = max(peak, hwm)
		}
	}
	return peak, p.reset
}
