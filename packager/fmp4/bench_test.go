package fmp4

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// BenchmarkSegment parses an fMP4 media segment (H.264 + AAC) after its init section;
// SetBytes makes the result a throughput in MB/s of input.
func BenchmarkSegment(b *testing.B) {
	init, err := os.ReadFile(filepath.Join("testdata", "avc_init.mp4"))
	if err != nil {
		b.Fatal(err)
	}
	seg, err := os.ReadFile(filepath.Join("testdata", "avc_seg.m4s"))
	if err != nil {
		b.Fatal(err)
	}
	emit := func(media.Sample) error { return nil }
	b.SetBytes(int64(len(seg)))
	b.ReportAllocs()
	for b.Loop() {
		d := NewDemuxer()
		if err := d.Init(init); err != nil {
			b.Fatal(err)
		}
		if err := d.Segment(bytes.NewReader(seg), emit); err != nil {
			b.Fatal(err)
		}
	}
}

// body hides a reader's length and hands out at most 64 KiB a Read, as an HTTP body does.
type body struct{ r io.Reader }

func (b body) Read(p []byte) (int, error) { return b.r.Read(p[:min(len(p), 64<<10)]) }

// BenchmarkSegmentLarge demuxes the segments of a 720p H.264 (6 Mb/s) + AAC stream made
// with ffmpeg, one Demuxer for all of them as in a job, fed as HTTP bodies: the cost per
// byte of real-sized segments, and what a job allocates for them.
func BenchmarkSegmentLarge(b *testing.B) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		b.Skip("ffmpeg not installed")
	}
	dir := b.TempDir()
	testutil.RunIn(b, dir, "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=30",
		"-f", "lavfi", "-i", "sine=f=440:r=48000", "-t", "6", "-c:v", "libx264", "-preset", "ultrafast",
		"-b:v", "6M", "-g", "60", "-c:a", "aac", "-f", "hls", "-hls_time", "2", "-hls_segment_type", "fmp4",
		"-hls_segment_filename", "s%d.m4s", "index.m3u8")
	init, err := os.ReadFile(filepath.Join(dir, "init.mp4"))
	if err != nil {
		b.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "s*.m4s"))
	var data [][]byte
	var total int64
	for _, p := range segs {
		s, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		data = append(data, s)
		total += int64(len(s))
	}
	emit := func(media.Sample) error { return nil }
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		d := NewDemuxer()
		if err := d.Init(init); err != nil {
			b.Fatal(err)
		}
		for _, s := range data {
			if err := d.Segment(body{bytes.NewReader(s)}, emit); err != nil {
				b.Fatal(err)
			}
		}
	}
}
