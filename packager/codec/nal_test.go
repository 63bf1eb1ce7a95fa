package codec

import "testing"

func TestNALClassification(t *testing.T) {
	// h264 and hevc build a NAL unit of the given type (HEVC with its 2-byte header,
	// nuh_layer_id 0, nuh_temporal_id_plus1 1).
	h264 := func(typ byte) []byte { return []byte{0x60 | typ, 0x88} }
	hevc := func(typ byte) []byte { return []byte{typ << 1, 0x01, 0xaf} }
	type want struct {
		typ                     uint8
		vcl, ra, idr, bla, rasl bool
		set                     ParamSet
		aud, filler             bool
	}
	tests := []struct {
		name string
		n    []byte
		hevc bool
		want want
	}{
		{"h264 empty", nil, false, want{typ: NALTypeNone}},
		{"hevc empty", []byte{}, true, want{typ: NALTypeNone}},
		{"h264 unspecified 0", h264(0), false, want{}},
		{"h264 non-IDR slice", h264(1), false, want{typ: 1, vcl: true}},
		{"h264 partition A", h264(2), false, want{typ: 2, vcl: true}},
		{"h264 partition C", h264(4), false, want{typ: 4, vcl: true}},
		{"h264 IDR", h264(5), false, want{typ: 5, vcl: true, ra: true, idr: true}},
		{"h264 IDR nal_ref_idc 0 forbidden bit", []byte{0x85}, false, want{typ: 5, vcl: true, ra: true, idr: true}},
		{"h264 SEI", h264(6), false, want{typ: 6}},
		{"h264 SPS", h264(7), false, want{typ: 7, set: SPS}},
		{"h264 PPS", h264(8), false, want{typ: 8, set: PPS}},
		{"h264 AUD", []byte{0x09, 0xf0}, false, want{typ: 9, aud: true}},
		{"h264 filler", h264(12), false, want{typ: 12, filler: true}},
		{"h264 SPS extension", h264(13), false, want{typ: 13}},
		{"h264 subset SPS", h264(15), false, want{typ: 15}},
		{"h264 slice extension", h264(20), false, want{typ: 20}},
		{"h264 type 31", h264(31), false, want{typ: 31}},
		{"hevc TRAIL_N", hevc(0), true, want{typ: 0, vcl: true}},
		{"hevc TRAIL_R", hevc(1), true, want{typ: 1, vcl: true}},
		{"hevc RASL_N", hevc(8), true, want{typ: 8, vcl: true, rasl: true}},
		{"hevc RASL_R", hevc(9), true, want{typ: 9, vcl: true, rasl: true}},
		{"hevc RADL_N", hevc(6), true, want{typ: 6, vcl: true}},
		{"hevc BLA_W_LP", hevc(16), true, want{typ: 16, vcl: true, ra: true, bla: true}},
		{"hevc BLA_N_LP", hevc(18), true, want{typ: 18, vcl: true, ra: true, bla: true}},
		{"hevc IDR_W_RADL", hevc(19), true, want{typ: 19, vcl: true, ra: true, idr: true}},
		{"hevc IDR_N_LP", hevc(20), true, want{typ: 20, vcl: true, ra: true, idr: true}},
		{"hevc CRA", hevc(21), true, want{typ: 21, vcl: true, ra: true}},
		{"hevc reserved IRAP 22", hevc(22), true, want{typ: 22, vcl: true}},
		{"hevc reserved IRAP 23", hevc(23), true, want{typ: 23, vcl: true}},
		{"hevc reserved VCL 24", hevc(24), true, want{typ: 24}},
		{"hevc VPS", hevc(32), true, want{typ: 32, set: VPS}},
		{"hevc SPS", hevc(33), true, want{typ: 33, set: SPS}},
		{"hevc PPS", hevc(34), true, want{typ: 34, set: PPS}},
		{"hevc AUD", hevc(35), true, want{typ: 35, aud: true}},
		{"hevc EOS", hevc(36), true, want{typ: 36}},
		{"hevc filler", hevc(38), true, want{typ: 38, filler: true}},
		{"hevc prefix SEI", hevc(39), true, want{typ: 39}},
		{"hevc type 63", hevc(63), true, want{typ: 63}},
		{"hevc 1-byte unit still typed", []byte{33 << 1}, true, want{typ: 33, set: SPS}},
		{"hevc forbidden bit ignored", []byte{0x80 | 19<<1, 1}, true, want{typ: 19, vcl: true, ra: true, idr: true}},
		// The same byte read as the other codec.
		{"H.264 IDR byte read as hevc", []byte{0x65, 0x88}, true, want{typ: 50}},
		{"hevc VPS byte read as h264", []byte{0x40, 0x01}, false, want{typ: 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := want{
				typ: NALType(tc.n, tc.hevc), vcl: VCL(tc.n, tc.hevc), ra: RandomAccess(tc.n, tc.hevc),
				idr: IDR(tc.n, tc.hevc), bla: BLA(tc.n, tc.hevc), rasl: RASL(tc.n, tc.hevc),
				set: ParameterSetKind(tc.n, tc.hevc), aud: AUD(tc.n, tc.hevc), filler: Filler(tc.n, tc.hevc),
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if ps := ParameterSet(tc.n, tc.hevc); ps != (tc.want.set != NoParamSet) {
				t.Errorf("ParameterSet = %v", ps)
			}
			if af := AUDOrFiller(tc.n, tc.hevc); af != (tc.want.aud || tc.want.filler) {
				t.Errorf("AUDOrFiller = %v", af)
			}
		})
	}
	if NALHeaderLen(false) != 1 || NALHeaderLen(true) != 2 {
		t.Errorf("NALHeaderLen = %d, %d", NALHeaderLen(false), NALHeaderLen(true))
	}
}
