package mp4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// boxWriter writes nested boxes. By default it builds them in b, patching each size
// on close. The moov of a long video is MBs, so it can also stream them in two passes
// of the same code: measuring (box sizes recorded in the order the boxes open, the
// bytes counted and dropped), then writing to out, each box's size known when it opens.
type boxWriter struct {
	b       []byte
	stack   []boxStart
	measure bool      // measuring pass
	out     io.Writer // writing pass
	sizes   []uint32  // streaming: the boxes' sizes in the order they open
	opened  int       // boxes opened so far
	n       int64     // bytes handed out of b (streaming)
	err     error     // first error of a streaming pass
}

type boxStart struct {
	pos int64 // position of the box's first byte
	i   int   // the box's number in open order
}

// streaming says whether boxes are handed out as they are made (measured or written)
// rather than built whole in b.
func (w *boxWriter) streaming() bool { return w.measure || w.out != nil }

// pos is the offset of the next byte from the first one this writer made.
func (w *boxWriter) pos() int64 { return w.n + int64(len(w.b)) }

// open starts a box of type typ. Its size is written now when streaming (measured by
// the first pass), else patched by close.
func (w *boxWriter) open(typ string) {
	i := w.opened
	w.opened++
	w.stack = append(w.stack, boxStart{w.pos(), i})
	switch {
	case w.measure:
		w.sizes = append(w.sizes, 0)
		w.u32(0)
	case w.out != nil && i < len(w.sizes):
		w.u32(w.sizes[i])
	case w.out != nil:
		w.fail(errors.New("mp4: more boxes than measured"))
		w.u32(0)
	default:
		w.u32(0)
	}
	w.str(typ)
}

// full starts a full box (ISO 14496-12 4.2: version and flags after the header).
func (w *boxWriter) full(typ string, version byte, flags uint32) {
	w.open(typ)
	w.u32(uint32(version)<<24 | flags&0xffffff)
}

// close ends the innermost open box: records its size (measuring), checks it against
// the measured one (writing) or patches it into b.
func (w *boxWriter) close() {
	top := w.stack[len(w.stack)-1]
	w.stack = w.stack[:len(w.stack)-1]
	size := w.pos() - top.pos
	if size > math.MaxUint32 {
		w.fail(errors.New("mp4: box larger than 4 GiB"))
		return
	}
	switch {
	case w.measure:
		w.sizes[top.i] = uint32(size)
	case w.out != nil:
		if i := top.i; i < len(w.sizes) && w.sizes[i] != uint32(size) {
			w.fail(fmt.Errorf("mp4: box %d is %d bytes, measured %d", i, size, w.sizes[i]))
		}
	default:
		binary.BigEndian.PutUint32(w.b[top.pos:], uint32(size))
	}
}

// fail keeps the first error; the rest of the pass runs on so that the code writing
// boxes need not check after each field.
func (w *boxWriter) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// spill hands b out when streaming, every 64 KiB.
func (w *boxWriter) spill() {
	if len(w.b) >= 64<<10 && w.streaming() {
		w.flush()
	}
}

// flush hands out b (streaming).
func (w *boxWriter) flush() {
	if w.out != nil && w.err == nil {
		if _, err := w.out.Write(w.b); err != nil {
			w.fail(err)
		}
	}
	w.n += int64(len(w.b))
	w.b = w.b[:0]
}

// The field writers append big-endian values (ISO 14496-12 is big-endian throughout).
func (w *boxWriter) u8(v byte)    { w.b = append(w.b, v); w.spill() }
func (w *boxWriter) u16(v uint16) { w.b = append(w.b, byte(v>>8), byte(v)); w.spill() }
func (w *boxWriter) u32(v uint32) { w.b = be32(w.b, v); w.spill() }
func (w *boxWriter) u64(v uint64) { w.b = be64(w.b, v); w.spill() }
func (w *boxWriter) str(s string) { w.b = append(w.b, s...); w.spill() }
func (w *boxWriter) raw(b []byte) { w.b = append(w.b, b...); w.spill() }
func (w *boxWriter) zeros(n int)  { w.b = append(w.b, make([]byte, n)...); w.spill() }
func (w *boxWriter) times(v1 bool) { // creation and modification time: 0 (deterministic)
	if v1 {
		w.zeros(16)
	} else {
		w.zeros(8)
	}
}

// dur writes a duration in 64 bits in a version-1 box, else in 32.
func (w *boxWriter) dur(v1 bool, d uint64) {
	if v1 {
		w.u64(d)
	} else {
		w.u32(uint32(d))
	}
}

// matrix writes the identity transformation matrix of mvhd and tkhd.
func (w *boxWriter) matrix() {
	for _, v := range []uint32{0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000} {
		w.u32(v)
	}
}

// be32 appends v big-endian to b.
func be32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// be64 appends v big-endian to b.
func be64(b []byte, v uint64) []byte {
	return be32(be32(b, uint32(v>>32)), uint32(v))
}
