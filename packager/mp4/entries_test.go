package mp4

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// Decoder configurations as the demuxers hand them over (box payloads, no headers).
var (
	// AC-3 5.1 at 48 kHz, 448 kbit/s: fscod 0, bsid 8, bsmod 0, acmod 7, lfeon 1,
	// bit_rate_code 14.
	dac3Payload = []byte{0x10, 0x3d, 0xc0}
	// E-AC-3 stereo at 48 kHz: data_rate 192, one independent substream (fscod 0,
	// bsid 16, acmod 2), no dependent substream.
	dec3Payload = []byte{0x06, 0x00, 0x20, 0x04, 0x00}
	// Opus stereo: version 0, 2 channels, pre-skip 312, input 48000 Hz, gain 0, family 0.
	dopsPayload = []byte{0x00, 0x02, 0x01, 0x38, 0x00, 0x00, 0xbb, 0x80, 0x00, 0x00, 0x00}
	// AV1 main profile, level 0, 4:2:0 8-bit, with the sequence header OBU (what
	// libaom-av1 writes for 160x90).
	av1CPayload = []byte{0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0a, 0x00, 0x00, 0x00, 0x03, 0xb4, 0xfd, 0x93, 0x6b, 0xe4, 0x01}
)

func ac3Track() *media.Track {
	return &media.Track{ID: 1, Kind: media.Audio, Codec: media.AC3, Timescale: 48000, SampleRate: 48000, Channels: 6,
		FrameDuration: 1536, Config: dac3Payload}
}

func eac3Track() *media.Track {
	return &media.Track{ID: 1, Kind: media.Audio, Codec: media.EAC3, Timescale: 48000, SampleRate: 48000, Channels: 2,
		FrameDuration: 1536, Config: dec3Payload}
}

func mp3Track(rate, channels int, obj uint8) *media.Track {
	return &media.Track{ID: 1, Kind: media.Audio, Codec: media.MPEGAudio, Timescale: uint32(rate), SampleRate: rate,
		Channels: channels, FrameDuration: 1152, ObjectType: obj}
}

func opusTrack() *media.Track {
	return &media.Track{ID: 1, Kind: media.Audio, Codec: media.Opus, Timescale: 48000, SampleRate: 48000, Channels: 2,
		Config: dopsPayload}
}

func hevcTrack() *media.Track {
	// Parameter sets of libx265 for 160x96.
	return &media.Track{ID: 1, Kind: media.Video, Codec: media.H265, Timescale: 90000, Width: 160, Height: 96,
		VPS: [][]byte{{0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x1e, 0x95, 0x98, 0x09}},
		SPS: [][]byte{{0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x1e, 0xa0, 0x14, 0x20, 0x61,
			0x65, 0x95, 0x9a, 0x49, 0x32, 0xbc, 0x05, 0xa0, 0x20, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x03, 0x03, 0x21}},
		PPS: [][]byte{{0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40}}}
}

func av1Track() *media.Track {
	return &media.Track{ID: 1, Kind: media.Video, Codec: media.AV1, Timescale: 90000, Width: 160, Height: 90,
		Config: av1CPayload}
}

// boxPayload returns the payload of the first box of type typ among the boxes b is made
// of (the boxes after it may be cut off).
func boxPayload(t *testing.T, b []byte, typ string) []byte {
	t.Helper()
	for len(b) >= 8 {
		size := int(binary.BigEndian.Uint32(b))
		if string(b[4:8]) == typ && size >= 8 && size <= len(b) {
			return b[8:size]
		}
		if size < 8 || size > len(b) {
			break
		}
		b = b[size:]
	}
	t.Fatalf("no %q box", typ)
	return nil
}

// onlyBox checks that b is exactly one box of type typ and returns its payload.
func onlyBox(t *testing.T, b []byte, typ string) []byte {
	t.Helper()
	if len(b) < 8 || int(binary.BigEndian.Uint32(b)) != len(b) || string(b[4:8]) != typ {
		t.Fatalf("want exactly one %q box, got % x", typ, b)
	}
	return b[8:]
}

// stsdEntry returns the type and payload of the first track's sample entry in a header
// BuildHeader made.
func stsdEntry(t *testing.T, hdr []byte) (string, []byte) {
	t.Helper()
	b := hdr
	for _, typ := range []string{"moov", "trak", "mdia", "minf", "stbl", "stsd"} {
		b = boxPayload(t, b, typ)
	}
	if n := binary.BigEndian.Uint32(b[4:]); n != 1 {
		t.Fatalf("stsd has %d entries", n)
	}
	e := b[8:]
	return string(e[4:8]), onlyBox(t, e, string(e[4:8]))
}

