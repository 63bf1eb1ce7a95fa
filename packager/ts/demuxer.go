// Package ts demuxes the MPEG-TS segments of one HLS rendition (H.264 or HEVC video, AAC audio)
// into media.Samples on one continuous timeline.
package ts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/asticode/go-astits"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// VideoTimescale is the timescale of video tracks: the MPEG-TS 90 kHz clock.
const VideoTimescale = 90000

// aacFrameSamples is the number of PCM samples per AAC frame (one media.Sample).
const aacFrameSamples = 1024

// ErrUnsupportedCodec is matched (errors.Is) by every *UnsupportedCodecError.
var ErrUnsupportedCodec = errors.New("unsupported codec")

// ErrMalformed is matched (errors.Is) by errors about input that is not valid MPEG-TS,
// H.264 or AAC as this demuxer needs it.
var ErrMalformed = errors.New("malformed MPEG-TS segment")

// UnsupportedCodecError reports an audio or video stream in a codec we cannot package.
type UnsupportedCodecError struct {
	Codec      string // human-readable codec name, e.g. "MPEG-2 video"
	StreamType uint8  // the PMT stream_type
}

func (e *UnsupportedCodecError) Error() string {
	return fmt.Sprintf("unsupported codec: %s (stream type 0x%02x); supported: H.264, H.265/HEVC, AAC", e.Codec, e.StreamType)
}

// Is makes errors.Is(err, ErrUnsupportedCodec) true.
func (e *UnsupportedCodecError) Is(target error) bool { return target == ErrUnsupportedCodec }

type malformedError struct {
	seg int
	err error
}

func (e *malformedError) Error() string {
	return fmt.Sprintf("malformed MPEG-TS segment %d: %v", e.seg, e.err)
}
func (e *malformedError) Unwrap() []error { return []error{ErrMalformed, e.err} }

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
// Video samples are in 90 kHz ticks; audio samples are in ticks of the AAC sample rate,
// counted 1024 per frame and re-synchronised to the PTS only when the two drift apart by
// more than half a frame forwards (a gap) and at the start of every period.
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
	per         *period
	origin      int64 // earliest timestamp of the first period (90 kHz, output timeline)
	originTaken bool
	at          int64 // where the current period starts by the playlist (90 kHz from origin)
	pending     []event
	segV        bool // the current segment has a video / audio track we read
	segA        bool

	video, audio *media.Track

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

	buf     []byte // reused AVCC/HVCC buffer
	pes     pesReader
	head    []byte // the bytes of a segment track detection read, reused
	emitErr error
	curEmit func(media.Sample) error
}

// period is one span of timestamps between discontinuities.
type period struct {
	td       mpegts.TimeDecoder
	init     bool
	base     int64
	offset   int64 // added to unwrapped timestamps
	resolved bool  // offset known
	first    [2]int64
	seen     [2]bool
	firstPTS int64 // earliest video PTS seen (valid with seen[idxVideo])
}

const (
	idxVideo = 0
	idxAudio = 1
)

func (p *period) unwrap(raw int64) int64 {
	if !p.init {
		p.init = true
		p.base = raw
	}
	return p.base + p.td.Decode(raw)
}

func (p *period) observe(i int, ts int64) {
	if !p.seen[i] || ts < p.first[i] {
		p.first[i] = ts
		p.seen[i] = true
	}
}

func (p *period) earliest() (int64, bool) {
	switch {
	case p.seen[0] && p.seen[1]:
		return min(p.first[0], p.first[1]), true
	case p.seen[0]:
		return p.first[0], true
	case p.seen[1]:
		return p.first[1], true
	}
	return 0, false
}

// event is an access unit held back until its period's offset is known.
type event struct {
	audio    bool
	pts, dts int64 // unwrapped, without the period offset
	au       [][]byte
}

var _ media.Demuxer = (*Demuxer)(nil)

