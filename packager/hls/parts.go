package hls

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// partSize is the most bytes one request of Fetch asks for: a segment larger
// than that is fetched as several byte ranges (Range requests), up to
// concurrency of them in flight across the segments ahead, so that a distant
// origin keeps concurrency connections busy whatever the segments' size.
// 1 MiB: at 50 Mb/s per connection a part takes ~170 ms, so 40 ms of latency
// per response costs ~20% of a connection's rate; smaller parts pay the
// latency more often, larger ones leave fewer parts in flight for the same
// memory. It is a multiple of the AES block size (16), which streaming
// decryption needs. A variable so tests can shrink it.
var partSize = 1 << 20

// A part is held in blocks of blockSize bytes, taken as its bytes arrive and given
// back as the reader goes past them, so that memory follows the bytes fetched and not
// yet read, not the parts in flight (each partly filled on a distant origin). At most
// fetchBudget bytes are held so (the part the reader waits for may pass it): a request
// that would go beyond waits, not reading its response, until the reader gives some
// back. Both are multiples of the AES block size; variables so tests can shrink them.
var (
	blockSize   = 64 << 10
	fetchBudget = 8 << 20
)

var blockPool sync.Pool // *[]byte of blockSize

func getBlock() *[]byte {
	if b, ok := blockPool.Get().(*[]byte); ok && len(*b) == blockSize {
		return b
	}
	b := make([]byte, blockSize)
	return &b
}

// errNoRange: a segment's first Range request was answered 416; it is asked
// for again without a Range header.
var errNoRange = errors.New("416 to a Range request")

// fetcher is the state of one Fetch.
type fetcher struct {
	c      *Client
	ctx    context.Context
	cancel context.CancelFunc
	g      *errgroup.Group
	segs   []Segment
	st     []*segState

	mu        sync.Mutex
	cond      *sync.Cond
	conc      int   // most requests in flight
	inflight  int   // requests in flight (a stream waiting for the reader excluded)
	held      int   // parts issued and not yet read through
	used      int   // bytes of the blocks held
	cur       int   // the segment the consumer is on
	streamErr error // a decryption error found by the reader
}

// segState is the fetch state of one segment.
type segState struct {
	i      int
	seg    *Segment
	base   int64 // absolute offset of the segment's first byte
	rlen   int64 // length of the segment's byte range, -1 when it has none
	size   int64 // the segment's size once known and fetched in fixed parts, else -1
	next   int64 // offset of the next fixed part to issue
	stream bool  // fetched by one producer, a response at a time (no Range support or size unknown)
	final  bool  // no part will be added to parts
	parts  []*part

	block cipher.Block // decryption key, once loaded
	prev  [16]byte     // cipher block before the next bytes to decrypt
	done  bool         // the consumer is done with the segment
}

// part is a byte range of a segment, filled by its producer while the
// consumer reads it.
type part struct {
	off     int64     // offset in the segment
	n       int       // bytes the part holds when complete, -1: up to partSize (stream)
	blocks  []*[]byte // holding its bytes from the start; nil once read
	filled  int       // bytes received
	done    bool      // filled is final
	handoff bool      // its slot passes to the part after it (stream)
	passed  bool      // the reader has read it through
	drained bool      // the reader has read it but for a held-back last block
	dec     int       // bytes decrypted in place
	plain   int       // bytes readable
}

func (p *part) cap() int {
	if p.n >= 0 {
		return p.n
	}
	return partSize
}

// dispatch issues the parts: the first of each segment in order, and the
// others of a segment once its first answer told its size, lowest segment
// first, while fewer than conc requests are in flight and fewer than maxHeld
// parts are held (issued and not yet read through); first parts only while
// fewer than conc are held, so that the parts of the segments the reader is
// about to need can always go out in parallel.
func (f *fetcher) dispatch() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	probe := 0 // next segment whose first part to issue
	for {
		for f.ctx.Err() == nil && (f.inflight >= f.conc || f.held >= f.maxHeld()) {
			f.cond.Wait()
		}
		if f.ctx.Err() != nil {
			return nil
		}
		var s *segState
		var p *part
		for i := f.cur; i < len(f.segs) && i <= probe; i++ {
			if i == probe {
				if f.held >= f.conc {
					break // first parts leave room for the parts after them
				}
				if f.segs[i].URL == nil {
					return fmt.Errorf("segment %d: %w", i, errors.New("segment has no URL"))
				}
				s = f.st[i]
				n := partSize
				if s.rlen >= 0 && s.rlen < int64(n) {
					n = int(s.rlen)
				}
				p = &part{n: n}
				probe++
				break
			}
			if t := f.st[i]; !t.done && !t.stream && t.size >= 0 && t.next < t.size {
				s = t
				p = &part{off: t.next, n: int(min(int64(partSize), t.size-t.next))}
				t.next += int64(p.n)
				t.final = t.next >= t.size
				break
			}
		}
		if p == nil {
			f.cond.Wait()
			continue
		}
		f.inflight++
		f.held++
		s.parts = append(s.parts, p)
		f.g.Go(func() error {
			defer func() {
				f.mu.Lock()
				f.inflight--
				f.cond.Broadcast()
				f.mu.Unlock()
			}()
			return f.produce(s, p)
		})
	}
}

