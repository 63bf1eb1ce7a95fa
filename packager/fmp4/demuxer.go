// Package fmp4 demuxes the fragmented MP4 (fMP4/CMAF) segments of one HLS rendition —
// an init section (EXT-X-MAP) followed by media segments of moof+mdat — into
// media.Samples on one continuous timeline. It is the fMP4 twin of packager/ts.
//
// Timeline rules:
//   - A sample's decode time is the traf's tfdt plus the durations of the samples before
//     it in the traf (a traf without tfdt continues where the track's previous one ended),
//     in the track's mdhd timescale, which is kept as Track.Timescale.
//   - The init's edit list is applied the way players (and ffmpeg's demuxer) do: the
//     leading empty edits delay the track, and the first real edit's media_time is
//     presented at their end. Every time of a track is moved by
//     (empty edits − media_time); so a video elst of the B-frame delay presents the first
//     PTS at 0, and the empty edits ffmpeg writes for start offsets keep the A/V offset.
//     The tracks' offsets (their first times, in seconds) are kept as they are: the
//     timeline is the source's, not rebased to 0 (the muxer derives edit lists from it).
//   - Discontinuity(at) moves the next period so that its earliest decode time (over all
//     tracks of its first segment) lands at the first segment's earliest decode time
//     plus at, but never before the end of what a track already emitted; all tracks move
//     by the same time, keeping the period's A/V offset.
//   - A tfdt that goes backwards (or does not advance) without a discontinuity is
//     ErrMalformed.
//
// Codecs: H.264 and HEVC samples are rewritten with 4-byte NAL lengths, without AUD,
// filler data and parameter sets equal to the sample entry's; AV1 and the audio codecs
// (AAC, AC-3, E-AC-3, MP3/MP2, Opus) are copied as they are, with their sample entry's
// configuration (esds, dac3, dec3, dOps, av1C) carried over.
//
// Samples of one segment are emitted interleaved by decode time across the tracks (so
// the muxer's chunks interleave). One whole segment is held in memory at a time.
package fmp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/stream-downloads/caddy-stream-downloads/packager/codec"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// ErrUnsupportedCodec is matched (errors.Is) by every *UnsupportedCodecError.
var ErrUnsupportedCodec = errors.New("unsupported codec")

// ErrMalformed is matched (errors.Is) by errors about input that is not valid fMP4,
// H.264, HEVC or AAC as this demuxer needs it.
var ErrMalformed = errors.New("malformed fMP4")

// UnsupportedCodecError reports an audio or video track in a codec we cannot package.
type UnsupportedCodecError struct {
	Codec string // human-readable codec name, e.g. "E-AC-3 (Dolby Digital Plus)"
	Entry string // the sample entry type, e.g. "ec-3"
	Video bool
}

func (e *UnsupportedCodecError) Error() string {
	entry := ""
	if e.Entry != "" {
		entry = fmt.Sprintf(" (sample entry %q)", printable(e.Entry))
	}
	return fmt.Sprintf("unsupported codec: %s%s; supported: %s", e.Codec, entry, media.Supported)
}

// Is makes errors.Is(err, ErrUnsupportedCodec) true.
func (e *UnsupportedCodecError) Is(target error) bool { return target == ErrUnsupportedCodec }

type malformedError struct {
	where string // "init section", "segment 3"
	err   error
}

func (e *malformedError) Error() string {
	return fmt.Sprintf("malformed fMP4 %s: %v", e.where, e.err)
}
func (e *malformedError) Unwrap() []error { return []error{ErrMalformed, e.err} }

// MaxSegmentSize bounds the bytes of one media segment (it is held in memory whole).
const MaxSegmentSize = 1 << 30

// maxSamplesPerSegment bounds the sample count of one segment (hostile truns).
const maxSamplesPerSegment = 1 << 20

// maxTime bounds decode times (ticks) so that sums and conversions cannot overflow.
const maxTime = 1 << 60

