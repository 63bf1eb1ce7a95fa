package fmp4

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/Eyevinn/mp4ff/mp4"

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
	// verbatim: an avc1/hvc1 entry with its parameter sets; its samples are copied as
	// they are and config holds its avcC/hvcC (see the package documentation).
	verbatim bool

	// Audio.
	config     []byte // media.Track.Config (AV1, and H.264/HEVC when verbatim, too)
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

// parseInit parses ftyp+moov. Unsupported codecs are returned as *media.UnsupportedCodecError
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
	var unsupported *media.UnsupportedCodecError
	for _, tb := range traks {
		ti, err := parseTrak(tb, movieTimescale)
		var uc *media.UnsupportedCodecError
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
