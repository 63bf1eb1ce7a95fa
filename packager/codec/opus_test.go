package codec

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"
)

// opusVectors are Opus streams ffmpeg 5.1 muxed into MPEG-TS (libopus, 20 ms frames):
// the PMT descriptors of the stream, the first PES payload (testdata/make.sh), and the
// dOps ffmpeg writes when it encodes the same input to MP4.
var opusVectors = []struct {
	name, pes, descriptors, dOps string
	channels                     int
}{
	{"mono", "opus_1ch_pes0.bin", "05044f7075737f028001", "000101380000bb80000000", 1},
	{"stereo", "opus_2ch_pes0.bin", "05044f7075737f028002", "000201380000bb80000000", 2},
	{"5.1", "opus_6ch_pes0.bin", "05044f7075737f028006", "000601380000bb800000010402000401020305", 6},
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpusTSVectors(t *testing.T) {
	for _, v := range opusVectors {
		t.Run(v.name, func(t *testing.T) {
			pes := readVector(t, v.pes)
			var aus int
			for b := pes; len(b) > 0; aus++ {
				h, ok, need := ParseOpusTSHeader(b)
				if !ok || need || h.Len+h.AUSize > len(b) {
					t.Fatalf("access unit %d: %+v, %v, %v (%d bytes left)", aus, h, ok, need, len(b))
				}
				// ffmpeg puts libopus's pre-skip, 312, as the first unit's start trim.
				if want := map[bool]int{true: 312, false: 0}[aus == 0]; h.StartTrim != want || h.EndTrim != 0 {
					t.Errorf("access unit %d: trims %d, %d, want %d, 0", aus, h.StartTrim, h.EndTrim, want)
				}
				n, err := OpusPacketSamples(b[h.Len : h.Len+h.AUSize])
				if err != nil || n != 960 {
					t.Errorf("access unit %d: %d samples, %v; want 960", aus, n, err)
				}
				b = b[h.Len+h.AUSize:]
			}
			if aus != 5 { // ffmpeg's TS muxer puts 5 units (100 ms) in a PES
				t.Errorf("%d access units in the PES, want 5", aus)
			}
			dOps, ch, err := OpusTSConfig(unhex(t, v.descriptors), 312)
			if err != nil || ch != v.channels || !bytes.Equal(dOps, unhex(t, v.dOps)) {
				t.Errorf("OpusTSConfig: %x, %d, %v; ffmpeg's MP4 has %x", dOps, ch, err, v.dOps)
			}
			cfg, err := ParseDOps(unhex(t, v.dOps))
			if err != nil || cfg != (OpusConfig{Channels: v.channels, PreSkip: 312, InputSampleRate: 48000}) {
				t.Errorf("ParseDOps: %+v, %v", cfg, err)
			}
		})
	}
}

func TestParseOpusTSHeader(t *testing.T) {
	for _, c := range []struct {
		name, hex string
		want      OpusTSHeader
	}{
		// The last PES of ffmpeg's mono stream: end trim 648 (the padding of the last frame).
		{"end trim", "7fe8400288", OpusTSHeader{Len: 5, AUSize: 64, EndTrim: 648}},
		{"both trims, 3 size bytes", "7ff8ffff0a00780012", OpusTSHeader{Len: 9, AUSize: 520, StartTrim: 120, EndTrim: 18}},
		{"reserved trim bits", "7ff001ffff", OpusTSHeader{Len: 5, AUSize: 1, StartTrim: 0x1fff}},
		{"control extension", "7fe40502aabb", OpusTSHeader{Len: 6, AUSize: 5}},
		{"empty unit", "7fe000", OpusTSHeader{Len: 3}},
	} {
		b := unhex(t, c.hex)
		h, ok, need := ParseOpusTSHeader(b)
		if !ok || need || h != c.want {
			t.Errorf("%s: %+v, %v, %v, want %+v", c.name, h, ok, need, c.want)
		}
		for n := 0; n < len(b); n++ { // every cut asks for more
			if h, ok, need := ParseOpusTSHeader(b[:n]); ok || !need {
				t.Errorf("%s cut to %d bytes: %+v, %v, %v", c.name, n, h, ok, need)
			}
		}
	}
	for _, s := range []string{"ff", "7f00", "ffe000", "7fc000", "00"} {
		if h, ok, need := ParseOpusTSHeader(unhex(t, s)); ok || need {
			t.Errorf("%s: %+v, %v, %v; want not a header", s, h, ok, need)
		}
	}
}

func TestOpusPacketSamples(t *testing.T) {
	frame := func(n int) string { return hex.EncodeToString(make([]byte, n)) }
	for _, c := range []struct {
		name, hex string
		want      int // 0: error
	}{
		{"SILK NB 10 ms", "00", 480},
		{"SILK WB 60 ms", "58" + frame(20), 2880},
		{"hybrid SWB 10 ms", "60" + frame(10), 480},
		{"hybrid FB 20 ms", "78", 960},
		{"CELT NB 2.5 ms", "80", 120},
		{"CELT FB 20 ms, stereo", "fc" + frame(1275), 960},
		{"code 0 frame over 1275 bytes", "fc" + frame(1276), 0},
		{"code 1: 2 x 20 ms", "fd" + frame(8), 1920},
		{"code 1 odd payload", "fd" + frame(7), 0},
		{"code 2: 2 x 10 ms", "f2" + "03" + frame(7), 960},
		{"code 2, 2-byte length", "fa" + "fc01" + frame(256), 1920},
		{"code 2 first frame past the end", "fa" + "09" + frame(7), 0},
		{"code 2 length cut", "fa" + "fc", 0},
		{"code 2 empty", "fa", 0},
		{"code 3 CBR 3 x 20 ms", "ff" + "03" + frame(9), 2880},
		{"code 3 CBR uneven", "ff" + "03" + frame(10), 0},
		{"code 3 CBR 6 x 20 ms", "ff" + "06", 5760},
		{"code 3 7 x 20 ms", "ff" + "07", 0},
		{"code 3 48 x 2.5 ms", "e3" + "30", 5760},
		{"code 3 49 x 2.5 ms", "e3" + "31", 0},
		{"code 3 0 frames", "ff" + "00", 0},
		{"code 3 no count byte", "ff", 0},
		{"code 3 padded", "ff" + "42" + "ff02" + frame(4) + frame(256), 1920},
		{"code 3 padding past the end", "ff" + "42" + "05" + frame(4), 0},
		{"code 3 padding length cut", "ff" + "42" + "ff", 0},
		{"code 3 VBR", "ff" + "83" + "0203" + frame(2+3+4), 2880},
		{"code 3 VBR lengths past the end", "ff" + "83" + "0203" + frame(4), 0},
		{"code 3 VBR length cut", "ff" + "83" + "02", 0},
		{"empty", "", 0},
	} {
		n, err := OpusPacketSamples(unhex(t, c.hex))
		if c.want == 0 && err == nil || c.want != 0 && (err != nil || n != c.want) {
			t.Errorf("%s: %d, %v; want %d", c.name, n, err, c.want)
		}
	}
}

func TestOpusTSConfig(t *testing.T) {
	ext := func(data string) string { // Opus registration + extension descriptor
		return "05044f707573" + "7f" + hex.EncodeToString([]byte{byte(len(data)/2 + 1)}) + "80" + data
	}
	for _, c := range []struct {
		name, descriptors string
		dOps              string // channels|family and table; the rest is PreSkip 312, 48 kHz, gain 0
		channels          int
	}{
		{"no extension descriptor: stereo", "05044f707573", "02|00", 2},
		{"no descriptors", "", "02|00", 2},
		{"0x00 dual mono, one coupled stream", ext("00"), "02|ff01010001", 2},
		{"0x03", ext("03"), "03|010201000201", 3},
		{"0x08 7.1", ext("08"), "08|0105030006010203040507", 8},
		{"0x80 dual mono, two streams", ext("80"), "02|ff02000001", 2},
		{"0x81 mono, family 0", ext("810100"), "01|00", 1},
		{"0x81 stereo, family 0", ext("810200"), "02|00", 2},
		{"0x81 5.1, family 1, bit-packed", ext("81060168429d"), "06|010402000401020305", 6},
		{"0x81 1 channel, family 1", ext("81010100"), "01|01010000", 1},
		{"0x84 4 uncoupled", ext("84"), "04|010400" + "00010203", 4},
		{"language descriptor before", "0a04656e6700" + ext("06"), "06|010402000401020305", 6},
	} {
		want := "00" + c.dOps[:2] + "01380000bb800000" + c.dOps[3:]
		dOps, ch, err := OpusTSConfig(unhex(t, c.descriptors), 312)
		if err != nil || ch != c.channels || hex.EncodeToString(dOps) != want {
			t.Errorf("%s: %x, %d, %v; want %s", c.name, dOps, ch, err, want)
			continue
		}
		if cfg, err := ParseDOps(dOps); err != nil || cfg.Channels != ch {
			t.Errorf("%s: ParseDOps: %+v, %v", c.name, cfg, err)
		}
	}
	for name, d := range map[string]string{
		"reserved 0x09":             ext("09"),
		"reserved 0x89":             ext("89"),
		"reserved 0xff":             ext("ff"),
		"no channel_config_code":    "7f0180",
		"descriptor cut":            "05044f7075",
		"descriptor length cut":     "05",
		"0x81 without fields":       ext("81"),
		"0x81 0 channels":           ext("810001"),
		"0x81 family 0, 3 channels": ext("810300"),
		"0x81 mapping cut":          ext("810601"),
		"0x81 mapping out of range": ext("81020190"),
	} {
		if dOps, ch, err := OpusTSConfig(unhex(t, d), 0); err == nil {
			t.Errorf("%s: %x, %d", name, dOps, ch)
		}
	}
}

// TestDOps cross-checks the family 255 layout with mp4ff's dOps encoder and reads back
// malformed payloads.
func TestDOps(t *testing.T) {
	dOps, _, err := OpusTSConfig(unhex(t, "7f028080"), 3840)
	if err != nil {
		t.Fatal(err)
	}
	box := &mp4.DopsBox{OutputChannelCount: 2, PreSkip: 3840, InputSampleRate: 48000,
		ChannelMappingFamily: 255, StreamCount: 2, ChannelMapping: []byte{0, 1}}
	var buf bytes.Buffer
	if err := box.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes()[8:], dOps) {
		t.Errorf("dOps %x, mp4ff encodes %x", dOps, buf.Bytes()[8:])
	}
	for name, p := range map[string]string{
		"short":                 "000201380000bb800000",
		"version 1":             "010201380000bb80000000",
		"0 channels":            "000001380000bb80000000",
		"family 0, 6 channels":  "000601380000bb80000000",
		"mapping table cut":     "000601380000bb8000000104020004010203",
		"more coupled than all": "000201380000bb8000000101020001",
		"0 streams":             "000201380000bb8000000100000001",
		"mapping past streams":  "000201380000bb8000000101000002",
	} {
		if cfg, err := ParseDOps(unhex(t, p)); err == nil {
			t.Errorf("%s: %+v", name, cfg)
		}
	}
	// 255 in a mapping is a silent channel.
	if _, err := ParseDOps(unhex(t, "000201380000bb800000010100ff00")); err != nil {
		t.Errorf("silent channel: %v", err)
	}
}
