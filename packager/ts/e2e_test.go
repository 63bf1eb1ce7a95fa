package ts

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
	"github.com/stream-downloads/caddy-stream-downloads/packager/mp4"
)

// hlsStream is an ffmpeg-made HLS stream: its playlist, segments and EXTINF durations.
type hlsStream struct {
	dir      string
	playlist string
	segs     []string
	extinf   []time.Duration
}

// makeHLS runs ffmpeg's HLS muxer (1 s target) with args and reads back the playlist.
func makeHLS(t *testing.T, hlsFlags []string, args ...string) hlsStream {
	t.Helper()
	dir := t.TempDir()
	full := append([]string{"-v", "error", "-y"}, args...)
	full = append(full, "-f", "hls", "-hls_time", "1", "-hls_list_size", "0")
	full = append(full, hlsFlags...)
	full = append(full, "-hls_segment_filename", filepath.Join(dir, "s%03d.ts"), filepath.Join(dir, "index.m3u8"))
	testutil.Run(t, "ffmpeg", full...)
	s := readPlaylist(t, filepath.Join(dir, "index.m3u8"))
	if len(s.segs) < 2 {
		t.Fatalf("ffmpeg made %d segments", len(s.segs))
	}
	return s
}

// readPlaylist reads the segments and EXTINF durations of a media playlist.
func readPlaylist(t *testing.T, playlist string) hlsStream {
	t.Helper()
	dir := filepath.Dir(playlist)
	s := hlsStream{dir: dir, playlist: playlist}
	f, err := os.Open(s.playlist)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "#EXTINF:"); ok {
			sec, err := strconv.ParseFloat(strings.TrimSuffix(strings.Split(v, ",")[0], ","), 64)
			if err != nil {
				t.Fatal(err)
			}
			s.extinf = append(s.extinf, time.Duration(sec*float64(time.Second)))
		} else if line != "" && !strings.HasPrefix(line, "#") {
			s.segs = append(s.segs, filepath.Join(dir, line))
		}
	}
	if len(s.segs) != len(s.extinf) {
		t.Fatalf("%s: %d segments, %d EXTINF", playlist, len(s.segs), len(s.extinf))
	}
	return s
}

