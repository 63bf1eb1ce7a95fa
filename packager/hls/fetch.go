package hls

import (
	"bytes"
	"context"
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

const maxPooledBuf = 64 << 20

// Fetch downloads segs with up to concurrency requests at once (over the
// HTTP client's kept-alive connections), ahead of the consumer, and calls fn
// for each segment strictly in order, i being the index in segs. fn's reader
// holds the whole segment body (it is a *bytes.Reader, so Len, ReadAt, Seek
// and WriteTo work) and is valid only during the call: its buffer is reused
// afterwards. At most concurrency+1 bodies are held at once (the
// one fn is reading and the ones fetched ahead), so memory stays bounded
// whatever len(segs). Each segment is requested once when nothing fails;
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

	// free holds the buffers not in use: a fixed ring of concurrency+1.
	free := make(chan *bytes.Buffer, concurrency+1)
	for range concurrency + 1 {
		free <- nil // allocated on first use
	}
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
			var buf *bytes.Buffer
			select {
			case buf = <-free:
			case <-gctx.Done():
				return nil
			}
			if buf == nil {
				buf = bufPool.Get().(*bytes.Buffer)
			}
			select {
			case slots <- struct{}{}:
			case <-gctx.Done():
				putBuf(buf)
				return nil
			}
			g.Go(func() error {
				defer func() { <-slots }()
				if segs[i].URL == nil {
					putBuf(buf)
					return fmt.Errorf("segment %d has no URL", i)
				}
				if _, err := c.get(gctx, segs[i].URL, buf, MaxSegmentSize); err != nil {
					putBuf(buf)
					return err
				}
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
		buf.Reset()
		free <- buf // never blocks: the ring has room for every buffer
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
	close(free)
	for buf := range free {
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
