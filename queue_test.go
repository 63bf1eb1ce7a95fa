package streamdownloads_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// rawCall sends an API request with the test token and returns the response and its
// body, for the headers and the exact body that e.call does not show.
func (e *edge) rawCall(method, path string) (*http.Response, string) {
	e.t.Helper()
	resp, b := e.send(method, path, apiToken)
	return resp, string(b)
}

// checkBusy checks a 503 answer to a creation beyond max_queue: Retry-After in seconds,
// and (api) a one-line JSON error envelope naming max_queue, or (delivery) one line.
func checkBusy(t *testing.T, what string, resp *http.Response, body string, api bool) {
	t.Helper()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("%s beyond max_queue: %d %s, want 503", what, resp.StatusCode, body)
		return
	}
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n <= 0 {
		t.Errorf("%s beyond max_queue: Retry-After %q", what, resp.Header.Get("Retry-After"))
	}
	if strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") {
		t.Errorf("%s beyond max_queue: body %q is not one line", what, body)
	}
	if !api {
		return
	}
	var env envelope
	if err := json.Unmarshal([]byte(body), &env); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s beyond max_queue: %v, Content-Type %q, body %q", what, err, resp.Header.Get("Content-Type"), body)
	}
	if env.Success || len(env.Errors) != 1 || env.Errors[0].Code != 503 || !strings.Contains(env.Errors[0].Message, "max_queue") ||
		env.Messages == nil || env.Result != nil {
		t.Errorf("%s beyond max_queue: envelope %s", what, body)
	}
}

// TestMaxQueue: with max_jobs 1 and max_queue 2, while one job runs and two wait, a
// third POST and an on-demand GET of a new video answer 503 with Retry-After (the POST
// with a JSON error envelope) and create nothing; what waits is packaged, and once the
// queue has drained the refused video can be created.
func TestMaxQueue(t *testing.T) {
	origin := testutil.NewOrigin(t, demoCopies(t, "run", "q1", "q2", "late"))
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "\t\tmax_jobs 1\n\t\tmax_queue 2\n\t\ton_demand 1s\n")
	origin.HoldSegmentsAfter(0)
	if code, env := e.call("POST", "/a/stream/run/downloads"); code != 200 {
		t.Fatalf("POST run: %d %+v", code, env.Errors)
	}
	<-origin.Held // run has the only slot
	for _, v := range []string{"q1", "q2"} {
		if code, env := e.call("POST", "/a/stream/"+v+"/downloads"); code != 200 || env.Result["default"].Status != "inprogress" {
			t.Fatalf("POST %s: %d %+v", v, code, env)
		}
	}
	resp, body := e.rawCall("POST", "/a/stream/late/downloads")
	checkBusy(t, "POST", resp, body, true)
	resp, err := http.Get(e.base + "/late/downloads/default.mp4")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkBusy(t, "on-demand GET", resp, string(b), false)
	// The audio of a video that waits is a download of its own: refused too.
	resp, body = e.rawCall("POST", "/a/stream/q1/downloads/audio")
	checkBusy(t, "POST audio", resp, body, true)
	// A POST of a download that exists adds nothing to the queue: answered as always.
	if code, env := e.call("POST", "/a/stream/q1/downloads"); code != 200 || env.Result["default"].Status != "inprogress" {
		t.Errorf("POST of a queued download: %d %+v", code, env)
	}
	if got := e.statuses("late"); got != "late=none" {
		t.Errorf("refused: %s", got)
	}
	if n := origin.Count("/late/master.m3u8"); n != 0 {
		t.Errorf("a refused creation reached the origin %d times", n)
	}

	origin.Release()
	for _, v := range []string{"run", "q1", "q2"} {
		if en := e.waitReady(v, "default"); en.Status != "ready" {
			t.Errorf("%s: %s %s", v, en.Status, en.ErrorReasonText)
		}
	}
	e.packageReady("late")
}

