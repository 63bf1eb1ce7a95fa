package codec

import (
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// H.264 (ITU-T H.264): what an access unit says about decoding from it, and the few slice
// header and SEI fields the demuxers read. mediacommon parses the SPS (h264.SPS) but not
// slice headers or SEI messages.

// H264IntraSlice reports whether H.264 slice NAL unit n (type 1 or 5, header included)
// is an I or SI slice (slice_type 2, 4, 7 or 9).
func H264IntraSlice(n []byte) bool {
	if len(n) < 2 {
		return false
	}
	var head [rbspHeadLen]byte
	r := bitReader{b: rbspHead(&head, n[1:])}
	r.ue() // first_mb_in_slice
	st := r.ue() % 5
	return !r.over && (st == 2 || st == 4)
}

// H264RecoveryPoint reports whether H.264 SEI NAL unit n (type 6, header included) holds
// a recovery point SEI message (payload type 6): decoding may start at the picture it
// comes with.
func H264RecoveryPoint(n []byte) bool {
	if len(n) < 1 {
		return false
	}
	b := h264.EmulationPreventionRemove(n[1:])
	for len(b) > 1 {
		typ, rest, ok := seiNumber(b)
		if !ok {
			return false
		}
		size, rest, ok := seiNumber(rest)
		if !ok {
			return false
		}
		if typ == 6 {
			return true
		}
		if size > len(rest) {
			return false
		}
		b = rest[size:]
		if len(b) == 1 && b[0] == 0x80 { // rbsp_trailing_bits
			return false
		}
	}
	return false
}

// seiNumber reads an SEI payload type or size (0xFF bytes adding 255 each, then one
// byte) from the start of b.
func seiNumber(b []byte) (int, []byte, bool) {
	v := 0
	for len(b) > 0 && b[0] == 0xff {
		v += 255
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, nil, false
	}
	return v + int(b[0]), b[1:], true
}

// H264SlicePOC reads pic_order_cnt_lsb from the header of H.264 slice NAL unit n (type 1
// or 5, header included) coded with sps. ok is false when the header is cut short, when
// the SPS's pic_order_cnt_type is not 0 (no LSBs in slice headers) or when the slice is a
// field (field_pic_flag).
func H264SlicePOC(n []byte, sps *h264.SPS) (lsb uint64, ok bool) {
	if len(n) < 2 || sps.PicOrderCntType != 0 {
		return 0, false
	}
	var head [rbspHeadLen]byte
	r := bitReader{b: rbspHead(&head, n[1:])}
	for range 3 { // first_mb_in_slice, slice_type, pic_parameter_set_id
		r.ue()
	}
	// Skipped fields move pos only (past the end too): the read that follows fails. The
	// widths are the SPS's uint32 values plus 4, as mediacommon leaves them unchecked.
	if sps.SeparateColourPlaneFlag {
		r.pos += 2 // colour_plane_id
	}
	r.pos += int(sps.Log2MaxFrameNumMinus4 + 4) // frame_num
	if !sps.FrameMbsOnlyFlag && r.left() > 0 && r.flag() {
		return 0, false // field_pic_flag: fields are not ordered here
	}
	if NALType(n, false) == uint8(h264.NALUTypeIDR) {
		r.ue() // idr_pic_id
	}
	lsb = r.long(int(sps.Log2MaxPicOrderCntLsbMinus4 + 4))
	return lsb, !r.over
}

// AUInfo is what an access unit's NAL units say about decoding from it (AccessUnitInfo).
type AUInfo struct {
	// Start: a decoder can start at this unit. H.264: an IDR picture, or one whose slices
	// are all I (or SI) slices; HEVC: an IRAP picture (BLA, IDR or CRA).
	Start bool
	// Sync: a sync sample. H.264: an IDR picture, or an intra picture with a recovery point
	// SEI; HEVC: an IRAP picture.
	Sync bool
	// IRAP: an H.264 IDR or a HEVC IRAP picture (RandomAccess): leading pictures after it
	// no longer reference pictures before the start.
	IRAP bool
	// OpenGOP: Start, but not at an IDR picture (an H.264 intra picture without IDR, a HEVC
	// CRA or BLA picture): pictures that follow may reference pictures before it (H.264
	// leading pictures, HEVC RASL pictures).
	OpenGOP bool
	// RASL: a HEVC RASL picture.
	RASL bool
	// VCL: the unit has a slice or slice data partition.
	VCL bool
	// The unit's parameter sets, in order (slices of the caller's NAL units).
	VPS, SPS, PPS [][]byte
}

// AccessUnitInfo classifies the access unit made of NAL units au (H.264 or HEVC).
func AccessUnitInfo(au [][]byte, hevc bool) AUInfo {
	if hevc {
		return hevcInfo(au)
	}
	return h264Info(au)
}

func h264Info(au [][]byte) AUInfo {
	var fi AUInfo
	allI, anySlice, recovery := true, false, false
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeIDR:
			fi.IRAP = true
			anySlice = true
			fi.VCL = true
		case h264.NALUTypeNonIDR:
			anySlice = true
			fi.VCL = true
			if !H264IntraSlice(n) {
				allI = false
			}
		case h264.NALUTypeDataPartitionA, h264.NALUTypeDataPartitionB, h264.NALUTypeDataPartitionC:
			fi.VCL = true
			allI = false
		case h264.NALUTypeSEI:
			if H264RecoveryPoint(n) {
				recovery = true
			}
		case h264.NALUTypeSPS:
			fi.SPS = append(fi.SPS, n)
		case h264.NALUTypePPS:
			fi.PPS = append(fi.PPS, n)
		}
	}
	intra := anySlice && allI && !fi.IRAP
	fi.Start = fi.IRAP || intra
	fi.OpenGOP = intra
	fi.Sync = fi.IRAP || (intra && recovery)
	return fi
}
