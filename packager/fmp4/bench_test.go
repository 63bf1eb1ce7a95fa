package fmp4

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

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