// descriptor splits an ISO 14496-1 descriptor (tag, size in 7-bit groups, body) off b.
func descriptor(t *testing.T, b []byte) (tag byte, body, rest []byte) {
	t.Helper()
	if len(b) < 2 {
		t.Fatalf("descriptor cut off: % x", b)
	}
	tag, n, i := b[0], 0, 1
	for ; i < len(b); i++ {
		n = n<<7 | int(b[i]&0x7f)
		if b[i]&0x80 == 0 {
			break
		}
	}
	i++
	if i+n > len(b) {
		t.Fatalf("descriptor %#x of %d bytes in %d", tag, n, len(b)-i)
	}
	return tag, b[i : i+n], b[i+n:]
}

// esdsFields reads an esds payload: the DecoderConfigDescriptor's objectTypeIndication
// and streamType byte, its DecoderSpecificInfo (nil when there is none), and the tags of
// the ES_Descriptor's sub-descriptors in order.
func esdsFields(t *testing.T, p []byte) (obj, stream byte, dsi []byte, tags []byte) {
	t.Helper()
	tag, es, rest := descriptor(t, p[4:])
	if tag != 0x03 || len(rest) != 0 || es[2] != 0 { // ES_ID, flags 0
		t.Fatalf("ES_Descriptor: tag %#x, %d bytes after it, flags %#x", tag, len(rest), es[2])
	}
	for sub := es[3:]; len(sub) > 0; {
		var body []byte
		tag, body, sub = descriptor(t, sub)
		tags = append(tags, tag)
		if tag == 0x04 {
			obj, stream = body[0], body[1]
			for dcd := body[13:]; len(dcd) > 0; {
				var b []byte
				tag, b, dcd = descriptor(t, dcd)
				if tag == 0x05 {
					dsi = b
				}
			}
		}
	}
	return obj, stream, dsi, tags
}

// TestAudioSampleEntries: each audio codec's sample entry, byte by byte where it matters.
func TestAudioSampleEntries(t *testing.T) {
	aacMono := audioTrack()
	aacMono.ID, aacMono.Channels, aacMono.Config = 1, 1, []byte{0x11, 0x88}
	tests := []struct {
		name     string
		track    *media.Track
		typ      string
		channels uint16
		rate     uint32 // the samplerate field (16.16)
		cfgType  string // the one box in the entry
		cfg      []byte // its payload verbatim (not for esds)
		obj      byte   // esds objectTypeIndication
		dsi      []byte // esds DecoderSpecificInfo (nil: none)
	}{
		{"AAC", aacMono, "mp4a", 1, 48000 << 16, "esds", nil, 0x40, []byte{0x11, 0x88}},
		{"AC-3", ac3Track(), "ac-3", 6, 48000 << 16, "dac3", dac3Payload, 0, nil},
		{"E-AC-3", eac3Track(), "ec-3", 2, 48000 << 16, "dec3", dec3Payload, 0, nil},
		{"MP3 (MPEG-1)", mp3Track(44100, 2, 0x6B), "mp4a", 2, 44100 << 16, "esds", nil, 0x6B, nil},
		{"MP3 (MPEG-2)", mp3Track(22050, 1, 0x69), "mp4a", 1, 22050 << 16, "esds", nil, 0x69, nil},
		{"Opus", opusTrack(), "Opus", 2, 48000 << 16, "dOps", dopsPayload, 0, nil},
		{"Opus at another input rate", func() *media.Track {
			o := opusTrack()
			o.SampleRate = 16000 // the entry says 48000 whatever the demuxer set
			return o
		}(), "Opus", 2, 48000 << 16, "dOps", dopsPayload, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := buildIndex(t, seq(tc.track, 0, 1536, 1536))
			hdr, err := BuildHeader(x, []*media.Track{tc.track}, BrandM4A, 0)
			if err != nil {
				t.Fatal(err)
			}
			typ, e := stsdEntry(t, hdr)
			if typ != tc.typ {
				t.Fatalf("sample entry %q, want %q", typ, tc.typ)
			}
			// AudioSampleEntry: reserved(6) data_reference_index(2) reserved(8)
			// channelcount(2) samplesize(2) pre_defined(2) reserved(2) samplerate(4).
			if dri, ch, ss, rate := binary.BigEndian.Uint16(e[6:]), binary.BigEndian.Uint16(e[16:]),
				binary.BigEndian.Uint16(e[18:]), binary.BigEndian.Uint32(e[24:]); dri != 1 || ch != tc.channels || ss != 16 || rate != tc.rate ||
				!bytes.Equal(e[:6], make([]byte, 6)) || !bytes.Equal(e[8:16], make([]byte, 8)) || !bytes.Equal(e[20:24], make([]byte, 4)) {
				t.Errorf("fields % x: data_reference_index %d channelcount %d samplesize %d samplerate %#x, want 1 %d 16 %#x",
					e[:28], dri, ch, ss, rate, tc.channels, tc.rate)
			}
			cfg := onlyBox(t, e[28:], tc.cfgType)
			if tc.cfgType != "esds" {
				if !bytes.Equal(cfg, tc.cfg) {
					t.Errorf("%s % x, want % x", tc.cfgType, cfg, tc.cfg)
				}
			} else {
				obj, stream, dsi, tags := esdsFields(t, cfg)
				if obj != tc.obj || stream != 0x15 || !bytes.Equal(dsi, tc.dsi) || (tc.dsi == nil) != (dsi == nil) {
					t.Errorf("esds: objectTypeIndication %#x streamType byte %#x DecoderSpecificInfo % x, want %#x 0x15 % x",
						obj, stream, dsi, tc.obj, tc.dsi)
				}
				if !bytes.Equal(tags, []byte{0x04, 0x06}) {
					t.Errorf("ES_Descriptor holds descriptors % x, want DecoderConfig, SLConfig", tags)
				}
			}
			decodeMoov(t, hdr, x.MediaSize) // and mp4ff reads it
		})
	}
}

