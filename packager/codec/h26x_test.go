package codec

import (
	"bytes"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// rbspWriter builds NAL unit payloads for the tests.
type rbspWriter struct{ bitWriter }

func (w *rbspWriter) ue(v uint32) {
	v++
	n := 0
	for x := v; x > 1; x >>= 1 {
		n++
	}
	w.put(0, n)
	w.put(v, n+1)
}

// nal returns header followed by the written bits (a stop bit and zeros to a byte
// boundary, rbsp_trailing_bits), with emulation prevention bytes inserted.
func (w *rbspWriter) nal(header ...byte) []byte {
	w.put(1, 1)
	for w.n&7 != 0 {
		w.put(0, 1)
	}
	out := append([]byte(nil), header...)
	zeros := 0
	for _, c := range w.b {
		if zeros >= 2 && c <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

func TestRBSPHead(t *testing.T) {
	tests := []struct{ in, want []byte }{
		{nil, nil},
		{[]byte{1, 2, 3}, []byte{1, 2, 3}},
		{[]byte{0, 0, 3, 1}, []byte{0, 0, 1}},
		{[]byte{0, 0, 3, 0, 0, 3, 0}, []byte{0, 0, 0, 0, 0}},
		{[]byte{0, 3, 0, 0, 3}, []byte{0, 3, 0, 0}},
		{[]byte{0, 0, 0, 3, 3}, []byte{0, 0, 0, 3}},
		{bytes.Repeat([]byte{7}, 50), bytes.Repeat([]byte{7}, rbspHeadLen)},
		// Only the first rbspHeadLen bytes of the input are read.
		{append(bytes.Repeat([]byte{0, 0, 3}, 20), 9), make([]byte, 27)},
	}
	for _, tc := range tests {
		var head [rbspHeadLen]byte
		if got := rbspHead(&head, tc.in); !bytes.Equal(got, tc.want) {
			t.Errorf("rbspHead(% x) = % x, want % x", tc.in, got, tc.want)
		}
	}
}

func TestExpGolomb(t *testing.T) {
	var w rbspWriter
	vals := []uint32{0, 1, 2, 3, 7, 254, 255, 1<<16 - 1, 1 << 20, 1<<31 - 1, 1<<32 - 2}
	for _, v := range vals {
		w.ue(v)
	}
	r := bitReader{b: w.b}
	for _, v := range vals {
		if got := r.ue(); got != v || r.over {
			t.Fatalf("ue = %d (over %v), want %d", got, r.over, v)
		}
	}
	// 32 leading zeros: too long.
	r = bitReader{b: []byte{0, 0, 0, 0, 0x80}}
	if r.ue(); !r.over {
		t.Error("33-bit code read")
	}
	// Cut in its suffix.
	r = bitReader{b: []byte{0x00, 0x10}}
	if r.ue(); !r.over {
		t.Error("cut code read")
	}
	r = bitReader{b: []byte{0xff}}
	if r.long(0); r.over || r.long(8) != 0xff || r.over || r.long(1) != 0 || !r.over {
		t.Error("long")
	}
}

func TestH264IntraSlice(t *testing.T) {
	for st := uint32(0); st < 10; st++ {
		var w rbspWriter
		w.ue(0)
		w.ue(st)
		w.ue(0)
		n := w.nal(0x41)
		want := st%5 == 2 || st%5 == 4
		if got := H264IntraSlice(n); got != want {
			t.Errorf("slice_type %d: %v", st, got)
		}
	}
	for _, n := range [][]byte{nil, {0x41}, {0x41, 0x00}, {0x41, 0x80}, {0x41, 0, 0, 0, 0, 0}} {
		if H264IntraSlice(n) {
			t.Errorf("% x is an intra slice", n)
		}
	}
}

func TestH264RecoveryPoint(t *testing.T) {
	tests := []struct {
		name string
		n    []byte
		want bool
	}{
		{"empty", nil, false},
		{"header only", []byte{6}, false},
		{"recovery point", []byte{6, 6, 1, 0xc4, 0x80}, true},
		{"after user data", append(append([]byte{6, 5, 3}, 1, 2, 3), 6, 1, 0x84, 0x80), true},
		{"buffering period only", []byte{6, 0, 1, 0x80, 0x80}, false},
		{"type 6 after 255", []byte{6, 0xff, 6, 1, 0x80, 0x80}, false},
		{"large size skipped", append(append([]byte{6, 5, 0xff, 1}, make([]byte, 256)...), 6, 1, 0x84, 0x80), true},
		{"size beyond the end", []byte{6, 5, 9, 1, 2}, false},
		{"cut in the type", []byte{6, 0xff, 0xff}, false},
		{"emulation prevention in a payload", []byte{6, 5, 4, 0, 0, 3, 1, 2, 6, 1, 0x84, 0x80}, true},
	}
	for _, tc := range tests {
		if got := H264RecoveryPoint(tc.n); got != tc.want {
			t.Errorf("%s: %v", tc.name, got)
		}
	}
}

func TestH264SlicePOC(t *testing.T) {
	slice := func(idr, field bool, sps *h264.SPS, lsb uint32) []byte {
		var w rbspWriter
		w.ue(0)
		w.ue(7)
		w.ue(0)
		if sps.SeparateColourPlaneFlag {
			w.put(1, 2)
		}
		w.put(0, int(sps.Log2MaxFrameNumMinus4)+4)
		if !sps.FrameMbsOnlyFlag {
			w.put(map[bool]uint32{false: 0, true: 1}[field], 1)
		}
		if idr {
			w.ue(3)
		}
		w.put(lsb, int(sps.Log2MaxPicOrderCntLsbMinus4)+4)
		w.ue(0)
		if idr {
			return w.nal(0x65)
		}
		return w.nal(0x41)
	}
	progressive := &h264.SPS{Log2MaxFrameNumMinus4: 2, Log2MaxPicOrderCntLsbMinus4: 4, FrameMbsOnlyFlag: true}
	interlaced := &h264.SPS{Log2MaxFrameNumMinus4: 0, Log2MaxPicOrderCntLsbMinus4: 0}
	planes := &h264.SPS{SeparateColourPlaneFlag: true, Log2MaxFrameNumMinus4: 12, Log2MaxPicOrderCntLsbMinus4: 12, FrameMbsOnlyFlag: true}
	tests := []struct {
		name   string
		n      []byte
		sps    *h264.SPS
		want   uint64
		wantOK bool
	}{
		{"non-IDR", slice(false, false, progressive, 100), progressive, 100, true},
		{"IDR", slice(true, false, progressive, 0), progressive, 0, true},
		{"IDR lsb", slice(true, false, progressive, 255), progressive, 255, true},
		{"frame of interlaced", slice(false, false, interlaced, 9), interlaced, 9, true},
		{"field", slice(false, true, interlaced, 9), interlaced, 0, false},
		{"colour planes", slice(false, false, planes, 1<<16-1), planes, 1<<16 - 1, true},
		{"zero lsb (emulation prevention)", slice(false, false, planes, 0), planes, 0, true},
		{"POC type 2", slice(false, false, progressive, 3), &h264.SPS{PicOrderCntType: 2, FrameMbsOnlyFlag: true}, 0, false},
		{"cut", slice(false, false, progressive, 100)[:3], progressive, 0, false},
		{"header only", []byte{0x41}, progressive, 0, false},
	}
	for _, tc := range tests {
		got, ok := H264SlicePOC(tc.n, tc.sps)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestHEVCSlicePOC(t *testing.T) {
	slice := func(typ byte, first bool, sps *h265.SPS, pps *h265.PPS, lsb uint32) []byte {
		var w rbspWriter
		w.put(map[bool]uint32{false: 0, true: 1}[first], 1)
		if typ >= 16 {
			w.put(0, 1)
		}
		w.ue(0)
		w.put(0, int(pps.NumExtraSliceHeaderBits))
		w.ue(1)
		if pps.OutputFlagPresentFlag {
			w.put(1, 1)
		}
		if sps.SeparateColourPlaneFlag {
			w.put(0, 2)
		}
		w.put(lsb, int(sps.Log2MaxPicOrderCntLsbMinus4)+4)
		w.ue(0)
		return w.nal(typ<<1, 1)
	}
	sps := &h265.SPS{Log2MaxPicOrderCntLsbMinus4: 4}
	pps := &h265.PPS{}
	spsX := &h265.SPS{Log2MaxPicOrderCntLsbMinus4: 12, SeparateColourPlaneFlag: true}
	ppsX := &h265.PPS{NumExtraSliceHeaderBits: 3, OutputFlagPresentFlag: true}
	tests := []struct {
		name   string
		n      []byte
		sps    *h265.SPS
		pps    *h265.PPS
		want   uint64
		wantOK bool
	}{
		{"TRAIL_R", slice(1, true, sps, pps, 77), sps, pps, 77, true},
		{"CRA", slice(21, true, sps, pps, 200), sps, pps, 200, true},
		{"BLA", slice(16, true, sps, pps, 5), sps, pps, 5, true},
		{"all the optional fields", slice(1, true, spsX, ppsX, 1<<16-1), spsX, ppsX, 1<<16 - 1, true},
		{"zero lsb (emulation prevention)", slice(1, true, spsX, ppsX, 0), spsX, ppsX, 0, true},
		{"not the first segment", slice(1, false, sps, pps, 77), sps, pps, 0, false},
		{"cut", slice(1, true, spsX, ppsX, 1)[:3], spsX, ppsX, 0, false},
		{"header only", []byte{2, 1}, sps, pps, 0, false},
	}
	for _, tc := range tests {
		got, ok := HEVCSlicePOC(tc.n, tc.sps, tc.pps)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestAUBoundary(t *testing.T) {
	type res struct{ vcl, first, starts bool }
	tests := []struct {
		name string
		n    []byte
		hevc bool
		want res
	}{
		{"empty", nil, false, res{}},
		{"h264 first slice", []byte{0x65, 0x88}, false, res{true, true, false}},
		{"h264 later slice", []byte{0x41, 0x40}, false, res{true, false, false}},
		{"h264 slice, header only", []byte{0x41}, false, res{true, false, false}},
		{"h264 partition A first", []byte{0x22, 0x80}, false, res{true, true, false}},
		{"h264 partition B", []byte{0x23, 0x80}, false, res{true, false, false}},
		{"h264 SEI", []byte{0x06, 0x05}, false, res{false, false, true}},
		{"h264 AUD", []byte{0x09, 0xf0}, false, res{false, false, true}},
		{"h264 SPS", []byte{0x67}, false, res{false, false, true}},
		{"h264 prefix 14", []byte{0x0e}, false, res{false, false, true}},
		{"h264 reserved 18", []byte{0x12}, false, res{false, false, true}},
		{"h264 reserved 19", []byte{0x13}, false, res{}},
		{"h264 end of sequence", []byte{0x0a}, false, res{}},
		{"h264 filler", []byte{0x0c}, false, res{}},
		{"hevc first slice", []byte{19 << 1, 1, 0x80}, true, res{true, true, false}},
		{"hevc later segment", []byte{1 << 1, 1, 0x40}, true, res{true, false, false}},
		{"hevc slice, header only", []byte{1 << 1, 1}, true, res{true, false, false}},
		{"hevc VPS", []byte{32 << 1, 1}, true, res{false, false, true}},
		{"hevc AUD", []byte{35 << 1, 1}, true, res{false, false, true}},
		{"hevc prefix SEI", []byte{39 << 1, 1}, true, res{false, false, true}},
		{"hevc suffix SEI", []byte{40 << 1, 1}, true, res{}},
		{"hevc reserved 41", []byte{41 << 1, 1}, true, res{false, false, true}},
		{"hevc reserved 45", []byte{45 << 1, 1}, true, res{}},
		{"hevc unspecified 48", []byte{48 << 1, 1}, true, res{false, false, true}},
		{"hevc unspecified 56", []byte{56 << 1, 1}, true, res{}},
		{"hevc filler", []byte{38 << 1, 1}, true, res{}},
	}
	for _, tc := range tests {
		var got res
		got.vcl, got.first, got.starts = AUBoundary(tc.n, tc.hevc)
		if got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestAccessUnitInfo(t *testing.T) {
	intra := func(typ byte, st uint32) []byte {
		var w rbspWriter
		w.ue(0)
		w.ue(st)
		w.ue(0)
		return w.nal(typ)
	}
	sps, pps := []byte{0x67, 0x42, 0xc0, 0x1e}, []byte{0x68, 0xce, 0x3c, 0x80}
	recovery := []byte{0x06, 6, 1, 0xc4, 0x80}
	hvps, hsps, hpps := []byte{0x40, 1, 0xc}, []byte{0x42, 1, 1}, []byte{0x44, 1, 0xc1}
	hslice := func(typ byte) []byte { return []byte{typ << 1, 1, 0xaf} }
	tests := []struct {
		name string
		au   [][]byte
		hevc bool
		want AUInfo
	}{
		{"empty", nil, false, AUInfo{}},
		{"h264 IDR", [][]byte{{0x09, 0xf0}, sps, pps, intra(0x65, 7)}, false,
			AUInfo{Start: true, Sync: true, IRAP: true, VCL: true, SPS: [][]byte{sps}, PPS: [][]byte{pps}}},
		{"h264 P", [][]byte{intra(0x41, 5)}, false, AUInfo{VCL: true}},
		{"h264 I without recovery point", [][]byte{intra(0x41, 7), intra(0x41, 2)}, false,
			AUInfo{Start: true, OpenGOP: true, VCL: true}},
		{"h264 I with recovery point", [][]byte{recovery, intra(0x41, 7)}, false,
			AUInfo{Start: true, Sync: true, OpenGOP: true, VCL: true}},
		{"h264 I and P slices", [][]byte{recovery, intra(0x41, 7), intra(0x41, 0)}, false, AUInfo{VCL: true}},
		{"h264 partitions", [][]byte{intra(0x42, 7), {0x43, 0x80}}, false, AUInfo{VCL: true}},
		{"h264 parameter sets only", [][]byte{sps, pps, {}}, false, AUInfo{SPS: [][]byte{sps}, PPS: [][]byte{pps}}},
		{"hevc IDR", [][]byte{hvps, hsps, hpps, hslice(19)}, true,
			AUInfo{Start: true, Sync: true, IRAP: true, VCL: true, VPS: [][]byte{hvps}, SPS: [][]byte{hsps}, PPS: [][]byte{hpps}}},
		{"hevc CRA", [][]byte{hslice(21)}, true, AUInfo{Start: true, Sync: true, IRAP: true, OpenGOP: true, VCL: true}},
		{"hevc BLA", [][]byte{hslice(17)}, true, AUInfo{Start: true, Sync: true, IRAP: true, OpenGOP: true, VCL: true}},
		{"hevc RASL", [][]byte{hslice(8)}, true, AUInfo{RASL: true, VCL: true}},
		{"hevc reserved IRAP 22", [][]byte{hslice(22)}, true, AUInfo{VCL: true}},
		{"hevc TRAIL", [][]byte{hslice(1)}, true, AUInfo{VCL: true}},
		{"hevc 1-byte units skipped", [][]byte{{19 << 1}, {32 << 1}}, true, AUInfo{}},
	}
	for _, tc := range tests {
		got := AccessUnitInfo(tc.au, tc.hevc)
		if !equalInfo(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func equalInfo(a, b AUInfo) bool {
	eq := func(x, y [][]byte) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if !bytes.Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return a.Start == b.Start && a.Sync == b.Sync && a.IRAP == b.IRAP && a.OpenGOP == b.OpenGOP &&
		a.RASL == b.RASL && a.VCL == b.VCL && eq(a.VPS, b.VPS) && eq(a.SPS, b.SPS) && eq(a.PPS, b.PPS)
}
