package tsrecut

import "fmt"

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
