// Package tsrecut re-packetizes an MPEG-TS segment the way real packagers do, to make test
// material: the elementary streams are kept byte for byte, with the same timestamps, but
// their PES packets are cut elsewhere than on access-unit boundaries.
//
// ffmpeg's muxer (which makes the project's fixtures) puts whole access units in every PES:
// one video frame per PES, whole ADTS frames in audio PES. Real packagers do not: Apple's
// mediastreamsegmenter and mediafilesegmenter start a video PES with the last bytes of the
// previous access unit and cut AAC PES in the middle of an ADTS frame, the next PES then
// starting without an ADTS header. A demuxer that assumes aligned PES fails on those; this
// package makes such segments from aligned ones (Recut), plus a few damaged variants
// (DeclareStream, Lose, Truncate).
//
// The TS and PES writer is written by hand rather than with a muxer library (go-astits,
// mediacommon's mpegts.Writer): those always start a PES on an access unit, and the whole
// point is to produce cuts that no library muxer produces.
//
// Input: a segment as ffmpeg's HLS muxer writes it: PAT, PMT, H.264 (stream type 0x1b) or
// HEVC (0x24) video and AAC ADTS (0x0f) audio, each PES holding whole access units (one
// per video PES, any number of ADTS frames per audio PES, the later frames of an audio PES
// at +1024 samples each), the PCR on one of those PIDs.
package tsrecut

import (
	"errors"
	"fmt"
	"slices"
	"sort"
)

// PacketSize is the size of a TS packet.
const PacketSize = 188

const (
	syncByte = 0x47
	nullPID  = 0x1fff

	// Stream types of the PMT this package knows.
	TypeH264 = 0x1b
	TypeHEVC = 0x24
	TypeAAC  = 0x0f // ADTS
)

// ErrInput: the input is not a segment this package can re-cut.
var ErrInput = errors.New("tsrecut: unusable input")

func inputErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInput, fmt.Sprintf(format, a...))
}

// AU is one access unit (a video frame, an ADTS frame) of an elementary stream.
type AU struct {
	Off    int   // offset of its first byte in the elementary stream
	PTS    int64 // 33-bit, 90 kHz
	DTS    int64 // = PTS when the PES had no DTS
	HasDTS bool  // DTS differs from PTS (written only then)
}

// Stream is one elementary stream of a segment, reassembled.
type Stream struct {
	PID        uint16
	StreamType byte
	StreamID   byte // PES stream_id, as in the input
	Video      bool
	ES         []byte // the PES payloads, concatenated
	AUs        []AU   // in ES order
	// SampleRate of an audio stream (from its first ADTS header).
	SampleRate int

	pes []inPES // where the input had each PES
}

// inPES is where an input PES was: its elementary stream bytes and its TS packets.
type inPES struct {
	esStart, esEnd    int
	firstPkt, lastPkt int // packet indexes in the input
}

// inputPosition is where byte off of the elementary stream was in the input, in packets
// (interpolated within its PES).
func (s *Stream) inputPosition(off int) float64 {
	i := sort.Search(len(s.pes), func(i int) bool { return s.pes[i].esEnd > off })
	if i == len(s.pes) {
		i--
	}
	p := s.pes[i]
	if p.esEnd <= p.esStart {
		return float64(p.firstPkt)
	}
	return float64(p.firstPkt) + float64(p.lastPkt-p.firstPkt)*float64(off-p.esStart)/float64(p.esEnd-p.esStart)
}

// AULen is the length in bytes of access unit i.
func (s *Stream) AULen(i int) int {
	if i+1 < len(s.AUs) {
		return s.AUs[i+1].Off - s.AUs[i].Off
	}
	return len(s.ES) - s.AUs[i].Off
}

// Segment is a demuxed segment.
type Segment struct {
	// PSI holds the first packet of each PSI table in input order (PAT, PMT, and whatever
	// else is on a PID that is no elementary stream, such as ffmpeg's SDT).
	PSI     [][]byte
	PMTPID  uint16
	PCRPID  uint16
	Streams []*Stream // in PMT order
	// PCRDelay is how far the PCR runs behind the DTS on the PCR PID (90 kHz): the first
	// DTS on it minus the first PCR of the input (0.7 s when the input has no PCR).
	PCRDelay int64
}

// Stream returns the stream on pid, or nil.
func (s *Segment) Stream(pid uint16) *Stream {
	for _, st := range s.Streams {
		if st.PID == pid {
			return st
		}
	}
	return nil
}

// packet is one TS packet's header fields.
type packet struct {
	pid      uint16
	pusi     bool
	cc       byte
	hasPCR   bool
	pcr      int64 // base, 90 kHz
	payload  []byte
	af       []byte // adaptation field, without its length byte
	discon   bool
	raw      []byte
	hasPayld bool
}

