package packager

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

// liveFile is the staging file of a job running here, which instant deliveries of the
// same download read as the job writes it. The mp4.Writer writes the media at
// increasing offsets from the reserve on and the header last, so when the file's
// media start at the reserve (a plan not relocated) the bytes from there up to the
// highest offset written are final.
type liveFile struct {
	st     storage.Staging
	source [32]byte      // sourceDigest of the job's renditions
	stall  time.Duration // liveStall; tests shorten it

	mu      sync.RWMutex
	hi      int64         // the highest offset written
	moved   chan struct{} // closed when hi moves or the file ends
	closed  bool          // the job is done with it: no reads any more
	stalled bool          // a delivery waited liveStall for hi to move, in vain
}

func newLiveFile(st storage.Staging, source [32]byte) *liveFile {
	return &liveFile{st: st, source: source, stall: liveStall, moved: make(chan struct{})}
}

const (
	// liveWait is how far ahead of the job a delivery waits for it rather than reading
	// the origin: about a segment of a high-bitrate video.
	liveWait = 32 << 20
	// liveStall is how long a delivery waits for a job that writes nothing (held up at
	// the origin, or slower than the delivery) before it reads the origin itself.
	liveStall = time.Second
)

// WriteAt writes for the job, and wakes the deliveries waiting for these bytes.
func (l *liveFile) WriteAt(b []byte, off int64) (int, error) {
	n, err := l.st.WriteAt(b, off)
	l.mu.Lock()
	if end := off + int64(n); end > l.hi && !l.closed {
		l.hi, l.stalled = end, false
		close(l.moved)
		l.moved = make(chan struct{})
	}
	l.mu.Unlock()
	return n, err
}

// ReadAt reads for the job (the Writer reads back the media it moves).
func (l *liveFile) ReadAt(b []byte, off int64) (int, error) { return l.st.ReadAt(b, off) }

// Truncate is the staging file's.
func (l *liveFile) Truncate(size int64) error { return l.st.Truncate(size) }

// SyscallConn passes the staging file's descriptor on, so that the Writer still starts
// its write-back early.
func (l *liveFile) SyscallConn() (syscall.RawConn, error) {
	if c, ok := l.st.(syscall.Conn); ok {
		return c.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// end stops the deliveries' reads, waiting for those under way: call it before the
// staging file is committed or discarded.
func (l *liveFile) end() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.moved)
	}
	l.mu.Unlock()
}

// read reads the file's bytes at off into b (a part of them) when the job has written
// them, waiting for the job while it is at most liveWait bytes behind off and writes.
// ok false: read them elsewhere (the job has ended, is too far behind, or stalls).
func (l *liveFile) read(ctx context.Context, b []byte, off int64) (n int, ok bool, err error) {
	var stall *time.Timer
	defer func() {
		if stall != nil {
			stall.Stop()
		}
	}()
	for {
		l.mu.RLock()
		if l.closed {
			l.mu.RUnlock()
			return 0, false, nil
		}
		if off < l.hi {
			n, err := l.st.ReadAt(b[:min(int64(len(b)), l.hi-off)], off)
			l.mu.RUnlock()
			return n, true, err
		}
		if off-l.hi > liveWait || l.stalled {
			l.mu.RUnlock()
			return 0, false, nil
		}
		moved := l.moved
		l.mu.RUnlock()
		if stall == nil {
			stall = time.NewTimer(l.stall)
		} else {
			stall.Reset(l.stall)
		}
		select {
		case <-moved:
		case <-stall.C:
			l.mu.Lock()
			if l.moved == moved {
				l.stalled = true // until it writes again
			}
			l.mu.Unlock()
			return 0, false, nil
		case <-ctx.Done():
			return 0, true, context.Cause(ctx)
		}
	}
}
