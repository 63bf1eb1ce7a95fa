package ts

import (
	"errors"
	"fmt"
	"io"
)

// TS packets and PES, read by hand.
//
// Why not mediacommon's mpegts.Reader: it reads through go-astits, whose packet
// accumulator re-copies every payload received so far for a PID on each packet (PES of
// video carry no length, so that is quadratic in the PES size: most of packaging's CPU
// time once), and it hands on whole PES, assuming each holds whole access units. Here
// PES payloads stream into the elementary stream assemblers (annexb.go, adts.go) as the
// packets arrive, so a PES may be cut anywhere and be of any length without memory
// growing with it.
//
// The stream of a rendition is read as one transport stream across its segments, as
// ffmpeg reads HLS: a PES (or an access unit) may go on into the next segment when its
// continuity counter does. Everything that cannot be used is counted as lost (losses.go):
// a continuity counter jump, a packet with the transport error indicator, a PES cut
// before its PES_packet_length, payload of a PES whose header was lost, a truncated
// packet at the end of a segment.
//
// Segment boundaries: a segment may start its streams anew (a PES start, the continuity
// counters reset, as packagers that mux each segment on its own do), so a counter that
// jumps into a segment's first packet of a PID that starts a PES is no loss by itself.
// What the segment before left in progress and the new segment does not go on with (a PES
// short of its length, a unit cut) is that segment's loss (tail). And where the packager
// evidently keeps the counters across segments — the segment's first PAT and PMT packets
// go on from the segment before's (not to 0, where a reset would put them) — a media
// PID's counter that jumps there says packets were lost at the end of the segment before
// (a segment cut at a packet boundary): counted as such (boundary), unless the segment
// turns out to start a new period (an explicit or implicit discontinuity: other content
// spliced in, whose counters need not go on).

const (
	tsPacketSize = 188
	tsSyncByte   = 0x47
)

// esSink is an elementary stream assembler.
type esSink interface {
	pes(has bool, pts, dts int64) // a PES starts here
	write(b []byte) error         // payload bytes
	lose()                        // bytes are missing here
	kind() string                 // "video" or "audio", for messages
}

type pesState int

const (
	pesIdle     pesState = iota // waiting for a PES start
	pesInHeader                 // collecting the PES header
	pesPayload                  // payload goes to the sink
	pesPadding                  // a padding PES: its bytes are not media
)

// pesStream follows the PES of one PID.
type pesStream struct {
	pid    uint16
	sink   esSink
	state  pesState
	hdr    []byte
	remain int  // payload bytes left in a PES with a length; -1: unbounded
	seen   bool // lastCC is valid
	begun  bool // a PES started on it
	fresh  bool // no packet of it in the current segment yet
	lastCC uint8
}

// pesReader reads the packets of a transport stream: PAT and PMT (psi.go), and the PES
// of the PIDs it was told to follow.
type pesReader struct {
	streams []*pesStream
	pat     psiSection
	pmt     psiSection
	pmtPID  uint16
	havePAT bool
	lastPMT []byte
	onPMT   func([]esInfo) error
	lost    *losses
	lead    int64  // payload of PES that started before the stream did
	rb      []byte // read buffer

	tail     *losses  // what a segment's first packets find lost of the segment before
	boundary losses   // packets missing at the segment's start by the counters (see above)
	psiCC    [2]psiCC // of the PAT and the PMT
}

// follow routes the PES of pid to sink. A PID that already went to another sink
// starts over (what it had in progress is lost).
func (r *pesReader) follow(pid uint16, sink esSink) {
	for _, s := range r.streams {
		if s.pid == pid {
			if s.sink != sink {
				r.drop(s)
				s.sink = sink
			}
			return
		}
	}
	r.streams = append(r.streams, &pesStream{pid: pid, sink: sink, remain: -1})
}

// keepOnly stops following the streams that keep rejects (a new PMT without them).
func (r *pesReader) keepOnly(keep func(*pesStream) bool) {
	out := r.streams[:0]
	for _, s := range r.streams {
		if keep(s) {
			out = append(out, s)
		} else {
			r.drop(s)
		}
	}
	r.streams = out
}

// drop stops reading s: a PES it had in progress ends there (lost when it had a length
// that was not reached).
func (r *pesReader) drop(s *pesStream) {
	switch {
	case s.state == pesInHeader:
		r.lost.add(fmt.Sprintf("bytes of %s PES packets cut in their header", s.sink.kind()), int64(len(s.hdr)))
		r.abort(s)
	case s.state == pesPayload && s.remain > 0:
		r.lost.add(fmt.Sprintf("bytes of %s PES packets cut short", s.sink.kind()), int64(s.remain))
		r.abort(s)
	}
	s.state, s.hdr, s.remain = pesIdle, s.hdr[:0], -1
}

