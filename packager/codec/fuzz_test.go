package codec

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/Eyevinn/mp4ff/av1"
	mcopus "github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
)

// The fuzz targets check that no input panics and that what a parser accepts is
// consistent; their seeds are the table tests' inputs.

func FuzzAC3(f *testing.F) {
	for _, v := range ac3Vectors {
		f.Add(readVector(f, v.file))
	}
	f.Add(eac3Spec{acmod: 7, lfe: true, numblkscod: 3, chanmap: -1, mix: true, info: true, addbsi: []byte{0x01, 16}, words: 128}.frame())
	f.Add(eac3Spec{acmod: 0, numblkscod: 0, chanmap: -1, mix: true, info: true, addbsi: []byte{0x01, 3}, words: 64}.frame())
	f.Add(eac3Spec{strmtyp: 1, acmod: 2, numblkscod: 3, chanmap: 1 << 9, mix: true, info: true, words: 64}.frame())
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseAC3(b) // whatever its length
		n, ok := AC3FrameLen(b)
		if !ok {
			return
		}
		if n < eac3MinFrame {
			t.Fatalf("frame of %d bytes", n)
		}
		if size, _, _, ok := mediacommonAC3(b); ok && size != n {
			t.Fatalf("%d bytes, mediacommon says %d", n, size)
		}
		if n > len(b) {
			return
		}
		checkAC3(t, b[:n])
		if b[5]>>3 > 10 {
			// Random bytes rarely pass the CRC: mend it so the E-AC-3 bsi walk is
			// fuzzed too.
			fr := bytes.Clone(b[:n])
			crc := ac3CRC(fr[2 : n-2])
			fr[n-2], fr[n-1] = byte(crc>>8), byte(crc)
			checkAC3(t, fr)
		}
	})
}

func checkAC3(t *testing.T, frame []byte) {
	h, err := ParseAC3(frame)
	if err != nil {
		return
	}
	if h.FrameSize != len(frame) || h.Channels < 1 || h.Channels > 6 || h.SampleRate < 16000 || h.Samples%256 != 0 || h.BitRate <= 0 {
		t.Fatalf("%+v", h)
	}
	if !h.EAC3 {
		if c, err := ParseDAC3(DAC3(h)); err != nil || c.SampleRate != h.SampleRate || c.Channels != h.Channels {
			t.Fatalf("dac3 of %+v reads back as %+v, %v", h, c, err)
		}
		return
	}
	if h.StreamType == 1 {
		return // a lone dependent substream makes no dec3
	}
	c, err := ParseDEC3(DEC3([]AC3Header{h}, h.BitRate/1000))
	if err != nil || c.Channels != h.Channels || c.JOC != h.JOC || h.Fscod < 3 && c.SampleRate != h.SampleRate {
		t.Fatalf("dec3 of %+v reads back as %+v, %v", h, c, err)
	}
}

// FuzzAC3Boxes reads dac3 and dec3 payloads, and makes dec3 payloads of access units
// whose headers come from the input.
func FuzzAC3Boxes(f *testing.F) {
	for _, v := range ac3Vectors {
		f.Add(unhex(f, v.config))
	}
	f.Add(unhex(f, "2000205f02020110"))
	f.Add(unhex(f, "0041200400200202040110"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseDAC3(b)
		_, _ = ParseDEC3(b)
		var au []AC3Header
		for p := b; len(p) >= 4; p = p[4:] {
			au = append(au, AC3Header{EAC3: p[0]&1 == 1, StreamType: p[0] >> 1 & 3, Fscod: p[0] >> 3 & 3,
				Bsid: p[1] & 0x1f % 17, Acmod: p[1] >> 5, LFE: p[0]&0x20 != 0, ChanMap: uint16(p[2])<<8 | uint16(p[3]),
				HasChanMap: p[0]&0x40 != 0, JOC: p[0]&0x80 != 0, ComplexityIndex: p[2]})
		}
		d := DEC3(au, len(b)*100)
		n := EAC3Channels(au)
		if d == nil {
			if n != 0 {
				t.Fatalf("no dec3 but %d channels", n)
			}
			return
		}
		if _, err := ParseDEC3(d); err != nil {
			t.Fatalf("dec3 %x: %v", d, err)
		}
	})
}

