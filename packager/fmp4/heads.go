package fmp4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// Indexing a segment from a few of its bytes (docs/instant.md): the index mode reads
// nothing of the samples' data but the first MPEG audio frame, so the segment's box
// headers and moofs are enough; the mdats between them are never read.

// SegmentPiecesIndex is SegmentIndex from pieces of a segment (size bytes): its head,
// and further box headers and moofs read by their own ranges (a reader may fetch each
// moof of a segment of several fragments so, NextRange), emit getting the same samples
// without the segment's other bytes. When a box header, a moof or the rendition's first
// MPEG audio frame lies outside the pieces, it returns the range it needs (n > 0; ask
// for more at once: the next box often follows) and emits nothing, the demuxer left as
// it was, so call it again with that range added; n 0 and a nil error: the segment is
// indexed. A moof is read whole (at most 4 MiB, the demuxer's bound).
//
// MPEG audio (MP2/MP3): the first frame of the rendition is read (its header gives the
// channel count and frame length), so its bytes must be among the pieces. Errors are
// those of SegmentIndex (ErrNeedsPayload included).
func (d *Demuxer) SegmentPiecesIndex(p *Pieces, size int64, emit func(IndexedSample) error) (off, n int64, err error) {
	if !d.index {
		return 0, 0, errors.New("fmp4: SegmentPiecesIndex on a demuxer in the normal mode")
	}
	mpeg := d.needsData(1)
	off, n = d.piecesNeed(p, size, mpeg)
	if n > 0 {
		return off, n, nil
	}
	// The bytes outside the pieces are read as zeros: the index mode skips them (the
	// samples' data), and the walk above saw that every box header and moof is in them.
	seen := false
	return 0, 0, d.segment(p.reader(size), nil, func(s IndexedSample) error {
		if mpeg && !seen && s.Track != nil && s.Track.Codec == media.MPEGAudio {
			seen = true
			if !s.InInit && !p.covers(s.Offset, int64(s.Size)) {
				// The walk found another frame than the one read: never index from zeros.
				return fmt.Errorf("fmp4: the first MPEG audio frame (at %d+%d) is not among the bytes read", s.Offset, s.Size)
			}
		}
		return emit(s)
	})
}

// piecesNeed walks the top-level boxes of a segment (size bytes) in p: the first range
// indexing it needs that p lacks (n 0: none). Boxes it cannot make sense of are left to
// the demuxer, which says what is wrong with them.
func (d *Demuxer) piecesNeed(p *Pieces, size int64, mpeg bool) (off, n int64) {
	for pos := int64(0); pos < size; {
		if size-pos < 8 {
			if !p.covers(pos, size-pos) {
				return pos, size - pos
			}
			return 0, 0 // trailing bytes: the demuxer says what is wrong
		}
		h, ok := p.span(pos, 8)
		if !ok {
			return pos, min(16, size-pos) // the box header (a 64-bit size too)
		}
		bsize := int64(binary.BigEndian.Uint32(h))
		typ := string(h[4:8])
		hdr := int64(8)
		if bsize == 1 {
			h16, ok := p.span(pos, min(16, size-pos))
			if !ok || len(h16) < 16 {
				if !ok {
					return pos, min(16, size-pos)
				}
				return 0, 0
			}
			u := binary.BigEndian.Uint64(h16[8:])
			if u > maxTime {
				return 0, 0
			}
			bsize, hdr = int64(u), 16
		}
		end := pos + bsize
		switch {
		case bsize == 0:
			end = size
		case bsize < hdr || end > size:
			return 0, 0 // malformed: the demuxer says so
		}
		if typ == "moof" {
			if end-pos > maxMoof {
				return 0, 0 // the demuxer refuses it
			}
			if !p.covers(pos, end-pos) {
				return pos, min(end+16, size) - pos // the moof and the next box's header
			}
			if mpeg {
				m, _ := p.span(pos, end-pos)
				if at, fn, ok := d.firstAudio(m, pos, int(hdr)); ok {
					mpeg = false
					if at+fn <= size && !p.covers(at, fn) {
						return at, fn
					}
				}
			}
		}
		pos = end
	}
	return 0, 0
}

// firstAudio finds the data of the first non-empty sample of the audio track in a moof
// (m, at segment offset start): where it is and its size, as parseMoof places it.
func (d *Demuxer) firstAudio(m []byte, start int64, hdr int) (at, n int64, ok bool) {
	st := d.audio
	if st == nil || st.cur == nil {
		return 0, 0, false
	}
	prevEnd := start
	first := true
	done := errors.New("found")
	_ = walkBoxes(m[hdr:], 0, func(bx box) error {
		if bx.typ != "traf" {
			return nil
		}
		tfhd, _, truns, err := readTraf(bx.payload)
		if err != nil {
			return err
		}
		base, err := dataBase(tfhd, first, start, prevEnd)
		if err != nil {
			return err
		}
		first = false
		ours := tfhd.TrackID == st.cur.id
		def := defaults{size: st.cur.defSize}
		if !ours {
			def = defaults{}
			for _, o := range []*stream{d.video} {
				if o != nil && o.cur != nil && o.cur.id == tfhd.TrackID {
					def.size = o.cur.defSize
				}
			}
		}
		if tfhd.HasDefaultSampleSize() {
			def.size = tfhd.DefaultSampleSize
		}
		pos := base
		for i := range truns {
			tr := &truns[i]
			if tr.flags&trunDataOffset != 0 {
				pos = base + int64(tr.dataOffset)
			} else if i == 0 {
				pos = base
			}
			for j := 0; j < tr.count; j++ {
				_, size, _, _ := tr.sample(j, def)
				if ours && size > 0 {
					at, n, ok = pos, int64(size), true
					return done
				}
				pos += int64(size)
			}
		}
		prevEnd = pos
		return nil
	})
	return at, n, ok
}

// zeroReader reads n zero bytes.
type zeroReader struct{ n int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > z.n {
		p = p[:z.n]
	}
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}