func (r *pesReader) stream(pid uint16) *pesStream {
	for _, s := range r.streams {
		if s.pid == pid {
			return s
		}
	}
	return nil
}

// newSegment marks the start of a segment: the first packet of each PID in it may start
// a new PES without the continuity counter going on.
func (r *pesReader) newSegment() {
	for _, s := range r.streams {
		s.fresh = true
	}
	for i := range r.psiCC {
		r.psiCC[i].fresh, r.psiCC[i].carried = true, false
	}
	r.boundary.reset()
}

// read goes through the packets of src to its end; it returns the first error of a sink
// or of src (io.EOF and io.ErrUnexpectedEOF end the segment normally).
func (r *pesReader) read(src io.Reader) error {
	if r.rb == nil {
		r.rb = make([]byte, 512*tsPacketSize)
	}
	buf := r.rb
	lo, hi := 0, 0
	eof := false
	for {
		if hi-lo < tsPacketSize {
			if eof {
				r.truncated(buf[lo:hi])
				return nil
			}
			hi = copy(buf, buf[lo:hi])
			lo = 0
			n, err := io.ReadFull(src, buf[hi:])
			hi += n
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					return err
				}
				eof = true
			}
			continue
		}
		if buf[lo] != tsSyncByte { // skip to the next sync byte
			i := indexByte(buf[lo+1:hi], tsSyncByte)
			if i < 0 {
				lo = hi
			} else {
				lo += 1 + i
			}
			continue
		}
		if err := r.packet(buf[lo : lo+tsPacketSize]); err != nil {
			return err
		}
		lo += tsPacketSize
	}
}

// truncated handles what is left at the end of a segment: a packet cut short.
func (r *pesReader) truncated(rest []byte) {
	if len(rest) == 0 || rest[0] != tsSyncByte {
		return
	}
	if len(rest) >= 3 && r.stream(packetPID(rest)) == nil {
		return // not a PID of the media
	}
	r.lost.add("bytes of a TS packet cut short at the end of the segment", int64(len(rest)))
	for _, s := range r.streams {
		if len(rest) < 3 || s.pid == packetPID(rest) {
			r.abort(s)
		}
	}
}

// packetPID is the PID of the TS packet p.
func packetPID(p []byte) uint16 { return uint16(p[1]&0x1f)<<8 | uint16(p[2]) }

