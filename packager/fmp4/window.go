package fmp4

import (
	"errors"
	"io"
)

// window reads a segment from an io.Reader front to back, holding only the bytes from a
// point the caller chooses (the sample or box header being read) to what was read
// ahead: memory follows the largest sample, not the segment. Stream offsets count from
// the first byte read (the init section's media prefix included).
type window struct {
	r      io.Reader
	buf    []byte
	lo, hi int   // buf[lo:hi] are the stream bytes from off on
	off    int64 // stream offset of buf[lo]
	eof    bool
}

// minWindow is the window's first size and the least it reads ahead: a few typical
// samples, so that small ones do not cost a Read each.
const minWindow = 16 << 10

// readError is an error of the reader itself (the origin, a limit of the fetch): it is
// passed on as it is, not labelled a malformed segment.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

func (w *window) reset(r io.Reader) {
	w.r, w.lo, w.hi, w.off, w.eof = r, 0, 0, 0, false
}

// end is the stream offset after the last byte read; once at the end of the stream,
// the stream's length.
func (w *window) end() int64 { return w.off + int64(w.hi-w.lo) }

// fill reads until the window holds n bytes from off, or the stream ends.
func (w *window) fill(n int) error {
	for w.hi-w.lo < n && !w.eof {
		if len(w.buf)-w.lo < max(n, minWindow) {
			// Move what is held to the front, in a larger buffer when it cannot hold n.
			// Doubling (up to the largest sample) spares a new buffer per larger sample.
			nb := w.buf
			if len(nb) < n || len(nb) < minWindow {
				nb = make([]byte, max(n, minWindow, min(2*len(nb), maxVideoSample)))
			}
			w.hi = copy(nb, w.buf[w.lo:w.hi])
			w.lo, w.buf = 0, nb
		}
		k, err := w.r.Read(w.buf[w.hi:])
		w.hi += k
		if errors.Is(err, io.EOF) {
			w.eof = true
		} else if err != nil {
			return &readError{err}
		}
	}
	return nil
}

// seek moves the window's start to stream offset o (at or after off), reading and
// dropping the bytes before it; false when the stream ends first.
func (w *window) seek(o int64) (bool, error) {
	if o < w.off {
		return false, nil // dropped already: the caller says what is missing
	}
	for {
		if have := int64(w.hi - w.lo); o-w.off <= have {
			w.lo += int(o - w.off)
			w.off = o
			return true, nil
		}
		w.off += int64(w.hi - w.lo)
		w.lo, w.hi = 0, 0
		if w.eof {
			return false, nil
		}
		if err := w.fill(1); err != nil {
			return false, err
		}
	}
}

// get returns the n stream bytes from offset o (at or after off), valid until the next
// call; fewer when the stream ends first.
func (w *window) get(o int64, n int) ([]byte, error) {
	if ok, err := w.seek(o); !ok || err != nil {
		return nil, err
	}
	if err := w.fill(n); err != nil {
		return nil, err
	}
	return w.buf[w.lo : w.lo+min(n, w.hi-w.lo)], nil
}

// readAt fills dst with the stream bytes from offset o, reading past the window straight
// into dst (a moof is kept apart from the window); it returns how many there were.
func (w *window) readAt(o int64, dst []byte) (int, error) {
	if ok, err := w.seek(o); !ok || err != nil {
		return 0, err
	}
	k := copy(dst, w.buf[w.lo:w.hi])
	w.lo += k
	w.off += int64(k)
	for k < len(dst) && !w.eof {
		n, err := w.r.Read(dst[k:])
		k += n
		w.off += int64(n)
		if errors.Is(err, io.EOF) {
			w.eof = true
		} else if err != nil {
			return k, &readError{err}
		}
	}
	return k, nil
}