// NewDemuxer returns a Demuxer for one rendition.
func NewDemuxer() *Demuxer {
	return &Demuxer{per: &period{resolved: true}, needKey: true}
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

// Flush emits what is still pending after the last segment. Every PES is a complete
// access unit, and a new period's samples are released at the end of its first segment,
// so nothing is held back here; callers must still call it.
func (d *Demuxer) Flush(emit func(media.Sample) error) error {
	if len(d.pending) == 0 {
		return nil
	}
	d.curEmit = emit
	defer func() { d.curEmit = nil }()
	return d.resolve()
}

// Discontinuity starts a new period: the next segment's timestamps may restart anywhere
// (see the Demuxer doc for how they are placed). at is where that segment starts on the
// output timeline by the playlist, counted from the first segment.
func (d *Demuxer) Discontinuity(at time.Duration) {
	if d.per.resolved {
		if _, ok := d.per.earliest(); !ok {
			return // nothing seen yet (discontinuity before the first media): no-op
		}
		if !d.originTaken {
			e, _ := d.per.earliest()
			d.origin = e + d.per.offset
			d.originTaken = true
		}
		d.per = &period{}
		d.needKey = true
		d.dropLeading, d.dropRASL = false, false
		d.audioResync = true
	}
	// A pending period with nothing seen yet (an empty segment): only at changes.
	d.at = durationTo90k(at)
}

func durationTo90k(at time.Duration) int64 {
	if at < 0 {
		at = 0
	}
	sec := int64(at / time.Second)
	rem := int64(at % time.Second)
	return sec*VideoTimescale + (rem*VideoTimescale+5e8)/1e9
}

// maybeResolve fixes the pending period's offset once every track of the segment showed
// a timestamp.
func (d *Demuxer) maybeResolve() error {
	p := d.per
	if p.resolved || (d.segV && !p.seen[idxVideo]) || (d.segA && !p.seen[idxAudio]) {
		return nil
	}
	return d.resolve()
}

// resolve computes the pending period's offset and emits what was held back.
func (d *Demuxer) resolve() error {
	p := d.per
	earliest, ok := p.earliest()
	if p.resolved || !ok {
		return nil
	}
	off := d.origin + d.at - earliest
	if d.videoStarted {
		first := earliest
		if p.seen[idxVideo] {
			first = p.first[idxVideo]
		}
		end := d.lastDTS + max(d.lastDelta, 1)
		off = max(off, end-first)
		if p.seen[idxVideo] {
			// Nor may its pictures be shown before (or with) the last one shown.
			off = max(off, d.maxPTS+max(d.lastDelta, 1)-p.firstPTS)
		}
	}
	if d.audioStarted && d.audio != nil {
		first := earliest
		if p.seen[idxAudio] {
			first = p.first[idxAudio]
		}
		sr := int64(d.audio.SampleRate)
		end := (d.audioNext*VideoTimescale + sr - 1) / sr // ceil, in 90 kHz
		off = max(off, end-first)
	}
	if d.videoStarted && p.seen[idxVideo] && d.lastDelta > 0 {
		// Keep the video on its frame grid: the gap from the last frame to the new
		// period's first is a whole number of frame durations (at most one frame later).
		// A fractional gap makes ffmpeg guess an absurd frame rate (from the GCD of the
		// DTS deltas) and complain when it decodes the file.
		gap := p.first[idxVideo] + off - d.lastDTS
		if r := gap % d.lastDelta; r != 0 {
			off += d.lastDelta - r
		}
	}
	p.offset = off
	p.resolved = true
	evs := d.pending
	d.pending = nil
	for _, ev := range evs {
		var err error
		if ev.audio {
			err = d.aacAU(ev.pts+off, ev.au)
		} else {
			err = d.videoAU(ev.pts+off, ev.dts+off, ev.au)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Segment demuxes one whole segment and calls emit for each complete sample.
func (d *Demuxer) Segment(r io.Reader, emit func(media.Sample) error) (err error) {
	seg := d.segIndex
	d.segIndex++
	defer func() {
		if p := recover(); p != nil {
			err = &malformedError{seg: seg, err: fmt.Errorf("demuxer panic: %v", p)}
		}
	}()
	// mediacommon finds the tracks at the head of the segment (without the video packets,
	// head.go); the bytes it read are kept, and readPES goes through them and the rest
	// (see pes.go for why mediacommon does not read the PES).
	head := &recorder{r: r, buf: d.head[:0]}
	defer func() { d.head = head.buf[:0] }()
	rd := &mpegts.Reader{R: &videoHidden{r: head}}
	if err := rd.Initialize(); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("no program map table (PMT) found")
		}
		return &malformedError{seg: seg, err: err}
	}
	d.pes.reset()

	var haveVideo, haveAudio bool
	var unsupported *UnsupportedCodecError
	unsupportedVideo := false
	var types map[uint16]uint8
	videoTrack := func(c media.Codec) error {
		if d.video == nil {
			d.video = &media.Track{Kind: media.Video, Codec: c, Timescale: VideoTimescale}
		} else if d.video.Codec != c {
			return &UnsupportedCodecError{
				Codec:      fmt.Sprintf("video codec change from %s to %s", d.video.Codec, c),
				StreamType: map[media.Codec]uint8{media.H264: 0x1b, media.H265: 0x24}[c],
			}
		}
		return nil
	}
	for _, t := range rd.Tracks() {
		switch c := t.Codec.(type) {
		case *codecs.H264, *codecs.H265:
			if haveVideo {
				continue // only the first video stream
			}
			haveVideo = true
			codec := media.H264
			if _, ok := c.(*codecs.H265); ok {
				codec = media.H265
			}
			if err := videoTrack(codec); err != nil {
				return err
			}
			if codec == media.H264 {
				d.pes.add(t.PID, d.onH264PES)
			} else {
				d.pes.add(t.PID, d.onH265PES)
			}
		case *codecs.MPEG4Audio:
			if haveAudio {
				continue
			}
			haveAudio = true
			if err := d.setAudioConfig(c); err != nil {
				return &malformedError{seg: seg, err: err}
			}
			d.pes.add(t.PID, d.onAACPES)
		case *codecs.KLV, *codecs.DVBSubtitle:
			// data streams: ignored
		default:
			if types == nil {
				types = pmtStreamTypes(head.buf) // the PMT is in what Initialize read
			}
			st := types[t.PID]
			name, isVideo, isAV := describeStreamType(st, t.Codec)
			if !isAV {
				continue // metadata (ID3, ...): ignored
			}
			if unsupported == nil || (isVideo && !unsupportedVideo) {
				unsupported = &UnsupportedCodecError{Codec: name, StreamType: st}
				unsupportedVideo = isVideo
			}
		}
	}
	if unsupported != nil && ((unsupportedVideo && !haveVideo) || (!unsupportedVideo && !haveAudio)) {
		return unsupported
	}
	if !haveVideo && !haveAudio {
		return &malformedError{seg: seg, err: errors.New("no H.264, HEVC or AAC stream in the program")}
	}
	d.segV, d.segA = haveVideo, haveAudio

	d.emitErr = nil
	onDataEmit := func(s media.Sample) error {
		if err := emit(s); err != nil {
			d.emitErr = err
			return err
		}
		return nil
	}
	d.curEmit = onDataEmit
	defer func() { d.curEmit = nil }()
	if err := d.pes.read(io.MultiReader(bytes.NewReader(head.buf), r)); err != nil {
		if d.emitErr != nil {
			return d.emitErr
		}
		var uc *UnsupportedCodecError
		if errors.As(err, &uc) {
			return err
		}
		var me *malformedError
		if errors.As(err, &me) {
			return err
		}
		return &malformedError{seg: seg, err: err}
	}
	// End of the segment: a new period's offset is fixed now at the latest.
	if err := d.resolve(); err != nil {
		if d.emitErr != nil {
			return d.emitErr
		}
		return err
	}
	return nil
}

func (d *Demuxer) setAudioConfig(c *codecs.MPEG4Audio) error {
	cfg := c.Config
	channels := int(cfg.ChannelConfig)
	switch {
	case channels == 7:
		channels = 8
	case channels == 0 || channels > 7:
		return &UnsupportedCodecError{Codec: fmt.Sprintf("AAC with channel configuration %d", cfg.ChannelConfig), StreamType: 0x0f}
	}
	if cfg.SampleRate <= 0 {
		return errors.New("invalid AAC sample rate")
	}
	asc, err := cfg.Marshal()
	if err != nil {
		return fmt.Errorf("invalid AAC configuration: %w", err)
	}
	if d.audio == nil {
		d.audio = &media.Track{
			Kind: media.Audio, Codec: media.AAC,
			Timescale:  uint32(cfg.SampleRate),
			SampleRate: cfg.SampleRate, Channels: channels, AudioConfig: asc,
		}
		return nil
	}
	if !bytes.Equal(d.audio.AudioConfig, asc) {
		return fmt.Errorf("AAC configuration changes mid-stream (%d Hz %d ch -> %d Hz %d ch), not supported",
			d.audio.SampleRate, d.audio.Channels, cfg.SampleRate, channels)
	}
	return nil
}

func (d *Demuxer) malformed(format string, args ...any) error {
	return &malformedError{seg: d.segIndex - 1, err: fmt.Errorf(format, args...)}
}

func cloneAU(au [][]byte) [][]byte {
	out := make([][]byte, len(au))
	for i, n := range au {
		out[i] = bytes.Clone(n)
	}
	return out
}

// onVideo receives one H.264 or HEVC access unit with raw 33-bit timestamps.
func (d *Demuxer) onVideo(pts, dts int64, au [][]byte) error {
	p := d.per
	dtsU := p.unwrap(dts)
	ptsU := p.unwrap(pts)
	if !p.resolved {
		if !p.seen[idxVideo] || ptsU < p.firstPTS {
			p.firstPTS = ptsU
		}
		p.observe(idxVideo, dtsU)
		d.pending = append(d.pending, event{pts: ptsU, dts: dtsU, au: cloneAU(au)})
		return d.maybeResolve()
	}
	p.observe(idxVideo, dtsU)
	return d.videoAU(ptsU+p.offset, dtsU+p.offset, au)
}

func (d *Demuxer) onAAC(pts int64, aus [][]byte) error {
	p := d.per
	ptsU := p.unwrap(pts)
	if !p.resolved {
		p.observe(idxAudio, ptsU)
		d.pending = append(d.pending, event{audio: true, pts: ptsU, au: cloneAU(aus)})
		return d.maybeResolve()
	}
	p.observe(idxAudio, ptsU)
	return d.aacAU(ptsU+p.offset, aus)
}

// frameInfo is what the demuxer needs to know of one video access unit.
type frameInfo struct {
	start  bool // a decoder can start here
	sync   bool // mark as sync sample
	idr    bool // H.264 IDR / HEVC IRAP: ends leading-picture dropping
	nonIDR bool // start is not an IDR (H.264 open GOP) / CRA or BLA (HEVC)
	rasl   bool // HEVC RASL picture
	vps    [][]byte
	sps    [][]byte
	pps    [][]byte
	hasVCL bool
}

func h264Info(au [][]byte) frameInfo {
	var fi frameInfo
	allI, anySlice, recovery := true, false, false
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeIDR:
			fi.idr = true
			anySlice = true
			fi.hasVCL = true
		case h264.NALUTypeNonIDR:
			anySlice = true
			fi.hasVCL = true
			if !h264IntraSlice(n) {
				allI = false
			}
		case h264.NALUTypeDataPartitionA, h264.NALUTypeDataPartitionB, h264.NALUTypeDataPartitionC:
			fi.hasVCL = true
			allI = false
		case h264.NALUTypeSEI:
			if h264RecoveryPoint(n) {
				recovery = true
			}
		case h264.NALUTypeSPS:
			fi.sps = append(fi.sps, n)
		case h264.NALUTypePPS:
			fi.pps = append(fi.pps, n)
		}
	}
	intra := anySlice && allI && !fi.idr
	fi.start = fi.idr || intra
	fi.nonIDR = intra
	fi.sync = fi.idr || (intra && recovery)
	return fi
}

