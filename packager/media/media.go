// Package media holds the types that flow between the demuxers (packager/ts for MPEG-TS
// and packed audio, packager/fmp4) and the MP4 muxer (packager/mp4): tracks and the
// samples (access units) they carry.
package media

import (
	"io"
	"time"
)

// Kind says what a track carries.
type Kind int

const (
	Video Kind = iota + 1
	Audio
	// Subtitle is timed text (tx3g), made from the playlist's WebVTT renditions.
	Subtitle
	// Chapter is a QuickTime chapter track: a text sample per chapter, its title.
	Chapter
)

func (k Kind) String() string {
	switch k {
	case Video:
		return "video"
	case Audio:
		return "audio"
	case Subtitle:
		return "subtitle"
	case Chapter:
		return "chapter"
	}
	return "unknown"
}

// Codec names a supported codec.
type Codec string

const (
	H264 Codec = "h264"
	H265 Codec = "h265" // HEVC, written as hvc1
	AV1  Codec = "av1"  // from fMP4 only, written as av01 + av1C
	AAC  Codec = "aac"
	AC3  Codec = "ac-3" // Dolby Digital, written as ac-3 + dac3
	EAC3 Codec = "ec-3" // Dolby Digital Plus, written as ec-3 + dec3
	// MPEGAudio is MPEG-1/2 audio layers I–III (MP3, MP2), written as mp4a with the
	// object type of Track.ObjectType.
	MPEGAudio Codec = "mpeg-audio"
	Opus      Codec = "opus" // written as Opus + dOps
	// TX3G is 3GPP timed text (mov_text); Track.Config is its whole tx3g sample entry.
	TX3G Codec = "tx3g"
	// QTText is QuickTime text, as chapter tracks have it; Track.Config is its whole
	// text sample entry.
	QTText Codec = "text"
)

// Name is the codec's name for users ("AC-3 (Dolby Digital)").
func (c Codec) Name() string {
	switch c {
	case H264:
		return "H.264"
	case H265:
		return "H.265/HEVC"
	case AV1:
		return "AV1"
	case AAC:
		return "AAC"
	case AC3:
		return "AC-3 (Dolby Digital)"
	case EAC3:
		return "E-AC-3 (Dolby Digital Plus)"
	case MPEGAudio:
		return "MPEG audio (MP3/MP2)"
	case Opus:
		return "Opus"
	case TX3G:
		return "timed text (tx3g)"
	case QTText:
		return "QuickTime text"
	}
	return string(c)
}

// Supported lists the codecs for messages: "supported: …".
const Supported = "H.264, H.265/HEVC, AV1 (fMP4), AAC, AC-3, E-AC-3, MP3, MP2, Opus"

// Track describes one elementary stream as the muxer needs it for its sample entry.
// A demuxer may fill the codec parameters in after it created the track (H.264
// parameter sets arrive with the first keyframe); they must be set before Finish.
type Track struct {
	ID        int // 1-based, unique in one output, in the order tracks are written to moov
	Kind      Kind
	Codec     Codec
	Timescale uint32 // ticks per second of Sample.DTS/CTO/Duration

	// Video.
	Width, Height int
	VPS           [][]byte // HEVC video parameter sets, without start codes
	SPS, PPS      [][]byte // H.264/HEVC parameter sets, without start codes

	// Audio.
	SampleRate int
	Channels   int
	// FrameDuration is the duration of every audio frame in Timescale ticks when it is
	// fixed (AAC 1024, AC-3 1536, MP3 1152); 0 when it varies (Opus). The muxer gives
	// the last sample this duration, else the one of the sample before it.
	FrameDuration uint32
	// ObjectType is the esds objectTypeIndication of MPEGAudio: 0x6B for MPEG-1 audio
	// (32, 44.1, 48 kHz), 0x69 for MPEG-2 audio (lower rates).
	ObjectType uint8

	// Config is the decoder configuration the sample entry carries, as the payload of
	// its box (without box header): the AAC AudioSpecificConfig (ISO 14496-3) inside
	// esds; the dac3 or dec3 payload of AC-3/E-AC-3 (ETSI TS 102 366 Annex F); the dOps
	// payload of Opus; the av1C payload of AV1. Empty for MPEGAudio. For H.264/HEVC,
	// when set, the avcC/hvcC payload (ISO 14496-15) written as it is, whatever NAL
	// length size it declares: the samples are the source's, copied verbatim (fMP4
	// avc1/hvc1 sources); VPS/SPS/PPS then repeat its parameter sets for information.
	// When empty the muxer builds the avcC/hvcC from VPS/SPS/PPS, for samples of
	// 4-byte NAL lengths.
	Config []byte

	// Presentation, from the playlist (a rendition's EXT-X-MEDIA).
	// Language is its LANGUAGE, a BCP 47 tag as written ("en", "pt-BR"); "": unknown.
	Language string
	// Name is its NAME, the track's name players show ("English", "Français").
	Name string
	// Disabled: an alternative the player may switch to, not played by default (every
	// audio rendition but the DEFAULT=YES one).
	Disabled bool
	// AlternateGroup is the tkhd alternate_group: tracks of one group are alternatives
	// of each other (the audio languages); 0: none.
	AlternateGroup uint16
}

