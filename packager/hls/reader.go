package hls

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
)

// started waits until the first part of s has arrived (or it is known to be
// empty); false when the fetch has stopped first.
func (f *fetcher) started(s *segState) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.ctx.Err() == nil {
		if len(s.parts) > 0 && s.parts[0].done {
			return true
		}
		f.cond.Wait()
	}
	return false
}

// segReader is the body Fetch hands to fn: the segment's parts, decrypted,
// in order as they arrive (each once complete), each dropped once read.
type segReader struct {
	f      *fetcher
	s      *segState
	k      int   // current part
	pos    int   // offset in it
	read   int64 // bytes read
	failed bool  // Read returned an error other than EOF
}

func (r *segReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	f, s := r.f, r.s
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		if r.k < len(s.parts) {
			p := s.parts[r.k]
			if !p.done {
				// wait: parts are read once complete
			} else if s.seg.Key != nil && s.block != nil {
				if err := f.decrypt(s, r.k); err != nil {
					r.failed = true
					return 0, err
				}
			} else if s.seg.Key == nil {
				p.plain = p.filled
			}
			if r.pos < p.plain {
				bs := f.blockSize
				k, lo := r.pos/bs, r.pos%bs
				n := copy(b, (*p.blocks[k])[lo:min(bs, p.plain-k*bs)])
				r.pos += n
				r.read += int64(n)
				if r.pos%bs == 0 {
					f.release(p, k) // read through
				}
				return n, nil
			}
			if p.done && (s.seg.Key == nil || p.dec == p.filled && s.block != nil) {
				f.pass(p)
				r.k++
				r.pos = 0
				continue
			}
			if p.done && !p.drained {
				// Read up to its last block, held back until the part after
				// it shows whether it ends the segment.
				p.drained = true
				f.cond.Broadcast()
			}
		} else if s.final {
			return 0, io.EOF
		}
		if f.ctx.Err() != nil {
			r.failed = true
			return 0, context.Cause(f.ctx)
		}
		f.cond.Wait()
	}
}

// Init returns the segment's init section (see SegmentBody).
func (r *segReader) Init() ([]byte, error) {
	if r.s.seg.Map == nil {
		return nil, errNoMap
	}
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	return r.s.init, r.s.initErr
}

// SizeHint is at least the number of bytes left to read when the segment's size
// is known (its byte range, or the size its first answer told), else -1. With
// decryption, up to 16 fewer come (the padding).
func (r *segReader) SizeHint() int64 {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	size := r.s.size
	if r.s.rlen >= 0 {
		size = r.s.rlen
	}
	if size < 0 {
		return -1
	}
	return size - r.read
}

// decrypt decrypts in place what has arrived of part k of s (AES-128-CBC,
// each part chained to the one before), holding back the last block until it
// is known whether it ends the segment (PKCS#7 padding).
func (f *fetcher) decrypt(s *segState, k int) error {
	p := s.parts[k]
	var next *part
	if k+1 < len(s.parts) {
		next = s.parts[k+1]
	}
	last, known := false, false
	switch {
	case !p.done:
	case next == nil && s.final:
		last, known = true, true
	case !p.handoff:
		known = true // a fixed part, not the last
	case next != nil && next.filled > 0:
		known = true
	case next != nil && next.done && s.final && k+1 == len(s.parts)-1:
		last, known = true, true // the part after is empty
	}
	if p.filled == 0 && p.off > 0 {
		return nil // an empty tail: the part before held the padding
	}
	total := p.off + int64(p.filled)
	if known && (total == 0 || p.filled%aes.BlockSize != 0) {
		return f.decryptError(s, fmt.Errorf("the encrypted body is %d bytes, not a whole number of 16-byte AES blocks", total))
	}
	end := p.filled
	if !known {
		end = max(p.filled-aes.BlockSize, 0) &^ (aes.BlockSize - 1)
	}
	if end > p.dec {
		var nextIV [16]byte
		copy(nextIV[:], f.bytes(p, end-aes.BlockSize, end))
		cbc := cipher.NewCBCDecrypter(s.block, s.prev[:])
		for from := p.dec; from < end; {
			b := f.bytes(p, from, min(end, (from/f.blockSize+1)*f.blockSize))
			cbc.CryptBlocks(b, b)
			from += len(b)
		}
		s.prev = nextIV
		p.dec = end
	}
	p.plain = p.dec
	if last && p.dec == p.filled {
		b := f.bytes(p, p.filled-aes.BlockSize, p.filled) // in one block: both are multiples of 16
		pad := int(b[len(b)-1])
		if pad == 0 || pad > aes.BlockSize {
			return f.decryptError(s, errors.New("bad PKCS#7 padding after AES-128 decryption (wrong key or IV?)"))
		}
		for _, x := range b[len(b)-pad:] {
			if int(x) != pad {
				return f.decryptError(s, errors.New("bad PKCS#7 padding after AES-128 decryption (wrong key or IV?)"))
			}
		}
		p.plain = p.filled - pad
	}
	return nil
}

func (f *fetcher) decryptError(s *segState, err error) error {
	e := fmt.Errorf("%w for segment %s: %v", ErrDecrypt, describeResource(s.seg.URL, s.seg.Range), err)
	if f.streamErr == nil {
		f.streamErr = e
	}
	f.cancel()
	return e
}

// bytes is p's bytes from, to, which must lie in one block.
func (f *fetcher) bytes(p *part, from, to int) []byte {
	k := from / f.blockSize
	return (*p.blocks[k])[from-k*f.blockSize : to-k*f.blockSize]
}