// subPlaylist writes a playlist of some segments (with EXT-X-DISCONTINUITY before the
// segment indexes in disc) for ffprobe, next to the first stream's segments.
func subPlaylist(t *testing.T, name string, parts ...[]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n")
	for i, segs := range parts {
		if i > 0 {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		for _, s := range segs {
			fmt.Fprintf(&b, "#EXTINF:1.0,\n%s\n", s)
		}
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// period is a run of segments; every period after the first starts with a discontinuity
// at the given playlist time.
type inPeriod struct {
	at   time.Duration
	segs []string
}

// packageTS demuxes the periods and writes an MP4, checking the per-track invariants
// (testutil.CheckSamples: strictly increasing DTS, length-prefixed NAL units without AUD
// or parameter sets, unless they differ from the sample entry's after a discontinuity;
// exact AAC frame steps within one period). It returns the MP4 path and the samples.
func packageTS(t *testing.T, periods ...inPeriod) (string, *testutil.Samples) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.mp4")
	w := mp4.NewWriter(testutil.CreateFile(t, out), mp4.Options{ExpectedDuration: time.Minute})
	d := NewDemuxer()
	_, c := testutil.PackageMP4(t, w, d, func(emit func(media.Sample) error) error {
		for i, p := range periods {
			if i > 0 {
				d.Discontinuity(p.at)
			}
			for _, seg := range p.segs {
				if err := testutil.SegmentFile(t, d, seg, emit); err != nil {
					return fmt.Errorf("segment %s: %w", seg, err)
				}
			}
		}
		return nil
	})
	checks := tsChecks
	for _, tr := range c.Tracks {
		if tr.Kind == media.Audio {
			checks.AudioStep = int64(tr.FrameDuration) // 0 (Opus): increasing only
		}
	}
	if len(periods) > 1 {
		// A new period starts where the playlist says, and may bring new parameter sets.
		checks = testutil.Checks{ChangedParamSets: true}
	}
	testutil.CheckSamples(t, c, checks)
	return out, c
}

// probeJSON runs ffprobe with args and decodes its JSON output into v.
func probeJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	cmd := exec.Command(testutil.Tool(t, "ffprobe"), append([]string{"-v", "error", "-of", "json"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %v: %v\n%s", args, err, stderr.Bytes())
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("ffprobe %v: %v\n%s", args, err, out)
	}
}

// countFrames is the number of frames ffmpeg decodes from the stream of kind in input.
func countFrames(t *testing.T, input, kind string) int {
	t.Helper()
	p := testutil.ProbeFile(t, input, "-count_frames")
	for _, s := range p.Streams {
		if s.CodecType == kind {
			n, _ := strconv.Atoi(s.NbReadFrames)
			return n
		}
	}
	return 0
}

func TestHEVCEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ffmpeg")
	}
	// x265 defaults: B-frames, open GOP (CRA keyframes with RASL pictures after the first
	// IDR). 160x90 is not a multiple of the 8x8 CU: the SPS crops (conformance window).
	s := makeHLS(t, nil,
		"-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "3", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:keyint=25:bframes=3",
		"-c:a", "aac")
	out, c := packageTS(t, inPeriod{segs: s.segs})
	v := c.Tracks[0]
	if v.Codec != media.H265 || v.Width != 160 || v.Height != 90 || len(v.VPS) != 1 || len(v.SPS) != 1 || len(v.PPS) != 1 {
		t.Errorf("video track %+v", v)
	}
	if len(c.Video) != 75 {
		t.Errorf("%d video samples, want 75", len(c.Video))
	}
	t.Log(testutil.CompareWithSource(t, out, s.playlist))
}

// TestHEVCStartsAtCRA packages an x265 open-GOP stream from its second segment, which
// starts with a CRA picture followed (in decode order) by RASL pictures that reference
// the previous GOP: those are dropped, as ffmpeg's decoder does for a CRA it starts at,
// so the frame counts agree with the source's.
func TestHEVCStartsAtCRA(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ffmpeg")
	}
	s := makeHLS(t, nil,
		"-f", "lavfi", "-i", "testsrc2=size=160x96:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "3", "-c:v", "libx265", "-preset", "fast",
		"-x265-params", "log-level=error:keyint=24:min-keyint=24:bframes=3:b-adapt=0:open-gop=1:scenecut=0",
		"-c:a", "aac")
	out, c := packageTS(t, inPeriod{segs: s.segs[1:]})
	// With a 24-frame GOP and b-adapt=0, x265 codes the 3 B frames displayed before each
	// CRA after it in decode order, as RASL pictures: the first CRA's 3 are gone.
	src := subPlaylist(t, "from2.m3u8", s.segs[1:])
	var p struct {
		Packets []struct{} `json:"packets"`
	}
	probeJSON(t, &p, "-select_streams", "v", "-show_entries", "packet=pts", src)
	if len(c.Video) != len(p.Packets)-3 {
		t.Errorf("%d video samples of %d packets, want 3 fewer (RASL dropped)", len(c.Video), len(p.Packets))
	}
	if got, want := len(c.Video), countFrames(t, src, "video"); got != want {
		t.Errorf("%d video samples, ffmpeg decodes %d from the source", got, want)
	}
	if msg := testutil.DecodeErrors(t, out); msg != "" {
		t.Errorf("decoding printed: %s", msg)
	}
}

func TestAACChannels(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ffmpeg")
	}
	for _, tc := range []struct {
		name   string
		ac     string
		layout string
	}{
		{"mono", "1", "mono"},
		{"5.1", "6", "5.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := makeHLS(t, nil,
				"-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25",
				"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
				"-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
				"-c:a", "aac", "-ac", tc.ac)
			out, c := packageTS(t, inPeriod{segs: s.segs})
			a := c.Tracks[len(c.Tracks)-1]
			if want, _ := strconv.Atoi(tc.ac); a.Channels != want {
				t.Errorf("track channels %d, want %d", a.Channels, want)
			}
			t.Log(testutil.CompareWithSource(t, out, s.playlist))
			var p struct {
				Streams []struct {
					Channels int    `json:"channels"`
					Layout   string `json:"channel_layout"`
				} `json:"streams"`
			}
			probeJSON(t, &p, "-select_streams", "a", "-show_entries", "stream=channels,channel_layout", out)
			if len(p.Streams) != 1 || p.Streams[0].Layout != tc.layout {
				t.Errorf("ffprobe audio %+v, want layout %s", p.Streams, tc.layout)
			}
		})
	}
}

// firstDecoded returns the time of the first frame ffmpeg decodes from input for each
// stream kind (video, audio).
func firstDecoded(t *testing.T, input string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, kind := range []string{"v", "a"} {
		var p struct {
			Frames []struct {
				Time string `json:"best_effort_timestamp_time"`
			} `json:"frames"`
		}
		probeJSON(t, &p, "-select_streams", kind, "-show_entries", "frame=best_effort_timestamp_time", input)
		if len(p.Frames) == 0 {
			t.Fatalf("no %s frame decoded from %s", kind, input)
		}
		out[map[string]string{"v": "video", "a": "audio"}[kind]] = testutil.Seconds(t, p.Frames[0].Time)
	}
	return out
}

// streamStarts is ffprobe's start_time per stream kind (the MP4's edit lists applied).
func streamStarts(t *testing.T, path string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, s := range testutil.ProbeFile(t, path).Streams {
		out[s.CodecType] = testutil.Seconds(t, s.StartTime)
	}
	return out
}

