package streamdownloads_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testcaddy"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// reloadConfig is the edge's config with the options a reload changes.
func reloadConfig(port int, origin, token string, maxJobs int, dir string) string {
	return testcaddy.Caddyfile(fmt.Sprintf(`
http://127.0.0.1:%d {
	bind 127.0.0.1
	stream_downloads {
		origin %s/{video_id}/master.m3u8
		api_token %s
		storage_dir %s
		max_jobs %d
	}
}
`, port, origin, token, dir, maxJobs))
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// quiesce closes the keep-alive connections of the test's client and of the origin, so
// that only what the module keeps is counted.
func quiesce(origin *testutil.Origin) {
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	origin.CloseClientConnections()
}

// settle waits (bounded) until the goroutines and descriptors are back within tol of
// the baseline, and returns the last counts.
func settle(t *testing.T, origin *testutil.Origin, g0, fd0, tol int) (int, int) {
	t.Helper()
	var g, fd int
	for deadline := time.Now().Add(5 * time.Second); ; {
		quiesce(origin)
		runtime.Gosched()
		runtime.GC()
		g, fd = runtime.NumGoroutine(), openFDs(t)
		if g <= g0+tol && fd <= fd0+tol || time.Now().After(deadline) {
			return g, fd
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReloadDuringJobs reloads the config (another API token, another max_jobs) while
// jobs wait at the origin: the jobs go on and complete, each origin file is fetched once,
// and after the jobs and the reloads no goroutine or file descriptor is left over.
func TestReloadDuringJobs(t *testing.T) {
	origin := testutil.NewOrigin(t, demoCopies(t, "warm", "r1", "r2", "r3"))
	port := testutil.FreePort(t)
	dir := t.TempDir()
	e := &edge{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), dir: dir}
	load := func(token string, maxJobs int) {
		t.Helper()
		testcaddy.Load(t, reloadConfig(port, origin.URL, token, maxJobs, dir))
	}
	testcaddy.Start(t, reloadConfig(port, origin.URL, apiToken, 2, dir))

	// Warm up: one job and one reload, so that what is started once per process (the
	// origin client's transport, Caddy's pools) is in the baseline.
	e.call("POST", "/a/stream/warm/downloads")
	if en := e.waitReady("warm", "default"); en.Status != "ready" {
		t.Fatalf("warm ended %s: %s", en.Status, en.ErrorReasonText)
	}
	load(apiToken, 2)
	quiesce(origin)
	time.Sleep(100 * time.Millisecond)
	g0, fd0 := settle(t, origin, 1<<30, 1<<30, 0)

	// Three jobs with max_jobs 2: two wait at the origin, one in the queue.
	origin.HoldSegmentsAfter(1)
	videos := []string{"r1", "r2", "r3"}
	for _, v := range videos {
		if code, env := e.call("POST", "/a/stream/"+v+"/downloads"); code != http.StatusOK {
			t.Fatalf("POST %s: %d %+v", v, code, env.Errors)
		}
	}
	<-origin.Held
	const reloads = 10
	prev := apiToken
	for i := 0; i < reloads; i++ {
		token := fmt.Sprintf("token-%d", i)
		if i == reloads-1 {
			token = apiToken
		}
		maxJobs := []int{1, 3, 2}[i%3]
		load(token, maxJobs)
		if code, _ := e.callWith("GET", "/a/stream/r1/downloads", prev); code != http.StatusUnauthorized && prev != token {
			t.Errorf("reload %d: the old token still works (%d)", i, code)
		}
		code, env := e.callWith("GET", "/a/stream/r1/downloads", token)
		if st := env.Result["default"].Status; code != http.StatusOK || st != "inprogress" && (i <= 4 || st != "ready") {
			t.Fatalf("reload %d: r1 is %d %+v, want in progress (or ready once released)", i, code, env.Result)
		}
		prev = token
		if i == 4 {
			origin.Release() // the rest of the reloads happen while the jobs run
		}
	}
	for _, v := range videos {
		if en := e.waitReady(v, "default"); en.Status != "ready" {
			t.Fatalf("%s ended %s: %s", v, en.Status, en.ErrorReasonText)
		}
	}
	for path, n := range origin.Counts() {
		// Playlists: by the POST that had to wait for a slot, then by its job.
		if n != 1 && !(strings.HasSuffix(path, ".m3u8") && n == 2) {
			t.Errorf("%s fetched %d times: a job ran twice", path, n)
		}
	}
	for _, v := range videos {
		for _, s := range []string{"seg_000.ts", "seg_001.ts", "seg_002.ts"} {
			if n := origin.Count("/" + v + "/240p/" + s); n != 1 {
				t.Errorf("%s/%s fetched %d times", v, s, n)
			}
		}
	}

	const tol = 3
	g, fd := settle(t, origin, g0, fd0, tol)
	t.Logf("after %d reloads: goroutines %d (baseline %d), fds %d (baseline %d)", reloads, g, g0, fd, fd0)
	if g > g0+tol {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines leaked across reloads: %d, baseline %d\n%s", g, g0, buf[:runtime.Stack(buf, true)])
	}
	if fd > fd0+tol {
		t.Errorf("file descriptors leaked across reloads: %d, baseline %d", fd, fd0)
	}
}

// TestReloadStorageDir: a reload to another storage_dir starts a manager for the new
// directory and stops the old one's jobs cleanly (records stay in progress, no temp
// file, no more origin requests); going back resumes and completes them.
func TestReloadStorageDir(t *testing.T) {
	origin := testutil.NewOrigin(t, demoCopies(t, "s1", "s2"))
	port := testutil.FreePort(t)
	dir1, dir2 := t.TempDir(), t.TempDir()
	e := &edge{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), dir: dir1}
	testcaddy.Start(t, reloadConfig(port, origin.URL, apiToken, 2, dir1))
	g0, fd0 := settle(t, origin, 1<<30, 1<<30, 0)

	origin.HoldSegmentsAfter(0)
	for _, v := range []string{"s1", "s2"} {
		if code, env := e.call("POST", "/a/stream/"+v+"/downloads"); code != http.StatusOK {
			t.Fatalf("POST %s: %d %+v", v, code, env.Errors)
		}
	}
	// Both jobs wait at the origin with all their segments asked for (3 each, fetched
	// in parallel), so that no request of theirs is still on its way.
	for i := 0; i < 6; i++ {
		select {
		case <-origin.Held:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d segment requests reached the origin", i)
		}
	}

	start := time.Now()
	testcaddy.Load(t, reloadConfig(port, origin.URL, apiToken, 2, dir2))
	t.Logf("reload to a new storage_dir took %v", time.Since(start))

	// The new manager knows nothing of the old directory's downloads.
	if code, env := e.call("GET", "/a/stream/s1/downloads"); code != http.StatusOK || len(env.Result) != 0 {
		t.Errorf("GET s1 with the new storage_dir: %d %+v, want no downloads", code, env.Result)
	}
	// The old manager's jobs stopped: records in progress, no temp file.
	for _, v := range []string{"s1", "s2"} {
		b, err := os.ReadFile(filepath.Join(dir1, v, "default.json"))
		if err != nil {
			t.Fatal(err)
		}
		var r diskRecord
		if err := json.Unmarshal(b, &r); err != nil || r.Status != "inprogress" {
			t.Errorf("old record of %s: %v %s, want inprogress", v, err, b)
		}
	}
	if left := tmpFiles(t, dir1); len(left) != 0 {
		t.Errorf("temp files left in the old storage_dir: %v", left)
	}
	// Nothing of the old jobs goes on at the origin once released.
	before := origin.Counts()
	origin.Release()
	time.Sleep(200 * time.Millisecond)
	for path, n := range origin.Counts() {
		if strings.HasSuffix(path, ".ts") && n != before[path] {
			t.Errorf("%s requested after the old manager stopped (%d → %d)", path, before[path], n)
		}
	}
	if entries, _ := os.ReadDir(dir2); len(entries) > 1 { // only .tmp
		t.Errorf("the new storage_dir holds %d entries", len(entries))
	}

	// Back to the first directory: its manager starts again and resumes both.
	testcaddy.Load(t, reloadConfig(port, origin.URL, apiToken, 2, dir1))
	for _, v := range []string{"s1", "s2"} {
		if en := e.waitReady(v, "default"); en.Status != "ready" {
			t.Fatalf("%s ended %s: %s", v, en.Status, en.ErrorReasonText)
		}
	}
	checkStore(t, dir1)
	// Two managers were started and one stopped: nothing of the stopped one is left.
	const tol = 3
	if g, fd := settle(t, origin, g0, fd0, tol); g > g0+tol || fd > fd0+tol {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines %d (baseline %d), fds %d (baseline %d)\n%s", g, g0, fd, fd0, buf[:runtime.Stack(buf, true)])
	}
}

// TestRejectedReload: a reload that Caddy rejects leaves the running config as it was,
// packaging settings included: with max_jobs 1 running and max_jobs 3 in the rejected
// config, one job runs at a time. Rejected by Provision (a signing key file that does
// not exist) or by Validate (max_jobs out of range, which Caddy checks after Provision).
func TestRejectedReload(t *testing.T) {
	for _, c := range []struct{ name, change string }{
		{"provision fails", "max_jobs 3\n\t\tsigning_key k1 /nonexistent/missing.pem"},
		{"validate fails", "max_jobs 2000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			origin := testutil.NewOrigin(t, demoCopies(t, "j1", "j2", "j3"))
			port := testutil.FreePort(t)
			dir := t.TempDir()
			e := &edge{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), dir: dir}
			good := reloadConfig(port, origin.URL, apiToken, 1, dir)
			testcaddy.Start(t, good)

			bad := strings.Replace(good, "max_jobs 1", c.change, 1)
			if err := testcaddy.TryLoad(bad); err == nil {
				t.Fatal("the bad config was accepted")
			}

			origin.HoldSegmentsAfter(0)
			for _, v := range []string{"j1", "j2", "j3"} {
				if code, env := e.call("POST", "/a/stream/"+v+"/downloads"); code != http.StatusOK {
					t.Fatalf("POST %s: %d %+v", v, code, env.Errors)
				}
			}
			<-origin.Held
			time.Sleep(300 * time.Millisecond) // time for more jobs to start, if they wrongly may
			segs := map[string]bool{}
			for path := range origin.Counts() {
				if strings.HasSuffix(path, ".ts") {
					segs[strings.Split(path, "/")[1]] = true
				}
			}
			if len(segs) != 1 {
				t.Errorf("%d videos fetched at once after a rejected reload; the running config has max_jobs 1", len(segs))
			}
			origin.Release()
			for _, v := range []string{"j1", "j2", "j3"} {
				if en := e.waitReady(v, "default"); en.Status != "ready" {
					t.Errorf("%s ended %s: %s", v, en.Status, en.ErrorReasonText)
				}
			}
		})
	}
}
