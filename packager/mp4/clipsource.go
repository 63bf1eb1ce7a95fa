package mp4

// Reading a stored MP4's sample tables for clips: its moov, parsed into the samples and
// the track descriptions a clip's header is built from.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	mp4ff "github.com/Eyevinn/mp4ff/mp4"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// ReadClipSource reads the moov of the MP4 file in r (size bytes) and parses its sample
// tables. Only the top-level box headers and the moov are read.
func ReadClipSource(r io.ReaderAt, size int64) (*ClipSource, error) {
	var moov, ftyp []byte
	for pos := int64(0); pos+8 <= size; {
		var h [16]byte
		if _, err := r.ReadAt(h[:8], pos); err != nil {
			return nil, fmt.Errorf("mp4: reading box header at %d: %w", pos, err)
		}
		bsize, typ, hlen := int64(binary.BigEndian.Uint32(h[:4])), string(h[4:8]), int64(8)
		switch bsize {
		case 1:
			if _, err := r.ReadAt(h[8:16], pos+8); err != nil {
				return nil, err
			}
			bsize, hlen = int64(binary.BigEndian.Uint64(h[8:16])), 16
		case 0:
			bsize = size - pos
		}
		if bsize < hlen || pos+bsize > size {
			return nil, fmt.Errorf("mp4: invalid %q box at %d", typ, pos)
		}
		switch typ {
		case "moov", "ftyp":
			if bsize > maxMoov {
				return nil, fmt.Errorf("mp4: moov of %d bytes", bsize)
			}
			b := make([]byte, bsize)
			if _, err := r.ReadAt(b, pos); err != nil {
				return nil, err
			}
			if typ == "moov" {
				moov = b
			} else {
				ftyp = b
			}
		}
		if moov != nil {
			break
		}
		pos += bsize
	}
	if moov == nil {
		return nil, errors.New("mp4: no moov")
	}
	return parseClipSource(ftyp, moov)
}

// parseClipSource parses the moov box (whole, header included).
func parseClipSource(ftyp, moov []byte) (*ClipSource, error) {
	box, err := mp4ff.DecodeBox(0, bytes.NewReader(moov))
	if err != nil {
		return nil, fmt.Errorf("mp4: decoding moov: %w", err)
	}
	mb, ok := box.(*mp4ff.MoovBox)
	if !ok || mb.Mvhd == nil || mb.Mvhd.Timescale == 0 {
		return nil, errors.New("mp4: invalid moov")
	}
	src := &ClipSource{Duration: float64(mb.Mvhd.Duration) / float64(mb.Mvhd.Timescale)}
	if len(ftyp) >= 12 && string(ftyp[8:12]) == "M4A " {
		src.brand = BrandM4A
	}
	entries := rawSampleEntries(moov)
	if len(entries) != len(mb.Traks) {
		return nil, errors.New("mp4: a trak without stsd")
	}
	for i, trak := range mb.Traks {
		t, err := parseClipTrack(trak, entries[i], mb.Mvhd.Timescale)
		if err != nil {
			return nil, fmt.Errorf("mp4: track %d: %w", i+1, err)
		}
		src.tracks = append(src.tracks, t)
	}
	if len(src.tracks) == 0 {
		return nil, errors.New("mp4: no tracks")
	}
	return src, nil
}

// rawSampleEntries returns the first sample entry of each trak's stsd, in trak order,
// as the bytes of the file (box header included).
func rawSampleEntries(moov []byte) [][]byte {
	var out [][]byte
	for _, trak := range children(moov[8:], "trak") {
		b := trak
		for _, typ := range []string{"mdia", "minf", "stbl", "stsd"} {
			c := children(b[8:], typ)
			if len(c) == 0 {
				return nil
			}
			b = c[0]
		}
		if len(b) < 16+8 {
			return nil
		}
		n := int(binary.BigEndian.Uint32(b[16:20]))
		if n < 8 || 16+n > len(b) {
			return nil
		}
		out = append(out, b[16:16+n])
	}
	return out
}

// children returns the boxes of type typ among the boxes in b (whole, headers included).
func children(b []byte, typ string) [][]byte {
	var out [][]byte
	for len(b) >= 8 {
		n := int(binary.BigEndian.Uint32(b))
		if n < 8 || n > len(b) {
			break
		}
		if string(b[4:8]) == typ {
			out = append(out, b[:n])
		}
		b = b[n:]
	}
	return out
}

// defaultHandlerName are the hdlr names of tracks without a name of their own.
var defaultHandlerName = map[string]bool{"VideoHandler": true, "SoundHandler": true, "SubtitleHandler": true, "ChapterHandler": true, "": true}

