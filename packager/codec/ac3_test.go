package codec

import (
	"bytes"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// ac3Vectors are syncframes ffmpeg 5.1 made (testdata/make.sh), with what ffprobe says of
// them and the dac3/dec3 payload ffmpeg writes when it copies them into an MP4.
var ac3Vectors = []struct {
	file        string
	eac3        bool
	rate, ch    int
	acmod       uint8
	lfe         bool
	sizes       []int
	config      string // dac3 or dec3 payload from ffmpeg's MP4
	dataRateKbs int    // dec3 data_rate: ffmpeg takes the highest frame bit rate
}{
	{"ac3_mono48.ac3", false, 48000, 1, 1, false, []int{256, 256}, "100880", 0},
	{"ac3_st44.ac3", false, 44100, 2, 2, false, []int{416, 418}, "5010c0", 0},
	{"ac3_51_32.ac3", false, 32000, 6, 7, true, []int{1152, 1152}, "903d40", 0},
	{"eac3_51_48.eac3", true, 48000, 6, 7, true, []int{768, 768}, "0600200f00", 192},
	{"eac3_st44.eac3", true, 44100, 2, 2, false, []int{416, 418}, "0300600400", 96},
	{"eac3_mono32.eac3", true, 32000, 1, 1, false, []int{384, 384}, "0200a00200", 64},
}

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ac3Frames splits a stream of syncframes by AC3FrameLen.
func ac3Frames(t testing.TB, b []byte) [][]byte {
	t.Helper()
	var fs [][]byte
	for len(b) > 0 {
		n, ok := AC3FrameLen(b)
		if !ok || n > len(b) {
			t.Fatalf("AC3FrameLen at frame %d: %d, %v (%d bytes left)", len(fs), n, ok, len(b))
		}
		fs = append(fs, b[:n])
		b = b[n:]
	}
	return fs
}

func TestAC3Vectors(t *testing.T) {
	for _, v := range ac3Vectors {
		t.Run(v.file, func(t *testing.T) {
			frames := ac3Frames(t, readVector(t, v.file))
			if len(frames) != len(v.sizes) {
				t.Fatalf("%d frames, ffprobe sees %d", len(frames), len(v.sizes))
			}
			var hs []AC3Header
			rate := 0
			for i, f := range frames {
				h, err := ParseAC3(f)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if h.FrameSize != v.sizes[i] || h.EAC3 != v.eac3 || h.SampleRate != v.rate ||
					h.Channels != v.ch || h.Acmod != v.acmod || h.LFE != v.lfe || h.Samples != 1536 {
					t.Errorf("frame %d: %+v", i, h)
				}
				hs = append(hs, h)
				rate = max(rate, h.BitRate/1000)
			}
			want, _ := hex.DecodeString(v.config)
			var got []byte
			var cfg AC3Config
			var err error
			if v.eac3 {
				if rate != v.dataRateKbs {
					t.Errorf("data rate %d kbit/s, ffmpeg writes %d", rate, v.dataRateKbs)
				}
				got = DEC3(hs[:1], rate)
				cfg, err = ParseDEC3(want)
				if n := EAC3Channels(hs[:1]); n != v.ch {
					t.Errorf("EAC3Channels %d, want %d", n, v.ch)
				}
			} else {
				got = DAC3(hs[0])
				cfg, err = ParseDAC3(want)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("config %x, ffmpeg writes %x", got, want)
			}
			if err != nil || cfg != (AC3Config{SampleRate: v.rate, Channels: v.ch}) {
				t.Errorf("parsed ffmpeg's config: %+v, %v", cfg, err)
			}
		})
	}
}

// TestAC3CRC corrupts one byte of real syncframes: in AC-3's first 5/8 (crc1), in its
// last 3/8 (crc2), and in an E-AC-3 frame (crc2 covers all of it).
func TestAC3CRC(t *testing.T) {
	for _, c := range []struct {
		file string
		at   int // byte to corrupt
		want string
	}{
		{"ac3_st44.ac3", 10, "crc1"},
		{"ac3_st44.ac3", 200, "crc1"},
		{"ac3_st44.ac3", 300, "crc2"},
		{"ac3_st44.ac3", 415, "crc2"},
		{"eac3_51_48.eac3", 7, "crc2"},
		{"eac3_51_48.eac3", 700, "crc2"},
	} {
		f := bytes.Clone(ac3Frames(t, readVector(t, c.file))[0])
		f[c.at] ^= 0x10
		if _, err := ParseAC3(f); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s byte %d corrupt: %v, want a %s mismatch", c.file, c.at, err, c.want)
		}
	}
}

func TestAC3FrameLenInvalid(t *testing.T) {
	ac3 := ac3Frames(t, readVector(t, "ac3_st44.ac3"))[0][:8]
	eac3 := ac3Frames(t, readVector(t, "eac3_st44.eac3"))[0][:8]
	edit := func(b []byte, at int, and, or byte) []byte {
		b = bytes.Clone(b)
		b[at] = b[at]&and | or
		return b
	}
	for name, b := range map[string][]byte{
		"short":          ac3[:5],
		"sync":           edit(ac3, 1, 0, 0x78),
		"AC-3 fscod 3":   edit(ac3, 4, 0x3f, 0xc0),
		"frmsizecod 38":  edit(ac3, 4, 0xc0, 38),
		"bsid 9":         edit(ac3, 5, 0x07, 9<<3),
		"bsid 10":        edit(ac3, 5, 0x07, 10<<3),
		"bsid 17":        edit(eac3, 5, 0x07, 17<<3),
		"bsid 31":        edit(eac3, 5, 0x07, 31<<3),
		"strmtyp 3":      edit(eac3, 2, 0x3f, 0xc0),
		"fscod2 3":       edit(eac3, 4, 0x0f, 0xf0),
		"E-AC-3 3 words": edit(edit(eac3, 2, 0xf8, 0), 3, 0, 2),
	} {
		if n, ok := AC3FrameLen(b); ok {
			t.Errorf("%s: %d bytes", name, n)
		}
	}
	if n, ok := AC3FrameLen(ac3); !ok || n != 416 {
		t.Errorf("AC-3 header: %d, %v", n, ok)
	}
	if n, ok := AC3FrameLen(eac3); !ok || n != 416 {
		t.Errorf("E-AC-3 header: %d, %v", n, ok)
	}
	if _, err := ParseAC3([]byte("not a syncframe")); err == nil {
		t.Error("ParseAC3 took text")
	}
	if _, err := ParseAC3(ac3Frames(t, readVector(t, "ac3_st44.ac3"))[0][:415]); err == nil {
		t.Error("ParseAC3 took a frame shorter than its header says")
	}
}
