package hls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/sync/errgroup"
)

// DefaultConcurrency is used by Fetch when concurrency < 1.
const DefaultConcurrency = 8

// bufPool keeps segment buffers between Fetch calls. Buffers that grew
// beyond maxPooledBuf are left to the garbage collector.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBuf = 16 << 20

// fetchAheadBytes bounds the bytes of segments one Fetch holds (fetched ahead of
// the consumer, or being read by it), on top of the count bound: at least the one
// the consumer reads and the next are fetched whatever their size.
const fetchAheadBytes = 12 << 20

// firstSegmentEstimate is the size assumed for segments in flight before one has
// arrived (about 6 s at 5 Mb/s): it lets the first requests go out together.
const firstSegmentEstimate = 4 << 20

// Fetch downloads segs with up to concurrency requests at once (over the
// HTTP client's kept-alive connections), ahead of the consumer, and calls fn
// for each segment strictly in order, i being the index in segs. fn's reader
// holds the whole segment body (it is a *bytes.Reader, so Len, ReadAt, Seek
// and WriteTo work) and is valid only during the call: its buffer is reused
// afterwards. The body is the segment's byte range when it has one (Range
// request), and is decrypted when the segment has a Key (its key fetched
// once, on first use); it never includes the init section (see FetchMap).
// Segments may come from several Sources of one Resolve (video and audio
// interleaved). At most concurrency+1 bodies are held at once (the
// one fn is reading and the ones fetched ahead), and no more fetches are
// started ahead while those hold about 12 MiB (except the segment after the
// one fn reads), so memory stays bounded whatever len(segs) and the segments'
// size. Each segment is requested once when nothing fails;
// transient faults are retried as described at Client.Retries.
//
// The first error (a segment's *OriginError, fn's error, or ctx's) cancels
// the outstanding requests and is returned once they have stopped; fn is
// not called after that. A segment failure is reported as soon as it is
// known, even when earlier segments have not been delivered yet.
func (c *Client) Fetch(ctx context.Context, segs []Segment, concurrency int, fn func(i int, body io.Reader) error) error {
	if concurrency < 1 {
		concurrency = DefaultConcurrency
	}
	if len(segs) == 0 {
		return nil
	}
	concurrency = min(concurrency, len(segs))

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(cctx)

	// Buffers: at most concurrency+1 in use, reused through free (newest first,
	// so that no more are allocated than are used at once). held counts the
	// bytes (buffer capacity) of the segments started and not yet released by the
	// consumer (an estimate, the largest so far, for those in flight; before any
	// is known, firstSegmentEstimate).
	var (
		mu       sync.Mutex
		cond     = sync.NewCond(&mu)
		free     []*bytes.Buffer
		inUse    int
		held     int64
		est      = int64(firstSegmentEstimate)
		sized    bool // est is a size seen
		consumed int  // segments fn is done with
	)
	stop := context.AfterFunc(gctx, func() {
		mu.Lock()
		cond.Broadcast()
		mu.Unlock()
	})
	defer stop()
	// slots limits the requests in flight.
	slots := make(chan struct{}, concurrency)

	type result struct {
		buf  *bytes.Buffer
		done chan struct{}
	}
	results := make([]result, len(segs))
	for i := range results {
		results[i].done = make(chan struct{})
	}

	// The dispatcher starts the requests in index order, so the segment the
	// consumer waits for is always among the first started.
	g.Go(func() error {
		for i := range segs {
			mu.Lock()
			for gctx.Err() == nil && (inUse > concurrency ||
				(i > consumed+1 && held+est > fetchAheadBytes)) {
				cond.Wait()
			}
			if gctx.Err() != nil {
				mu.Unlock()
				return nil
			}
			var buf *bytes.Buffer
			if n := len(free); n > 0 {
				buf, free = free[n-1], free[:n-1]
			} else {
				buf = bufPool.Get().(*bytes.Buffer)
			}
			inUse++
			reserved := est
			held += reserved
			mu.Unlock()
			select {
			case slots <- struct{}{}:
			case <-gctx.Done():
				putBuf(buf)
				return nil
			}
			g.Go(func() error {
				defer func() { <-slots }()
				if err := c.fetchSegment(gctx, &segs[i], buf); err != nil {
					putBuf(buf)
					if segs[i].URL == nil {
						return fmt.Errorf("segment %d: %w", i, err)
					}
					return err
				}
				mu.Lock()
				n := int64(buf.Cap())
				held += n - reserved
				if !sized || n > est {
					est, sized = n, true
				}
				mu.Unlock()
				results[i].buf = buf
				close(results[i].done)
				return nil
			})
		}
		return nil
	})

	var consumerErr error
	delivered := 0
	for i := range segs {
		select {
		case <-results[i].done:
		case <-gctx.Done():
		}
		if gctx.Err() != nil {
			break
		}
		buf := results[i].buf
		results[i].buf = nil
		err := fn(i, bytes.NewReader(buf.Bytes()))
		mu.Lock()
		held -= int64(buf.Cap())
		buf.Reset()
		free = append(free, buf)
		inUse--
		consumed++
		cond.Broadcast()
		mu.Unlock()
		delivered++
		if err != nil {
			consumerErr = err
			break
		}
	}

	// Stop everything still running and wait for it, so that no request or
	// buffer outlives the call.
	cancel()
	err := g.Wait()
	for _, buf := range free {
		putBuf(buf)
	}
	for i := range results {
		putBuf(results[i].buf)
	}
	switch {
	case consumerErr != nil:
		return consumerErr
	case delivered == len(segs):
		return nil
	case err != nil:
		return err
	}
	// ctx ended before any goroutine noticed it.
	return context.Cause(ctx)
}

