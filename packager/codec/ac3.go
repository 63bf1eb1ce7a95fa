package codec

import (
	"errors"
	"fmt"
)

// AC3MinHeader is how many bytes AC3FrameLen needs: the sync word and the fields up to
// bsid, which tells AC-3 from E-AC-3.
const AC3MinHeader = 6

// AC3Header is what one syncframe's header (syncinfo + bsi) says.
type AC3Header struct {
	EAC3       bool // bsid 11..16 (E-AC-3); AC-3 is bsid <= 8
	FrameSize  int  // bytes, the whole syncframe
	SampleRate int  // Hz (E-AC-3 fscod2 reduced rates included)
	// Samples is the number of PCM samples per channel in this syncframe: 1536 for
	// AC-3, 256 per audio block for E-AC-3 (1, 2, 3 or 6 blocks).
	Samples  int
	Channels int // channels of this (sub)stream including LFE
	// BitRate is the syncframe's bit rate in bit/s: AC-3's nominal rate, E-AC-3's
	// FrameSize*8 over its duration (what ffmpeg takes for dec3's data_rate).
	BitRate int
	// Fscod is the sample rate code: 0 48 kHz, 1 44.1 kHz, 2 32 kHz; 3 for E-AC-3's
	// reduced rates (half of those, chosen by fscod2).
	Fscod uint8
	Bsid  uint8
	// Bsmod is the bitstream mode (main, commentary, ...); E-AC-3 carries it only in
	// its informational metadata, 0 without.
	Bsmod uint8
	Acmod uint8 // audio coding mode: 0 1+1, 1 1/0, 2 2/0, 3 3/0, 4 2/1, 5 3/1, 6 2/2, 7 3/2
	LFE   bool
	// BitRateCode is AC-3's frmsizecod >> 1, the dac3 bit_rate_code.
	BitRateCode uint8
	// StreamType is E-AC-3's strmtyp: 0 independent, 1 dependent, 2 independent
	// converted from AC-3. 0 for AC-3.
	StreamType  uint8
	SubstreamID uint8  // E-AC-3 substreamid
	ChanMap     uint16 // E-AC-3 chanmap of a dependent substream (valid when HasChanMap); bit 15 is L
	HasChanMap  bool
	// JOC is flag_ec3_extension_type_a from the E-AC-3 addbsi (Dolby Atmos, joint
	// object coding), ComplexityIndex its complexity_index_type_a (ETSI TS 103 420).
	JOC             bool
	ComplexityIndex uint8
}

var (
	ac3Rates      = [3]int{48000, 44100, 32000}
	ac3Bitrates   = [19]int{32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640}
	acmodChannels = [8]int{2, 1, 2, 3, 3, 4, 4, 5}
	eac3Blocks    = [4]int{1, 2, 3, 6}
)

// ac3FrameBytes is the AC-3 syncframe length for fscod < 3 and frmsizecod <= 37
// (TS 102 366 Table 4.13): 44.1 kHz frames are not a whole number of words, so
// odd codes add the padding word.
func ac3FrameBytes(fscod, frmsizecod uint8) int {
	kbps := ac3Bitrates[frmsizecod>>1]
	switch fscod {
	case 0:
		return kbps * 4
	case 1:
		return (kbps*1000*1536/44100/16 + int(frmsizecod&1)) * 2
	}
	return kbps * 6
}

// eac3MinFrame is the smallest E-AC-3 syncframe we take: sync word, the bsi fields
// up to bsid, and crc2.
const eac3MinFrame = 8

// AC3FrameLen returns the length in bytes of the AC-3 or E-AC-3 syncframe that starts
// at b (sync word 0x0B77), reading only its first AC3MinHeader bytes, or false when b
// does not start a valid syncframe header: bad sync word, reserved fscod, frmsizecod,
// strmtyp or fscod2, or a bsid that is neither AC-3 (0..8) nor E-AC-3 (11..16). The
// AC-3 variants with bsid 9 and 10 (half and quarter rate) are not taken.
func AC3FrameLen(b []byte) (int, bool) {
	if len(b) < AC3MinHeader || b[0] != 0x0B || b[1] != 0x77 {
		return 0, false
	}
	bsid := b[5] >> 3
	switch {
	case bsid <= 8:
		fscod, frmsizecod := b[4]>>6, b[4]&0x3f
		if fscod == 3 || frmsizecod > 37 {
			return 0, false
		}
		return ac3FrameBytes(fscod, frmsizecod), true
	case bsid >= 11 && bsid <= 16:
		if b[2]>>6 == 3 || b[4]>>4 == 0xf { // strmtyp 3; fscod 3 with fscod2 3
			return 0, false
		}
		n := (int(b[2]&7)<<8 | int(b[3])) + 1
		if n*2 < eac3MinFrame {
			return 0, false
		}
		return n * 2, true
	}
	return 0, false
}

