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
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testcaddy"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// playbackPage plays a file (same origin as the page) in a muted <video> or <audio>
// element, watches it, and sends what it saw to the report URL (another origin: a no-cors
// GET) once readyState has reached 4 and currentTime has advanced half a second since then
// and is past the given time, on a media error, or after 30 s. Arguments: the element, the
// file, the time to pass, the report URL.
const playbackPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>playback</title></head>
<body>
<%[1]s id="v" muted autoplay playsinline preload="auto" src="%[2]s"></%[1]s>
<script>
const v = document.getElementById("v");
const past = %[3]g;
const t0 = performance.now();
let reached4 = false, startTime = -1, sent = false;
function report(outcome) {
  if (sent) return;
  sent = true;
  const r = {outcome, reached4, readyState: v.readyState, videoWidth: v.videoWidth || 0, videoHeight: v.videoHeight || 0,
    startTime, currentTime: v.currentTime, duration: v.duration, paused: v.paused,
    error: v.error ? v.error.code + " " + v.error.message : "", ms: Math.round(performance.now() - t0)};
  fetch(%[4]q + "&r=" + encodeURIComponent(JSON.stringify(r)), {mode: "no-cors"});
}
v.addEventListener("error", () => report("error"));
const timer = setInterval(() => {
  if (v.readyState === 4) reached4 = true;
  if (reached4 && startTime < 0) startTime = v.currentTime;
  if (reached4 && v.currentTime >= startTime + 0.5 && v.currentTime > past) { clearInterval(timer); report("played"); }
}, 20);
setTimeout(() => report("timeout"), 30000);
v.play().catch(e => { v.dataset.playError = String(e); });
</script>
</body></html>
`

// pageReport is what a page sent: its case (an index in browserCases) and its report (a
// playback, JSON).
type pageReport struct{ id, r string }

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

// browserCases are the downloads TestBrowserPlayback plays: the MP4 of H.264 with AAC (from
// TS and from fMP4), Opus and MP3 in a <video>, and the M4A of Opus, MP3 and AAC in an <audio>. (Chromium decodes
// neither AC-3 nor E-AC-3.)
var browserCases = []struct {
	video, typ string
	// source: the variant whose video size the <video> must have ("" for audio).
	source string
}{
	{video: "ts-h264-aac", typ: "default", source: "hi/index.m3u8"},
	{video: "ts-opus", typ: "default", source: "play.m3u8"},
	{video: "ts-mp3", typ: "default", source: "play.m3u8"},
	{video: "fmp4-h264-aac", typ: "default", source: "play.m3u8"}, // samples copied verbatim
	{video: "byterange-fmp4", typ: "default", source: "play.m3u8"},
	{video: "ts-opus", typ: "audio"},
	{video: "ts-mp3", typ: "audio"},
	{video: "audio-only", typ: "audio"},
}

// TestBrowserPlayback packages the browserCases through a real Caddy that also serves a
// page per case with a <video> of the MP4 or an <audio> of the M4A, opens each page in
// Debian's headless Chromium (which must be installed: apt-get install chromium), and
// checks that the media plays without an error: readyState 4, currentTime advancing while
// it plays (past 1 s for audio), a video with the source's size.
func TestBrowserPlayback(t *testing.T) {
	began := time.Now()
	streams := filepath.Join(conformanceDir(t), "streams")
	origin := testutil.NewOrigin(t, streams)

	reporter, reports := pageReporter(t, len(browserCases))
	pages := t.TempDir()
	for i, c := range browserCases {
		element, file, past := "video", "default.mp4", 0.0
		if c.typ == "audio" {
			element, file, past = "audio", "audio.m4a", 1.0
		}
		page := fmt.Sprintf(playbackPage, element, "/"+c.video+"/downloads/"+file, past, fmt.Sprintf("%s/report?case=%d", reporter, i))
		if err := os.WriteFile(filepath.Join(pages, fmt.Sprintf("play-%d.html", i)), []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := pageEdge(t, origin.URL, pages)
	chromium := testutil.Tool(t, "chromium")

	for _, c := range browserCases { // package them all, then play them one by one
		if code, env := e.call("POST", "/acct/stream/"+c.video+"/downloads/"+c.typ); code != http.StatusOK {
			t.Fatalf("POST %s %s: %d %+v", c.video, c.typ, code, env.Errors)
		}
	}
	for i, c := range browserCases {
		t.Run(c.video+"/"+c.typ, func(t *testing.T) {
			se := *e
			se.t = t
			started := time.Now()
			if en := se.waitReady(c.video, c.typ); en.Status != "ready" {
				t.Fatalf("download ended %s: %s: %s", en.Status, en.ErrorReasonCode, en.ErrorReasonText)
			}
			packaged := time.Since(started)
			wantW, wantH := 0, 0
			if c.source != "" {
				for _, s := range testutil.ProbeFile(t, filepath.Join(streams, c.video, c.source)).Streams {
					if s.CodecType == "video" {
						wantW, wantH = s.Width, s.Height
					}
				}
			}

			started = time.Now()
			raw, stderr := runChromium(t, chromium, fmt.Sprintf("%s/play-%d.html", e.base, i), reports, strconv.Itoa(i), 60*time.Second)
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
			if c.typ == "audio" && got.CurrentTime <= 1 {
				t.Errorf("currentTime %.3f: the audio did not play past 1 s", got.CurrentTime)
			}
			t.Logf("ready %v after the POSTs' wait began; Chromium ran %v (page: %d ms)",
				packaged.Round(time.Millisecond), browserTime.Round(time.Millisecond), got.MS)
		})
	}
	t.Logf("test %v", time.Since(began).Round(time.Millisecond))
}

// runChromium opens url in headless Chromium (with flags besides its own) with a fresh
// profile and returns the first report the page sends for case id (and what Chromium
// printed), then stops Chromium and its children. Reports of other cases (a page of an earlier case, late) are dropped.
func runChromium(t *testing.T, chromium, url string, reports <-chan pageReport, id string, timeout time.Duration, flags ...string) (string, string) {
	t.Helper()
	profile, err := os.MkdirTemp("", "chromium-profile-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--mute-audio",
		"--autoplay-policy=no-user-gesture-required",
		"--user-data-dir=" + profile}, flags...)
	cmd := exec.Command(chromium, append(args, url)...)
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
	for {
		select {
		case r := <-reports:
			if r.id != id {
				continue
			}
			stop()
			return r.r, out.String()
		case err := <-exited:
			_ = os.RemoveAll(profile)
			t.Fatalf("Chromium exited (%v) before the page reported:\n%s", err, tail(out.String(), 30))
		case <-ctx.Done():
			stop()
			t.Fatalf("the page did not report within %v; Chromium said:\n%s", timeout, tail(out.String(), 30))
		}
		return "", ""
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// pageReporter starts a server that takes the pages' reports (GET /report?case=…&r=…)
// into the returned channel (room for n), and returns its URL.
func pageReporter(t *testing.T, n int) (string, <-chan pageReport) {
	t.Helper()
	reports := make(chan pageReport, n)
	reporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/report" {
			select {
			case reports <- pageReport{r.URL.Query().Get("case"), r.URL.Query().Get("r")}:
			default:
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(reporter.Close)
	return reporter.URL, reports
}

// pageEdge runs Caddy with stream_downloads in front of origin's play.m3u8 of each
// video, and a file_server of pages beside it, for Chromium to open.
func pageEdge(t *testing.T, origin, pages string) *edge {
	t.Helper()
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
`, port, origin, apiToken, e.dir, pages)))
	return e
}

