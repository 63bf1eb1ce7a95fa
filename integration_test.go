package streamdownloads_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testcaddy"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

const apiToken = "test-api-token"

type entry struct {
	Status          string   `json:"status"`
	URL             string   `json:"url"`
	PercentComplete *float64 `json:"percentComplete"`
	ErrorReasonCode string   `json:"errorReasonCode"`
	ErrorReasonText string   `json:"errorReasonText"`
}

type envelope struct {
	Result  map[string]entry `json:"result"`
	Success bool             `json:"success"`
	Errors  []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
	Messages []string `json:"messages"`
}

// edge is the module under test, running in Caddy on 127.0.0.1.
type edge struct {
	t    *testing.T
	base string
	dir  string // storage_dir
	cfg  string
}

// startEdge runs Caddy with stream_downloads in front of origin (a URL template with
// {video_id}); extra goes into the directive's block.
func startEdge(t *testing.T, origin, extra string) *edge {
	return startEdgeWith(t, origin, extra)
}

// startEdgeWith is startEdge with global options (one per line).
func startEdgeWith(t *testing.T, origin, extra string, globals ...string) *edge {
	e := newEdge(t, origin, extra, globals...)
	testcaddy.Start(t, e.cfg)
	return e
}

// newEdge is the edge startEdgeWith runs, not started: for tests that run it as a
// process of its own (testcaddy.StartProcess on e.addr()).
func newEdge(t *testing.T, origin, extra string, globals ...string) *edge {
	port := testutil.FreePort(t)
	e := &edge{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), dir: t.TempDir()}
	e.cfg = testcaddy.Caddyfile(fmt.Sprintf(`
http://127.0.0.1:%d {
	bind 127.0.0.1
	stream_downloads {
		origin %s
		api_token %s
		storage_dir %s
%s	}
	respond "next handler" 418
}
`, port, origin, apiToken, e.dir, extra), globals...)
	return e
}

// addr is the edge's host:port.
func (e *edge) addr() string { return strings.TrimPrefix(e.base, "http://") }

// send sends a request with token (none when empty) and returns the response and its
// whole body.
func (e *edge) send(method, path, token string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// call sends an API request with the test token and decodes the envelope.
func (e *edge) call(method, path string) (int, envelope) {
	e.t.Helper()
	return e.callWith(method, path, apiToken)
}

func (e *edge) callWith(method, path, token string) (int, envelope) {
	e.t.Helper()
	resp, body := e.send(method, path, token)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Fatalf("%s %s: Content-Type %q, body %s", method, path, ct, body)
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		e.t.Fatalf("%s %s: %v in %s", method, path, err, body)
	}
	if env.Errors == nil || env.Messages == nil {
		e.t.Errorf("%s %s: errors and messages must be arrays: %s", method, path, body)
	}
	if env.Success != (resp.StatusCode == http.StatusOK) {
		e.t.Errorf("%s %s: success %v with status %d", method, path, env.Success, resp.StatusCode)
	}
	return resp.StatusCode, env
}

// waitReady polls the video's downloads until typ is no longer in progress, checking
// that the percentage never goes down, and returns the final entry.
func (e *edge) waitReady(video, typ string) entry {
	e.t.Helper()
	last := -1.0
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		code, env := e.call("GET", "/acct/stream/"+video+"/downloads")
		if code != http.StatusOK {
			e.t.Fatalf("GET downloads: %d %+v", code, env.Errors)
		}
		en, ok := env.Result[typ]
		if !ok {
			e.t.Fatalf("GET downloads: no %q in %+v", typ, env.Result)
		}
		if en.PercentComplete == nil {
			e.t.Fatalf("no percentComplete in %+v", en)
		}
		p := *en.PercentComplete
		if p < last || p < 0 || p > 100 {
			e.t.Fatalf("percentComplete went from %v to %v", last, p)
		}
		last = p
		if (p == 100) != (en.Status == "ready") {
			e.t.Fatalf("percentComplete %v with status %s", p, en.Status)
		}
		if en.Status != "inprogress" {
			return en
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("download %s/%s still in progress after 2 minutes", video, typ)
	return entry{}
}

// download GETs url into a file and returns its path and the response.
func (e *edge) download(url string) (string, *http.Response) {
	e.t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	path := filepath.Join(e.t.TempDir(), "out.mp4")
	f, err := os.Create(path)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		e.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		e.t.Fatal(err)
	}
	return path, resp
}

