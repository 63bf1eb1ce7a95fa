package tsrecut

import (
	"fmt"
	"slices"
)

// Recut re-packetizes the segment in with the cuts of pattern p. The output has the
// input's PSI packets at its start, then the PES of every stream cut where p says and
// interleaved as the input interleaved their bytes, continuity counters counted per PID
// from 0.
func Recut(in []byte, p Pattern) ([]byte, error) {
	seg, err := Demux(in)
	if err != nil {
		return nil, err
	}
	return seg.Mux(p)
}

// outPES is one PES to write.
type outPES struct {
	st       *Stream
	start    int // ES bytes [start, end)
	end      int
	au       int     // the first AU starting in it, -1 for none
	key      float64 // where its last byte was in the input, in packets: the order of the output
	omitLen  bool    // PES_packet_length 0
	writePCR bool
}

// Mux writes the segment with the PES cut as p says.
func (seg *Segment) Mux(p Pattern) ([]byte, error) {
	var queues [][]outPES
	for _, st := range seg.Streams {
		if len(st.AUs) == 0 {
			queues = append(queues, nil)
			continue
		}
		cuts := p.cuts(st)
		if err := checkCuts(cuts, len(st.ES)); err != nil {
			return nil, fmt.Errorf("pattern %s, PID %#x: %w", p.Name, st.PID, err)
		}
		var q []outPES
		a := 0
		for c := 0; c+1 < len(cuts); c++ {
			o := outPES{st: st, start: cuts[c], end: cuts[c+1], au: -1}
			for a < len(st.AUs) && st.AUs[a].Off < o.start {
				a++
			}
			if a < len(st.AUs) && st.AUs[a].Off < o.end {
				o.au = a
				o.writePCR = st.PID == seg.PCRPID
			}
			o.key = st.inputPosition(o.end - 1)
			o.omitLen = st.Video && p.omitVideoLength(c)
			q = append(q, o)
		}
		queues = append(queues, q)
	}

	out := make([]byte, 0, len(seg.PSI)*PacketSize+totalES(seg)*11/10)
	cc := map[uint16]byte{}
	for _, psi := range seg.PSI {
		b := slices.Clone(psi)
		pid := uint16(b[1]&0x1f)<<8 | uint16(b[2])
		b[3] = b[3]&0xf0 | cc[pid]&0x0f
		cc[pid]++
		out = append(out, b...)
	}
	// Merge the streams' PES in the order of the input: each where the input had its last
	// byte (a muxer writes a PES once it has all of it), ties in PMT order. The re-cut
	// changes where PES begin, not how the streams interleave: a demuxer hands out the
	// access units in about the same order as from the input.
	heads := make([]int, len(queues))
	for {
		best := -1
		for i, q := range queues {
			if heads[i] < len(q) && (best < 0 || q[heads[i]].key < queues[best][heads[best]].key) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		o := queues[best][heads[best]]
		heads[best]++
		out = seg.writePES(out, o, cc)
	}
	return out, nil
}

func totalES(seg *Segment) int {
	n := 0
	for _, st := range seg.Streams {
		n += len(st.ES)
	}
	return n
}

func checkCuts(cuts []int, n int) error {
	if len(cuts) < 2 || cuts[0] != 0 || cuts[len(cuts)-1] != n {
		return fmt.Errorf("cuts must run from 0 to %d", n)
	}
	for i := 1; i < len(cuts); i++ {
		if cuts[i] <= cuts[i-1] {
			return fmt.Errorf("cut %d (%d) after cut %d (%d): empty PES", i, cuts[i], i-1, cuts[i-1])
		}
	}
	return nil
}

// writePES appends the TS packets of one PES: PCR in the first packet's adaptation field
// when o.writePCR, stuffing in the last packet's.
func (seg *Segment) writePES(out []byte, o outPES, cc map[uint16]byte) []byte {
	st := o.st
	payload := st.ES[o.start:o.end]
	hdr := make([]byte, 9, 19)
	hdr[2] = 1
	hdr[3] = st.StreamID
	hdr[6] = 0x80 // '10', not scrambled, no priority
	if o.au >= 0 {
		au := st.AUs[o.au]
		if au.Off == o.start {
			hdr[6] |= 0x04 // data_alignment_indicator
		}
		if au.HasDTS {
			hdr[7] = 0xc0
			hdr = hdr[:19]
			putTS(hdr[9:], 3, au.PTS)
			putTS(hdr[14:], 1, au.DTS)
		} else {
			hdr[7] = 0x80
			hdr = hdr[:14]
			putTS(hdr[9:], 2, au.PTS)
		}
	}
	hdr[8] = byte(len(hdr) - 9)
	if l := len(hdr) - 6 + len(payload); l <= 0xffff && !o.omitLen {
		hdr[4], hdr[5] = byte(l>>8), byte(l)
	}
	data := append(hdr, payload...)

	for first := true; len(data) > 0; first = false {
		var af []byte // adaptation field, with its length byte
		if first && o.writePCR {
			pcr := (st.AUs[o.au].DTS - seg.PCRDelay) & (1<<33 - 1)
			af = []byte{7, 0x10, byte(pcr >> 25), byte(pcr >> 17), byte(pcr >> 9), byte(pcr >> 1), byte(pcr&1)<<7 | 0x7e, 0}
		}
		room := PacketSize - 4 - len(af)
		if len(data) < room { // last packet: stuffing
			stuff := room - len(data)
			switch {
			case af == nil && stuff == 1:
				af = []byte{0}
			case af == nil:
				af = append([]byte{byte(stuff - 1), 0}, bytesOf(0xff, stuff-2)...)
			default:
				af = append(af, bytesOf(0xff, stuff)...)
				af[0] = byte(len(af) - 1)
			}
			room = len(data)
		}
		pkt := make([]byte, 4, PacketSize)
		pkt[0] = syncByte
		pkt[1] = byte(st.PID >> 8 & 0x1f)
		if first {
			pkt[1] |= 0x40
		}
		pkt[2] = byte(st.PID)
		pkt[3] = 0x10 | cc[st.PID]&0x0f
		if af != nil {
			pkt[3] |= 0x20
		}
		cc[st.PID]++
		pkt = append(pkt, af...)
		pkt = append(pkt, data[:room]...)
		data = data[room:]
		out = append(out, pkt...)
	}
	return out
}

func bytesOf(b byte, n int) []byte {
	s := make([]byte, n)
	for i := range s {
		s[i] = b
	}
	return s
}

func putTS(b []byte, prefix byte, t int64) {
	b[0] = prefix<<4 | byte(t>>30&7)<<1 | 1
	b[1] = byte(t >> 22)
	b[2] = byte(t>>15&0x7f)<<1 | 1
	b[3] = byte(t >> 7)
	b[4] = byte(t&0x7f)<<1 | 1
}
