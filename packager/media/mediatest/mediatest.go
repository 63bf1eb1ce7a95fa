// Package mediatest holds test helpers shared by the packager's media packages.
package mediatest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Tool returns the path of an external tool (ffmpeg, ffprobe). A missing tool fails the
// test, except in -short mode where the test is skipped.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if testing.Short() {
			t.Skipf("%s not found (skipped in -short mode): %v", name, err)
		}
		t.Fatalf("%s not found: %v (install it, or run with -short)", name, err)
	}
	return p
}

// Run runs an external tool and fails the test with its output when it fails.
func Run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(Tool(t, name), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}

// RepoRoot returns the module root (the directory holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("runtime.Caller failed")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// DemoSegments returns the paths of the demo fixture's 240p TS segments, in order.
func DemoSegments(t testing.TB) []string {
	t.Helper()
	dir := filepath.Join(RepoRoot(t), "testdata", "demo", "origin", "demo", "240p")
	var out []string
	for _, n := range []string{"seg_000.ts", "seg_001.ts", "seg_002.ts"} {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("fixture missing: %v", err)
		}
		out = append(out, p)
	}
	return out
}
