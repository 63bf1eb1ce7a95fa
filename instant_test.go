package streamdownloads_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// rawGet GETs url with the request headers hdr; the body is what came before an error.
func rawGet(t *testing.T, url string, hdr map[string]string) (*http.Response, []byte, error) {
	t.Helper()
	return request(t, "GET", url, hdr)
}

// request sends method to url with the request headers hdr; the body is what came
// before an error.
func request(t *testing.T, method, url string, hdr map[string]string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// TestInstantDelivery (issue 16): through a real Caddy, a download of an fMP4 source
// whose job is held at the origin is served at once — 200 with its final length and
// ETag, 206 for a Range, a clip — and so is an on-demand GET of a video never asked
// for; once packaged, the stored file has the same bytes and ETag.
func TestInstantDelivery(t *testing.T) {
	testutil.Tool(t, "ffprobe")
	streams := filepath.Join(conformanceDir(t), "streams")
	origin := testutil.NewOrigin(t, streams)
	e := startEdge(t, origin.URL+"/{video_id}/play.m3u8", "\t\ton_demand 30s\n")
	origin.HoldMatching(0, testutil.JobSegmentRequest)

	const name = "fmp4-h264-aac"
	if code, env := e.call("POST", "/a/stream/"+name+"/downloads"); code != 200 {
		t.Fatalf("POST: %d %+v", code, env.Errors)
	}
	url := e.base + "/" + name + "/downloads/default.mp4"
	resp, whole, err := rawGet(t, url, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET while packaged: %d %v %s", resp.StatusCode, err, firstLine(string(whole)))
	}
	etag := resp.Header.Get("ETag")
	if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(whole)) || etag == "" || strings.HasPrefix(etag, "W/") {
		t.Errorf("GET while packaged: Content-Length %s for %d bytes, ETag %q", cl, len(whole), etag)
	}
	if code, env := e.call("GET", "/a/stream/"+name+"/downloads"); code != 200 || env.Result["default"].Status != "inprogress" {
		t.Fatalf("the download is not in progress any more: the test does not test instant delivery (%d %+v)", code, env.Result)
	}
	n := int64(len(whole))
	for _, r := range [][2]int64{{0, 99}, {n / 2, n/2 + 4095}, {n - 10, n - 1}} {
		resp, part, err := rawGet(t, url, map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", r[0], r[1])})
		if err != nil || resp.StatusCode != 206 || !bytes.Equal(part, whole[r[0]:r[1]+1]) || resp.Header.Get("ETag") != etag {
			t.Errorf("Range %v while packaged: %d %v, %d bytes, ETag %s", r, resp.StatusCode, err, len(part), resp.Header.Get("ETag"))
		}
	}
	path := filepath.Join(t.TempDir(), "instant.mp4")
	if err := os.WriteFile(path, whole, 0o644); err != nil {
		t.Fatal(err)
	}
	p := testutil.ProbeFile(t, path)
	dur, _ := strconv.ParseFloat(p.Format.Duration, 64)
	checkClip(t, url, 0.5, 1.5, dur, len(p.Streams), 0.04)

	// On demand: a video no one asked for is served at once too.
	const other = "fmp4-hevc-aac"
	resp, otherBody, err := rawGet(t, e.base+"/"+other+"/downloads/default.mp4", nil)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Length") != strconv.Itoa(len(otherBody)) {
		t.Fatalf("on-demand GET: %d %v, Content-Length %s for %d bytes", resp.StatusCode, err, resp.Header.Get("Content-Length"), len(otherBody))
	}
	otherETag := resp.Header.Get("ETag")

	origin.Release()
	for _, c := range []struct {
		video, etag string
		body        []byte
	}{{name, etag, whole}, {other, otherETag, otherBody}} {
		if en := e.waitReady(c.video, "default"); en.Status != "ready" {
			t.Fatalf("%s: packaging ended %s: %s", c.video, en.Status, en.ErrorReasonText)
		}
		resp, stored, err := rawGet(t, e.base+"/"+c.video+"/downloads/default.mp4", nil)
		if err != nil || resp.StatusCode != 200 || resp.Header.Get("ETag") != c.etag || !bytes.Equal(stored, c.body) {
			t.Errorf("%s stored: %d %v, ETag %s (instant %s), %d bytes (instant %d), same: %v", c.video, resp.StatusCode, err,
				resp.Header.Get("ETag"), c.etag, len(stored), len(c.body), bytes.Equal(stored, c.body))
		}
	}
}

// TestInstantCut: when the origin breaks off the ranges instant delivery reads (and
// every retry of them), the response ends short of its Content-Length after bytes of
// the file only; the job, which the origin serves, packages the file as usual.
func TestInstantCut(t *testing.T) {
	streams := filepath.Join(conformanceDir(t), "streams")
	files := http.FileServer(http.Dir(streams))
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rng := r.Header.Get("Range")
		switch {
		case testutil.JobSegmentRequest(r):
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		case strings.HasSuffix(r.URL.Path, ".m4s") && rng != "" && !strings.HasPrefix(rng, "bytes=0-"):
			// A sample range: a few bytes, then the connection drops.
			rec := httptest.NewRecorder()
			files.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes()[:min(rec.Body.Len(), 100)])
			panic(http.ErrAbortHandler)
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	e := startEdge(t, srv.URL+"/{video_id}/play.m3u8", "")
	const name = "fmp4-h264-aac"
	if code, env := e.call("POST", "/a/stream/"+name+"/downloads"); code != 200 {
		t.Fatalf("POST: %d %+v", code, env.Errors)
	}
	url := e.base + "/" + name + "/downloads/default.mp4"
	resp, cut, err := rawGet(t, url, nil)
	if resp.StatusCode != 200 || err == nil {
		t.Fatalf("GET with the origin breaking off: %d, error %v, %d bytes; want 200 cut short", resp.StatusCode, err, len(cut))
	}
	cl, _ := strconv.Atoi(resp.Header.Get("Content-Length"))
	if len(cut) >= cl {
		t.Errorf("cut response: %d bytes of %d", len(cut), cl)
	}
	close(release)
	if en := e.waitReady(name, "default"); en.Status != "ready" {
		t.Fatalf("packaging ended %s: %s", en.Status, en.ErrorReasonText)
	}
	resp, stored, err := rawGet(t, url, nil)
	if err != nil || len(stored) != cl || !bytes.HasPrefix(stored, cut) {
		t.Errorf("stored file: %d %v, %d bytes (announced %d); the cut response is a prefix of it: %v", resp.StatusCode, err, len(stored), cl, bytes.HasPrefix(stored, cut))
	}
}
