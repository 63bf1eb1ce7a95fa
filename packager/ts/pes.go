package ts

import (
	"errors"
	"io"
	"slices"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// PES re-assembly for the tracks the demuxer reads.
//
// Why not mediacommon's mpegts.Reader for this part: it reads through go-astits, whose
// packet accumulator re-copies every payload received so far for a PID each time a
// packet arrives, to find out whether the PES is complete (isPESComplete). Video PES
// carry no length (PES_packet_length 0), so that is quadratic in the PES size: for a
// 1080p key frame of a few hundred KB, hundreds of MB of memmove, and it was most of the
// CPU time of packaging. pesReader assembles each PES once, into a buffer reused from
// one PES to the next, and hands it to mediacommon's codec helpers (Annex B, ADTS) as
// the Reader's OnData callbacks would. mediacommon still finds the tracks (PAT, PMT,
// codec configuration) at the head of the segment.
//
// It keeps the Reader's (astits') behaviour on the packets it sees: garbage before a
// sync byte is skipped, a trailing partial packet is ignored, packets with the transport
// error indicator or without payload are dropped, a continuity-counter jump (without the
// discontinuity indicator) drops the PES being assembled, a repeated packet is dropped,
// a PES ends at the next payload_unit_start_indicator, at its PES_packet_length when it
// has one, or at the end of the segment (flushed in PID order), and a PES without PTS,
// or that does not parse, is skipped.
type pesReader struct {
	streams []*pesStream
	rb      []byte // read buffer
}

type pesStream struct {
	pid    uint16
	on     func(pts, dts int64, data []byte) error
	buf    []byte // payload of the packets queued so far
	queued bool   // packets are queued (buf may still be empty)
	lastCC uint8
}

const (
	tsPacketSize = 188
	tsSyncByte   = 0x47
)

func (r *pesReader) reset() { r.streams = r.streams[:0] }

// add reads the PES of pid, calling on for each one that has a PTS (dts = pts when the
// PES has none).
func (r *pesReader) add(pid uint16, on func(pts, dts int64, data []byte) error) {
	for _, s := range r.streams {
		if s.pid == pid {
			s.on = on
			return
		}
	}
	var s *pesStream
	if len(r.streams) < cap(r.streams) {
		s = r.streams[:len(r.streams)+1][len(r.streams)] // reuse the buffers of a previous segment
	}
	if s == nil {
		s = &pesStream{}
	}
	*s = pesStream{pid: pid, on: on, buf: s.buf[:0]}
	r.streams = append(r.streams, s)
	slices.SortFunc(r.streams, func(a, b *pesStream) int { return int(a.pid) - int(b.pid) })
}

func (r *pesReader) stream(pid uint16) *pesStream {
	for _, s := range r.streams {
		if s.pid == pid {
			return s
		}
	}
	return nil
}

// read goes through the packets of src to its end; it returns the first error of a
// callback or of src (io.EOF and io.ErrUnexpectedEOF end the segment normally).
func (r *pesReader) read(src io.Reader) error {
	if r.rb == nil {
		r.rb = make([]byte, 512*tsPacketSize)
	}
	buf := r.rb
	lo, hi := 0, 0
	eof := false
	for {
		// Skip to the next sync byte.
		for {
			if i := indexByte(buf[lo:hi], tsSyncByte); i >= 0 {
				lo += i
				break
			}
			lo = hi
			if eof {
				return r.flush()
			}
			lo, hi = 0, 0
			n, err := r.fill(src, buf, hi)
			hi += n
			if err != nil {
				eof = true
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					return err
				}
			}
		}
		if hi-lo < tsPacketSize {
			if eof {
				return r.flush()
			}
			copy(buf, buf[lo:hi])
			hi -= lo
			lo = 0
			n, err := r.fill(src, buf, hi)
			hi += n
			if err != nil {
				eof = true
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					return err
				}
			}
			continue
		}
		if err := r.packet(buf[lo : lo+tsPacketSize]); err != nil {
			return err
		}
		lo += tsPacketSize
	}
}

// fill reads into buf[from:] until it is full or src ends.
func (r *pesReader) fill(src io.Reader, buf []byte, from int) (int, error) {
	n, err := io.ReadFull(src, buf[from:])
	if err == nil || n > 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		if err != nil {
			return n, io.EOF
		}
		return n, nil
	}
	return n, err
}

// packetPID is the PID of the TS packet p.
func packetPID(p []byte) uint16 { return uint16(p[1]&0x1f)<<8 | uint16(p[2]) }