func parsePacket(b []byte, pos int) (packet, error) {
	var p packet
	if len(b) < PacketSize || b[0] != syncByte {
		return p, inputErr("no sync byte at offset %d", pos)
	}
	if b[1]&0x80 != 0 {
		return p, inputErr("transport error indicator at offset %d", pos)
	}
	p.raw = b[:PacketSize]
	p.pid = uint16(b[1]&0x1f)<<8 | uint16(b[2])
	p.pusi = b[1]&0x40 != 0
	p.cc = b[3] & 0x0f
	afc := b[3] >> 4 & 3
	i := 4
	if afc&2 != 0 {
		l := int(b[4])
		if 5+l > PacketSize {
			return p, inputErr("adaptation field too long at offset %d", pos)
		}
		p.af = b[5 : 5+l]
		if l > 0 {
			p.discon = b[5]&0x80 != 0
			if b[5]&0x10 != 0 && l >= 7 {
				p.hasPCR = true
				p.pcr = int64(b[6])<<25 | int64(b[7])<<17 | int64(b[8])<<9 | int64(b[9])<<1 | int64(b[10])>>7
			}
		}
		i = 5 + l
	}
	if afc&1 != 0 {
		p.hasPayld = true
		p.payload = b[i:PacketSize]
	}
	return p, nil
}

// Demux reassembles the elementary streams of a segment.
func Demux(in []byte) (*Segment, error) {
	if len(in) == 0 || len(in)%PacketSize != 0 {
		return nil, inputErr("%d bytes is not a whole number of %d-byte packets", len(in), PacketSize)
	}
	seg := &Segment{PMTPID: nullPID, PCRPID: nullPID}
	// First pass: the PAT and the PMT.
	for pos := 0; pos < len(in); pos += PacketSize {
		p, err := parsePacket(in[pos:], pos)
		if err != nil {
			return nil, err
		}
		if !p.pusi || !p.hasPayld {
			continue
		}
		switch {
		case p.pid == 0 && seg.PMTPID == nullPID:
			sec, err := section(p.payload)
			if err != nil {
				return nil, err
			}
			// PAT: 8-byte header, then 4-byte entries, then the CRC.
			for e := 8; e+4 <= len(sec)-4; e += 4 {
				if prog := uint16(sec[e])<<8 | uint16(sec[e+1]); prog != 0 {
					seg.PMTPID = uint16(sec[e+2]&0x1f)<<8 | uint16(sec[e+3])
					break
				}
			}
		case p.pid == seg.PMTPID && seg.Streams == nil:
			sec, err := section(p.payload)
			if err != nil {
				return nil, err
			}
			if err := seg.readPMT(sec); err != nil {
				return nil, err
			}
		}
	}
	if seg.Streams == nil {
		return nil, inputErr("no PAT and PMT")
	}
	// Second pass: the PES.
	seen := map[uint16]bool{}
	open := map[uint16][]byte{}  // PES being assembled
	where := map[uint16]*inPES{} // and its packets
	firstPCR := int64(-1)
	for pos := 0; pos < len(in); pos += PacketSize {
		p, _ := parsePacket(in[pos:], pos)
		st := seg.Stream(p.pid)
		if st == nil {
			if p.pid != nullPID && p.pusi && !seen[p.pid] {
				seen[p.pid] = true
				seg.PSI = append(seg.PSI, p.raw)
			}
			continue
		}
		if p.hasPCR && p.pid == seg.PCRPID && firstPCR < 0 {
			firstPCR = p.pcr
		}
		if !p.hasPayld {
			continue
		}
		if p.pusi {
			if buf, ok := open[p.pid]; ok {
				if err := seg.readPES(st, buf, *where[p.pid]); err != nil {
					return nil, err
				}
			}
			open[p.pid] = append([]byte(nil), p.payload...)
			where[p.pid] = &inPES{firstPkt: pos / PacketSize, lastPkt: pos / PacketSize}
		} else if buf, ok := open[p.pid]; ok {
			open[p.pid] = append(buf, p.payload...)
			where[p.pid].lastPkt = pos / PacketSize
		}
	}
	for _, st := range seg.Streams {
		if buf, ok := open[st.PID]; ok {
			if err := seg.readPES(st, buf, *where[st.PID]); err != nil {
				return nil, err
			}
		}
	}
	seg.PCRDelay = 63000
	if st := seg.Stream(seg.PCRPID); firstPCR >= 0 && len(st.AUs) > 0 {
		if d := unwrap(st.AUs[0].DTS, firstPCR) - firstPCR; d >= 0 && d < 10*90000 {
			seg.PCRDelay = d
		}
	}
	return seg, nil
}

// section returns the PSI section at the start of a payload (pointer field first), which
// must fit in the packet.
func section(payload []byte) ([]byte, error) {
	if len(payload) < 1 || 1+int(payload[0])+3 > len(payload) {
		return nil, inputErr("bad pointer field")
	}
	s := payload[1+int(payload[0]):]
	n := 3 + (int(s[1]&0x0f)<<8 | int(s[2]))
	if n > len(s) || n < 12 {
		return nil, inputErr("a PSI section that does not fit in one packet")
	}
	return s[:n], nil
}