// TestDownloadFlow follows the README: POST, poll, download, with the origin served by
// Caddy's file_server from the demo's files.
func TestDownloadFlow(t *testing.T) {
	originPort := testutil.FreePort(t)
	port := testutil.FreePort(t)
	dir := t.TempDir()
	testcaddy.Start(t, testcaddy.Caddyfile(fmt.Sprintf(`
http://127.0.0.1:%d {
	bind 127.0.0.1
	root * %s
	file_server
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	stream_downloads {
		origin http://127.0.0.1:%d/{video_id}/master.m3u8
		api_token %s
		storage_dir %s
	}
}
`, originPort, testutil.DemoOrigin(t), port, originPort, apiToken, dir)))
	e := &edge{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), dir: dir}

	code, env := e.call("POST", "/acct-1/stream/demo/downloads")
	if code != http.StatusOK {
		t.Fatalf("POST: %d %+v", code, env.Errors)
	}
	first := env.Result["default"]
	if first.Status != "inprogress" && first.Status != "ready" {
		t.Fatalf("POST answered status %q", first.Status)
	}
	wantURL := e.base + "/demo/downloads/default.mp4"
	if first.URL != wantURL {
		t.Errorf("url %q, want %q", first.URL, wantURL)
	}
	ready := e.waitReady("demo", "default")
	if ready.Status != "ready" {
		t.Fatalf("download ended %s: %s %s", ready.Status, ready.ErrorReasonCode, ready.ErrorReasonText)
	}

	path, resp := e.download(ready.URL)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET file: %d", resp.StatusCode)
	}
	for h, want := range map[string]string{"Content-Type": "video/mp4", "Accept-Ranges": "bytes"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	for _, h := range []string{"Content-Length", "ETag", "Last-Modified"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	t.Log(testutil.CompareWithSource(t, path, filepath.Join(testutil.DemoOrigin(t), "demo", "240p", "index.m3u8")))

	// A second POST changes nothing.
	code, env = e.call("POST", "/other/stream/demo/downloads/default")
	if code != http.StatusOK || env.Result["default"].Status != "ready" || *env.Result["default"].PercentComplete != 100 {
		t.Errorf("second POST: %d %+v", code, env)
	}
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ranges", func(t *testing.T) { checkRanges(t, ready.URL, whole, resp.Header.Get("ETag")) })
	t.Run("filename", func(t *testing.T) {
		r, err := http.Head(ready.URL + "?filename=My_Video-1")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := r.Header.Get("Content-Disposition"), `attachment; filename="My_Video-1.mp4"`; got != want {
			t.Errorf("Content-Disposition %q, want %q", got, want)
		}
		r, err = http.Get(ready.URL + "?filename=..%2Fetc")
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("bad filename: %d, want 400", r.StatusCode)
		}
	})

	// DELETE removes the file and the record.
	code, env = e.call("DELETE", "/acct-1/stream/demo/downloads")
	if code != http.StatusOK || len(env.Result) != 0 {
		t.Errorf("DELETE: %d %+v", code, env)
	}
	if r, err := http.Get(ready.URL); err != nil || r.StatusCode != http.StatusNotFound {
		t.Errorf("GET after DELETE: %v %v, want 404", r.StatusCode, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "demo", "*")); len(left) != 0 {
		t.Errorf("files left after DELETE: %v", left)
	}
}

