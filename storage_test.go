package streamdownloads_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testcaddy"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// demoSize is a bound on the bytes of one packaged copy of the demo (about 620 KB).
const demoSize = 700 << 10

// packageReady POSTs video and waits until it is ready.
func (e *edge) packageReady(video string) entry {
	e.t.Helper()
	if code, env := e.call("POST", "/a/stream/"+video+"/downloads"); code != 200 {
		e.t.Fatalf("POST %s: %d %+v", video, code, env.Errors)
	}
	en := e.waitReady(video, "default")
	if en.Status != "ready" {
		e.t.Fatalf("%s ended %s: %s %s", video, en.Status, en.ErrorReasonCode, en.ErrorReasonText)
	}
	return en
}

// status is the API status of video's default download, with its reason code.
func (e *edge) status(video string) string {
	e.t.Helper()
	code, env := e.call("GET", "/a/stream/"+video+"/downloads")
	if code != 200 {
		e.t.Fatalf("GET %s: %d", video, code)
	}
	en, ok := env.Result["default"]
	if !ok {
		return "none"
	}
	if en.ErrorReasonCode != "" {
		return en.Status + "/" + en.ErrorReasonCode
	}
	return en.Status
}

func (e *edge) statuses(videos ...string) string {
	var out []string
	for _, v := range videos {
		out = append(out, v+"="+e.status(v))
	}
	return strings.Join(out, " ")
}

// fileStatus GETs a packaged file and returns the status and the first line of the body
// when not 200.
func (e *edge) fileStatus(video string) (int, string) {
	e.t.Helper()
	return get(e.t, e.base+"/"+video+"/downloads/default.mp4", nil)
}

// slowClient reads with a tiny receive window, so that the edge cannot push a whole
// file into socket buffers and the delivery stays open while the test holds the body.
var slowClient = &http.Client{Transport: &http.Transport{
	DisableKeepAlives: true,
	DialContext: (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}).DialContext,
}}

