package testutil

import (
	"encoding/binary"
	"testing"
)

// Truncated origin segments (issue 12 point 3): where to cut a real segment so that
// what is left is a segment an origin could serve with a matching Content-Length.

// TSPES is one PES of an MPEG-TS segment: its PID, its stream_id (0xE0.. video, 0xC0..
// audio), and the packets it spans (indexes of 188-byte packets, of its PID only).
type TSPES struct {
	PID      uint16
	StreamID byte
	Length   int // PES_packet_length (0: unbounded, as video usually is)
	Packets  []int
}

// Video reports whether the PES is of a video stream (stream_id 0xE0-0xEF).
func (p TSPES) Video() bool { return p.StreamID&0xf0 == 0xe0 }

// Audio reports whether the PES is of an MPEG audio stream (stream_id 0xC0-0xDF), as
// ffmpeg writes AAC, MP3 and MP2, or private stream 1 (0xBD, AC-3 and the like).
func (p TSPES) Audio() bool { return p.StreamID&0xe0 == 0xc0 || p.StreamID == 0xbd }

// PESOf lists the PES of seg (a whole MPEG-TS segment) in the order they start; PSI and
// packets without payload are left out.
func PESOf(t testing.TB, seg []byte) []TSPES {
	t.Helper()
	if len(seg)%188 != 0 {
		t.Fatalf("PESOf: %d bytes is not a whole number of TS packets", len(seg))
	}
	var out []TSPES
	open := map[uint16]int{} // PID → index in out of its PES in progress
	for i := 0; i*188 < len(seg); i++ {
		p := seg[i*188 : (i+1)*188]
		if p[0] != 0x47 {
			t.Fatalf("PESOf: no sync byte at packet %d", i)
		}
		pid := uint16(p[1]&0x1f)<<8 | uint16(p[2])
		if p[3]&0x10 == 0 || pid == 0 || pid == 0x1fff {
			continue
		}
		payload := p[4:]
		if p[3]&0x20 != 0 {
			payload = p[5+int(p[4]):]
		}
		if p[1]&0x40 != 0 {
			if len(payload) < 6 || payload[0] != 0 || payload[1] != 0 || payload[2] != 1 {
				continue // a PSI section (PAT, PMT, SDT): not a PES
			}
			open[pid] = len(out)
			out = append(out, TSPES{PID: pid, StreamID: payload[3], Length: int(binary.BigEndian.Uint16(payload[4:6]))})
		}
		if k, ok := open[pid]; ok {
			out[k].Packets = append(out[k].Packets, i)
		}
	}
	return out
}

// CutInsidePES returns the offset of a packet boundary in the middle of the first PES
// that pick accepts and that starts at or after packet index from·(packets of seg) and
// spans at least two packets: cut there, seg ends with that PES cut short, every earlier
// PES whole.
func CutInsidePES(t testing.TB, seg []byte, from float64, pick func(TSPES) bool) int {
	t.Helper()
	first := int(from * float64(len(seg)/188))
	for _, p := range PESOf(t, seg) {
		if p.Packets[0] >= first && len(p.Packets) >= 2 && pick(p) {
			return p.Packets[len(p.Packets)/2] * 188
		}
	}
	t.Fatalf("CutInsidePES: no PES of at least two packets from packet %d on", first)
	return 0
}

// CutInsideMdat returns an offset in the middle of the payload of the last mdat box of
// seg (an fMP4 media segment): cut there, the segment ends with samples its trun lists
// but that are not there.
func CutInsideMdat(t testing.TB, seg []byte) int {
	t.Helper()
	at := -1
	for off := 0; off+8 <= len(seg); {
		size := int(binary.BigEndian.Uint32(seg[off:]))
		hdr := 8
		if size == 1 && off+16 <= len(seg) {
			size, hdr = int(binary.BigEndian.Uint64(seg[off+8:])), 16
		}
		if size < hdr || off+size > len(seg) {
			t.Fatalf("CutInsideMdat: box at %d of size %d does not fit %d bytes", off, size, len(seg))
		}
		if string(seg[off+4:off+8]) == "mdat" && size > hdr+1 {
			at = off + hdr + (size-hdr)/2
		}
		off += size
	}
	if at < 0 {
		t.Fatal("CutInsideMdat: no mdat with a payload")
	}
	return at
}