func h265Info(au [][]byte) frameInfo {
	var fi frameInfo
	for _, n := range au {
		if len(n) < 2 {
			continue
		}
		typ := h265.NALUType((n[0] >> 1) & 0x3f)
		switch {
		case typ <= h265.NALUType_RSV_IRAP_VCL23:
			fi.hasVCL = true
			switch {
			case typ >= h265.NALUType_BLA_W_LP && typ <= h265.NALUType_CRA_NUT:
				fi.idr = true
				fi.start = true
				fi.sync = true
				if typ != h265.NALUType_IDR_W_RADL && typ != h265.NALUType_IDR_N_LP {
					fi.nonIDR = true
				}
			case typ == h265.NALUType_RASL_N || typ == h265.NALUType_RASL_R:
				fi.rasl = true
			}
		case typ == h265.NALUType_VPS_NUT:
			fi.vps = append(fi.vps, n)
		case typ == h265.NALUType_SPS_NUT:
			fi.sps = append(fi.sps, n)
		case typ == h265.NALUType_PPS_NUT:
			fi.pps = append(fi.pps, n)
		}
	}
	return fi
}

func cloneAll(l [][]byte) [][]byte {
	if len(l) == 0 {
		return nil
	}
	return cloneAU(l)
}

func containsNALU(l [][]byte, n []byte) bool {
	for _, x := range l {
		if bytes.Equal(x, n) {
			return true
		}
	}
	return false
}

