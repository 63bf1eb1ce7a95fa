package subtitles

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestWriteVTT(t *testing.T) {
	tests := []struct {
		name string
		cues []Cue
		want string
	}{
		{"no cues", nil, "WEBVTT\n"},
		{
			"ids, settings, escapes, order, hours",
			[]Cue{
				{Start: 2*time.Hour + ms(1), End: 2*time.Hour + ms(2500), Text: "later"},
				{ID: "c1", Start: ms(1000), End: ms(2000), Settings: "align:start", Text: "a & b <c> -->\n\nline"},
				{ID: "bad-->id", Start: ms(3000), End: ms(4000), Settings: "x\ny", Text: "no id, no settings"},
				{ID: "NOTE this", Start: ms(5000), End: ms(6000), Text: "keyword id dropped"},
			},
			"WEBVTT\n\n" +
				"c1\n00:00:01.000 --> 00:00:02.000 align:start\na &amp; b &lt;c&gt; --&gt;\nline\n\n" +
				"00:00:03.000 --> 00:00:04.000\nno id, no settings\n\n" +
				"00:00:05.000 --> 00:00:06.000\nkeyword id dropped\n\n" +
				"02:00:00.001 --> 02:00:02.500\nlater\n",
		},
		{
			"clipped at 0, rounded to ms, empty and zero-length cues skipped",
			[]Cue{
				{Start: -ms(500), End: 1500400 * time.Microsecond, Text: "clipped"},
				{Start: -ms(2000), End: -ms(1000), Text: "before 0"},
				{Start: ms(3000), End: 3000400 * time.Microsecond, Text: "rounds to nothing"},
				{Start: ms(4000), End: ms(5000), Text: "\n\n"},
				{Start: ms(6000), End: 100*time.Hour + 1999500*time.Microsecond, Text: "long"},
			},
			"WEBVTT\n\n" +
				"00:00:00.000 --> 00:00:01.500\nclipped\n\n" +
				"00:00:06.000 --> 100:00:02.000\nlong\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sb strings.Builder
			if err := WriteVTT(&sb, tc.cues); err != nil {
				t.Fatal(err)
			}
			if sb.String() != tc.want {
				t.Errorf("got\n%q\nwant\n%q", sb.String(), tc.want)
			}
		})
	}
}

// TestWriteVTTRoundTrip: what WriteVTT writes, Parse reads back unchanged,
// and ffmpeg reads it without complaint.
func TestWriteVTTRoundTrip(t *testing.T) {
	data, err := os.ReadFile("testdata/apple_map.vtt")
	if err != nil {
		t.Fatal(err)
	}
	cues, err := ParseSegment(data, 900000)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := WriteVTT(&sb, cues); err != nil {
		t.Fatal(err)
	}
	seg, err := Parse([]byte(sb.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, sb.String())
	}
	if seg.Map != nil || !reflect.DeepEqual(seg.Cues, cues) {
		t.Errorf("read back\n%+v\nwant\n%+v", seg.Cues, cues)
	}

	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("no ffmpeg")
	}
	file := filepath.Join(t.TempDir(), "fr.vtt")
	if err := os.WriteFile(file, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ffmpeg, "-v", "error", "-i", file, "-f", "srt", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	// ffmpeg's SRT muxer ends the inner lines of a cue with CRLF.
	want := "1\n00:00:10,000 --> 00:00:12,500\nHi & welcome\r\nsecond\u00a0line\n\n" +
		"2\n00:00:12,500 --> 00:00:14,000\n<music> \u200eok\n\n"
	if string(out) != want {
		t.Errorf("ffmpeg read\n%q\nwant\n%q", out, want)
	}
}
