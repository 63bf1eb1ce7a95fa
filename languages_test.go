package streamdownloads_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// multiLanguage is the conformance flavour of issue 17 (testdata/conformance/README.md):
// three audio languages (French the default one), English and French WebVTT subtitles
// (their X-TIMESTAMP-MAP a second apart) and English SDH ones, Apple chapters.
const multiLanguage = "multi-language"

// conformanceOrigin serves the conformance suite's streams.
func conformanceOrigin(t *testing.T) *testutil.Origin {
	t.Helper()
	return testutil.NewOrigin(t, filepath.Join(conformanceDir(t), "streams"))
}

// subtitleCues are the cues of every subtitle rendition of multiLanguage, with where
// its X-TIMESTAMP-MAP puts them after the video's first frame, in seconds.
var subtitleCues = []struct {
	from, to float64
	text     string
}{{0.5, 1.5, "Hello there"}, {1.8, 2.5, "Second line\nin two rows"}}

// subtitleTracks are multiLanguage's subtitle tracks in the default MP4: language,
// name, default disposition, how much later than the English ones their cues are, and
// their sidecar's name.
var subtitleTracks = []struct {
	lang, name string
	def        int
	later      float64
	sidecar    string
}{{"eng", "English", 1, 0, "en-1"}, {"fra", "Français", 0, 1, "fr"}, {"eng", "English (SDH)", 0, 0, "en-2"}}

// cueLines is the WebVTT timing and text of cue c shifted by at seconds, as ffmpeg and
// the sidecars write it.
func cueLines(from, to, at float64, text string) string {
	ts := func(x float64) string {
		ms := int(math.Round(x * 1000))
		return fmt.Sprintf("00:%02d.%03d", ms/1000, ms%1000)
	}
	return ts(from+at) + " --> " + ts(to+at) + "\n" + text + "\n"
}

// checkMultiLanguage checks a download (typ default or audio) of multiLanguage at path:
// its audio tracks tagged, named, French first and the only one enabled; for default
// its subtitle tracks, whose cues ffmpeg extracts where a player shows them; the
// chapters (ffprobe, once each, titled in French); a clean decode. It returns where the
// video starts in the file (0 for audio).
func checkMultiLanguage(t *testing.T, path, typ string) float64 {
	t.Helper()
	p := testutil.ProbeFile(t, path)
	var audio, subs, data []int
	for i, s := range p.Streams {
		switch s.CodecType {
		case "audio":
			audio = append(audio, i)
		case "subtitle":
			subs = append(subs, i)
		case "data": // the QuickTime chapter track, as ffprobe shows it
			data = append(data, i)
		}
	}
	video := map[string]int{"default": 1, "audio": 0}[typ]
	if n := len(p.Streams) - len(audio) - len(subs) - len(data); len(audio) != 3 || len(subs) != 3*video || len(data) != 1 || n != video {
		t.Fatalf("%s: %d audio, %d subtitle and %d chapter streams of %d", typ, len(audio), len(subs), len(data), len(p.Streams))
	}
	for k, i := range audio {
		s := p.Streams[i]
		want := []struct {
			lang, name string
			def        int
		}{{"fra", "Français", 1}, {"eng", "English", 0}, {"por", "Português (Brasil)", 0}}[k]
		if s.Tags["language"] != want.lang || s.Tags["handler_name"] != want.name || s.Disposition["default"] != want.def {
			t.Errorf("%s audio %d: language %q name %q default %d; want %+v", typ, k, s.Tags["language"], s.Tags["handler_name"], s.Disposition["default"], want)
		}
	}
	start := 0.0
	if video == 1 {
		// LOCAL 0 is the video's first PTS; the file starts with its earliest track.
		start = testutil.Seconds(t, p.Streams[0].StartTime)
	}
	for k, i := range subs {
		s, want := p.Streams[i], subtitleTracks[k]
		if s.CodecName != "mov_text" || s.Tags["language"] != want.lang || s.Tags["handler_name"] != want.name || s.Disposition["default"] != want.def {
			t.Errorf("subtitle %d: %s language %q name %q default %d; want mov_text %+v", k, s.CodecName, s.Tags["language"], s.Tags["handler_name"], s.Disposition["default"], want)
		}
		vtt := string(testutil.Run(t, "ffmpeg", "-v", "error", "-i", path, "-map", fmt.Sprintf("0:s:%d", k), "-f", "webvtt", "-"))
		for _, c := range subtitleCues {
			if l := cueLines(c.from, c.to, start+want.later, c.text); !strings.Contains(vtt, l) {
				t.Errorf("subtitle %d as WebVTT lacks %q:\n%s", k, l, vtt)
			}
		}
	}
	if out := testutil.Run(t, "ffmpeg", "-v", "error", "-i", path, "-map", "0", "-map", "-0:s?", "-f", "null", "-"); len(out) != 0 {
		t.Errorf("%s: ffmpeg decode printed:\n%s", typ, out)
	}
	var chs struct {
		Chapters []struct {
			StartTime string            `json:"start_time"`
			Tags      map[string]string `json:"tags"`
		} `json:"chapters"`
	}
	if err := json.Unmarshal(testutil.Run(t, "ffprobe", "-v", "error", "-show_chapters", "-of", "json", path), &chs); err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, c := range chs.Chapters {
		got += c.StartTime + " " + c.Tags["title"] + "; "
	}
	if want := "0.000000 Ouverture; 1.200000 La fin; "; got != want {
		t.Errorf("%s: chapters %q, want %q", typ, got, want)
	}
	return start
}