// videoAU handles one video access unit on the output timeline.
func (d *Demuxer) videoAU(pts, dts int64, au [][]byte) error {
	t := d.video
	hevc := t.Codec == media.H265
	var fi frameInfo
	if hevc {
		fi = h265Info(au)
	} else {
		fi = h264Info(au)
	}
	if !d.videoStarted {
		if len(fi.vps) > 0 {
			d.lastVPS = cloneAll(fi.vps)
		}
		if len(fi.sps) > 0 {
			d.lastSPS = cloneAll(fi.sps)
		}
		if len(fi.pps) > 0 {
			d.lastPPS = cloneAll(fi.pps)
		}
	}
	if d.needKey {
		if !fi.start {
			return nil // not decodable: drop frames before the first key frame
		}
		if !d.videoStarted {
			if len(d.lastSPS) == 0 || len(d.lastPPS) == 0 || (hevc && len(d.lastVPS) == 0) {
				return nil // parameter sets not seen yet
			}
			if err := d.setVideoParams(hevc); err != nil {
				return err
			}
		}
		d.needKey = false
		d.startPTS = pts
		d.dropLeading = !hevc && fi.nonIDR
		d.dropRASL = hevc && fi.nonIDR
		fi.sync = true
	} else {
		if fi.idr {
			d.dropLeading, d.dropRASL = false, false
		}
		if d.dropRASL && fi.rasl {
			return nil // RASL of the CRA/BLA we started at: references precede the start
		}
		if d.dropLeading && pts < d.startPTS {
			return nil // leading picture of an open GOP: references precede the start
		}
	}

	// Parameter sets equal to the sample entry's are stripped; if any of the access unit's
	// differs (new SPS/PPS after a discontinuity), all of them stay in-band, as ffmpeg
	// keeps them: a decoder drops the PPS of an SPS that changed, so an identical PPS
	// must follow a changed SPS.
	keepParams := false
	for _, n := range fi.vps {
		keepParams = keepParams || !containsNALU(t.VPS, n)
	}
	for _, n := range fi.sps {
		keepParams = keepParams || !containsNALU(t.SPS, n)
	}
	for _, n := range fi.pps {
		keepParams = keepParams || !containsNALU(t.PPS, n)
	}
	buf := d.buf[:0]
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if hevc {
			if len(n) < 2 {
				continue
			}
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_AUD_NUT, h265.NALUType_FD_NUT:
				continue
			case h265.NALUType_VPS_NUT, h265.NALUType_SPS_NUT, h265.NALUType_PPS_NUT:
				if !keepParams {
					continue
				}
			}
		} else {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeFillerData:
				continue
			case h264.NALUTypeSPS, h264.NALUTypePPS:
				if !keepParams {
					continue
				}
			}
		}
		buf = append(buf, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
		buf = append(buf, n...)
	}
	d.buf = buf
	if len(buf) == 0 || !fi.hasVCL {
		return nil
	}
	if d.videoStarted && dts <= d.lastDTS {
		return d.malformed("video timestamps go backwards (DTS %d after %d) without EXT-X-DISCONTINUITY", dts, d.lastDTS)
	}
	if d.videoStarted {
		d.lastDelta = dts - d.lastDTS
	} else {
		d.lastDelta = VideoTimescale / 25
	}
	d.lastDTS = dts
	if !d.videoStarted || pts > d.maxPTS {
		d.maxPTS = pts
	}
	d.videoStarted = true
	cto := pts - dts
	if cto < 0 {
		cto = 0
	}
	if cto > 1<<31-1 {
		return d.malformed("PTS is %d ticks after DTS", cto)
	}
	return d.curEmit(media.Sample{Track: t, DTS: dts, CTO: int32(cto), Sync: fi.sync, Data: buf})
}

