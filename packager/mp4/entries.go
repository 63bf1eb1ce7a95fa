package mp4

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/hevc"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

func sampleEntry(w *boxWriter, t *TrackIndex) error {
	tr := t.Track
	switch tr.Codec {
	case media.H264:
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
		return visualSampleEntry(w, tr, "avc1", "avcC", buf.Bytes())
	case media.H265:
		rec, err := hvcCRecord(tr)
		if err != nil {
			return err
		}
		return visualSampleEntry(w, tr, "hvc1", "hvcC", rec)
	case media.AAC:
		if len(tr.Config) == 0 || tr.Channels <= 0 || tr.SampleRate <= 0 {
			return errors.New("mp4: AAC track without AudioSpecificConfig")
		}
		w.open("mp4a")
		w.zeros(6)
		w.u16(1)
		w.zeros(8)
		w.u16(uint16(min(tr.Channels, 0xffff)))
		w.u16(16)
		w.u32(0)
		if tr.SampleRate <= 0xffff {
			w.u32(uint32(tr.SampleRate) << 16)
		} else {
			w.u32(0)
		}
		writeEsds(w, t)
		w.close()
	default:
		return fmt.Errorf("mp4: unsupported codec %q", tr.Codec)
	}
	return nil
}

// visualSampleEntry writes a VisualSampleEntry (ISO 14496-12 12.1.3) of type typ with
// the decoder configuration box cfgType holding cfg.
func visualSampleEntry(w *boxWriter, tr *media.Track, typ, cfgType string, cfg []byte) error {
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
	w.zeros(32)
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

// writeEsds writes an esds box (ISO 14496-1 ES_Descriptor) carrying the
// AudioSpecificConfig as it is, so any channel layout works.
func writeEsds(w *boxWriter, t *TrackIndex) {
	asc := t.Track.Config
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

	dsi := len(asc)
	dcd := 13 + 5 + dsi
	es := 3 + 5 + dcd + 5 + 1
	w.full("esds", 0, 0)
	desc := func(tag byte, n int) {
		w.b = append(w.b, tag, 0x80|byte(n>>21&0x7f), 0x80|byte(n>>14&0x7f), 0x80|byte(n>>7&0x7f), byte(n&0x7f))
	}
	desc(0x03, es)
	w.u16(uint16(t.Track.ID))
	w.b = append(w.b, 0)
	desc(0x04, dcd)
	w.b = append(w.b, 0x40, 0x15) // MPEG-4 audio, audio stream
	w.b = append(w.b, byte(maxSize>>16), byte(maxSize>>8), byte(maxSize))
	w.u32(uint32(min(maxRate, math.MaxUint32)))
	w.u32(uint32(min(avg, math.MaxUint32)))
	desc(0x05, dsi)
	w.b = append(w.b, asc...)
	desc(0x06, 1)
	w.b = append(w.b, 0x02)
	w.close()
}
