package mp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/hevc"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// sampleEntry writes the sample entry of t's codec (the one entry of its stsd) with the
// decoder configuration box. A track without the configuration its codec needs is an
// error: the file would not play. H.264 and HEVC are written as avc1 and hvc1 with the
// track's Config as their avcC or hvcC when it has one (the source's, copied as it is
// with its samples), else with one built from the parameter sets.
func sampleEntry(w *boxWriter, t *TrackIndex) error {
	tr := t.Track
	switch tr.Codec {
	case media.TX3G, media.QTText:
		if len(tr.Config) < 16 || string(tr.Config[4:8]) != string(tr.Codec) {
			return fmt.Errorf("mp4: %s track without its %s sample entry", tr.Codec.Name(), tr.Codec)
		}
		w.raw(tr.Config)
		return nil
	case media.H264:
		if len(tr.Config) > 0 {
			// AVCDecoderConfigurationRecord (ISO 14496-15 5.3.3.1): version 1, profile,
			// compatibility, level, lengthSizeMinusOne, then the SPS and PPS arrays.
			if len(tr.Config) < 7 || tr.Config[0] != 1 {
				return errors.New("mp4: H.264 track with an invalid avcC (AVCDecoderConfigurationRecord)")
			}
			return visualSampleEntry(w, tr, "avc1", "", "avcC", tr.Config)
		}
		if len(tr.SPS) == 0 || len(tr.PPS) == 0 {
			return errors.New("mp4: H.264 track without SPS/PPS")
		}
		rec, err := avc.CreateAVCDecConfRec(tr.SPS, tr.PPS, true)
		if err != nil {
			return fmt.Errorf("mp4: avcC: %w", err)
		}
		var buf bytes.Buffer
		if err := rec.Encode(&buf); err != nil {
			return fmt.Errorf("mp4: avcC: %w", err)
		}
		return visualSampleEntry(w, tr, "avc1", "", "avcC", buf.Bytes())
	case media.H265:
		if len(tr.Config) > 0 {
			// HEVCDecoderConfigurationRecord (ISO 14496-15 8.3.3.1): version 1, 22 bytes of
			// profile, level and formats, then numOfArrays and the arrays.
			if len(tr.Config) < 23 || tr.Config[0] != 1 {
				return errors.New("mp4: HEVC track with an invalid hvcC (HEVCDecoderConfigurationRecord)")
			}
			return visualSampleEntry(w, tr, "hvc1", "", "hvcC", tr.Config)
		}
		rec, err := hvcCRecord(tr)
		if err != nil {
			return err
		}
		return visualSampleEntry(w, tr, "hvc1", "", "hvcC", rec)
	case media.AV1:
		// AV1CodecConfigurationRecord (AV1-ISOBMFF 2.3.3): marker and version 1, profile
		// and level, ..., then the sequence header OBU if any.
		if len(tr.Config) < 4 || tr.Config[0] != 0x81 {
			return errors.New("mp4: AV1 track without av1C (AV1CodecConfigurationRecord)")
		}
		// The compressorname AV1-ISOBMFF 2.2.4 recommends.
		return visualSampleEntry(w, tr, "av01", "AOM Coding", "av1C", tr.Config)
	case media.AAC, media.MPEGAudio, media.AC3, media.EAC3, media.Opus:
		return audioSampleEntry(w, t)
	}
	return fmt.Errorf("mp4: unsupported codec %q", tr.Codec)
}

// objectTypeIndication values of esds (ISO 14496-1 Table 5, mp4ra.org).
const (
	objMPEG4Audio = 0x40 // AAC
	objMPEG2Audio = 0x69 // ISO 13818-3: MPEG-2 audio (MP3, MP2 at 16–24 kHz)
	objMPEG1Audio = 0x6B // ISO 11172-3: MPEG-1 audio (MP3, MP2 at 32–48 kHz)
)