// setVideoParams fills the track's parameter sets and size from those seen last.
func (d *Demuxer) setVideoParams(hevc bool) error {
	t := d.video
	if hevc {
		var sps h265.SPS
		if err := sps.Unmarshal(d.lastSPS[0]); err != nil {
			return d.malformed("invalid HEVC SPS: %v", err)
		}
		t.Width, t.Height = sps.Width(), sps.Height()
		t.VPS = d.lastVPS
	} else {
		var sps h264.SPS
		if err := sps.Unmarshal(d.lastSPS[0]); err != nil {
			return d.malformed("invalid H.264 SPS: %v", err)
		}
		t.Width, t.Height = sps.Width(), sps.Height()
	}
	t.SPS, t.PPS = d.lastSPS, d.lastPPS
	return nil
}

// aacAU handles the AAC frames of one PES whose PTS (90 kHz) is on the output timeline.
func (d *Demuxer) aacAU(pts int64, aus [][]byte) error {
	t := d.audio
	sr := int64(t.SampleRate)
	ticks := floorDiv(pts*sr+VideoTimescale/2, VideoTimescale)
	switch {
	case d.audioResync || !d.audioStarted:
		// First frame of the stream or of a period: follow the PTS, but never go back
		// into what was already emitted.
		if d.audioStarted {
			ticks = max(ticks, d.audioNext)
		}
		d.audioNext = ticks
		d.audioResync = false
	case ticks-d.audioNext > aacFrameSamples/2:
		// A gap: follow the PTS. Backwards jumps keep the frame count so the timeline
		// stays monotonic.
		d.audioNext = ticks
	}
	for _, au := range aus {
		if len(au) == 0 {
			continue
		}
		d.audioStarted = true
		if err := d.curEmit(media.Sample{Track: t, DTS: d.audioNext, Sync: true, Data: au}); err != nil {
			return err
		}
		d.audioNext += aacFrameSamples
	}
	return nil
}

