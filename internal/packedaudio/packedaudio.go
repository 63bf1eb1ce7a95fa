// Package packedaudio writes packed-audio HLS streams (RFC 8216 §3.4) for the conformance
// fixtures (testdata/conformance/make.sh): an elementary audio stream (ADTS AAC, AC-3,
// E-AC-3, MP3 — whatever ffmpeg wrote) cut into segments of whole frames, each segment
// prefixed by an ID3v2.4 tag whose PRIV frame (owner
// com.apple.streaming.transportStreamTimestamp) holds the 33-bit 90 kHz timestamp of the
// segment's first frame, and a media playlist whose EXTINF are the segments' exact
// durations.
//
// The package has no codec parser: where the frames are and when they play comes from
// ffprobe's view of the stream (Probe: packet pos, size, pts and duration), so it works
// for every codec ffmpeg can read raw. Frames are copied byte for byte; Cut checks that
// they tile the stream (no gap, no overlap, nothing left over).
package packedaudio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os/exec"
	"strconv"
	"strings"

	"github.com/stream-downloads/caddy-stream-downloads/internal/id3"
)

// PRIVOwner is the owner identifier of the PRIV frame that carries a packed-audio
// segment's timestamp (RFC 8216 §3.4).
const PRIVOwner = id3.TimestampOwner

// DefaultStart is the timestamp given to the first frame by default: 1.4 s at 90 kHz, where
// ffmpeg's MPEG-TS muxer starts its streams.
const DefaultStart = 126000

// Frame is one audio frame of the elementary stream: its bytes (Pos, Size) and its time
// (PTS, Duration, in units of the stream's time base).
type Frame struct {
	Pos, Size     int64
	PTS, Duration int64
}

// Stream is an elementary stream file and its frames, as Probe reads them.
type Stream struct {
	Codec string // ffprobe's codec_name: aac, ac3, eac3, mp3 …
	// TimeBase of the frames' PTS and Duration, in seconds: Num/Den.
	TimeBase struct{ Num, Den int64 }
	Frames   []Frame
}

// Probe runs ffprobe (the program at path ffprobe) on the elementary stream file in and
// returns its first audio stream's frames.
func Probe(ctx context.Context, ffprobe, in string) (*Stream, error) {
	cmd := exec.CommandContext(ctx, ffprobe, "-v", "error", "-select_streams", "a:0",
		"-show_entries", "stream=codec_name,time_base:packet=pts,duration,pos,size", "-of", "json", in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ffprobe %s: %v: %s", in, err, strings.TrimSpace(stderr.String()))
	}
	return parseProbe(out)
}