// TestAV1SampleEntry: av01 with the av1C payload verbatim and the track's size.
func TestAV1SampleEntry(t *testing.T) {
	v := av1Track()
	x := buildIndex(t, seq(v, 0, 3600, 3600))
	hdr, err := BuildHeader(x, []*media.Track{v}, BrandMP4, 0)
	if err != nil {
		t.Fatal(err)
	}
	typ, e := stsdEntry(t, hdr)
	if typ != "av01" {
		t.Fatalf("sample entry %q", typ)
	}
	// VisualSampleEntry: ..., width at 24, height at 26, compressorname at 42, the
	// boxes after 78 bytes.
	if w, h := binary.BigEndian.Uint16(e[24:]), binary.BigEndian.Uint16(e[26:]); w != 160 || h != 90 {
		t.Errorf("size %dx%d", w, h)
	}
	if name, want := e[42:74], append([]byte("\x0aAOM Coding"), make([]byte, 21)...); !bytes.Equal(name, want) {
		t.Errorf("compressorname %q, want %q", name, want)
	}
	if cfg := onlyBox(t, e[78:], "av1C"); !bytes.Equal(cfg, av1CPayload) {
		t.Errorf("av1C % x, want % x", cfg, av1CPayload)
	}
	moov := decodeMoov(t, hdr, x.MediaSize)
	if av01 := moov.Traks[0].Mdia.Minf.Stbl.Stsd.Av01; av01 == nil || av01.Av1C == nil {
		t.Errorf("mp4ff finds no av01 with av1C")
	}
}

