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

// multiLanguage is a master playlist whose variant (the conformance suite's
// packed-rendition video) has an AUDIO group of three renditions, French the DEFAULT
// one, each with its language and name (the same packed AAC under three URLs).
const multiLanguage = `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",LANGUAGE="en",DEFAULT=NO,AUTOSELECT=YES,URI="../packed-rendition/audio.m3u8?en"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Français",LANGUAGE="fr",DEFAULT=YES,AUTOSELECT=YES,URI="../packed-rendition/audio.m3u8?fr"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Português (Brasil)",LANGUAGE="pt-BR",URI="../packed-rendition/audio.m3u8?pt"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,URI="subs/en.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="Français",LANGUAGE="fr",URI="subs/fr.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English (SDH)",LANGUAGE="en",URI="subs/en.m3u8?sdh"
#EXT-X-SESSION-DATA:DATA-ID="com.apple.hls.chapters",URI="chapters.json"
#EXT-X-STREAM-INF:BANDWIDTH=110000,RESOLUTION=160x90,CODECS="avc1.64000c,mp4a.40.2",AUDIO="aud",SUBTITLES="subs"
../packed-rendition/video.m3u8
`

// chaptersJSON is Apple's chapters document for multiLanguage: titles in English and
// French (the default audio's language, which the file takes).
const chaptersJSON = `[
 {"chapter": 1, "start-time": 0, "duration": 1.2, "titles": [{"language": "en", "title": "Opening"}, {"language": "fr", "title": "Ouverture"}]},
 {"chapter": 2, "start-time": 1.2, "duration": 1.8, "titles": [{"language": "en", "title": "The end"}, {"language": "fr", "title": "La fin"}]}
]`

// subtitlePlaylist is a WebVTT media playlist of three 1-second segments, in the
// directory named by its argument.
const subtitlePlaylist = `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:1
#EXT-X-PLAYLIST-TYPE:VOD
#EXTINF:1.0,
%[1]s/0.vtt
#EXTINF:1.0,
%[1]s/1.vtt
#EXTINF:1.0,
%[1]s/2.vtt
#EXT-X-ENDLIST
`

// writeSubtitles writes the subtitle renditions of multiLanguage into dir of o: segments
// whose X-TIMESTAMP-MAP puts LOCAL 0 at the video's first PTS (1.48 s, 133200) for
// English and a second later for French, so that the cues land where a player shows
// them: English at 0.5–1.5 s and 1.8–2.5 s of the video, French a second later.
func writeSubtitles(t *testing.T, o *testutil.Origin, dir string) {
	t.Helper()
	for lang, mpegts := range map[string]int{"en": 133200, "fr": 133200 + 90000} {
		cues := []string{
			"00:00:00.500 --> 00:00:01.500\nHello <i>there</i>",
			"00:00:01.800 --> 00:00:02.500\nSecond line\nin two rows",
			"",
		}
		for i, c := range cues {
			body := fmt.Sprintf("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:%d,LOCAL:00:00:00.000\n\n", mpegts)
			if c != "" {
				body += c + "\n"
			}
			if i > 0 && cues[i-1] != "" {
				body += "\n" + cues[i-1] + "\n" // a cue repeated in the next segment, as segmenters do
			}
			writeFile(t, o, filepath.Join(dir, lang, fmt.Sprint(i)+".vtt"), body)
		}
		writeFile(t, o, filepath.Join(dir, lang+".m3u8"), fmt.Sprintf(subtitlePlaylist, lang))
	}
}

// multiLanguageOrigin serves multiLanguage as the video "multi", with its subtitles
// and chapters, beside the conformance streams it takes its media from.
func multiLanguageOrigin(t *testing.T) *testutil.Origin {
	t.Helper()
	root := t.TempDir()
	streams := filepath.Join(conformanceDir(t), "streams")
	for _, d := range []string{"packed-rendition", "video-only"} {
		if err := os.CopyFS(filepath.Join(root, d), os.DirFS(filepath.Join(streams, d))); err != nil {
			t.Fatal(err)
		}
	}
	origin := testutil.NewOrigin(t, root)
	writeFile(t, origin, "multi/play.m3u8", multiLanguage)
	writeFile(t, origin, "multi/chapters.json", chaptersJSON)
	writeSubtitles(t, origin, "multi/subs")
	return origin
}