// stream is the state of the video or the audio track across inits and segments.
type stream struct {
	track *media.Track
	cur   *trakInfo // from the latest init; nil when the latest init lacks this kind
	// inband holds length-prefixed parameter sets of a later init that differ from the
	// sample entry's: they go in front of each sync sample (as from TS).
	inband []byte

	// Decode timeline of the source in the current period (init timescale).
	haveRaw bool
	lastRaw int64 // raw DTS of the last sample
	nextRaw int64 // raw DTS after the last sample (for a traf without tfdt)

	// Output timeline (track timescale).
	shift    int64 // added to the elst-adjusted time
	shiftSet bool  // shift is known for the current period
	emitted  bool
	lastOut  int64
	endOut   int64 // lastOut + its duration

	gotSync bool // video: the first decodable sample was emitted
}

// rawSample is one sample of a segment before it is placed on the timeline.
type rawSample struct {
	raw   int64 // DTS in the init's timescale
	dur   uint32
	cto   int32
	flags uint32
	data  []byte
}

// Demuxer turns the fMP4 segments of one HLS rendition, fed in playlist order, into samples.
type Demuxer struct {
	video, audio *stream
	haveInit     bool
	segIndex     int

	originSet bool
	originTS  uint32 // origin = originT / originTS seconds
	originT   int64
	period    int // number of discontinuities seen
	at        time.Duration
	shiftSet  bool     // the current period's shift is known
	shiftNs   *big.Int // the current period's shift in nanoseconds

	buf       []byte // reused sample buffer
	segBuf    []byte // reused segment buffer
	initMedia []byte // moof+mdat found in the init section, for the next segment

	extinf  time.Duration // of the segment being read (Expect)
	skipped int           // video samples left out before the first decodable one
	leftOut []string      // tracks of the init sections not taken, named
}

var (
	_ media.Demuxer    = (*Demuxer)(nil)
	_ media.Accounting = (*Demuxer)(nil)
)

// Expect takes the EXTINF of the next segment, which its samples must cover
// (media.Covers).
func (d *Demuxer) Expect(seg media.SegmentInfo) { d.extinf = seg.Duration }

// Notes says what was left out without it being an error.
func (d *Demuxer) Notes() []media.Note {
	var out []media.Note
	if len(d.leftOut) > 0 {
		out = append(out, media.Note{Text: "tracks left out (one video and one audio track are taken): " + strings.Join(d.leftOut, ", ")})
	}
	if d.skipped > 0 {
		out = append(out, media.Note{Kind: media.Video, Text: fmt.Sprintf("%d video frames before the first key frame were left out (they cannot be decoded)", d.skipped)})
	}
	return out
}

// NewDemuxer returns a Demuxer for one rendition.
func NewDemuxer() *Demuxer { return &Demuxer{} }

// Tracks lists the tracks found (video first, then audio), IDs 1..n. A video track is
// listed once its first decodable sample was emitted.
func (d *Demuxer) Tracks() []*media.Track {
	var out []*media.Track
	if d.video != nil && d.video.gotSync {
		out = append(out, d.video.track)
	}
	if d.audio != nil {
		out = append(out, d.audio.track)
	}
	for i, t := range out {
		t.ID = i + 1
	}
	return out
}

// Flush emits what is still pending after the last segment: every segment is emitted
// whole, so nothing; callers must still call it.
func (d *Demuxer) Flush(emit func(media.Sample) error) error { return nil }

// Discontinuity says the next segment starts a new timeline (EXT-X-DISCONTINUITY); see
// the package documentation.
func (d *Demuxer) Discontinuity(at time.Duration) {
	if !d.originSet {
		return // nothing seen yet (a discontinuity before the first media): no-op
	}
	d.period++
	d.at = at
	d.shiftSet = false
	for _, st := range []*stream{d.video, d.audio} {
		if st != nil {
			st.haveRaw = false
			st.shiftSet = false
		}
	}
}

