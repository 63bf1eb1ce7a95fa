package ts

import (
	"fmt"

	"github.com/stream-downloads/caddy-stream-downloads/internal/mpegcrc"
)

// PAT and PMT, read by hand: mediacommon's mpegts.Reader finds tracks only once every
// declared elementary stream has sent a PES (a PMT that lists an audio PID that never
// carries a packet ends in "no PMT found"), and it reads them through go-astits, whose
// PES accumulation is quadratic (see pes.go). Sections are small, so this is short.

// psiSection re-assembles the PSI sections of one PID (a PAT or PMT may span packets).
type psiSection struct {
	buf  []byte
	need int // total section length once known (3 + section_length)
}

// write adds the payload of one packet; it returns a complete section (table_id first)
// when there is one.
func (s *psiSection) write(payload []byte, pusi bool) []byte {
	if pusi {
		if len(payload) == 0 {
			return nil
		}
		ptr := int(payload[0])
		if 1+ptr > len(payload) {
			s.buf = s.buf[:0]
			return nil
		}
		s.buf = append(s.buf[:0], payload[1+ptr:]...)
		s.need = 0
	} else {
		if len(s.buf) == 0 {
			return nil // a continuation without a start
		}
		s.buf = append(s.buf, payload...)
	}
	if s.need == 0 && len(s.buf) >= 3 {
		s.need = 3 + (int(s.buf[1]&0x0f)<<8 | int(s.buf[2]))
	}
	if s.need == 0 || len(s.buf) < s.need {
		return nil
	}
	sec := s.buf[:s.need]
	s.buf = s.buf[:0]
	if s.need < 12 || mpegcrc.Sum(sec) != 0 {
		return nil // too short for a PAT/PMT, or damaged: wait for the next copy
	}
	return sec
}

// parsePAT returns the PMT PID of the first program of a PAT section.
func parsePAT(sec []byte) (uint16, bool) {
	if sec[0] != 0x00 {
		return 0, false
	}
	for b := sec[8 : len(sec)-4]; len(b) >= 4; b = b[4:] {
		if prog := uint16(b[0])<<8 | uint16(b[1]); prog != 0 { // 0: the network PID
			return uint16(b[2]&0x1f)<<8 | uint16(b[3]), true
		}
	}
	return 0, false
}

// esInfo is one elementary stream of a PMT.
type esInfo struct {
	pid        uint16
	streamType uint8
	desc       []byte // the ES descriptors (tag, length, data)*
}

// parsePMT returns the elementary streams of a PMT section.
func parsePMT(sec []byte) ([]esInfo, bool) {
	if sec[0] != 0x02 {
		return nil, false
	}
	progInfo := int(sec[10]&0x0f)<<8 | int(sec[11])
	b := sec[min(12+progInfo, len(sec)-4) : len(sec)-4]
	var out []esInfo
	for len(b) >= 5 {
		n := int(b[3]&0x0f)<<8 | int(b[4])
		if 5+n > len(b) {
			return nil, false
		}
		out = append(out, esInfo{pid: uint16(b[1]&0x1f)<<8 | uint16(b[2]), streamType: b[0], desc: b[5 : 5+n]})
		b = b[5+n:]
	}
	return out, true
}

// descriptor returns the data of the first descriptor of tag in d.
func descriptor(d []byte, tag byte) ([]byte, bool) {
	for len(d) >= 2 {
		n := int(d[1])
		if 2+n > len(d) {
			return nil, false
		}
		if d[0] == tag {
			return d[2 : 2+n], true
		}
		d = d[2+n:]
	}
	return nil, false
}

// extension reports whether d has a DVB extension descriptor (tag 0x7f) of ext.
func extension(d []byte, ext byte) bool {
	for len(d) >= 2 {
		n := int(d[1])
		if 2+n > len(d) {
			return false
		}
		if d[0] == 0x7f && n >= 1 && d[2] == ext {
			return true
		}
		d = d[2+n:]
	}
	return false
}

// registration is the format_identifier of a registration descriptor (tag 5), if any.
func registration(d []byte) string {
	if r, ok := descriptor(d, 0x05); ok && len(r) >= 4 {
		return string(r[:4])
	}
	return ""
}

// streamKind says what the demuxer makes of an elementary stream of the PMT.
type streamKind int

const (
	kindIgnored    streamKind = iota // metadata, subtitles, private data: not media
	kindH264                         // read
	kindH265                         // read
	kindAAC                          // read (ADTS)
	kindAC3                          // read: AC-3 or E-AC-3 syncframes (the frames say which)
	kindMPEGAudio                    // read: MPEG-1/2 audio layers I-III
	kindOpus                         // read: Opus with its TS control headers
	kindVideoOther                   // video in a codec we cannot package
	kindAudioOther                   // audio in a codec we cannot package
)

