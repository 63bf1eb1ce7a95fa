package fmp4

import (
	"bytes"
	"fmt"
	"testing"
)

// indexHeads runs src in the index mode from each segment's head, grown from first
// bytes by doubling (or to what SegmentPiecesIndex asks): the samples, and the bytes of
// the heads.
func indexHeads(t *testing.T, src source, first int64) ([]where, int64, error) {
	t.Helper()
	d := NewIndexDemuxer()
	var got []where
	var read int64
	err := demuxSource(src, d, func(i int) error {
		data := src.segs[i].data
		size := int64(len(data))
		n := min(first, size)
		for {
			p := &Pieces{}
			p.Add(0, data[:n])
			off, ln, err := d.SegmentPiecesIndex(p, size, func(s IndexedSample) error {
				got = append(got, where{i, s})
				return nil
			})
			if err != nil {
				return err
			}
			need := off + ln
			if ln == 0 {
				read += n
				return nil
			}
			if need <= n || need > size {
				return fmt.Errorf("need %d with a head of %d of %d bytes", need, n, size)
			}
			n = min(max(need, 2*n), size)
		}
	})
	return got, read, err
}

// TestSegmentHeadIndex: for every fMP4 flavour of the conformance suite and the
// fixtures, the samples indexed from the segments' heads are those SegmentIndex gives
// from whole segments, whatever the first read (a few bytes, a moof cut, 64 KiB).
func TestSegmentHeadIndex(t *testing.T) {
	for name, src := range instantSources(t) {
		var want []where
		d := NewIndexDemuxer()
		var total int64
		err := demuxSource(src, d, func(i int) error {
			total += int64(len(src.segs[i].data))
			return d.SegmentIndex(bytes.NewReader(src.segs[i].data), func(s IndexedSample) error {
				want = append(want, where{i, s})
				return nil
			})
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, first := range []int64{16, 100, 1000, 64 << 10} {
			got, read, err := indexHeads(t, src, first)
			if err != nil {
				t.Fatalf("%s, first read %d: %v", name, first, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s, first read %d: %d samples, SegmentIndex %d", name, first, len(got), len(want))
			}
			for i := range want {
				if sampleKey(got[i]) != sampleKey(want[i]) {
					t.Fatalf("%s, first read %d: sample %d: %+v, SegmentIndex %+v", name, first, i, got[i], want[i])
				}
			}
			if first == 1000 {
				t.Logf("%s: heads of %d bytes of %d (%d samples)", name, read, total, len(got))
			}
		}
	}
}

// sampleKey is an indexed sample as text, its track by value (each demuxer has its
// own tracks).
func sampleKey(w where) string {
	s := w.IndexedSample
	tr := *s.Track
	s.Track = nil
	return fmt.Sprintf("%d %+v %+v", w.seg, tr, s)
}