// lengthen makes the demo copy video in dir n times as long (its segments again and
// again, with discontinuities), so that its file is larger than what socket buffers take.
func lengthen(t *testing.T, dir, video string, n int) {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n")
	for i := range n {
		if i > 0 {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		for s := range 3 {
			fmt.Fprintf(&b, "#EXTINF:4.000000,\nseg_%03d.ts\n", s)
		}
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	if err := os.WriteFile(filepath.Join(dir, video, "240p", "index.m3u8"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMaxStorage: packaging past max_storage evicts the least recently downloaded file,
// never one being downloaded; an evicted file is 404 (no on_demand) and is listed as
// error/evicted; a POST packages it again with the same bytes and ETag.
func TestMaxStorage(t *testing.T) {
	src := demoCopies(t, "a", "b", "c")
	lengthen(t, src, "a", 30) // about 18 MB: its slow download stays open server-side
	origin := testutil.NewOrigin(t, src)
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "\t\tmax_storage 1GB\n")

	ea := e.packageReady("a")
	e.packageReady("b")
	path, _ := e.download(ea.URL)
	wantA, _ := os.ReadFile(path)
	if n := len(wantA); n < 10<<20 {
		t.Fatalf("a is %d bytes: the test needs it above 10 MiB", n)
	}
	// Room for a and one demo copy (a reload applies it to the running manager).
	e.cfg = strings.Replace(e.cfg, "max_storage 1GB", fmt.Sprintf("max_storage %d", len(wantA)+demoSize), 1)
	testcaddy.Load(t, e.cfg)

	// a is being downloaded slowly: it started first, so it is the least recently used.
	resp, err := slowClient.Get(ea.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	etag := resp.Header.Get("ETag")
	head := make([]byte, 1000)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	whole, r := e.download(e.base + "/b/downloads/default.mp4")
	if r.StatusCode != 200 {
		t.Fatalf("GET b: %d", r.StatusCode)
	}
	etagB := r.Header.Get("ETag")
	wantB, _ := os.ReadFile(whole)

	// c needs room: a is pinned by its download, so b goes.
	e.packageReady("c")
	if got, want := e.statuses("a", "b", "c"), "a=ready b=error/evicted c=ready"; got != want {
		t.Errorf("after c: %s, want %s", got, want)
	}
	if code, msg := e.fileStatus("b"); code != 404 || !strings.Contains(msg, "free storage") {
		t.Errorf("GET of an evicted file: %d %q, want 404", code, msg)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "b", "default.mp4")); !os.IsNotExist(err) {
		t.Errorf("evicted file still on disk: %v", err)
	}
	// The slow download of a goes on to the end, whole.
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the rest of a: %v", err)
	}
	if got := append(head, rest...); !bytes.Equal(got, wantA) || etag != ea2etag(t, e) {
		t.Errorf("a's slow download: %d bytes, not the file (%d bytes)", len(got), len(wantA))
	}
	resp.Body.Close()

	// c is downloaded: a (its download started before) is now the least recent.
	if _, r := e.download(e.base + "/c/downloads/default.mp4"); r.StatusCode != 200 {
		t.Fatalf("GET c: %d", r.StatusCode)
	}
	// POST b packages it again (same bytes, same ETag) and evicts a.
	fetches := origin.Count("/b/240p/seg_000.ts")
	eb := e.packageReady("b")
	if n := origin.Count("/b/240p/seg_000.ts"); n != fetches+1 {
		t.Errorf("b's first segment fetched %d times in all, want %d", n, fetches+1)
	}
	path, r = e.download(eb.URL)
	if got, _ := os.ReadFile(path); r.StatusCode != 200 || r.Header.Get("ETag") != etagB || !bytes.Equal(got, wantB) {
		t.Errorf("b packaged again: %d, ETag %s, %d bytes; want the same file", r.StatusCode, r.Header.Get("ETag"), len(got))
	}
	if got, want := e.statuses("a", "b", "c"), "a=error/evicted b=ready c=ready"; got != want {
		t.Errorf("after b again: %s, want %s", got, want)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "a", "default.mp4")); !os.IsNotExist(err) {
		t.Errorf("evicted file still on disk: %v", err)
	}
}

// ea2etag is the ETag a HEAD of a's file answers now.
func ea2etag(t *testing.T, e *edge) string {
	r, err := http.Head(e.base + "/a/downloads/default.mp4")
	if err != nil {
		t.Fatal(err)
	}
	return r.Header.Get("ETag")
}

// TestOnDemand: with on_demand, a GET packages a download that was never created or was
// evicted, waits for it and serves it; the origin's 404 and live streams are answered.
func TestOnDemand(t *testing.T) {
	src := demoCopies(t, "x", "y")
	origin := testutil.NewOrigin(t, src)
	writeFile(t, origin, "live/master.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nseg0.ts\n")
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", fmt.Sprintf("\t\ton_demand 20s\n\t\tmax_storage %dKiB\n", demoSize>>10))

	// Never created: the GET creates it, waits and serves it.
	x1, r := e.download(e.base + "/x/downloads/default.mp4")
	if r.StatusCode != 200 || r.Header.Get("ETag") == "" {
		t.Fatalf("on-demand GET: %d", r.StatusCode)
	}
	etag := r.Header.Get("ETag")
	if got := e.status("x"); got != "ready" {
		t.Errorf("x after its on-demand GET: %s", got)
	}
	// HEAD of y packages it too; x is evicted to make room.
	hr, err := http.Head(e.base + "/y/downloads/default.mp4")
	if err != nil {
		t.Fatal(err)
	}
	if hr.StatusCode != 200 || hr.ContentLength <= 0 {
		t.Errorf("on-demand HEAD: %d, length %d", hr.StatusCode, hr.ContentLength)
	}
	if got, want := e.statuses("x", "y"), "x=error/evicted y=ready"; got != want {
		t.Errorf("%s, want %s", got, want)
	}
	// Evicted: the GET packages it again, the same bytes under the same ETag.
	x2, r := e.download(e.base + "/x/downloads/default.mp4")
	a, _ := os.ReadFile(x1)
	b, _ := os.ReadFile(x2)
	if r.StatusCode != 200 || r.Header.Get("ETag") != etag || !bytes.Equal(a, b) {
		t.Errorf("evicted file on demand: %d, ETag %s (was %s), same bytes %v", r.StatusCode, r.Header.Get("ETag"), etag, bytes.Equal(a, b))
	}
	// A range request on demand, as a player sends.
	req, _ := http.NewRequest("GET", e.base+"/y/downloads/default.mp4", nil)
	req.Header.Set("Range", "bytes=100-199")
	rr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(rr.Body)
	rr.Body.Close()
	if rr.StatusCode != 206 || !bytes.Equal(part, a[100:200]) {
		t.Errorf("range on demand: %d, %d bytes", rr.StatusCode, len(part))
	}

	for video, want := range map[string]int{"missing": 404, "live": 409} {
		code, msg := e.fileStatus(video)
		if code != want || strings.Count(msg, "\n") != 1 {
			t.Errorf("on-demand GET of %s: %d %q, want %d with one line", video, code, msg, want)
		}
	}
	if got := e.status("missing"); got != "none" {
		t.Errorf("a video the origin lacks got a download: %s", got)
	}
	if code, _ := e.fileStatus("bad.id"); code != 400 {
		t.Errorf("bad id: %d", code)
	}
}

// TestOnDemandTimeout: a GET that waits past on_demand answers 503 with Retry-After;
// the job goes on, and a later GET serves the file.
func TestOnDemandTimeout(t *testing.T) {
	origin := testutil.NewOrigin(t, testutil.DemoOrigin(t))
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "\t\ton_demand 1s\n")
	origin.HoldSegmentsAfter(0)
	start := time.Now()
	resp, err := http.Get(e.base + "/demo/downloads/default.mp4")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if took := time.Since(start); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || took < time.Second || took > 10*time.Second {
		t.Errorf("GET past on_demand: %d, Retry-After %q after %v", resp.StatusCode, resp.Header.Get("Retry-After"), took)
	}
	if got := e.status("demo"); got != "inprogress" {
		t.Errorf("status while held: %s", got)
	}
	// A GET while in progress waits too: released meanwhile, it gets the file.
	go func() {
		time.Sleep(300 * time.Millisecond)
		origin.Release()
	}()
	_, r := e.download(e.base + "/demo/downloads/default.mp4")
	if r.StatusCode != 200 {
		t.Errorf("GET while in progress with on_demand: %d", r.StatusCode)
	}
}

// TestOnDemandSigned: with signed URLs, on_demand checks access first: a refused request
// creates nothing and reaches no origin; a valid token packages and serves.
func TestOnDemandSigned(t *testing.T) {
	s := newSigner(t)
	key := filepath.Join(t.TempDir(), "rsa.pem")
	if err := os.WriteFile(key, pemOf(t, "PRIVATE KEY", s.rsa), 0o600); err != nil {
		t.Fatal(err)
	}
	origin := testutil.NewOrigin(t, testutil.DemoOrigin(t))
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "\t\ton_demand 20s\n\t\trequire_signed_urls\n\t\tsigning_key k1 "+key+"\n")
	for name, path := range map[string]string{
		"no token":         "/demo/downloads/default.mp4",
		"not downloadable": "/" + mint(t, jwt.SigningMethodRS256, s.rsa, "k1", claims(jwt.MapClaims{"downloadable": nil})) + "/downloads/default.mp4",
	} {
		if code, _ := get(t, e.base+path, nil); code != 401 && code != 403 {
			t.Errorf("%s: %d, want 401 or 403", name, code)
		}
	}
	if n := len(origin.Counts()); n != 0 || e.status("demo") != "none" {
		t.Fatalf("refused requests reached the origin (%d paths) or created %s", n, e.status("demo"))
	}
	tok := mint(t, jwt.SigningMethodRS256, s.rsa, "k1", claims(nil))
	if _, r := e.download(e.base + "/" + tok + "/downloads/default.mp4"); r.StatusCode != 200 {
		t.Errorf("signed on-demand GET: %d", r.StatusCode)
	}
}

