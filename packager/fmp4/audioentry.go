package fmp4

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/stream-downloads/caddy-stream-downloads/packager/codec"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// The audio sample entries of an init section: AAC and MPEG audio (esds), AC-3 (dac3),
// E-AC-3 (dec3), Opus (dOps).

// audioEntryHeader is the size of an AudioSampleEntry's fixed fields (version 0).
const audioEntryHeader = 28

func parseAudioEntry(ti *trakInfo, e box) error {
	switch e.typ {
	case "mp4a", "ac-3", "ec-3", "Opus", ".mp3":
	case "enca":
		return unsupportedEntry("encrypted audio (DRM/Common Encryption"+originalFormat(e, audioEntryHeader)+")", e.typ, false)
	default:
		return unsupportedEntry(entryName(e.typ), e.typ, false)
	}
	if len(e.payload) < audioEntryHeader {
		return fmt.Errorf("track %d: truncated %s sample entry", ti.id, e.typ)
	}
	hdr := audioEntryHeader
	switch binary.BigEndian.Uint16(e.payload[8:]) { // QuickTime sound description version
	case 1:
		hdr += 16
	case 2:
		hdr += 36
	}
	if len(e.payload) < hdr {
		return fmt.Errorf("track %d: truncated %s sample entry", ti.id, e.typ)
	}
	// What the entry's own fields say (the configuration box, when there is one, wins).
	ti.channels = int(binary.BigEndian.Uint16(e.payload[16:]))
	ti.sampleRate = int(binary.BigEndian.Uint32(e.payload[24:]) >> 16)
	find := func(typ string) (*box, error) {
		var found *box
		err := walkBoxes(e.payload[hdr:], 0, func(bx box) error {
			switch bx.typ {
			case typ:
				if found == nil {
					b := bx
					found = &b
				}
			case "wave": // QuickTime: the configuration inside wave
				return walkBoxes(bx.payload, 0, func(c box) error {
					if c.typ == typ && found == nil {
						b := c
						found = &b
					}
					return nil
				})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("track %d: %s sample entry: %v", ti.id, e.typ, err)
		}
		if found == nil {
			return nil, fmt.Errorf("track %d: %s sample entry without %s", ti.id, e.typ, typ)
		}
		return found, nil
	}
	switch e.typ {
	case "mp4a":
		esds, err := find("esds")
		if err != nil {
			return err
		}
		return parseEsds(ti, *esds)
	case ".mp3":
		return setMPEGAudio(ti, 0)
	case "ac-3", "ec-3":
		name := map[string]string{"ac-3": "dac3", "ec-3": "dec3"}[e.typ]
		c, err := find(name)
		if err != nil {
			return err
		}
		parse := codec.ParseDAC3
		ti.codec = media.AC3
		if e.typ == "ec-3" {
			parse = codec.ParseDEC3
			ti.codec = media.EAC3
		}
		cfg, err := parse(c.payload)
		if err != nil {
			return fmt.Errorf("track %d: invalid %s: %v", ti.id, name, err)
		}
		ti.config = bytes.Clone(c.payload)
		ti.sampleRate, ti.channels = cfg.SampleRate, cfg.Channels
		if uint32(ti.sampleRate) == ti.timescale {
			ti.frameDur = 1536
		}
	case "Opus":
		c, err := find("dOps")
		if err != nil {
			return err
		}
		cfg, err := codec.ParseDOps(c.payload)
		if err != nil {
			return fmt.Errorf("track %d: invalid dOps: %v", ti.id, err)
		}
		ti.codec = media.Opus
		ti.config = bytes.Clone(c.payload)
		ti.sampleRate, ti.channels = 48000, cfg.Channels
	}
	if ti.sampleRate <= 0 || ti.channels <= 0 {
		return fmt.Errorf("track %d: %s with %d Hz, %d channels", ti.id, ti.codec.Name(), ti.sampleRate, ti.channels)
	}
	return nil
}

// parseEsds reads the decoder configuration of an mp4a sample entry: AAC or MPEG audio.
func parseEsds(ti *trakInfo, esds box) error {
	b, err := decodeLeaf(esds)
	if err != nil {
		return fmt.Errorf("track %d: %v", ti.id, err)
	}
	dc := b.(*mp4.EsdsBox).DecConfigDescriptor
	if dc == nil {
		return fmt.Errorf("track %d: esds without a decoder configuration", ti.id)
	}
	switch dc.ObjectType {
	case 0x40, 0x66, 0x67, 0x68: // MPEG-4 audio; MPEG-2 AAC Main/LC/SSR
	case 0x69, 0x6b: // MPEG-2 audio (13818-3), MPEG-1 audio (11172-3)
		return setMPEGAudio(ti, dc.ObjectType)
	case 0xa5:
		return unsupportedEntry("AC-3 (Dolby Digital) in an mp4a sample entry", "mp4a", false)
	case 0xa6:
		return unsupportedEntry("E-AC-3 (Dolby Digital Plus) in an mp4a sample entry", "mp4a", false)
	case 0xa9, 0xaa, 0xab, 0xac:
		return unsupportedEntry("DTS audio", "mp4a", false)
	case 0xad:
		return unsupportedEntry("Opus in an mp4a sample entry", "mp4a", false)
	default:
		return unsupportedEntry(fmt.Sprintf("MPEG-4 audio object type 0x%02x", dc.ObjectType), "mp4a", false)
	}
	if dc.DecSpecificInfo == nil || len(dc.DecSpecificInfo.DecConfig) == 0 {
		return fmt.Errorf("track %d: AAC without an AudioSpecificConfig in esds", ti.id)
	}
	asc := bytes.Clone(dc.DecSpecificInfo.DecConfig)
	var cfg mpeg4audio.AudioSpecificConfig
	if err := unmarshalASC(&cfg, asc); err != nil {
		return fmt.Errorf("track %d: invalid AAC AudioSpecificConfig %x: %v", ti.id, asc, err)
	}
	switch cfg.Type {
	case mpeg4audio.ObjectTypeAACLC, mpeg4audio.ObjectTypeSBR, mpeg4audio.ObjectTypePS, 1, 4:
	default:
		return unsupportedEntry(fmt.Sprintf("MPEG-4 audio object type %d (not AAC)", cfg.Type), "mp4a", false)
	}
	channels := int(cfg.ChannelConfig)
	switch {
	case channels == 7:
		channels = 8
	case channels == 0 || channels > 7:
		return unsupportedEntry(fmt.Sprintf("AAC with channel configuration %d", cfg.ChannelConfig), "mp4a", false)
	}
	if cfg.SampleRate <= 0 {
		return fmt.Errorf("track %d: invalid AAC sample rate", ti.id)
	}
	ti.codec = media.AAC
	ti.config = asc
	if cfg.ExtensionSampleRate == 0 && uint32(cfg.SampleRate) == ti.timescale {
		ti.frameDur = 1024 // else the muxer takes the last delta
	}
	ti.sampleRate = cfg.SampleRate
	if cfg.ExtensionSampleRate > 0 {
		ti.sampleRate = cfg.ExtensionSampleRate
	}
	ti.channels = channels
	return nil
}

// setMPEGAudio makes ti MPEG-1/2 audio (MP3, MP2) as the sample entry describes it; ot
// is the esds object type, 0 when there is none (then by the sample rate, as ffmpeg).
func setMPEGAudio(ti *trakInfo, ot uint8) error {
	if ot == 0 {
		ot = 0x69
		if ti.sampleRate > 24000 {
			ot = 0x6b
		}
	}
	if ti.sampleRate <= 0 || ti.channels <= 0 || ti.channels > 2 {
		return fmt.Errorf("track %d: MPEG audio with %d Hz, %d channels in its sample entry", ti.id, ti.sampleRate, ti.channels)
	}
	ti.codec, ti.objectType = media.MPEGAudio, ot
	return nil
}

func unmarshalASC(cfg *mpeg4audio.AudioSpecificConfig, b []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("parser panic: %v", p)
		}
	}()
	return cfg.Unmarshal(b)
}