// TestLanguages (issue 17): every audio rendition of the variant's group is a track of
// default and audio, tagged with its language and named, the DEFAULT one first and
// enabled, the others present and disabled; the file decodes whole, and carries the
// playlist's chapters in the default audio's language.
func TestLanguages(t *testing.T) {
	testutil.Tool(t, "ffprobe")
	origin := multiLanguageOrigin(t)
	e := startEdge(t, origin.URL+"/{video_id}/play.m3u8", "")
	want := []struct {
		lang, name string
		def        int
	}{{"fra", "Français", 1}, {"eng", "English", 0}, {"por", "Português (Brasil)", 0}}
	for _, typ := range []string{"default", "audio"} {
		if code, env := e.call("POST", "/a/stream/multi/downloads/"+typ); code != 200 {
			t.Fatalf("POST %s: %d %+v", typ, code, env.Errors)
		}
		en := e.waitReady("multi", typ)
		if en.Status != "ready" {
			t.Fatalf("%s: %s %s", typ, en.Status, en.ErrorReasonText)
		}
		path, _ := e.download(en.URL)
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
		wantSubs := map[string]int{"default": 3, "audio": 0}[typ]
		if video := len(p.Streams) - len(audio) - len(subs) - len(data); len(audio) != 3 || len(subs) != wantSubs || len(data) != 1 ||
			video != map[string]int{"default": 1, "audio": 0}[typ] {
			t.Fatalf("%s: %d audio, %d subtitle and %d chapter streams of %d", typ, len(audio), len(subs), len(data), len(p.Streams))
		}
		for k, i := range subs {
			s := p.Streams[i]
			want := []struct {
				lang, name string
				def        int
				at         float64
			}{{"eng", "English", 1, 0}, {"fra", "Français", 0, 1}, {"eng", "English (SDH)", 0, 0}}[k]
			if s.CodecName != "mov_text" || s.Tags["language"] != want.lang || s.Tags["handler_name"] != want.name || s.Disposition["default"] != want.def {
				t.Errorf("subtitle %d: %s language %q name %q default %d; want mov_text %+v", k, s.CodecName, s.Tags["language"], s.Tags["handler_name"], s.Disposition["default"], want)
			}
			// Extracted as WebVTT, the cues are the source's, where a player shows them.
			vtt := string(testutil.Run(t, "ffmpeg", "-v", "error", "-i", path, "-map", fmt.Sprintf("0:s:%d", k), "-f", "webvtt", "-"))
			// LOCAL 0 is the video's first PTS; the file starts with the earliest track.
			at := want.at + testutil.Seconds(t, p.Streams[0].StartTime)
			cue := func(from, to float64) string {
				ts := func(x float64) string {
					ms := int(math.Round(x * 1000))
					return fmt.Sprintf("00:%02d.%03d", ms/1000, ms%1000)
				}
				return ts(from+at) + " --> " + ts(to+at)
			}
			for _, c := range []string{cue(0.5, 1.5) + "\nHello there\n", cue(1.8, 2.5) + "\nSecond line\nin two rows\n"} {
				if !strings.Contains(vtt, c) {
					t.Errorf("subtitle %d as WebVTT lacks %q:\n%s", k, c, vtt)
				}
			}
			// The sidecar: the same cues, timed like the MP4's.
			sidecar := []string{"en-1", "fr", "en-2"}[k]
			resp, body := e.send("GET", "/multi/downloads/"+sidecar+".vtt", "")
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/vtt; charset=utf-8" || resp.Header.Get("ETag") == "" ||
				!strings.HasPrefix(string(body), "WEBVTT\n") {
				t.Errorf("%s.vtt: %d %s ETag %q: %q", sidecar, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("ETag"), body)
			}
			for _, c := range []string{cue(0.5, 1.5) + "\nHello there\n", cue(1.8, 2.5) + "\nSecond line\nin two rows\n"} {
				if !strings.Contains(strings.ReplaceAll(string(body), "00:00:", "00:"), c) {
					t.Errorf("%s.vtt lacks %q:\n%s", sidecar, c, body)
				}
			}
			// A valid WebVTT file: ffmpeg reads it back without a word.
			vttPath := filepath.Join(t.TempDir(), sidecar+".vtt")
			if err := os.WriteFile(vttPath, body, 0o644); err != nil {
				t.Fatal(err)
			}
			if out := testutil.Run(t, "ffmpeg", "-v", "error", "-i", vttPath, "-f", "webvtt", "-"); !strings.Contains(string(out), "Hello there") {
				t.Errorf("%s.vtt read back by ffmpeg: %q", sidecar, out)
			}
		}
		for k, i := range audio {
			s := p.Streams[i]
			if s.Tags["language"] != want[k].lang || s.Tags["handler_name"] != want[k].name || s.Disposition["default"] != want[k].def {
				t.Errorf("%s audio %d: language %q name %q default %d; want %+v", typ, k, s.Tags["language"], s.Tags["handler_name"], s.Disposition["default"], want[k])
			}
		}
		if typ == "default" {
			resp, body := e.send("GET", "/multi/downloads/de.vtt", "")
			if resp.StatusCode != 404 || !strings.Contains(string(body), "it has en-1, fr, en-2") {
				t.Errorf("de.vtt: %d %q, want 404 naming the sidecars", resp.StatusCode, body)
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
	}
	// languages fr (a config of its own, which replaces the first): the French audio
	// (the default one) and subtitles only.
	{
		e := startEdge(t, origin.URL+"/{video_id}/play.m3u8", "\t\tlanguages fr\n")
		if code, env := e.call("POST", "/a/stream/multi/downloads"); code != 200 {
			t.Fatalf("POST: %d %+v", code, env.Errors)
		}
		if en := e.waitReady("multi", "default"); en.Status != "ready" {
			t.Fatalf("%s %s", en.Status, en.ErrorReasonText)
		}
		path, _ := e.download(e.base + "/multi/downloads/default.mp4")
		var got []string
		for _, s := range testutil.ProbeFile(t, path).Streams {
			got = append(got, s.CodecType+":"+s.Tags["language"])
		}
		if g := strings.Join(got, " "); g != "video:und audio:fra subtitle:fra data:und" {
			t.Errorf("streams %s, want video, French audio and subtitles, chapters", g)
		}
	}
	// Only a height type: the sidecars come from its file.
	{
		e := startEdge(t, origin.URL+"/{video_id}/play.m3u8", "")
		if code, env := e.call("POST", "/a/stream/multi/downloads/90p"); code != 200 {
			t.Fatalf("POST 90p: %d %+v", code, env.Errors)
		}
		if en := e.waitReady("multi", "90p"); en.Status != "ready" {
			t.Fatalf("90p: %s %s", en.Status, en.ErrorReasonText)
		}
		if resp, body := e.send("GET", "/multi/downloads/fr.vtt", ""); resp.StatusCode != 200 || !strings.Contains(string(body), "Hello there") {
			t.Errorf("fr.vtt of a 90p download alone: %d %q", resp.StatusCode, body)
		}
	}
}
