package ts

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/packedaudio"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// demuxFiles demuxes whole TS segments in order.
func demuxFiles(t *testing.T, paths []string) (*testutil.Samples, error) {
	t.Helper()
	d := NewDemuxer()
	return testutil.Demux(d, func(emit func(media.Sample) error) error {
		for _, p := range paths {
			if err := testutil.SegmentFile(t, d, p, emit); err != nil {
				return err
			}
		}
		return nil
	}, nil)
}

// tsChecks are the sample checks of the TS demuxer's output for one period (no
// discontinuity): AAC frames follow each other exactly, and nothing relaxed.
var tsChecks = testutil.Checks{AudioStep: 1024}

func TestDemuxFixtures(t *testing.T) {
	c, err := demuxFiles(t, testutil.DemoSegments(t))
	if err != nil {
		t.Fatal(err)
	}
	testutil.CheckSamples(t, c, tsChecks)
	if len(c.Tracks) != 2 {
		t.Fatalf("tracks = %d", len(c.Tracks))
	}
	v, a := c.Tracks[0], c.Tracks[1]
	if v.ID != 1 || v.Kind != media.Video || v.Codec != media.H264 || v.Timescale != 90000 || v.Width != 426 || v.Height != 240 || len(v.SPS) != 1 || len(v.PPS) != 1 {
		t.Errorf("video track = %+v", v)
	}
	if a.ID != 2 || a.Kind != media.Audio || a.Codec != media.AAC || a.Timescale != 48000 || a.SampleRate != 48000 || a.Channels != 2 || !bytes.Equal(a.Config, []byte{0x11, 0x90}) {
		t.Errorf("audio track = %+v", a)
	}
	// ffprobe -count_frames on the concatenated source: 300 video, 564 audio frames.
	if len(c.Video) != 300 || len(c.Audio) != 564 {
		t.Errorf("samples: %d video, %d audio; want 300, 564", len(c.Video), len(c.Audio))
	}
	// Source start times (ffprobe): video 1.480000 (first PTS), audio 1.458667.
	vStart := float64(c.Video[0].DTS+int64(c.Video[0].CTO)) / 90000
	aStart := float64(c.Audio[0].DTS) / 48000
	if d := vStart - 1.48; d > 1e-6 || d < -1e-6 {
		t.Errorf("video start %.6f, want 1.48", vStart)
	}
	if d := aStart - 1.458667; d > 1e-5 || d < -1e-5 {
		t.Errorf("audio start %.6f, want 1.458667", aStart)
	}
	// B-frames: some CTOs differ.
	ctos := map[int32]bool{}
	for _, s := range c.Video {
		ctos[s.CTO] = true
	}
	if len(ctos) < 2 {
		t.Errorf("expected B-frame composition offsets, got %v", ctos)
	}
}

// genHLS makes TS segments with ffmpeg and returns them in playlist order.
func genHLS(t *testing.T, args ...string) []string {
	t.Helper()
	dir := t.TempDir()
	full := append([]string{"-v", "error", "-y"}, args...)
	full = append(full, "-f", "hls", "-hls_time", "1", "-hls_list_size", "0",
		"-hls_segment_filename", filepath.Join(dir, "s%03d.ts"), filepath.Join(dir, "index.m3u8"))
	testutil.Run(t, "ffmpeg", full...)
	segs, _ := filepath.Glob(filepath.Join(dir, "s*.ts"))
	sort.Strings(segs)
	if len(segs) == 0 {
		t.Fatal("ffmpeg made no segments")
	}
	return segs
}

func TestWraparoundMono(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ffmpeg")
	}
	// The 33-bit PTS wraps at 2^33/90000 = 95443.7 s; with the muxer's 1.4 s delay the
	// stream starts at 95442.4 s and wraps 1.3 s in.
	segs := genHLS(t,
		"-f", "lavfi", "-i", "testsrc=size=160x96:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "3", "-ac", "1", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "25",
		"-c:a", "aac", "-output_ts_offset", "95441")
	c, err := demuxFiles(t, segs)
	if err != nil {
		t.Fatal(err)
	}
	testutil.CheckSamples(t, c, tsChecks)
	a := c.Tracks[len(c.Tracks)-1]
	if a.Channels != 1 || a.SampleRate != 44100 || a.Timescale != 44100 {
		t.Errorf("audio track %+v", a)
	}
	if len(c.Video) != 75 {
		t.Errorf("video samples %d, want 75", len(c.Video))
	}
	first, last := c.Video[0].DTS, c.Video[len(c.Video)-1].DTS
	if first >= 1<<33 || last < 1<<33 {
		t.Errorf("timeline does not cross 2^33: %d..%d", first, last)
	}
	if span := last - first; span != 74*3600 {
		t.Errorf("video DTS span %d, want %d", span, 74*3600)
	}
	// Audio and video stay together across the wrap: both start near 95443+1.4 s.
	aStart := float64(c.Audio[0].DTS) / 44100
	vStart := float64(first) / 90000
	if d := aStart - vStart; d > 0.2 || d < -0.2 {
		t.Errorf("audio start %.3f, video start %.3f", aStart, vStart)
	}
}

