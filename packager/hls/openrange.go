package hls

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// OpenRange returns a reader of the n bytes of segment s from offset off (in the
// segment: its EXT-X-BYTERANGE offset is added), streamed from one Range request as the
// caller reads, for a server that sends a file while its media are fetched
// (docs/instant.md). Requests go through the retry loop and answer checks of every
// segment request; a body that breaks off is asked for again from where it stopped, as
// long as each new request brings bytes (else after Retries more failures). A failure
// that remains is returned by Read after the bytes that came before it: the caller cuts
// its response there, it never gets other bytes. When the Client's Validators has a
// validator for the resource, an answer with another one fails: the segment changed
// since it was indexed. Encrypted segments are refused.
func (c *Client) OpenRange(ctx context.Context, s Segment, off, n int64) (io.ReadCloser, error) {
	if s.Key != nil {
		return nil, errors.New("hls: a range of an encrypted segment")
	}
	base := int64(0)
	if s.Range != nil {
		if off < 0 || n <= 0 || off+n > s.Range.Length {
			return nil, fmt.Errorf("hls: bytes %d-%d of a %d-byte segment", off, off+n-1, s.Range.Length)
		}
		base = s.Range.Offset
	} else if off < 0 || n <= 0 {
		return nil, fmt.Errorf("hls: bytes %d-%d of a segment", off, off+n-1)
	}
	if err := checkHost(s.hosts, s.URL, s.Range); err != nil {
		return nil, err
	}
	return &rangeStream{c: c, ctx: ctx, u: s.URL, hc: s.hosts.httpClient(c.httpClient(), s.URL),
		next: base + off, end: base + off + n}, nil
}

// rangeStream reads bytes next..end-1 of the resource at u (OpenRange).
type rangeStream struct {
	c    *Client
	ctx  context.Context
	u    *url.URL
	hc   *http.Client
	next int64 // the next byte to read, absolute
	end  int64
	k    *call     // the answer being read; nil before the first Read and after a failure
	body io.Reader // k's body from next on
	cuts int       // bodies that broke off in a row without bringing a byte
}

func (r *rangeStream) Read(p []byte) (int, error) {
	for {
		if r.next >= r.end {
			return 0, io.EOF
		}
		if r.body == nil {
			if err := r.open(); err != nil {
				return 0, err
			}
		}
		n, err := r.body.Read(p)
		r.next += int64(n)
		if n > 0 {
			r.cuts = 0
		}
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, io.EOF) && r.next >= r.end:
			return n, nil // the next Read says io.EOF
		case errors.Is(err, io.EOF):
			err = io.ErrUnexpectedEOF
		}
		err = r.k.fail(err)
		r.k.close()
		r.k, r.body = nil, nil
		rng := &ByteRange{Offset: r.next, Length: r.end - r.next}
		if r.ctx.Err() != nil {
			return n, context.Cause(r.ctx)
		}
		if r.cuts++; r.cuts > r.c.retries() {
			return n, &OriginError{URL: describeResource(r.u, rng), Attempts: r.cuts, Err: describeTransport(err)}
		}
		if n > 0 {
			return n, nil
		}
		r.c.logRetry(r.u, rng, r.cuts-1, 0, err)
	}
}

// open sends the request for next..end-1, through the retry loop.
func (r *rangeStream) open() error {
	rng := &ByteRange{Offset: r.next, Length: r.end - r.next}
	return r.c.retry(r.ctx, r.u, rng, func() (bool, error) {
		k, err := r.c.send(r.ctx, r.hc, r.u, rng.String())
		if err != nil {
			return false, err
		}
		if err := k.statusErr(); err != nil {
			k.close()
			return false, err
		}
		if k.was != "" && k.validator != "" && k.validator != k.was {
			k.close()
			return false, permanent(errors.New("the segment changed on the origin since it was indexed (another ETag or Last-Modified)"))
		}
		a, err := checkRange(k.resp, rangeReq{first: rng.Offset, last: rng.Offset + rng.Length - 1, exact: true, need: rng})
		if err != nil {
			k.close()
			return false, err
		}
		body := k.body()
		if a.whole {
			// The server ignored Range: skip to the range.
			if skipped, err := io.CopyN(io.Discard, body, rng.Offset); err != nil {
				k.close()
				if err == io.EOF {
					return false, a.cut(skipped)
				}
				return false, k.fail(err)
			}
		}
		r.k, r.body = k, io.LimitReader(body, rng.Length)
		return false, nil
	})
}

// Close ends the request being read.
func (r *rangeStream) Close() error {
	if r.k != nil {
		r.k.close()
		r.k, r.body = nil, nil
	}
	r.next = r.end
	return nil
}
