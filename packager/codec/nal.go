package codec

import (
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// NAL unit classification for H.264 (ITU-T H.264 Table 7-1) and HEVC (ITU-T H.265
// Table 7-1), as both demuxers need it: n is one NAL unit without its start code or
// length prefix, starting at its header; hevc says which of the two codecs it is.
// The NAL unit types are mediacommon's h264.NALUType and h265.NALUType values.

// NALTypeNone is what NALType returns for an empty NAL unit. It is 0xFF, outside the
// 5-bit (H.264) and 6-bit (HEVC) nal_unit_type fields, so it is never a real type (0 is
// HEVC's TRAIL_N, a slice).
const NALTypeNone uint8 = 0xff

// NALType returns the nal_unit_type of n: n[0]&0x1f for H.264, (n[0]>>1)&0x3f for HEVC,
// or NALTypeNone when n is empty. It reads only the first byte, also of a HEVC NAL unit
// shorter than its 2-byte header.
func NALType(n []byte, hevc bool) uint8 {
	if len(n) == 0 {
		return NALTypeNone
	}
	if hevc {
		return (n[0] >> 1) & 0x3f
	}
	return n[0] & 0x1f
}

// NALHeaderLen is the size of a NAL unit header: 1 byte for H.264, 2 for HEVC. The
// payload (RBSP with emulation prevention bytes) follows it.
func NALHeaderLen(hevc bool) int {
	if hevc {
		return 2
	}
	return 1
}

// VCL reports whether n is a coded slice (or slice data partition): H.264 types 1 to 5;
// HEVC types 0 to 23 (up to RSV_IRAP_VCL23), as the demuxers have always counted them
// (24 to 31 are reserved non-IRAP VCL types no encoder sends).
func VCL(n []byte, hevc bool) bool {
	t := NALType(n, hevc)
	if hevc {
		return t <= uint8(h265.NALUType_RSV_IRAP_VCL23)
	}
	return t >= uint8(h264.NALUTypeNonIDR) && t <= uint8(h264.NALUTypeIDR)
}

// RandomAccess reports whether n is a slice of a picture a decoder can start at: an IDR
// picture for H.264 (type 5); an IRAP picture for HEVC, types 16 to 21 (BLA_W_LP, BLA_W_RADL,
// BLA_N_LP, IDR_W_RADL, IDR_N_LP, CRA_NUT; the reserved IRAP types 22 and 23 are not).
// For HEVC a CRA or BLA picture may have RASL pictures after it that cannot be decoded
// from there (see RASL). H.264 pictures that are all I slices after a recovery point SEI
// are random access points too, which this NAL-level test cannot see (AccessUnitInfo does).
func RandomAccess(n []byte, hevc bool) bool {
	t := NALType(n, hevc)
	if hevc {
		return t >= uint8(h265.NALUType_BLA_W_LP) && t <= uint8(h265.NALUType_CRA_NUT)
	}
	return t == uint8(h264.NALUTypeIDR)
}

// IDR reports whether n is a slice of an IDR picture: H.264 type 5, HEVC IDR_W_RADL (19)
// or IDR_N_LP (20). An IDR picture restarts the picture order count.
func IDR(n []byte, hevc bool) bool {
	t := NALType(n, hevc)
	if hevc {
		return t == uint8(h265.NALUType_IDR_W_RADL) || t == uint8(h265.NALUType_IDR_N_LP)
	}
	return t == uint8(h264.NALUTypeIDR)
}

// BLA reports whether n is a slice of a HEVC BLA picture (types 16 to 18), which also
// restarts the picture order count. Always false for H.264.
func BLA(n []byte, hevc bool) bool {
	t := NALType(n, hevc)
	return hevc && t >= uint8(h265.NALUType_BLA_W_LP) && t <= uint8(h265.NALUType_BLA_N_LP)
}

// RASL reports whether n is a slice of a HEVC RASL picture (types 8 and 9): a leading
// picture that references pictures before the CRA or BLA picture it follows. Always false
// for H.264.
func RASL(n []byte, hevc bool) bool {
	t := NALType(n, hevc)
	return hevc && (t == uint8(h265.NALUType_RASL_N) || t == uint8(h265.NALUType_RASL_R))
}

// ParamSet says which parameter set a NAL unit is.
type ParamSet uint8

// Parameter set kinds; NoParamSet for any other NAL unit.
const (
	NoParamSet ParamSet = iota
	VPS                 // HEVC video parameter set (32)
	SPS                 // sequence parameter set (H.264 7, HEVC 33)
	PPS                 // picture parameter set (H.264 8, HEVC 34)
)

// ParameterSetKind returns which parameter set n is: VPS, SPS or PPS, or NoParamSet.
// H.264's SPS extension (13) and subset SPS (15) are not counted: a sample entry holds
// neither.
func ParameterSetKind(n []byte, hevc bool) ParamSet {
	t := NALType(n, hevc)
	if hevc {
		switch h265.NALUType(t) {
		case h265.NALUType_VPS_NUT:
			return VPS
		case h265.NALUType_SPS_NUT:
			return SPS
		case h265.NALUType_PPS_NUT:
			return PPS
		}
		return NoParamSet
	}
	switch h264.NALUType(t) {
	case h264.NALUTypeSPS:
		return SPS
	case h264.NALUTypePPS:
		return PPS
	}
	return NoParamSet
}

// ParameterSet reports whether n is a parameter set: SPS or PPS for H.264 (types 7, 8),
// VPS, SPS or PPS for HEVC (32, 33, 34).
func ParameterSet(n []byte, hevc bool) bool {
	return ParameterSetKind(n, hevc) != NoParamSet
}

// AUDOrFiller reports whether n is an access unit delimiter or filler data (H.264 types
// 9 and 12, HEVC 35 and 38): NAL units an MP4 sample leaves out.
func AUDOrFiller(n []byte, hevc bool) bool {
	return AUD(n, hevc) || Filler(n, hevc)
}

// AUD reports whether n is an access unit delimiter (H.264 type 9, HEVC 35).
func AUD(n []byte, hevc bool) bool {
	t := NALType(n, hevc)
	if hevc {
		return t == uint8(h265.NALUType_AUD_NUT)
	}
	return t == uint8(h264.NALUTypeAccessUnitDelimiter)
}

// Filler reports whether n is filler data (H.264 type 12, HEVC 38).
func Filler(n []byte, hevc bool) bool {
	t := NALType(n, hevc)
	if hevc {
		return t == uint8(h265.NALUType_FD_NUT)
	}
	return t == uint8(h264.NALUTypeFillerData)
}

// AUBoundary classifies NAL unit n for finding where access units begin in a byte stream
// (H.264 7.4.1.2.3, H.265 7.4.2.4.4). vcl: a slice (or H.264 slice data partition);
// firstSlice: the first slice of a picture (H.264 first_mb_in_slice 0, read as the single
// bit 1 that codes it; HEVC first_slice_segment_in_pic_flag), known when n holds the byte
// after its header; startsAU: a NAL unit that begins the next access unit when it follows
// a picture's slices (access unit delimiter, parameter sets, SEI, and the types the
// standards reserve there: H.264 14 to 18, HEVC 41 to 44 and 48 to 55).
func AUBoundary(n []byte, hevc bool) (vcl, firstSlice, startsAU bool) {
	if len(n) == 0 {
		return false, false, false
	}
	if hevc {
		typ := h265.NALUType(n[0] >> 1 & 0x3f)
		switch {
		case typ <= h265.NALUType_RSV_IRAP_VCL23:
			return true, len(n) > 2 && n[2]&0x80 != 0, false
		case typ == h265.NALUType_AUD_NUT, typ == h265.NALUType_VPS_NUT, typ == h265.NALUType_SPS_NUT,
			typ == h265.NALUType_PPS_NUT, typ == h265.NALUType_PREFIX_SEI_NUT,
			typ >= 41 && typ <= 44, typ >= 48 && typ <= 55:
			return false, false, true
		}
		return false, false, false
	}
	typ := h264.NALUType(n[0] & 0x1f)
	switch {
	case typ == h264.NALUTypeNonIDR, typ == h264.NALUTypeIDR, typ == h264.NALUTypeDataPartitionA:
		return true, len(n) > 1 && n[1]&0x80 != 0, false
	case typ == h264.NALUTypeDataPartitionB, typ == h264.NALUTypeDataPartitionC:
		return true, false, false
	case typ == h264.NALUTypeAccessUnitDelimiter, typ == h264.NALUTypeSPS, typ == h264.NALUTypePPS,
		typ == h264.NALUTypeSEI, typ >= 14 && typ <= 18:
		return false, false, true
	}
	return false, false, false
}