// tracksPage plays a file in a muted <video> and reports its audio tracks (label,
// language, enabled) once it has played half a second, on an error, or after 30 s.
// Arguments: the file, the report URL.
const tracksPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>tracks</title></head>
<body>
<video id="v" muted autoplay playsinline preload="auto" src="%[1]s"></video>
<script>
const v = document.getElementById("v");
let sent = false;
function report(outcome) {
  if (sent) return;
  sent = true;
  const tracks = [];
  if (v.audioTracks) for (let i = 0; i < v.audioTracks.length; i++) {
    const a = v.audioTracks[i];
    tracks.push({label: a.label, language: a.language, enabled: a.enabled});
  }
  const r = {outcome, api: !!v.audioTracks, tracks, currentTime: v.currentTime,
    error: v.error ? v.error.code + " " + v.error.message : ""};
  fetch(%[2]q + "&r=" + encodeURIComponent(JSON.stringify(r)), {mode: "no-cors"});
}
v.addEventListener("error", () => report("error"));
const timer = setInterval(() => {
  if (v.readyState === 4 && v.currentTime > 0.5) { clearInterval(timer); report("played"); }
}, 20);
setTimeout(() => report("timeout"), 30000);
v.play().catch(() => {});
</script>
</body></html>
`

// TestBrowserTracks (issue 17): Chromium, with its AudioVideoTracks feature, lists the
// three audio tracks of the multi-language download, named, the default one enabled and
// first, and plays it.
func TestBrowserTracks(t *testing.T) {
	origin := conformanceOrigin(t)
	reporter, reports := pageReporter(t, 1)
	pages := t.TempDir()
	page := fmt.Sprintf(tracksPage, "/"+multiLanguage+"/downloads/default.mp4", reporter+"/report?case=tracks")
	if err := os.WriteFile(filepath.Join(pages, "tracks.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	e := pageEdge(t, origin.URL, pages)
	chromium := testutil.Tool(t, "chromium")
	if code, env := e.call("POST", "/acct/stream/"+multiLanguage+"/downloads"); code != http.StatusOK {
		t.Fatalf("POST: %d %+v", code, env.Errors)
	}
	if en := e.waitReady(multiLanguage, "default"); en.Status != "ready" {
		t.Fatalf("download ended %s: %s", en.Status, en.ErrorReasonText)
	}
	raw, stderr := runChromium(t, chromium, e.base+"/tracks.html", reports, "tracks", 60*time.Second, "--enable-blink-features=AudioVideoTracks")
	var got struct {
		Outcome string `json:"outcome"`
		API     bool   `json:"api"`
		Tracks  []struct {
			Label, Language string
			Enabled         bool
		} `json:"tracks"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatalf("page report %q: %v", raw, err)
	}
	t.Logf("page saw %+v", got)
	if got.Outcome != "played" {
		t.Errorf("playback %s (error %q); Chromium said:\n%s", got.Outcome, got.Error, tail(stderr, 20))
	}
	var labels []string
	enabled := 0
	for _, a := range got.Tracks {
		labels = append(labels, a.Label+"/"+a.Language)
		if a.Enabled {
			enabled++
		}
	}
	if !got.API || strings.Join(labels, " ") != "Français/fra English/eng Português (Brasil)/por" || !got.Tracks[0].Enabled || enabled != 1 {
		t.Errorf("audioTracks %+v (API %v): want Français/fra (enabled), English/eng, Português (Brasil)/por", got.Tracks, got.API)
	}
}