// audioSampleEntry writes an AudioSampleEntry (ISO 14496-12 12.2.3, version 0) with the
// codec's decoder configuration: AAC as mp4a with an esds carrying the
// AudioSpecificConfig; MP3/MP2 as mp4a with an esds of their object type and no
// DecoderSpecificInfo (as ffmpeg writes them); AC-3 as ac-3 + dac3 and E-AC-3 as ec-3 +
// dec3 (ETSI TS 102 366 Annex F); Opus as Opus + dOps ("Encapsulation of Opus in ISO
// Base Media File Format" 4.3), whose samplerate field is always 48000.
func audioSampleEntry(w *boxWriter, t *TrackIndex) error {
	tr := t.Track
	typ, cfgBox, rate := "mp4a", "", tr.SampleRate // cfgBox holds tr.Config verbatim ("": esds)
	switch tr.Codec {
	case media.AAC:
		if len(tr.Config) == 0 {
			return errors.New("mp4: AAC track without AudioSpecificConfig")
		}
	case media.MPEGAudio:
		if tr.ObjectType != objMPEG1Audio && tr.ObjectType != objMPEG2Audio {
			return fmt.Errorf("mp4: MPEG audio track with object type %#x (want 0x6B for MPEG-1, 0x69 for MPEG-2 audio)", tr.ObjectType)
		}
	case media.AC3:
		typ, cfgBox = "ac-3", "dac3"
		if len(tr.Config) != 3 { // AC3SpecificBox: fscod ... bit_rate_code, reserved: 24 bits
			return fmt.Errorf("mp4: AC-3 track without dac3 (AC3SpecificBox payload of 3 bytes, got %d)", len(tr.Config))
		}
	case media.EAC3:
		typ, cfgBox = "ec-3", "dec3"
		if len(tr.Config) < 5 { // EC3SpecificBox: data_rate, num_ind_sub, then 3 bytes per substream
			return fmt.Errorf("mp4: E-AC-3 track without dec3 (EC3SpecificBox payload of 5 bytes or more, got %d)", len(tr.Config))
		}
	case media.Opus:
		typ, cfgBox, rate = "Opus", "dOps", 48000
		if err := checkDops(tr); err != nil {
			return err
		}
	}
	if tr.Channels <= 0 || rate <= 0 {
		return fmt.Errorf("mp4: %s track without channel count or sample rate", tr.Codec.Name())
	}
	w.open(typ)
	w.zeros(6)
	w.u16(1) // data reference index
	w.zeros(8)
	w.u16(uint16(min(tr.Channels, 0xffff)))
	w.u16(16) // samplesize
	w.u32(0)  // pre_defined, reserved
	if rate <= 0xffff {
		w.u32(uint32(rate) << 16)
	} else {
		w.u32(0)
	}
	switch tr.Codec {
	case media.AAC:
		writeEsds(w, t, objMPEG4Audio, tr.Config)
	case media.MPEGAudio:
		writeEsds(w, t, tr.ObjectType, nil)
	default:
		w.open(cfgBox)
		w.raw(tr.Config)
		w.close()
	}
	w.close()
	return nil
}

// checkDops checks an Opus track's dOps payload (OpusDecoderConfigurationRecord, Opus in
// ISOBMFF 4.3.2): Version 0, OutputChannelCount, PreSkip, InputSampleRate, OutputGain,
// ChannelMappingFamily, and the ChannelMappingTable when the family is not 0. The sample
// entry's channelcount shall be OutputChannelCount.
func checkDops(tr *media.Track) error {
	c := tr.Config
	if len(c) < 11 || c[0] != 0 {
		return errors.New("mp4: Opus track without dOps (OpusSpecificBox payload, version 0)")
	}
	if c[10] != 0 && len(c) < 13+int(c[1]) {
		return errors.New("mp4: Opus track's dOps lacks its channel mapping table")
	}
	if int(c[1]) != tr.Channels {
		return fmt.Errorf("mp4: Opus track of %d channels with a dOps of %d", tr.Channels, c[1])
	}
	return nil
}

// primingTicks is how much of the start of a track's media is decoder priming that is
// not presented, in the track's timescale: for Opus, PreSkip of dOps (48 kHz samples).
// "Encapsulation of Opus in ISO Base Media File Format" 4.4 has the edit list trim it
// (media_time = PreSkip; PreSkip itself is informative), and ffmpeg writes that edit, its
// demuxers starting Opus tracks at -PreSkip. So the samples' DTS count from the first
// decoded sample, priming included, and the first valid sample is presented at DTS +
// PreSkip: the fMP4 demuxer's timeline once the source's edit list is applied, and the
// TS one's, whose first access unit's start trim becomes PreSkip.
func primingTicks(tr *media.Track) int64 {
	if tr.Codec != media.Opus || len(tr.Config) < 4 {
		return 0
	}
	return int64(rescale(uint64(binary.BigEndian.Uint16(tr.Config[2:])), 48000, tr.Timescale))
}

