package codec

import (
	"testing"

	"github.com/Eyevinn/mp4ff/av1"
)

// TestAV1CVectors reads the av1C of MP4s ffmpeg 5.1 wrote (libaom-av1, libsvtav1) and
// checks it against what ffprobe says of the stream.
func TestAV1CVectors(t *testing.T) {
	for _, c := range []struct {
		name, av1C string
		want       AV1Config
	}{
		{"libaom 4:2:0 8-bit 160x90", "81000c000a0a00000003b4fd936be401",
			AV1Config{Profile: 0, BitDepth: 8, ChromaSubsamplingX: 1, ChromaSubsamplingY: 1, Width: 160, Height: 90}},
		{"libsvtav1 4:2:0 10-bit 176x144", "81004c000a0b00000003bd7c7805f08080",
			AV1Config{Profile: 0, BitDepth: 10, ChromaSubsamplingX: 1, ChromaSubsamplingY: 1, Width: 176, Height: 144}},
		{"libaom 4:4:4 8-bit (High) 160x90", "812000000a0a20000003b4fd936be408",
			AV1Config{Profile: 1, BitDepth: 8, Width: 160, Height: 90}},
	} {
		got, err := ParseAV1C(unhex(t, c.av1C))
		if err != nil || got != c.want {
			t.Errorf("%s: %+v, %v\nwant %+v", c.name, got, err, c.want)
		}
	}
}

// seqHeader builds a sequence_header_obu() up to the frame size, with the optional
// parts AV1 5.5 has before it.
type seqHeader struct {
	reduced, timing, equalInterval, decoderModel, displayDelay bool
	levels                                                     []uint32 // one per operating point
	w, h                                                       int
}

func (s seqHeader) obu(withSize bool) []byte {
	var w bitWriter
	w.put(2, 3) // seq_profile
	w.put(0, 1) // still_picture
	w.put(b2u(s.reduced), 1)
	if s.reduced {
		w.put(9, 5)
	} else {
		w.put(b2u(s.timing), 1)
		if s.timing {
			w.put(1001, 32)
			w.put(60000, 32)
			w.put(b2u(s.equalInterval), 1)
			if s.equalInterval {
				w.put(0b0001011, 7) // uvlc: 3 zeros, 1, then 3 bits: 10
			}
			w.put(b2u(s.decoderModel), 1)
			if s.decoderModel {
				w.put(9, 5) // buffer_delay_length_minus_1: 10-bit delays
				w.put(1001, 32)
				w.put(31, 5)
				w.put(31, 5)
			}
		}
		w.put(b2u(s.displayDelay), 1)
		w.put(uint32(len(s.levels)-1), 5)
		for i, l := range s.levels {
			w.put(0x101<<uint(i), 12)
			w.put(l, 5)
			if l > 7 {
				w.put(1, 1)
			}
			if s.decoderModel {
				w.put(uint32(i&1), 1)
				if i&1 == 1 {
					w.put(0x3ff, 10)
					w.put(0, 10)
					w.put(1, 1)
				}
			}
			if s.displayDelay {
				w.put(1, 1)
				w.put(9, 4)
			}
		}
	}
	w.put(15, 4)
	w.put(15, 4)
	w.put(uint32(s.w-1), 16)
	w.put(uint32(s.h-1), 16)
	// the rest of a real sequence header, for mp4ff's parser: no frame id numbers, no
	// superres or CDEF or restoration, 8-bit 4:2:0 color config, film grain off
	w.put(0, 1) // frame_id_numbers_present_flag (not read by a reduced header)
	w.put(0, 3) // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
	for w.n%8 != 0 {
		w.put(0, 1)
	}
	w.b = append(w.b, make([]byte, 8)...)
	hdr := []byte{obuSequenceHeader << 3}
	if !withSize {
		return append(hdr, w.b...)
	}
	hdr[0] |= 2
	return append(append(hdr, byte(len(w.b))), w.b...)
}

func TestAV1SequenceHeaders(t *testing.T) {
	for _, c := range []struct {
		name string
		s    seqHeader
	}{
		{"reduced still picture", seqHeader{reduced: true, w: 1, h: 65536}},
		{"one operating point", seqHeader{levels: []uint32{8}, w: 1920, h: 1080}},
		{"timing, decoder model, display delay, 3 operating points",
			seqHeader{timing: true, equalInterval: true, decoderModel: true, displayDelay: true, levels: []uint32{13, 4, 12}, w: 3840, h: 2160}},
		{"timing without decoder model", seqHeader{timing: true, displayDelay: true, levels: []uint32{1, 31}, w: 640, h: 360}},
	} {
		for _, sized := range []bool{true, false} {
			// A padding OBU (type 15) first, an extension byte on the sequence header.
			obu := c.s.obu(sized)
			obu[0] |= 4
			obu = append([]byte{obu[0], 0x18}, obu[1:]...)
			p := append([]byte{0x81, 0x48, 0xe0, 0x00, 15<<3 | 2, 2, 0xaa, 0xbb}, obu...)
			got, err := ParseAV1C(p)
			want := AV1Config{Profile: 2, Level: 8, Tier: 1, BitDepth: 12, Width: c.s.w, Height: c.s.h}
			if err != nil || got != want {
				t.Errorf("%s (obu_size %v): %+v, %v\nwant %+v", c.name, sized, got, err, want)
			}
			// mp4ff parses the same OBU to the same size.
			if sh, err := av1.ParseSequenceHeader(c.s.obu(false)[1:]); err != nil {
				t.Errorf("%s: mp4ff: %v", c.name, err)
			} else if int(sh.Width()) != c.s.w || int(sh.Height()) != c.s.h {
				t.Errorf("%s: mp4ff reads %dx%d", c.name, sh.Width(), sh.Height())
			}
		}
	}
}

func TestAV1CMalformed(t *testing.T) {
	seq := seqHeader{levels: []uint32{8}, w: 1920, h: 1080}.obu(true)
	for name, p := range map[string][]byte{
		"short":                 {0x81, 0, 0},
		"marker 0":              {0x01, 0, 0, 0},
		"version 2":             {0x82, 0, 0, 0},
		"profile 3":             {0x81, 0x60, 0, 0},
		"forbidden bit":         {0x81, 0, 0, 0, 0x80 | 1<<3 | 2, 0},
		"OBU size past end":     append([]byte{0x81, 0, 0, 0}, seq[:len(seq)-1]...),
		"extension byte cut":    {0x81, 0, 0, 0, 1<<3 | 4},
		"leb128 cut":            {0x81, 0, 0, 0, 1<<3 | 2, 0x80},
		"leb128 of 9 bytes":     {0x81, 0, 0, 0, 1<<3 | 2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0},
		"sequence header cut":   append([]byte{0x81, 0, 0, 0}, seq[0], 4, seq[2], seq[3], seq[4], seq[5]),
		"empty sequence header": {0x81, 0, 0, 0, 1<<3 | 2, 0},
	} {
		if c, err := ParseAV1C(p); err == nil {
			t.Errorf("%s: %+v", name, c)
		}
	}
	// No configOBUs: no size, no error.
	if c, err := ParseAV1C([]byte{0x81, 0x05, 0x0c, 0}); err != nil || c.Width != 0 || c.Level != 5 {
		t.Errorf("without configOBUs: %+v, %v", c, err)
	}
}