// TestStorageErrors: a full disk (a real ENOSPC on a small tmpfs) and an unwritable
// store end the run in error/storage_error, leave no temp file and keep what is ready.
func TestStorageErrors(t *testing.T) {
	t.Run("full disk", func(t *testing.T) {
		dir := t.TempDir()
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dk", demoSize>>10+300), "tmpfs", dir).CombinedOutput(); err != nil {
			t.Skipf("cannot mount a small tmpfs (needs root; the unwritable case below covers the error path): %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("umount", dir).Run() })
		origin := testutil.NewOrigin(t, demoCopies(t, "a", "b"))
		e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "")
		e.cfg = strings.Replace(e.cfg, e.dir, dir, 1)
		e.dir = dir
		testcaddy.Load(t, e.cfg)
		ea := e.packageReady("a")
		if code, env := e.call("POST", "/a/stream/b/downloads"); code != 200 {
			t.Fatalf("POST b: %d %+v", code, env.Errors)
		}
		en := e.waitReady("b", "default")
		if en.Status != "error" || en.ErrorReasonCode != "storage_error" || !strings.Contains(en.ErrorReasonText, "disk is full") {
			t.Fatalf("on a full disk: %+v", en)
		}
		t.Log(en.ErrorReasonText)
		checkIntact(t, e, ea, true)
	})
	t.Run("unwritable", func(t *testing.T) {
		origin := testutil.NewOrigin(t, demoCopies(t, "a", "b", "c"))
		e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "\t\tmax_jobs 1\n")
		ea := e.packageReady("a")
		// b is in the middle of writing, c waits for the slot.
		origin.HoldSegmentsAfter(1)
		for _, v := range []string{"b", "c"} {
			if code, _ := e.call("POST", "/a/stream/"+v+"/downloads"); code != 200 {
				t.Fatalf("POST %s: %d", v, code)
			}
		}
		<-origin.Held
		// The temp folder becomes unwritable: immutable (which stops root too), or, where
		// chattr is missing, a regular file where the folder was.
		tmp := filepath.Join(e.dir, ".tmp")
		var undo func()
		if err := exec.Command("chattr", "+i", tmp).Run(); err == nil {
			undo = func() { exec.Command("chattr", "-i", tmp).Run() }
		} else {
			moved := tmp + "-moved"
			if err := os.Rename(tmp, moved); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(tmp, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			undo = func() { os.Remove(tmp); os.Rename(moved, tmp) }
		}
		t.Cleanup(undo)
		origin.Release()
		for _, v := range []string{"b", "c"} {
			en := e.waitReady(v, "default")
			if en.Status != "error" || en.ErrorReasonCode != "storage_error" || !strings.HasPrefix(en.ErrorReasonText, "storage error ") {
				t.Errorf("%s with an unwritable store: %+v", v, en)
			}
			t.Log(v, ": ", en.ErrorReasonText)
		}
		// The temp file of b cannot be removed from an unwritable folder; the next start
		// clears the folder.
		checkIntact(t, e, ea, false)
		undo()
		if en := e.packageReady("c"); en.Status != "ready" {
			t.Errorf("c after the store was mended: %+v", en)
		}
	})
}

