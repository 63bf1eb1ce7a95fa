package mp4

// A clip's bytes: its header, then byte ranges of the stored file, as one ReadSeeker.

import (
	"errors"
	"io"
	"sort"
)

// Reader is the clip's bytes: the header, then the pieces read from f, the stored file
// (read by ranges, as they are asked for).
func (c *Clip) Reader(f io.ReadSeeker) io.ReadSeeker {
	starts := make([]int64, len(c.Pieces))
	var s int64
	for k, pc := range c.Pieces {
		starts[k] = s
		s += pc.Len
	}
	return &clipReader{c: c, f: f, filePos: -1, starts: starts}
}

// clipReader reads a Clip.
type clipReader struct {
	c       *Clip
	f       io.ReadSeeker
	starts  []int64 // offset of each piece in the media
	pos     int64
	filePos int64 // where f is, -1 when unknown
}

func (r *clipReader) Seek(off int64, whence int) (int64, error) {
	pos, err := SeekPosition(r.pos, r.c.Size, off, whence)
	if err == nil {
		r.pos = pos
	}
	return pos, err
}

// SeekPosition is the position an io.Seeker of a virtual file (size bytes, at pos)
// moves to for Seek(off, whence).
func SeekPosition(pos, size, off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += pos
	case io.SeekEnd:
		off += size
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if off < 0 {
		return 0, errors.New("seek: negative position")
	}
	return off, nil
}

func (r *clipReader) Read(p []byte) (int, error) {
	if r.pos >= r.c.Size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if h := int64(len(r.c.Header)); r.pos < h {
		n := copy(p, r.c.Header[r.pos:])
		r.pos += int64(n)
		return n, nil
	}
	rel := r.pos - int64(len(r.c.Header))
	k := sort.Search(len(r.starts), func(k int) bool { return r.starts[k] > rel }) - 1
	if k < 0 {
		return 0, io.EOF
	}
	pc := r.c.Pieces[k]
	in := rel - r.starts[k]
	want := min(int64(len(p)), pc.Len-in)
	at := pc.Off + in
	if r.filePos != at {
		if _, err := r.f.Seek(at, io.SeekStart); err != nil {
			r.filePos = -1
			return 0, err
		}
	}
	n, err := io.ReadFull(r.f, p[:want])
	r.filePos = at + int64(n)
	r.pos += int64(n)
	if err != nil {
		r.filePos = -1
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.ErrUnexpectedEOF // the stored file is shorter than its moov says
		}
		return n, err
	}
	return n, nil
}