// parseClipTrack reads one trak: its media.Track from tkhd, mdhd and the sample entry,
// its edit list and its sample tables.
func parseClipTrack(trak *mp4ff.TrakBox, entry []byte, movieTS uint32) (*clipTrack, error) {
	if trak.Tkhd == nil || trak.Mdia == nil || trak.Mdia.Mdhd == nil || trak.Mdia.Minf == nil || trak.Mdia.Minf.Stbl == nil {
		return nil, errors.New("incomplete trak")
	}
	ts := trak.Mdia.Mdhd.Timescale
	if ts == 0 {
		return nil, errors.New("timescale 0")
	}
	tr, err := trackFromEntry(entry)
	if err != nil {
		return nil, err
	}
	tr.ID, tr.Timescale = int(trak.Tkhd.TrackID), ts
	// What the packager wrote of the track's presentation (moov.go), which clips keep.
	tr.Disabled, tr.AlternateGroup = trak.Tkhd.Flags&1 == 0, uint16(trak.Tkhd.AlternateGroup)
	tr.Language = trak.Mdia.Mdhd.GetLanguage()
	if e := trak.Mdia.Elng; e != nil && e.Language != "" {
		tr.Language = e.Language
	} else if tr.Language == "und" {
		tr.Language = ""
	}
	if h := trak.Mdia.Hdlr; h != nil && !defaultHandlerName[h.Name] {
		tr.Name = h.Name
	}
	stbl := trak.Mdia.Minf.Stbl
	if stbl.Stts == nil || stbl.Stsz == nil || stbl.Stsc == nil || (stbl.Stco == nil && stbl.Co64 == nil) {
		return nil, errors.New("incomplete stbl")
	}
	n := int(stbl.Stsz.SampleNumber)
	ct := &clipTrack{track: tr, dts: make([]int64, 0, n), size: make([]uint32, n), off: make([]int64, n)}

	// Sizes.
	for i := range n {
		if stbl.Stsz.SampleUniformSize != 0 {
			ct.size[i] = stbl.Stsz.SampleUniformSize
		} else if i < len(stbl.Stsz.SampleSize) {
			ct.size[i] = stbl.Stsz.SampleSize[i]
		} else {
			return nil, errors.New("stsz too short")
		}
	}
	// Decode times, from 0.
	var dts int64
	durs := make([]uint32, 0, n)
	for i, c := range stbl.Stts.SampleCount {
		for range c {
			if len(ct.dts) == n {
				break
			}
			ct.dts = append(ct.dts, dts)
			durs = append(durs, stbl.Stts.SampleTimeDelta[i])
			dts += int64(stbl.Stts.SampleTimeDelta[i])
		}
	}
	if len(ct.dts) != n || n == 0 {
		return nil, errors.New("stts and stsz disagree")
	}
	ct.lastDur = durs[n-1]
	// Composition offsets.
	if c := stbl.Ctts; c != nil {
		ct.cto = make([]int32, n)
		i := 0
		for j, end := range c.EndSampleNr[1:] {
			for ; i < int(end) && i < n; i++ {
				ct.cto[i] = c.SampleOffset[j]
			}
		}
	}
	// Sync samples.
	if s := stbl.Stss; s != nil {
		ct.sync = make([]bool, n)
		for _, k := range s.SampleNumber {
			if k >= 1 && int(k) <= n {
				ct.sync[k-1] = true
			}
		}
	}
	// Offsets, from the chunks.
	var offs []int64
	if stbl.Co64 != nil {
		for _, o := range stbl.Co64.ChunkOffset {
			offs = append(offs, int64(o))
		}
	} else {
		for _, o := range stbl.Stco.ChunkOffset {
			offs = append(offs, int64(o))
		}
	}
	sc := stbl.Stsc.Entries
	sample := 0
	for e := range sc {
		last := len(offs)
		if e+1 < len(sc) {
			last = int(sc[e+1].FirstChunk) - 1
		}
		for c := int(sc[e].FirstChunk) - 1; c < last && c < len(offs); c++ {
			o := offs[c]
			for range sc[e].SamplesPerChunk {
				if sample == n {
					return nil, errors.New("stsc and stsz disagree")
				}
				ct.off[sample] = o
				o += int64(ct.size[sample])
				sample++
			}
		}
	}
	if sample != n {
		return nil, errors.New("stsc and stsz disagree")
	}
	// The edit list: an empty edit delays the track, the next one says where its media
	// start. The samples are moved to the presentation timeline.
	var delay uint64 // movie timescale
	var mediaTime int64
	var editDur uint64
	if trak.Edts != nil && len(trak.Edts.Elst) > 0 {
		for _, e := range trak.Edts.Elst[0].Entries {
			if e.MediaTime == -1 {
				delay += e.SegmentDuration
				continue
			}
			mediaTime, editDur = e.MediaTime, e.SegmentDuration
			break
		}
	}
	ct.start = int64(rescale(delay, movieTS, ts))
	shift := ct.start - mediaTime
	for i := range ct.dts {
		ct.dts[i] += shift
	}
	if editDur > 0 {
		ct.presEnds = ct.start + int64(rescale(editDur, movieTS, ts))
	} else {
		ct.presEnds = ct.dts[n-1] + int64(ct.lastDur)
	}
	return ct, nil
}

