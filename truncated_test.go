package streamdownloads_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// TestTruncatedSegments (issue 12 point 3): an origin serves one segment cut short, with
// a Content-Length that matches the cut, so that HTTP sees nothing wrong. Whether the cut
// is in the middle of the playlist or in its last segment, in the middle of a TS packet,
// at a packet boundary inside a PES (audio, which carries its length; video, which does
// not, in the middle of the playlist), or inside an fMP4 mdat, the run must end in error
// (malformed_segment) naming the segment that was cut, never ready with decode errors:
// media was lost.
//
// Not here: the last segment cut at a packet boundary inside a video PES (or after whole
// PES), which nothing in the stream tells from a complete one: video PES carry no length,
// no segment follows whose counters would show packets missing, and the media lost is
// within what EXTINF rounding allows.
func TestTruncatedSegments(t *testing.T) {
	demo := filepath.Join(testutil.DemoOrigin(t), "demo")
	fmp4 := filepath.Join(conformanceDir(t), "streams", "fmp4-h264-aac")
	midPacket := func(t *testing.T, seg []byte) int { return len(seg)/188/2*188 + 77 }
	inAudioPES := func(from float64) func(*testing.T, []byte) int {
		return func(t *testing.T, seg []byte) int {
			return testutil.CutInsidePES(t, seg, from, testutil.TSPES.Audio)
		}
	}
	inVideoPES := func(from float64) func(*testing.T, []byte) int {
		return func(t *testing.T, seg []byte) int {
			return testutil.CutInsidePES(t, seg, from, testutil.TSPES.Video)
		}
	}
	inMdat := func(t *testing.T, seg []byte) int { return testutil.CutInsideMdat(t, seg) }
	// lastAudioPES: inside the segment's last PES (ffmpeg ends its segments with audio).
	lastAudioPES := func(t *testing.T, seg []byte) int {
		pes := testutil.PESOf(t, seg)
		last := pes[len(pes)-1]
		if !last.Audio() || len(last.Packets) < 2 {
			t.Fatalf("the segment's last PES is not audio of two packets or more: %+v", last)
		}
		return last.Packets[len(last.Packets)-1] * 188
	}
	cases := []struct {
		name   string
		src    string // the stream's folder
		master string // its entry playlist
		seg    string // the segment cut, relative to src
		cut    func(*testing.T, []byte) int
	}{
		{"ts-midpacket-middle", demo, "master.m3u8", "240p/seg_001.ts", midPacket},
		{"ts-midpacket-last", demo, "master.m3u8", "240p/seg_002.ts", midPacket},
		{"ts-audiopes-middle", demo, "master.m3u8", "240p/seg_001.ts", inAudioPES(0.85)},
		{"ts-audiopes-last", demo, "master.m3u8", "240p/seg_002.ts", inAudioPES(0.85)},
		{"ts-lastpes-middle", demo, "master.m3u8", "240p/seg_001.ts", lastAudioPES},
		{"ts-lastpes-last", demo, "master.m3u8", "240p/seg_002.ts", lastAudioPES},
		{"ts-videopes-middle", demo, "master.m3u8", "240p/seg_001.ts", inVideoPES(0.9)},
		{"fmp4-mdat-middle", fmp4, "play.m3u8", "seg_001.m4s", inMdat},
		{"fmp4-mdat-last", fmp4, "play.m3u8", "seg_002.m4s", inMdat},
	}
	dir := t.TempDir()
	for _, c := range cases {
		to := filepath.Join(dir, c.name)
		if err := os.CopyFS(to, os.DirFS(c.src)); err != nil {
			t.Fatal(err)
		}
		// The entry playlist of every case is master.m3u8.
		if c.master != "master.m3u8" {
			b, err := os.ReadFile(filepath.Join(to, c.master))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(to, "master.m3u8"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		seg, err := os.ReadFile(filepath.Join(to, c.seg))
		if err != nil {
			t.Fatal(err)
		}
		n := c.cut(t, seg)
		if n <= 0 || n >= len(seg) {
			t.Fatalf("%s: cut at %d of %d bytes", c.name, n, len(seg))
		}
		t.Logf("%s: %s cut to %d of %d bytes", c.name, c.seg, n, len(seg))
		if err := os.WriteFile(filepath.Join(to, c.seg), seg[:n], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	origin := testutil.NewFaultOrigin(t, dir)
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "\t\tmax_jobs 16\n")
	for _, c := range cases {
		if code, env := e.call("POST", "/a/stream/"+c.name+"/downloads"); code != http.StatusOK {
			t.Fatalf("POST %s: %d %+v", c.name, code, env.Errors)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			se := *e
			se.t = t
			en := se.waitReady(c.name, "default")
			t.Logf("%s: %s %s", en.Status, en.ErrorReasonCode, en.ErrorReasonText)
			if en.Status == "ready" {
				path, _ := se.download(en.URL)
				t.Errorf("ended ready; ffmpeg decoding it: %.500s", testutil.DecodeErrors(t, path))
			}
			checkFailed(t, &se, c.name, en, "malformed_segment", []string{"segment " + origin.URL + "/" + c.name + "/" + c.seg + ": "})
		})
	}
}
