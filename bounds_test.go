package streamdownloads_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// TestImplausibleMedia (issue 12 point 2): media that does not fit its playlist ends the
// run in error naming the segment and what is wrong, never ready with a file of hundreds
// of hours or millions of samples:
//   - flood: 8 segments that say 4 s each and hold 100 MB of 9-byte ADTS frames (11.6
//     million frames, 69 hours, each), made on the fly by the origin; the run stops
//     at the first segment, long before it is read;
//   - jump: the demo's timestamps jump by 8 hours in the middle of its second 4-s segment;
//   - fps2000: an ffmpeg-made H.264 stream of 2000 frames a second (tiny frames that
//     advance time only 45 ticks each), more samples per second than any real video;
//   - limits.duration applies to the media timeline: the demo (12 s of media) with
//     EXTINF of 3.2 s (a 9.6-s playlist, within the limit of 10 s) ends in
//     limit_exceeded.
//
// The demo, unchanged, is packaged ready beside them (the bounds leave real media alone).
func TestImplausibleMedia(t *testing.T) {
	dir := demoCopies(t, "clean", "jump", "long")
	edit := func(path string, f func([]byte) []byte) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, f(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// jump: +8 h from the middle of 240p/seg_001.ts on (seg_002 goes on from there).
	const eightHours = 8 * 3600 * 90000
	jump := filepath.Join(dir, "jump")
	edit(filepath.Join(jump, "240p", "seg_001.ts"), func(b []byte) []byte {
		return testutil.ShiftTimestamps(t, b, len(b)/188/2, eightHours)
	})
	edit(filepath.Join(jump, "240p", "seg_002.ts"), func(b []byte) []byte {
		return testutil.ShiftTimestamps(t, b, 0, eightHours)
	})

	// fps2000: two 4-s segments of 2000 frames/s (a key frame every second).
	fps := filepath.Join(dir, "fps2000")
	if err := os.MkdirAll(fps, 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x36:rate=2000", "-t", "8",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "2000", "-f", "hls", "-hls_time", "4",
		"-hls_playlist_type", "vod", "-hls_segment_filename", filepath.Join(fps, "seg_%03d.ts"), filepath.Join(fps, "master.m3u8"))

	// long: the demo's 4-s segments said to be 3.2 s long.
	long := filepath.Join(dir, "long")
	for _, v := range []string{"240p", "144p"} {
		edit(filepath.Join(long, v, "index.m3u8"), func(b []byte) []byte {
			return bytes.ReplaceAll(b, []byte("#EXTINF:4.000000,"), []byte("#EXTINF:3.200000,"))
		})
	}

	flood := &testutil.Flood{Segments: 8, Size: 100 << 20}
	files := testutil.NewFaultOrigin(t, dir)
	mux := http.NewServeMux()
	mux.Handle("/flood/", flood)
	mux.Handle("/", files.Server.Config.Handler)
	origin := httptest.NewServer(mux)
	t.Cleanup(origin.Close)

	cases := []struct {
		name, limits string
		seg          string // the segment the error names
		code         string
		text         []string // what the error says after "segment <URL>: "
	}{
		{name: "clean"},
		{"flood", "", "flood/seg_000.aac", "malformed_segment", []string{"malformed segment: its audio reaches 8.0", "s past where the playlist ends the segment (4s: EXTINF 4.000 s from 0s); up to 4s past it is taken"}},
		{"jump", "", "jump/240p/seg_001.ts", "malformed_segment", []string{"malformed segment: its ", " reaches 8h0m", "past where the playlist ends the segment (8s: EXTINF 4.000 s from 4s)"}},
		{"fps2000", "", "fps2000/seg_000.ts", "malformed_segment", []string{"malformed segment: it holds more than 2400 video samples against its EXTINF of 4.000 s (at most 300 per second are taken)"}},
		{"long", "duration 10s", "long/240p/seg_002.ts", "limit_exceeded", []string{"limit exceeded: the media goes on to 10.0", "s of its timeline, more than limits.duration (10s)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			extra := ""
			if c.limits != "" {
				extra = "\t\tlimits {\n\t\t\t" + c.limits + "\n\t\t}\n"
			}
			e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", extra)
			start := time.Now()
			if code, env := e.call("POST", "/a/stream/"+c.name+"/downloads"); code != http.StatusOK {
				t.Fatalf("POST: %d %+v", code, env.Errors)
			}
			en := e.waitReady(c.name, "default")
			t.Logf("%s after %v: %s %s", en.Status, time.Since(start).Round(time.Millisecond), en.ErrorReasonCode, en.ErrorReasonText)
			if c.code == "" {
				if en.Status != "ready" {
					t.Fatalf("ended %s: %s", en.Status, en.ErrorReasonText)
				}
				path, _ := e.download(en.URL)
				t.Log(testutil.CompareWithSource(t, path, filepath.Join(dir, "clean", "240p", "index.m3u8")))
				return
			}
			if en.Status == "ready" {
				t.Errorf("ended ready, want %s", c.code)
				path, _ := e.download(en.URL)
				p := testutil.ProbeFile(t, path)
				t.Fatalf("the file: %s s (%s)", p.Format.Duration, strings.Join(streamsOf(p), ", "))
			}
			prefix := "segment " + origin.URL + "/" + c.seg + ": "
			checkFailed(t, e, c.name, en, c.code, append([]string{prefix + c.text[0]}, c.text[1:]...))
		})
	}
	// The flood stopped at its first segment, long before 100 MB of it were read.
	if n := flood.Sent(); n > 64<<20 {
		t.Errorf("the origin sent %d MB of the flood", n>>20)
	} else {
		t.Logf("the origin sent %.1f MB of the flood in %d requests", float64(n)/(1<<20), flood.Requests())
	}
}

// streamsOf lists the streams of p as "video h264 1234 frames".
func streamsOf(p *testutil.Probe) []string {
	var out []string
	for _, s := range p.Streams {
		out = append(out, s.CodecType+" "+s.CodecName+" "+s.NbFrames+" frames")
	}
	return out
}