// packetPayload returns the payload of the TS packet p (after its adaptation field);
// false when it has none, or when the adaptation field does not fit (astits drops such
// packets too).
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
	if p[1]&0x80 != 0 { // transport_error_indicator
		return nil
	}
	s := r.stream(packetPID(p))
	if s == nil {
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

	if s.queued && !discontinuity && cc != (s.lastCC+1)&0x0f {
		s.buf, s.queued = s.buf[:0], false // lost packets: drop the PES being assembled
	}
	if s.queued && cc == s.lastCC {
		return nil // the same packet again
	}
	if pusi && s.queued {
		if err := s.emit(); err != nil {
			return err
		}
	}
	s.buf = append(s.buf, payload...)
	s.queued = true
	s.lastCC = cc
	if isPES(s.buf) {
		if h, ok := parsePESHeader(s.buf); ok && h.length > 0 && len(s.buf) >= 6+h.length {
			return s.emit()
		}
	}
	return nil
}

// flush emits what is still queued at the end of the segment, in PID order.
func (r *pesReader) flush() error {
	for _, s := range r.streams {
		if s.queued {
			if err := s.emit(); err != nil {
				return err
			}
		}
	}
	return nil
}

// emit parses the queued PES, hands it on and empties the queue.
func (s *pesStream) emit() error {
	b := s.buf
	s.buf, s.queued = s.buf[:0], false
	if !isPES(b) {
		return nil
	}
	h, ok := parsePESHeader(b)
	if !ok {
		return nil
	}
	end := len(b)
	if h.length > 0 {
		end = 6 + h.length
	}
	if end < h.dataStart || end > len(b) || !h.hasPTS {
		return nil
	}
	return s.on(h.pts, h.dts, b[h.dataStart:end])
}

func isPES(b []byte) bool { return len(b) >= 3 && b[0] == 0 && b[1] == 0 && b[2] == 1 }

type pesHeader struct {
	length    int // PES_packet_length (0: unbounded)
	dataStart int
	hasPTS    bool
	pts, dts  int64
}

// parsePESHeader parses the PES header at the start of b (which starts 00 00 01).
func parsePESHeader(b []byte) (h pesHeader, ok bool) {
	if len(b) < 6 {
		return h, false
	}
	streamID := b[3]
	h.length = int(b[4])<<8 | int(b[5])
	if streamID == 0xbe || streamID == 0xbf { // padding, private stream 2: no optional header
		h.dataStart = 6
		return h, true
	}
	if len(b) < 9 {
		return h, false
	}
	h.dataStart = 9 + int(b[8])
	need := 9
	switch b[7] >> 6 {
	case 2: // PTS only
		need += 5
	case 3: // PTS and DTS
		need += 10
	}
	if len(b) < need {
		return h, false
	}
	switch b[7] >> 6 {
	case 2:
		h.hasPTS = true
		h.pts = parseTimestamp(b[9:14])
		h.dts = h.pts
	case 3:
		h.hasPTS = true
		h.pts = parseTimestamp(b[9:14])
		h.dts = parseTimestamp(b[14:19])
	}
	return h, true
}

func parseTimestamp(b []byte) int64 {
	return int64(uint64(b[0])>>1&0x7)<<30 | int64(b[1])<<22 | int64(uint64(b[2])>>1&0x7f)<<15 |
		int64(b[3])<<7 | int64(b[4]>>1&0x7f)
}

// The OnData callbacks of mediacommon's mpegts.Reader: malformed access units are
// skipped, as the Reader does.

func (d *Demuxer) onH264PES(pts, dts int64, data []byte) error {
	var au h264.AnnexB
	if err := au.Unmarshal(data); err != nil {
		return nil
	}
	if au[0][0] == byte(h264.NALUTypeAccessUnitDelimiter) {
		au = au[1:]
	}
	return d.onVideo(pts, dts, au)
}

func (d *Demuxer) onH265PES(pts, dts int64, data []byte) error {
	var au h264.AnnexB
	if err := au.Unmarshal(data); err != nil {
		return nil
	}
	if au[0][0] == byte(h265.NALUType_AUD_NUT<<1) {
		au = au[1:]
	}
	return d.onVideo(pts, dts, au)
}

func (d *Demuxer) onAACPES(pts, dts int64, data []byte) error {
	if pts != dts {
		return nil
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(data); err != nil {
		return nil
	}
	aus := make([][]byte, len(pkts))
	for i, pkt := range pkts {
		aus[i] = pkt.AU
	}
	return d.onAAC(pts, aus)
}