// TestFirstSegmentMidGOP packages a stream from its second segment, which (split by time,
// 4 s GOP) starts with P/B frames: the video starts at the first IDR, 4 s into the source,
// while the audio starts with the segment, about 1 s in.
func TestFirstSegmentMidGOP(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ffmpeg")
	}
	s := makeHLS(t, []string{"-hls_flags", "split_by_time"},
		"-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "100", "-sc_threshold", "0",
		"-c:a", "aac")
	out, c := packageTS(t, inPeriod{segs: s.segs[1:]})
	src := subPlaylist(t, "from2.m3u8", s.segs[1:])
	// ffmpeg's decoder also drops what precedes the IDR, so it sees the same frames: 50
	// (frames 100..149, from 4 s to the 6 s end).
	if got, want := len(c.Video), countFrames(t, src, "video"); got != want || got != 50 {
		t.Errorf("%d video samples, ffmpeg decodes %d from the source (want 50)", got, want)
	}
	if msg := testutil.DecodeErrors(t, out); msg != "" {
		t.Errorf("decoding printed: %s", msg)
	}
	// The source's first decodable frames: video at 1.48+4 = 5.48 s (ffmpeg's 1.4 s muxing
	// delay plus 2 frames of B-frame delay, plus the IDR at frame 100), audio at about
	// 2.42 s (segment 2's first audio packet, about 1 s in). In the MP4 (edit lists) the
	// earliest stream starts at 0, so the video must start 5.48-2.42 = 3.06 s after the
	// audio, within a frame.
	srcFirst := firstDecoded(t, src)
	outStart := streamStarts(t, out)
	srcOff := srcFirst["video"] - srcFirst["audio"]
	outOff := outStart["video"] - outStart["audio"]
	if math.Abs(srcOff-outOff) > 0.04 || srcOff < 2.5 || srcOff > 3.5 {
		t.Errorf("video starts %.4f s after audio, source's first decodable frames %.4f s", outOff, srcOff)
	}
	t.Logf("video−audio start %.4f s (source %.4f s: video %.4f, audio %.4f)", outOff, srcOff, srcFirst["video"], srcFirst["audio"])
}

// TestOpenGOPH264 packages an x264 open-GOP stream from its second segment: no IDR, it
// starts with a non-IDR I frame with a recovery point SEI, followed in decode order by
// B frames displayed before it (they reference the previous GOP) which are dropped. With
// a 24-frame GOP and 3 fixed B frames, 2 such leading B frames follow the I frame.
// (ffmpeg decoding that source prints reference errors for them; the MP4 decodes clean.)
func TestOpenGOPH264(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ffmpeg")
	}
	s := makeHLS(t, nil,
		"-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "3", "-g", "24",
		"-x264-params", "open-gop=1:scenecut=0:b-adapt=0",
		// x264 writes SPS/PPS only with IDR frames; an HLS encoder repeats them at every
		// keyframe, which is what global headers plus dump_extra do.
		"-flags", "+global_header", "-bsf:v", "dump_extra=freq=keyframe",
		"-c:a", "aac")
	out, c := packageTS(t, inPeriod{segs: s.segs[1:]})
	// Expected: frames of segments 2.. whose PTS is not before the first I frame's.
	src := subPlaylist(t, "from2.m3u8", s.segs[1:])
	var p struct {
		Packets []struct {
			PTS   string `json:"pts_time"`
			Flags string `json:"flags"`
		} `json:"packets"`
	}
	probeJSON(t, &p, "-select_streams", "v", "-show_entries", "packet=pts_time,flags", src)
	var pts []float64
	for _, k := range p.Packets {
		pts = append(pts, testutil.Seconds(t, k.PTS))
	}
	if len(p.Packets) == 0 || !strings.HasPrefix(p.Packets[0].Flags, "K") {
		t.Fatalf("segment 2 does not start with a keyframe: %+v", p.Packets[:1])
	}
	want := 0
	for _, v := range pts {
		if v >= pts[0] {
			want++
		}
	}
	if len(c.Video) != want || want >= len(pts) {
		t.Errorf("%d video samples, want %d (of %d: the leading B frames dropped)", len(c.Video), want, len(pts))
	}
	if msg := testutil.DecodeErrors(t, out); msg != "" {
		t.Errorf("decoding printed: %s", msg)
	}
	syncs := 0
	for _, v := range c.Video {
		if v.Sync {
			syncs++
		}
	}
	if syncs < 2 {
		t.Errorf("%d sync samples, want the recovery-point I frames (2)", syncs)
	}
	// A/V: the I frame is at the segment start; audio and video start together (±1 frame).
	srcFirst := firstDecoded(t, src)
	outStart := streamStarts(t, out)
	t.Logf("video−audio start %.4f s (source first packets: video %.4f, audio %.4f)",
		outStart["video"]-outStart["audio"], pts[0], srcFirst["audio"])
	if d := (outStart["video"] - outStart["audio"]) - (pts[0] - srcFirst["audio"]); math.Abs(d) > 0.04 {
		t.Errorf("A/V offset off by %.4f s", d)
	}
}

