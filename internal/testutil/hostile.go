package testutil

import (
	"encoding/binary"
	"errors"
	"io"
	"runtime"

	"github.com/stream-downloads/caddy-stream-downloads/internal/mpegcrc"
)

// Hostile inputs of issue 12 point 1: media that never ends (a PES without end, an mdat
// streamed forever) or that announces more than any real stream has. They are made as
// they are read, never held whole.

// ErrHostileLimit is what a Hostile returns once its Limit is read: the stand-in of a
// fetch's size limit.
var ErrHostileLimit = errors.New("hostile input: limit reached")

// Hostile is an endless input: Head, then the pieces Next returns, one after the other,
// without end (nil Next: zeros), until Limit bytes (0: none), after which Read returns
// ErrHostileLimit (io.EOF with End: the input ends there). Every Probe bytes (0: never) it measures the live heap after a GC,
// keeping the most in MaxLive: with the heap measured before the first Read (Base), what
// its reader held while reading it.
type Hostile struct {
	Head  []byte
	Next  func() []byte
	Limit int64
	End   bool
	Probe int64

	N       int64  // bytes read
	Base    uint64 // live heap before the first Read
	MaxLive uint64

	cur      []byte
	probed   int64
	measured bool
}

var zeros = make([]byte, 64<<10)

func (h *Hostile) Read(p []byte) (int, error) {
	if !h.measured {
		h.measured = true
		h.Base = liveHeap()
		h.cur = h.Head
	}
	if h.Limit > 0 && h.N >= h.Limit {
		if h.End {
			return 0, io.EOF
		}
		return 0, ErrHostileLimit
	}
	if h.Limit > 0 {
		p = p[:min(int64(len(p)), h.Limit-h.N)]
	}
	n := 0
	for n < len(p) {
		if len(h.cur) == 0 {
			if h.Next == nil {
				h.cur = zeros
			} else {
				h.cur = h.Next()
			}
		}
		k := copy(p[n:], h.cur)
		h.cur = h.cur[k:]
		n += k
	}
	h.N += int64(n)
	if h.Probe > 0 && h.N-h.probed >= h.Probe {
		h.probed = h.N
		h.MaxLive = max(h.MaxLive, liveHeap())
	}
	return n, nil
}

// Growth is the most the live heap grew over Base while the input was read.
func (h *Hostile) Growth() int64 { return int64(h.MaxLive) - int64(h.Base) }

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Repeat returns a Next that gives b again and again.
func Repeat(b []byte) func() []byte { return func() []byte { return b } }

// FMP4Fragment is a moof with one traf for track trackID (default-base-is-moof, tfdt
// base) announcing one sample of each size in sizes (dur ticks each, the first a sync
// sample, the others not), followed by the header of an mdat declaring mdatSize payload
// bytes (0: to the end of the segment; above 4 GiB a 64-bit size). The samples' data is
// the start of the mdat's payload, which the caller sends after it.
func FMP4Fragment(trackID uint32, base uint64, dur uint32, sizes []uint32, mdatSize uint64) []byte {
	mdatHdr := 8
	if mdatSize+8 > 0xffffffff {
		mdatHdr = 16
	}
	be := binary.BigEndian
	trun := func(off uint32) []byte {
		b := be.AppendUint32(nil, 0x000305) // data offset, first-sample-flags, duration, size
		b = be.AppendUint32(b, uint32(len(sizes)))
		b = be.AppendUint32(b, off)
		b = be.AppendUint32(b, 0x02000000) // depends on no other: sync
		for _, s := range sizes {
			b = be.AppendUint32(be.AppendUint32(b, dur), s)
		}
		return isoBox("trun", b)
	}
	moof := func(off uint32) []byte {
		// default-base-is-moof; default sample flags: non-sync, depends on others.
		tfhd := isoBox("tfhd", be.AppendUint32(be.AppendUint32(be.AppendUint32(nil, 0x020020), trackID), 0x01010000))
		tfdt := isoBox("tfdt", be.AppendUint64(be.AppendUint32(nil, 0x01000000), base))
		traf := isoBox("traf", append(append(tfhd, tfdt...), trun(off)...))
		return isoBox("moof", append(isoBox("mfhd", be.AppendUint32(be.AppendUint32(nil, 0), 1)), traf...))
	}
	m := moof(0)
	m = moof(uint32(len(m) + mdatHdr))
	switch {
	case mdatSize == 0:
		return append(m, 0, 0, 0, 0, 'm', 'd', 'a', 't')
	case mdatHdr == 16:
		return be.AppendUint64(append(m, 0, 0, 0, 1, 'm', 'd', 'a', 't'), mdatSize+16)
	}
	return append(be.AppendUint32(m, uint32(mdatSize+8)), "mdat"...)
}

func isoBox(typ string, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(payload)))
	return append(append(b, typ...), payload...)
}

// TS stream types of EndlessTS.
const (
	TSH264 = 0x1b
	TSAAC  = 0x0f
)

// EndlessTS is an MPEG-TS stream of one program (PMT on PID 0x1000) whose elementary
// streams are streamTypes on PIDs 0x100, 0x101, …: the PAT, the PMT, then one PES
// without PES_packet_length on the first PID (PTS 0) whose payload is es's bytes
// without end, 184 a packet (continuity counters counting on). It is the Head and Next
// of a Hostile. The other streams are declared and never carry a packet.
func EndlessTS(es func() []byte, streamTypes ...byte) (head []byte, next func() []byte) {
	pmt := []byte{0x02, 0, 0, 0, 1, 0xc1, 0, 0, 0xe1, 0x00, 0xf0, 0x00} // PCR on PID 0x100
	for i, st := range streamTypes {
		pmt = append(pmt, st, 0xe1, byte(i), 0xf0, 0)
	}
	pat := []byte{0x00, 0, 0, 0, 1, 0xc1, 0, 0, 0, 1, 0xf0, 0x00}
	head = append(psiPacket(0, pat), psiPacket(0x1000, pmt)...)
	var pending []byte
	take := func(n int) []byte {
		for len(pending) < n {
			pending = append(pending, es()...)
		}
		b := pending[:n:n]
		pending = pending[n:]
		return b
	}
	streamID := byte(0xe0)
	if streamTypes[0] != TSH264 {
		streamID = 0xc0
	}
	// PES header: no length, PTS 0 (marker bits set).
	pes := []byte{0, 0, 1, streamID, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1}
	first := tsPacket(0x100, true, 0, append(pes, take(184-len(pes))...))
	head = append(head, first...)
	cc := byte(0)
	next = func() []byte {
		cc = (cc + 1) & 0x0f
		return tsPacket(0x100, false, cc, take(184))
	}
	return head, next
}

// psiPacket is a TS packet holding one PSI section (its length and CRC filled in).
func psiPacket(pid uint16, sec []byte) []byte {
	n := len(sec) + 4 - 3
	sec[1], sec[2] = 0xb0|byte(n>>8), byte(n)
	sec = binary.BigEndian.AppendUint32(sec, mpegcrc.Sum(sec))
	p := append([]byte{0}, sec...) // pointer field
	for len(p) < 184 {
		p = append(p, 0xff)
	}
	return tsPacket(pid, true, 0, p)
}

func tsPacket(pid uint16, pusi bool, cc byte, payload []byte) []byte {
	b := []byte{0x47, byte(pid >> 8), byte(pid), 0x10 | cc}
	if pusi {
		b[1] |= 0x40
	}
	return append(b, payload...)
}
