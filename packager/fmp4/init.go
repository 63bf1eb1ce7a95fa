package fmp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/stream-downloads/caddy-stream-downloads/packager/codec"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// trakInfo is what an init section says about one track we use.
type trakInfo struct {
	id        uint32 // track_ID
	kind      media.Kind
	codec     media.Codec
	entry     string // sample entry type (avc1, hev1, mp4a, ...)
	timescale uint32 // mdhd

	// elst: presentation time = decode-timeline time + offset (track timescale), the
	// sum of the leading empty edits minus the media_time of the first real edit.
	offset int64

	// trex defaults.
	defDur, defSize, defFlags uint32

	// Video.
	nalLen        int // NAL unit length field size: 1, 2 or 4
	vps, sps, pps [][]byte
	width, height int

	// Audio.
	config     []byte // media.Track.Config (AV1 too)
	objectType uint8  // MPEG audio's esds objectTypeIndication
	sampleRate int
	channels   int
	frameDur   uint32 // media.Track.FrameDuration
}

// initInfo is a parsed init section: the first video and the first audio track.
type initInfo struct {
	video, audio *trakInfo
	leftOut      []string // the other audio and video tracks, named
}

// parseInit parses ftyp+moov. Unsupported codecs are returned as *UnsupportedCodecError
// only when no supported track of the same kind exists.
func parseInit(data []byte) (*initInfo, error) {
	var moov *box
	err := walkBoxes(data, 0, func(bx box) error {
		if bx.typ == "moov" && moov == nil {
			b := bx
			moov = &b
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if moov == nil {
		return nil, errors.New("no moov box in the init section (EXT-X-MAP)")
	}
	var movieTimescale uint32
	var traks []box
	trex := map[uint32]*mp4.TrexBox{}
	err = walkBoxes(moov.payload, 0, func(bx box) error {
		switch bx.typ {
		case "mvhd":
			b, err := decodeLeaf(bx)
			if err != nil {
				return err
			}
			movieTimescale = b.(*mp4.MvhdBox).Timescale
		case "trak":
			traks = append(traks, bx)
		case "mvex":
			return walkBoxes(bx.payload, 0, func(c box) error {
				if c.typ != "trex" {
					return nil
				}
				b, err := decodeLeaf(c)
				if err != nil {
					return err
				}
				t := b.(*mp4.TrexBox)
				trex[t.TrackID] = t
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	info := &initInfo{}
	var unsupported *UnsupportedCodecError
	for _, tb := range traks {
		ti, err := parseTrak(tb, movieTimescale)
		var uc *UnsupportedCodecError
		if errors.As(err, &uc) {
			if unsupported == nil || (uc.Video && !unsupported.Video) {
				unsupported = uc
			}
			info.leftOut = append(info.leftOut, uc.Codec)
			continue
		}
		if err != nil {
			return nil, err
		}
		if ti == nil {
			continue // not audio or video
		}
		if t := trex[ti.id]; t != nil {
			ti.defDur, ti.defSize, ti.defFlags = t.DefaultSampleDuration, t.DefaultSampleSize, t.DefaultSampleFlags
		}
		switch {
		case ti.kind == media.Video && info.video == nil:
			info.video = ti
		case ti.kind == media.Audio && info.audio == nil:
			info.audio = ti
		default:
			info.leftOut = append(info.leftOut, ti.codec.Name())
		}
	}
	if unsupported != nil && ((unsupported.Video && info.video == nil) || (!unsupported.Video && info.audio == nil)) {
		return nil, unsupported
	}
	if info.video == nil && info.audio == nil {
		return nil, errors.New("the init section has no video or audio track")
	}
	if info.video != nil && info.audio != nil && info.video.id == info.audio.id {
		return nil, fmt.Errorf("two tracks with the same track ID %d", info.video.id)
	}
	return info, nil
}

func parseTrak(tb box, movieTimescale uint32) (*trakInfo, error) {
	kids, err := children(tb.payload)
	if err != nil {
		return nil, err
	}
	ti := &trakInfo{}
	tkhd, ok := kids["tkhd"]
	if !ok || len(tkhd.payload) < 24 {
		return nil, errors.New("trak without a valid tkhd")
	}
	if tkhd.payload[0] == 1 {
		if len(tkhd.payload) < 24 {
			return nil, errors.New("truncated tkhd")
		}
		ti.id = binary.BigEndian.Uint32(tkhd.payload[20:])
	} else {
		ti.id = binary.BigEndian.Uint32(tkhd.payload[12:])
	}
	mdia, ok := kids["mdia"]
	if !ok {
		return nil, fmt.Errorf("track %d has no mdia box", ti.id)
	}
	mk, err := children(mdia.payload)
	if err != nil {
		return nil, err
	}
	hdlr, ok := mk["hdlr"]
	if !ok || len(hdlr.payload) < 12 {
		return nil, fmt.Errorf("track %d has no valid hdlr box", ti.id)
	}
	switch string(hdlr.payload[8:12]) {
	case "vide":
		ti.kind = media.Video
	case "soun":
		ti.kind = media.Audio
	default:
		return nil, nil // subtitles, metadata, hint: ignored
	}
	mdhdBox, ok := mk["mdhd"]
	if !ok {
		return nil, fmt.Errorf("track %d has no mdhd box", ti.id)
	}
	b, err := decodeLeaf(mdhdBox)
	if err != nil {
		return nil, err
	}
	ti.timescale = b.(*mp4.MdhdBox).Timescale
	if ti.timescale == 0 {
		return nil, fmt.Errorf("track %d has timescale 0", ti.id)
	}
	minf, ok := mk["minf"]
	if !ok {
		return nil, fmt.Errorf("track %d has no minf box", ti.id)
	}
	nk, err := children(minf.payload)
	if err != nil {
		return nil, err
	}
	stbl, ok := nk["stbl"]
	if !ok {
		return nil, fmt.Errorf("track %d has no stbl box", ti.id)
	}
	sk, err := children(stbl.payload)
	if err != nil {
		return nil, err
	}
	stsd, ok := sk["stsd"]
	if !ok || len(stsd.payload) < 8 {
		return nil, fmt.Errorf("track %d has no sample description (stsd)", ti.id)
	}
	var entry *box
	if err := walkBoxes(stsd.payload[8:], 0, func(bx box) error {
		if entry == nil {
			e := bx
			entry = &e
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if entry == nil {
		return nil, fmt.Errorf("track %d has an empty sample description", ti.id)
	}
	ti.entry = entry.typ
	if ti.kind == media.Video {
		err = parseVisualEntry(ti, *entry)
	} else {
		err = parseAudioEntry(ti, *entry)
	}
	if err != nil {
		return nil, err
	}
	if edts, ok := kids["edts"]; ok {
		if err := parseEdits(ti, edts, movieTimescale); err != nil {
			return nil, err
		}
	}
	return ti, nil
}

// parseEdits applies the edit list the way players do for the presentation: leading
// empty edits delay the track, the first real edit's media_time is presented at the
// end of them. Rates, durations of the real edit and further edits are ignored
// (fragmented files have no duration to cut to).
func parseEdits(ti *trakInfo, edts box, movieTimescale uint32) error {
	ek, err := children(edts.payload)
	if err != nil {
		return err
	}
	elstBox, ok := ek["elst"]
	if !ok {
		return nil
	}
	b, err := decodeLeaf(elstBox)
	if err != nil {
		return err
	}
	var empty uint64
	for _, e := range b.(*mp4.ElstBox).Entries {
		if e.MediaTime == -1 {
			empty += e.SegmentDuration
			continue
		}
		if e.MediaTime < 0 || e.MediaTime > 1<<40 || empty > 1<<40 {
			return fmt.Errorf("track %d: edit list out of range", ti.id)
		}
		var emptyTicks int64
		if movieTimescale > 0 {
			emptyTicks = int64(rescaleU(empty, movieTimescale, ti.timescale))
		}
		ti.offset = emptyTicks - e.MediaTime
		return nil
	}
	return nil
}

// rescaleU converts v from timescale from to timescale to, rounding to nearest.
func rescaleU(v uint64, from, to uint32) uint64 {
	q, r := v/uint64(from), v%uint64(from)
	return q*uint64(to) + (r*uint64(to)+uint64(from)/2)/uint64(from)
}

// visualEntryHeader is the size of a VisualSampleEntry's fixed fields after the box header.
const visualEntryHeader = 78

// audioEntryHeader is the size of an AudioSampleEntry's fixed fields (version 0).
const audioEntryHeader = 28

func parseVisualEntry(ti *trakInfo, e box) error {
	switch e.typ {
	case "avc1", "avc3":
		ti.codec = media.H264
	case "hvc1", "hev1":
		ti.codec = media.H265
	case "av01":
		ti.codec = media.AV1
	case "encv":
		return &UnsupportedCodecError{Codec: "encrypted video (DRM/Common Encryption" + originalFormat(e, visualEntryHeader) + ")", Entry: e.typ, Video: true}
	default:
		return &UnsupportedCodecError{Codec: entryName(e.typ), Entry: e.typ, Video: true}
	}
	if len(e.payload) < visualEntryHeader {
		return fmt.Errorf("track %d: truncated %s sample entry", ti.id, e.typ)
	}
	ti.width = int(binary.BigEndian.Uint16(e.payload[24:]))
	ti.height = int(binary.BigEndian.Uint16(e.payload[26:]))
	kids, err := children(e.payload[visualEntryHeader:])
	if err != nil {
		return fmt.Errorf("track %d: %s sample entry: %v", ti.id, e.typ, err)
	}
	switch ti.codec {
	case media.H264:
		c, ok := kids["avcC"]
		if !ok {
			return fmt.Errorf("track %d: %s sample entry without avcC", ti.id, e.typ)
		}
		if err := parseAvcC(ti, c.payload); err != nil {
			return fmt.Errorf("track %d: invalid avcC: %v", ti.id, err)
		}
	case media.H265:
		c, ok := kids["hvcC"]
		if !ok {
			return fmt.Errorf("track %d: %s sample entry without hvcC", ti.id, e.typ)
		}
		if err := parseHvcC(ti, c.payload); err != nil {
			return fmt.Errorf("track %d: invalid hvcC: %v", ti.id, err)
		}
	case media.AV1:
		c, ok := kids["av1C"]
		if !ok {
			return fmt.Errorf("track %d: av01 sample entry without av1C", ti.id)
		}
		cfg, err := codec.ParseAV1C(c.payload)
		if err != nil {
			return fmt.Errorf("track %d: invalid av1C: %v", ti.id, err)
		}
		ti.config = bytes.Clone(c.payload)
		if ti.width <= 0 || ti.height <= 0 {
			ti.width, ti.height = cfg.Width, cfg.Height
		}
		if ti.width <= 0 || ti.height <= 0 {
			return fmt.Errorf("track %d: AV1 video without a size", ti.id)
		}
		return nil
	}
	ti.updateDimensions()
	return nil
}

// updateDimensions takes width and height from the SPS when it parses.
func (ti *trakInfo) updateDimensions() {
	if len(ti.sps) == 0 {
		return
	}
	if w, h, ok := spsSize(ti.codec, ti.sps[0]); ok {
		ti.width, ti.height = w, h
	}
}

func spsSize(c media.Codec, sps []byte) (w, h int, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	switch c {
	case media.H264:
		var s h264.SPS
		if err := s.Unmarshal(sps); err != nil {
			return 0, 0, false
		}
		return s.Width(), s.Height(), s.Width() > 0 && s.Height() > 0
	case media.H265:
		var s h265.SPS
		if err := s.Unmarshal(sps); err != nil {
			return 0, 0, false
		}
		return s.Width(), s.Height(), s.Width() > 0 && s.Height() > 0
	}
	return 0, 0, false
}

// parseAvcC reads an AVCDecoderConfigurationRecord (ISO 14496-15 5.3.3.1), any NAL length size.
func parseAvcC(ti *trakInfo, p []byte) error {
	if len(p) < 6 {
		return errors.New("too short")
	}
	if p[0] != 1 {
		return fmt.Errorf("configuration version %d", p[0])
	}
	ti.nalLen = int(p[4]&3) + 1
	if ti.nalLen == 3 {
		return errors.New("NAL length size 3 is not allowed")
	}
	pos := 5
	read := func(n int) ([][]byte, error) {
		var out [][]byte
		for range n {
			if pos+2 > len(p) {
				return nil, errors.New("truncated parameter set")
			}
			l := int(binary.BigEndian.Uint16(p[pos:]))
			pos += 2
			if pos+l > len(p) {
				return nil, errors.New("truncated parameter set")
			}
			if l > 0 {
				out = append(out, bytes.Clone(p[pos:pos+l]))
			}
			pos += l
		}
		return out, nil
	}
	n := int(p[pos] & 0x1f)
	pos++
	var err error
	if ti.sps, err = read(n); err != nil {
		return err
	}
	if pos >= len(p) {
		return errors.New("truncated before the PPS count")
	}
	n = int(p[pos])
	pos++
	ti.pps, err = read(n)
	return err
}

// parseHvcC reads an HEVCDecoderConfigurationRecord (ISO 14496-15 8.3.3.1), any NAL length size.
func parseHvcC(ti *trakInfo, p []byte) error {
	if len(p) < 23 {
		return errors.New("too short")
	}
	if p[0] != 1 {
		return fmt.Errorf("configuration version %d", p[0])
	}
	ti.nalLen = int(p[21]&3) + 1
	if ti.nalLen == 3 {
		return errors.New("NAL length size 3 is not allowed")
	}
	numArrays := int(p[22])
	pos := 23
	for range numArrays {
		if pos+3 > len(p) {
			return errors.New("truncated NAL unit array")
		}
		typ := p[pos] & 0x3f
		n := int(binary.BigEndian.Uint16(p[pos+1:]))
		pos += 3
		for range n {
			if pos+2 > len(p) {
				return errors.New("truncated NAL unit")
			}
			l := int(binary.BigEndian.Uint16(p[pos:]))
			pos += 2
			if pos+l > len(p) {
				return errors.New("truncated NAL unit")
			}
			nalu := bytes.Clone(p[pos : pos+l])
			pos += l
			if l == 0 {
				continue
			}
			switch typ {
			case hevcVPS:
				ti.vps = append(ti.vps, nalu)
			case hevcSPS:
				ti.sps = append(ti.sps, nalu)
			case hevcPPS:
				ti.pps = append(ti.pps, nalu)
			}
		}
	}
	return nil
}

func parseAudioEntry(ti *trakInfo, e box) error {
	switch e.typ {
	case "mp4a", "ac-3", "ec-3", "Opus", ".mp3":
	case "enca":
		return &UnsupportedCodecError{Codec: "encrypted audio (DRM/Common Encryption" + originalFormat(e, audioEntryHeader) + ")", Entry: e.typ}
	default:
		return &UnsupportedCodecError{Codec: entryName(e.typ), Entry: e.typ}
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
		return &UnsupportedCodecError{Codec: "AC-3 (Dolby Digital) in an mp4a sample entry", Entry: "mp4a"}
	case 0xa6:
		return &UnsupportedCodecError{Codec: "E-AC-3 (Dolby Digital Plus) in an mp4a sample entry", Entry: "mp4a"}
	case 0xa9, 0xaa, 0xab, 0xac:
		return &UnsupportedCodecError{Codec: "DTS audio", Entry: "mp4a"}
	case 0xad:
		return &UnsupportedCodecError{Codec: "Opus in an mp4a sample entry", Entry: "mp4a"}
	default:
		return &UnsupportedCodecError{Codec: fmt.Sprintf("MPEG-4 audio object type 0x%02x", dc.ObjectType), Entry: "mp4a"}
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
		return &UnsupportedCodecError{Codec: fmt.Sprintf("MPEG-4 audio object type %d (not AAC)", cfg.Type), Entry: "mp4a"}
	}
	channels := int(cfg.ChannelConfig)
	switch {
	case channels == 7:
		channels = 8
	case channels == 0 || channels > 7:
		return &UnsupportedCodecError{Codec: fmt.Sprintf("AAC with channel configuration %d", cfg.ChannelConfig), Entry: "mp4a"}
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

// originalFormat finds the frma box of an encrypted sample entry: ", original format avc1".
func originalFormat(e box, hdr int) string {
	if len(e.payload) < hdr {
		return ""
	}
	out := ""
	_ = walkBoxes(e.payload[hdr:], 0, func(bx box) error {
		if bx.typ != "sinf" {
			return nil
		}
		return walkBoxes(bx.payload, 0, func(c box) error {
			if c.typ == "frma" && len(c.payload) >= 4 {
				out = ", original format " + entryName(string(c.payload[:4]))
			}
			return nil
		})
	})
	return out
}

// entryName names a sample entry type for users.
func entryName(typ string) string {
	switch typ {
	case "avc1", "avc3":
		return "H.264"
	case "hvc1", "hev1":
		return "H.265/HEVC"
	case "dvh1", "dvhe", "dva1", "dvav":
		return "Dolby Vision video (" + typ + ")"
	case "av01":
		return "AV1 video"
	case "vp09":
		return "VP9 video"
	case "vp08":
		return "VP8 video"
	case "vvc1", "vvi1":
		return "H.266/VVC video"
	case "mp4v":
		return "MPEG-4 Part 2 video"
	case "avc2", "avc4":
		return "H.264 with parameter sets split over samples (" + typ + ")"
	case "jpeg", "mjpg", "mjp2":
		return "Motion JPEG video"
	case "mp4a":
		return "AAC"
	case "ac-3":
		return "AC-3 (Dolby Digital)"
	case "ec-3":
		return "E-AC-3 (Dolby Digital Plus)"
	case "ac-4":
		return "AC-4 (Dolby)"
	case "Opus", "opus":
		return "Opus"
	case "fLaC":
		return "FLAC"
	case "alac":
		return "Apple Lossless (ALAC)"
	case ".mp3", "mp3 ":
		return "MP3"
	case "dtsc", "dtsh", "dtsl", "dtse", "dtsx":
		return "DTS audio"
	case "mha1", "mha2", "mhm1", "mhm2":
		return "MPEG-H 3D audio"
	case "lpcm", "ipcm", "fpcm", "sowt", "twos", "in24", "in32", "fl32", "fl64":
		return "uncompressed PCM audio"
	}
	return fmt.Sprintf("sample entry %q", printable(typ))
}

// HEVC NAL unit types.
const (
	hevcVPS = 32
	hevcSPS = 33
	hevcPPS = 34
	hevcAUD = 35
	hevcFD  = 38
)
