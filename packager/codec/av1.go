package codec

import (
	"errors"
	"fmt"
)

// AV1Config is what an av1C payload (AV1CodecConfigurationRecord, AV1-ISOBMFF 2.3)
// says, with the frame size of the sequence header OBU among its configOBUs.
type AV1Config struct {
	Profile  int // seq_profile: 0 Main, 1 High, 2 Professional
	Level    int // seq_level_idx_0: 0 is level 2.0, 31 no level constraint
	Tier     int // seq_tier_0
	BitDepth int // 8, 10 or 12
	// Monochrome and the chroma subsampling: x and y 1 for 4:2:0, x 1 for 4:2:2,
	// both 0 for 4:4:4.
	Monochrome         bool
	ChromaSubsamplingX int
	ChromaSubsamplingY int
	// Width and Height are max_frame_width/height of the sequence header OBU in
	// configOBUs; 0 when there is none.
	Width, Height int
}

// obuSequenceHeader is the OBU type of a sequence header (AV1 6.2.2).
const obuSequenceHeader = 1

// ParseAV1C checks an av1C payload (marker 1, version 1, reserved bits) and reads what
// it says: profile, level, tier, bit depth, chroma and, when configOBUs holds a
// sequence header OBU, its max_frame_width/height. Error for a malformed payload,
// including configOBUs that are not whole OBUs or a sequence header cut short.
func ParseAV1C(p []byte) (AV1Config, error) {
	if len(p) < 4 {
		return AV1Config{}, fmt.Errorf("codec: av1C of %d bytes, want at least 4", len(p))
	}
	if p[0] != 0x81 {
		return AV1Config{}, fmt.Errorf("codec: av1C starts with %#02x, want marker 1 and version 1", p[0])
	}
	c := AV1Config{
		Profile:            int(p[1] >> 5),
		Level:              int(p[1] & 0x1f),
		Tier:               int(p[2] >> 7),
		Monochrome:         p[2]&0x10 != 0,
		ChromaSubsamplingX: int(p[2]>>3) & 1,
		ChromaSubsamplingY: int(p[2]>>2) & 1,
		BitDepth:           8,
	}
	if c.Profile > 2 {
		return AV1Config{}, fmt.Errorf("codec: av1C has the reserved seq_profile %d", c.Profile)
	}
	if p[2]&0x40 != 0 { // high_bitdepth
		c.BitDepth = 10
		if c.Profile == 2 && p[2]&0x20 != 0 { // twelve_bit
			c.BitDepth = 12
		}
	}
	for obus := p[4:]; len(obus) > 0; {
		typ, payload, rest, err := nextOBU(obus)
		if err != nil {
			return AV1Config{}, err
		}
		obus = rest
		if typ == obuSequenceHeader && c.Width == 0 {
			if c.Width, c.Height, err = av1FrameSize(payload); err != nil {
				return AV1Config{}, err
			}
		}
	}
	return c, nil
}

// nextOBU splits the first OBU off b (AV1 5.3): its type, its payload and what
// follows. An OBU without obu_size runs to the end of b.
func nextOBU(b []byte) (typ int, payload, rest []byte, err error) {
	h := b[0]
	if h&0x80 != 0 {
		return 0, nil, nil, errors.New("codec: OBU with obu_forbidden_bit set")
	}
	typ = int(h>>3) & 0xf
	n := 1
	if h&0x04 != 0 { // obu_extension_flag
		n++
	}
	if n > len(b) {
		return 0, nil, nil, errors.New("codec: OBU header cut")
	}
	if h&0x02 == 0 { // no obu_size
		return typ, b[n:], nil, nil
	}
	size, used, ok := leb128(b[n:])
	if !ok || size > uint64(len(b)-n-used) {
		return 0, nil, nil, errors.New("codec: OBU size past the end of configOBUs")
	}
	start := n + used
	return typ, b[start : start+int(size)], b[start+int(size):], nil
}

// leb128 reads an unsigned LEB128 of at most 8 bytes (AV1 4.10.5).
func leb128(b []byte) (v uint64, n int, ok bool) {
	for i := 0; i < 8 && i < len(b); i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1, true
		}
	}
	return 0, 0, false
}

// av1FrameSize reads sequence_header_obu() (AV1 5.5) up to max_frame_width_minus_1
// and max_frame_height_minus_1.
func av1FrameSize(p []byte) (w, h int, err error) {
	r := &bitReader{b: p}
	r.skip(3 + 1) // seq_profile, still_picture
	if r.flag() { // reduced_still_picture_header
		r.skip(5) // seq_level_idx[0]
	} else {
		decoderModel := false
		bufferDelayLen := 0
		if r.flag() { // timing_info_present_flag
			r.skip(32 + 32) // num_units_in_display_tick, time_scale
			if r.flag() {   // equal_picture_interval
				uvlc(r) // num_ticks_per_picture_minus_1
			}
			if decoderModel = r.flag(); decoderModel { // decoder_model_info_present_flag
				bufferDelayLen = int(r.u(5)) + 1
				r.skip(32 + 5 + 5) // num_units_in_decoding_tick, buffer_removal_time_length_minus_1, frame_presentation_time_length_minus_1
			}
		}
		initialDisplayDelay := r.flag()
		ops := int(r.u(5)) + 1 // operating_points_cnt_minus_1
		for i := 0; i < ops && !r.over; i++ {
			r.skip(12)                      // operating_point_idc
			if level := r.u(5); level > 7 { // seq_level_idx
				r.skip(1) // seq_tier
			}
			if decoderModel && r.flag() { // decoder_model_present_for_this_op
				r.skip(2*bufferDelayLen + 1) // decoder/encoder_buffer_delay, low_delay_mode_flag
			}
			if initialDisplayDelay && r.flag() {
				r.skip(4) // initial_display_delay_minus_1
			}
		}
	}
	wbits := int(r.u(4)) + 1
	hbits := int(r.u(4)) + 1
	w = int(r.u(wbits)) + 1
	h = int(r.u(hbits)) + 1
	if r.over {
		return 0, 0, errors.New("codec: AV1 sequence header cut before its frame size")
	}
	return w, h, nil
}

// uvlc skips a variable length code (AV1 4.10.3).
func uvlc(r *bitReader) {
	zeros := 0
	for !r.flag() && !r.over {
		zeros++
	}
	if zeros < 32 {
		r.skip(zeros)
	}
}
