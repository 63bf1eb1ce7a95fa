package ts

import "io"

// videoHidden hides the packets of video elementary streams (PES stream_id 0xE0–0xEF)
// from mediacommon's track detection (mpegts.Reader.Initialize). That reads through
// go-astits, which re-copies the PES received so far on every packet of a PID whose PES
// carry no length (see pes.go): reading on to the first AAC frame behind a 1080p key
// frame cost more CPU than all the rest of packaging. Video tracks are identified from
// the PMT's stream_type alone, so their payload is not needed there.
//
// Input that is not packet-aligned goes through untouched from the first misaligned
// byte on, so the Reader's own resynchronisation still applies.
type videoHidden struct {
	r     io.Reader
	buf   [64 * tsPacketSize]byte
	out   []byte   // kept bytes not yet handed out
	video []uint16 // PIDs seen to start a video PES
	raw   bool     // misaligned or short input: the rest goes through as read
	err   error    // of r, returned once out is empty
}

func (h *videoHidden) Read(b []byte) (int, error) {
	for len(h.out) == 0 {
		if h.err != nil {
			return 0, h.err
		}
		if h.raw {
			return h.r.Read(b)
		}
		n, err := io.ReadFull(h.r, h.buf[:])
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		h.err = err
		h.out = h.keep(h.buf[:n])
	}
	n := copy(b, h.out)
	h.out = h.out[n:]
	return n, nil
}

// keep compacts b to the packets that are not video, up to the first misaligned one
// after which everything is kept (and raw set).
func (h *videoHidden) keep(b []byte) []byte {
	w := 0
	for r := 0; r < len(b); r += tsPacketSize {
		p := b[r:min(r+tsPacketSize, len(b))]
		if len(p) < tsPacketSize || p[0] != tsSyncByte {
			h.raw = true
			w += copy(b[w:], b[r:])
			break
		}
		if h.isVideo(p) {
			continue
		}
		w += copy(b[w:], p)
	}
	return b[:w]
}

func (h *videoHidden) isVideo(p []byte) bool {
	pid := packetPID(p)
	for _, v := range h.video {
		if v == pid {
			return true
		}
	}
	q, ok := packetPayload(p)
	if !ok || p[1]&0x40 == 0 || len(q) < 4 { // no payload, or not the start of a PES
		return false
	}
	if q[0] == 0 && q[1] == 0 && q[2] == 1 && q[3]&0xf0 == 0xe0 {
		h.video = append(h.video, pid)
		return true
	}
	return false
}

// recorder keeps what is read through it.
type recorder struct {
	r   io.Reader
	buf []byte
}

func (c *recorder) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.buf = append(c.buf, b[:n]...)
	return n, err
}
