package fmp4

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

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

// FuzzInit parses init sections.
func FuzzInit(f *testing.F) {
	for _, n := range []string{"avc_init.mp4", "hevc_init.mp4"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDemuxer()
		_ = d.Init(b)
		_ = d.Init(b)
		d.Tracks()
	})
}
