package codec

// bitReader reads big-endian bit fields. Reading past the end yields zeros and sets
// over, so a parser reads a whole structure and checks over once.
type bitReader struct {
	b    []byte
	pos  int // in bits
	over bool
}

// u reads n bits (n <= 32) as an unsigned number.
func (r *bitReader) u(n int) uint32 {
	var v uint32
	for i := 0; i < n; i++ {
		v <<= 1
		byteAt := r.pos >> 3
		if byteAt >= len(r.b) {
			r.over = true
		} else {
			v |= uint32(r.b[byteAt]>>(7-uint(r.pos&7))) & 1
		}
		r.pos++
	}
	return v
}

func (r *bitReader) flag() bool { return r.u(1) == 1 }

// skip moves n bits on; n may be large (mixing metadata), so it does not loop.
func (r *bitReader) skip(n int) {
	if n < 0 || r.pos+n > len(r.b)*8 {
		r.over = true
		r.pos = len(r.b) * 8
		return
	}
	r.pos += n
}

// left is the number of bits still to read.
func (r *bitReader) left() int { return len(r.b)*8 - r.pos }

// bitWriter writes big-endian bit fields.
type bitWriter struct {
	b []byte
	n int // bits written
}

func (w *bitWriter) put(v uint32, n int) {
	for i := n - 1; i >= 0; i-- {
		if w.n&7 == 0 {
			w.b = append(w.b, 0)
		}
		w.b[len(w.b)-1] |= byte((v>>uint(i))&1) << (7 - uint(w.n&7))
		w.n++
	}
}
