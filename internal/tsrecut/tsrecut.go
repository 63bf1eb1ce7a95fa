// Package tsrecut re-packetizes an MPEG-TS segment the way real packagers do, to make test
// material: the elementary streams are kept byte for byte, with the same timestamps, but
// their PES packets are cut elsewhere than on access-unit boundaries.
//
// ffmpeg's muxer (which makes the project's fixtures) puts whole access units in every PES:
// one video frame per PES, whole ADTS frames in audio PES. Real packagers do not: Apple's
// mediastreamsegmenter and mediafilesegmenter start a video PES with the last bytes of the
// previous access unit and cut AAC PES in the middle of an ADTS frame, the next PES then
// starting without an ADTS header. A demuxer that assumes aligned PES fails on those; this
// package makes such segments from aligned ones (Recut), plus a few damaged variants
// (DeclareStream, Lose, Truncate).
//
// The TS and PES writer is written by hand rather than with a muxer library (go-astits,
// mediacommon's mpegts.Writer): those always start a PES on an access unit, and the whole
// point is to produce cuts that no library muxer produces.
//
// Input: a segment as ffmpeg's HLS muxer writes it: PAT, PMT, H.264 (stream type 0x1b) or
// HEVC (0x24) video and AAC ADTS (0x0f) audio, each PES holding whole access units (one
// per video PES, any number of ADTS frames per audio PES, the later frames of an audio PES
// at +1024 samples each), the PCR on one of those PIDs.
package tsrecut

import (
	"errors"
	"fmt"
	"sort"
)

// PacketSize is the size of a TS packet.
const PacketSize = 188

const (
	syncByte = 0x47
	nullPID  = 0x1fff

	// Stream types of the PMT this package knows.
	TypeH264 = 0x1b
	TypeHEVC = 0x24
	TypeAAC  = 0x0f // ADTS
)

// ErrInput: the input is not a segment this package can re-cut.
var ErrInput = errors.New("tsrecut: unusable input")

func inputErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInput, fmt.Sprintf(format, a...))
}

// AU is one access unit (a video frame, an ADTS frame) of an elementary stream.
type AU struct {
	Off    int   // offset of its first byte in the elementary stream
	PTS    int64 // 33-bit, 90 kHz
	DTS    int64 // = PTS when the PES had no DTS
	HasDTS bool  // DTS differs from PTS (written only then)
}

// Stream is one elementary stream of a segment, reassembled.
type Stream struct {
	PID        uint16
	StreamType byte
	StreamID   byte // PES stream_id, as in the input
	Video      bool
	ES         []byte // the PES payloads, concatenated
	AUs        []AU   // in ES order
	// SampleRate of an audio stream (from its first ADTS header).
	SampleRate int

	pes []inPES // where the input had each PES
}

// inPES is where an input PES was: its elementary stream bytes and its TS packets.
type inPES struct {
	esStart, esEnd    int
	firstPkt, lastPkt int // packet indexes in the input
}

// inputPosition is where byte off of the elementary stream was in the input, in packets
// (interpolated within its PES).
func (s *Stream) inputPosition(off int) float64 {
	i := sort.Search(len(s.pes), func(i int) bool { return s.pes[i].esEnd > off })
	if i == len(s.pes) {
		i--
	}
	p := s.pes[i]
	if p.esEnd <= p.esStart {
		return float64(p.firstPkt)
	}
	return float64(p.firstPkt) + float64(p.lastPkt-p.firstPkt)*float64(off-p.esStart)/float64(p.esEnd-p.esStart)
}

// AULen is the length in bytes of access unit i.
func (s *Stream) AULen(i int) int {
	if i+1 < len(s.AUs) {
		return s.AUs[i+1].Off - s.AUs[i].Off
	}
	return len(s.ES) - s.AUs[i].Off
}

// Segment is a demuxed segment.
type Segment struct {
	// PSI holds the first packet of each PSI table in input order (PAT, PMT, and whatever
	// else is on a PID that is no elementary stream, such as ffmpeg's SDT).
	PSI     [][]byte
	PMTPID  uint16
	PCRPID  uint16
	Streams []*Stream // in PMT order
	// PCRDelay is how far the PCR runs behind the DTS on the PCR PID (90 kHz): the first
	// DTS on it minus the first PCR of the input (0.7 s when the input has no PCR).
	PCRDelay int64
}

// Stream returns the stream on pid, or nil.
func (s *Segment) Stream(pid uint16) *Stream {
	for _, st := range s.Streams {
		if st.PID == pid {
			return st
		}
	}
	return nil
}
