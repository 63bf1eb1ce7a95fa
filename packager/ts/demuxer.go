// Package ts demuxes the MPEG-TS segments of one HLS rendition (H.264 or HEVC video; AAC,
// AC-3, E-AC-3, MPEG audio or Opus audio), and packed audio segments (RFC 8216 §3.4),
// into media.Samples on one continuous timeline.
package ts

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// The Demuxer: its state, the flow of Segment and Flush, Tracks, Notes and its errors.
// Where the rest is: streams chosen from the PMT (tracks.go), units placed on the timeline
// (units.go, period.go), coverage of EXTINF (coverage.go), losses (losses.go).

// VideoTimescale is the timescale of video tracks: the MPEG-TS 90 kHz clock.
const VideoTimescale = 90000

// Demuxer turns the MPEG-TS segments of one HLS rendition, fed in playlist order, into samples.
//
// Timeline: the stream is cut into periods by Discontinuity (EXT-X-DISCONTINUITY). Inside
// a period every PTS/DTS of every track goes through one shared 33-bit unwrapper, so the
// relative offset of audio and video (the A/V sync) is kept and wraparound is continuous.
// The first period keeps its own timestamps (the first raw timestamp, extended past 2^33).
// Each later period gets a fresh unwrapper and one offset for all its tracks: its earliest
// timestamp (first video DTS or first audio PTS, whichever is smaller) is placed at
// origin+at, where origin is the earliest timestamp of the first period and at is what the
// playlist says; but no track may start before the end of what it already emitted (last
// DTS plus one frame, and for video also the latest PTS plus one frame, so that pictures
// of the two periods do not share presentation times), so the offset is raised until that
// holds for every track. Last, the offset is raised by less than a frame so that the video
// stays on its frame grid (the gap before the period is a whole number of frames). Samples
// of a new period are held back until each of its tracks showed a timestamp (or the
// segment ended) so that the offset is known before anything is emitted.
//
// Periods also start without a tag (implicit discontinuities, period.go), as hls.js,
// AVPlayer and ffmpeg take them: when the first unit of a segment is more than jumpBack
// behind the end of what came before, or more than jumpAhead past it beyond what the
// playlist says (segments repeated, ads stitched in without EXT-X-DISCONTINUITY).
//
// The segments are read as one transport stream (pes.go); units are rebuilt across PES
// boundaries (annexb.go, adts.go) and take their timestamps by ISO 13818-1's rule
// (stamps.go, poc.go); samples leave in time order across the tracks (order.go).
//
// Accounting: what the demuxer cannot use is counted (losses.go), and any of it ends the
// segment in an error; so does a segment whose media does not cover its EXTINF
// (media.Covers, checkCoverage). What shows only in the next segment (a PES or unit the
// segment ends in and the next does not go on with; packets missing by the continuity
// counters, pes.go) is an error about the segment before (media.MalformedError.Seg).
// Frames that cannot be decoded are left out and said in Notes.
//
// Video samples are in 90 kHz ticks; audio samples are in ticks of the audio sample rate
// (48 kHz for Opus), counted on by each frame's length (AAC 1024, AC-3 and E-AC-3 1536,
// MP3 1152 or 576, Opus by its TOC) and re-synchronised to the PTS only when the two
// drift apart by more than half a frame forwards (a gap) and at the start of every
// period. E-AC-3 syncframes are joined into samples of 1536 with their dependent
// substreams (audioes.go).
//
// Video starts (in the stream and again after each discontinuity) at the first frame a
// decoder can start from; earlier frames are dropped:
//   - H.264: an IDR frame, or a frame made only of I slices (open GOP, e.g. x264
//     open-gop=1 cut mid-stream, whose keyframes are non-IDR I frames with a recovery
//     point SEI). After such a non-IDR start, frames that follow it in decode order but
//     are displayed before it (leading B frames referencing the previous GOP) are dropped.
//     Sync samples are IDR frames, non-IDR I frames with a recovery point SEI, and the
//     first frame.
//   - HEVC: an IRAP picture (BLA, IDR, CRA). RASL pictures that belong to the starting
//     CRA/BLA (up to the next IRAP) cannot be decoded and are dropped; RADL pictures are
//     kept. Sync samples are IRAP pictures.
//
// Parameter sets: the sample entry takes those of the access unit video starts with.
// Identical copies are stripped from the samples; parameter sets that differ (e.g. new
// SPS/PPS after a discontinuity) stay in-band in the samples, as ffmpeg does.
type Demuxer struct {
	segIndex    int
	seg         media.SegmentInfo // what the playlist says of the segment being read
	prevSeg     media.SegmentInfo
	per         *period
	prevPer     *period // the period before per: units that started before per may still come
	origin      int64   // earliest timestamp of the first period (90 kHz, output timeline)
	originTaken bool
	at          int64 // where the current period starts by the playlist (90 kHz from origin)
	pending     []event
	pendingSize int  // bytes of pending, with what holding each unit costs (holdBack)
	segV        bool // the program has a video / audio stream we read
	segA        bool

	pes    pesReader
	br     *bufio.Reader // the segment being read
	packed bool          // the stream is packed audio (packed.go), not MPEG-TS
	vES    videoES
	aES    audioES
	lost   losses
	tail   losses    // lost at the end of the segment before the one being read (pes.go)
	cov    coverage  // of the segment being read
	had    [2]bool   // the track yielded media in an earlier segment
	short  [2]string // a segment where the track fell short, while it may have ended there
	jumped bool      // the segment's first unit was checked for a jump

	video, audio *media.Track
	audioFormat  audioFormat
	audioType    uint8        // stream type of the audio stream read
	audioKind    streamKind   // what the audio stream read is
	declared     []media.Kind // streams of the PMT we read
	leftOut      []string     // streams of the PMT we do not read (said once in Notes)

	// Parameter sets of the latest access unit that carried them (before video starts).
	lastVPS, lastSPS, lastPPS [][]byte

	videoStarted bool  // the track has emitted samples (it is listed by Tracks)
	needKey      bool  // drop video until a frame a decoder can start from
	startPTS     int64 // PTS of the frame the current period's video started with
	dropLeading  bool  // H.264: drop frames displayed before startPTS (open-GOP start)
	dropRASL     bool  // HEVC: drop RASL pictures (started on CRA/BLA, until the next IRAP)
	lastDTS      int64
	lastDelta    int64 // DTS delta of the last two video samples (end estimate)
	maxPTS       int64 // latest video PTS emitted

	audioNext    int64 // next audio DTS in sample-rate ticks
	audioStarted bool  // audio emitted before (audioNext is meaningful)
	audioResync  bool  // follow the next PTS (period start)

	skipped int          // video frames left out: before a key frame, or referring to frames before it
	notes   []media.Note // see Notes

	buf     []byte // reused AVCC/HVCC buffer
	ord     orderer
	emitErr error
	curEmit func(media.Sample) error
}