// bitReader reads an RBSP (emulation prevention bytes skipped) MSB first.
type bitReader struct {
	b   []byte
	pos int // bit position
}

func newRBSP(n []byte) *bitReader { return &bitReader{b: h264.EmulationPreventionRemove(n)} }

func (r *bitReader) bit() (uint, bool) {
	if r.pos >= len(r.b)*8 {
		return 0, false
	}
	v := uint(r.b[r.pos/8]>>(7-r.pos%8)) & 1
	r.pos++
	return v, true
}

func (r *bitReader) ue() (uint, bool) {
	lz := 0
	for {
		b, ok := r.bit()
		if !ok {
			return 0, false
		}
		if b == 1 {
			break
		}
		lz++
		if lz > 31 {
			return 0, false
		}
	}
	v := uint(0)
	for range lz {
		b, ok := r.bit()
		if !ok {
			return 0, false
		}
		v = v<<1 | b
	}
	return (1 << lz) - 1 + v, true
}

// h264IntraSlice reports whether an H.264 slice NAL unit is an I or SI slice.
func h264IntraSlice(n []byte) bool {
	if len(n) < 2 {
		return false
	}
	r := newRBSP(n[1:min(len(n), 32)])
	if _, ok := r.ue(); !ok { // first_mb_in_slice
		return false
	}
	st, ok := r.ue()
	if !ok {
		return false
	}
	st %= 5
	return st == 2 || st == 4
}