func parseProbe(out []byte) (*Stream, error) {
	var r struct {
		Streams []struct {
			Codec    string `json:"codec_name"`
			TimeBase string `json:"time_base"`
		} `json:"streams"`
		Packets []struct {
			PTS      *int64 `json:"pts"`
			Duration *int64 `json:"duration"`
			Pos      string `json:"pos"`
			Size     string `json:"size"`
		} `json:"packets"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("ffprobe output: %v", err)
	}
	if len(r.Streams) != 1 {
		return nil, fmt.Errorf("ffprobe found %d audio streams, want 1", len(r.Streams))
	}
	s := &Stream{Codec: r.Streams[0].Codec}
	num, den, ok := strings.Cut(r.Streams[0].TimeBase, "/")
	var err1, err2 error
	s.TimeBase.Num, err1 = strconv.ParseInt(num, 10, 64)
	s.TimeBase.Den, err2 = strconv.ParseInt(den, 10, 64)
	if !ok || err1 != nil || err2 != nil || s.TimeBase.Num <= 0 || s.TimeBase.Den <= 0 {
		return nil, fmt.Errorf("ffprobe: time base %q", r.Streams[0].TimeBase)
	}
	for i, p := range r.Packets {
		pos, err1 := strconv.ParseInt(p.Pos, 10, 64)
		size, err2 := strconv.ParseInt(p.Size, 10, 64)
		if p.PTS == nil || p.Duration == nil || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("ffprobe: packet %d has no pts, duration, pos or size: %+v", i, p)
		}
		s.Frames = append(s.Frames, Frame{Pos: pos, Size: size, PTS: *p.PTS, Duration: *p.Duration})
	}
	if len(s.Frames) == 0 {
		return nil, errors.New("ffprobe: no packets")
	}
	return s, nil
}

// Options say how Cut cuts.
type Options struct {
	// Start is the 90 kHz timestamp of the first frame (33 bits; DefaultStart if 0).
	Start int64
	// SegmentSeconds: a segment begins with the first frame at or after each multiple of it
	// (from the first frame's time), except that a last segment shorter than half of it is
	// joined to the one before; 1 if 0.
	SegmentSeconds float64
	// Name of segment i (from 0); if nil, "seg_%03d" and the extension of the codec
	// (Extension).
	Name func(i int) string
}

// Extension is the file extension of packed-audio segments of codec (ffprobe's name), as
// Apple's tools name them: .aac, .ac3, .ec3, .mp3; ".audio" for another codec.
func Extension(codec string) string {
	switch codec {
	case "aac", "ac3", "mp3":
		return "." + codec
	case "eac3":
		return ".ec3"
	}
	return ".audio"
}

// Segment is one packed-audio segment.
type Segment struct {
	Name string
	// Data: the ID3 tag then the frames, byte for byte.
	Data []byte
	// Timestamp of the first frame, 90 kHz, 33 bits (what the tag says).
	Timestamp int64
	// First is the index of the segment's first frame, Frames how many it has.
	First, Frames int
	// Duration is the sum of the frames' durations, in seconds.
	Duration float64
}

// Cut cuts es (the stream file's bytes) into segments of whole frames of s, each prefixed
// with its timestamp tag (ID3).
func Cut(es []byte, s *Stream, opt Options) ([]Segment, error) {
	if opt.Start == 0 {
		opt.Start = DefaultStart
	}
	if opt.SegmentSeconds == 0 {
		opt.SegmentSeconds = 1
	}
	if opt.Start < 0 || opt.Start >= 1<<33 || opt.SegmentSeconds < 0 {
		return nil, fmt.Errorf("packedaudio: start %d or segment length %g out of range", opt.Start, opt.SegmentSeconds)
	}
	if opt.Name == nil {
		ext := Extension(s.Codec)
		opt.Name = func(i int) string { return fmt.Sprintf("seg_%03d%s", i, ext) }
	}
	// The frames must tile es: each starts where the one before ended, none is empty,
	// their times go forward, and the last ends at the end of the file.
	var end int64
	for i, f := range s.Frames {
		if f.Pos != end || f.Size <= 0 || f.Duration <= 0 {
			return nil, fmt.Errorf("packedaudio: frame %d (pos %d, %d bytes, duration %d) does not follow the one before (which ended at %d)", i, f.Pos, f.Size, f.Duration, end)
		}
		if i > 0 && f.PTS != s.Frames[i-1].PTS+s.Frames[i-1].Duration {
			return nil, fmt.Errorf("packedaudio: frame %d has pts %d, the one before ends at %d", i, f.PTS, s.Frames[i-1].PTS+s.Frames[i-1].Duration)
		}
		end = f.Pos + f.Size
	}
	if end != int64(len(es)) {
		return nil, fmt.Errorf("packedaudio: the frames cover %d bytes of a %d-byte stream", end, len(es))
	}

	tb := big.NewRat(s.TimeBase.Num, s.TimeBase.Den)
	step := new(big.Rat).SetFloat64(opt.SegmentSeconds)
	pts0 := s.Frames[0].PTS
	seconds := func(ticks int64) *big.Rat { return new(big.Rat).Mul(big.NewRat(ticks, 1), tb) }
	var segs []Segment
	for i := 0; i < len(s.Frames); {
		n := len(segs)
		limit := new(big.Rat).Mul(step, big.NewRat(int64(n+1), 1)) // the next segment's time
		j := i + 1
		for j < len(s.Frames) && seconds(s.Frames[j].PTS-pts0).Cmp(limit) < 0 {
			j++
		}
		// What would be left for a last segment shorter than half a segment goes into
		// this one (as ffmpeg's segmenters keep the stream's tail in the last segment).
		if j < len(s.Frames) {
			last := s.Frames[len(s.Frames)-1]
			rest := seconds(last.PTS + last.Duration - s.Frames[j].PTS)
			if rest.Cmp(new(big.Rat).Mul(step, big.NewRat(1, 2))) < 0 {
				j = len(s.Frames)
			}
		}
		first, last := s.Frames[i], s.Frames[j-1]
		ts := (opt.Start + round90k(seconds(first.PTS-pts0))) & (1<<33 - 1)
		dur, _ := seconds(last.PTS + last.Duration - first.PTS).Float64()
		data := append(ID3Timestamp(ts), es[first.Pos:last.Pos+last.Size]...)
		segs = append(segs, Segment{Name: opt.Name(n), Data: data, Timestamp: ts, First: i, Frames: j - i, Duration: dur})
		i = j
	}
	return segs, nil
}

// round90k converts seconds to 90 kHz ticks, to the nearest (halves up).
func round90k(sec *big.Rat) int64 {
	t := new(big.Rat).Mul(sec, big.NewRat(90000, 1))
	t.Add(t, big.NewRat(1, 2))
	q := new(big.Int).Div(t.Num(), t.Denom()) // floor, t >= 0
	return q.Int64()
}

// Playlist is the VOD media playlist of segs: EXTINF the exact durations (to the
// microsecond), TARGETDURATION the longest rounded to the nearest second (RFC 8216 §4.3.3.1).
func Playlist(segs []Segment) string {
	var b strings.Builder
	target := 1
	for _, s := range segs {
		target = max(target, int(s.Duration+0.5))
	}
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n", target)
	for _, s := range segs {
		fmt.Fprintf(&b, "#EXTINF:%.6f,\n%s\n", s.Duration, s.Name)
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return b.String()
}

// Concat is an ffconcat list of segs, each with its exact duration: what ffmpeg reads as
// the stream's frames on one continuous timeline from 0 (each segment file read on its
// own: the ID3 tag skipped, the frames' times from their durations). A reference to compare
// with for tools whose HLS reader gets packed-audio timing wrong (ffmpeg's, when it reads
// ahead across small segments, or refuses .ec3 names).
func Concat(segs []Segment) string {
	var b strings.Builder
	b.WriteString("ffconcat version 1.0\n")
	for _, s := range segs {
		fmt.Fprintf(&b, "file %s\nduration %.6f\n", s.Name, s.Duration)
	}
	return b.String()
}

// ID3Timestamp is the ID3v2.4 tag that starts a packed-audio segment: one PRIV frame,
// owner PRIVOwner, data the 33-bit timestamp ts (90 kHz) as 8 bytes big-endian.
func ID3Timestamp(ts int64) []byte { return id3.TimestampTag(ts) }

// ReadTimestamp reads the ID3v2 tag at the start of a packed-audio segment and returns the
// timestamp of its PRIV frame (PRIVOwner) and the tag's length (where the frames begin).
func ReadTimestamp(b []byte) (ts int64, tagLen int, err error) {
	tagLen, err = id3.TagLen(b)
	if err != nil {
		return 0, 0, fmt.Errorf("packedaudio: %v", err)
	}
	if len(b) < tagLen {
		return 0, 0, fmt.Errorf("packedaudio: ID3 tag of %d bytes, %d there", tagLen, len(b))
	}
	ts, ok := id3.Timestamp(b[:tagLen])
	if !ok {
		return 0, 0, errors.New("packedaudio: no PRIV " + PRIVOwner + " frame")
	}
	return ts, tagLen, nil
}