// checkRanges compares range answers with the whole file, byte for byte.
func checkRanges(t *testing.T, url string, whole []byte, etag string) {
	n := int64(len(whole))
	cases := []struct {
		name, rng, ifRange, ifNoneMatch string
		status                          int
		from, to                        int64 // expected body whole[from:to]
	}{
		{name: "first bytes", rng: "bytes=0-99", status: 206, from: 0, to: 100},
		{name: "middle", rng: fmt.Sprintf("bytes=%d-%d", n/2, n/2+65535), status: 206, from: n / 2, to: n/2 + 65536},
		{name: "suffix", rng: "bytes=-1000", status: 206, from: n - 1000, to: n},
		{name: "open end", rng: fmt.Sprintf("bytes=%d-", n-12345), status: 206, from: n - 12345, to: n},
		{name: "past the end", rng: fmt.Sprintf("bytes=%d-", n+10), status: 416},
		{name: "if-range matches", rng: "bytes=10-19", ifRange: etag, status: 206, from: 10, to: 20},
		{name: "if-range stale", rng: "bytes=10-19", ifRange: `"stale"`, status: 200, from: 0, to: n},
		{name: "if-none-match", ifNoneMatch: etag, status: 304},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", url, nil)
			for h, v := range map[string]string{"Range": c.rng, "If-Range": c.ifRange, "If-None-Match": c.ifNoneMatch} {
				if v != "" {
					req.Header.Set(h, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if c.status/100 == 2 && !bytes.Equal(body, whole[c.from:c.to]) {
				t.Errorf("body is not bytes %d-%d of the file (%d bytes)", c.from, c.to-1, len(body))
			}
		})
	}
}

// TestAPIErrors checks the answers to bad requests (docs/spec.md §3.1) and that they reach
// neither the origin nor the disk.
func TestAPIErrors(t *testing.T) {
	origin := testutil.NewOrigin(t, t.TempDir())
	writeFile(t, origin, "live/index.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nseg0.ts\n")
	e := startEdge(t, origin.URL+"/{video_id}/index.m3u8", "")

	cases := []struct {
		name, method, path, token string
		status                    int
		msg                       string // part of the error message
	}{
		{"no token", "POST", "/a/stream/v1/downloads", "", 401, "API token"},
		{"wrong token", "POST", "/a/stream/v1/downloads", "nope", 401, "API token"},
		{"bad id", "POST", "/a/stream/bad.id/downloads", apiToken, 400, "invalid video id"},
		{"long id", "POST", "/a/stream/" + strings.Repeat("x", 129) + "/downloads", apiToken, 400, "invalid video id"},
		{"unknown type", "POST", "/a/stream/v1/downloads/hd", apiToken, 400, "unknown download type"},
		{"not at origin", "POST", "/a/stream/missing/downloads", apiToken, 404, "no video"},
		{"live", "POST", "/a/stream/live/downloads", apiToken, 409, "live"},
		{"delete nothing", "DELETE", "/a/stream/v1/downloads", apiToken, 404, "no such download"},
		{"method", "PUT", "/a/stream/v1/downloads", apiToken, 405, "method"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, env := e.callWith(c.method, c.path, c.token)
			if code != c.status {
				t.Fatalf("status %d, want %d (%+v)", code, c.status, env.Errors)
			}
			if len(env.Errors) != 1 || !strings.Contains(env.Errors[0].Message, c.msg) {
				t.Errorf("errors %+v, want one containing %q", env.Errors, c.msg)
			}
		})
	}
	if n := origin.Count("/bad.id/index.m3u8"); n != 0 {
		t.Errorf("a bad id reached the origin")
	}
	if entries, _ := os.ReadDir(e.dir); len(entries) > 1 { // only .tmp
		t.Errorf("storage_dir holds %d entries after refused requests", len(entries))
	}
	code, env := e.call("GET", "/a/stream/v1/downloads")
	if code != 200 || len(env.Result) != 0 {
		t.Errorf("GET of a video without downloads: %d %+v", code, env)
	}
	for path, want := range map[string]int{"/v1/downloads/default.mp4": 404, "/x.y/downloads/default.mp4": 400, "/elsewhere": 418} {
		resp, err := http.Get(e.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

func writeFile(t *testing.T, o *testutil.Origin, name, content string) {
	t.Helper()
	p := filepath.Join(o.Dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentPosts sends many POSTs for one video at once: one job, each origin file
// fetched once.
func TestConcurrentPosts(t *testing.T) {
	origin := testutil.NewOrigin(t, testutil.DemoOrigin(t))
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "")
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, env := e.call("POST", "/a/stream/demo/downloads"); code != 200 {
				t.Errorf("POST: %d %+v", code, env.Errors)
			}
		}()
	}
	wg.Wait()
	if en := e.waitReady("demo", "default"); en.Status != "ready" {
		t.Fatalf("ended %s: %s", en.Status, en.ErrorReasonText)
	}
	for path, n := range origin.Counts() {
		if n != 1 {
			t.Errorf("%s fetched %d times", path, n)
		}
	}
	if n := origin.Count("/demo/240p/seg_002.ts"); n != 1 {
		t.Errorf("last segment fetched %d times", n)
	}
}

// TestRestart stops Caddy in the middle of a job and starts it again: the ready
// download stays ready and identical, the interrupted one completes, no temp file stays.
func TestRestart(t *testing.T) {
	origin := testutil.NewOrigin(t, demoCopies(t, "first", "second"))
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "\t\tfetch_concurrency 1\n")

	if code, _ := e.call("POST", "/a/stream/first/downloads"); code != 200 {
		t.Fatalf("POST first: %d", code)
	}
	ready := e.waitReady("first", "default")
	before, resp := e.download(ready.URL)
	etag := resp.Header.Get("ETag")

	origin.HoldSegmentsAfter(1)
	if code, _ := e.call("POST", "/a/stream/second/downloads"); code != 200 {
		t.Fatalf("POST second: %d", code)
	}
	<-origin.Held // the job is in the middle: one segment done, the next one asked for

	// Stop: Caddy without the module (the manager goes), then the same config again.
	testcaddy.Load(t, testcaddy.Caddyfile("http://127.0.0.1:"+strings.Split(e.base, ":")[2]+" {\n\tbind 127.0.0.1\n\trespond 503\n}\n"))
	if tmp, _ := os.ReadDir(filepath.Join(e.dir, ".tmp")); len(tmp) != 0 {
		t.Errorf("temp files left after stop: %d", len(tmp))
	}
	origin.Release()
	testcaddy.Load(t, e.cfg)

	if en := e.waitReady("second", "default"); en.Status != "ready" {
		t.Fatalf("resumed download ended %s: %s", en.Status, en.ErrorReasonText)
	}
	code, env := e.call("GET", "/a/stream/first/downloads")
	if code != 200 || env.Result["default"].Status != "ready" {
		t.Fatalf("first after restart: %d %+v", code, env)
	}
	after, resp := e.download(ready.URL)
	if resp.Header.Get("ETag") != etag {
		t.Errorf("ETag changed over a restart: %s → %s", etag, resp.Header.Get("ETag"))
	}
	a, _ := os.ReadFile(before)
	b, _ := os.ReadFile(after)
	if !bytes.Equal(a, b) {
		t.Errorf("ready file changed over a restart")
	}
	// Same source, so the resumed download is the same bytes too (deterministic output).
	second, _ := e.download(e.base + "/second/downloads/default.mp4")
	if c, _ := os.ReadFile(second); !bytes.Equal(a, c) {
		t.Errorf("the same source packaged twice gave different bytes")
	}
}

// TestInProgressDelivery: a GET while packaging answers 503 with Retry-After.
func TestInProgressDelivery(t *testing.T) {
	origin := testutil.NewOrigin(t, testutil.DemoOrigin(t))
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "")
	origin.HoldSegmentsAfter(0)
	if code, _ := e.call("POST", "/a/stream/demo/downloads"); code != 200 {
		t.Fatalf("POST: %d", code)
	}
	<-origin.Held
	resp, err := http.Get(e.base + "/demo/downloads/default.mp4")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("GET while packaging: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	origin.Release()
	if en := e.waitReady("demo", "default"); en.Status != "ready" {
		t.Fatalf("ended %s: %s", en.Status, en.ErrorReasonText)
	}
}

// TestMaxJobs: with max_jobs 1, a second video waits in the queue, untouched at the
// origin, until the first is done.
func TestMaxJobs(t *testing.T) {
	origin := testutil.NewOrigin(t, demoCopies(t, "one", "two"))
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "\t\tmax_jobs 1\n")
	origin.HoldSegmentsAfter(0)
	for _, v := range []string{"one", "two"} {
		if code, _ := e.call("POST", "/a/stream/"+v+"/downloads"); code != 200 {
			t.Fatalf("POST %s: %d", v, code)
		}
	}
	<-origin.Held
	// Whichever job got the slot is held at its segments; the other must not fetch any.
	// From outside the process that absence can only be watched for a while; packager's
	// TestScheduler checks the slots deterministically.
	time.Sleep(200 * time.Millisecond)
	segs := map[string]int{}
	for path, n := range origin.Counts() {
		if strings.HasSuffix(path, ".ts") {
			segs[strings.Split(path, "/")[1]] += n
		}
	}
	if len(segs) != 1 {
		t.Errorf("segment requests by video %v: with max_jobs 1 only one video may be fetched", segs)
	}
	origin.Release()
	for _, v := range []string{"one", "two"} {
		if en := e.waitReady(v, "default"); en.Status != "ready" {
			t.Errorf("%s ended %s: %s", v, en.Status, en.ErrorReasonText)
		}
	}
}