var (
	_ media.Demuxer    = (*Demuxer)(nil)
	_ media.Accounting = (*Demuxer)(nil)
)

// NewDemuxer returns a Demuxer for one rendition.
func NewDemuxer() *Demuxer {
	d := &Demuxer{per: &period{resolved: true}, needKey: true}
	d.vES.on = d.onVideo
	d.vES.lost = &d.lost
	d.aES.on = d.onAudio
	d.aES.lost = &d.lost
	d.pes.lost = &d.lost
	d.pes.tail = &d.tail
	d.pes.onPMT = d.onPMT
	return d
}

// Tracks lists the tracks found (video first, then audio), IDs 1..n.
func (d *Demuxer) Tracks() []*media.Track {
	var out []*media.Track
	if d.video != nil && d.videoStarted {
		out = append(out, d.video)
	}
	if d.audio != nil {
		out = append(out, d.audio)
	}
	for i, t := range out {
		t.ID = i + 1
	}
	return out
}

// Expect says what the playlist says of the next segment.
func (d *Demuxer) Expect(seg media.SegmentInfo) {
	d.prevSeg, d.seg = d.seg, seg
}

// Notes says what the output lacks or changed without an error: a declared stream that
// never carried a unit, frames left out before a key frame, implicit discontinuities.
// Complete after Flush.
func (d *Demuxer) Notes() []media.Note {
	out := append([]media.Note(nil), d.notes...)
	if d.skipped > 0 {
		out = append(out, media.Note{Kind: media.Video, Text: fmt.Sprintf("%d video frames that cannot be decoded were left out (before the first key frame, or referring to frames before it)", d.skipped)})
	}
	if lead := d.pes.lead + d.vES.lead + d.aES.lead; lead > 0 {
		out = append(out, media.Note{Text: fmt.Sprintf("%d bytes before the first access unit or audio frame were left out (the end of a unit that starts before the first segment)", lead)})
	}
	for _, k := range d.declared {
		if (k == media.Audio && d.audio == nil && d.videoStarted) || (k == media.Video && !d.videoStarted && d.audio != nil) {
			out = append(out, media.Note{Kind: k, Text: fmt.Sprintf("the stream declares %s but carries none: the file has no %s track", k, k)})
		}
	}
	return out
}