func putBuf(b *bytes.Buffer) {
	if b == nil || b.Cap() > maxPooledBuf {
		return
	}
	b.Reset()
	bufPool.Put(b)
}

// fetchSegment fetches seg (its byte range, if any) into buf and decrypts
// it in place when it is encrypted.
func (c *Client) fetchSegment(ctx context.Context, seg *Segment, buf *bytes.Buffer) error {
	if seg.URL == nil {
		return errors.New("segment has no URL")
	}
	if _, err := c.getRange(ctx, seg.URL, seg.hosts, seg.Range, buf, c.Limits.segmentSize()); err != nil {
		return err
	}
	if seg.Key == nil {
		return nil
	}
	key, err := c.loadKey(ctx, seg.Key)
	if err != nil {
		return err
	}
	clear, err := decryptInPlace(buf.Bytes(), key, seg.iv())
	if err != nil {
		return fmt.Errorf("%w for segment %s: %v", ErrDecrypt, describeResource(seg.URL, seg.Range), err)
	}
	buf.Truncate(len(clear))
	return nil
}

// MaxMapSize is the largest init section (EXT-X-MAP) accepted, whatever
// Limits.SegmentSize.
const MaxMapSize = 16 << 20

// FetchMap returns the bytes of the init section m (its byte range, if
// any), decrypted when a key applies to it. It fetches them from the origin
// on the first call, with the Client's headers and retries, and keeps them
// in m: later calls, also concurrent ones, share that one fetch. The
// returned slice is shared too: the caller must not modify it.
//
// Errors: an *OriginError for a failed request (or key request);
// ErrDecrypt, wrapped, when the init section does not decrypt; ctx's cause.
func (c *Client) FetchMap(ctx context.Context, m *Map) ([]byte, error) {
	if m == nil || m.URL == nil {
		return nil, errors.New("no init section (EXT-X-MAP) given")
	}
	load := func() ([]byte, error) {
		var buf bytes.Buffer
		if _, err := c.getRange(ctx, m.URL, m.hosts, m.Range, &buf, c.Limits.mapSize()); err != nil {
			return nil, err
		}
		b := bytes.Clone(buf.Bytes())
		if m.Key == nil {
			return b, nil
		}
		// Some packagers put EXT-X-KEY before EXT-X-MAP but leave the init
		// section clear: keep one that plainly is (an encrypted one starts
		// with "ftyp" or "moov" at byte 4 with probability 2^-31).
		if len(b) >= 8 && (string(b[4:8]) == "ftyp" || string(b[4:8]) == "moov") {
			return b, nil
		}
		key, err := c.loadKey(ctx, m.Key)
		if err != nil {
			return nil, err
		}
		clear, err := decryptInPlace(b, key, m.iv)
		if err != nil {
			return nil, fmt.Errorf("%w for init section %s: %v", ErrDecrypt, describeResource(m.URL, m.Range), err)
		}
		return clear, nil
	}
	if m.data == nil { // a Map not made by Resolve: no cache
		return load()
	}
	return m.data.get(ctx, load)
}