// TestDiscontinuity joins two ffmpeg streams with different timestamp offsets (and a
// different A/V offset: the second has no B frames, so no 2-frame video delay) the way a
// playlist with EXT-X-DISCONTINUITY between them does. The output must be continuous:
// frames = sum, duration = sum of the two spans within a frame, decode clean, each
// period keeps its own A/V offset, DTS strictly increasing per track.
func TestDiscontinuity(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ffmpeg")
	}
	for _, tc := range []struct {
		name   string
		offA   string
		offB   string
		bframe string
	}{
		{"forward", "10", "1000", "0"},
		{"backwards", "1000", "10", "0"},
		// B starts 1.3 s before 2^33 (95443.7 s) and wraps inside: from A at 10 s that is,
		// modulo 2^33, a jump 11 s backwards across the wrap.
		{"backwards across 33-bit wrap", "10", "95441", "0"},
		// A wraps inside; B restarts at 10 s.
		{"forward after a wrap", "95441", "10", "2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gen := func(off, bf string, freq string) hlsStream {
				return makeHLS(t, nil,
					"-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25",
					"-f", "lavfi", "-i", "sine=frequency="+freq+":sample_rate=48000",
					"-t", "2.5", "-c:v", "libx264", "-preset", "ultrafast", "-bf", bf, "-g", "25",
					"-c:a", "aac", "-output_ts_offset", off)
			}
			a := gen(tc.offA, "2", "440")
			b := gen(tc.offB, tc.bframe, "880")
			var at time.Duration
			for _, d := range a.extinf {
				at += d
			}
			out, c := packageTS(t, inPeriod{segs: a.segs}, inPeriod{at: at, segs: b.segs})

			if msg := testutil.DecodeErrors(t, out); msg != "" {
				t.Errorf("decoding printed: %s", msg)
			}
			nva, nvb := countFrames(t, a.playlist, "video"), countFrames(t, b.playlist, "video")
			naa, nab := countFrames(t, a.playlist, "audio"), countFrames(t, b.playlist, "audio")
			if len(c.Video) != nva+nvb || len(c.Audio) != naa+nab {
				t.Errorf("samples %d video, %d audio; want %d+%d, %d+%d", len(c.Video), len(c.Audio), nva, nvb, naa, nab)
			}
			if got, want := countFrames(t, out, "video"), nva+nvb; got != want {
				t.Errorf("MP4 decodes %d video frames, want %d", got, want)
			}
			spanA, spanB := testutil.PacketSpan(t, a.playlist), testutil.PacketSpan(t, b.playlist)
			outDur := testutil.Seconds(t, testutil.ProbeFile(t, out).Format.Duration)
			if math.Abs(outDur-(spanA+spanB)) > 0.04 {
				t.Errorf("duration %.4f s, want %.4f + %.4f within a frame", outDur, spanA, spanB)
			}
			// A/V start offset of each period: the source's first packets against the
			// first sample of the period on each track.
			srcOff := func(s hlsStream) float64 {
				st := streamStarts(t, s.playlist)
				return st["video"] - st["audio"]
			}
			pts := func(s media.Sample) float64 { return float64(s.DTS+int64(s.CTO)) / float64(s.Track.Timescale) }
			offA := pts(c.Video[0]) - pts(c.Audio[0])
			offB := pts(c.Video[nva]) - pts(c.Audio[naa])
			if wa := srcOff(a); math.Abs(offA-wa) > 0.001 {
				t.Errorf("period 1 video−audio %.4f s, source %.4f s", offA, wa)
			}
			if wb := srcOff(b); math.Abs(offB-wb) > 0.001 {
				t.Errorf("period 2 video−audio %.4f s, source %.4f s", offB, wb)
			}
			// The second period starts where the playlist says (at), unless that would
			// overlap the first period (EXTINF values are rounded): then right after it.
			origin := min(pts(c.Video[0]), pts(c.Audio[0]))
			startB := min(pts(c.Video[nva]), pts(c.Audio[naa])) - origin
			t.Logf("duration %.4f s (spans %.4f + %.4f), period 2 at %.4f s (playlist %.4f s), A/V %.4f / %.4f s",
				outDur, spanA, spanB, startB, at.Seconds(), offA, offB)
			if startB < at.Seconds()-1e-4 || startB > at.Seconds()+0.05 {
				t.Errorf("period 2 starts at %.4f s, playlist says %.4f s", startB, at.Seconds())
			}
		})
	}
}
