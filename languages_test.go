package streamdownloads_test

import (
	"encoding/json"
	"os"
	"path/filepath"
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
#EXT-X-SESSION-DATA:DATA-ID="com.apple.hls.chapters",URI="chapters.json"
#EXT-X-STREAM-INF:BANDWIDTH=110000,RESOLUTION=160x90,CODECS="avc1.64000c,mp4a.40.2",AUDIO="aud"
../packed-rendition/video.m3u8
`

// chaptersJSON is Apple's chapters document for multiLanguage: titles in English and
// French (the default audio's language, which the file takes).
const chaptersJSON = `[
 {"chapter": 1, "start-time": 0, "duration": 1.2, "titles": [{"language": "en", "title": "Opening"}, {"language": "fr", "title": "Ouverture"}]},
 {"chapter": 2, "start-time": 1.2, "duration": 1.8, "titles": [{"language": "en", "title": "The end"}, {"language": "fr", "title": "La fin"}]}
]`

// TestLanguages (issue 17): every audio rendition of the variant's group is a track of
// default and audio, tagged with its language and named, the DEFAULT one first and
// enabled, the others present and disabled; the file decodes whole, and carries the
// playlist's chapters in the default audio's language.
func TestLanguages(t *testing.T) {
	testutil.Tool(t, "ffprobe")
	root := t.TempDir()
	streams := filepath.Join(conformanceDir(t), "streams")
	for _, d := range []string{"packed-rendition", "video-only"} {
		if err := os.CopyFS(filepath.Join(root, d), os.DirFS(filepath.Join(streams, d))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "multi"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "multi", "play.m3u8"), []byte(multiLanguage), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "multi", "chapters.json"), []byte(chaptersJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	origin := testutil.NewOrigin(t, root)
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
		var audio []int
		for i, s := range p.Streams {
			if s.CodecType == "audio" {
				audio = append(audio, i)
			}
		}
		if video := len(p.Streams) - len(audio); len(audio) != 3 || video != map[string]int{"default": 1, "audio": 0}[typ] {
			t.Fatalf("%s: %d audio streams of %d", typ, len(audio), len(p.Streams))
		}
		for k, i := range audio {
			s := p.Streams[i]
			if s.Tags["language"] != want[k].lang || s.Tags["handler_name"] != want[k].name || s.Disposition["default"] != want[k].def {
				t.Errorf("%s audio %d: language %q name %q default %d; want %+v", typ, k, s.Tags["language"], s.Tags["handler_name"], s.Disposition["default"], want[k])
			}
		}
		if out := testutil.Run(t, "ffmpeg", "-v", "error", "-i", path, "-map", "0", "-f", "null", "-"); len(out) != 0 {
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
}
