package packager

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"sort"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager/mp4"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

// instantFile is a planned file as a storage.File for delivery: the header from
// memory; each range of the media from the stored file once it is ready (with the
// plan's ETag), else from the job's staging file when a job of the same source runs
// here and has written it or is about to, else from the origin's byte ranges that
// hold it. A failure of the origin ends Read with its error: the response is cut,
// never padded.
type instantFile struct {
	ctx    context.Context // the delivery's
	p      *instantPlan
	live   func() *liveFile    // the job's staging file to read; nil: none
	stored func() storage.File // the stored file when it is ready with the plan's ETag; nil: not (yet)
	pos    int64
	file   storage.File    // the stored file, once read from
	tried  time.Time       // when stored was last tried
	reads  []*originStream // open origin reads, the most recently used last
}

// originStream is one open origin read of segment src, at offset at of it.
type originStream struct {
	src int32
	at  int64
	rc  io.ReadCloser
}

const (
	// maxStreams bounds the origin reads a delivery keeps open: the file interleaves
	// video and audio, which may come from two places of a segment or two segments.
	maxStreams = 3
	// maxSkip is how far an open origin read is read through, rather than a new one
	// sent, to reach bytes further on.
	maxSkip = 256 << 10
	// storedEvery spaces the checks whether the stored file is ready.
	storedEvery = 500 * time.Millisecond
)

func (f *instantFile) Read(b []byte) (int, error) {
	if f.pos >= f.p.size {
		return 0, io.EOF
	}
	if len(b) == 0 {
		return 0, nil
	}
	if f.pos < int64(len(f.p.header)) {
		n := copy(b, f.p.header[f.pos:])
		f.pos += int64(n)
		return n, nil
	}
	if f.file == nil && now().Sub(f.tried) >= storedEvery {
		f.tried = now()
		f.file = f.stored()
	}
	if f.file != nil {
		return f.fromStored(b)
	}
	k := sort.Search(len(f.p.ext), func(k int) bool { return f.p.ext[k].at > f.pos }) - 1
	e := f.p.ext[k]
	in := f.pos - e.at
	b = b[:min(int64(len(b)), e.n-in)]
	if lv := f.live(); lv != nil {
		if n, ok, err := lv.read(f.ctx, b, f.pos); ok {
			f.pos += int64(n)
			return n, err
		}
	}
	var n int
	var err error
	if e.src < 0 {
		n = copy(b, f.p.inits[-1-e.src][e.off+in:])
	} else {
		n, err = f.fromOrigin(e.src, e.off+in, b)
	}
	f.pos += int64(n)
	return n, err
}

// fromStored reads at pos from the stored file.
func (f *instantFile) fromStored(b []byte) (int, error) {
	if _, err := f.file.Seek(f.pos, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := f.file.Read(b[:min(int64(len(b)), f.p.size-f.pos)])
	f.pos += int64(n)
	if errors.Is(err, io.EOF) && f.pos < f.p.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// fromOrigin reads bytes of segment src from offset off, through an open read at or a
// little before off, else a new one to the end of what the file takes of the segment.
func (f *instantFile) fromOrigin(src int32, off int64, b []byte) (int, error) {
	var s *originStream
	for i, o := range f.reads {
		if o.src == src && o.at <= off && off-o.at <= maxSkip {
			s = o
			f.reads = append(append(f.reads[:i:i], f.reads[i+1:]...), o)
			break
		}
	}
	if s == nil {
		rc, err := f.p.client.OpenRange(f.ctx, f.p.segs[src], off, f.p.ends[src]-off)
		if err != nil {
			return 0, err
		}
		s = &originStream{src: src, at: off, rc: rc}
		if len(f.reads) == maxStreams {
			f.reads[0].rc.Close()
			f.reads = f.reads[1:]
		}
		f.reads = append(f.reads, s)
	}
	if skip := off - s.at; skip > 0 {
		n, err := io.CopyN(io.Discard, s.rc, skip)
		s.at += n
		if err != nil {
			f.drop(s)
			return 0, err
		}
	}
	n, err := s.rc.Read(b)
	s.at += int64(n)
	if errors.Is(err, io.EOF) {
		err = nil
		if n == 0 {
			err = io.ErrUnexpectedEOF // the plan says the segment goes on
		}
	}
	if err != nil {
		f.drop(s)
	}
	return n, err
}

// drop closes an origin read and forgets it.
func (f *instantFile) drop(s *originStream) {
	s.rc.Close()
	for i, o := range f.reads {
		if o == s {
			f.reads = append(f.reads[:i], f.reads[i+1:]...)
			return
		}
	}
}

func (f *instantFile) Seek(off int64, whence int) (int64, error) {
	pos, err := mp4.SeekPosition(f.pos, f.p.size, off, whence)
	if err == nil {
		f.pos = pos
	}
	return pos, err
}

// Close ends the origin reads and releases the stored file.
func (f *instantFile) Close() error {
	for _, s := range f.reads {
		s.rc.Close()
	}
	f.reads = nil
	if f.file != nil {
		return f.file.Close()
	}
	return nil
}

// Stat describes the planned file.
func (f *instantFile) Stat() (os.FileInfo, error) { return instantInfo{f.p.size}, nil }

// instantInfo is the os.FileInfo of a planned file.
type instantInfo struct{ size int64 }

func (i instantInfo) Name() string       { return "instant.mp4" }
func (i instantInfo) Size() int64        { return i.size }
func (i instantInfo) Mode() fs.FileMode  { return 0o444 }
func (i instantInfo) ModTime() time.Time { return time.Time{} }
func (i instantInfo) IsDir() bool        { return false }
func (i instantInfo) Sys() any           { return nil }
