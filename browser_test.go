package streamdownloads_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testcaddy"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// playbackPage plays the MP4 (same origin as the page) muted, watches it, and sends what it
// saw to the report URL (another origin: a no-cors GET) once currentTime has advanced half a
// second after readyState reached 4, on a media error, or after 30 s.
const playbackPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>playback</title></head>
<body>
<video id="v" muted autoplay playsinline preload="auto" src="%s"></video>
<script>
const v = document.getElementById("v");
const t0 = performance.now();
let reached4 = false, startTime = -1, sent = false;
function report(outcome) {
  if (sent) return;
  sent = true;
  const r = {outcome, reached4, readyState: v.readyState, videoWidth: v.videoWidth, videoHeight: v.videoHeight,
    startTime, currentTime: v.currentTime, duration: v.duration, paused: v.paused,
    error: v.error ? v.error.code + " " + v.error.message : "", ms: Math.round(performance.now() - t0)};
  fetch(%q + "?r=" + encodeURIComponent(JSON.stringify(r)), {mode: "no-cors"});
}
v.addEventListener("error", () => report("error"));
const timer = setInterval(() => {
  if (v.readyState === 4) reached4 = true;
  if (reached4 && startTime < 0) startTime = v.currentTime;
  if (reached4 && v.currentTime >= startTime + 0.5) { clearInterval(timer); report("played"); }
}, 20);
setTimeout(() => report("timeout"), 30000);
v.play().catch(e => { v.dataset.playError = String(e); });
</script>
</body></html>
`

type playback struct {
	Outcome     string  `json:"outcome"`
	Reached4    bool    `json:"reached4"`
	ReadyState  int     `json:"readyState"`
	VideoWidth  int     `json:"videoWidth"`
	VideoHeight int     `json:"videoHeight"`
	StartTime   float64 `json:"startTime"`
	CurrentTime float64 `json:"currentTime"`
	Duration    float64 `json:"duration"`
	Paused      bool    `json:"paused"`
	Error       string  `json:"error"`
	MS          int     `json:"ms"`
}

// TestBrowserPlayback packages ts-h264-aac through a real Caddy that also serves a page with
// a <video> of the MP4, opens the page in Debian's headless Chromium (which must be
// installed: apt-get install chromium), and checks that the video reaches readyState 4
// with the source's size and that currentTime advances while it plays.
func TestBrowserPlayback(t *testing.T) {
	began := time.Now()
	const video = "ts-h264-aac"
	streams := filepath.Join(conformanceDir(t), "streams")
	origin := testutil.NewOrigin(t, streams)

	reports := make(chan string, 1)
	reporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/report" {
			select {
			case reports <- r.URL.Query().Get("r"):
			default:
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(reporter.Close)

	pages := t.TempDir()
	page := fmt.Sprintf(playbackPage, "/"+video+"/downloads/default.mp4", reporter.URL+"/report")
	if err := os.WriteFile(filepath.Join(pages, "play.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	port := testutil.FreePort(t)
	e := &edge{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), dir: t.TempDir()}
	testcaddy.Start(t, testcaddy.Caddyfile(fmt.Sprintf(`
http://127.0.0.1:%d {
	bind 127.0.0.1
	stream_downloads {
		origin %s/{video_id}/play.m3u8
		api_token %s
		storage_dir %s
	}
	root * %s
	file_server
}
`, port, origin.URL, apiToken, e.dir, pages)))
	chromium := testutil.Tool(t, "chromium")

	if code, env := e.call("POST", "/acct/stream/"+video+"/downloads"); code != http.StatusOK {
		t.Fatalf("POST: %d %+v", code, env.Errors)
	}
	if en := e.waitReady(video, "default"); en.Status != "ready" {
		t.Fatalf("download ended %s: %s: %s", en.Status, en.ErrorReasonCode, en.ErrorReasonText)
	}
	packaged := time.Since(began)

	src := testutil.ProbeFile(t, filepath.Join(streams, video, "hi", "index.m3u8"))
	wantW, wantH := 0, 0
	for _, s := range src.Streams {
		if s.CodecType == "video" {
			wantW, wantH = s.Width, s.Height
		}
	}

	started := time.Now()
	raw, stderr := runChromium(t, chromium, e.base+"/play.html", reports, 60*time.Second)
	browserTime := time.Since(started)
	var got playback
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatalf("page report %q: %v", raw, err)
	}
	t.Logf("page saw %+v", got)
	if got.Outcome != "played" {
		t.Errorf("playback %s (readyState %d, error %q); Chromium said:\n%s", got.Outcome, got.ReadyState, got.Error, tail(stderr, 20))
	}
	if !got.Reached4 {
		t.Errorf("readyState never reached 4 (HAVE_ENOUGH_DATA); last %d", got.ReadyState)
	}
	if got.VideoWidth != wantW || got.VideoHeight != wantH {
		t.Errorf("videoWidth×videoHeight %d×%d, want %d×%d", got.VideoWidth, got.VideoHeight, wantW, wantH)
	}
	if got.CurrentTime < got.StartTime+0.5 || got.Paused {
		t.Errorf("currentTime went from %.3f to %.3f (paused %v): it did not play", got.StartTime, got.CurrentTime, got.Paused)
	}
	t.Logf("packaged in %v; Chromium ran %v (page: %d ms); test %v",
		packaged.Round(time.Millisecond), browserTime.Round(time.Millisecond), got.MS, time.Since(began).Round(time.Millisecond))
}

// runChromium opens url in headless Chromium with a fresh profile and returns the first
// report the page sends (and what Chromium printed), then stops Chromium and its children.
func runChromium(t *testing.T, chromium, url string, reports <-chan string, timeout time.Duration) (string, string) {
	t.Helper()
	profile, err := os.MkdirTemp("", "chromium-profile-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.Command(chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--mute-audio",
		"--autoplay-policy=no-user-gesture-required",
		"--user-data-dir="+profile, url)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group, to stop its children too
	cmd.WaitDelay = 5 * time.Second                       // if a child escaped the group with the pipes
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() { // SIGTERM lets Chromium reap its children; SIGKILL if it lingers
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		_ = os.RemoveAll(profile)
	}
	select {
	case r := <-reports:
		stop()
		return r, out.String()
	case err := <-exited:
		_ = os.RemoveAll(profile)
		t.Fatalf("Chromium exited (%v) before the page reported:\n%s", err, tail(out.String(), 30))
	case <-ctx.Done():
		stop()
		t.Fatalf("the page did not report within %v; Chromium said:\n%s", timeout, tail(out.String(), 30))
	}
	return "", ""
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