// ParseAC3 parses the header of a whole syncframe (len(frame) must be its length): for
// E-AC-3 the whole bsi() is walked, through mixing and informational metadata, to reach
// addbsi and its JOC flag. It checks the frame's CRC first (AC-3: crc1 over the first
// 5/8 and crc2 over the rest; E-AC-3: crc2 over the whole frame) and fails on a mismatch
// with an error saying so.
func ParseAC3(frame []byte) (AC3Header, error) {
	n, ok := AC3FrameLen(frame)
	if !ok {
		return AC3Header{}, errors.New("codec: not an AC-3 or E-AC-3 syncframe header")
	}
	if n != len(frame) {
		return AC3Header{}, fmt.Errorf("codec: AC-3 syncframe of %d bytes, its header says %d", len(frame), n)
	}
	if err := ac3CheckCRC(frame); err != nil {
		return AC3Header{}, err
	}
	r := &bitReader{b: frame}
	r.skip(16) // sync word
	h := AC3Header{FrameSize: n}
	if frame[5]>>3 <= 8 {
		parseAC3BSI(r, &h)
	} else {
		parseEAC3BSI(r, &h)
	}
	if r.over || r.left() < 16 { // crc2 ends every syncframe
		return AC3Header{}, errors.New("codec: AC-3 bsi runs past the end of its syncframe")
	}
	h.Channels = acmodChannels[h.Acmod]
	if h.LFE {
		h.Channels++
	}
	return h, nil
}

// parseAC3BSI reads syncinfo after the sync word and bsi() up to lfeon, all a
// sample entry needs.
func parseAC3BSI(r *bitReader, h *AC3Header) {
	r.skip(16) // crc1
	h.Fscod = uint8(r.u(2))
	frmsizecod := uint8(r.u(6))
	h.Bsid = uint8(r.u(5))
	h.Bsmod = uint8(r.u(3))
	h.Acmod = uint8(r.u(3))
	if h.Acmod&1 != 0 && h.Acmod != 1 {
		r.skip(2) // cmixlev
	}
	if h.Acmod&4 != 0 {
		r.skip(2) // surmixlev
	}
	if h.Acmod == 2 {
		r.skip(2) // dsurmod
	}
	h.LFE = r.flag()
	h.SampleRate = ac3Rates[h.Fscod]
	h.Samples = 1536
	h.BitRateCode = frmsizecod >> 1
	h.BitRate = ac3Bitrates[h.BitRateCode] * 1000
}

