package codec

import (
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// HEVC (ITU-T H.265): access unit classification (AccessUnitInfo) and the slice segment
// header fields the demuxers read. mediacommon parses the SPS and PPS (h265.SPS, h265.PPS)
// but not slice segment headers.

func hevcInfo(au [][]byte) AUInfo {
	var fi AUInfo
	for _, n := range au {
		if len(n) < 2 {
			continue
		}
		typ := h265.NALUType((n[0] >> 1) & 0x3f)
		switch {
		case typ <= h265.NALUType_RSV_IRAP_VCL23:
			fi.VCL = true
			switch {
			case typ >= h265.NALUType_BLA_W_LP && typ <= h265.NALUType_CRA_NUT:
				fi.IRAP = true
				fi.Start = true
				fi.Sync = true
				if typ != h265.NALUType_IDR_W_RADL && typ != h265.NALUType_IDR_N_LP {
					fi.OpenGOP = true
				}
			case typ == h265.NALUType_RASL_N || typ == h265.NALUType_RASL_R:
				fi.RASL = true
			}
		case typ == h265.NALUType_VPS_NUT:
			fi.VPS = append(fi.VPS, n)
		case typ == h265.NALUType_SPS_NUT:
			fi.SPS = append(fi.SPS, n)
		case typ == h265.NALUType_PPS_NUT:
			fi.PPS = append(fi.PPS, n)
		}
	}
	return fi
}

// HEVCSlicePOC reads slice_pic_order_cnt_lsb from the header of HEVC slice segment NAL
// unit n (types 0 to 23 except IDR, whose POC is 0 and not coded; header included) coded
// with sps and pps. ok is false when n is not the first slice segment of its picture
// (first_slice_segment_in_pic_flag) or its header is cut short.
func HEVCSlicePOC(n []byte, sps *h265.SPS, pps *h265.PPS) (lsb uint64, ok bool) {
	if len(n) < 3 {
		return 0, false
	}
	var head [rbspHeadLen]byte
	r := bitReader{b: rbspHead(&head, n[2:])}
	if !r.flag() || r.over { // first_slice_segment_in_pic_flag
		return 0, false
	}
	// Skipped fields move pos only (past the end too): the read that follows fails.
	if NALType(n, true) >= uint8(h265.NALUType_BLA_W_LP) {
		r.pos++ // no_output_of_prior_pics_flag
	}
	r.ue() // slice_pic_parameter_set_id
	r.pos += int(pps.NumExtraSliceHeaderBits)
	r.ue() // slice_type
	if pps.OutputFlagPresentFlag {
		r.pos++ // pic_output_flag
	}
	if sps.SeparateColourPlaneFlag {
		r.pos += 2 // colour_plane_id
	}
	// The width is the SPS's uint32 value plus 4, as mediacommon leaves it unchecked.
	lsb = r.long(int(sps.Log2MaxPicOrderCntLsbMinus4 + 4))
	return lsb, !r.over
}