// visualSampleEntry writes a VisualSampleEntry (ISO 14496-12 12.1.3) of type typ with
// the compressorname compressor (at most 31 bytes) and the decoder configuration box
// cfgType holding cfg.
func visualSampleEntry(w *boxWriter, tr *media.Track, typ, compressor, cfgType string, cfg []byte) error {
	if tr.Width <= 0 || tr.Height <= 0 || tr.Width > 0xffff || tr.Height > 0xffff {
		return fmt.Errorf("mp4: invalid video size %dx%d", tr.Width, tr.Height)
	}
	w.open(typ)
	w.zeros(6)
	w.u16(1) // data reference index
	w.zeros(16)
	w.u16(uint16(tr.Width))
	w.u16(uint16(tr.Height))
	w.u32(0x00480000)
	w.u32(0x00480000)
	w.u32(0)
	w.u16(1) // frame count
	w.b = append(w.b, byte(len(compressor)))
	w.str(compressor)
	w.zeros(31 - len(compressor))
	w.u16(0x0018)
	w.u16(0xffff)
	w.open(cfgType)
	w.raw(cfg)
	w.close()
	w.close()
	return nil
}

// hvcCRecord builds the HEVCDecoderConfigurationRecord (ISO 14496-15 8.3.3) of an HEVC
// track for an hvc1 sample entry: the VPS, SPS and PPS arrays with array_completeness 1
// (every parameter set is in the sample entry; samples may still repeat identical ones),
// which Apple's players require. Profile, tier, level, chroma format and bit depths come
// from the SPS; numTemporalLayers and temporalIdNested too, as ffmpeg writes them.
func hvcCRecord(tr *media.Track) ([]byte, error) {
	if len(tr.VPS) == 0 || len(tr.SPS) == 0 || len(tr.PPS) == 0 {
		return nil, errors.New("mp4: HEVC track without VPS/SPS/PPS")
	}
	rec, err := hevc.CreateHEVCDecConfRec(tr.VPS, tr.SPS, tr.PPS, true, true, true, true)
	if err != nil {
		return nil, fmt.Errorf("mp4: hvcC: %w", err)
	}
	if sps, err := hevc.ParseSPSNALUnit(tr.SPS[0]); err == nil {
		rec.NumTemporalLayers = sps.MaxSubLayersMinus1 + 1
		if sps.TemporalIDNestingFlag {
			rec.TemporalIDNested = 1
		}
	}
	var buf bytes.Buffer
	if err := rec.Encode(&buf); err != nil {
		return nil, fmt.Errorf("mp4: hvcC: %w", err)
	}
	return buf.Bytes(), nil
}

// writeEsds writes an esds box (ISO 14496-1 ES_Descriptor) of an audio stream of the
// given objectTypeIndication with dsi, the DecoderSpecificInfo, as it is (the AAC
// AudioSpecificConfig, so any channel layout works); without dsi, none is written (MPEG-1/2
// audio has none).
func writeEsds(w *boxWriter, t *TrackIndex, objectType byte, dsi []byte) {
	var maxSize uint32
	var total uint64
	var dur uint64
	buckets := map[uint64]uint64{}
	var maxBucket uint64
	ts := uint64(t.Track.Timescale)
	for _, s := range t.samples() {
		maxSize = max(maxSize, s.Size)
		total += uint64(s.Size)
		b := dur / ts
		buckets[b] += uint64(s.Size)
		maxBucket = max(maxBucket, buckets[b])
		dur += uint64(s.Duration)
	}
	var avg uint64
	if dur > 0 {
		avg = total * 8 * ts / dur
	}
	maxRate := max(maxBucket*8, avg)

	dcd := 13
	if len(dsi) > 0 {
		dcd += 5 + len(dsi)
	}
	es := 3 + 5 + dcd + 5 + 1
	w.full("esds", 0, 0)
	desc := func(tag byte, n int) {
		w.b = append(w.b, tag, 0x80|byte(n>>21&0x7f), 0x80|byte(n>>14&0x7f), 0x80|byte(n>>7&0x7f), byte(n&0x7f))
	}
	desc(0x03, es)
	w.u16(uint16(t.Track.ID))
	w.b = append(w.b, 0)
	desc(0x04, dcd)
	w.b = append(w.b, objectType, 0x15) // audio stream
	w.b = append(w.b, byte(maxSize>>16), byte(maxSize>>8), byte(maxSize))
	w.u32(uint32(min(maxRate, math.MaxUint32)))
	w.u32(uint32(min(avg, math.MaxUint32)))
	if len(dsi) > 0 {
		desc(0x05, len(dsi))
		w.b = append(w.b, dsi...)
	}
	desc(0x06, 1)
	w.b = append(w.b, 0x02)
	w.close()
}