// TestVerbatimVideoConfig: an H.264/HEVC track with a Config (an fMP4 avc1/hvc1
// source's) gets it as its avcC/hvcC byte for byte, NAL length size included; without
// one, the record is built from the parameter sets.
func TestVerbatimVideoConfig(t *testing.T) {
	built := func(tr *media.Track) (string, []byte) {
		x := buildIndex(t, seq(tr, 0, 3600, 3600))
		hdr, err := BuildHeader(x, []*media.Track{tr}, BrandMP4, 0)
		if err != nil {
			t.Fatal(err)
		}
		return stsdEntry(t, hdr)
	}
	// An avcC with lengthSizeMinusOne 1 (2-byte NAL lengths) and a byte of extension
	// that a record built from the parameter sets would not have.
	h := videoTrack()
	_, fromSets := built(h)
	avcC := append(append([]byte{1, 0x64, 0, 0x1f, 0xfd, 0xe1}, 0, byte(len(h.SPS[0]))), h.SPS[0]...)
	avcC = append(append(avcC, 1, 0, byte(len(h.PPS[0]))), h.PPS[0]...)
	avcC = append(avcC, 0xfc, 0xf8, 0xf8, 0)
	h.Config = avcC
	typ, e := built(h)
	if cfg := onlyBox(t, e[78:], "avcC"); typ != "avc1" || !bytes.Equal(cfg, avcC) {
		t.Errorf("%s with avcC % x, want avc1 with % x", typ, cfg, avcC)
	}
	if bytes.Equal(onlyBox(t, fromSets[78:], "avcC"), avcC) {
		t.Errorf("the avcC built from the parameter sets is the verbatim one")
	}
	v := hevcTrack()
	hvcC := append([]byte{1}, make([]byte, 20)...)
	hvcC = append(hvcC, 0xf0|0x01, 0) // lengthSizeMinusOne 1, no arrays
	v.Config = hvcC
	if typ, e := built(v); typ != "hvc1" || !bytes.Equal(onlyBox(t, e[78:], "hvcC"), hvcC) {
		t.Errorf("%s with hvcC % x, want hvc1 with % x", typ, onlyBox(t, e[78:], "hvcC"), hvcC)
	}
	for _, tr := range []*media.Track{videoTrack(), hevcTrack()} {
		tr.Config = []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23}
		x := buildIndex(t, seq(tr, 0, 3600))
		if _, err := BuildHeader(x, []*media.Track{tr}, BrandMP4, 0); err == nil || !strings.Contains(err.Error(), "invalid") {
			t.Errorf("%s with a config of version 0: err = %v", tr.Codec, err)
		}
	}
}

// TestSampleEntryErrors: a track without what its codec's sample entry needs is an error
// that says what is missing.
func TestSampleEntryErrors(t *testing.T) {
	with := func(tr *media.Track, f func(*media.Track)) *media.Track { f(tr); return tr }
	tests := []struct {
		name  string
		track *media.Track
		want  string
	}{
		{"AAC without config", with(audioTrack(), func(t *media.Track) { t.Config = nil }), "AAC track without AudioSpecificConfig"},
		{"AAC without channels", with(audioTrack(), func(t *media.Track) { t.Channels = 0 }), "AAC track without channel count"},
		{"AC-3 without config", with(ac3Track(), func(t *media.Track) { t.Config = nil }), "AC-3 track without dac3"},
		{"AC-3 config with its box header", with(ac3Track(), func(t *media.Track) {
			t.Config = append([]byte{0, 0, 0, 11, 'd', 'a', 'c', '3'}, dac3Payload...)
		}), "AC-3 track without dac3"},
		{"E-AC-3 without config", with(eac3Track(), func(t *media.Track) { t.Config = nil }), "E-AC-3 track without dec3"},
		{"E-AC-3 short config", with(eac3Track(), func(t *media.Track) { t.Config = dec3Payload[:4] }), "E-AC-3 track without dec3"},
		{"E-AC-3 without sample rate", with(eac3Track(), func(t *media.Track) { t.SampleRate = 0 }), "sample rate"},
		{"MPEG audio without object type", mp3Track(44100, 2, 0), "object type 0x0"},
		{"MPEG audio with AAC's object type", mp3Track(44100, 2, 0x40), "object type 0x40"},
		{"Opus without config", with(opusTrack(), func(t *media.Track) { t.Config = nil }), "Opus track without dOps"},
		{"Opus dOps version 1", with(opusTrack(), func(t *media.Track) {
			t.Config = append([]byte{1}, dopsPayload[1:]...)
		}), "Opus track without dOps"},
		{"Opus family 1 without mapping table", with(opusTrack(), func(t *media.Track) {
			t.Config = append(append([]byte(nil), dopsPayload[:10]...), 1)
		}), "channel mapping table"},
		{"Opus channels differ from dOps", with(opusTrack(), func(t *media.Track) { t.Channels = 6 }), "6 channels with a dOps of 2"},
		{"AV1 without config", with(av1Track(), func(t *media.Track) { t.Config = nil }), "AV1 track without av1C"},
		{"AV1 config without marker", with(av1Track(), func(t *media.Track) { t.Config = av1CPayload[1:] }), "AV1 track without av1C"},
		{"AV1 without size", with(av1Track(), func(t *media.Track) { t.Width = 0 }), "invalid video size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.track.ID = 1
			x := buildIndex(t, seq(tc.track, 0, 1536))
			_, err := BuildHeader(x, []*media.Track{tc.track}, BrandMP4, 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}
