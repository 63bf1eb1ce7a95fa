package codec

// Reading H.264/HEVC NAL unit payloads: emulation prevention and exp-Golomb codes, with
// bits.go's bitReader.

// rbspHeadLen is how much of a NAL unit's payload the slice header readers look at:
// enough for slice headers up to the picture order count.
const rbspHeadLen = 40

// rbspHead copies the first rbspHeadLen bytes of NAL unit payload p (after the NAL
// header) into dst without their emulation prevention bytes (the 03 of 00 00 03) and
// returns the RBSP bytes. The buffer is the caller's (on its stack): this runs for every
// frame, where h264.EmulationPreventionRemove would allocate a copy of the whole unit.
func rbspHead(dst *[rbspHeadLen]byte, p []byte) []byte {
	w, zeros := 0, 0
	for _, c := range p[:min(len(p), rbspHeadLen)] {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		dst[w] = c
		w++
	}
	return dst[:w]
}

// ue reads an unsigned exp-Golomb code, ue(v) (H.264 9.1). A code of more than 31
// leading zero bits, or one cut by the end, sets over.
func (r *bitReader) ue() uint32 {
	lz := 0
	for r.u(1) == 0 {
		if r.over {
			return 0
		}
		lz++
		if lz > 31 {
			r.over = true
			return 0
		}
	}
	return 1<<lz - 1 + r.u(lz)
}

// long reads n bits, any n, keeping the last 64 of them (a slice header field as wide as
// a corrupt SPS says). It stops at the end, setting over; n == 0 reads nothing and cannot
// fail.
func (r *bitReader) long(n int) uint64 {
	var v uint64
	for range n {
		at := r.pos >> 3
		if at >= len(r.b) {
			r.over = true
			return 0
		}
		v = v<<1 | uint64(r.b[at]>>(7-uint(r.pos&7)))&1
		r.pos++
	}
	return v
}