// produce fetches part p of s (and, in stream mode, the parts after it).
func (f *fetcher) produce(s *segState, p *part) error {
	c := f.c
	seg := s.seg
	if seg.hosts != nil && !seg.hosts.allows(seg.URL) {
		return &OriginError{URL: describeResource(seg.URL, seg.Range), Attempts: 0,
			Err: &forbiddenError{fmt.Sprintf("host not allowed: %s is neither on the origin's host (%s) nor in allowed_hosts", RedactURL(seg.URL), seg.hosts.originName())}}
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
	retries := c.retries()
	hc := seg.hosts.httpClient(c.httpClient(), seg.URL)
	noRange := false
	for attempt := 0; ; attempt++ {
		cur, done, err := f.attempt(hc, s, p, noRange)
		p = cur
		if err == nil {
			if done {
				return nil
			}
			attempt = -1 // a new request (stream mode continues)
			continue
		}
		if f.ctx.Err() != nil {
			return context.Cause(f.ctx)
		}
		if err == errNoRange && !noRange {
			noRange = true
			attempt--
			continue
		}
		if !transient(err) || attempt >= retries {
			oe := &OriginError{URL: describeResource(seg.URL, seg.Range), Attempts: attempt + 1}
			var se *statusError
			if errors.As(err, &se) {
				oe.Status = se.code
			} else {
				oe.Err = describeTransport(err)
			}
			return oe
		}
		if err := sleep(f.ctx, retryDelay(attempt, err)); err != nil {
			return err
		}
	}
}

// attempt makes one request for part p (from its first byte: bytes already
// received are skipped) and, in stream mode, for what follows it. It returns
// the part the next request starts at, and whether the job is done.
func (f *fetcher) attempt(hc *http.Client, s *segState, p *part, noRange bool) (*part, bool, error) {
	c := f.c
	lim := c.Limits.segmentSize()
	if s.rlen > lim.n {
		return p, false, lim.tooLarge(s.rlen)
	}
	// A part is read only once complete: a retry fetches it whole again.
	f.mu.Lock()
	p.filled = 0
	got := 0
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
	// exact: the answer must be the range asked for.
	exact := to >= 0 && (s.rlen >= 0 || size >= 0)

	actx, cancel := context.WithCancelCause(f.ctx)
	defer cancel(nil)
	req, err := c.newRequest(actx, s.seg.URL)
	if err != nil {
		return p, false, err
	}
	if !noRange {
		if to >= 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", s.base+from, s.base+to))
		} else {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", s.base+from))
		}
	}
	stall := c.stallTimeout()
	watchdog := time.AfterFunc(stall, func() { cancel(&stallError{timeout: stall.String()}) })
	defer watchdog.Stop()
	fail := func(err error) (*part, bool, error) {
		if cause := context.Cause(actx); f.ctx.Err() == nil && cause != nil {
			return p, false, cause
		}
		return p, false, err
	}

	resp, err := hc.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && s.rlen < 0 {
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		if probe && got == 0 {
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
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		return p, false, &statusError{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	}

	skip := int64(got)      // bytes of the body to discard before p's unfilled bytes
	end := to               // last byte of this response, segment-relative; -1: unknown
	reqLen := to - from + 1 // bytes asked for, when to >= 0
	var learned int64 = -1  // the segment's size, learned from this answer
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if cr := resp.Header.Get("Content-Range"); cr != "" {
			first, last, total, ok := parseContentRangeTotal(cr)
			if !ok {
				return p, false, permanent(fmt.Errorf("answered 206 with an unreadable Content-Range %q", truncate(cr, 60)))
			}
			bad := first != s.base+from
			if to >= 0 {
				if exact {
					bad = bad || last != s.base+to
				} else {
					bad = bad || last > s.base+to || total >= 0 && last != min(s.base+to, total-1)
				}
			}
			if bad {
				if to >= 0 {
					return p, false, permanent(fmt.Errorf("answered 206 with bytes %d-%d for the requested %d-%d", first, last, s.base+from, s.base+to))
				}
				return p, false, permanent(fmt.Errorf("answered 206 with bytes %d-%d for the requested %d-", first, last, s.base+from))
			}
			if resp.ContentLength >= 0 && resp.ContentLength != last-first+1 {
				return p, false, permanent(fmt.Errorf("answered 206 with %d bytes for a %d-byte range", resp.ContentLength, last-first+1))
			}
			end = last - s.base
			if s.rlen < 0 {
				if total >= 0 {
					learned = total
				} else if to >= 0 && last < s.base+to {
					learned = last + 1
				}
			}
		} else if exact || (to >= 0 && resp.ContentLength > reqLen) {
			if resp.ContentLength >= 0 && resp.ContentLength != reqLen {
				return p, false, permanent(fmt.Errorf("answered 206 with %d bytes for a %d-byte range", resp.ContentLength, reqLen))
			}
		} else if resp.ContentLength >= 0 {
			end = from + resp.ContentLength - 1
			if to >= 0 && resp.ContentLength < reqLen {
				learned = from + resp.ContentLength
			}
		} else {
			end = -1 // read to EOF (probe: up to the part's end)
		}
		if probe && s.rlen >= 0 {
			learned = s.rlen
		}
	case http.StatusOK:
		// The server ignored Range: skip to the bytes wanted.
		skip += s.base + from
		if s.rlen >= 0 {
			if resp.ContentLength >= 0 && resp.ContentLength < s.base+s.rlen {
				return p, false, permanent(fmt.Errorf("the resource is %d bytes, shorter than the range %d-%d", resp.ContentLength, s.base, s.base+s.rlen-1))
			}
		} else if resp.ContentLength >= 0 {
			if resp.ContentLength > lim.n {
				return p, false, lim.tooLarge(resp.ContentLength)
			}
			if to < 0 || probe {
				end = resp.ContentLength - 1
			}
		} else if probe {
			end = -1
		}
		if probe {
			stream = true
			if s.rlen >= 0 {
				end = s.rlen - 1
			}
		}
	default:
		return p, false, permanent(fmt.Errorf("answered %d %s to a Range request", resp.StatusCode, http.StatusText(resp.StatusCode)))
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

	body := &progressReader{r: resp.Body, watchdog: watchdog, stall: stall}
	watchdog.Reset(stall)
	if skip > 0 {
		if skipped, err := io.CopyN(io.Discard, body, skip); err != nil {
			if err == io.EOF && resp.ContentLength < 0 && s.rlen >= 0 {
				return p, false, permanent(fmt.Errorf("the resource is %d bytes, shorter than the range %d-%d", skipped, s.base, s.base+s.rlen-1))
			}
			if err == io.EOF {
				return p, false, io.ErrUnexpectedEOF
			}
			return fail(err)
		}
	}
	pos := p.off + int64(got) // next byte, segment-relative
	for end < 0 || pos <= end {
		f.mu.Lock()
		filled := p.filled
		f.mu.Unlock()
		if filled == p.cap() {
			if !stream {
				break
			}
			p = f.handoff(s, p, watchdog, stall)
			filled = 0
		}
		want := p.cap() - filled
		if end >= 0 {
			want = int(min(int64(want), end-pos+1))
		}
		if filled/blockSize == len(p.blocks) {
			if err := f.grow(s, p, watchdog, stall); err != nil {
				return p, false, err
			}
		}
		want = min(want, blockSize-filled%blockSize)
		n, err := body.Read((*p.blocks[filled/blockSize])[filled%blockSize:][:want])
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
			switch {
			case pos > end:
			case resp.StatusCode == http.StatusOK && resp.ContentLength < 0 && s.rlen >= 0:
				return p, false, permanent(fmt.Errorf("the resource is %d bytes, shorter than the range %d-%d", s.base+pos, s.base, s.base+s.rlen-1))
			case resp.StatusCode == http.StatusPartialContent && resp.ContentLength < 0:
				return p, false, permanent(fmt.Errorf("answered 206 with %d bytes for a %d-byte range", pos-from, end-from+1))
			default:
				return p, false, io.ErrUnexpectedEOF
			}
			break
		}
		if err != nil {
			return fail(err)
		}
	}
	if resp.StatusCode == http.StatusPartialContent && resp.ContentLength < 0 && end >= 0 {
		var one [1]byte
		if n, _ := io.ReadFull(body, one[:]); n > 0 {
			return p, false, permanent(fmt.Errorf("answered 206 with more than %d bytes for a %d-byte range", end-from+1, end-from+1))
		}
	}
	if probeOpen && !ended {
		// A full first part of unknown total size: ask for what follows.
		return f.handoff(s, p, watchdog, stall), false, nil
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

// handoff marks the full part p done and waits for the reader to read it
// through (but for a last block it holds back when decrypting), then returns
// the part after it, which takes p's slot.
func (f *fetcher) handoff(s *segState, p *part, watchdog *time.Timer, stall time.Duration) *part {
	watchdog.Stop()
	f.mu.Lock()
	p.handoff, p.done = true, true
	f.cond.Broadcast()
	if !p.passed && !p.drained {
		// Waiting for the reader, this request does not count as in flight,
		// so that the reader's next part can always go out.
		f.inflight--
		f.cond.Broadcast()
		for !p.passed && !p.drained && f.ctx.Err() == nil {
			f.cond.Wait()
		}
		for f.inflight >= f.conc && f.ctx.Err() == nil {
			f.cond.Wait()
		}
		f.inflight++
	}
	q := &part{off: p.off + int64(p.filled), n: -1}
	s.parts = append(s.parts, q)
	f.mu.Unlock()
	watchdog.Reset(stall)
	return q
}

// parseContentRangeTotal reads "bytes first-last/total"; total is -1 for "*".
func parseContentRangeTotal(v string) (first, last, total int64, ok bool) {
	first, last, ok = parseContentRange(v)
	if !ok {
		return 0, 0, 0, false
	}
	_, t, found := strings.Cut(v, "/")
	t = strings.TrimSpace(t)
	if !found || t == "*" {
		return first, last, -1, true
	}
	total, err := strconv.ParseInt(t, 10, 64)
	if err != nil || total <= last {
		return 0, 0, 0, false
	}
	return first, last, total, true
}

// started waits until the first part of s has arrived (or it is known to be
// empty); false when the fetch has stopped first.
func (f *fetcher) started(s *segState) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.ctx.Err() == nil {
		if len(s.parts) > 0 && s.parts[0].done {
			return true
		}
		f.cond.Wait()
	}
	return false
}

// segReader is the body Fetch hands to fn: the segment's parts, decrypted,
// in order as they arrive (each once complete), each dropped once read.
type segReader struct {
	f      *fetcher
	s      *segState
	k      int   // current part
	pos    int   // offset in it
	read   int64 // bytes read
	failed bool  // Read returned an error other than EOF
}

func (r *segReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	f, s := r.f, r.s
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		if r.k < len(s.parts) {
			p := s.parts[r.k]
			if !p.done {
				// wait: parts are read once complete
			} else if s.seg.Key != nil && s.block != nil {
				if err := f.decrypt(s, r.k); err != nil {
					r.failed = true
					return 0, err
				}
			} else if s.seg.Key == nil {
				p.plain = p.filled
			}
			if r.pos < p.plain {
				k, lo := r.pos/blockSize, r.pos%blockSize
				n := copy(b, (*p.blocks[k])[lo:min(blockSize, p.plain-k*blockSize)])
				r.pos += n
				r.read += int64(n)
				if r.pos%blockSize == 0 {
					f.release(p, k) // read through
				}
				return n, nil
			}
			if p.done && (s.seg.Key == nil || p.dec == p.filled && s.block != nil) {
				f.pass(p)
				r.k++
				r.pos = 0
				continue
			}
			if p.done && !p.drained {
				// Read up to its last block, held back until the part after
				// it shows whether it ends the segment.
				p.drained = true
				f.cond.Broadcast()
			}
		} else if s.final {
			return 0, io.EOF
		}
		if f.ctx.Err() != nil {
			r.failed = true
			return 0, context.Cause(f.ctx)
		}
		f.cond.Wait()
	}
}

// SizeHint is at least the number of bytes left to read when the segment's size
// is known (its byte range, or the size its first answer told), else -1. With
// decryption, up to 16 fewer come (the padding).
func (r *segReader) SizeHint() int64 {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	size := r.s.size
	if r.s.rlen >= 0 {
		size = r.s.rlen
	}
	if size < 0 {
		return -1
	}
	return size - r.read
}

// pass is called when the reader has read part p through: p's slot is free
// again (or goes to the part after it), and its blocks too.
func (f *fetcher) pass(p *part) {
	p.passed = true
	if !p.handoff {
		f.held--
	}
	f.drop(p)
	f.cond.Broadcast()
}

// drop gives back every block p still holds.
func (f *fetcher) drop(p *part) {
	for k := range p.blocks {
		f.release(p, k)
	}
	p.blocks = nil
}

// release gives back block k of p.
func (f *fetcher) release(p *part, k int) {
	if b := p.blocks[k]; b != nil {
		blockPool.Put(b)
		p.blocks[k] = nil
		f.used -= blockSize
		f.cond.Broadcast()
	}
}

// grow adds a block to p, once the blocks held leave room for it within
// fetchBudget or p is the part the reader needs next. While it waits, the
// request does not count as in flight and its stall watchdog is stopped.
func (f *fetcher) grow(s *segState, p *part, watchdog *time.Timer, stall time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.used+blockSize > fetchBudget && !f.needed(s, p) {
		watchdog.Stop()
		f.inflight--
		f.cond.Broadcast()
		for f.ctx.Err() == nil && (f.used+blockSize > fetchBudget && !f.needed(s, p) || f.inflight >= f.conc) {
			f.cond.Wait()
		}
		f.inflight++
		watchdog.Reset(stall)
	}
	if err := f.ctx.Err(); err != nil {
		return context.Cause(f.ctx)
	}
	p.blocks = append(p.blocks, getBlock())
	f.used += blockSize
	return nil
}

// needed says whether p is the part the reader reads next: the first of the
// consumer's segment that it has not read through.
func (f *fetcher) needed(s *segState, p *part) bool {
	if s.i != f.cur {
		return false
	}
	for _, q := range s.parts {
		if !q.passed {
			return q == p
		}
	}
	return false
}

// decrypt decrypts in place what has arrived of part k of s (AES-128-CBC,
// each part chained to the one before), holding back the last block until it
// is known whether it ends the segment (PKCS#7 padding).
func (f *fetcher) decrypt(s *segState, k int) error {
	p := s.parts[k]
	var next *part
	if k+1 < len(s.parts) {
		next = s.parts[k+1]
	}
	last, known := false, false
	switch {
	case !p.done:
	case next == nil && s.final:
		last, known = true, true
	case !p.handoff:
		known = true // a fixed part, not the last
	case next != nil && next.filled > 0:
		known = true
	case next != nil && next.done && s.final && k+1 == len(s.parts)-1:
		last, known = true, true // the part after is empty
	}
	if p.filled == 0 && p.off > 0 {
		return nil // an empty tail: the part before held the padding
	}
	total := p.off + int64(p.filled)
	if known && (total == 0 || p.filled%aes.BlockSize != 0) {
		return f.decryptError(s, fmt.Errorf("the encrypted body is %d bytes, not a whole number of 16-byte AES blocks", total))
	}
	end := p.filled
	if !known {
		end = max(p.filled-aes.BlockSize, 0) &^ (aes.BlockSize - 1)
	}
	if end > p.dec {
		var nextIV [16]byte
		copy(nextIV[:], p.bytes(end-aes.BlockSize, end))
		cbc := cipher.NewCBCDecrypter(s.block, s.prev[:])
		for from := p.dec; from < end; {
			b := p.bytes(from, min(end, (from/blockSize+1)*blockSize))
			cbc.CryptBlocks(b, b)
			from += len(b)
		}
		s.prev = nextIV
		p.dec = end
	}
	p.plain = p.dec
	if last && p.dec == p.filled {
		b := p.bytes(p.filled-aes.BlockSize, p.filled) // in one block: both are multiples of 16
		pad := int(b[len(b)-1])
		if pad == 0 || pad > aes.BlockSize {
			return f.decryptError(s, errors.New("bad PKCS#7 padding after AES-128 decryption (wrong key or IV?)"))
		}
		for _, x := range b[len(b)-pad:] {
			if int(x) != pad {
				return f.decryptError(s, errors.New("bad PKCS#7 padding after AES-128 decryption (wrong key or IV?)"))
			}
		}
		p.plain = p.filled - pad
	}
	return nil
}

func (f *fetcher) decryptError(s *segState, err error) error {
	e := fmt.Errorf("%w for segment %s: %v", ErrDecrypt, describeResource(s.seg.URL, s.seg.Range), err)
	if f.streamErr == nil {
		f.streamErr = e
	}
	f.cancel()
	return e
}

// maxHeld is the most parts held at once (in flight, or fetched and not yet
// read through): concurrency and half as many again, so that parts that
// arrive before the one the reader waits for do not stop new requests.
func (f *fetcher) maxHeld() int { return f.conc + (f.conc+1)/2 }

// bytes is p's bytes from, to, which must lie in one block.
func (p *part) bytes(from, to int) []byte {
	k := from / blockSize
	return (*p.blocks[k])[from-k*blockSize : to-k*blockSize]
}
