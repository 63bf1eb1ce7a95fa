// Package ts demuxes the MPEG-TS segments of one HLS rendition (H.264 video, AAC audio)
// into media.Samples on one continuous timeline.
package ts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/asticode/go-astits"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
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
	return fmt.Sprintf("unsupported codec: %s (stream type 0x%02x); supported: H.264, AAC", e.Codec, e.StreamType)
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
// Timeline: every PTS/DTS of every track goes through one shared 33-bit unwrapper, so the
// relative offset of audio and video (the A/V sync) is kept and wraparound is continuous.
// Video samples are in 90 kHz ticks; audio samples are in ticks of the AAC sample rate,
// counted 1024 per frame and re-synchronised to the PTS only when the two drift apart by
// more than half a frame forwards (a gap).
//
// EXT-X-DISCONTINUITY (timestamps that restart) is not handled yet: timestamps going
// backwards produce an error.
type Demuxer struct {
	td       mpegts.TimeDecoder
	tdInit   bool
	tdBase   int64
	segIndex int

	video, audio *media.Track
	spsSet       bool
	ppsSet       bool
	gotIDR       bool
	lastDTS      int64
	haveLastDTS  bool

	audioNext    int64 // next audio DTS in sample-rate ticks
	audioStarted bool

	buf     []byte // reused AVCC buffer
	emitErr error
	curEmit func(media.Sample) error
}

var _ media.Demuxer = (*Demuxer)(nil)

// NewDemuxer returns a Demuxer for one rendition.
func NewDemuxer() *Demuxer { return &Demuxer{} }

// Tracks lists the tracks found (video first, then audio), IDs 1..n.
func (d *Demuxer) Tracks() []*media.Track {
	var out []*media.Track
	if d.video != nil && d.gotIDR {
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
// access unit, so nothing is held back today; callers must still call it.
func (d *Demuxer) Flush(emit func(media.Sample) error) error { return nil }

// unwrap turns a raw 33-bit timestamp into a position on the continuous timeline:
// the first timestamp seen, extended past 2^33 by the shared decoder.
func (d *Demuxer) unwrap(raw int64) int64 {
	if !d.tdInit {
		d.tdInit = true
		d.tdBase = raw
	}
	return d.tdBase + d.td.Decode(raw)
}

// capWriter keeps the first bytes written to it (for a PMT lookup in error messages).
type capWriter struct {
	buf bytes.Buffer
	max int
}

func (c *capWriter) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
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
	head := &capWriter{max: 512 * 1024}
	rd := &mpegts.Reader{R: io.TeeReader(r, head)}
	if err := rd.Initialize(); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("no program map table (PMT) found")
		}
		return &malformedError{seg: seg, err: err}
	}

	var haveVideo, haveAudio bool
	var unsupported *UnsupportedCodecError
	unsupportedVideo := false
	streamTypes := func() map[uint16]uint8 { return pmtStreamTypes(head.buf.Bytes()) }
	var types map[uint16]uint8
	for _, t := range rd.Tracks() {
		switch c := t.Codec.(type) {
		case *codecs.H264:
			if haveVideo {
				continue // only the first video stream
			}
			haveVideo = true
			if d.video == nil {
				d.video = &media.Track{Kind: media.Video, Codec: media.H264, Timescale: VideoTimescale}
			}
			rd.OnDataH264(t, d.onH264)
		case *codecs.MPEG4Audio:
			if haveAudio {
				continue
			}
			haveAudio = true
			if err := d.setAudioConfig(c); err != nil {
				return &malformedError{seg: seg, err: err}
			}
			rd.OnDataMPEG4Audio(t, d.onAAC)
		case *codecs.KLV, *codecs.DVBSubtitle:
			// data streams: ignored
		default:
			if types == nil {
				types = streamTypes()
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
		return &malformedError{seg: seg, err: errors.New("no H.264 or AAC stream in the program")}
	}

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
	for {
		err := rd.Read()
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
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

func (d *Demuxer) onH264(pts, dts int64, au [][]byte) error {
	dtsU := d.unwrap(dts)
	ptsU := d.unwrap(pts)
	t := d.video

	idr := false
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeIDR:
			idr = true
		case h264.NALUTypeSPS:
			if !d.spsSet {
				var sps h264.SPS
				if err := sps.Unmarshal(n); err != nil {
					return d.malformed("invalid H.264 SPS: %v", err)
				}
				t.SPS = [][]byte{bytes.Clone(n)}
				t.Width, t.Height = sps.Width(), sps.Height()
				d.spsSet = true
			}
		case h264.NALUTypePPS:
			if !d.ppsSet {
				t.PPS = [][]byte{bytes.Clone(n)}
				d.ppsSet = true
			}
		}
	}
	if !d.gotIDR {
		if !idr || !d.spsSet || !d.ppsSet {
			return nil // not decodable: drop leading frames before the first IDR
		}
		d.gotIDR = true
	}

	buf := d.buf[:0]
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeFillerData:
			continue
		case h264.NALUTypeSPS:
			if bytes.Equal(n, t.SPS[0]) {
				continue
			}
		case h264.NALUTypePPS:
			if bytes.Equal(n, t.PPS[0]) {
				continue
			}
		}
		// Parameter sets that differ from the sample entry's stay in-band (as ffmpeg does).
		buf = append(buf, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
		buf = append(buf, n...)
	}
	d.buf = buf
	if len(buf) == 0 {
		return nil
	}
	if d.haveLastDTS && dtsU <= d.lastDTS {
		return d.malformed("video timestamps go backwards (DTS %d after %d); discontinuities are not supported", dtsU, d.lastDTS)
	}
	d.lastDTS, d.haveLastDTS = dtsU, true
	cto := ptsU - dtsU
	if cto < 0 {
		cto = 0
	}
	if cto > 1<<31-1 {
		return d.malformed("PTS is %d ticks after DTS", cto)
	}
	return d.curEmit(media.Sample{Track: t, DTS: dtsU, CTO: int32(cto), Sync: idr, Data: buf})
}

func (d *Demuxer) onAAC(pts int64, aus [][]byte) error {
	ptsU := d.unwrap(pts)
	t := d.audio
	sr := int64(t.SampleRate)
	ticks := floorDiv(ptsU*sr+VideoTimescale/2, VideoTimescale)
	if !d.audioStarted || ticks-d.audioNext > aacFrameSamples/2 {
		// First frame, or a gap: follow the PTS. Backwards jumps keep the frame count so
		// the timeline stays monotonic.
		d.audioNext = ticks
		d.audioStarted = true
	}
	for _, au := range aus {
		if len(au) == 0 {
			continue
		}
		if err := d.curEmit(media.Sample{Track: t, DTS: d.audioNext, Sync: true, Data: au}); err != nil {
			return err
		}
		d.audioNext += aacFrameSamples
	}
	return nil
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