// TestQueueHoldsKeys: downloads waiting in the queue keep no segment list: twelve
// videos of 20 000 segments each, queued behind a held job, leave the heap (Caddy runs
// in this process) about as it was. The POST reads the playlists once (so that it can
// answer 404 or 409 when the origin says so), the queue does not keep them, and the job
// reads them again when it starts, as after a restart.
func TestQueueHoldsKeys(t *testing.T) {
	const (
		queued   = 12
		segments = 20_000
	)
	src := demoCopies(t, "run")
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-PLAYLIST-TYPE:VOD\n")
	for i := range segments {
		fmt.Fprintf(&b, "#EXTINF:1.000000,\nsegment_with_a_long_name_%06d.ts\n", i)
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	for i := range queued {
		dir := filepath.Join(src, fmt.Sprintf("big%02d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "master.m3u8"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	origin := testutil.NewOrigin(t, src)
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "\t\tmax_jobs 1\n")
	origin.HoldSegmentsAfter(0)
	if code, env := e.call("POST", "/a/stream/run/downloads"); code != 200 {
		t.Fatalf("POST run: %d %+v", code, env.Errors)
	}
	<-origin.Held

	heap := func() uint64 {
		var ms runtime.MemStats
		for range 2 {
			runtime.GC()
		}
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	for i := range queued {
		v := fmt.Sprintf("big%02d", i)
		if code, env := e.call("POST", "/a/stream/"+v+"/downloads"); code != 200 || env.Result["default"].Status != "inprogress" {
			t.Fatalf("POST %s: %d %+v", v, code, env)
		}
	}
	after := heap()
	grown := int64(after) - int64(before)
	t.Logf("heap %d MiB → %d MiB with %d downloads of %d segments queued", before>>20, after>>20, queued, segments)
	// A segment list of 20 000 takes several MiB; a queued key, a few hundred bytes.
	if per := grown / queued; per > 512<<10 {
		t.Errorf("the heap grew by %d KiB per queued download", per>>10)
	}
	for i := range queued {
		v := fmt.Sprintf("big%02d", i)
		if got := e.status(v); got != "inprogress" {
			t.Errorf("%s: %s", v, got)
		}
		if n := origin.Count("/" + v + "/master.m3u8"); n != 1 {
			t.Errorf("%s: playlist read %d times by the POST and while queued, want once (the POST's)", v, n)
		}
	}
	// Released, each queued job reads its playlist when it starts.
	origin.Release()
	for i := range queued {
		v := fmt.Sprintf("big%02d", i)
		e.waitReady(v, "default") // its segments do not exist: it fails, which is not the point here
		if n := origin.Count("/" + v + "/master.m3u8"); n != 2 {
			t.Errorf("%s: playlist read %d times, want twice (the POST, then its job)", v, n)
		}
	}
}

// TestQueuedPOSTAnswers: a POST that must wait for a job slot still answers 404 for a
// video the origin does not have and 409 for a live one (docs/spec.md §3.1), and creates
// nothing; a video that exists is queued.
func TestQueuedPOSTAnswers(t *testing.T) {
	src := demoCopies(t, "run", "q1")
	if err := os.MkdirAll(filepath.Join(src, "live"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "live", "master.m3u8"), []byte("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nseg0.ts\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	origin := testutil.NewOrigin(t, src)
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "\t\tmax_jobs 1\n")
	origin.HoldSegmentsAfter(0)
	if code, env := e.call("POST", "/a/stream/run/downloads"); code != 200 {
		t.Fatalf("POST run: %d %+v", code, env.Errors)
	}
	<-origin.Held // run has the only slot
	for v, want := range map[string]int{"missing": 404, "live": 409, "q1": 200} {
		if code, env := e.call("POST", "/a/stream/"+v+"/downloads"); code != want {
			t.Errorf("POST %s while the slot is taken: %d %+v, want %d", v, code, env, want)
		}
	}
	if got := e.statuses("missing", "live", "q1"); got != "missing=none live=none q1=inprogress" {
		t.Errorf("after the POSTs: %s", got)
	}
	origin.Release()
	if en := e.waitReady("q1", "default"); en.Status != "ready" {
		t.Errorf("q1: %s %s", en.Status, en.ErrorReasonText)
	}
}