// TestOriginFailure: a segment the origin does not have ends the run in error, naming the
// URL and status; a POST after the origin is mended starts it again.
func TestOriginFailure(t *testing.T) {
	src := demoCopies(t, "vid")
	seg := filepath.Join(src, "vid", "240p", "seg_001.ts")
	saved, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(seg); err != nil {
		t.Fatal(err)
	}
	origin := testutil.NewOrigin(t, src)
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "")
	if code, _ := e.call("POST", "/a/stream/vid/downloads"); code != 200 {
		t.Fatalf("POST: %d", code)
	}
	en := e.waitReady("vid", "default")
	if en.Status != "error" || en.ErrorReasonCode != "origin_error" ||
		!strings.Contains(en.ErrorReasonText, "404") || !strings.Contains(en.ErrorReasonText, "/vid/240p/seg_001.ts") {
		t.Fatalf("want an origin error naming the segment and 404, got %+v", en)
	}
	if resp, err := http.Get(e.base + "/vid/downloads/default.mp4"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of a failed download: %v, want 404", resp.StatusCode)
	}
	if tmp, _ := os.ReadDir(filepath.Join(e.dir, ".tmp")); len(tmp) != 0 {
		t.Errorf("%d temp files left by the failed run", len(tmp))
	}

	if err := os.WriteFile(seg, saved, 0o644); err != nil {
		t.Fatal(err)
	}
	code, env := e.call("POST", "/a/stream/vid/downloads")
	if code != 200 || env.Result["default"].Status == "error" {
		t.Fatalf("POST on an error entry: %d %+v", code, env.Result)
	}
	if en := e.waitReady("vid", "default"); en.Status != "ready" {
		t.Fatalf("after the origin was mended: %s %s", en.Status, en.ErrorReasonText)
	}
}