// Init parses an init section (ftyp+moov, from EXT-X-MAP). It is called before the
// first segment and again whenever the map changes.
func (d *Demuxer) Init(data []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &malformedError{where: "init section", err: fmt.Errorf("parser panic: %v", p)}
		}
	}()
	info, err := parseInit(data)
	if err != nil {
		var uc *UnsupportedCodecError
		if errors.As(err, &uc) {
			return err
		}
		return &malformedError{where: "init section", err: err}
	}
	for _, n := range info.leftOut {
		if !slices.Contains(d.leftOut, n) {
			d.leftOut = append(d.leftOut, n)
		}
	}
	if err := d.setTrack(&d.video, info.video); err != nil {
		return err
	}
	if err := d.setTrack(&d.audio, info.audio); err != nil {
		return err
	}
	d.haveInit = true
	// Media fragments after the moov (ffmpeg's HLS muxer with frag_duration puts the first
	// segment's media there) are demuxed with the next segment, as ffmpeg's demuxer does.
	d.initMedia = nil
	_ = walkBoxes(data, 0, func(bx box) error {
		if bx.typ == "moof" && d.initMedia == nil {
			d.initMedia = bytes.Clone(data[bx.start:])
		}
		return nil
	})
	return nil
}

func (d *Demuxer) setTrack(sp **stream, ti *trakInfo) error {
	st := *sp
	if ti == nil {
		if st != nil {
			st.cur = nil
		}
		return nil
	}
	if st == nil {
		t := &media.Track{Kind: ti.kind, Codec: ti.codec, Timescale: ti.timescale}
		t.Config = ti.config
		if ti.kind == media.Video {
			t.Width, t.Height = ti.width, ti.height
			t.VPS, t.SPS, t.PPS = ti.vps, ti.sps, ti.pps
		} else {
			t.SampleRate, t.Channels = ti.sampleRate, ti.channels
			t.FrameDuration, t.ObjectType = ti.frameDur, ti.objectType
		}
		*sp = &stream{track: t, cur: ti}
		return nil
	}
	t := st.track
	if t.Codec != ti.codec {
		return &UnsupportedCodecError{Codec: fmt.Sprintf("a %s codec change from %s to %s at a new EXT-X-MAP", ti.kind, t.Codec.Name(), ti.codec.Name()), Entry: ti.entry, Video: ti.kind == media.Video}
	}
	if ti.kind == media.Audio {
		if !bytes.Equal(t.Config, ti.config) || t.ObjectType != ti.objectType || t.SampleRate != ti.sampleRate || t.Channels != ti.channels {
			return &malformedError{where: "init section", err: fmt.Errorf("%s configuration changes mid-stream (%d Hz %d ch -> %d Hz %d ch), not supported",
				t.Codec.Name(), t.SampleRate, t.Channels, ti.sampleRate, ti.channels)}
		}
	} else if t.Codec == media.AV1 {
		if !bytes.Equal(t.Config, ti.config) || t.Width != ti.width || t.Height != ti.height {
			return &malformedError{where: "init section", err: errors.New("AV1 configuration changes mid-stream, not supported")}
		}
	} else {
		st.inband = nil
		if len(t.SPS) == 0 && len(ti.sps) > 0 && !st.gotSync {
			t.VPS, t.SPS, t.PPS = ti.vps, ti.sps, ti.pps
			t.Width, t.Height = ti.width, ti.height
		} else if len(ti.sps) > 0 && !(equalSets(t.VPS, ti.vps) && equalSets(t.SPS, ti.sps) && equalSets(t.PPS, ti.pps)) {
			for _, set := range [][][]byte{ti.vps, ti.sps, ti.pps} {
				for _, n := range set {
					st.inband = binary.BigEndian.AppendUint32(st.inband, uint32(len(n)))
					st.inband = append(st.inband, n...)
				}
			}
		}
	}
	st.cur = ti
	return nil
}

