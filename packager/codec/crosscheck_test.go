package codec

import (
	"testing"

	mcac3 "github.com/bluenviron/mediacommon/v2/pkg/codecs/ac3"
	mceac3 "github.com/bluenviron/mediacommon/v2/pkg/codecs/eac3"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg1audio"
	mcopus "github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
)

// mediacommon reads the first fields of these streams (not dac3/dec3, CRCs, the E-AC-3
// bsi past bsid, Opus framing in TS, layer I or MPEG-2.5). Where both read a field,
// they must agree; these helpers say what mediacommon reads, ok false when it does
// not take the input.

func mediacommonAC3(b []byte) (size, rate, channels int, ok bool) {
	if len(b) >= 6 && b[5]>>3 > 10 {
		var s mceac3.SyncInfo
		if s.Unmarshal(b) != nil {
			return 0, 0, 0, false
		}
		return s.FrameSize(), s.SampleRate(), acmodChannels[s.Acmod] + int(b2u(s.Lfeon)), true
	}
	var s mcac3.SyncInfo
	var bsi mcac3.BSI
	if len(b) < 7 || s.Unmarshal(b) != nil || bsi.Unmarshal(b[5:]) != nil {
		return 0, 0, 0, false
	}
	return s.FrameSize(), s.SampleRate(), bsi.ChannelCount(), true
}

// mediacommonMPEGAudio takes MPEG-1 layers II and III only: mediacommon reads the
// reserved version as MPEG-1 and MPEG-2.5 as MPEG-2, and sizes MPEG-2 layer III frames
// as MPEG-1 ones (144 bytes per kbit/s over kHz, where 13818-3 has 72).
func mediacommonMPEGAudio(b []byte) (size, rate, bitrate int, ok bool) {
	var h mpeg1audio.FrameHeader
	if len(b) < 4 || b[1]&0x18 != 0x18 || h.Unmarshal(append(b[:4:4], 0)) != nil {
		return 0, 0, 0, false
	}
	return h.FrameLen(), h.SampleRate, h.Bitrate, true
}

func TestAgainstMediacommon(t *testing.T) {
	for _, v := range ac3Vectors {
		for i, f := range ac3Frames(t, readVector(t, v.file)) {
			h, _ := ParseAC3(f)
			size, rate, ch, ok := mediacommonAC3(f)
			if !ok || size != h.FrameSize || rate != h.SampleRate || ch != h.Channels {
				t.Errorf("%s frame %d: mediacommon reads %d bytes, %d Hz, %d channels, %v", v.file, i, size, rate, ch, ok)
			}
		}
	}
	for _, name := range []string{"mp3_44st.mp3", "mp3_32mono.mp3", "mp2_48st.mp2"} {
		b := readVector(t, name)
		h, _ := ParseMPEGAudio(b)
		size, rate, bitrate, ok := mediacommonMPEGAudio(b)
		if !ok || size != h.FrameSize || rate != h.SampleRate || bitrate != h.Bitrate {
			t.Errorf("%s: mediacommon reads %d bytes, %d Hz, %d bit/s, %v", name, size, rate, bitrate, ok)
		}
	}
	for _, v := range opusVectors {
		for b := readVector(t, v.pes); len(b) > 0; {
			h, _, _ := ParseOpusTSHeader(b)
			p := b[h.Len : h.Len+h.AUSize]
			if n, _ := OpusPacketSamples(p); int64(n) != mcopus.PacketDuration2(p) {
				t.Errorf("%s: %d samples, mediacommon says %d", v.name, n, mcopus.PacketDuration2(p))
			}
			b = b[h.Len+h.AUSize:]
		}
	}
}