// Sample is one access unit, delivered in decode order per track.
type Sample struct {
	Track *Track
	// DTS is the decode time in Track.Timescale on a continuous timeline shared by
	// all tracks of the output (after unwrapping and discontinuity rebasing). It may
	// start above zero: the muxer derives edit lists from where each track starts.
	DTS int64
	// CTO is the composition offset, PTS-DTS, in Track.Timescale (B-frames make it > 0).
	CTO int32
	// Sync is true for a sample a decoder can start from (IDR frame; every audio frame).
	Sync bool
	// Data is the payload as the MP4 stores it: H.264 and HEVC as length-prefixed NAL
	// units (AVCC/HVCC; 4-byte lengths, or those of Track.Config when set), AAC as a raw frame without ADTS header, AC-3 and MPEG audio
	// as whole frames (header included), E-AC-3 as the syncframes of 1536 PCM samples
	// (with their dependent substreams), Opus as one packet without TS control header,
	// AV1 as the temporal unit's OBUs as av1C's sample format has them. Only valid during the call
	// that hands it over; the receiver copies what it keeps.
	Data []byte
}

// Demuxer turns the segments of one rendition, fed in playlist order, into samples on
// one continuous timeline. packager/ts implements it for MPEG-TS and packed audio,
// packager/fmp4 for fMP4/CMAF.
type Demuxer interface {
	// Init takes the init section (EXT-X-MAP) of the segments that follow: it is given
	// before the first segment that uses it and again whenever it changes. A container
	// without init sections (MPEG-TS, packed audio) refuses it with an error.
	Init(data []byte) error
	// Segment demuxes one whole segment and calls emit for each complete sample,
	// in decode order per track. A sample may be completed only by what follows (an
	// access unit ends where the next begins, and may go on into the next segment):
	// Flush emits the last ones.
	Segment(r io.Reader, emit func(Sample) error) error
	// Discontinuity says the next segment starts a new timeline (EXT-X-DISCONTINUITY):
	// its timestamps may restart anywhere. at is where that segment starts on the
	// output's timeline by the playlist (the EXTINF durations before it, from the first
	// segment). The demuxer maps the earliest timestamp of the new period to the
	// timeline's origin plus at, but never before the end of what it already emitted,
	// and keeps the audio/video offset of the new period.
	Discontinuity(at time.Duration)
	// Flush emits what is still pending after the last segment.
	Flush(emit func(Sample) error) error
	// Tracks lists the tracks found so far (video first, then audio) with IDs 1..n.
	Tracks() []*Track
}

// SegmentInfo is what the playlist says of a segment.
type SegmentInfo struct {
	// Start is where the segment starts on the output timeline by the playlist (the
	// EXTINF durations before it, from the first segment).
	Start time.Duration
	// Duration is its EXTINF.
	Duration time.Duration
}

// Accounting is a Demuxer that checks what each segment yields against the playlist
// and says what the output lacks.
type Accounting interface {
	// Expect says what the playlist says of the next segment handed to Segment.
	Expect(SegmentInfo)
	// Notes says, after Flush, what the output lacks or changed without it being an
	// error (a declared track that carried nothing, frames that cannot be decoded left
	// out, timestamps rebased): for the API's messages and the log.
	Notes() []Note
}

// Covers reports whether media lasting got covers a segment whose EXTINF is extinf (0:
// unknown, always covered): at least 80 % of it, less 0.1 s. EXTINF may be rounded — to
// whole seconds before protocol version 3, up to 0.5 s off, which this allows for
// segments from 1.5 s on (0.8·(x+0.5) − 0.1 ≤ x) — and tracks end apart on the last
// segment (the longer one is measured). What is lost inside a segment is counted unit by
// unit where the container allows; this catches segments that yield much less than
// they say.
func Covers(got, extinf time.Duration) bool {
	return extinf == 0 || got >= extinf*4/5-100*time.Millisecond
}

// Note is something the output lacks or changed without it being an error.
type Note struct {
	Kind Kind // the kind of track it is about; 0: the whole stream
	Text string
}
