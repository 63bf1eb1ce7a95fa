package mp4

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// demoFile packages the demo's segments and returns the stored file's path and bytes.
func demoFile(t *testing.T) (string, []byte) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "demo.mp4")
	packageSegments(t, testutil.DemoSegments(t), out, Options{ExpectedDuration: 12e9})
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return out, b
}

// clipBytes reads a whole clip of the file in b.
func clipBytes(t *testing.T, b []byte, c *Clip) []byte {
	t.Helper()
	got, err := io.ReadAll(c.Reader(bytes.NewReader(b)))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(got)) != c.Size {
		t.Fatalf("clip read %d bytes, Size %d", len(got), c.Size)
	}
	return got
}

func parseF(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return f
}

func TestClipDemo(t *testing.T) {
	testutil.Tool(t, "ffprobe")
	_, b := demoFile(t)
	src, err := ReadClipSource(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if src.Duration < 5 {
		t.Fatalf("duration %v", src.Duration)
	}
	for _, tc := range []struct{ s, e float64 }{{2.3, 7.1}, {0, 3}, {4.04, 0}, {0.5, 1.2}} {
		c, err := src.Clip(tc.s, tc.e)
		if err != nil {
			t.Fatalf("%v: %v", tc, err)
		}
		body := clipBytes(t, b, c)
		out := filepath.Join(t.TempDir(), "clip.mp4")
		if err := os.WriteFile(out, body, 0o644); err != nil {
			t.Fatal(err)
		}
		e := tc.e
		if e == 0 {
			e = src.Duration
		}
		p := testutil.ProbeFile(t, out)
		if d := parseF(t, p.Format.Duration); math.Abs(d-(e-tc.s)) > 0.045 {
			t.Errorf("%v: duration %v, want %v", tc, d, e-tc.s)
		}
		if st := parseF(t, p.Format.StartTime); math.Abs(st) > 0.001 {
			t.Errorf("%v: start time %v", tc, st)
		}
		if len(p.Streams) != 2 {
			t.Errorf("%v: %d streams", tc, len(p.Streams))
		}
		if msg := testutil.DecodeErrors(t, out); msg != "" {
			t.Errorf("%v: decode errors: %s", tc, msg)
		}
		// Deterministic.
		c2, err := src.Clip(tc.s, tc.e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(clipBytes(t, b, c2), body) {
			t.Errorf("%v: two clips differ", tc)
		}
		// The video's sample entry is the stored file's.
		_, want := stsdEntry(t, b)
		if _, got := stsdEntry(t, body); !bytes.Equal(got, want) {
			t.Errorf("%v: the first sample entry differs from the stored file's", tc)
		}
		// Random seeks read what a whole read gives.
		r := c.Reader(bytes.NewReader(b))
		for range 50 {
			off := rand.Int64N(c.Size)
			n := rand.Int64N(min(c.Size-off, 100000)) + 1
			if _, err := r.Seek(off, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, n)
			if _, err := io.ReadFull(r, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, body[off:off+n]) {
				t.Fatalf("%v: bytes %d+%d differ", tc, off, n)
			}
		}
	}
}

func TestClipRange(t *testing.T) {
	_, b := demoFile(t)
	src, err := ReadClipSource(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ s, e float64 }{{5, 5}, {5, 4}, {-1, 2}, {src.Duration + 1, 0}, {math.NaN(), 2}} {
		if _, err := src.Clip(tc.s, tc.e); !errors.Is(err, ErrClipRange) {
			t.Errorf("%v: %v, want ErrClipRange", tc, err)
		}
	}
	// The whole file as a clip keeps every sample.
	c, err := src.Clip(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var media int64
	for _, p := range c.Pieces {
		media += p.Len
	}
	all := int64(0)
	for _, tr := range src.tracks {
		for _, s := range tr.size {
			all += int64(s)
		}
	}
	if media != all {
		t.Errorf("whole clip has %d bytes of media, file %d", media, all)
	}
	if _, err := ReadClipSource(bytes.NewReader(b[:100]), 100); err == nil {
		t.Error("a truncated file parsed")
	}
}
