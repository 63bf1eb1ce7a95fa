package fmp4

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// Hostile segments (issue 12): whatever a segment announces or however long it streams,
// the demuxer holds a bounded window of it. These tests use the Demuxer's API only, so
// that they run against any version of it.

// avcInit is the init section of the fmp4-h264-aac conformance stream (ffmpeg): H.264
// on track 1, AAC on track 2.
func avcInit(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "testdata", "conformance", "streams", "fmp4-h264-aac", "init.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hostileRun demuxes the segment h after avcInit, returning the samples emitted.
func hostileRun(t *testing.T, h *testutil.Hostile) ([]media.Sample, error) {
	t.Helper()
	d := NewDemuxer()
	if err := d.Init(avcInit(t)); err != nil {
		t.Fatal(err)
	}
	var got []media.Sample
	err := d.Segment(h, func(s media.Sample) error {
		got = append(got, s)
		return nil
	})
	return got, err
}

// TestHostileHugeSample: a moof announcing a sample larger than any plausible one is an
// error at once, before its data is read, naming what is too large.
func TestHostileHugeSample(t *testing.T) {
	for _, tc := range []struct {
		name  string
		track uint32
		size  uint32
		want  string
	}{
		{"video", 1, 64 << 20, "video sample of 67108864 bytes"},
		{"audio", 2, 2 << 20, "audio sample of 2097152 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &testutil.Hostile{
				Head:  testutil.FMP4Fragment(tc.track, 0, 1024, []uint32{tc.size}, 1<<40),
				Limit: 256 << 20, // the stand-in of limits.segment_size
				Probe: 16 << 20,
			}
			_, err := hostileRun(t, h)
			if !errors.Is(err, media.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want malformed with %q", err, tc.want)
			}
			if h.N > 1<<20 {
				t.Errorf("read %d bytes before refusing the sample", h.N)
			}
			t.Logf("%v (read %d bytes)", err, h.N)
		})
	}
}

// TestHostileEndlessMdat: an mdat that streams without end (declared to the end of the
// segment, or 1 TiB) gives its samples (they wait for the video track, which has
// none, until the segment would end) and is read on, the rest skipped, until the reader's
// limit ends it: that error comes back as it is (not a malformed segment), and the live
// heap stays flat over 256 MiB of it.
func TestHostileEndlessMdat(t *testing.T) {
	sizes := make([]uint32, 50)
	for i := range sizes {
		sizes[i] = 300
	}
	for _, mdat := range []uint64{0, 1 << 40} {
		h := &testutil.Hostile{
			Head:  testutil.FMP4Fragment(2, 0, 1024, sizes, mdat),
			Next:  testutil.Repeat(bytes.Repeat([]byte{0x21}, 64<<10)),
			Limit: 256 << 20,
			Probe: 32 << 20,
		}
		got, err := hostileRun(t, h)
		if !errors.Is(err, testutil.ErrHostileLimit) || errors.Is(err, media.ErrMalformed) {
			t.Errorf("mdat size %d: err = %v, want the reader's own error", mdat, err)
		}
		if len(got) > len(sizes) {
			t.Errorf("mdat size %d: %d samples emitted, from %d", mdat, len(got), len(sizes))
		}
		if g := h.Growth(); g > 16<<20 {
			t.Errorf("mdat size %d: the live heap grew by %d MiB reading %d MiB", mdat, g>>20, h.N>>20)
		}
		t.Logf("mdat size %d: heap growth %d KiB over %d MiB read", mdat, h.Growth()>>10, h.N>>20)
	}
}

// TestHostileRunPastEnd: samples announced past the end of their mdat or of the segment
// are a malformed segment; what the reader held stays small.
func TestHostileRunPastEnd(t *testing.T) {
	sizes := make([]uint32, 1000)
	for i := range sizes {
		sizes[i] = 1 << 20
	}
	for _, tc := range []struct {
		mdat uint64
		want string
	}{
		{10<<20 + 1<<19, "goes past the end of its \"mdat\" box"},
		{0, "outside the segment"},
		{2000 << 20, "box \"mdat\" is truncated"},
	} {
		h := &testutil.Hostile{
			Head:  testutil.FMP4Fragment(2, 0, 1024, sizes, tc.mdat),
			Limit: int64(len(testutil.FMP4Fragment(2, 0, 1024, sizes, tc.mdat))) + 10<<20,
			End:   true,
			Probe: 4 << 20,
		}
		got, err := hostileRun(t, h)
		if !errors.Is(err, media.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mdat %d: err = %v, want %q", tc.mdat, err, tc.want)
		}
		if g := h.Growth(); g > 16<<20 {
			t.Errorf("mdat %d: the live heap grew by %d MiB", tc.mdat, g>>20)
		}
		t.Logf("mdat %d: %v (%d samples out, heap growth %d KiB)", tc.mdat, err, len(got), h.Growth()>>10)
	}
}
