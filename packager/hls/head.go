package hls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Reading segment heads (docs/instant.md): an fMP4 segment is indexed from its first
// bytes, its moofs, without its media data. A head is read with Range requests through
// the same retry loop and answer checks (checkRange) as every segment; it grows when
// the indexer asks for more.
const (
	// FirstHeadSize is the first read of a head, and the least IndexSpans reads: a
	// moof of 6 s of 60 fps video with its audio is ~10 KB.
	FirstHeadSize = 16 << 10
	// MaxHeadSize bounds a head: the fMP4 demuxer's bound on a moof (4 MiB) and room
	// for the boxes in front of it.
	MaxHeadSize = 4<<20 + 64<<10
)

// ReadHead reads the first n bytes of segment s (all of them when it is shorter) with
// one Range request, retried as any segment's, and returns them with the segment's
// size in bytes. The size comes from the playlist (EXT-X-BYTERANGE) or the answer
// (Content-Range's total, Content-Length of a 200, a 206 shorter than asked); an
// answer that does not tell it is an error. Encrypted segments are refused.
func (c *Client) ReadHead(ctx context.Context, s Segment, n int64) (head []byte, size int64, err error) {
	return c.readHead(ctx, s, nil, n)
}

// readHead reads the segment's bytes len(have)..n-1 after have, its first bytes.
func (c *Client) readHead(ctx context.Context, s Segment, have []byte, n int64) ([]byte, int64, error) {
	if s.Key != nil {
		return nil, 0, errors.New("hls: the head of an encrypted segment")
	}
	if n <= 0 {
		return nil, 0, fmt.Errorf("hls: a head of %d bytes", n)
	}
	limit := c.Limits.segmentSize()
	if s.Range != nil {
		size := s.Range.Length
		from := int64(len(have))
		n = min(n, size)
		if n <= from {
			return have[:n], size, nil
		}
		b, err := c.readSpan(ctx, s, &ByteRange{Offset: s.Range.Offset + from, Length: n - from}, limit)
		return append(have, b...), size, err
	}
	// A whole resource: the first read learns its size.
	if have == nil {
		return c.readFirst(ctx, s, n, limit)
	}
	return nil, 0, errors.New("hls: a head grown without its size")
}

// readSpan reads rng of the segment's resource, an exact Range request.
func (c *Client) readSpan(ctx context.Context, s Segment, rng *ByteRange, limit sizeLimit) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := c.getRange(ctx, s.URL, s.hosts, rng, &buf, limit); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// readFirst reads the first n bytes of a segment that is a whole resource, and its
// size: a Range request for 0..n-1 that the answer may end earlier (the resource's
// end).
func (c *Client) readFirst(ctx context.Context, s Segment, n int64, limit sizeLimit) ([]byte, int64, error) {
	u := s.URL
	if err := checkHost(s.hosts, u, nil); err != nil {
		return nil, 0, err
	}
	hc := s.hosts.httpClient(c.httpClient(), u)
	var head []byte
	var size int64
	err := c.retry(ctx, u, nil, func() (bool, error) {
		var err error
		head, size, err = c.readFirstOnce(ctx, hc, u, n, limit)
		return false, err
	})
	if err != nil {
		return nil, 0, err
	}
	return head, size, nil
}

// readFirstOnce is one attempt of readFirst.
func (c *Client) readFirstOnce(ctx context.Context, hc *http.Client, u *url.URL, n int64, limit sizeLimit) ([]byte, int64, error) {
	k, err := c.send(ctx, hc, u, (&ByteRange{Offset: 0, Length: n}).String())
	if err != nil {
		return nil, 0, err
	}
	defer k.close()
	if err := k.statusErr(); err != nil {
		return nil, 0, err
	}
	a, err := checkRange(k.resp, rangeReq{first: 0, last: n - 1})
	if err != nil {
		return nil, 0, err
	}
	size := int64(-1)
	switch {
	case a.whole:
		size = a.length
	case a.total >= 0:
		size = a.total
	}
	if size > limit.n {
		return nil, 0, limit.tooLarge(size)
	}
	want := n + 1 // one more byte shows a 206 body too long, or a 200 longer than n
	if !a.whole && a.last >= 0 {
		want = a.last + 2
	}
	var buf bytes.Buffer
	growExact(&buf, int(min(want, n+1)))
	got, err := buf.ReadFrom(io.LimitReader(k.body(), want))
	if err != nil {
		return nil, 0, k.fail(err)
	}
	b := buf.Bytes()
	switch {
	case !a.whole && a.last >= 0 && got < a.last+1:
		return nil, 0, a.cut(got)
	case !a.whole && a.last >= 0 && got > a.last+1:
		return nil, 0, a.excess()
	case !a.whole && got > n:
		return nil, 0, a.excess()
	case a.whole && size >= 0 && got < min(n, size):
		return nil, 0, a.cut(got)
	}
	if got > n {
		b = b[:n]
	}
	if size < 0 && got < n {
		size = got // the body ended before n: the resource's end
	}
	if size < 0 {
		return nil, 0, permanent(errors.New("the answer to a Range request for a segment's head does not tell the segment's size"))
	}
	if int64(len(b)) > size {
		return nil, 0, permanent(fmt.Errorf("answered %d bytes of a %d-byte resource", len(b), size))
	}
	return b, size, nil
}

// maxSpans bounds the reads IndexSpans makes of one segment: a segment of hundreds of
// fragments is packaged rather than indexed.
const maxSpans = 256

// IndexSpans reads the bytes of segment s (size bytes, as ReadHead told) that index
// asks for, until it needs no more: index returns the range it needs next (n 0: done),
// of which at least first bytes (0: FirstHeadSize; within the segment) are read with one
// Range request through the retry loop, and handed to add. An indexer that walks a
// segment's boxes so fetches each moof of a segment of several fragments by its own
// range (fmp4.Pieces). It returns how many bytes it read; past most bytes (0:
// MaxHeadSize) or maxSpans reads it fails, and the caller packages the segment rather
// than indexing it.
func (c *Client) IndexSpans(ctx context.Context, s Segment, size, first, most int64, index func() (off, n int64, err error), add func(off int64, b []byte)) (int64, error) {
	if first <= 0 {
		first = FirstHeadSize
	}
	if most <= 0 {
		most = MaxHeadSize
	}
	var read int64
	for spans := 0; ; spans++ {
		off, n, err := index()
		if err != nil || n == 0 {
			return read, err
		}
		if off < 0 || n < 0 || off+n > size {
			return read, fmt.Errorf("hls: asked for bytes %d+%d of a %d-byte segment", off, n, size)
		}
		n = max(n, min(first, size-off))
		if spans >= maxSpans || read+n > most {
			return read, fmt.Errorf("hls: indexing a segment needs more than %d reads or %d KiB", maxSpans, most>>10)
		}
		rng := &ByteRange{Offset: off, Length: n}
		if s.Range != nil {
			rng.Offset += s.Range.Offset
		}
		b, err := c.readSpan(ctx, s, rng, c.Limits.segmentSize())
		if err != nil {
			return read, err
		}
		read += int64(len(b))
		add(off, b)
	}
}
