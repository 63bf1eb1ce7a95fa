package ts

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// PES that never end (issue 12): a PES without PES_packet_length may be of any length,
// so what bounds memory is what is pending of it: an access unit or an audio frame
// beyond the bounds (maxVideoAU, maxAudioFrame) is an error at once, and nothing else
// grows with the PES. These tests use the Demuxer's API only.

// tinyADTS is an ADTS frame of 9 bytes (AAC LC, 48 kHz, stereo, 2 bytes of payload).
var tinyADTS = []byte{0xff, 0xf1, 0x4c, 0x80, 0x01, 0x3f, 0xfc, 0x21, 0x10}

// esOf returns an elementary stream: head, then fill again and again.
func esOf(head, fill []byte) func() []byte {
	first := true
	return func() []byte {
		if first {
			first = false
			return head
		}
		return fill
	}
}

// noSync clears the top bit of every byte of b: garbage in which no frame syncs (an ADTS
// sync word is 12 bits set).
func noSync(b []byte) []byte {
	for i := range b {
		b[i] &= 0x7f
	}
	return b
}

// hostileSegment demuxes h, after a segment of before (whole, then a discontinuity)
// when it is not nil; it returns the samples emitted.
func hostileSegment(t *testing.T, h, before *testutil.Hostile) (int, error) {
	t.Helper()
	d := NewDemuxer()
	n := 0
	emit := func(media.Sample) error { n++; return nil }
	if before != nil {
		if err := d.Segment(before, emit); err != nil {
			t.Fatal(err)
		}
		d.Discontinuity(time.Hour)
	}
	return n, d.Segment(h, emit)
}

// TestEndlessVideoPES: one video PES without end, one start code then slice bytes that
// never complete the access unit: an error once the unit passes 16 MiB, and no more.
func TestEndlessVideoPES(t *testing.T) {
	for _, tc := range []struct {
		name string
		es   []byte
		want string
	}{
		{"H.264 IDR slice", []byte{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x65, 0x88}, "a video access unit larger than 16 MiB"},
		// Slices of one picture (first_mb_in_slice > 0) one after the other: NAL units
		// pile up in the unit.
		{"H.264 slices", []byte{0, 0, 0, 1, 0x65, 0x88}, "a video access unit of more than 65536 NAL units"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fill := bytes.Repeat([]byte{0xab}, 64<<10)
			if tc.name == "H.264 slices" {
				fill = bytes.Repeat([]byte{0, 0, 1, 0x65, 0x40, 0xab}, 64<<10/6)
			}
			head, next := testutil.EndlessTS(esOf(tc.es, fill), testutil.TSH264)
			h := &testutil.Hostile{Head: head, Next: next, Limit: 256 << 20, Probe: 4 << 20}
			_, err := hostileSegment(t, h, nil)
			if !errors.Is(err, media.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if h.N > 18<<20 {
				t.Errorf("read %d MiB before refusing the unit", h.N>>20)
			}
			if g := h.Growth(); g > 40<<20 {
				t.Errorf("the live heap grew by %d MiB", g>>20)
			}
			t.Logf("%v after %d MiB; heap growth %d MiB", err, h.N>>20, h.Growth()>>20)
		})
	}
}

// TestEndlessAudioPES: one audio PES without end, of garbage or of valid tiny frames
// (with a video stream declared that never carries a packet, so that the frames wait
// for it to interleave, or, after a discontinuity, to place the new period): read to the
// reader's limit with a flat heap.
func TestEndlessAudioPES(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fill  []byte
		types []byte
		disc  bool
	}{
		{"garbage", noSync(testutil.Garbage(64<<10, 1)), []byte{testutil.TSAAC}, false},
		{"tiny frames", bytes.Repeat(tinyADTS, 64<<10/len(tinyADTS)), []byte{testutil.TSAAC, testutil.TSH264}, false},
		{"tiny frames alone", bytes.Repeat(tinyADTS, 64<<10/len(tinyADTS)), []byte{testutil.TSAAC}, false},
		{"tiny frames after a discontinuity", bytes.Repeat(tinyADTS, 64<<10/len(tinyADTS)), []byte{testutil.TSAAC, testutil.TSH264}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head, next := testutil.EndlessTS(esOf(tinyADTS, tc.fill), tc.types...)
			h := &testutil.Hostile{Head: head, Next: next, Limit: 24 << 20, Probe: 4 << 20}
			var before *testutil.Hostile
			if tc.disc {
				head, next := testutil.EndlessTS(esOf(tinyADTS, tc.fill), tc.types...)
				before = &testutil.Hostile{Head: head, Next: next, Limit: 188 * 1000, End: true}
			}
			n, err := hostileSegment(t, h, before)
			if !errors.Is(err, testutil.ErrHostileLimit) {
				t.Errorf("err = %v, want the reader's", err)
			}
			if g := h.Growth(); g > 24<<20 {
				t.Errorf("the live heap grew by %d MiB reading %d MiB", g>>20, h.N>>20)
			}
			t.Logf("%d samples; %v; heap growth %d MiB", n, err, h.Growth()>>20)
		})
	}
}

// TestEndlessEAC3Unit: dependent substreams without end after an independent one (which
// they join until the next independent substream) are an error once the unit passes
// maxEAC3Unit, not a unit that grows.
func TestEndlessEAC3Unit(t *testing.T) {
	var lost losses
	a := audioES{syn: fakeEAC3{}, lost: &lost, on: func(audioUnit) error { return nil }}
	a.pes(true, 0, 0)
	dep := bytes.Repeat([]byte{0xab, 1, 6, 0}, 1024)
	err := a.write([]byte{0xab, 0, 6, 0})
	for n := 0; err == nil && n < 64<<20; n += len(dep) {
		err = a.write(dep)
	}
	if err == nil || !strings.Contains(err.Error(), "an E-AC-3 unit of more than 1 MiB") {
		t.Fatalf("err = %v", err)
	}
	if cap(a.unit) > 2*maxEAC3Unit {
		t.Errorf("unit buffer of %d bytes", cap(a.unit))
	}
}

// endlessSeeds are FuzzSegment seeds of PES without end, cut to a fuzzer's size: a video
// PES whose access unit never completes (one slice, or slices piling up), an audio PES
// of garbage.
func endlessSeeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, es := range []func() []byte{
		esOf([]byte{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x65, 0x88}, bytes.Repeat([]byte{0xab}, 4096)),
		esOf([]byte{0, 0, 0, 1, 0x65, 0x88}, bytes.Repeat([]byte{0, 0, 1, 0x65, 0x40, 0xab}, 512)),
		esOf(tinyADTS, noSync(testutil.Garbage(4096, 2))),
	} {
		typ := byte(testutil.TSH264)
		if len(out) == 2 {
			typ = testutil.TSAAC
		}
		head, next := testutil.EndlessTS(es, typ)
		b := head
		for len(b) < 64*tsPacketSize {
			b = append(b, next()...)
		}
		out = append(out, b)
	}
	return out
}