// audio says whether the stream is audio the demuxer reads.
func (k streamKind) audio() bool {
	return k == kindAAC || k == kindAC3 || k == kindMPEGAudio || k == kindOpus
}

// classify names the stream and says what the demuxer makes of it. Private data streams
// (stream type 0x06) are identified by their descriptors, as DVB and others signal AC-3,
// E-AC-3 and Opus; what is not recognised as audio or video there is ignored (timed ID3,
// subtitles, KLV).
func classify(es esInfo) (streamKind, string) {
	switch es.streamType {
	case 0x1b:
		return kindH264, "H.264 video"
	case 0x24:
		return kindH265, "H.265/HEVC video"
	case 0x0f:
		return kindAAC, "AAC audio"
	case 0x01:
		return kindVideoOther, "MPEG-1 video"
	case 0x02:
		return kindVideoOther, "MPEG-2 video"
	case 0x10:
		return kindVideoOther, "MPEG-4 Part 2 video"
	case 0x42:
		return kindVideoOther, "AVS video"
	case 0xd1:
		return kindVideoOther, "Dirac video"
	case 0xea:
		return kindVideoOther, "VC-1 video"
	case 0x03:
		return kindMPEGAudio, "MPEG-1 audio (MP3/MP2)"
	case 0x04:
		return kindMPEGAudio, "MPEG-2 audio (MP3/MP2)"
	case 0x11:
		return kindAudioOther, "AAC in LATM"
	case 0x1c:
		return kindAudioOther, "MPEG-4 audio"
	case 0x80:
		return kindAudioOther, "LPCM audio"
	case 0x81:
		return kindAC3, "AC-3 (Dolby Digital) audio"
	case 0x82, 0x85, 0x86, 0x8a:
		return kindAudioOther, "DTS audio"
	case 0x83:
		return kindAudioOther, "Dolby TrueHD audio"
	case 0x84, 0x87:
		return kindAC3, "E-AC-3 (Dolby Digital Plus) audio"
	case 0x06:
		_, ac3 := descriptor(es.desc, 0x6a)
		_, eac3 := descriptor(es.desc, 0x7a)
		_, dts := descriptor(es.desc, 0x7b)
		switch reg := registration(es.desc); {
		case ac3 || reg == "AC-3":
			return kindAC3, "AC-3 (Dolby Digital) audio"
		case eac3 || reg == "EAC3":
			return kindAC3, "E-AC-3 (Dolby Digital Plus) audio"
		case dts || reg == "DTS1" || reg == "DTS2" || reg == "DTS3":
			return kindAudioOther, "DTS audio"
		case reg == "Opus":
			return kindOpus, "Opus audio"
		case extension(es.desc, 0x15): // DVB AC-4 descriptor
			return kindAudioOther, "AC-4 audio"
		}
	}
	return kindIgnored, fmt.Sprintf("stream type 0x%02x", es.streamType)
}

// psi handles a packet of the PAT or of the PMT.
func (r *pesReader) psi(p []byte, pid uint16) error {
	if p[1]&0x80 != 0 {
		return nil
	}
	payload, ok := packetPayload(p)
	if !ok {
		return nil
	}
	pusi := p[1]&0x40 != 0
	r.countPSI(min(int(pid), 1), p[3]&0x0f)
	if pid == 0 {
		if sec := r.pat.write(payload, pusi); sec != nil {
			if pmt, ok := parsePAT(sec); ok && (!r.havePAT || pmt != r.pmtPID) {
				r.pmtPID, r.havePAT = pmt, true
				r.pmt = psiSection{}
			}
		}
		return nil
	}
	sec := r.pmt.write(payload, pusi)
	if sec == nil || string(sec) == string(r.lastPMT) {
		return nil
	}
	es, ok := parsePMT(sec)
	if !ok {
		return nil
	}
	r.lastPMT = append(r.lastPMT[:0], sec...)
	return r.onPMT(es)
}

// psiCC follows the continuity counter of the PAT or of the PMT across segments.
type psiCC struct {
	seen    bool
	last    uint8
	fresh   bool // no packet of it in the current segment yet
	carried bool // its first packet in the current segment went on from the segment before
}

// countPSI takes the continuity counter of a PAT (i 0) or PMT (i 1) packet.
func (r *pesReader) countPSI(i int, cc uint8) {
	c := &r.psiCC[i]
	if c.fresh {
		c.fresh = false
		c.carried = c.seen && cc == (c.last+1)&0x0f && cc != 0
	}
	c.seen, c.last = true, cc
}

// countersCarried reports whether the segment's first PAT and PMT packets went on from
// the segment before's: the packager keeps the counters across segments.
func (r *pesReader) countersCarried() bool { return r.psiCC[0].carried && r.psiCC[1].carried }