// demoCopies returns a new origin folder holding the demo video under each of names.
func demoCopies(t *testing.T, names ...string) string {
	src := t.TempDir()
	for _, v := range names {
		if err := os.CopyFS(filepath.Join(src, v), os.DirFS(filepath.Join(testutil.DemoOrigin(t), "demo"))); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// TestMaxHeightAndAudio: max_height picks the 144p variant for default; the audio type
// is an M4A of the same video's audio.
func TestMaxHeightAndAudio(t *testing.T) {
	origin := testutil.NewOrigin(t, testutil.DemoOrigin(t))
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "\t\tmax_height 200\n")
	for _, typ := range []string{"default", "audio"} {
		if code, env := e.call("POST", "/a/stream/demo/downloads/"+typ); code != 200 {
			t.Fatalf("POST %s: %d %+v", typ, code, env.Errors)
		}
	}
	code, env := e.call("GET", "/a/stream/demo/downloads")
	if code != 200 || len(env.Result) != 2 || !strings.HasSuffix(env.Result["audio"].URL, "/demo/downloads/audio.m4a") {
		t.Fatalf("GET lists %d %+v, want default and audio", code, env.Result)
	}
	variant := filepath.Join(testutil.DemoOrigin(t), "demo", "144p", "index.m3u8")

	en := e.waitReady("demo", "default")
	path, _ := e.download(en.URL)
	t.Log(testutil.CompareWithSource(t, path, variant))

	en = e.waitReady("demo", "audio")
	if en.Status != "ready" {
		t.Fatalf("audio ended %s: %s", en.Status, en.ErrorReasonText)
	}
	path, resp := e.download(en.URL + "?filename=track")
	if ct, cd := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"); ct != "audio/mp4" || cd != `attachment; filename="track.m4a"` {
		t.Errorf("Content-Type %q, Content-Disposition %q", ct, cd)
	}
	p := testutil.ProbeFile(t, path)
	if len(p.Streams) != 1 || p.Streams[0].CodecType != "audio" || p.Format.Tags["major_brand"] != "M4A " {
		t.Errorf("M4A has streams %+v, brand %q", p.Streams, p.Format.Tags["major_brand"])
	}
	// The audio of the source alone, as ffmpeg sees it, is what the M4A must match.
	audioOnly := filepath.Join(t.TempDir(), "src.m4a")
	testutil.Run(t, "ffmpeg", "-v", "error", "-i", variant, "-map", "0:a", "-c", "copy", audioOnly)
	t.Log(testutil.CompareWithSource(t, path, audioOnly))
}
