package hls

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/sync/errgroup"
)

// DefaultConcurrency is used by Fetch when concurrency < 1.
const DefaultConcurrency = 12

// SegmentBody is the body Fetch hands fn (a *segReader): the segment's bytes,
// and the init section that applies to it.
type SegmentBody interface {
	io.Reader
	// Init returns the bytes of the segment's init section (EXT-X-MAP, as
	// FetchMap gives them: shared, not to be modified), the error FetchMap
	// gives when it has none, or the error fetching it failed with (an *OriginError, ErrDecrypt
	// wrapped, ctx's cause). Fetch fetches each Map once, before the first
	// segment using it; its failure does not end the Fetch: fn reports it.
	Init() ([]byte, error)
}

// Fetch downloads segs with up to concurrency requests at once (over the
// HTTP client's kept-alive connections), ahead of the consumer, and calls fn
// for each segment strictly in order, i being the index in segs. A segment
// larger than 1 MiB (defaultPartSize) is fetched as several byte ranges (Range
// requests, sub-ranges of its EXT-X-BYTERANGE when it has one) in parallel;
// its first request tells its size (Content-Range), after which the others
// go out. fn's reader yields the segment's parts in order as each completes,
// so fn can start before the segment is complete; it reads until io.EOF, and
// each part is dropped once read. It is valid only during the call; what fn leaves unread is read (and checked)
// after it returns. The body is the segment's byte range when it has one,
// and is decrypted (AES-128-CBC, streaming) when the segment has a Key (its
// key fetched once, on first use); it never includes the init section, which
// fn gets from it as a SegmentBody. fn is called once the segment's first part has arrived.
// Segments may come from several Sources of one Resolve (video
// and audio interleaved). An origin that answers a Range request with 200 is
// read through that one response, at most a part ahead of fn.
//
// At most concurrency requests are in flight, at most 1.5 × concurrency parts
// (each at most 1 MiB) are in flight or fetched and not yet read, and the bytes
// fetched and not yet read stay within defaultFetchBudget (8 MiB; the part fn waits for
// may pass it), so memory stays bounded whatever len(segs), the segments' size
// and concurrency. Each byte range is requested once when nothing fails; a failed
// part is requested again alone, with the retries described at
// Client.Retries.
//
// The first error (a segment's *OriginError, a decryption error, fn's error,
// or ctx's) cancels the outstanding requests and is returned once they have
// stopped; fn is not called after that. A segment failure is reported as
// soon as it is known, even when earlier segments have not been delivered
// yet: fn's reader returns an error then, and Fetch returns the segment's.
func (c *Client) Fetch(ctx context.Context, segs []Segment, concurrency int, fn func(i int, body io.Reader) error) error {
	if concurrency < 1 {
		concurrency = DefaultConcurrency
	}
	if len(segs) == 0 {
		return nil
	}

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(cctx)
	f := &fetcher{c: c, ctx: gctx, cancel: cancel, g: g, segs: segs, conc: concurrency,
		partSize: cmp.Or(c.tune.partSize, defaultPartSize), blockSize: cmp.Or(c.tune.blockSize, defaultBlockSize),
		budget: cmp.Or(c.tune.fetchBudget, defaultFetchBudget), maps: map[*Map]*mapLoad{}}
	f.cond = sync.NewCond(&f.mu)
	f.st = make([]*segState, len(segs))
	for i := range segs {
		s := &segState{i: i, seg: &segs[i], rlen: -1, size: -1}
		if r := segs[i].Range; r != nil {
			s.base, s.rlen = r.Offset, r.Length
		}
		f.st[i] = s
	}
	stop := context.AfterFunc(gctx, func() {
		f.mu.Lock()
		f.cond.Broadcast()
		f.mu.Unlock()
	})
	defer stop()
	g.Go(f.dispatch)

	var consumerErr error
	readFailed := false
	delivered := 0
	for i := range segs {
		if !f.started(f.st[i]) {
			break
		}
		r := &segReader{f: f, s: f.st[i]}
		err := fn(i, r)
		if err == nil {
			// Read the rest: the whole segment is fetched and checked.
			_, err = io.Copy(io.Discard, struct{ io.Reader }{r})
		}
		f.mu.Lock()
		s := f.st[i]
		s.done = true
		for _, p := range s.parts {
			if !p.passed {
				p.passed = true
				if !p.handoff {
					f.held--
				}
			}
			if p.done {
				f.drop(p)
			}
		}
		s.parts = nil
		f.cur = i + 1
		f.cond.Broadcast()
		f.mu.Unlock()
		if err != nil {
			consumerErr, readFailed = err, r.failed
			break
		}
		delivered++
	}

	// Stop everything still running and wait for it, so that no request
	// outlives the call.
	cancel()
	err := g.Wait()
	switch {
	case f.streamErr != nil:
		return f.streamErr
	case consumerErr != nil && !readFailed:
		return consumerErr
	case err != nil:
		return err
	case consumerErr != nil && ctx.Err() == nil:
		return consumerErr
	case delivered == len(segs):
		return nil
	}
	// ctx ended before any goroutine noticed it.
	return context.Cause(ctx)
}

var errNoMap = errors.New("no init section (EXT-X-MAP) given")

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
		return nil, errNoMap
	}
	load := func() ([]byte, error) {
		var buf bytes.Buffer
		// Its validator is kept with the bytes, for the callers that share them.
		cc := *c
		cc.Validators = NewValidators()
		if _, err := cc.getRange(ctx, m.URL, m.hosts, m.Range, &buf, c.Limits.mapSize()); err != nil {
			return nil, err
		}
		m.validator = cc.Validators.Of(m.URL)
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
	var b []byte
	var err error
	if m.data == nil { // a Map not made by Resolve: no cache
		b, err = load()
	} else {
		b, err = m.data.get(ctx, load)
	}
	if err == nil {
		c.Validators.adopt(m.URL, m.validator)
	}
	return b, err
}
