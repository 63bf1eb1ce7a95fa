package streamdownloads_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testcaddy"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// getClip sends method to url with the request headers hdr and returns the response
// and its whole body.
func getClip(t *testing.T, method, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	resp, body, err := request(t, method, url, hdr)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// checkClip GETs the clip [s, e) of the file at url (e 0: to the end, of a file of
// duration dur) and checks it: ffprobe's start time and duration, its streams, a decode
// without errors, a strong ETag of its own, the same bytes again, Range and If-Range.
func checkClip(t *testing.T, url string, s, e, dur float64, streams int, frame float64) {
	t.Helper()
	q := "?start=" + strconv.FormatFloat(s, 'f', -1, 64)
	if e > 0 {
		q += "&end=" + strconv.FormatFloat(e, 'f', -1, 64)
	} else {
		e = dur
	}
	whole, _ := getClip(t, "HEAD", url, nil)
	resp, body := getClip(t, "GET", url+q, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != whole.Header.Get("Content-Type") {
		t.Fatalf("GET %s: %d %s %s", q, resp.StatusCode, resp.Header.Get("Content-Type"), firstLine(string(body)))
	}
	if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
		t.Errorf("%s: Content-Length %s, body %d", q, cl, len(body))
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || strings.HasPrefix(etag, "W/") || etag == whole.Header.Get("ETag") {
		t.Errorf("%s: ETag %q (file's %q)", q, etag, whole.Header.Get("ETag"))
	}
	path := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	p := testutil.ProbeFile(t, path)
	if st, _ := strconv.ParseFloat(p.Format.StartTime, 64); math.Abs(st) > 0.001 {
		t.Errorf("%s: start time %s", q, p.Format.StartTime)
	}
	if d, _ := strconv.ParseFloat(p.Format.Duration, 64); math.Abs(d-(e-s)) > frame+0.002 {
		t.Errorf("%s: duration %s, want %.3f within a frame (%.3f)", q, p.Format.Duration, e-s, frame)
	}
	if len(p.Streams) != streams {
		t.Errorf("%s: %d streams, want %d", q, len(p.Streams), streams)
	}
	if msg := testutil.DecodeErrors(t, path); msg != "" {
		t.Errorf("%s: decoding: %s", q, msg)
	}
	t.Logf("clip %s: %d bytes, duration %s, ETag %s", q, len(body), p.Format.Duration, etag)

	// Deterministic.
	resp2, body2 := getClip(t, "GET", url+q, nil)
	if !bytes.Equal(body, body2) || resp2.Header.Get("ETag") != etag {
		t.Errorf("%s: a second GET gave other bytes or ETag %q", q, resp2.Header.Get("ETag"))
	}
	// Range reads are slices of the whole body.
	n := len(body)
	for _, rg := range [][2]int{{0, 99}, {n / 3, n/3 + 70000}, {n - 10, n - 1}, {1000, n - 1}, {n/2 + 7, n/2 + 7}} {
		rg[1] = min(rg[1], n-1)
		resp, part := getClip(t, "GET", url+q, map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", rg[0], rg[1])})
		if resp.StatusCode != 206 || !bytes.Equal(part, body[rg[0]:rg[1]+1]) {
			t.Errorf("%s: Range %v: %d, %d bytes, equal %v", q, rg, resp.StatusCode, len(part), bytes.Equal(part, body[rg[0]:rg[1]+1]))
		}
	}
	resp, part := getClip(t, "GET", url+q, map[string]string{"Range": "bytes=-500", "If-Range": etag})
	if resp.StatusCode != 206 || !bytes.Equal(part, body[n-500:]) {
		t.Errorf("%s: If-Range with the clip's ETag: %d", q, resp.StatusCode)
	}
	resp, part = getClip(t, "GET", url+q, map[string]string{"Range": "bytes=0-9", "If-Range": whole.Header.Get("ETag")})
	if resp.StatusCode != 200 || !bytes.Equal(part, body) {
		t.Errorf("%s: If-Range with the file's ETag: %d, want 200 and the whole clip", q, resp.StatusCode)
	}
	if resp, _ := getClip(t, "HEAD", url+q, nil); resp.Header.Get("Content-Length") != strconv.Itoa(n) {
		t.Errorf("%s: HEAD Content-Length %s", q, resp.Header.Get("Content-Length"))
	}
	if resp, _ := getClip(t, "GET", url+q, map[string]string{"If-None-Match": etag}); resp.StatusCode != 304 {
		t.Errorf("%s: If-None-Match: %d", q, resp.StatusCode)
	}
}

// fileDuration is ffprobe's duration of the file at url.
func fileDuration(t *testing.T, e *edge, url string) float64 {
	t.Helper()
	path, _ := e.download(url)
	d, err := strconv.ParseFloat(testutil.ProbeFile(t, path).Format.Duration, 64)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestClips cuts clips of stored files (docs/clips.md): of the demo (TS, H.264 with
// B-frames and AAC) and of an fMP4 flavour of the conformance suite; bad parameters;
// the clip claim of signed tokens.
func TestClips(t *testing.T) {
	testutil.Tool(t, "ffprobe")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "ec.pub.pem")
	if err := os.WriteFile(pub, pemOf(t, "PUBLIC KEY", key.Public()), 0o600); err != nil {
		t.Fatal(err)
	}
	origin := testutil.NewOrigin(t, testutil.DemoOrigin(t))
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "\t\tsigning_key k-ec "+pub+"\n")
	if code, env := e.call("POST", "/a/stream/demo/downloads"); code != 200 {
		t.Fatalf("POST: %d %+v", code, env.Errors)
	}
	en := e.waitReady("demo", "default")
	if en.Status != "ready" {
		t.Fatalf("packaging ended %s: %s", en.Status, en.ErrorReasonText)
	}
	dur := fileDuration(t, e, en.URL)

	t.Run("demo", func(t *testing.T) {
		checkClip(t, en.URL, 2.3, 7.1, dur, 2, 0.04)
		checkClip(t, en.URL, 0, 1.5, dur, 2, 0.04)
		checkClip(t, en.URL, 6.02, 0, dur, 2, 0.04)
	})

	t.Run("audio", func(t *testing.T) {
		if code, env := e.call("POST", "/a/stream/demo/downloads/audio"); code != 200 {
			t.Fatalf("POST: %d %+v", code, env.Errors)
		}
		au := e.waitReady("demo", "audio")
		if au.Status != "ready" {
			t.Fatalf("packaging ended %s: %s", au.Status, au.ErrorReasonText)
		}
		checkClip(t, au.URL, 3.3, 8.25, fileDuration(t, e, au.URL), 1, 0.0214)
	})

	t.Run("filename", func(t *testing.T) {
		resp, _ := getClip(t, "HEAD", en.URL+"?start=1&end=2&filename=part", nil)
		if cd := resp.Header.Get("Content-Disposition"); resp.StatusCode != 200 || cd != `attachment; filename="part.mp4"` {
			t.Errorf("%d, Content-Disposition %q", resp.StatusCode, cd)
		}
	})

	t.Run("bad parameters", func(t *testing.T) {
		for _, q := range []string{"start=abc", "start=-1&end=2", "start=5&end=3", "start=2&end=2", "start=1e3",
			"start=1&start=2", "start=" + strconv.Itoa(int(dur)+5), "start=1&end=" + strconv.Itoa(int(dur)+5), "end=", "start=NaN"} {
			resp, body := getClip(t, "GET", en.URL+"?"+q, nil)
			if resp.StatusCode != 400 || strings.Count(string(body), "\n") != 1 {
				t.Errorf("?%s: %d %q, want 400 with one line", q, resp.StatusCode, body)
			}
		}
	})

	t.Run("token clip", func(t *testing.T) {
		tok := func(extra jwt.MapClaims) string {
			return mint(t, jwt.SigningMethodES256, key, "k-ec", claims(extra))
		}
		// The CLI signs the clip claim (--clip), and refuses bad ones.
		priv := filepath.Join(t.TempDir(), "ec.pem")
		if err := os.WriteFile(priv, pemOf(t, "PRIVATE KEY", key), 0o600); err != nil {
			t.Fatal(err)
		}
		limited, ok := signClip(t, priv, "1-5.5")
		if !ok || strings.Count(limited, ".") != 2 {
			t.Fatalf("sign --clip 1-5.5: %q", limited)
		}
		for _, bad := range []string{"5-2", "2-2", "a-b", "-1-2", "3", "1-NaN"} {
			if out, ok := signClip(t, priv, bad); ok {
				t.Errorf("sign --clip %s: printed %q", bad, out)
			}
		}
		base := strings.Replace(en.URL, "/demo/", "/"+limited+"/", 1)
		for _, c := range []struct {
			q      string
			rng    string
			status int
		}{
			{"?start=1&end=5.5", "", 200},
			{"?start=2&end=4", "", 200},
			{"?start=2&end=4", "bytes=100-199", 206},
			{"", "", 403},
			{"", "bytes=0-99", 403},
			{"?start=0.5&end=4", "", 403},
			{"?start=2&end=6", "", 403},
			{"?start=2", "", 403},
			{"?start=3&end=2", "", 400},
		} {
			hdr := map[string]string{}
			if c.rng != "" {
				hdr["Range"] = c.rng
			}
			resp, body := getClip(t, "GET", base+c.q, hdr)
			if resp.StatusCode != c.status {
				t.Errorf("%q %s: %d %s, want %d", c.q, c.rng, resp.StatusCode, firstLine(string(body)), c.status)
			}
			if c.status >= 400 && strings.Count(string(body), "\n") != 1 {
				t.Errorf("%q: body %q, want one line", c.q, body)
			}
		}
		// The same clip through the token and by the id: the same bytes.
		_, viaToken := getClip(t, "GET", base+"?start=2&end=4", nil)
		_, viaID := getClip(t, "GET", en.URL+"?start=2&end=4", nil)
		if !bytes.Equal(viaToken, viaID) {
			t.Error("the clip through the token differs from the clip by id")
		}
		// A token without a clip claim allows the whole file and clips.
		free := strings.Replace(en.URL, "/demo/", "/"+tok(nil)+"/", 1)
		for _, q := range []string{"", "?start=0.5&end=8"} {
			if resp, _ := getClip(t, "HEAD", free+q, nil); resp.StatusCode != 200 {
				t.Errorf("token without clip %q: %d", q, resp.StatusCode)
			}
		}
		// An invalid clip claim: the token is refused.
		bad := strings.Replace(en.URL, "/demo/", "/"+tok(jwt.MapClaims{"clip": map[string]any{"start": 5, "end": 2}})+"/", 1)
		if resp, _ := getClip(t, "GET", bad+"?start=3&end=4", nil); resp.StatusCode != 401 {
			t.Errorf("a token with an invalid clip: %d, want 401", resp.StatusCode)
		}
	})
}

// TestClipsFMP4 cuts clips of a stored file packaged from an fMP4 flavour of the
// conformance suite.
func TestClipsFMP4(t *testing.T) {
	testutil.Tool(t, "ffprobe")
	streams := filepath.Join(conformanceDir(t), "streams")
	origin := testutil.NewOrigin(t, streams)
	e := startEdge(t, origin.URL+"/{video_id}/play.m3u8", "")
	for _, name := range []string{"fmp4-h264-aac", "fmp4-hevc-aac", "fmp4-av1", "fmp4-opus", "fmp4-eac3", "fmp4-mp3", "audio-only-fmp4"} {
		t.Run(name, func(t *testing.T) {
			se := *e
			se.t = t
			if code, env := se.call("POST", "/a/stream/"+name+"/downloads"); code != 200 {
				t.Fatalf("POST: %d %+v", code, env.Errors)
			}
			en := se.waitReady(name, "default")
			if en.Status != "ready" {
				t.Fatalf("packaging ended %s: %s", en.Status, en.ErrorReasonText)
			}
			dur := fileDuration(t, &se, en.URL)
			path, _ := se.download(en.URL)
			p := testutil.ProbeFile(t, path)
			frame := 0.04
			for _, s := range p.Streams {
				if s.CodecType == "video" {
					if a, b, ok := strings.Cut(s.AvgFrameRate, "/"); ok {
						n, _ := strconv.ParseFloat(a, 64)
						d, _ := strconv.ParseFloat(b, 64)
						if n > 0 && d > 0 {
							frame = d / n
						}
					}
				}
			}
			ms := func(x float64) float64 { return math.Round(x*1000) / 1000 }
			checkClip(t, en.URL, ms(dur/4), ms(dur*3/4), dur, len(p.Streams), frame)
			checkClip(t, en.URL, 0.5, 0, dur, len(p.Streams), frame)
		})
	}
}

// signClip runs `caddy stream-downloads sign` with the private key file priv and the
// --clip flag; ok says whether it printed a token.
func signClip(t *testing.T, priv, clip string) (string, bool) {
	t.Helper()
	out, err := exec.Command(testcaddy.Binary(t), "stream-downloads", "sign", "--key", priv, "--kid", "k-ec",
		"--video", "demo", "--downloadable", "--clip", clip).Output()
	return strings.TrimSpace(string(out)), err == nil
}
