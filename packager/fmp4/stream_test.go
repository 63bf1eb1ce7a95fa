package fmp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// emitted is what a demuxer emitted, in order, with the data copied.
type emitted []media.Sample

func (e *emitted) add(s media.Sample) error {
	s.Data = bytes.Clone(s.Data)
	*e = append(*e, s)
	return nil
}

// demuxSegment runs init and then seg (from r) through a new Demuxer.
func demuxSegment(t *testing.T, init []byte, r io.Reader) (emitted, error) {
	t.Helper()
	d := NewDemuxer()
	if err := d.Init(init); err != nil {
		t.Fatal(err)
	}
	var got emitted
	err := d.Segment(r, got.add)
	return got, err
}

func sameSamples(t *testing.T, what string, got, want emitted) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d samples, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Track.Kind != w.Track.Kind || g.DTS != w.DTS || g.CTO != w.CTO || g.Sync != w.Sync || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("%s: sample %d is %s DTS %d, want %s DTS %d (or its data differs)", what, i, g.Track.Kind, g.DTS, w.Track.Kind, w.DTS)
		}
	}
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSegmentReaders: the segment is the same whatever the reader hands out a Read (one
// byte, half of what is asked, data with io.EOF); a reader's own error comes back as it
// is, not as a malformed segment.
func TestSegmentReaders(t *testing.T) {
	init, seg := readTestdata(t, "avc_init.mp4"), readTestdata(t, "avc_seg.m4s")
	want, err := demuxSegment(t, init, bytes.NewReader(seg))
	if err != nil || len(want) == 0 {
		t.Fatalf("%d samples, %v", len(want), err)
	}
	for name, r := range map[string]io.Reader{
		"one byte": iotest.OneByteReader(bytes.NewReader(seg)),
		"half":     iotest.HalfReader(bytes.NewReader(seg)),
		"data+EOF": iotest.DataErrReader(bytes.NewReader(seg)),
	} {
		got, err := demuxSegment(t, init, r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sameSamples(t, name, got, want)
	}
	for _, n := range []int{10, 200, 400, len(seg) - 10} {
		_, err := demuxSegment(t, init, io.MultiReader(bytes.NewReader(seg[:n]), iotest.ErrReader(iotest.ErrTimeout)))
		if !errors.Is(err, iotest.ErrTimeout) || errors.Is(err, media.ErrMalformed) {
			t.Errorf("read error after %d bytes: err = %v, want the reader's error unlabelled", n, err)
		}
	}
}

// swapTrafData rewrites a moof+mdat segment of two trafs (one trun each, with a data
// offset) so that the mdat holds the second traf's data before the first's.
func swapTrafData(t testing.TB, seg []byte) []byte {
	t.Helper()
	var moof, mdat box
	if err := walkBoxes(seg, 0, func(bx box) error {
		switch bx.typ {
		case "moof":
			moof = bx
		case "mdat":
			mdat = bx
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	type span struct{ field, from, to int } // data offset field in seg; data range in seg
	var spans []span
	walkBoxes(moof.payload, moof.start+8, func(traf box) error {
		var def defaults
		return walkBoxes(traf.payload, traf.start+8, func(c box) error {
			if c.typ == "tfhd" {
				b, err := decodeLeaf(c)
				if err != nil {
					t.Fatal(err)
				}
				def.size = b.(*mp4.TfhdBox).DefaultSampleSize
			}
			if c.typ != "trun" {
				return nil
			}
			tr, err := parseTrun(c.payload)
			if err != nil || tr.flags&trunDataOffset == 0 {
				t.Fatalf("trun %+v: %v", tr, err)
			}
			from := moof.start + int(tr.dataOffset)
			to := from
			for i := 0; i < tr.count; i++ {
				_, size, _, _ := tr.sample(i, def)
				to += int(size)
			}
			spans = append(spans, span{c.start + 16, from, to})
			return nil
		})
	})
	if len(spans) != 2 || spans[0].to != spans[1].from {
		t.Fatalf("not two trafs' data one after the other: %+v", spans)
	}
	out := bytes.Clone(seg)
	a, b := spans[0], spans[1]
	copy(out[a.from:], seg[b.from:b.to])
	copy(out[a.from+b.to-b.from:], seg[a.from:a.to])
	binary.BigEndian.PutUint32(out[a.field:], uint32(a.from+b.to-b.from-moof.start))
	binary.BigEndian.PutUint32(out[b.field:], uint32(a.from-moof.start))
	if mdat.start+len(mdat.data) != len(seg) {
		t.Fatalf("mdat not last")
	}
	return out
}

// TestTrafsOutOfFileOrder: an mdat holding the audio traf's data before the video's
// gives the same samples in the same order (interleaved by decode time) as the segment
// as ffmpeg wrote it.
func TestTrafsOutOfFileOrder(t *testing.T) {
	init, seg := readTestdata(t, "avc_init.mp4"), readTestdata(t, "avc_seg.m4s")
	want, err := demuxSegment(t, init, bytes.NewReader(seg))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[media.Kind]bool{}
	for _, s := range want {
		kinds[s.Track.Kind] = true
	}
	if len(kinds) != 2 {
		t.Fatalf("the fixture has %d kinds of samples", len(kinds))
	}
	got, err := demuxSegment(t, init, bytes.NewReader(swapTrafData(t, seg)))
	if err != nil {
		t.Fatal(err)
	}
	sameSamples(t, "audio data first", got, want)
}

// twoRuns is a moof+mdat for audioInit's track: one traf of two truns of first and
// second samples of size bytes, whose data offsets place gives from the offset of the
// mdat's payload (hdr). The mdat holds the second run's data, then the first's: sample
// i is size bytes of value i.
func twoRuns(first, second int, size uint32, place func(hdr uint32) (a, b uint32)) []byte {
	trun := func(off uint32, n int) []byte {
		b := be32(nil, 0x000301) // data offset, duration, size
		b = be32(be32(b, uint32(n)), off)
		for range n {
			b = be32(be32(b, 1024), size)
		}
		return boxOf("trun", b)
	}
	moof := func(a, b uint32) []byte {
		traf := append(boxOf("tfhd", be32(be32(nil, 0x020000), 1)), boxOf("tfdt", be32(be32(nil, 0), 0))...)
		traf = append(append(traf, trun(a, first)...), trun(b, second)...)
		return boxOf("moof", append(boxOf("mfhd", be32(be32(nil, 0), 1)), boxOf("traf", traf)...))
	}
	m := moof(place(uint32(len(moof(0, 0)) + 8)))
	var data []byte
	for i := first; i < first+second; i++ {
		data = append(data, bytes.Repeat([]byte{byte(i)}, int(size))...)
	}
	for i := range first {
		data = append(data, bytes.Repeat([]byte{byte(i)}, int(size))...)
	}
	return append(m, boxOf("mdat", data)...)
}

// runsOutOfOrder is twoRuns with each run's data where it is.
func runsOutOfOrder(first, second int, size uint32) []byte {
	return twoRuns(first, second, size, func(hdr uint32) (uint32, uint32) { return hdr + uint32(second)*size, hdr })
}

// TestRunsOutOfFileOrder: a track's samples whose data is out of decode order in the
// mdat come out in decode order, held meanwhile; held beyond maxHeld, an error.
func TestRunsOutOfFileOrder(t *testing.T) {
	init := audioInit(t, 0, 0)
	got, err := demuxSegment(t, init, bytes.NewReader(runsOutOfOrder(3, 4, 10)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 {
		t.Fatalf("%d samples, want 7", len(got))
	}
	for i, s := range got {
		if s.DTS != int64(i)*1024 || !bytes.Equal(s.Data, bytes.Repeat([]byte{byte(i)}, 10)) {
			t.Errorf("sample %d: DTS %d, data % x", i, s.DTS, s.Data[:2])
		}
	}
	_, err = demuxSegment(t, init, bytes.NewReader(runsOutOfOrder(1, maxHeld>>20+1, 1<<20)))
	if !errors.Is(err, media.ErrMalformed) || !strings.Contains(err.Error(), "out of decode order by more than 8 MiB") {
		t.Errorf("runs out of order by 9 MiB: err = %v", err)
	}
}

// TestBadLayouts: sample data where a stream cannot have it (before the end of its moof,
// across the end of its mdat, shared by two samples), a moof too large: errors, never
// panics.
func TestBadLayouts(t *testing.T) {
	init := audioInit(t, 0, 0)
	ss := []trunSample{{1024, 10, 0, 0}, {1024, 10, 0, 0}}
	good := fragment(false, 0, 0, nil, ss)
	moofLen := int(binary.BigEndian.Uint32(good))
	offField := moofLen - 2*16 - 4 // the trun's data_offset: the moof ends with the trun's entries
	patch := func(off int32) []byte {
		b := bytes.Clone(good)
		binary.BigEndian.PutUint32(b[offField:], uint32(off))
		return b
	}
	if got, err := demuxSegment(t, init, bytes.NewReader(patch(int32(moofLen+8)))); err != nil || len(got) != 2 {
		t.Fatalf("the fragment as built: %d samples, %v", len(got), err)
	}
	bigMoof := append(binary.BigEndian.AppendUint32(nil, maxMoof+100), "moof"...)
	for _, tc := range []struct {
		name string
		seg  []byte
		want string
	}{
		{"data in the moof", patch(int32(moofLen - 12)), "before the end of its moof"},
		{"data before the segment", patch(-1000), "before the segment"},
		{"data across the mdat's end", patch(int32(moofLen + 8 + 5)), "goes past the end of its \"mdat\" box"},
		{"data shared", twoRuns(2, 2, 10, func(hdr uint32) (uint32, uint32) { return hdr, hdr }), "sample data overlaps"},
		{"moof too large", append(bigMoof, make([]byte, 64)...), "a moof box of 4194404 bytes"},
		{"stray bytes", append(bytes.Clone(good), 0, 0, 0), "3 stray bytes"},
	} {
		_, err := demuxSegment(t, init, bytes.NewReader(tc.seg))
		if !errors.Is(err, media.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestSampleOverHold: a sample that would pass maxHeld by itself goes at once, after what
// waits before it (its track's queue, the other track's samples that precede it), and
// what follows it keeps waiting.
func TestSampleOverHold(t *testing.T) {
	d := NewDemuxer()
	if err := d.Init(readTestdata(t, "avc_init.mp4")); err != nil {
		t.Fatal(err)
	}
	var got emitted
	d.resetSegment(got.add)
	vs, as := d.video.cur.timescale, d.audio.cur.timescale
	d.s.seen, d.s.first = [2]bool{true, true}, [2]int64{0, 0}
	idr := func(n int) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(n-4))
		return append(append(b, 0x65, 0x88), make([]byte, n-6)...)
	}
	// Video at 0 s and 1 s wait for audio; audio at 0.5 s goes before the second.
	for i, sec := range []int64{0, 1} {
		if err := d.take(0, i, rawSample{raw: sec * int64(vs), dur: vs, flags: 0x02000000, data: idr(1000)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.take(1, 0, rawSample{raw: int64(as) / 2, dur: 1024, data: make([]byte, 100)}); err != nil {
		t.Fatal(err)
	}
	// Then a 9 MiB video sample at 2 s (not copied aside: what it allocates is its AVCC
	// buffer, and the copy emitted keeps), and audio at 0.75 s and 3 s.
	large := idr(9 << 20)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := d.take(0, 2, rawSample{raw: 2 * int64(vs), dur: vs, flags: 0x02000000, data: large}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 20<<20 {
		t.Errorf("taking the 9 MiB sample allocated %d MiB", n>>20)
	}
	for i, t100 := range []int64{75, 300} {
		if err := d.take(1, 1+i, rawSample{raw: int64(as) * t100 / 100, dur: 1024, data: make([]byte, 100)}); err != nil {
			t.Fatal(err)
		}
	}
	var order []string
	for _, s := range got {
		order = append(order, fmt.Sprint(s.Track.Kind, len(s.Data) > 1<<20))
	}
	want := []string{"video false", "audio false", "video false", "video true"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("emitted %v (kind, large), want %v (then the audio at 0.75 s, waiting)", order, want)
	}
	if len(got[3].Data) != 9<<20 || d.s.hold.held != 2*(100+heldOverhead) {
		t.Errorf("the large sample: %d bytes; held %d", len(got[3].Data), d.s.hold.held)
	}
	if err := d.release(true); err != nil || len(got) != 6 {
		t.Errorf("at the segment's end: %d samples, %v", len(got), err)
	}
}
