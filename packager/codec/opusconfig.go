package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// OpusConfig is what a dOps payload says.
type OpusConfig struct {
	Channels        int // OutputChannelCount
	PreSkip         int // samples at 48 kHz the decoder drops from the start
	InputSampleRate int // the source's rate, for information: Opus always decodes at 48 kHz
}

// opusCoupled is the coupled stream count of channel_config_code 1..8, whose channels
// are in Vorbis order as RFC 7845 5.1.1.2 has them; opusVorbisMap maps them to
// decoded streams.
var (
	opusCoupled   = [9]int{0, 0, 1, 1, 2, 2, 2, 3, 3}
	opusVorbisMap = [8][]byte{
		{0}, {0, 1}, {0, 2, 1}, {0, 1, 2, 3}, {0, 4, 1, 2, 3}, {0, 4, 1, 2, 3, 5},
		{0, 4, 1, 2, 3, 5, 6}, {0, 6, 1, 2, 3, 4, 5, 7},
	}
)

// opusLayout is a channel mapping as OpusHead and dOps have it.
type opusLayout struct {
	channels, family, streams, coupled int
	mapping                            []byte
}

// OpusTSConfig turns the descriptors of an Opus elementary stream in a PMT (its ES
// descriptor loop, raw: tag, length, data, ...) into the dOps payload for MP4 ("Opus in
// ISOBMFF" 4.3.2: Version 0, OutputChannelCount, PreSkip, InputSampleRate 48000,
// OutputGain 0, ChannelMappingFamily and, when not 0, StreamCount, CoupledCount and
// ChannelMapping) and the channel count. The DVB extension descriptor (tag 0x7f) with
// descriptor_tag_extension 0x80 carries channel_config_code (the opus_audio_descriptor
// of the Opus project's draft "Opus in MPEG-2 TS"; GStreamer reads it the same way):
//
//   - 0x00: dual mono as one coupled stream, mapping family 255 (channels with no
//     position), as ffmpeg and GStreamer read it;
//   - 0x01..0x08: 1 to 8 channels, family 0 for mono and stereo, else 1 (Vorbis order);
//   - 0x80: dual mono as two mono streams, family 255;
//   - 0x81: explicit: channel count, mapping family and, for a family other than 0,
//     bit-packed stream count, coupled count and mapping in the descriptor;
//   - 0x82..0x88: 2 to 8 channels in Vorbis order, one uncoupled stream each, family 1.
//
// Anything else is an error naming it. Without the extension descriptor the stream is
// stereo, as ffmpeg takes it. preSkip is the start trim of the stream's first control
// header (OpusTSHeader.StartTrim): TS has no OpusHead to carry it.
func OpusTSConfig(esDescriptors []byte, preSkip uint16) (dOps []byte, channels int, err error) {
	code := -1
	var extra []byte
	for d := esDescriptors; len(d) > 0; {
		if len(d) < 2 || len(d) < 2+int(d[1]) {
			return nil, 0, errors.New("codec: PMT descriptor loop cut in a descriptor")
		}
		tag, data := d[0], d[2:2+int(d[1])]
		d = d[2+int(d[1]):]
		if tag == 0x7f && len(data) >= 1 && data[0] == 0x80 {
			if len(data) < 2 {
				return nil, 0, errors.New("codec: Opus extension descriptor without channel_config_code")
			}
			code, extra = int(data[1]), data[2:]
		}
	}
	l, err := opusTSLayout(code, extra)
	if err != nil {
		return nil, 0, err
	}
	p := make([]byte, 11, 11+2+l.channels)
	p[1] = byte(l.channels)
	binary.BigEndian.PutUint16(p[2:], preSkip)
	binary.BigEndian.PutUint32(p[4:], 48000)
	p[10] = byte(l.family)
	if l.family != 0 {
		p = append(p, byte(l.streams), byte(l.coupled))
		p = append(p, l.mapping...)
	}
	return p, l.channels, nil
}

