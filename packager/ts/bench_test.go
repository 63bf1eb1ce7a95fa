package ts

import (
	"bytes"
	"os"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// BenchmarkDemux demuxes the demo's TS segments (H.264 + AAC); SetBytes makes the
// result a throughput in MB/s of input.
func BenchmarkDemux(b *testing.B) {
	var segs [][]byte
	var n int64
	for _, p := range testutil.DemoSegments(b) {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		segs = append(segs, data)
		n += int64(len(data))
	}
	emit := func(media.Sample) error { return nil }
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		d := NewDemuxer()
		for _, s := range segs {
			if err := d.Segment(bytes.NewReader(s), emit); err != nil {
				b.Fatal(err)
			}
		}
	}
}