// packetPayload returns the payload of the TS packet p (after its adaptation field);
// false when it has none, or when the adaptation field does not fit.
func packetPayload(p []byte) ([]byte, bool) {
	if p[3]&0x10 == 0 {
		return nil, false
	}
	off := 4
	if p[3]&0x20 != 0 {
		l := int(p[4])
		if l > tsPacketSize-5 {
			return nil, false
		}
		off += 1 + l
	}
	return p[off:], true
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// packet handles one 188-byte packet.
func (r *pesReader) packet(p []byte) error {
	pid := packetPID(p)
	if pid == 0 || (r.havePAT && pid == r.pmtPID) {
		return r.psi(p, pid)
	}
	s := r.stream(pid)
	if s == nil {
		return nil
	}
	if p[1]&0x80 != 0 { // transport_error_indicator
		r.lost.add(fmt.Sprintf("damaged TS packets of the %s (transport error indicator)", s.sink.kind()), 1)
		r.abort(s)
		return nil
	}
	payload, ok := packetPayload(p)
	if !ok {
		return nil
	}
	pusi := p[1]&0x40 != 0
	cc := p[3] & 0x0f
	// discontinuity_indicator, in an adaptation field that has a flags byte
	discontinuity := p[3]&0x20 != 0 && p[4] > 0 && p[5]&0x80 != 0
	fresh := s.fresh
	s.fresh = false
	wasSeen, prevCC := s.seen, s.lastCC
	if wasSeen && !discontinuity && cc == prevCC && !fresh {
		return nil // the same packet again (allowed once)
	}
	s.seen, s.lastCC = true, cc
	jump := wasSeen && !discontinuity && cc != (prevCC+1)&0x0f
	if fresh {
		r.lost.into = r.tail // what the segment before left in progress is its own
	}
	switch {
	case jump && !fresh:
		r.lost.add(fmt.Sprintf("TS packets of the %s missing (continuity counter jump)", s.sink.kind()), int64((cc-prevCC-1)&0x0f))
		r.abort(s)
	case fresh && !pusi && (jump || !wasSeen):
		r.abort(s) // what went on from the previous segment does not continue here
	case fresh && jump:
		// A new PES after a jump: a loss only where the counters go on across segments,
		// which the segment's PAT and PMT tell (Demuxer.Segment decides at its end).
		r.boundary.add(fmt.Sprintf("TS packets (modulo 16) of the %s missing at its end (its continuity counter jumps into the next segment, whose PAT and PMT counters go on from it)", s.sink.kind()), int64((cc-prevCC-1)&0x0f))
	}
	if pusi {
		r.drop(s) // the PES before ends here
		s.state, s.begun = pesInHeader, true
	}
	r.lost.into = nil
	switch s.state {
	case pesPadding:
		return nil
	case pesIdle:
		if !s.begun { // the end of a PES that started before the stream (or the playlist) did
			r.lead += int64(len(payload))
			return nil
		}
		r.lost.add(fmt.Sprintf("bytes of %s PES packets whose start was lost", s.sink.kind()), int64(len(payload)))
		return nil
	case pesInHeader:
		s.hdr = append(s.hdr, payload...)
		h, ok, bad := parsePESHeader(s.hdr)
		if bad {
			r.lost.add(fmt.Sprintf("bytes of %s PES packets with a malformed header", s.sink.kind()), int64(len(s.hdr)))
			r.abort(s)
			return nil
		}
		if !ok {
			return nil // the header goes on in the next packet
		}
		if h.padding {
			s.state = pesPadding
			return nil
		}
		s.sink.pes(h.hasPTS, h.pts, h.dts)
		s.state, s.remain = pesPayload, -1
		if h.length > 0 {
			s.remain = max(h.length-(h.dataStart-6), 0)
		}
		payload = s.hdr[h.dataStart:]
	}
	return r.deliver(s, payload)
}

// deliver hands PES payload bytes to the sink, up to the PES's length.
func (r *pesReader) deliver(s *pesStream, b []byte) error {
	if s.remain >= 0 {
		if len(b) > s.remain {
			r.lost.add(fmt.Sprintf("bytes past the length of %s PES packets", s.sink.kind()), int64(len(b)-s.remain))
			b = b[:s.remain]
		}
		s.remain -= len(b)
		if s.remain == 0 {
			s.state = pesIdle
		}
	}
	if len(b) == 0 {
		return nil
	}
	return s.sink.write(b)
}

// abort drops the PES in progress of s: its sink resumes at its next unit start.
func (r *pesReader) abort(s *pesStream) {
	if s.state != pesIdle {
		s.sink.lose()
	}
	s.state, s.hdr, s.remain = pesIdle, s.hdr[:0], -1
}

// end is the end of the stream (or of a period): a PES with a length must be complete.
func (r *pesReader) end() {
	for _, s := range r.streams {
		r.drop(s)
	}
}

type pesHeader struct {
	padding   bool // padding_stream (stream_id 0xBE)
	length    int  // PES_packet_length (0: unbounded)
	dataStart int
	hasPTS    bool
	pts, dts  int64
}

// parsePESHeader parses the PES header at the start of b: ok once it is complete, bad
// when b is not a PES header.
func parsePESHeader(b []byte) (h pesHeader, ok, bad bool) {
	if len(b) < 3 {
		return h, false, false
	}
	if b[0] != 0 || b[1] != 0 || b[2] != 1 {
		return h, false, true
	}
	if len(b) < 9 {
		return h, false, false
	}
	streamID := b[3]
	h.length = int(b[4])<<8 | int(b[5])
	if streamID == 0xbe || streamID == 0xbf { // padding, private stream 2: no optional header
		h.dataStart = 6
		h.padding = streamID == 0xbe
		return h, true, false
	}
	if b[6]&0xc0 != 0x80 {
		return h, false, true
	}
	h.dataStart = 9 + int(b[8])
	if h.length > 0 && h.dataStart > 6+h.length {
		return h, false, true
	}
	if len(b) < h.dataStart {
		return h, false, false
	}
	switch b[7] >> 6 {
	case 2: // PTS only
		if h.dataStart < 14 {
			return h, false, true
		}
		h.hasPTS = true
		h.pts = parseTimestamp(b[9:14])
		h.dts = h.pts
	case 3: // PTS and DTS
		if h.dataStart < 19 {
			return h, false, true
		}
		h.hasPTS = true
		h.pts = parseTimestamp(b[9:14])
		h.dts = parseTimestamp(b[14:19])
	}
	return h, true, false
}

func parseTimestamp(b []byte) int64 {
	return int64(uint64(b[0])>>1&0x7)<<30 | int64(b[1])<<22 | int64(uint64(b[2])>>1&0x7f)<<15 |
		int64(b[3])<<7 | int64(b[4]>>1&0x7f)
}
