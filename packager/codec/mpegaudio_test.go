package codec

import (
	"encoding/hex"
	"testing"
)

// TestMPEGAudioVectors walks frames ffmpeg made (libmp3lame and mp2) by FrameSize and
// checks each header against what ffprobe says of the stream and its packets.
func TestMPEGAudioVectors(t *testing.T) {
	for _, v := range []struct {
		file                 string
		version, layer, rate int
		channels, bitrate    int
		sizes                []int // ffprobe's packet sizes
		samples              int
		objectType           uint8 // what ffmpeg writes in esds
	}{
		{"mp3_44st.mp3", 1, 3, 44100, 2, 64000, []int{208, 209, 209}, 1152, 0x6B},
		{"mp3_32mono.mp3", 1, 3, 32000, 1, 48000, []int{216, 216, 216}, 1152, 0x6B},
		{"mp3_22st.mp3", 2, 3, 22050, 2, 32000, []int{104, 105, 104}, 576, 0x69},
		{"mp3_16mono.mp3", 2, 3, 16000, 1, 24000, []int{108, 108, 108}, 576, 0x69},
		{"mp3_11mono.mp3", 25, 3, 11025, 1, 16000, []int{104, 105, 104}, 576, 0x69},
		{"mp3_8mono.mp3", 25, 3, 8000, 1, 8000, []int{72, 72, 72}, 576, 0x69},
		{"mp2_48st.mp2", 1, 2, 48000, 2, 128000, []int{384, 384}, 1152, 0x6B},
		{"mp2_24mono.mp2", 2, 2, 24000, 1, 32000, []int{192, 192}, 1152, 0x69},
	} {
		b := readVector(t, v.file)
		for i, size := range v.sizes {
			h, ok := ParseMPEGAudio(b)
			want := MPEGAudioHeader{Version: v.version, Layer: v.layer, SampleRate: v.rate, Channels: v.channels,
				Bitrate: v.bitrate, FrameSize: size, Samples: v.samples}
			if !ok || h != want {
				t.Errorf("%s frame %d: %+v, %v\nwant %+v", v.file, i, h, ok, want)
				break
			}
			if h.ObjectType() != v.objectType {
				t.Errorf("%s: object type %#x, ffmpeg writes %#x", v.file, h.ObjectType(), v.objectType)
			}
			b = b[size:]
		}
		if len(b) != 0 {
			t.Errorf("%s: %d bytes after the frames", v.file, len(b))
		}
	}
}

// TestMPEGAudioHeaders covers what ffmpeg cannot encode (layer I, padding in layer I
// and II) and every reason to refuse a header.
func TestMPEGAudioHeaders(t *testing.T) {
	for _, c := range []struct {
		hex  string
		want *MPEGAudioHeader
	}{
		// MPEG-1 layer I, 384 kbit/s, 48 kHz, padded: (12*384000/48000 + 1) * 4
		{"fffec600", &MPEGAudioHeader{1, 1, 48000, 2, 384000, 388, 384}},
		// MPEG-2 layer I, 256 kbit/s, 16 kHz, mono: 12*256000/16000 * 4
		{"fff6e8c0", &MPEGAudioHeader{2, 1, 16000, 1, 256000, 768, 384}},
		// MPEG-1 layer II, 384 kbit/s, 44.1 kHz, padded: 144*384000/44100 + 1
		{"fffde200", &MPEGAudioHeader{1, 2, 44100, 2, 384000, 1254, 1152}},
		// MPEG-1 layer III, 320 kbit/s, 32 kHz, dual channel: 144*320000/32000
		{"fffbe880", &MPEGAudioHeader{1, 3, 32000, 2, 320000, 1440, 1152}},
		// MPEG-2.5 layer III, 160 kbit/s, 8 kHz, padded: 72*160000/8000 + 1
		{"ffe3ea00", &MPEGAudioHeader{25, 3, 8000, 2, 160000, 1441, 576}},
		{"fffb90", nil}, // short
		{"fffa9064", &MPEGAudioHeader{1, 3, 44100, 2, 128000, 417, 1152}}, // CRC-protected
		{"7ffb9064", nil}, // sync
		{"ffdb9064", nil}, // sync, third byte of it
		{"ffeb9064", nil}, // reserved version
		{"fff99064", nil}, // reserved layer
		{"fffb0064", nil}, // free format
		{"fffbf064", nil}, // bitrate index 15
		{"fffb9c64", nil}, // reserved sample rate
	} {
		b, _ := hex.DecodeString(c.hex)
		h, ok := ParseMPEGAudio(b)
		if c.want == nil {
			if ok {
				t.Errorf("%s: %+v", c.hex, h)
			}
		} else if !ok || h != *c.want {
			t.Errorf("%s: %+v, %v, want %+v", c.hex, h, ok, *c.want)
		}
	}
}
