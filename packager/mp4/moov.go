package mp4

import (
	"bytes"
	"errors"
	"io"
	"math"

	mp4ff "github.com/Eyevinn/mp4ff/mp4"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// This file writes the boxes of the header down to stbl (stbl.go writes the sample
// tables), one function per box, through a boxWriter: the same code measures the moov
// (planHeader) and writes it (writeHead), so the two cannot disagree.

// writeHead writes ftyp, moov and the free box's header to out.
func (h *header) writeHead(out io.Writer) error {
	if _, err := out.Write(h.ftyp); err != nil {
		return err
	}
	w := &boxWriter{out: out, sizes: h.moov}
	if err := buildMoov(w, h.x, h.order, h.start, h.co64, h.udta); err != nil {
		return err
	}
	if w.flush(); w.err != nil {
		return w.err
	}
	if w.opened != len(h.moov) {
		return errors.New("mp4: fewer boxes than measured")
	}
	_, err := out.Write(h.free)
	return err
}

// ftypBox writes the ftyp box for the tracks of order (see Brand). Like ffmpeg, the avc1
// compatible brand is listed only when there is H.264 (an hvc1 file is "isom iso2 mp41",
// as ffmpeg writes it), and av01 when there is AV1 (AV1-ISOBMFF 2.1; ffmpeg 5.1 writes
// "isom av01 iso2 mp41").
func ftypBox(brand Brand, order []*TrackIndex) []byte {
	var w boxWriter
	w.open("ftyp")
	if brand == BrandM4A && allCodec(order, media.AAC) {
		w.str("M4A ")
		w.u32(512)
		w.str("M4A isomiso2mp41")
	} else {
		w.str("isom")
		w.u32(512)
		w.str("isom")
		if hasCodec(order, media.AV1) {
			w.str("av01")
		}
		w.str("iso2")
		if hasCodec(order, media.H264) {
			w.str("avc1")
		}
		w.str("mp41")
	}
	w.close()
	return w.b
}

// hasCodec says whether any track of order has codec c.
func hasCodec(order []*TrackIndex, c media.Codec) bool {
	for _, t := range order {
		if t.Track.Codec == c {
			return true
		}
	}
	return false
}

// allCodec says whether every track of order has codec c.
func allCodec(order []*TrackIndex, c media.Codec) bool {
	for _, t := range order {
		if t.Track.Codec != c {
			return false
		}
	}
	return true
}

// buildMoov writes moov through w: mvhd, a trak per track of order, and udta with the
// boxes of udta (the movie's chapters) when there are any.
func buildMoov(w *boxWriter, x *Index, order []*TrackIndex, mediaStart int64, co64 bool, udta []byte) error {
	tims, edits := trackEdits(order)
	tkDur, movieDur := trackDurations(edits)
	w.open("moov")
	writeMvhd(w, movieDur, uint32(order[len(order)-1].Track.ID+1))
	chapters, refer := chapterRef(order)
	for i, t := range order {
		ref := uint32(0)
		if i == refer {
			ref = chapters
		}
		if err := writeTrak(w, x, t, tims[i], edits[i], tkDur[i], mediaStart, co64, ref); err != nil {
			return err
		}
	}
	if len(udta) > 0 {
		w.open("udta")
		w.raw(udta)
		w.close()
	}
	w.close()
	return w.err
}

// chapterRef returns the ID of the chapter track of order (0: none) and the index of
// the track that refers to it: the first video track, else the first audio one.
func chapterRef(order []*TrackIndex) (id uint32, refer int) {
	refer = -1
	for i, t := range order {
		switch {
		case t.Track.Kind == media.Chapter && id == 0:
			id = uint32(t.Track.ID)
		case t.Track.Kind == media.Video && (refer < 0 || order[refer].Track.Kind != media.Video):
			refer = i
		case t.Track.Kind == media.Audio && refer < 0:
			refer = i
		}
	}
	if id == 0 {
		refer = -1
	}
	return id, refer
}

// vers is the box version that holds 64-bit times (1) or 32-bit ones (0).
func vers(v1 bool) byte {
	if v1 {
		return 1
	}
	return 0
}

// writeMvhd writes the movie header: its duration and the next free track ID.
func writeMvhd(w *boxWriter, movieDur uint64, nextTrackID uint32) {
	v1 := movieDur > math.MaxUint32
	w.full("mvhd", vers(v1), 0)
	w.times(v1)
	w.u32(MovieTimescale)
	w.dur(v1, movieDur)
	w.u32(0x00010000) // rate
	w.u16(0x0100)     // volume
	w.zeros(10)
	w.matrix()
	w.zeros(24)
	w.u32(nextTrackID)
	w.close()
}

// writeTrak writes the trak of t, whose chunk offsets are relative to mediaStart.
func writeTrak(w *boxWriter, x *Index, t *TrackIndex, tt trackTiming, edits []Edit, tkDur uint64, mediaStart int64, co64 bool, chapters uint32) error {
	kind := t.Track.Kind
	w.open("trak")
	writeTkhd(w, t.Track, tkDur)
	if chapters != 0 {
		// The chapter track this one's chapters are (QuickTime's tref/chap).
		w.open("tref")
		w.open("chap")
		w.u32(chapters)
		w.close()
		w.close()
	}
	writeEdts(w, edits)
	w.open("mdia")
	writeMdhd(w, t.Track.Timescale, tt.mediaDur, iso639(t.Track.Language))
	if tag := elngTag(t.Track.Language); tag != "" {
		w.full("elng", 0, 0)
		w.str(tag)
		w.u8(0) // null-terminated
		w.close()
	}
	writeHdlr(w, kind, t.Track.Name)
	w.open("minf")
	writeMediaHeader(w, kind)
	writeDinf(w)
	if err := writeStbl(w, x, t, mediaStart, co64); err != nil {
		return err
	}
	w.close() // minf
	w.close() // mdia
	if t.Track.Name != "" {
		// The track's name as ffmpeg writes a title (udta/name), which ffprobe shows as
		// the stream's title and QuickTime as its name.
		w.open("udta")
		w.open("name")
		w.str(t.Track.Name)
		w.close()
		w.close()
	}
	w.close() // trak
	return nil
}

// writeTkhd writes the track header: enabled (unless Disabled) and in the movie, in its
// alternate group, lasting tkDur (the sum of its edits), sound at full volume, video at
// its size, timed text without either.
func writeTkhd(w *boxWriter, tr *media.Track, tkDur uint64) {
	video := tr.Kind == media.Video
	v1 := tkDur > math.MaxUint32
	flags := uint32(3) // enabled, in movie
	if tr.Disabled {
		flags = 2 // in movie: an alternative, off until chosen
	}
	w.full("tkhd", vers(v1), flags)
	w.times(v1)
	w.u32(uint32(tr.ID))
	w.u32(0)
	w.dur(v1, tkDur)
	w.zeros(8)
	w.u16(0) // layer
	w.u16(tr.AlternateGroup)
	if tr.Kind == media.Audio {
		w.u16(0x0100) // volume 1.0
	} else {
		w.u16(0)
	}
	w.u16(0)
	w.matrix()
	if video {
		w.u32(uint32(tr.Width) << 16)
		w.u32(uint32(tr.Height) << 16)
	} else {
		w.u32(0)
		w.u32(0)
	}
	w.close()
}

// writeEdts writes edts with the track's edit list, in version 1 only when an entry
// does not fit 32 bits.
func writeEdts(w *boxWriter, edits []Edit) {
	w.open("edts")
	v1 := false
	for _, e := range edits {
		if e.Duration > math.MaxUint32 || e.MediaTime > math.MaxInt32 || e.MediaTime < math.MinInt32 {
			v1 = true
		}
	}
	w.full("elst", vers(v1), 0)
	w.u32(uint32(len(edits)))
	for _, e := range edits {
		if v1 {
			w.u64(e.Duration)
			w.u64(uint64(e.MediaTime))
		} else {
			w.u32(uint32(e.Duration))
			w.u32(uint32(int32(e.MediaTime)))
		}
		w.u16(1) // media rate 1.0
		w.u16(0)
	}
	w.close()
	w.close()
}

// writeMdhd writes the media header: the track's timescale, the sum of its sample
// durations, its language (an ISO 639-2/T code).
func writeMdhd(w *boxWriter, timescale uint32, mediaDur uint64, lang string) {
	v1 := mediaDur > math.MaxUint32
	w.full("mdhd", vers(v1), 0)
	w.times(v1)
	w.u32(timescale)
	w.dur(v1, mediaDur)
	w.u16(packLanguage(lang))
	w.u16(0)
	w.close()
}

// The boxes that are the same in every file are encoded once, by mp4ff, and copied
// into each trak (BenchmarkBuildHeader: no slower than writing them field by field).
var (
	// hdlr with the names ffmpeg gives.
	hdlrVideo    = encodeBox(&mp4ff.HdlrBox{HandlerType: "vide", Name: "VideoHandler"})
	hdlrSound    = encodeBox(&mp4ff.HdlrBox{HandlerType: "soun", Name: "SoundHandler"})
	hdlrSubtitle = encodeBox(&mp4ff.HdlrBox{HandlerType: "sbtl", Name: "SubtitleHandler"})
	hdlrChapter  = encodeBox(&mp4ff.HdlrBox{HandlerType: "text", Name: "ChapterHandler"})
	// vmhd has flags 1, as ISO 14496-12 12.1.2 requires.
	vmhd = encodeBox(mp4ff.CreateVmhd())
	smhd = encodeBox(mp4ff.CreateSmhd())
	// dinf with one self-contained data reference (url with flags 1: the media are in
	// this file).
	dinf = encodeBox(func() mp4ff.Box {
		d := &mp4ff.DinfBox{}
		d.AddChild(mp4ff.CreateDref())
		return d
	}())
)

// encodeBox encodes a fixed box at start-up; it cannot fail but for a bug.
func encodeBox(b mp4ff.Box) []byte {
	var buf bytes.Buffer
	if err := b.Encode(&buf); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// writeHdlr writes the handler box, named as ffmpeg names it, or with the track's name
// (which players such as Chromium and VLC show as the track's label).
func writeHdlr(w *boxWriter, kind media.Kind, name string) {
	if name == "" {
		switch kind {
		case media.Video:
			w.raw(hdlrVideo)
		case media.Audio:
			w.raw(hdlrSound)
		case media.Chapter:
			w.raw(hdlrChapter)
		default:
			w.raw(hdlrSubtitle)
		}
		return
	}
	w.full("hdlr", 0, 0)
	w.u32(0) // pre_defined
	w.str(handlerType(kind))
	w.zeros(12)
	w.str(name)
	w.u8(0)
	w.close()
}

// handlerType is the hdlr handler_type of a track of kind.
func handlerType(kind media.Kind) string {
	switch kind {
	case media.Video:
		return "vide"
	case media.Audio:
		return "soun"
	case media.Chapter:
		return "text"
	}
	return "sbtl"
}

// writeMediaHeader writes vmhd, smhd, for timed text nmhd (as ffmpeg does for tx3g),
// for a chapter track gmhd.
func writeMediaHeader(w *boxWriter, kind media.Kind) {
	switch kind {
	case media.Video:
		w.raw(vmhd)
	case media.Audio:
		w.raw(smhd)
	case media.Chapter:
		w.raw(gmhdText)
	default:
		w.full("nmhd", 0, 0)
		w.close()
	}
}

// gmhdText is the generic media header of a QuickTime chapter track, as ffmpeg writes
// it (mov_write_gmhd_tag): gmin, then the "text" atom QuickTime needs for chapters,
// whose contents are undocumented (ffmpeg copies them verbatim too).
var gmhdText = func() []byte {
	b := be32(nil, 8+24+44)
	b = append(b, "gmhd"...)
	b = be32(b, 24)
	b = append(b, "gmin"...)
	b = be32(b, 0)                                                            // version, flags
	b = append(b, 0x00, 0x40, 0x80, 0x00, 0x80, 0x00, 0x80, 0x00, 0, 0, 0, 0) // graphics mode, opcolor, balance, reserved
	b = be32(b, 44)
	b = append(b, "text"...)
	b = append(b, 0x00, 0x01)
	for _, v := range []uint32{0, 0, 0, 1, 0, 0, 0, 0x4000} {
		b = be32(b, v)
	}
	return append(b, 0x00, 0x00)
}()

// writeDinf writes dinf.
func writeDinf(w *boxWriter) { w.raw(dinf) }
