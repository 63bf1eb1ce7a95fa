package ts

import (
	"bytes"
	"fmt"

	"github.com/stream-downloads/caddy-stream-downloads/packager/codec"
)

// maxVideoAU bounds one H.264/HEVC access unit. The largest real ones (an 8K intra
// frame at a high bit rate) are a few MB; a unit past this is not media but a stream
// that never ends, and must not grow memory.
const maxVideoAU = 16 << 20

// maxNALs bounds the NAL units of one access unit, whose positions are kept while it is
// built (tiny NAL units would make them outweigh the unit's bytes): far above real ones
// (HEVC's highest level allows 600 slice segments a picture; H.264 streams rarely have
// more than a slice per macroblock row).
const maxNALs = 1 << 16

// videoUnit is one access unit rebuilt from the elementary stream.
type videoUnit struct {
	nalus    [][]byte // without start codes; valid during the call that hands it on
	pts, dts int64    // raw 33-bit, 90 kHz
	stamped  bool     // the timestamps are the unit's own (not extrapolated)
	seg      int      // the segment the unit started in
}

// videoES rebuilds H.264 or HEVC access units from an Annex B byte stream fed in pieces
// cut anywhere (PES boundaries need not match access units): a unit ends where the next
// one starts, found by the rules of H.264 7.4.1.2.3 and H.265 7.4.2.4.4 — an access unit
// delimiter, parameter sets or prefix SEI after a picture's slices, or the first slice
// of a new picture.
//
// Why by hand: mediacommon's Annex B helpers split one complete access unit; they cannot
// tell where units begin in a stream cut at arbitrary bytes.
type videoES struct {
	hevc bool
	on   func(videoUnit) error

	buf    []byte // the current unit (from its first byte) and what follows, unscanned
	base   int64  // stream offset of buf[0]
	scan   int    // buf[:scan] was searched for start codes
	inAU   bool   // buf starts a unit
	nals   []int  // positions in buf of the current unit's NAL headers
	sawVCL bool   // the current unit has a slice
	au     videoUnit
	stamps stamps
	seg    int // the segment being fed

	// Extrapolation for units whose PES carried no timestamp (allowed up to 0.7 s): the
	// DTS a frame on, the PTS from the picture order count (poc.go).
	lastDTS, lastPTS, delta int64
	haveLast                bool

	started bool  // a unit started since the stream began
	lead    int64 // bytes before the first unit start: the tail of a unit from before the stream
	firstPES

	out [][]byte // reused NAL slice list
	poc pocState

	lost *losses
}

func (v *videoES) kind() string { return "video" }

// pes notes that a PES starts here.
func (v *videoES) pes(has bool, pts, dts int64) {
	v.firstPES.next(v.base + int64(len(v.buf)))
	v.stamps.add(v.base+int64(len(v.buf)), has, pts, dts)
}

// write adds elementary stream bytes and hands on the units they complete.
func (v *videoES) write(b []byte) error {
	v.buf = append(growAU(v.buf, len(b)), b...)
	for {
		p, hdr, ok := v.nextStartCode()
		if !ok {
			break
		}
		if err := v.nal(p, hdr); err != nil {
			return err
		}
	}
	if v.inAU && len(v.buf) > maxVideoAU {
		return fmt.Errorf("a video access unit larger than %d MiB", maxVideoAU>>20)
	}
	if !v.inAU && v.scan > 4 {
		// Bytes before any unit start (after a loss, or a stream that starts mid-unit).
		v.outside(v.scan - 4)
		v.drop(v.scan - 4)
	}
	return nil
}

// nextStartCode finds the next start code from scan on whose NAL header (and first slice
// header bits) is in buf; p is the position of its first byte (a leading zero_byte
// included) and hdr that of the NAL header.
func (v *videoES) nextStartCode() (p, hdr int, ok bool) {
	need := 2 // NAL header plus the byte holding first_mb_in_slice's first bit
	if v.hevc {
		need = 3 // two-byte header plus first_slice_segment_in_pic_flag
	}
	b := v.buf
	i := max(v.scan, 0)
	k := bytes.Index(b[i:], startCode)
	if k < 0 {
		v.scan = max(i, len(b)-2) // a start code may begin in the last two bytes
		return 0, 0, false
	}
	i += k
	if i+3+need > len(b) {
		v.scan = i // its header is not here yet
		return 0, 0, false
	}
	p = i
	if p > 0 && b[p-1] == 0 {
		p--
	}
	v.scan = i + 3
	return p, i + 3, true
}

var startCode = []byte{0, 0, 1}

// growAU makes room for n more bytes in buf, doubling it: append grows a large slice by a
// quarter, which on the way to maxVideoAU leaves several times a unit's size behind as
// garbage (a unit without end made Caddy's resident memory grow by 80 MiB); never past
// what the largest unit allowed needs.
func growAU(buf []byte, n int) []byte {
	need := len(buf) + n
	if need <= cap(buf) {
		return buf
	}
	c := min(max(2*cap(buf), need, 4096), max(need, maxVideoAU+tsPacketSize))
	nb := make([]byte, len(buf), c)
	copy(nb, buf)
	return nb
}