func FuzzMPEGAudio(f *testing.F) {
	for _, name := range []string{"mp3_44st.mp3", "mp3_22st.mp3", "mp3_8mono.mp3", "mp2_48st.mp2", "mp2_24mono.mp2"} {
		f.Add(readVector(f, name)[:4])
	}
	f.Add(unhex(f, "fffec600"))
	f.Add(unhex(f, "fff6e8c0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := ParseMPEGAudio(b)
		if size, rate, bitrate, mok := mediacommonMPEGAudio(b); mok && (!ok || size != h.FrameSize || rate != h.SampleRate || bitrate != h.Bitrate) {
			t.Fatalf("%+v, %v; mediacommon: %d bytes, %d Hz, %d bit/s", h, ok, size, rate, bitrate)
		}
		if !ok {
			return
		}
		if h.FrameSize < MPEGAudioHeaderLen || h.Samples == 0 || h.Bitrate == 0 || h.SampleRate < 8000 ||
			h.Channels < 1 || h.Channels > 2 || h.ObjectType() != 0x69 && h.ObjectType() != 0x6B {
			t.Fatalf("%x: %+v", b[:4], h)
		}
	})
}

func FuzzOpusPacket(f *testing.F) {
	for _, s := range []string{"00", "fc0000", "fd00000000", "fa0300000000000000", "ff0300", "ff42ff02", "ff830203", "e330"} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := OpusPacketSamples(b)
		if err == nil && (n <= 0 || n > 5760 || n%120 != 0 || int64(n) != mcopus.PacketDuration2(b)) {
			t.Fatalf("%d samples; mediacommon says %d", n, mcopus.PacketDuration2(b))
		}
	})
}

func FuzzOpusTSHeader(f *testing.F) {
	for _, v := range opusVectors {
		f.Add(readVector(f, v.pes))
	}
	for _, s := range []string{"7fe8400288", "7ff8ffff0a00780012", "7fe40502aabb", "7fe000"} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok, need := ParseOpusTSHeader(b)
		if ok && need || ok && (h.Len < 3 || h.Len > len(b)) {
			t.Fatalf("%+v, %v, %v", h, ok, need)
		}
		if ok { // more bytes after a header change nothing
			h2, ok2, _ := ParseOpusTSHeader(append(bytes.Clone(b), 0x7f, 0xff))
			if !ok2 || h2 != h {
				t.Fatalf("%+v, then %+v, %v", h, h2, ok2)
			}
		}
	})
}

func FuzzOpusTSConfig(f *testing.F) {
	for _, v := range opusVectors {
		f.Add(unhex(f, v.descriptors))
	}
	for _, s := range []string{"7f028000", "7f028080", "7f078081060168429d", "7f04808102019", "7f028084", "0a04656e6700"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		dOps, ch, err := OpusTSConfig(b, 312)
		if err != nil {
			return
		}
		c, err := ParseDOps(dOps)
		if err != nil || c.Channels != ch || c.PreSkip != 312 || c.InputSampleRate != 48000 {
			t.Fatalf("dOps %x (%d channels) reads back as %+v, %v", dOps, ch, c, err)
		}
	})
}

func FuzzParseDOps(f *testing.F) {
	for _, v := range opusVectors {
		f.Add(unhex(f, v.dOps))
	}
	f.Add(unhex(f, "000201380000bb800000010100ff00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := ParseDOps(b); err == nil && (c.Channels < 1 || len(b) < 11) {
			t.Fatalf("%+v", c)
		}
	})
}

func FuzzParseAV1C(f *testing.F) {
	for _, s := range []string{"81000c000a0a00000003b4fd936be401", "81004c000a0b00000003bd7c7805f08080", "812000000a0a20000003b4fd936be408"} {
		f.Add(unhex(f, s))
	}
	f.Add(append([]byte{0x81, 0x48, 0xe0, 0x00}, seqHeader{timing: true, equalInterval: true, decoderModel: true, displayDelay: true, levels: []uint32{13, 4, 12}, w: 3840, h: 2160}.obu(true)...))
	f.Add(append([]byte{0x81, 0x48, 0xe0, 0x00}, seqHeader{reduced: true, w: 1, h: 65536}.obu(false)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseAV1C(b)
		if err != nil || c.Width == 0 {
			return
		}
		if c.Height == 0 || c.BitDepth < 8 || c.BitDepth > 12 {
			t.Fatalf("%+v", c)
		}
		// mp4ff reads the same sequence header to the same size (when it reads it).
		w, h, ok := mp4ffFrameSize(b)
		if ok && (w != c.Width || h != c.Height) {
			t.Fatalf("%dx%d, mp4ff reads %dx%d", c.Width, c.Height, w, h)
		}
	})
}

func mp4ffFrameSize(b []byte) (w, h int, ok bool) {
	defer func() {
		if recover() != nil { // mp4ff's fault, not ours
			ok = false
		}
	}()
	rec, err := av1.DecodeAV1CodecConfRec(b)
	if err != nil {
		return 0, 0, false
	}
	sh, err := rec.SequenceHeader()
	if err != nil {
		return 0, 0, false
	}
	return int(sh.Width()), int(sh.Height()), true
}