// parseEAC3BSI reads the whole E-AC-3 bsi() (TS 102 366 E.1.2.2).
func parseEAC3BSI(r *bitReader, h *AC3Header) {
	h.EAC3 = true
	h.StreamType = uint8(r.u(2))
	h.SubstreamID = uint8(r.u(3))
	r.skip(11) // frmsiz, already in FrameSize
	h.Fscod = uint8(r.u(2))
	numblkscod := uint32(3)
	if h.Fscod == 3 {
		h.SampleRate = ac3Rates[r.u(2)] / 2
	} else {
		numblkscod = r.u(2)
		h.SampleRate = ac3Rates[h.Fscod]
	}
	blocks := eac3Blocks[numblkscod]
	h.Samples = 256 * blocks
	h.BitRate = h.FrameSize * 8 * h.SampleRate / h.Samples
	h.Acmod = uint8(r.u(3))
	h.LFE = r.flag()
	h.Bsid = uint8(r.u(5))
	acmod, strmtyp := h.Acmod, h.StreamType
	dual := acmod == 0 // 1+1: a second dialnorm, compr, paninfo, ...
	r.skip(5)          // dialnorm
	skipIf(r, 8)       // compre, compr
	if dual {
		r.skip(5) // dialnorm2
		skipIf(r, 8)
	}
	if strmtyp == 1 && r.flag() {
		h.ChanMap = uint16(r.u(16))
		h.HasChanMap = true
	}
	if r.flag() { // mixmdate
		if acmod > 2 {
			r.skip(2) // dmixmod
		}
		if acmod&1 != 0 && acmod > 2 {
			r.skip(6) // ltrtcmixlev, lorocmixlev
		}
		if acmod&4 != 0 {
			r.skip(6) // ltrtsurmixlev, lorosurmixlev
		}
		if h.LFE {
			skipIf(r, 5) // lfemixlevcode
		}
		if strmtyp == 0 {
			skipIf(r, 6) // pgmscl
			if dual {
				skipIf(r, 6) // pgmscl2
			}
			skipIf(r, 6) // extpgmscl
			switch mixdef := r.u(2); mixdef {
			case 1:
				r.skip(5)
			case 2:
				r.skip(12)
			case 3:
				r.skip(int(r.u(5)+2) * 8) // mixdeflen, mixdata
			}
			if acmod < 2 {
				skipIf(r, 14) // panmean, paninfo
				if dual {
					skipIf(r, 14)
				}
			}
			if r.flag() { // frmmixcfginfoe
				if blocks == 1 {
					r.skip(5)
				} else {
					for i := 0; i < blocks; i++ {
						skipIf(r, 5)
					}
				}
			}
		}
	}
	if r.flag() { // infomdate
		h.Bsmod = uint8(r.u(3))
		r.skip(2) // copyrightb, origbs
		if acmod == 2 {
			r.skip(4) // dsurmod, dheadphonmod
		}
		if acmod >= 6 {
			r.skip(2) // dsurexmod
		}
		skipIf(r, 8) // mixlevel, roomtyp, adconvtyp
		if dual {
			skipIf(r, 8)
		}
		if h.Fscod < 3 {
			r.skip(1) // sourcefscod
		}
	}
	if strmtyp == 0 && numblkscod != 3 {
		r.skip(1) // convsync
	}
	if strmtyp == 2 && (numblkscod == 3 || r.flag()) { // blkid
		r.skip(6) // frmsizecod
	}
	if r.flag() { // addbsie
		n := int(r.u(6)) + 1
		// TS 103 420 8.3: the first addbsi byte ends with flag_ec3_extension_type_a,
		// the next is complexity_index_type_a.
		first := r.u(8)
		h.JOC = first&1 == 1
		if n > 1 && h.JOC {
			h.ComplexityIndex = uint8(r.u(8))
			n--
		}
		r.skip((n - 1) * 8)
	}
}

// skipIf reads a presence flag and skips n bits when it is set.
func skipIf(r *bitReader, n int) {
	if r.flag() {
		r.skip(n)
	}
}

// ac3CRCTable is CRC-16 with x^16 + x^15 + x^2 + 1, most significant bit first.
var ac3CRCTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for j := 0; j < 8; j++ {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x8005
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// ac3CRC is the CRC of b with the initial value 0: a block ending in its own CRC word
// (crc1 is computed so the block it covers checks the same way) gives 0.
func ac3CRC(b []byte) uint16 {
	var c uint16
	for _, x := range b {
		c = c<<8 ^ ac3CRCTable[byte(c>>8)^x]
	}
	return c
}

func ac3CheckCRC(frame []byte) error {
	if frame[5]>>3 <= 8 {
		words := len(frame) / 2
		end58 := (words>>1 + words>>3) * 2 // 5/8 of the frame, in whole words
		if ac3CRC(frame[2:end58]) != 0 {
			return errors.New("codec: AC-3 crc1 mismatch (first 5/8 of the syncframe corrupt)")
		}
		if ac3CRC(frame[end58:]) != 0 {
			return errors.New("codec: AC-3 crc2 mismatch (syncframe corrupt)")
		}
		return nil
	}
	if ac3CRC(frame[2:]) != 0 {
		return errors.New("codec: E-AC-3 crc2 mismatch (syncframe corrupt)")
	}
	return nil
}
