package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// opusMaxSamples is 120 ms at 48 kHz, the longest an Opus packet may last.
const opusMaxSamples = 5760

// opusFrameSamples is the frame duration at 48 kHz of a TOC byte's config (RFC 6716
// 3.1, Table 2): SILK 10/20/40/60 ms, hybrid 10/20 ms, CELT 2.5/5/10/20 ms.
func opusFrameSamples(toc byte) int {
	config := toc >> 3
	switch {
	case config < 12:
		return [4]int{480, 960, 1920, 2880}[config&3]
	case config < 16:
		return [2]int{480, 960}[config&1]
	}
	return [4]int{120, 240, 480, 960}[config&3]
}

// opusFrameLen reads a frame length (RFC 6716 3.2.1): one byte below 252, else two.
func opusFrameLen(p []byte) (n, used int, ok bool) {
	if len(p) < 1 {
		return 0, 0, false
	}
	if p[0] < 252 {
		return int(p[0]), 1, true
	}
	if len(p) < 2 {
		return 0, 0, false
	}
	return int(p[1])*4 + int(p[0]), 2, true
}

const opusMaxFrame = 1275 // bytes

// OpusPacketSamples is the duration at 48 kHz of one Opus packet, from its TOC byte
// and frame count (RFC 6716 3.1; code 3 has a frame count byte). It checks the
// packet's framing as a decoder would (3.4, R1–R7: frame lengths and padding fit in
// the packet) and fails for a malformed packet or one lasting over 120 ms.
func OpusPacketSamples(packet []byte) (int, error) {
	if len(packet) == 0 {
		return 0, errors.New("codec: empty Opus packet")
	}
	frame := opusFrameSamples(packet[0])
	p := packet[1:]
	count := 1
	switch packet[0] & 3 {
	case 0:
		if len(p) > opusMaxFrame {
			return 0, fmt.Errorf("codec: Opus frame of %d bytes, over 1275", len(p))
		}
	case 1: // two frames of the same size
		if len(p)%2 != 0 || len(p)/2 > opusMaxFrame {
			return 0, fmt.Errorf("codec: Opus packet of two equal frames has %d bytes", len(p))
		}
		count = 2
	case 2: // two frames, the first one's length coded
		n, used, ok := opusFrameLen(p)
		if !ok || n > len(p)-used || len(p)-used-n > opusMaxFrame {
			return 0, errors.New("codec: Opus packet of two frames with a bad first frame length")
		}
		count = 2
	case 3:
		if len(p) == 0 {
			return 0, errors.New("codec: Opus packet without its frame count byte")
		}
		count = int(p[0] & 0x3f)
		if count == 0 {
			return 0, errors.New("codec: Opus packet of 0 frames")
		}
		if count*frame > opusMaxSamples {
			break // the duration check below says so
		}
		if err := opusCode3(p, count); err != nil {
			return 0, err
		}
	}
	if n := count * frame; n > opusMaxSamples {
		return 0, fmt.Errorf("codec: Opus packet of %d samples, over 120 ms", n)
	}
	return count * frame, nil
}

// opusCode3 checks a code 3 packet's padding and frame lengths (R6, R7); p starts at
// the frame count byte.
func opusCode3(p []byte, count int) error {
	vbr, padded := p[0]&0x80 != 0, p[0]&0x40 != 0
	p = p[1:]
	pad := 0
	for padded {
		if len(p) == 0 {
			return errors.New("codec: Opus padding length cut")
		}
		v := int(p[0])
		p = p[1:]
		if v == 255 {
			pad += 254
		} else {
			pad += v
			padded = false
		}
	}
	if pad > len(p) {
		return errors.New("codec: Opus padding longer than the packet")
	}
	p = p[:len(p)-pad]
	if !vbr {
		if len(p)%count != 0 || len(p)/count > opusMaxFrame {
			return fmt.Errorf("codec: Opus CBR packet of %d bytes for %d frames", len(p), count)
		}
		return nil
	}
	total := 0
	for i := 0; i < count-1; i++ {
		n, used, ok := opusFrameLen(p)
		if !ok {
			return errors.New("codec: Opus frame length cut")
		}
		p = p[used:]
		total += n
	}
	if total > len(p) || len(p)-total > opusMaxFrame {
		return errors.New("codec: Opus VBR frame lengths do not fit the packet")
	}
	return nil
}

// OpusTSHeader is the control header that prefixes every Opus access unit in MPEG-TS
// (the Opus project's draft ETSI spec "Opus in MPEG-2 TS", v0.1.3): an 11-bit
// prefix 0x3ff, start_trim_flag, end_trim_flag, control_extension_flag, 2 reserved
// bits, au_size as 0xFF bytes plus a final byte, then when flagged a 16-bit start
// trim and end trim (3 reserved bits, 13 bits of samples) and a control extension
// (length byte and bytes).
type OpusTSHeader struct {
	Len    int // bytes of the control header
	AUSize int // bytes of the Opus packet that follows
	// StartTrim is the number of samples at 48 kHz to drop from the start (0 when
	// absent). A muxer puts the encoder's pre-skip there, on the first access unit:
	// ffmpeg's TS muxer does, and its demuxer drops it (an MP4 made by ffmpeg from such a
	// TS has PreSkip 0); hand it to OpusTSConfig.
	StartTrim int
	EndTrim   int // samples at 48 kHz to drop from the end (0 when absent)
}

// ParseOpusTSHeader reads a control header at b. need is true when b is too short to
// tell (more bytes may make it valid); ok false with need false means b does not
// start with one.
func ParseOpusTSHeader(b []byte) (h OpusTSHeader, ok, need bool) {
	if len(b) < 2 {
		return OpusTSHeader{}, false, len(b) == 0 || b[0] == 0x7f
	}
	if b[0] != 0x7f || b[1]&0xe0 != 0xe0 {
		return OpusTSHeader{}, false, false
	}
	startTrim, endTrim, ext := b[1]&0x10 != 0, b[1]&0x08 != 0, b[1]&0x04 != 0
	pos := 2
	for {
		if pos >= len(b) {
			return OpusTSHeader{}, false, true
		}
		v := b[pos]
		pos++
		h.AUSize += int(v)
		if v != 0xff {
			break
		}
	}
	trim := func() (int, bool) {
		if pos+2 > len(b) {
			return 0, false
		}
		v := int(binary.BigEndian.Uint16(b[pos:]) & 0x1fff)
		pos += 2
		return v, true
	}
	if startTrim {
		if h.StartTrim, ok = trim(); !ok {
			return OpusTSHeader{}, false, true
		}
	}
	if endTrim {
		if h.EndTrim, ok = trim(); !ok {
			return OpusTSHeader{}, false, true
		}
	}
	if ext {
		if pos >= len(b) || pos+1+int(b[pos]) > len(b) {
			return OpusTSHeader{}, false, true
		}
		pos += 1 + int(b[pos])
	}
	h.Len = pos
	return h, true, false
}