// TestLanguages (issue 17) on the multi-language flavour (the conformance run checks
// its default download): its M4A carries the three audio languages and the chapters;
// the subtitle sidecars have the MP4's cues, are valid WebVTT, and come from a height
// type's file when there is no default download; languages keeps only those asked for.
func TestLanguages(t *testing.T) {
	testutil.Tool(t, "ffprobe")
	origin := conformanceOrigin(t)
	e := startEdge(t, origin.URL+"/{video_id}/play.m3u8", "")
	for _, typ := range []string{"default", "audio"} {
		if code, env := e.call("POST", "/a/stream/"+multiLanguage+"/downloads/"+typ); code != 200 {
			t.Fatalf("POST %s: %d %+v", typ, code, env.Errors)
		}
	}
	en := e.waitReady(multiLanguage, "audio")
	if en.Status != "ready" {
		t.Fatalf("audio: %s %s", en.Status, en.ErrorReasonText)
	}
	path, _ := e.download(en.URL)
	checkMultiLanguage(t, path, "audio")

	if en = e.waitReady(multiLanguage, "default"); en.Status != "ready" {
		t.Fatalf("default: %s %s", en.Status, en.ErrorReasonText)
	}
	path, _ = e.download(en.URL)
	start := testutil.Seconds(t, testutil.ProbeFile(t, path).Streams[0].StartTime)
	for _, st := range subtitleTracks {
		resp, body := e.send("GET", "/"+multiLanguage+"/downloads/"+st.sidecar+".vtt", "")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/vtt; charset=utf-8" || resp.Header.Get("ETag") == "" ||
			!strings.HasPrefix(string(body), "WEBVTT\n") {
			t.Errorf("%s.vtt: %d %s ETag %q: %q", st.sidecar, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("ETag"), body)
		}
		for _, c := range subtitleCues { // timed like the MP4's
			if l := cueLines(c.from, c.to, start+st.later, c.text); !strings.Contains(strings.ReplaceAll(string(body), "00:00:", "00:"), l) {
				t.Errorf("%s.vtt lacks %q:\n%s", st.sidecar, l, body)
			}
		}
		// A valid WebVTT file: ffmpeg reads it back.
		vttPath := filepath.Join(t.TempDir(), st.sidecar+".vtt")
		if err := os.WriteFile(vttPath, body, 0o644); err != nil {
			t.Fatal(err)
		}
		if out := testutil.Run(t, "ffmpeg", "-v", "error", "-i", vttPath, "-f", "webvtt", "-"); !strings.Contains(string(out), "Hello there") {
			t.Errorf("%s.vtt read back by ffmpeg: %q", st.sidecar, out)
		}
	}
	if resp, body := e.send("GET", "/"+multiLanguage+"/downloads/de.vtt", ""); resp.StatusCode != 404 || !strings.Contains(string(body), "it has en-1, fr, en-2") {
		t.Errorf("de.vtt: %d %q, want 404 naming the sidecars", resp.StatusCode, body)
	}

	// languages fr (a config of its own, which replaces the first): the French audio
	// (the default one) and subtitles only.
	e = startEdge(t, origin.URL+"/{video_id}/play.m3u8", "\t\tlanguages fr\n")
	if code, env := e.call("POST", "/a/stream/"+multiLanguage+"/downloads"); code != 200 {
		t.Fatalf("POST: %d %+v", code, env.Errors)
	}
	if en := e.waitReady(multiLanguage, "default"); en.Status != "ready" {
		t.Fatalf("%s %s", en.Status, en.ErrorReasonText)
	}
	path, _ = e.download(e.base + "/" + multiLanguage + "/downloads/default.mp4")
	var got []string
	for _, s := range testutil.ProbeFile(t, path).Streams {
		got = append(got, s.CodecType+":"+s.Tags["language"])
	}
	if g := strings.Join(got, " "); g != "video:und audio:fra subtitle:fra data:und" {
		t.Errorf("streams %s, want video, French audio and subtitles, chapters", g)
	}

	// Only a height type: the sidecars come from its file.
	e = startEdge(t, origin.URL+"/{video_id}/play.m3u8", "")
	if code, env := e.call("POST", "/a/stream/"+multiLanguage+"/downloads/90p"); code != 200 {
		t.Fatalf("POST 90p: %d %+v", code, env.Errors)
	}
	if en := e.waitReady(multiLanguage, "90p"); en.Status != "ready" {
		t.Fatalf("90p: %s %s", en.Status, en.ErrorReasonText)
	}
	if resp, body := e.send("GET", "/"+multiLanguage+"/downloads/fr.vtt", ""); resp.StatusCode != 200 || !strings.Contains(string(body), "Hello there") {
		t.Errorf("fr.vtt of a 90p download alone: %d %q", resp.StatusCode, body)
	}
}