// checkIntact: the ready download a is still ready and served whole, with its record.
func checkIntact(t *testing.T, e *edge, ea entry, noTemp bool) {
	t.Helper()
	if got := e.status("a"); got != "ready" {
		t.Errorf("a after the failure: %s", got)
	}
	if path, r := e.download(ea.URL); r.StatusCode != 200 {
		t.Errorf("GET a after the failure: %d", r.StatusCode)
	} else if fi, _ := os.Stat(path); fi.Size() < 100<<10 {
		t.Errorf("a is %d bytes", fi.Size())
	}
	if left, _ := os.ReadDir(filepath.Join(e.dir, ".tmp")); noTemp && len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "a", "default.json")); err != nil {
		t.Errorf("a's record: %v", err)
	}
}

// TestOutputLimit: limits { output_size } ends a run whose file would be larger in
// error/limit_exceeded, naming the limit.
func TestOutputSizeLimit(t *testing.T) {
	origin := testutil.NewOrigin(t, testutil.DemoOrigin(t))
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "\t\tlimits {\n\t\t\toutput_size 200KB\n\t\t}\n")
	if code, _ := e.call("POST", "/a/stream/demo/downloads"); code != 200 {
		t.Fatalf("POST: %d", code)
	}
	en := e.waitReady("demo", "default")
	if en.Status != "error" || en.ErrorReasonCode != "limit_exceeded" || !strings.Contains(en.ErrorReasonText, "output size limit") {
		t.Fatalf("%+v", en)
	}
	t.Log(en.ErrorReasonText)
	if left, _ := os.ReadDir(filepath.Join(e.dir, ".tmp")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	if code, _ := e.fileStatus("demo"); code != 404 {
		t.Errorf("GET: %d, want 404", code)
	}
}