// opusTSLayout is the channel mapping channel_config_code says; -1 for no descriptor.
func opusTSLayout(code int, extra []byte) (opusLayout, error) {
	switch {
	case code == -1:
		return opusLayout{channels: 2, streams: 1, coupled: 1}, nil
	case code == 0x00:
		return opusLayout{2, 255, 1, 1, []byte{0, 1}}, nil
	case code <= 0x08:
		l := opusLayout{channels: code, streams: code - opusCoupled[code], coupled: opusCoupled[code]}
		if code > 2 {
			l.family, l.mapping = 1, opusVorbisMap[code-1]
		}
		return l, nil
	case code == 0x80:
		return opusLayout{2, 255, 2, 0, []byte{0, 1}}, nil
	case code == 0x81:
		return opusExplicitLayout(extra)
	case code >= 0x82 && code <= 0x88:
		n := code & 0xf
		l := opusLayout{channels: n, family: 1, streams: n, mapping: make([]byte, n)}
		for i := range l.mapping {
			l.mapping[i] = byte(i)
		}
		return l, nil
	}
	return opusLayout{}, fmt.Errorf("codec: Opus channel_config_code %#02x is reserved", code)
}

// ceilLog2 is the bit width that holds values below n (0 for n <= 1).
func ceilLog2(n int) int {
	if n <= 1 {
		return 0
	}
	return bits.Len(uint(n - 1))
}

// opusExplicitLayout reads channel_config_code 0x81's fields (opus_audio_descriptor,
// Table 4-2 of the draft): channel_count, mapping_family, then for a family other than
// 0 stream_count_minus_one, coupled_stream_count and channel_mapping[], each as wide as
// its largest possible value needs.
func opusExplicitLayout(b []byte) (opusLayout, error) {
	if len(b) < 2 || b[0] == 0 {
		return opusLayout{}, errors.New("codec: Opus channel_config_code 0x81 without a channel count and mapping family")
	}
	l := opusLayout{channels: int(b[0]), family: int(b[1])}
	if l.family == 0 {
		if l.channels > 2 {
			return opusLayout{}, fmt.Errorf("codec: Opus mapping family 0 with %d channels", l.channels)
		}
		l.streams, l.coupled = 1, l.channels-1
		return l, nil
	}
	r := &bitReader{b: b[2:]}
	l.streams = int(r.u(ceilLog2(l.channels))) + 1
	l.coupled = int(r.u(ceilLog2(l.streams + 1)))
	width := ceilLog2(l.streams + l.coupled + 1)
	l.mapping = make([]byte, l.channels)
	for i := range l.mapping {
		l.mapping[i] = byte(r.u(width))
	}
	if r.over {
		return opusLayout{}, errors.New("codec: Opus channel_config_code 0x81 with its channel mapping cut")
	}
	return l, l.check()
}

// check applies RFC 7845 5.1.1's rules to a mapping table.
func (l opusLayout) check() error {
	if l.streams < 1 || l.coupled > l.streams || l.streams+l.coupled > 255 {
		return fmt.Errorf("codec: Opus mapping with %d streams, %d coupled", l.streams, l.coupled)
	}
	for i, m := range l.mapping {
		if int(m) >= l.streams+l.coupled && m != 255 {
			return fmt.Errorf("codec: Opus channel %d mapped to stream channel %d of %d", i, m, l.streams+l.coupled)
		}
	}
	return nil
}

// ParseDOps reads a dOps payload (from an MP4 or fMP4 init section): channels,
// pre-skip and input rate; an error when it is malformed (a version other than 0, no
// channels, a channel mapping table cut or inconsistent, family 0 with more than 2
// channels).
func ParseDOps(p []byte) (OpusConfig, error) {
	if len(p) < 11 {
		return OpusConfig{}, fmt.Errorf("codec: dOps of %d bytes, want at least 11", len(p))
	}
	if p[0] != 0 {
		return OpusConfig{}, fmt.Errorf("codec: dOps version %d, want 0", p[0])
	}
	c := OpusConfig{
		Channels:        int(p[1]),
		PreSkip:         int(binary.BigEndian.Uint16(p[2:])),
		InputSampleRate: int(binary.BigEndian.Uint32(p[4:])),
	}
	family := p[10]
	switch {
	case c.Channels == 0:
		return OpusConfig{}, errors.New("codec: dOps with 0 channels")
	case family == 0 && c.Channels > 2:
		return OpusConfig{}, fmt.Errorf("codec: dOps mapping family 0 with %d channels", c.Channels)
	case family != 0:
		if len(p) < 13+c.Channels {
			return OpusConfig{}, fmt.Errorf("codec: dOps of %d bytes cut in its channel mapping table", len(p))
		}
		l := opusLayout{streams: int(p[11]), coupled: int(p[12]), mapping: p[13 : 13+c.Channels]}
		if err := l.check(); err != nil {
			return OpusConfig{}, err
		}
	}
	return c, nil
}
