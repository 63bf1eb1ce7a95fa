package hls

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
)

// defaultPartSize is the most bytes one request of Fetch asks for: a segment larger
// than that is fetched as several byte ranges (Range requests), up to
// concurrency of them in flight across the segments ahead, so that a distant
// origin keeps concurrency connections busy whatever the segments' size.
// 1 MiB: at 50 Mb/s per connection a part takes ~170 ms, so 40 ms of latency
// per response costs ~20% of a connection's rate; smaller parts pay the
// latency more often, larger ones leave fewer parts in flight for the same
// memory. It is a multiple of the AES block size (16), which streaming
// decryption needs. Client.tune.partSize replaces it (tests shrink it).
const defaultPartSize = 1 << 20

// A part is held in blocks of defaultBlockSize bytes, taken as its bytes arrive and given
// back as the reader goes past them, so that memory follows the bytes fetched and not
// yet read, not the parts in flight (each partly filled on a distant origin). At most
// fetchBudget bytes are held so (the part the reader waits for may pass it): a request
// that would go beyond waits, not reading its response, until the reader gives some
// back. Both are multiples of the AES block size; Client.tune replaces them (tests
// shrink them).
const (
	defaultBlockSize   = 64 << 10
	defaultFetchBudget = 8 << 20
)

// blockPool holds blocks of defaultBlockSize; a block of another size (a
// Client.tune's) is not kept.
var blockPool sync.Pool // *[]byte

func getBlock(size int) *[]byte {
	if size == defaultBlockSize {
		if b, ok := blockPool.Get().(*[]byte); ok {
			return b
		}
	}
	b := make([]byte, size)
	return &b
}

func putBlock(b *[]byte) {
	if len(*b) == defaultBlockSize {
		blockPool.Put(b)
	}
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

	partSize, blockSize, budget int // Client.tune or the defaults

	maps map[*Map]*mapLoad // the init sections asked for, each fetched once
}

// mapLoad is the fetch of one init section, shared by the segments using it.
type mapLoad struct {
	done chan struct{} // closed once data and err are set
	data []byte
	err  error
}

// initSection returns the bytes of m (Client.FetchMap), fetched once per
// Fetch (and once per Resolve: FetchMap keeps them in m) whatever the
// segments using it; a failure too is given to each.
func (f *fetcher) initSection(m *Map) ([]byte, error) {
	f.mu.Lock()
	l := f.maps[m]
	first := l == nil
	if first {
		l = &mapLoad{done: make(chan struct{})}
		f.maps[m] = l
	}
	f.mu.Unlock()
	if first {
		l.data, l.err = f.c.FetchMap(f.ctx, m)
		close(l.done)
		return l.data, l.err
	}
	select {
	case <-l.done:
		return l.data, l.err
	case <-f.ctx.Done():
		return nil, context.Cause(f.ctx)
	}
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

	init    []byte // the init section (seg.Map), set before the first part's request
	initErr error  // or why it could not be fetched

	block cipher.Block // decryption key, once loaded
	prev  [16]byte     // cipher block before the next bytes to decrypt
	done  bool         // the consumer is done with the segment
}

// part is a byte range of a segment, filled by its producer while the
// consumer reads it.
type part struct {
	off     int64     // offset in the segment
	n       int       // bytes the part holds when complete, -1: up to the part size (stream)
	blocks  []*[]byte // holding its bytes from the start; nil once read
	filled  int       // bytes received
	done    bool      // filled is final
	handoff bool      // its slot passes to the part after it (stream)
	passed  bool      // the reader has read it through
	drained bool      // the reader has read it but for a held-back last block
	dec     int       // bytes decrypted in place
	plain   int       // bytes readable
}

// partCap is the most bytes p holds.
func (f *fetcher) partCap(p *part) int {
	if p.n >= 0 {
		return p.n
	}
	return f.partSize
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
			f.dispatchWait()
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
				n := f.partSize
				if s.rlen >= 0 && s.rlen < int64(n) {
					n = int(s.rlen)
				}
				p = &part{n: n}
				probe++
				break
			}
			if t := f.st[i]; !t.done && !t.stream && t.size >= 0 && t.next < t.size {
				s = t
				p = &part{off: t.next, n: int(min(int64(f.partSize), t.size-t.next))}
				t.next += int64(p.n)
				t.final = t.next >= t.size
				break
			}
		}
		if p == nil {
			f.dispatchWait()
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

// dispatchWait is dispatch's wait for a change (f.mu held).
func (f *fetcher) dispatchWait() {
	if h := f.c.tune.dispatchWait; h != nil {
		h(f.inflight)
	}
	f.cond.Wait()
}

// handoff marks the full part p done and waits for the reader to read it
// through (but for a last block it holds back when decrypting), then returns
// the part after it, which takes p's slot.
func (f *fetcher) handoff(s *segState, p *part, k *call) *part {
	k.watchdog.Stop()
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
	k.watchdog.Reset(k.stall)
	return q
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
		putBlock(b)
		p.blocks[k] = nil
		f.used -= f.blockSize
		f.cond.Broadcast()
	}
}

// grow adds a block to p, once the blocks held leave room for it within
// the fetch budget or p is the part the reader needs next. While it waits, the
// request does not count as in flight and its stall watchdog is stopped.
func (f *fetcher) grow(s *segState, p *part, k *call) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.used+f.blockSize > f.budget && !f.needed(s, p) {
		k.watchdog.Stop()
		f.inflight--
		f.cond.Broadcast()
		for f.ctx.Err() == nil && (f.used+f.blockSize > f.budget && !f.needed(s, p) || f.inflight >= f.conc) {
			f.cond.Wait()
		}
		f.inflight++
		k.watchdog.Reset(k.stall)
	}
	if err := f.ctx.Err(); err != nil {
		return context.Cause(f.ctx)
	}
	p.blocks = append(p.blocks, getBlock(f.blockSize))
	f.used += f.blockSize
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

// maxHeld is the most parts held at once (in flight, or fetched and not yet
// read through): concurrency and half as many again, so that parts that
// arrive before the one the reader waits for do not stop new requests.
func (f *fetcher) maxHeld() int { return f.conc + (f.conc+1)/2 }
