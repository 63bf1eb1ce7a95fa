package hls

import (
	"context"
	"crypto/aes"
	"fmt"
	"io"
	"net/http"
)

// produce fetches part p of s (and, in stream mode, the parts after it).
func (f *fetcher) produce(s *segState, p *part) error {
	c := f.c
	seg := s.seg
	if err := checkHost(seg.hosts, seg.URL, seg.Range); err != nil {
		return err
	}
	if p.off == 0 && seg.Map != nil {
		// The init section goes to fn with the segment (SegmentBody.Init); a
		// failure is fn's to report, as when it fetched the section itself.
		data, err := f.initSection(seg.Map)
		if f.ctx.Err() != nil {
			return context.Cause(f.ctx)
		}
		f.mu.Lock()
		s.init, s.initErr = data, err
		f.mu.Unlock()
	}
	if p.off == 0 && seg.Key != nil {
		key, err := c.loadKey(f.ctx, seg.Key)
		if err != nil {
			return err
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return err
		}
		f.mu.Lock()
		s.block, s.prev = block, seg.iv()
		f.cond.Broadcast()
		f.mu.Unlock()
	}
	hc := seg.hosts.httpClient(c.httpClient(), seg.URL)
	noRange := false
	return c.retry(f.ctx, seg.URL, seg.Range, func() (bool, error) {
		cur, done, err := f.attempt(hc, s, p, noRange)
		if err == errNoRange && !noRange {
			// Asked again without a Range header, within the same try.
			noRange = true
			cur, done, err = f.attempt(hc, s, cur, noRange)
		}
		p = cur
		return !done, err
	})
}

