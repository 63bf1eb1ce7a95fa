package codec

// MPEGAudioHeader is what the 4-byte header of an MPEG-1, MPEG-2 or MPEG-2.5 audio
// frame says (ISO/IEC 11172-3 2.4.1.3, 13818-3 2.4.1.3).
type MPEGAudioHeader struct {
	Version    int // 1, 2, or 25 for MPEG-2.5
	Layer      int // 1, 2, 3
	SampleRate int // Hz
	Channels   int // 1 (mono) or 2
	Bitrate    int // bit/s
	FrameSize  int // bytes, header included (with padding)
	// Samples is the number of PCM samples per channel in the frame: 384 (layer I),
	// 1152 (layer II, and layer III of MPEG-1), 576 (layer III of MPEG-2/2.5).
	Samples int
}

// MPEGAudioHeaderLen is the length of the frame header ParseMPEGAudio reads.
const MPEGAudioHeaderLen = 4

// mpegBitrates are the kbit/s of bitrate_index 1..14: MPEG-1 layers I, II, III, then
// MPEG-2/2.5 layer I, and layers II and III.
var mpegBitrates = [5][14]int{
	{32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448},
	{32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384},
	{32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320},
	{32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256},
	{8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
}

// ParseMPEGAudio reads the frame header at b; false for anything that is not a valid
// header: no sync, a reserved version, layer, bitrate or sample rate, a free-format
// bitrate (whose frame length only the next sync word tells), or fewer than 4 bytes.
// The protection and emphasis bits are not checked, as ffmpeg does not.
func ParseMPEGAudio(b []byte) (MPEGAudioHeader, bool) {
	if len(b) < MPEGAudioHeaderLen || b[0] != 0xFF || b[1]&0xE0 != 0xE0 {
		return MPEGAudioHeader{}, false
	}
	version := (b[1] >> 3) & 3 // 0 MPEG-2.5, 1 reserved, 2 MPEG-2, 3 MPEG-1
	layerBits := (b[1] >> 1) & 3
	brIndex := b[2] >> 4
	srIndex := (b[2] >> 2) & 3
	if version == 1 || layerBits == 0 || brIndex == 0 || brIndex == 15 || srIndex == 3 {
		return MPEGAudioHeader{}, false
	}
	h := MPEGAudioHeader{Layer: 4 - int(layerBits), Channels: 2}
	h.SampleRate = [3]int{44100, 48000, 32000}[srIndex]
	table := h.Layer - 1 // MPEG-1
	switch version {
	case 3:
		h.Version = 1
	case 2:
		h.Version, h.SampleRate = 2, h.SampleRate/2
	default:
		h.Version, h.SampleRate = 25, h.SampleRate/4
	}
	if h.Version != 1 {
		table = 3 + min(h.Layer-1, 1)
	}
	h.Bitrate = mpegBitrates[table][brIndex-1] * 1000
	if b[3]>>6 == 3 {
		h.Channels = 1
	}
	pad := int(b[2]>>1) & 1
	switch {
	case h.Layer == 1:
		h.Samples = 384
		h.FrameSize = (12*h.Bitrate/h.SampleRate + pad) * 4
	case h.Layer == 2 || h.Version == 1:
		h.Samples = 1152
		h.FrameSize = 144*h.Bitrate/h.SampleRate + pad
	default: // layer III of MPEG-2 and 2.5: half the granules
		h.Samples = 576
		h.FrameSize = 72*h.Bitrate/h.SampleRate + pad
	}
	return h, true
}

// ObjectType is the esds objectTypeIndication for the stream: 0x6B (ISO/IEC 11172-3)
// above 24 kHz, else 0x69 (ISO/IEC 13818-3), the rule ffmpeg's MP4 muxer follows (so
// MPEG-2.5, which has no code of its own, is 0x69).
func (h MPEGAudioHeader) ObjectType() uint8 {
	if h.SampleRate > 24000 {
		return 0x6B
	}
	return 0x69
}