// h264RecoveryPoint reports whether an H.264 SEI NAL unit holds a recovery point SEI
// message (payload type 6).
func h264RecoveryPoint(n []byte) bool {
	b := h264.EmulationPreventionRemove(n[1:])
	for len(b) > 1 {
		typ := 0
		for len(b) > 0 && b[0] == 0xff {
			typ += 255
			b = b[1:]
		}
		if len(b) == 0 {
			return false
		}
		typ += int(b[0])
		b = b[1:]
		size := 0
		for len(b) > 0 && b[0] == 0xff {
			size += 255
			b = b[1:]
		}
		if len(b) == 0 {
			return false
		}
		size += int(b[0])
		b = b[1:]
		if typ == 6 {
			return true
		}
		if size > len(b) {
			return false
		}
		b = b[size:]
		if len(b) == 1 && b[0] == 0x80 { // rbsp_trailing_bits
			return false
		}
	}
	return false
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// describeStreamType names a stream the demuxer does not support and says whether it is
// audio or video at all (metadata and private data are ignored, not errors).
func describeStreamType(st uint8, c codecs.Codec) (name string, isVideo, isAV bool) {
	switch c.(type) {
	case *codecs.H265:
		return "H.265/HEVC video", true, true
	case *codecs.MPEG1Video:
		if st == 0x01 {
			return "MPEG-1 video", true, true
		}
		return "MPEG-2 video", true, true
	case *codecs.MPEG4Video:
		return "MPEG-4 Part 2 video", true, true
	case *codecs.MPEG1Audio:
		return "MPEG-1/2 audio (MP2/MP3)", false, true
	case *codecs.MPEG4AudioLATM:
		return "AAC in LATM", false, true
	case *codecs.AC3:
		return "AC-3 (Dolby Digital)", false, true
	case *codecs.EAC3:
		return "E-AC-3 (Dolby Digital Plus)", false, true
	case *codecs.Opus:
		return "Opus", false, true
	}
	switch st {
	case 0x01:
		return "MPEG-1 video", true, true
	case 0x02:
		return "MPEG-2 video", true, true
	case 0x10:
		return "MPEG-4 Part 2 video", true, true
	case 0x1b:
		return "H.264 video", true, true
	case 0x24:
		return "H.265/HEVC video", true, true
	case 0x42:
		return "AVS video", true, true
	case 0xd1:
		return "Dirac video", true, true
	case 0xea:
		return "VC-1 video", true, true
	case 0x03, 0x04:
		return "MPEG-1/2 audio (MP2/MP3)", false, true
	case 0x0f:
		return "AAC audio", false, true
	case 0x11:
		return "AAC in LATM", false, true
	case 0x1c:
		return "MPEG-4 audio", false, true
	case 0x80:
		return "LPCM audio", false, true
	case 0x81:
		return "AC-3 (Dolby Digital)", false, true
	case 0x82, 0x85, 0x86, 0x8a:
		return "DTS audio", false, true
	case 0x83:
		return "Dolby TrueHD audio", false, true
	case 0x84, 0x87:
		return "E-AC-3 (Dolby Digital Plus)", false, true
	}
	return fmt.Sprintf("stream type 0x%02x", st), false, false
}

// pmtStreamTypes reads the PMT from the head of a segment: PID → stream_type.
func pmtStreamTypes(head []byte) map[uint16]uint8 {
	out := map[uint16]uint8{}
	defer func() { _ = recover() }()
	dmx := astits.NewDemuxer(context.Background(), bytes.NewReader(head))
	for range 10000 {
		data, err := dmx.NextData()
		if err != nil {
			return out
		}
		if data != nil && data.PMT != nil {
			for _, es := range data.PMT.ElementaryStreams {
				out[es.ElementaryPID] = uint8(es.StreamType)
			}
			return out
		}
	}
	return out
}