// attempt makes one request for part p, from its first byte (a part is read
// only once complete, so a retry fetches it whole again) and, in stream
// mode, for what follows it. It returns the part the next request starts
// at, and whether the job is done.
func (f *fetcher) attempt(hc *http.Client, s *segState, p *part, noRange bool) (*part, bool, error) {
	c := f.c
	lim := c.Limits.segmentSize()
	if s.rlen > lim.n {
		return p, false, lim.tooLarge(s.rlen)
	}
	f.mu.Lock()
	p.filled = 0
	stream, size := s.stream, s.size
	f.mu.Unlock()
	probe := p.off == 0 && !stream && size < 0

	from := p.off
	to := int64(-1) // last byte wanted, segment-relative; -1: to the end
	switch {
	case !stream:
		to = p.off + int64(p.n) - 1
	case s.rlen >= 0:
		to = s.rlen - 1
	}
	q := rangeReq{first: s.base + from, last: -1, exact: to >= 0 && (s.rlen >= 0 || size >= 0)}
	hdr := ""
	if to >= 0 {
		q.last = s.base + to
		hdr = fmt.Sprintf("bytes=%d-%d", q.first, q.last)
	} else {
		hdr = fmt.Sprintf("bytes=%d-", q.first)
	}
	if s.rlen >= 0 {
		q.need = &ByteRange{Offset: s.base, Length: s.rlen}
	}
	if noRange {
		hdr = ""
	}
	k, err := c.send(f.ctx, hc, s.seg.URL, hdr)
	if err != nil {
		return p, false, err
	}
	defer k.close()
	resp := k.resp
	if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && s.rlen < 0 {
		k.drain()
		if probe {
			return p, false, errNoRange
		}
		if stream && to < 0 && from > 0 {
			// Asked for what follows a full part: there is nothing more.
			f.mu.Lock()
			s.final, p.done = true, true
			f.cond.Broadcast()
			f.mu.Unlock()
			return p, true, nil
		}
	}
	if err := k.statusErr(); err != nil {
		return p, false, err
	}
	a, err := checkRange(resp, q)
	if err != nil {
		return p, false, err
	}

	var skip int64         // bytes of the body to discard before p's
	end := to              // last byte of this response, segment-relative; -1: unknown
	var learned int64 = -1 // the segment's size, learned from this answer
	if !a.whole {
		if a.last >= 0 {
			end = a.last - s.base
		} else {
			end = -1 // read to EOF (probe: up to the part's end)
		}
		if s.rlen < 0 {
			if a.total >= 0 {
				learned = a.total
			} else if to >= 0 && a.last >= 0 && a.last < q.last {
				learned = a.last + 1
			}
		}
		if probe && s.rlen >= 0 {
			learned = s.rlen
		}
	} else {
		// The server ignored Range: skip to the bytes wanted.
		skip = s.base + from
		if s.rlen < 0 && resp.ContentLength >= 0 {
			if resp.ContentLength > lim.n {
				return p, false, lim.tooLarge(resp.ContentLength)
			}
			if to < 0 || probe {
				end = resp.ContentLength - 1
			}
		} else if s.rlen < 0 && probe {
			end = -1
		}
		if probe {
			stream = true
			if s.rlen >= 0 {
				end = s.rlen - 1
			}
		}
	}
	if learned >= 0 && learned > lim.n {
		return p, false, lim.tooLarge(learned)
	}
	f.mu.Lock()
	if stream && !s.stream {
		s.stream = true
		f.cond.Broadcast()
	}
	if learned >= 0 && probe && !stream {
		s.size = learned
		if int64(p.n) > learned {
			p.n = int(learned)
		}
		s.next = int64(p.n)
		s.final = s.next >= s.size
		f.cond.Broadcast()
	}
	f.mu.Unlock()
	probeOpen, eofOK, ended := false, end < 0, false
	if probe && !stream && learned < 0 {
		// Size unknown: read this part, then ask for the rest.
		stream, probeOpen = true, true
		f.mu.Lock()
		s.stream = true
		f.mu.Unlock()
		if end < 0 || end > int64(p.n)-1 {
			end = int64(p.n) - 1
		}
	}

	body := k.body()
	if skip > 0 {
		if skipped, err := io.CopyN(io.Discard, body, skip); err != nil {
			if err == io.EOF {
				return p, false, a.cut(skipped)
			}
			return p, false, k.fail(err)
		}
	}
	pos := p.off // next byte, segment-relative
	for end < 0 || pos <= end {
		f.mu.Lock()
		filled := p.filled
		f.mu.Unlock()
		if filled == f.partCap(p) {
			if !stream {
				break
			}
			p = f.handoff(s, p, k)
			filled = 0
		}
		want := f.partCap(p) - filled
		if end >= 0 {
			want = int(min(int64(want), end-pos+1))
		}
		if filled/f.blockSize == len(p.blocks) {
			if err := f.grow(s, p, k); err != nil {
				return p, false, err
			}
		}
		want = min(want, f.blockSize-filled%f.blockSize)
		n, err := body.Read((*p.blocks[filled/f.blockSize])[filled%f.blockSize:][:want])
		if n > 0 {
			pos += int64(n)
			f.mu.Lock()
			p.filled += n
			f.mu.Unlock()
			if pos > lim.n {
				return p, false, lim.tooLarge(-1)
			}
		}
		if err == io.EOF {
			if end < 0 || eofOK {
				ended = true
				break
			}
			if pos <= end {
				return p, false, a.cut(s.base + pos)
			}
			break
		}
		if err != nil {
			return p, false, k.fail(err)
		}
	}
	if !a.whole && resp.ContentLength < 0 && end >= 0 {
		var one [1]byte
		if n, _ := io.ReadFull(body, one[:]); n > 0 {
			return p, false, a.excess()
		}
	}
	if probeOpen && !ended {
		// A full first part of unknown total size: ask for what follows.
		return f.handoff(s, p, k), false, nil
	}
	f.mu.Lock()
	p.done = true
	if stream {
		s.final = true
	}
	f.cond.Broadcast()
	f.mu.Unlock()
	return p, true, nil
}
