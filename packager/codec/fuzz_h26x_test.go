package codec

import (
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// FuzzH26x checks that no NAL unit makes the H.264/HEVC readers panic or loop, whatever
// the SPS fields (mediacommon leaves their ranges unchecked), and that the classifications
// agree with each other.
func FuzzH26x(f *testing.F) {
	f.Add([]byte{0x65, 0x88, 0x84}, false, uint32(0), uint32(2), uint8(0), byte(0))
	f.Add([]byte{0x41, 0x9a, 0x02, 0x04}, false, uint32(2), uint32(4), uint8(0), byte(1))
	f.Add([]byte{0x06, 6, 1, 0xc4, 0x80}, false, uint32(0), uint32(0), uint8(0), byte(0))
	f.Add([]byte{0x2a, 0x01, 0xaf, 0x08, 0x03}, true, uint32(0), uint32(4), uint8(3), byte(3))
	f.Add([]byte{0x26, 0x01, 0xaf, 0x00, 0x00, 0x03, 0x01}, true, uint32(0), uint32(1<<32-4), uint8(7), byte(2))
	f.Fuzz(func(t *testing.T, n []byte, hevc bool, frameNum, pocLSB uint32, extra uint8, flags byte) {
		typ := NALType(n, hevc)
		if len(n) == 0 && typ != NALTypeNone || len(n) > 0 && typ == NALTypeNone {
			t.Fatalf("type %d of % x", typ, n)
		}
		if RandomAccess(n, hevc) && !VCL(n, hevc) || RASL(n, hevc) && !VCL(n, hevc) ||
			IDR(n, hevc) && !RandomAccess(n, hevc) || BLA(n, hevc) && !RandomAccess(n, hevc) {
			t.Fatalf("type %d: inconsistent", typ)
		}
		if ParameterSet(n, hevc) && (VCL(n, hevc) || AUDOrFiller(n, hevc)) {
			t.Fatalf("type %d: parameter set and more", typ)
		}
		vcl, first, starts := AUBoundary(n, hevc)
		if vcl != VCL(n, hevc) || first && !vcl || starts && vcl ||
			ParameterSet(n, hevc) && !starts || AUD(n, hevc) && !starts {
			t.Fatalf("type %d: AUBoundary %v %v %v", typ, vcl, first, starts)
		}
		fi := AccessUnitInfo([][]byte{n, n}, hevc)
		if fi.Sync && !fi.Start || fi.OpenGOP && !fi.Start || fi.Start && !fi.VCL || fi.IRAP != (RandomAccess(n, hevc) && len(n) >= NALHeaderLen(hevc)) {
			t.Fatalf("% x: %+v", n, fi)
		}
		_ = H264IntraSlice(n)
		_ = H264RecoveryPoint(n)
		sps := h264.SPS{
			Log2MaxFrameNumMinus4: frameNum, Log2MaxPicOrderCntLsbMinus4: pocLSB,
			SeparateColourPlaneFlag: flags&1 != 0, FrameMbsOnlyFlag: flags&2 != 0, PicOrderCntType: uint32(flags >> 6),
		}
		_, _ = H264SlicePOC(n, &sps)
		hsps := h265.SPS{Log2MaxPicOrderCntLsbMinus4: pocLSB, SeparateColourPlaneFlag: flags&1 != 0}
		hpps := h265.PPS{NumExtraSliceHeaderBits: extra, OutputFlagPresentFlag: flags&4 != 0}
		_, _ = HEVCSlicePOC(n, &hsps, &hpps)
	})
}
