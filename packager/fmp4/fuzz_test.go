package fmp4

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// FuzzSegment feeds an init section and a media segment (twice, across a discontinuity)
// to a Demuxer: it must return errors, never panic, and emit sane samples.
func FuzzSegment(f *testing.F) {
	for _, p := range [][2]string{{"avc_init.mp4", "avc_seg.m4s"}, {"hevc_init.mp4", "hevc_seg.m4s"}} {
		init, err := os.ReadFile(filepath.Join("testdata", p[0]))
		if err != nil {
			f.Fatal(err)
		}
		seg, err := os.ReadFile(filepath.Join("testdata", p[1]))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(init, seg)
	}
	for _, p := range codecSeeds(f) {
		f.Add(p[0], p[1])
	}
	for _, p := range hostileSeeds(f) {
		f.Add(p[0], p[1])
	}
	// Synthetic H.264 with 2-byte NAL lengths: avc1 (verbatim) and avc3 (rewritten), with
	// flags in the trun and with none (sync from the content).
	ss := []vsample{{flagsSync, lp(2, nalAUD, testSPS, testPPS, nalIDR)}, {flagsNonSync, lp(2, nalP, nalFill)}}
	for _, entry := range []string{"avc1", "avc3"} {
		for _, mode := range []flagMode{perSample, noneGiven} {
			f.Add(videoInit(entry, avcCOf(2, testSPS, testPPS), 0), videoFragment(0, mode, ss))
		}
	}
	f.Fuzz(func(t *testing.T, init, seg []byte) {
		d := NewDemuxer()
		if err := d.Init(init); err != nil {
			return
		}
		var total int
		emit := func(s media.Sample) error {
			total += len(s.Data)
			if total > 4*(len(init)+len(seg))+1024 {
				t.Fatalf("emitted %d bytes from %d input bytes", total, len(init)+len(seg))
			}
			if s.Track == nil || s.Track.Timescale == 0 {
				t.Fatalf("sample without a valid track")
			}
			return nil
		}
		if err := d.Segment(bytes.NewReader(seg), emit); err != nil {
			return
		}
		d.Discontinuity(time.Second)
		_ = d.Segment(bytes.NewReader(seg), emit)
		_ = d.Flush(emit)
		for i, tr := range d.Tracks() {
			if tr.ID != i+1 {
				t.Fatalf("track IDs")
			}
		}
	})
}

// hostileSeeds are segments of the shapes of issue 12, cut to a fuzzer's size: a moof
// announcing a sample larger than any plausible one, an mdat announcing 1 TiB, a run of
// samples far past the end of the segment, a track's runs out of file order, trafs out
// of file order.
func hostileSeeds(f *testing.F) [][2][]byte {
	init, err := os.ReadFile(filepath.Join("testdata", "avc_init.mp4"))
	if err != nil {
		f.Fatal(err)
	}
	seg, err := os.ReadFile(filepath.Join("testdata", "avc_seg.m4s"))
	if err != nil {
		f.Fatal(err)
	}
	small := make([]uint32, 20)
	for i := range small {
		small[i] = 50
	}
	huge := make([]uint32, 1000)
	for i := range huge {
		huge[i] = 1 << 20
	}
	data := bytes.Repeat([]byte{0x21}, 2000)
	return [][2][]byte{
		{init, testutil.FMP4Fragment(1, 0, 3000, []uint32{64 << 20}, 1<<40)},
		{init, testutil.FMP4Fragment(2, 0, 1024, []uint32{2 << 20}, 0)},
		{init, append(testutil.FMP4Fragment(2, 0, 1024, small, 1<<40), data...)},
		{init, append(testutil.FMP4Fragment(2, 0, 1024, huge, 0), data...)},
		{init, append(testutil.FMP4Fragment(2, 0, 1024, small, 0), data...)},
		{init, swapTrafData(f, seg)},
		{audioInit(f, 0, 0), runsOutOfOrder(3, 4, 10)},
	}
}

// FuzzInit parses init sections.
func FuzzInit(f *testing.F) {
	for _, n := range []string{"avc_init.mp4", "hevc_init.mp4"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, p := range codecSeeds(f) {
		f.Add(p[0])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDemuxer()
		_ = d.Init(b)
		_ = d.Init(b)
		d.Tracks()
	})
}

// codecSeeds are init sections and first segments of the codecs besides H.264, HEVC and
// AAC (AC-3, E-AC-3, Opus, MP3, AV1), made with ffmpeg when it is there.
func codecSeeds(f *testing.F) [][2][]byte {
	if _, err := exec.LookPath("ffmpeg"); err != nil || testing.Short() {
		return nil
	}
	var out [][2][]byte
	for i, args := range [][]string{
		{"-f", "lavfi", "-i", "sine", "-c:a", "ac3"},
		{"-f", "lavfi", "-i", "sine", "-c:a", "eac3"},
		{"-f", "lavfi", "-i", "sine", "-c:a", "libopus"},
		{"-f", "lavfi", "-i", "sine", "-c:a", "libmp3lame"},
		{"-f", "lavfi", "-i", "testsrc2=s=64x64:r=10", "-c:v", "libaom-av1", "-cpu-used", "8", "-threads", "1"},
	} {
		dir := filepath.Join(f.TempDir(), fmt.Sprint(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			f.Fatal(err)
		}
		testutil.RunIn(f, dir, "ffmpeg", append(append([]string{"-v", "error", "-y"}, args...),
			"-t", "0.5", "-f", "hls", "-hls_segment_type", "fmp4", "-hls_segment_filename", "s%d.m4s", "index.m3u8")...)
		init, err1 := os.ReadFile(filepath.Join(dir, "init.mp4"))
		seg, err2 := os.ReadFile(filepath.Join(dir, "s0.m4s"))
		if err1 != nil || err2 != nil {
			f.Fatal(err1, err2)
		}
		out = append(out, [2][]byte{init, seg})
	}
	return out
}