// maxNotes bounds the notes kept of one stream.
const maxNotes = 20

func (d *Demuxer) note(format string, args ...any) {
	if len(d.notes) < maxNotes {
		d.notes = append(d.notes, media.Note{Text: fmt.Sprintf(format, args...)})
	}
}

// Flush emits what is still pending after the last segment: the units in progress and
// a new period's samples held back.
func (d *Demuxer) Flush(emit func(media.Sample) error) (err error) {
	d.setEmit(emit)
	defer func() { d.curEmit = nil }()
	defer d.recoverPanic(&err)
	d.pes.end()
	if err := d.vES.flush(); err != nil {
		return err
	}
	if err := d.aES.flush(); err != nil {
		return err
	}
	if err := d.resolve(); err != nil {
		return err
	}
	if err := d.ord.release(true); err != nil {
		return err
	}
	if d.lost.any() {
		return d.malformed("media lost at the end of the stream: %s", &d.lost)
	}
	return nil
}

// Segment demuxes one whole segment and calls emit for each complete sample.
func (d *Demuxer) Segment(r io.Reader, emit func(media.Sample) error) (err error) {
	seg := d.segIndex
	d.segIndex++
	defer d.recoverPanic(&err)
	d.setEmit(emit)
	defer func() { d.curEmit = nil }()
	d.vES.seg, d.aES.seg = seg, seg
	d.cov, d.jumped = coverage{}, false
	d.lost.reset()
	d.tail.reset()
	d.pes.newSegment()

	if d.br == nil {
		d.br = bufio.NewReaderSize(r, 64<<10)
	}
	src := &sourceReader{r: r}
	d.br.Reset(src)
	defer d.br.Reset(nil)
	if head, _ := d.br.Peek(4); d.packed || sniffPacked(head) {
		err = d.readPacked(d.br)
	} else {
		err = d.pes.read(d.br)
	}
	if err != nil {
		if d.emitErr != nil {
			return d.emitErr
		}
		if src.err != nil && errors.Is(err, src.err) {
			return src.err // the reader's own (the origin, a size limit): not a malformed segment
		}
		var uc *media.UnsupportedCodecError
		var me *media.MalformedError
		if errors.As(err, &uc) || errors.As(err, &me) {
			return err
		}
		return d.malformed("%v", err)
	}
	if d.pes.lastPMT == nil && !d.packed {
		return d.malformed("no program map table (PMT) found")
	}
	// End of the segment: a new period's offset is fixed now at the latest, and what
	// waits for the other track goes.
	if err = d.resolve(); err == nil {
		err = d.ord.release(true)
	}
	if err != nil {
		if d.emitErr != nil {
			return d.emitErr
		}
		return err
	}
	// What this segment's first packets found lost of the segment before: packets a
	// counter says are missing count unless this segment starts a new period.
	if d.pes.boundary.any() && d.pes.countersCarried() && !(d.per.fresh && d.per.firstSeg == seg) {
		d.tail.addAll(&d.pes.boundary)
	}
	if d.tail.any() && seg > 0 {
		return malformedAt(seg-1, fmt.Errorf("media lost at its end, where segment %d does not go on with it: %s", seg, &d.tail))
	}
	if d.lost.any() {
		return d.malformed("media lost: %s", &d.lost)
	}
	return d.checkCoverage()
}

// setEmit makes emit the receiver of the samples, through the orderer.
func (d *Demuxer) setEmit(emit func(media.Sample) error) {
	d.emitErr = nil
	d.ord.emit = func(s media.Sample) error {
		if err := emit(s); err != nil {
			d.emitErr = err
			return err
		}
		return nil
	}
	d.curEmit = d.ord.push
}

func (d *Demuxer) recoverPanic(err *error) {
	if p := recover(); p != nil {
		*err = d.malformed("demuxer panic: %v", p)
	}
}

// malformedAt is the error about segment seg (from 0, in the order fed).
func malformedAt(seg int, err error) error {
	return &media.MalformedError{Container: "MPEG-TS", Where: fmt.Sprintf("segment %d", seg), Seg: seg, Err: err}
}

func (d *Demuxer) malformed(format string, args ...any) error {
	return malformedAt(d.segIndex-1, fmt.Errorf(format, args...))
}