func equalSets(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// Segment demuxes one media segment (one or more moof+mdat; styp, sidx, prft, emsg and
// other top-level boxes are skipped) and calls emit for each sample.
func (d *Demuxer) Segment(r io.Reader, emit func(media.Sample) error) (err error) {
	seg := d.segIndex
	d.segIndex++
	where := fmt.Sprintf("segment %d", seg)
	var emitErr error
	defer func() {
		if p := recover(); p != nil {
			err = &malformedError{where: where, err: fmt.Errorf("demuxer panic: %v", p)}
		}
		if err != nil && emitErr == nil {
			var me *malformedError
			var uc *UnsupportedCodecError
			if !errors.As(err, &me) && !errors.As(err, &uc) {
				err = &malformedError{where: where, err: err}
			}
		}
	}()
	if !d.haveInit {
		return errors.New("no init section (EXT-X-MAP) before the segment")
	}
	prefix := len(d.initMedia)
	data, err := readSegment(r, prefix, d.segBuf)
	if err != nil {
		emitErr = err // a read error is not a malformed segment
		return err
	}
	d.segBuf = data[:0] // every sample of it is emitted before Segment returns
	if len(data)-prefix > MaxSegmentSize {
		return fmt.Errorf("segment larger than %d bytes", MaxSegmentSize)
	}
	if d.initMedia != nil {
		copy(data, d.initMedia)
		d.initMedia = nil
	}
	var vs, as []rawSample
	count, total := 0, int64(0)
	err = walkBoxes(data, 0, func(bx box) error {
		if bx.typ != "moof" {
			return nil
		}
		return d.parseMoof(data, bx, func(st *stream, s rawSample) error {
			count++
			total += int64(len(s.data))
			if count > maxSamplesPerSegment {
				return fmt.Errorf("more than %d samples in one segment", maxSamplesPerSegment)
			}
			if total > int64(len(data)) {
				return errors.New("sample data overlaps: more sample bytes than the segment holds")
			}
			if st == d.video {
				vs = append(vs, s)
			} else {
				as = append(as, s)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	if d.video != nil && len(vs) > 0 {
		if err := d.checkRaw(d.video, vs); err != nil {
			return err
		}
	}
	if d.audio != nil && len(as) > 0 {
		if err := d.checkRaw(d.audio, as); err != nil {
			return err
		}
	}
	if got := max(d.span(d.video, vs), d.span(d.audio, as)); !media.Covers(got, d.extinf) {
		return fmt.Errorf("media lost: the segment holds %.3f s of media (%d samples) but its EXTINF says %.3f s",
			got.Seconds(), count, d.extinf.Seconds())
	}
	if err := d.place(vs, as); err != nil {
		return err
	}

	// Emit, interleaved by decode time.
	out := func(st *stream, s rawSample) error {
		dts := d.outTime(st, s.raw)
		if st.emitted && dts <= st.lastOut {
			return fmt.Errorf("%s decode times do not increase (%d after %d) after a timescale change", st.track.Kind, dts, st.lastOut)
		}
		sample := media.Sample{Track: st.track, DTS: dts, CTO: s.cto, Sync: true, Data: s.data}
		if st == d.video {
			var keep bool
			var err error
			sample.Data, sample.Sync, keep, err = d.videoSample(st, s)
			if err != nil || !keep {
				return err
			}
		} else if len(s.data) == 0 {
			return nil
		} else if t := st.track; t.Codec == media.MPEGAudio && !st.emitted {
			// The sample entry's channel count is often the template's 2: the frame says.
			if h, ok := codec.ParseMPEGAudio(s.data); ok && h.SampleRate == t.SampleRate {
				t.Channels = h.Channels
				if uint32(h.SampleRate) == t.Timescale {
					t.FrameDuration = uint32(h.Samples)
				}
			}
		}
		if err := emit(sample); err != nil {
			emitErr = err
			return err
		}
		st.emitted = true
		st.lastOut = dts
		st.endOut = dts + d.scaleDur(st, s.dur)
		return nil
	}
	i, j := 0, 0
	for i < len(vs) || j < len(as) {
		useVideo := j >= len(as)
		if i < len(vs) && j < len(as) {
			useVideo = d.seconds(d.video, vs[i].raw) <= d.seconds(d.audio, as[j].raw)
		}
		if useVideo {
			if err := out(d.video, vs[i]); err != nil {
				return err
			}
			i++
		} else {
			if err := out(d.audio, as[j]); err != nil {
				return err
			}
			j++
		}
	}
	return nil
}

// span is how long the samples ss of st last, by their durations.
func (d *Demuxer) span(st *stream, ss []rawSample) time.Duration {
	if st == nil || st.cur == nil || st.cur.timescale == 0 {
		return 0
	}
	var n int64
	for _, s := range ss {
		n += int64(s.dur)
	}
	return time.Duration(float64(n) / float64(st.cur.timescale) * float64(time.Second))
}

// parseMoof reads the trafs of our tracks in a moof and hands over their samples.
func (d *Demuxer) parseMoof(data []byte, moof box, add func(*stream, rawSample) error) error {
	moofStart := int64(moof.start)
	prevEnd := moofStart
	first := true
	return walkBoxes(moof.payload, 0, func(bx box) error {
		if bx.typ != "traf" {
			return nil
		}
		var tfhd *mp4.TfhdBox
		var tfdt *mp4.TfdtBox
		var truns []*mp4.TrunBox
		err := walkBoxes(bx.payload, 0, func(c box) error {
			switch c.typ {
			case "tfhd", "tfdt", "trun":
			default:
				return nil
			}
			b, err := decodeLeaf(c)
			if err != nil {
				return err
			}
			switch v := b.(type) {
			case *mp4.TfhdBox:
				tfhd = v
			case *mp4.TfdtBox:
				tfdt = v
			case *mp4.TrunBox:
				truns = append(truns, v)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if tfhd == nil {
			return errors.New("traf without tfhd")
		}
		var base int64
		switch {
		case tfhd.HasBaseDataOffset():
			if tfhd.BaseDataOffset > uint64(len(data)) {
				return fmt.Errorf("base data offset %d beyond the segment (%d bytes)", tfhd.BaseDataOffset, len(data))
			}
			base = int64(tfhd.BaseDataOffset)
		case tfhd.DefaultBaseIfMoof() || first:
			base = moofStart
		default:
			base = prevEnd
		}
		first = false
		var st *stream
		for _, s := range []*stream{d.video, d.audio} {
			if s != nil && s.cur != nil && s.cur.id == tfhd.TrackID {
				st = s
			}
		}
		ti := (*trakInfo)(nil)
		if st != nil {
			ti = st.cur
		}
		defDur, defSize, defFlags := uint32(0), uint32(0), uint32(0)
		if ti != nil {
			defDur, defSize, defFlags = ti.defDur, ti.defSize, ti.defFlags
		}
		if tfhd.HasDefaultSampleDuration() {
			defDur = tfhd.DefaultSampleDuration
		}
		if tfhd.HasDefaultSampleSize() {
			defSize = tfhd.DefaultSampleSize
		}
		if tfhd.HasDefaultSampleFlags() {
			defFlags = tfhd.DefaultSampleFlags
		}
		var t int64
		if tfdt != nil {
			v := tfdt.BaseMediaDecodeTime()
			if v >= maxTime {
				return fmt.Errorf("track %d: tfdt %d out of range", tfhd.TrackID, v)
			}
			t = int64(v)
		} else if st != nil && st.haveRaw {
			t = st.nextRaw
		}
		pos := base
		for k, trun := range truns {
			if trun.HasDataOffset() {
				pos = base + int64(trun.DataOffset)
			} else if k == 0 {
				pos = base
			}
			fsf, hasFSF := trun.FirstSampleFlags()
			for n, s := range trun.Samples {
				dur, size, flags := defDur, defSize, defFlags
				if trun.HasSampleDuration() {
					dur = s.Dur
				}
				if trun.HasSampleSize() {
					size = s.Size
				}
				if trun.HasSampleFlags() {
					flags = s.Flags
				} else if n == 0 && hasFSF {
					flags = fsf
				}
				var cto int32
				if trun.HasSampleCompositionTimeOffset() {
					cto = s.CompositionTimeOffset
				}
				if pos < 0 || pos+int64(size) > int64(len(data)) {
					return fmt.Errorf("track %d: sample data at %d+%d outside the segment (%d bytes)", tfhd.TrackID, pos, size, len(data))
				}
				if st != nil {
					if err := add(st, rawSample{raw: t, dur: dur, cto: cto, flags: flags, data: data[pos : pos+int64(size)]}); err != nil {
						return err
					}
				}
				pos += int64(size)
				t += int64(dur)
				if t >= maxTime {
					return fmt.Errorf("track %d: decode time out of range", tfhd.TrackID)
				}
			}
		}
		prevEnd = pos
		return nil
	})
}

// checkRaw verifies that the source decode times of a track increase (across segments
// within a period too) and records where the track ends.
func (d *Demuxer) checkRaw(st *stream, ss []rawSample) error {
	for i, s := range ss {
		var prev int64
		switch {
		case i > 0:
			prev = ss[i-1].raw
		case st.haveRaw:
			prev = st.lastRaw
		default:
			continue
		}
		if s.raw <= prev {
			if i > 0 && s.raw == prev && ss[i-1].dur == 0 {
				return fmt.Errorf("%s sample with duration 0 (decode time %d repeats)", st.track.Kind, s.raw)
			}
			return fmt.Errorf("%s decode time goes backwards without EXT-X-DISCONTINUITY (tfdt gives %d after %d, timescale %d)",
				st.track.Kind, s.raw, prev, st.cur.timescale)
		}
	}
	last := ss[len(ss)-1]
	st.haveRaw = true
	st.lastRaw = last.raw
	st.nextRaw = last.raw + int64(last.dur)
	return nil
}

// adjusted is a raw time with the edit list applied, in the init's timescale.
func adjusted(st *stream, raw int64) int64 { return raw + st.cur.offset }

// inTrack converts an adjusted time from the init's timescale to the track's.
func inTrack(st *stream, v int64) int64 {
	if st.cur.timescale == st.track.Timescale {
		return v
	}
	return bigToInt(bigDivFloor(new(big.Int).Mul(big.NewInt(v), big.NewInt(int64(st.track.Timescale))), big.NewInt(int64(st.cur.timescale))))
}

func (d *Demuxer) outTime(st *stream, raw int64) int64 {
	return inTrack(st, adjusted(st, raw)) + st.shift
}

func (d *Demuxer) scaleDur(st *stream, dur uint32) int64 {
	if st.cur.timescale == st.track.Timescale {
		return int64(dur)
	}
	return int64(rescaleU(uint64(dur), st.cur.timescale, st.track.Timescale))
}

// seconds is the output decode time of a raw time, for ordering across tracks.
func (d *Demuxer) seconds(st *stream, raw int64) float64 {
	return float64(d.outTime(st, raw)) / float64(st.track.Timescale)
}

// place computes the shift of the tracks that start the period in this segment.
func (d *Demuxer) place(vs, as []rawSample) error {
	type first struct {
		st *stream
		t  int64 // first time in track timescale, before shift
	}
	var firsts []first
	if d.video != nil && len(vs) > 0 && !d.video.shiftSet {
		firsts = append(firsts, first{d.video, inTrack(d.video, adjusted(d.video, vs[0].raw))})
	}
	if d.audio != nil && len(as) > 0 && !d.audio.shiftSet {
		firsts = append(firsts, first{d.audio, inTrack(d.audio, adjusted(d.audio, as[0].raw))})
	}
	if len(firsts) == 0 {
		return nil
	}
	ns := func(t int64, ts uint32) *big.Int {
		return bigDivFloor(new(big.Int).Mul(big.NewInt(t), big.NewInt(1e9)), big.NewInt(int64(ts)))
	}
	if !d.originSet {
		for _, f := range firsts {
			if !d.originSet || ns(f.t, f.st.track.Timescale).Cmp(ns(d.originT, d.originTS)) < 0 {
				d.originT, d.originTS, d.originSet = f.t, f.st.track.Timescale, true
			}
		}
	}
	if d.period == 0 {
		for _, f := range firsts {
			f.st.shift, f.st.shiftSet = 0, true
		}
		return nil
	}
	if !d.shiftSet {
		// Earliest time of the new period → origin + at, never before what was emitted.
		var earliest *big.Int
		for _, f := range firsts {
			if v := ns(f.t, f.st.track.Timescale); earliest == nil || v.Cmp(earliest) < 0 {
				earliest = v
			}
		}
		shift := ns(d.originT, d.originTS)
		shift.Add(shift, big.NewInt(int64(d.at)))
		shift.Sub(shift, earliest)
		for _, f := range firsts {
			if !f.st.emitted {
				continue
			}
			need := ns(f.st.endOut, f.st.track.Timescale)
			need.Sub(need, ns(f.t, f.st.track.Timescale))
			if need.Cmp(shift) > 0 {
				shift = need
			}
		}
		d.shiftNs, d.shiftSet = shift, true
	}
	for _, f := range firsts {
		ts := big.NewInt(int64(f.st.track.Timescale))
		s := new(big.Int).Mul(d.shiftNs, ts)
		s = bigDivFloor(s.Add(s, big.NewInt(5e8)), big.NewInt(1e9)) // rounded to nearest
		shift := bigToInt(s)
		if f.st.emitted && f.t+shift < f.st.endOut {
			shift = f.st.endOut - f.t
		}
		if shift > maxTime || shift < -maxTime {
			return errors.New("timeline shift after a discontinuity out of range")
		}
		f.st.shift, f.st.shiftSet = shift, true
	}
	return nil
}

func bigDivFloor(a, b *big.Int) *big.Int {
	q, _ := new(big.Int).DivMod(a, b, new(big.Int)) // Euclidean, so floor for b > 0 (always here)
	return q
}

func bigToInt(v *big.Int) int64 {
	if !v.IsInt64() {
		if v.Sign() < 0 {
			return math.MinInt64 / 2
		}
		return math.MaxInt64 / 2
	}
	return v.Int64()
}

// sampleFlagsSync says whether ISO BMFF sample flags mark a sync sample:
// sample_is_non_sync_sample is 0 and sample_depends_on is not 1 (depends on others).
func sampleFlagsSync(flags uint32) bool {
	return flags&0x00010000 == 0 && (flags>>24)&3 != 1
}

// videoSample converts a video sample to 4-byte NAL lengths without AUD, filler data
// and parameter sets equal to the sample entry's. It reports whether the sample is a
// sync sample (the flags say so and it holds an IDR/IRAP picture) and whether to keep
// it (leading samples before the first decodable one are dropped).
func (d *Demuxer) videoSample(st *stream, s rawSample) (out []byte, sync, keep bool, err error) {
	t, ti := st.track, st.cur
	if t.Codec == media.AV1 {
		// Copied as it is: a temporal unit in the av1C sample format; sync from the flags.
		sync = sampleFlagsSync(s.flags)
		if !st.gotSync && !sync {
			d.skipped++
			return nil, false, false, nil
		}
		st.gotSync = true
		return s.data, sync, len(s.data) > 0, nil
	}
	hevc := t.Codec == media.H265
	irap := false
	var vps, sps, pps []byte
	err = forNALs(s.data, ti.nalLen, func(n []byte) error {
		typ := nalType(n, hevc)
		if hevc {
			switch {
			case typ >= 16 && typ <= 21:
				irap = true
			case typ == hevcVPS && vps == nil:
				vps = n
			case typ == hevcSPS && sps == nil:
				sps = n
			case typ == hevcPPS && pps == nil:
				pps = n
			}
		} else {
			switch typ {
			case 5:
				irap = true
			case 7:
				if sps == nil {
					sps = n
				}
			case 8:
				if pps == nil {
					pps = n
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, false, false, fmt.Errorf("video sample at decode time %d: %v", s.raw, err)
	}
	sync = irap && sampleFlagsSync(s.flags)
	if len(t.SPS) == 0 && irap && sps != nil && pps != nil && (!hevc || vps != nil) {
		// avc3/hev1 without parameter sets in the sample entry: the first keyframe's.
		t.SPS, t.PPS = [][]byte{bytes.Clone(sps)}, [][]byte{bytes.Clone(pps)}
		if hevc {
			t.VPS = [][]byte{bytes.Clone(vps)}
		}
		if w, h, ok := spsSize(t.Codec, sps); ok {
			t.Width, t.Height = w, h
		}
	}
	if !st.gotSync {
		if !sync || len(t.SPS) == 0 || len(t.PPS) == 0 || (hevc && len(t.VPS) == 0) {
			d.skipped++
			return nil, false, false, nil // not decodable: dropped
		}
		if t.Width <= 0 || t.Height <= 0 {
			return nil, false, false, errors.New("video width and height unknown (no parsable SPS, no size in the sample entry)")
		}
		st.gotSync = true
	}
	buf := d.buf[:0]
	if sync {
		buf = append(buf, st.inband...)
	}
	_ = forNALs(s.data, ti.nalLen, func(n []byte) error {
		typ := nalType(n, hevc)
		if hevc {
			switch typ {
			case hevcAUD, hevcFD:
				return nil
			case hevcVPS:
				if containsSet(t.VPS, n) {
					return nil
				}
			case hevcSPS:
				if containsSet(t.SPS, n) {
					return nil
				}
			case hevcPPS:
				if containsSet(t.PPS, n) {
					return nil
				}
			}
		} else {
			switch typ {
			case 9, 12:
				return nil
			case 7:
				if containsSet(t.SPS, n) {
					return nil
				}
			case 8:
				if containsSet(t.PPS, n) {
					return nil
				}
			}
		}
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(n)))
		buf = append(buf, n...)
		return nil
	})
	d.buf = buf
	if len(buf) == 0 {
		return nil, false, false, nil
	}
	return buf, sync, true, nil
}

func containsSet(sets [][]byte, n []byte) bool {
	for _, s := range sets {
		if bytes.Equal(s, n) {
			return true
		}
	}
	return false
}

func nalType(n []byte, hevc bool) byte {
	if hevc {
		return (n[0] >> 1) & 0x3f
	}
	return n[0] & 0x1f
}

// forNALs calls fn for each non-empty NAL unit of a length-prefixed sample (lenSize 1, 2
// or 4 bytes per length).
func forNALs(b []byte, lenSize int, fn func([]byte) error) error {
	if lenSize != 1 && lenSize != 2 && lenSize != 4 {
		return fmt.Errorf("NAL length size %d", lenSize)
	}
	for len(b) > 0 {
		if len(b) < lenSize {
			return fmt.Errorf("%d stray bytes after the last NAL unit", len(b))
		}
		var n uint64
		for _, c := range b[:lenSize] {
			n = n<<8 | uint64(c)
		}
		b = b[lenSize:]
		if n > uint64(len(b)) {
			return fmt.Errorf("NAL unit length %d exceeds the %d bytes left in the sample", n, len(b))
		}
		if n > 0 {
			if err := fn(b[:n]); err != nil {
				return err
			}
		}
		b = b[n:]
	}
	return nil
}

// readSegment reads r (at most MaxSegmentSize+1 bytes) into a slice with room for
// prefix bytes in front (data[:prefix] is left zero, for the caller to fill). When r
// tells its length (a *bytes.Reader's Len, or the SizeHint of hls.Fetch's body when the
// segment's size is known), the slice is reuse when that is large enough, or allocated
// once at that size, instead of the growing and copying of io.ReadAll. Otherwise it
// reads into reuse, grown as needed.
func readSegment(r io.Reader, prefix int, reuse []byte) ([]byte, error) {
	lr := io.LimitReader(r, MaxSegmentSize+1)
	size := -1
	switch l := r.(type) {
	case interface{ Len() int }:
		size = l.Len()
	case interface{ SizeHint() int64 }:
		size = int(min(l.SizeHint(), MaxSegmentSize+1))
	}
	if size >= 0 && size <= MaxSegmentSize {
		data := reuse[:0]
		if n := prefix + size + 1; cap(data) < n {
			data = make([]byte, 0, n)
		}
		data = data[:prefix+size]
		clear(data[:prefix])
		n, err := io.ReadFull(lr, data[prefix:])
		data = data[:prefix+n]
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return data, nil
		}
		if err != nil {
			return nil, err
		}
		// More than Len said (a reader that grew): read the rest.
		rest, err := io.ReadAll(lr)
		return append(data, rest...), err
	}
	data := reuse[:0]
	if cap(data) < prefix+512 {
		data = make([]byte, 0, prefix+512)
	}
	data = data[:prefix]
	clear(data)
	for {
		n, err := lr.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return nil, err
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
}