func TestUnsupportedCodec(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ffmpeg")
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"mpeg2video", []string{"-f", "lavfi", "-i", "testsrc=size=160x96:rate=25", "-t", "1", "-c:v", "mpeg2video"},
			"unsupported codec: MPEG-2 video (stream type 0x02); supported: H.264, H.265/HEVC, AV1 (fMP4), AAC, AC-3, E-AC-3, MP3, MP2, Opus"},
		{"dts audio", []string{"-f", "lavfi", "-i", "testsrc=size=160x96:rate=25", "-f", "lavfi", "-i", "sine",
			"-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "dca", "-strict", "-2"},
			"unsupported codec: DTS audio (stream type 0x82)"},
		{"latm audio", []string{"-f", "lavfi", "-i", "testsrc=size=160x96:rate=25", "-f", "lavfi", "-i", "sine",
			"-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-mpegts_flags", "latm"},
			"unsupported codec: AAC in LATM (stream type 0x11)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "x.ts")
			testutil.Run(t, "ffmpeg", append(append([]string{"-v", "error", "-y"}, tc.args...), "-f", "mpegts", out)...)
			_, err := demuxFiles(t, []string{out})
			if !errors.Is(err, media.ErrUnsupportedCodec) {
				t.Fatalf("err = %v, want media.ErrUnsupportedCodec", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	seg, err := os.ReadFile(testutil.DemoSegments(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr bool
	}{
		{"empty", nil, true},
		{"garbage", bytes.Repeat([]byte("not a transport stream "), 100), true},
		{"sync bytes only", bytes.Repeat(append([]byte{0x47}, make([]byte, 187)...), 20), true},
		{"truncated mid-packet", seg[:len(seg)/2+77], true},
		{"a third of it", seg[:len(seg)/3/188*188], true}, // short of its EXTINF
		{"first packets only", seg[:188*3], true},
		{"whole", seg, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDemuxer()
			d.Expect(media.SegmentInfo{Duration: extinfOf(t, 0)})
			emit := func(media.Sample) error { return nil }
			err := d.Segment(bytes.NewReader(tc.in), emit)
			if err == nil {
				err = d.Flush(emit)
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, media.ErrMalformed) {
				t.Errorf("err = %v, want media.ErrMalformed", err)
			}
		})
	}
}

func TestEmitErrorStops(t *testing.T) {
	f, err := os.Open(testutil.DemoSegments(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stop := errors.New("stop")
	n := 0
	err = NewDemuxer().Segment(f, func(media.Sample) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("err = %v after %d samples", err, n)
	}
}

func FuzzSegment(f *testing.F) {
	for _, p := range testutil.DemoSegments(f) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 188*64)])
	}
	for _, b := range floodSeeds(f) { // tiny frames by the thousand (issue 12)
		f.Add(b)
	}
	for _, b := range endlessSeeds(f) { // PES without end (issue 12)
		f.Add(b)
	}
	// Segments made with ffmpeg when it is there: HEVC (x265, B frames, VPS/SPS/PPS), and
	// each audio codec in TS and as packed audio (behind an ID3 timestamp).
	if _, err := exec.LookPath("ffmpeg"); err == nil && !testing.Short() {
		dir := f.TempDir()
		for i, args := range [][]string{
			{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error", "-c:a", "aac", "-f", "mpegts"},
			{"-vn", "-c:a", "ac3", "-f", "mpegts"},
			{"-vn", "-c:a", "eac3", "-f", "mpegts"},
			{"-vn", "-c:a", "libopus", "-f", "mpegts"},
			{"-vn", "-c:a", "libmp3lame", "-f", "mpegts"},
			{"-vn", "-c:a", "eac3", "-f", "eac3"},
			{"-vn", "-c:a", "libmp3lame", "-write_xing", "0", "-id3v2_version", "0", "-f", "mp3"},
		} {
			seg := filepath.Join(dir, fmt.Sprint(i))
			testutil.Run(f, "ffmpeg", append(append([]string{"-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25",
				"-f", "lavfi", "-i", "sine=frequency=440", "-t", "0.5"}, args...), seg)...)
			b, err := os.ReadFile(seg)
			if err != nil {
				f.Fatal(err)
			}
			if args[len(args)-1] != "mpegts" {
				b = append(packedaudio.ID3Timestamp(126000), b...)
			}
			f.Add(b[:min(len(b), 188*64)])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDemuxer()
		emit := func(s media.Sample) error {
			if s.Track == nil {
				return fmt.Errorf("sample without track")
			}
			return nil
		}
		// Segment and Flush turn a panic into an error; here it is a failure.
		noPanic := func(err error) {
			if err != nil && strings.Contains(err.Error(), "demuxer panic") {
				t.Fatal(err)
			}
		}
		d.Expect(media.SegmentInfo{Duration: time.Second})
		noPanic(d.Segment(bytes.NewReader(data), emit))
		noPanic(d.Segment(bytes.NewReader(data[len(data)/2:]), emit))
		d.Discontinuity(time.Second)
		noPanic(d.Segment(bytes.NewReader(data), emit))
		noPanic(d.Flush(emit))
		_ = d.Tracks()
		_ = d.Notes()
	})
}

// extinfOf is the EXTINF of segment i of the demo playlist.
func extinfOf(t *testing.T, i int) time.Duration {
	t.Helper()
	return readPlaylist(t, filepath.Join(filepath.Dir(testutil.DemoSegments(t)[0]), "index.m3u8")).extinf[i]
}