// trackFromEntry rebuilds the media.Track a sample entry was written from (entries.go):
// codec, size or channels and rate, and the decoder configuration.
func trackFromEntry(e []byte) (*media.Track, error) {
	typ := string(e[4:8])
	tr := &media.Track{}
	switch typ {
	case "avc1", "avc3", "hvc1", "hev1", "av01":
		if len(e) < 86 {
			return nil, errors.New("short visual sample entry")
		}
		tr.Kind = media.Video
		tr.Width, tr.Height = int(binary.BigEndian.Uint16(e[32:])), int(binary.BigEndian.Uint16(e[34:]))
		cfgType := map[string]string{"avc1": "avcC", "avc3": "avcC", "hvc1": "hvcC", "hev1": "hvcC", "av01": "av1C"}[typ]
		tr.Codec = map[string]media.Codec{"avcC": media.H264, "hvcC": media.H265, "av1C": media.AV1}[cfgType]
		c := children(e[86:], cfgType)
		if len(c) == 0 {
			return nil, fmt.Errorf("%s sample entry without %s", typ, cfgType)
		}
		tr.Config = bytes.Clone(c[0][8:])
		return tr, nil
	case "tx3g":
		tr.Kind, tr.Codec, tr.Config = media.Subtitle, media.TX3G, bytes.Clone(e)
		return tr, nil
	case "text":
		tr.Kind, tr.Codec, tr.Config = media.Chapter, media.QTText, bytes.Clone(e)
		return tr, nil
	case "mp4a", "ac-3", "ec-3", "Opus":
		if len(e) < 36 {
			return nil, errors.New("short audio sample entry")
		}
		tr.Kind = media.Audio
		tr.Channels = int(binary.BigEndian.Uint16(e[24:]))
		tr.SampleRate = int(binary.BigEndian.Uint32(e[32:]) >> 16)
		kids := e[36:]
		switch typ {
		case "mp4a":
			c := children(kids, "esds")
			if len(c) == 0 {
				return nil, errors.New("mp4a sample entry without esds")
			}
			obj, dsi, err := parseEsds(c[0][12:])
			if err != nil {
				return nil, err
			}
			switch obj {
			case objMPEG4Audio:
				tr.Codec, tr.Config = media.AAC, dsi
			case objMPEG1Audio, objMPEG2Audio:
				tr.Codec, tr.ObjectType = media.MPEGAudio, obj
			default:
				return nil, fmt.Errorf("esds object type %#x", obj)
			}
		default:
			cfgType := map[string]string{"ac-3": "dac3", "ec-3": "dec3", "Opus": "dOps"}[typ]
			tr.Codec = map[string]media.Codec{"ac-3": media.AC3, "ec-3": media.EAC3, "Opus": media.Opus}[typ]
			c := children(kids, cfgType)
			if len(c) == 0 {
				return nil, fmt.Errorf("%s sample entry without %s", typ, cfgType)
			}
			tr.Config = bytes.Clone(c[0][8:])
		}
		return tr, nil
	}
	return nil, fmt.Errorf("unsupported sample entry %q", typ)
}

// parseEsds reads the objectTypeIndication and the DecoderSpecificInfo of an
// ES_Descriptor (the esds payload after version and flags).
func parseEsds(b []byte) (obj byte, dsi []byte, err error) {
	desc := func(b []byte) (tag byte, body, rest []byte, ok bool) {
		if len(b) < 2 {
			return 0, nil, nil, false
		}
		tag, n, i := b[0], 0, 1
		for ; i < len(b) && i < 5; i++ {
			n = n<<7 | int(b[i]&0x7f)
			if b[i]&0x80 == 0 {
				break
			}
		}
		i++
		if i+n > len(b) {
			return 0, nil, nil, false
		}
		return tag, b[i : i+n], b[i+n:], true
	}
	tag, es, _, ok := desc(b)
	if !ok || tag != 0x03 || len(es) < 3 {
		return 0, nil, errors.New("invalid esds")
	}
	flags := es[2]
	es = es[3:]
	if flags&0x80 != 0 && len(es) >= 2 {
		es = es[2:]
	}
	if flags&0x40 != 0 && len(es) >= 1 {
		es = es[1+int(es[0]):]
	}
	if flags&0x20 != 0 && len(es) >= 2 {
		es = es[2:]
	}
	tag, dcd, _, ok := desc(es)
	if !ok || tag != 0x04 || len(dcd) < 13 {
		return 0, nil, errors.New("invalid esds: no DecoderConfigDescriptor")
	}
	obj = dcd[0]
	if tag, d, _, ok := desc(dcd[13:]); ok && tag == 0x05 {
		dsi = bytes.Clone(d)
	}
	return obj, dsi, nil
}
