package ts

import (
	"fmt"

	"github.com/stream-downloads/caddy-stream-downloads/packager/codec"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// The frame syntaxes of the audio codecs besides AAC (adts.go): how their frames sit
// in a byte stream, and what each says of its stream.

// newFrameSyntax returns the syntax of an audio stream of kind, with its PMT
// descriptors (Opus needs them).
func newFrameSyntax(kind streamKind, desc []byte) frameSyntax {
	switch kind {
	case kindAC3:
		return dolbySyntax{}
	case kindMPEGAudio:
		return mpegAudioSyntax{}
	case kindOpus:
		return &opusSyntax{desc: desc}
	}
	return &adtsSyntax{}
}

// dolbySyntax reads AC-3 and E-AC-3 syncframes (ETSI TS 102 366), whichever the
// stream's bsid says: some muxers label one as the other. E-AC-3 frames are joined into
// units by audioES.
type dolbySyntax struct{}

func (dolbySyntax) name() string { return "AC-3/E-AC-3 syncframe" }

func (dolbySyntax) syncAt(b []byte) bool { return b[0] == 0x0b && (len(b) < 2 || b[1] == 0x77) }

func (dolbySyntax) length(b []byte) (int, lenStatus) {
	if len(b) < codec.AC3MinHeader {
		return 0, lenNeed
	}
	n, ok := codec.AC3FrameLen(b)
	if !ok {
		return 0, lenBad
	}
	return n, lenOK
}

func (dolbySyntax) frame(f []byte) (audioFrame, bool, error) {
	h, err := codec.ParseAC3(f)
	if err != nil {
		return audioFrame{}, false, nil // damaged (CRC) or a false sync word
	}
	fr := audioFrame{payload: f, hdr: 5, samples: h.Samples}
	if h.EAC3 {
		fr.joins, fr.ac3 = true, h
		return fr, true, nil
	}
	fr.format = audioFormat{
		codec: media.AC3, sampleRate: h.SampleRate, channels: h.Channels, frameDur: eac3UnitSamples,
		key: fmt.Sprint(h.Fscod, h.Bsid, h.Bsmod, h.Acmod, h.LFE),
	}
	fr.config = codec.DAC3(h)
	return fr, true, nil
}

// eac3Format is the format of an E-AC-3 unit made of the syncframes hdrs, and its dec3.
func eac3Format(hdrs []codec.AC3Header) (audioFormat, []byte) {
	h := hdrs[0]
	bytes := 0
	for _, x := range hdrs {
		bytes += x.FrameSize
	}
	kbps := bytes * 8 * h.SampleRate / eac3UnitSamples / 1000
	cfg := codec.DEC3(hdrs, kbps)
	key := ""
	if len(cfg) >= 2 {
		key = string(append([]byte{cfg[1] & 0x07}, cfg[2:]...)) // all but data_rate
	}
	return audioFormat{
		codec: media.EAC3, sampleRate: h.SampleRate, channels: codec.EAC3Channels(hdrs),
		frameDur: eac3UnitSamples, key: key,
	}, cfg
}

// mpegAudioSyntax reads MPEG-1/2/2.5 audio frames of layers I-III (MP3, MP2).
type mpegAudioSyntax struct{}

func (mpegAudioSyntax) name() string { return "MPEG audio frame" }

func (mpegAudioSyntax) syncAt(b []byte) bool {
	// 11 sync bits; layer 00 is reserved (and is ADTS's).
	return b[0] == 0xff && (len(b) < 2 || (b[1]&0xe0 == 0xe0 && b[1]&0x06 != 0))
}

func (mpegAudioSyntax) length(b []byte) (int, lenStatus) {
	if len(b) < codec.MPEGAudioHeaderLen {
		return 0, lenNeed
	}
	h, ok := codec.ParseMPEGAudio(b)
	if !ok {
		return 0, lenBad
	}
	return h.FrameSize, lenOK
}

func (mpegAudioSyntax) frame(f []byte) (audioFrame, bool, error) {
	h, ok := codec.ParseMPEGAudio(f)
	if !ok || h.FrameSize != len(f) {
		return audioFrame{}, false, nil
	}
	return audioFrame{
		payload: f, hdr: codec.MPEGAudioHeaderLen, samples: h.Samples,
		format: audioFormat{
			codec: media.MPEGAudio, sampleRate: h.SampleRate, channels: h.Channels,
			objectType: h.ObjectType(), frameDur: uint32(h.Samples),
			key: fmt.Sprint(h.Version, h.Layer, h.Channels),
		},
	}, true, nil
}

// opusSyntax reads Opus access units, each behind its control header ("Opus in
// MPEG-TS", opus-codec.org); the channel configuration comes from the PMT's extension
// descriptor, the pre-skip from the first unit's start trim.
type opusSyntax struct {
	desc   []byte
	format audioFormat
	cfg    []byte
}

func (*opusSyntax) name() string { return "Opus access unit" }

func (*opusSyntax) syncAt(b []byte) bool { return b[0] == 0x7f && (len(b) < 2 || b[1]&0xe0 == 0xe0) }

func (*opusSyntax) length(b []byte) (int, lenStatus) {
	h, ok, need := codec.ParseOpusTSHeader(b)
	switch {
	case need:
		return 0, lenNeed
	case !ok:
		return 0, lenBad
	}
	return h.Len + h.AUSize, lenOK
}

func (s *opusSyntax) frame(f []byte) (audioFrame, bool, error) {
	h, ok, _ := codec.ParseOpusTSHeader(f)
	if !ok || h.Len+h.AUSize != len(f) {
		return audioFrame{}, false, nil
	}
	packet := f[h.Len:]
	n, err := codec.OpusPacketSamples(packet)
	if err != nil {
		return audioFrame{}, false, nil
	}
	if s.cfg == nil {
		cfg, channels, err := codec.OpusTSConfig(s.desc, uint16(min(h.StartTrim, 0xffff)))
		if err != nil {
			return audioFrame{}, false, unsupportedErr("Opus: "+err.Error(), 0x06, false)
		}
		key := ""
		if len(cfg) >= 4 {
			key = string(cfg[:2]) + string(cfg[4:]) // all but the pre-skip
		}
		s.cfg = cfg
		s.format = audioFormat{codec: media.Opus, sampleRate: 48000, channels: channels, key: key}
	}
	return audioFrame{payload: packet, hdr: h.Len, samples: n, format: s.format, config: s.cfg}, true, nil
}
