package ts

import (
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// aacFrameSamples is the number of PCM samples per AAC frame (one media.Sample).
const aacFrameSamples = 1024

// adtsSyntax reads AAC in ADTS frames (ISO 14496-3 1.A.2), CRC headers included.
type adtsSyntax struct {
	// The last configuration seen and what it makes (frames rarely change it).
	cfg    mpeg4audio.AudioSpecificConfig
	format audioFormat
	asc    []byte
}

func (*adtsSyntax) name() string { return "ADTS frame" }

func (*adtsSyntax) syncAt(b []byte) bool {
	return b[0] == 0xff && (len(b) < 2 || b[1]&0xf6 == 0xf0) // sync word, layer 0
}

func (*adtsSyntax) length(b []byte) (int, lenStatus) {
	if len(b) < 7 {
		return 0, lenNeed
	}
	h, ok := parseADTSHeader(b)
	if !ok {
		return 0, lenBad
	}
	return h.frame, lenOK
}

func (s *adtsSyntax) frame(f []byte) (audioFrame, bool, error) {
	h, ok := parseADTSHeader(f)
	if !ok {
		return audioFrame{}, false, nil
	}
	if h.blocks != 1 {
		return audioFrame{}, false, unsupportedErr(fmt.Sprintf("ADTS frames of %d AAC raw data blocks", h.blocks), 0x0f, false)
	}
	if s.asc == nil || h.config != s.cfg {
		if err := s.configure(h.config); err != nil {
			return audioFrame{}, false, err
		}
	}
	return audioFrame{payload: f[h.size:], hdr: h.size, samples: aacFrameSamples, format: s.format, config: s.asc}, true, nil
}

// configure makes the format of an ADTS header's configuration.
func (s *adtsSyntax) configure(cfg mpeg4audio.AudioSpecificConfig) error {
	channels := int(cfg.ChannelConfig)
	switch {
	case channels == 7:
		channels = 8
	case channels == 0 || channels > 7:
		return unsupportedErr(fmt.Sprintf("AAC with channel configuration %d", cfg.ChannelConfig), 0x0f, false)
	}
	if cfg.SampleRate <= 0 {
		return errors.New("invalid AAC sample rate")
	}
	asc, err := cfg.Marshal()
	if err != nil {
		return fmt.Errorf("invalid AAC configuration: %w", err)
	}
	s.cfg, s.asc = cfg, asc
	s.format = audioFormat{
		codec: media.AAC, sampleRate: cfg.SampleRate, channels: channels, frameDur: aacFrameSamples,
		key: string(asc),
	}
	return nil
}

// adtsHeader is what the demuxer needs of an ADTS header.
type adtsHeader struct {
	size   int // header length (7, or 9 with CRC)
	frame  int // frame length, header included
	config mpeg4audio.AudioSpecificConfig
	blocks int // raw data blocks in the frame
}

// sampleRates of ISO 14496-3 by sampling_frequency_index.
var sampleRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// parseADTSHeader reads the fixed and variable header at b (at least 7 bytes).
func parseADTSHeader(b []byte) (adtsHeader, bool) {
	var h adtsHeader
	if b[0] != 0xff || b[1]&0xf6 != 0xf0 { // sync word, layer 0
		return h, false
	}
	h.size = 7
	if b[1]&0x01 == 0 {
		h.size = 9
	}
	sri := int(b[2] >> 2 & 0x0f)
	if sri >= len(sampleRates) {
		return h, false
	}
	h.config = mpeg4audio.AudioSpecificConfig{
		Type:          mpeg4audio.ObjectType(b[2]>>6 + 1),
		SampleRate:    sampleRates[sri],
		ChannelConfig: b[2]&0x01<<2 | b[3]>>6,
	}
	h.frame = int(b[3]&0x03)<<11 | int(b[4])<<3 | int(b[5]>>5)
	h.blocks = int(b[6]&0x03) + 1
	return h, h.frame > h.size
}
