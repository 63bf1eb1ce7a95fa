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
	// FirstHeadSize is the first read of a head: enough for the moof of most segments.
	FirstHeadSize = 64 << 10
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

// IndexHead reads segment s's head and hands it to index with the segment's size until
// index needs no more: index returns how many leading bytes it needs (0: done). The
// head starts at first bytes (0: FirstHeadSize) and grows by doubling, or to what index asks, reading
// only the bytes it lacks, up to MaxHeadSize. It returns how many bytes of the segment
// were read.
func (c *Client) IndexHead(ctx context.Context, s Segment, first int64, index func(head []byte, size int64) (need int64, err error)) (int64, error) {
	if first <= 0 {
		first = FirstHeadSize
	}
	head, size, err := c.ReadHead(ctx, s, min(first, MaxHeadSize))
	if err != nil {
		return 0, err
	}
	return c.IndexHeadFrom(ctx, s, head, size, index)
}

// IndexHeadFrom is IndexHead from a head already read (ReadHead's head and size), so
// that the first reads of many segments can go out at once.
func (c *Client) IndexHeadFrom(ctx context.Context, s Segment, head []byte, size int64, index func(head []byte, size int64) (need int64, err error)) (int64, error) {
	for {
		need, err := index(head, size)
		if err != nil || need == 0 {
			return int64(len(head)), err
		}
		n := int64(len(head))
		switch {
		case need <= n || need > size:
			return n, fmt.Errorf("hls: asked for a head of %d bytes with %d of %d", need, n, size)
		case need > MaxHeadSize:
			return n, fmt.Errorf("hls: a segment head of more than %d MiB (%d bytes asked)", MaxHeadSize>>20, need)
		}
		n = min(max(need, 2*n), size, MaxHeadSize)
		if s.Range == nil {
			// The size is known now: the rest is an exact range.
			b, err := c.readSpan(ctx, s, &ByteRange{Offset: int64(len(head)), Length: n - int64(len(head))}, c.Limits.segmentSize())
			if err != nil {
				return int64(len(head)), err
			}
			head = append(head, b...)
		} else {
			grown, _, err := c.readHead(ctx, s, head, n)
			if err != nil {
				return int64(len(head)), err
			}
			head = grown
		}
	}
}
