package mp4

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

func TestISO639(t *testing.T) {
	for _, c := range []struct{ tag, code, elng string }{
		{"", "und", ""},
		{"en", "eng", "en"},
		{"eng", "eng", ""},
		{"fr", "fra", "fr"},
		{"de-CH", "deu", "de-CH"},
		{"pt-BR", "por", "pt-BR"},
		{"zh-Hans", "zho", "zh-Hans"},
		{"es-419", "spa", "es-419"},
		{"und", "und", ""},
		{"xx", "und", "xx"},
		{"not a tag", "und", "not a tag"},
	} {
		if got := iso639(c.tag); got != c.code {
			t.Errorf("iso639(%q) = %q, want %q", c.tag, got, c.code)
		}
		if got := elngTag(c.tag); got != c.elng {
			t.Errorf("elngTag(%q) = %q, want %q", c.tag, got, c.elng)
		}
	}
	if got := packLanguage("und"); got != 0x55c4 {
		t.Errorf("und packs to %#x", got)
	}
}

// TestLanguages: three audio tracks with a language, a name and all but one disabled, in one
// alternate group, read back by ffprobe with their languages, names (the hdlr's) and the default
// disposition on the enabled one only; the BCP 47 tag in elng.
func TestLanguages(t *testing.T) {
	dir := t.TempDir()
	src, out := filepath.Join(dir, "src.mp4"), filepath.Join(dir, "out.mp4")
	testutil.Run(t, "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=0.4", "-c:a", "aac", src)
	tracks, samples, _ := demuxMP4(t, src)
	audio := tracks[0]
	langs := []struct{ tag, name string }{{"en", "English"}, {"fr", "Français"}, {"pt-BR", "Português (Brasil)"}}
	var out3 []*media.Track
	copies := map[*media.Track][]*media.Track{}
	for i, l := range langs {
		c := *audio
		c.ID, c.Language, c.Name, c.Disabled, c.AlternateGroup = 1+i, l.tag, l.name, i > 0, 1
		copies[audio] = append(copies[audio], &c)
		out3 = append(out3, &c)
	}
	w := NewWriter(testutil.CreateFile(t, out), Options{})
	for _, s := range samples {
		for _, tr := range copies[s.Track] {
			s.Track = tr
			if err := w.WriteSample(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := w.Finish(out3); err != nil {
		t.Fatal(err)
	}
	p := testutil.ProbeFile(t, out)
	if len(p.Streams) != 3 {
		t.Fatalf("%d streams", len(p.Streams))
	}
	for i, want := range []struct {
		lang, title string
		def         int
	}{{"eng", "English", 1}, {"fra", "Français", 0}, {"por", "Português (Brasil)", 0}} {
		s := p.Streams[i]
		if s.Tags["language"] != want.lang || s.Tags["handler_name"] != want.title || s.Disposition["default"] != want.def {
			t.Errorf("audio %d: tags %v, default %d; want %s %q default %d", i, s.Tags, s.Disposition["default"], want.lang, want.title, want.def)
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("elng\x00\x00\x00\x00pt-BR\x00")) || !bytes.Contains(b, []byte("elng\x00\x00\x00\x00fr\x00")) {
		t.Error("no elng box with the BCP 47 tags")
	}
	// The name as ffmpeg writes a track's title (udta/name; ffprobe 5.1 does not show it).
	if !bytes.Contains(b, []byte("\x00\x00\x00\x19udta\x00\x00\x00\x11nameFrançais")) {
		t.Error("no udta/name with the track's name")
	}
	if out := testutil.Run(t, "ffmpeg", "-v", "error", "-i", out, "-map", "0", "-f", "null", "-"); len(out) != 0 {
		t.Errorf("ffmpeg decode printed:\n%s", out)
	}
}