func (seg *Segment) readPMT(sec []byte) error {
	if sec[0] != 0x02 {
		return inputErr("PMT table id %#x", sec[0])
	}
	seg.PCRPID = uint16(sec[8]&0x1f)<<8 | uint16(sec[9])
	e := 12 + (int(sec[10]&0x0f)<<8 | int(sec[11]))
	seg.Streams = []*Stream{}
	for e+5 <= len(sec)-4 {
		typ, pid := sec[e], uint16(sec[e+1]&0x1f)<<8|uint16(sec[e+2])
		st := &Stream{PID: pid, StreamType: typ}
		switch typ {
		case TypeH264, TypeHEVC:
			st.Video = true
		case TypeAAC:
		default:
			return inputErr("stream type %#x on PID %#x", typ, pid)
		}
		seg.Streams = append(seg.Streams, st)
		e += 5 + (int(sec[e+3]&0x0f)<<8 | int(sec[e+4]))
	}
	if seg.Stream(seg.PCRPID) == nil {
		return inputErr("PCR PID %#x carries no elementary stream", seg.PCRPID)
	}
	return nil
}

// readPES adds one input PES to its stream.
func (seg *Segment) readPES(st *Stream, pes []byte, at inPES) error {
	if len(pes) < 9 || pes[0] != 0 || pes[1] != 0 || pes[2] != 1 {
		return inputErr("PID %#x: PES without start code", st.PID)
	}
	if st.StreamID == 0 {
		st.StreamID = pes[3]
	}
	flags, hdl := pes[7]>>6, int(pes[8])
	if 9+hdl > len(pes) || flags&2 == 0 || (flags == 3 && hdl < 10) || hdl < 5 {
		return inputErr("PID %#x: PES without PTS (the input must have aligned PES)", st.PID)
	}
	pts := readTS(pes[9:])
	dts := pts
	if flags == 3 {
		dts = readTS(pes[14:])
	}
	payload := pes[9+hdl:]
	if l := int(pes[4])<<8 | int(pes[5]); l != 0 {
		if 6+l > len(pes) {
			return inputErr("PID %#x: PES shorter than its PES_packet_length", st.PID)
		}
		payload = pes[9+hdl : 6+l]
	}
	base := len(st.ES)
	at.esStart, at.esEnd = base, base+len(payload)
	st.pes = append(st.pes, at)
	if st.Video {
		if !startCode(payload) {
			return inputErr("PID %#x: video PES at DTS %d does not start with a start code (the input must have aligned PES)", st.PID, dts)
		}
		st.AUs = append(st.AUs, AU{Off: base, PTS: pts, DTS: dts, HasDTS: dts != pts})
		st.ES = append(st.ES, payload...)
		return nil
	}
	for k, i := 0, 0; i < len(payload); k++ {
		h, err := adts(payload[i:])
		if err != nil {
			return fmt.Errorf("PID %#x: PES at PTS %d, frame %d: %w", st.PID, pts, k, err)
		}
		if st.SampleRate == 0 {
			st.SampleRate = h.rate
		}
		t := (pts + int64(k)*int64(h.samples)*90000/int64(h.rate)) & (1<<33 - 1)
		st.AUs = append(st.AUs, AU{Off: base + i, PTS: t, DTS: t})
		i += h.length
	}
	st.ES = append(st.ES, payload...)
	return nil
}

func startCode(b []byte) bool {
	return len(b) >= 4 && b[0] == 0 && b[1] == 0 && (b[2] == 1 || b[2] == 0 && b[3] == 1)
}

type adtsHeader struct{ length, rate, samples int }

var adtsRates = []int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// adts reads the ADTS header at the start of b; the whole frame must be in b.
func adts(b []byte) (adtsHeader, error) {
	if len(b) < 7 || b[0] != 0xff || b[1]&0xf6 != 0xf0 {
		return adtsHeader{}, inputErr("no ADTS header (the input must have aligned PES)")
	}
	idx := int(b[2] >> 2 & 0x0f)
	if idx >= len(adtsRates) {
		return adtsHeader{}, inputErr("ADTS sampling frequency index %d", idx)
	}
	h := adtsHeader{
		length:  int(b[3]&3)<<11 | int(b[4])<<3 | int(b[5])>>5,
		rate:    adtsRates[idx],
		samples: 1024 * (int(b[6]&3) + 1),
	}
	if h.length < 7 || h.length > len(b) {
		return adtsHeader{}, inputErr("ADTS frame of %d bytes in %d", h.length, len(b))
	}
	return h, nil
}

func readTS(b []byte) int64 {
	return int64(b[0]>>1&7)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1)
}

func putTS(b []byte, prefix byte, t int64) {
	b[0] = prefix<<4 | byte(t>>30&7)<<1 | 1
	b[1] = byte(t >> 22)
	b[2] = byte(t>>15&0x7f)<<1 | 1
	b[3] = byte(t >> 7)
	b[4] = byte(t&0x7f)<<1 | 1
}

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

// unwrap places a 33-bit time next to ref.
func unwrap(t, ref int64) int64 {
	const wrap = 1 << 33
	switch {
	case t-ref > wrap/2:
		return t - wrap
	case ref-t > wrap/2:
		return t + wrap
	}
	return t
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
