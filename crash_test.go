package streamdownloads_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testcaddy"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testcaddy.RemoveBinary()
	os.Exit(code)
}

// diskRecord is the part of a record file (<storage>/<video>/<type>.json) checked here.
type diskRecord struct {
	Video  string `json:"video"`
	Type   string `json:"type"`
	Status string `json:"status"`
	Size   int64  `json:"size"`
	ETag   string `json:"etag"`
}

// checkStore checks, with Caddy stopped or running, that every ready record names a
// complete file: present, of the recorded size and with the recorded ETag (a hash of the
// content). It returns the records by "video/type".
func checkStore(t *testing.T, dir string) map[string]diskRecord {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	recs := map[string]diskRecord{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var r diskRecord
		if err := json.Unmarshal(b, &r); err != nil {
			t.Errorf("record %s is not JSON (%v): %q", p, err, b)
			continue
		}
		recs[r.Video+"/"+r.Type] = r
		if r.Status != "ready" {
			continue
		}
		file := strings.TrimSuffix(p, ".json") + ".mp4"
		if r.Type == "audio" {
			file = strings.TrimSuffix(p, ".json") + ".m4a"
		}
		content, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("ready record %s: %v", p, err)
			continue
		}
		if int64(len(content)) != r.Size {
			t.Errorf("ready record %s says %d bytes, the file has %d", p, r.Size, len(content))
		}
		if !strongETag.MatchString(r.ETag) {
			t.Errorf("ready record %s has ETag %s, want a strong one of 32 hex digits", p, r.ETag)
		}
	}
	return recs
}

// strongETag is the form of a download's ETag (packager's fileETag).
var strongETag = regexp.MustCompile(`^"[0-9a-f]{32}"$`)

func tmpFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, ".tmp"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestCrashRestart runs the project's Caddy binary and kills it with SIGKILL at several
// points of two jobs (waiting at the origin, fetching, finishing), starting it again each
// time with the same config: the ready download stays ready and byte-identical, the
// interrupted ones start again and complete with the same bytes, no temp file and no
// truncated ready file is ever left.
func TestCrashRestart(t *testing.T) {
	bin := testcaddy.Binary(t)
	origin := testutil.NewOrigin(t, demoCopies(t, "a", "b", "c"))
	e := newEdge(t, origin.URL+"/{video_id}/master.m3u8", "\t\tmax_jobs 2\n")
	addr := e.addr()

	var logs []string
	start := func() *testcaddy.Process { return testcaddy.StartProcess(t, bin, e.cfg, addr) }
	kill := func(p *testcaddy.Process) {
		p.Kill()
		logs = append(logs, p.Logs())
		// Keep-alive connections to the dead process would fail the next POST.
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	}
	post := func(video string) entry {
		t.Helper()
		code, env := e.call("POST", "/acct/stream/"+video+"/downloads")
		if code != http.StatusOK {
			t.Fatalf("POST %s: %d %+v", video, code, env.Errors)
		}
		return env.Result["default"]
	}
	getFile := func(video string) ([]byte, string) {
		t.Helper()
		path, resp := e.download(e.base + "/" + video + "/downloads/default.mp4")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s file: %d", video, resp.StatusCode)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b, resp.Header.Get("ETag")
	}

	p := start()
	post("a")
	if en := e.waitReady("a", "default"); en.Status != "ready" {
		t.Fatalf("a ended %s: %s", en.Status, en.ErrorReasonText)
	}
	aBytes, aETag := getFile("a")

	rng := rand.New(rand.NewSource(5))
	const kills = 5
	for i := 0; i < kills; i++ {
		// The first run is already up; later ones restart from the killed state, and
		// the resumed jobs go to the origin at once, so the hold comes first.
		pass := rng.Intn(3) // segments let through before the hold (each job has 3)
		origin.HoldSegmentsAfter(pass)
		if i > 0 {
			p = start()
			// The ready download survived the crash unchanged.
			if b, etag := getFile("a"); etag != aETag || !bytes.Equal(b, aBytes) {
				t.Fatalf("restart %d: a changed (ETag %s → %s, %d → %d bytes)", i, aETag, etag, len(aBytes), len(b))
			}
		}
		for _, v := range []string{"b", "c"} {
			if en := post(v); en.Status == "ready" {
				// Done before a kill: start it again so that the next kill finds a job.
				if code, env := e.call("DELETE", "/acct/stream/"+v+"/downloads"); code != http.StatusOK {
					t.Fatalf("DELETE %s: %d %+v", v, code, env.Errors)
				}
				post(v)
			}
		}
		select {
		case <-origin.Held:
		case <-time.After(15 * time.Second):
			t.Fatalf("kill %d: no job reached the origin's segments", i)
		}
		delay := time.Duration(rng.Intn(80)) * time.Millisecond
		time.Sleep(delay)
		how := "held at the origin"
		if i%2 == 1 {
			// Let the jobs run, so the kill lands while segments stream in, the file
			// is written, or committed.
			origin.Release()
			d := time.Duration(rng.Intn(30)) * time.Millisecond
			time.Sleep(d)
			how = fmt.Sprintf("running (%v after release)", d)
		}
		kill(p)
		t.Logf("kill %d: %v after the hold (%d segments let through), jobs %s; temp files left: %d",
			i, delay, pass, how, len(tmpFiles(t, e.dir)))
		origin.Release()
		for len(origin.Held) > 0 {
			<-origin.Held
		}
		// Stopped state: a ready record never names a missing or truncated file.
		recs := checkStore(t, e.dir)
		if r := recs["a/default"]; r.Status != "ready" || r.ETag != aETag {
			t.Fatalf("kill %d: a's record is %+v", i, r)
		}
	}

	// Last start: the interrupted jobs complete.
	leftover := tmpFiles(t, e.dir)
	p = start()
	for _, v := range []string{"b", "c"} {
		if en := e.waitReady(v, "default"); en.Status != "ready" {
			t.Fatalf("%s ended %s: %s %s", v, en.Status, en.ErrorReasonCode, en.ErrorReasonText)
		}
	}
	if b, etag := getFile("a"); etag != aETag || !bytes.Equal(b, aBytes) {
		t.Errorf("a changed over the restarts (ETag %s → %s)", aETag, etag)
	}
	for _, v := range []string{"b", "c"} {
		// The same bytes; the ETags differ, the URL being part of them.
		b, etag := getFile(v)
		if !strongETag.MatchString(etag) || !bytes.Equal(b, aBytes) {
			t.Errorf("%s: %d bytes, ETag %s; the same source as a (%d bytes) must give the same bytes", v, len(b), etag, len(aBytes))
		}
	}
	if left := tmpFiles(t, e.dir); len(left) != 0 {
		t.Errorf("temp files left after the restart (before it: %v): %v", leftover, left)
	}
	for k, r := range checkStore(t, e.dir) {
		if r.Status != "ready" {
			t.Errorf("record %s is %s at the end", k, r.Status)
		}
	}
	path, _ := e.download(e.base + "/b/downloads/default.mp4")
	t.Log(testutil.CompareWithSource(t, path, filepath.Join(testutil.DemoOrigin(t), "demo", "240p", "index.m3u8")))
	kill(p)
	for i, l := range logs {
		if strings.Contains(strings.ToLower(l), "panic") {
			t.Errorf("run %d of caddy logged a panic:\n%s", i, l)
		}
		for _, line := range strings.Split(l, "\n") {
			if strings.Contains(line, `"level":"error"`) {
				t.Errorf("run %d of caddy logged an error: %s", i, line)
			}
		}
	}
}

// TestCrashMidDelete starts Caddy on the state a crash in the middle of a DELETE leaves
// behind (the store removes the file, then the record): the download must not be
// reported ready with a URL that has no file behind it.
func TestCrashMidDelete(t *testing.T) {
	origin := testutil.NewOrigin(t, demoCopies(t, "a"))
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "")
	if code, _ := e.call("POST", "/acct/stream/a/downloads"); code != http.StatusOK {
		t.Fatalf("POST: %d", code)
	}
	if en := e.waitReady("a", "default"); en.Status != "ready" {
		t.Fatalf("a ended %s: %s", en.Status, en.ErrorReasonText)
	}
	// Stop the module (Caddy without it), leave the half-done DELETE's state, start again.
	testcaddy.Load(t, testcaddy.Caddyfile("http://127.0.0.1:"+strings.Split(e.base, ":")[2]+" {\n\tbind 127.0.0.1\n\trespond 503\n}\n"))
	if err := os.Remove(filepath.Join(e.dir, "a", "default.mp4")); err != nil {
		t.Fatal(err)
	}
	testcaddy.Load(t, e.cfg)
	code, env := e.call("GET", "/acct/stream/a/downloads")
	if en, ok := env.Result["default"]; code != http.StatusOK || ok && en.Status == "ready" {
		t.Errorf("after a crash mid-DELETE the API says %d %+v: ready without a file", code, env.Result)
	}
}