// nal handles the NAL unit whose start code begins at p and header is at hdr.
func (v *videoES) nal(p, hdr int) error {
	h := v.buf[hdr:]
	vcl, firstSlice, startsAU := codec.AUBoundary(h, v.hevc)
	isAUD := codec.AUD(h, v.hevc)
	if !v.inAU && !startsAU && !(vcl && firstSlice) {
		return nil // not where a unit can start: skipped (and counted) until one does
	}
	if !v.inAU || (v.sawVCL && (startsAU || (vcl && firstSlice))) || (isAUD && len(v.nals) > 0) {
		if v.inAU {
			if err := v.emit(p); err != nil {
				return err
			}
		} else if p > 0 {
			v.outside(p)
		}
		v.drop(p)
		hdr -= p
		v.inAU, v.started = true, true
		v.sawVCL = false
		v.nals = v.nals[:0]
		v.au.seg = v.seg
		v.au.pts, v.au.dts, v.au.stamped = v.stamps.take(v.base, v.base+int64(hdr), v.due)
	}
	if len(v.nals) >= maxNALs {
		return fmt.Errorf("a video access unit of more than %d NAL units", maxNALs)
	}
	v.nals = append(v.nals, hdr)
	v.sawVCL = v.sawVCL || vcl
	return nil
}

// due reports whether dts is where the next unit is due (within half a frame), when
// that is known.
func (v *videoES) due(dts int64) bool {
	if !v.haveLast {
		return true
	}
	d := wrapDiff(dts, v.lastDTS+v.delta)
	return 2*d <= v.delta && 2*d >= -v.delta
}

// outside takes the n bytes at the start of buf, which belong to no unit: lost, unless
// they come before the first unit start and within the first PES (a stream, or a playlist
// that starts later than its packager did, may begin with the last bytes of a unit that
// begins before it: they are not the stream's media).
func (v *videoES) outside(n int) {
	lead := v.firstPES.within(v.started, v.base, int64(n))
	v.lead += lead
	if int64(n) > lead {
		v.lost.add("video bytes outside any access unit", int64(n)-lead)
	}
}

// drop discards buf[:n].
func (v *videoES) drop(n int) {
	v.base += int64(n)
	v.buf = v.buf[:copy(v.buf, v.buf[n:])]
	v.scan -= n
	for i := range v.nals {
		v.nals[i] -= n
	}
}

// emit hands on the current unit, which ends at end (exclusive).
func (v *videoES) emit(end int) error {
	out := v.out[:0]
	for i, h := range v.nals {
		e := end
		if i+1 < len(v.nals) {
			e = v.nals[i+1] - 3
		}
		n := v.buf[h:max(e, h)]
		for len(n) > 0 && n[len(n)-1] == 0 { // trailing_zero_8bits, zero_byte of the next start code
			n = n[:len(n)-1]
		}
		if len(n) > 0 {
			out = append(out, n)
		}
	}
	v.out = out
	u := v.au
	u.nalus = out
	if !u.stamped && !v.haveLast {
		v.lost.add("video access units without a timestamp", 1)
		return nil
	}
	if !u.stamped {
		u.dts = (v.lastDTS + v.delta) & tsMask
	}
	if pts, ok := v.poc.unit(out, u.pts, u.dts, u.stamped, v.delta); !u.stamped {
		u.pts = u.dts // without B-frames
		if ok {
			u.pts = pts
		}
	}
	if !v.haveLast {
		v.delta = VideoTimescale / 25
	} else if d := wrapDiff(u.dts, v.lastDTS); d > 0 {
		v.delta = d
	}
	v.lastDTS, v.lastPTS, v.haveLast = u.dts, u.pts, true
	if len(out) == 0 {
		return nil
	}
	return v.on(u)
}

// flush hands on the unit in progress: the stream ends here (end of the stream, or of a
// period).
func (v *videoES) flush() error {
	var err error
	if v.inAU {
		err = v.emit(len(v.buf))
	} else if len(v.buf) > 0 && !allZero(v.buf) {
		v.outside(len(v.buf))
	}
	v.base += int64(len(v.buf))
	v.buf, v.scan, v.inAU, v.nals, v.sawVCL = v.buf[:0], 0, false, v.nals[:0], false
	v.stamps.reset()
	return err
}

// lose says bytes of the stream are missing here: the unit in progress is incomplete and
// dropped, and the stream resumes at the next unit start.
func (v *videoES) lose() {
	if v.inAU {
		v.lost.add("video access units cut by lost packets", 1)
	}
	v.base += int64(len(v.buf))
	v.buf, v.scan, v.inAU, v.nals, v.sawVCL = v.buf[:0], 0, false, v.nals[:0], false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// firstPES knows where the second PES of a stream starts: bytes before the first unit
// are only the tail of an earlier unit within the first PES.
type firstPES struct {
	count int   // PES started, up to 2
	end   int64 // stream offset where the second one starts
}

func (f *firstPES) next(pos int64) {
	if f.count++; f.count == 2 {
		f.end = pos
	}
}

// within is how many of the n bytes from pos are such a tail.
func (f *firstPES) within(started bool, pos, n int64) int64 {
	switch {
	case started:
		return 0
	case f.count < 2:
		return n
	}
	return min(max(f.end-pos, 0), n)
}
