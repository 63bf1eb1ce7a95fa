package packager

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/stream-downloads/caddy-stream-downloads/packager/fmp4"
	"github.com/stream-downloads/caddy-stream-downloads/packager/hls"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
	"github.com/stream-downloads/caddy-stream-downloads/packager/mp4"
)

// Instant delivery (docs/instant.md): the file of a download whose source is fMP4 is
// planned from the init sections and the moofs of its segments, read by their heads,
// before the media are fetched; a GET is then answered at once, with the file's exact
// length and ETag, its header from memory and its media from the job's staging file
// when the job has written them, else from the origin's byte ranges that hold them.

// errNotInstant: the download's source has no index its file can be planned from
// (MPEG-TS, encrypted, or samples the packager rewrites): it is served once packaged.
var errNotInstant = errors.New("the source cannot be planned before its media are fetched")

// instantPlan is a download's file known from its source's index.
type instantPlan struct {
	client     *hls.Client // with the Validators of the index's reads
	header     []byte      // the file's first mediaStart bytes
	mediaStart int64
	size       int64
	relocated  bool // the header did not fit the reserve (mp4.Layout.Relocated)
	etag       string
	source     [32]byte      // sourceDigest of the renditions planned
	segs       []hls.Segment // in fetch order (fetchOrder)
	inits      [][]byte      // bytes from memory: init sections that hold media (ffmpeg's first fragment), subtitle samples
	ext        []extent      // the media, in file order, from mediaStart on
	ends       []int64       // by segment: the end of the bytes the file takes of it
}

// extent is a run of the file's media that is one run of bytes of the source.
type extent struct {
	at  int64 // offset in the file
	n   int64
	off int64 // offset in the segment (or in the init section)
	src int32 // ≥ 0: segs[src]; < 0: inits[-1-src]
}

// planInstant plans the file of a download of type typ of src, as packInto would
// write it, from the segments' heads, reading up to concurrency of them at a time. It
// fails with errNotInstant (wrapped) when the source cannot be planned so, else with
// the errors a job would fail with (the origin's, the timeline's, the limits').
func planInstant(ctx context.Context, client *hls.Client, src *hls.Source, typ Type, concurrency int, maxOutput int64) (*instantPlan, error) {
	if !plannable(src, typ) {
		return nil, fmt.Errorf("%w: MPEG-TS or encrypted segments", errNotInstant)
	}
	rs, err := renditions(src, typ)
	if err != nil {
		return nil, err
	}
	items, segs, _ := fetchOrder(rs)
	c := *client
	c.Validators = hls.NewValidators()
	ip := &instantPlan{client: &c, segs: segs, source: sourceDigest(rs)}

	opts, chs, _ := fileOptions(src, typ)
	p := mp4.NewPlanner(opts)
	type ref struct {
		off int64
		src int32
	}
	from := map[*media.Track][]ref{}
	var written int64
	start := math.Inf(1)
	// The subtitles are read meanwhile (they come before the first byte too).
	subsDone := make(chan struct{})
	var subs []subtitleSource
	var subsErr error
	sctx, cancelSubs := context.WithCancel(ctx)
	go func() {
		defer close(subsDone)
		subs, subsErr = readSubtitles(sctx, &c, src, typ, concurrency)
	}()
	defer func() { <-subsDone }()
	defer cancelSubs() // first: a plan that fails stops them
	idx := make([]*fmp4.Demuxer, len(rs))
	gates := make([]gate, len(rs))
	initOf := make([]int32, len(rs)) // the rendition's init section, in ip.inits
	for i, r := range rs {
		idx[i] = fmp4.NewIndexDemuxer()
		gates[i] = gate{r.keep, newTimeline(r.segs, c.Limits.Duration), &written, maxOutput, &start}
	}
	heads := readHeads(ctx, &c, segs, concurrency)
	defer heads.stop()
	for i, it := range items {
		r, d, seg := rs[it.r], idx[it.r], segs[i]
		if seg.Map != r.init {
			data, err := c.FetchMap(ctx, seg.Map)
			if err != nil {
				return nil, err
			}
			if err := d.Init(data); err != nil {
				return nil, fmt.Errorf("init section %s: %w", hls.RedactURL(seg.Map.URL), instantErr(err))
			}
			r.init = seg.Map
			ip.inits = append(ip.inits, data)
			initOf[it.r] = int32(len(ip.inits) - 1)
		}
		if seg.Discontinuity && it.seg > 0 {
			d.Discontinuity(seg.Start)
		}
		d.Expect(media.SegmentInfo{Start: seg.Start, Duration: seg.Duration})
		gates[it.r].tl.begin(it.seg)
		pieces, size, err := heads.next(ctx, i)
		if err != nil {
			return nil, fmt.Errorf("segment %s: %w", hls.RedactURL(seg.URL), instantErr(err))
		}
		emit := func(s fmp4.IndexedSample) error {
			if ok, err := gates[it.r].pass(s.Sample, int64(s.Size)); !ok {
				return err
			}
			rf := ref{s.Offset, int32(i)}
			if s.InInit {
				rf.src = -1 - initOf[it.r]
			}
			from[s.Track] = append(from[s.Track], rf)
			_, _, err := p.Add(s.Sample, int64(s.Size))
			return err
		}
		// The readers fetched every box header and moof; the demuxer may still ask for
		// the first MPEG audio frame.
		_, err = c.IndexSpans(ctx, seg, size, 0, maxBoxes, func() (int64, int64, error) {
			return d.SegmentPiecesIndex(pieces, size, emit)
		}, pieces.Add)
		if err != nil {
			return nil, fmt.Errorf("segment %s: %w", hls.RedactURL(seg.URL), instantErr(err))
		}
	}

	of := make([][]*media.Track, len(rs))
	for i := range rs {
		of[i] = idx[i].Tracks()
	}
	tracks, err := outputTracks(rs, of)
	if err != nil {
		return nil, err
	}
	if <-subsDone; subsErr != nil {
		return nil, subsErr
	}
	// The subtitle and chapter samples' bytes are served from memory, as init sections' are.
	tracks, err = addTextTracks(tracks, subs, chs, start, src.Duration, func(s media.Sample) error {
		ip.inits = append(ip.inits, s.Data)
		from[s.Track] = append(from[s.Track], ref{0, int32(-len(ip.inits))})
		_, _, err := p.Add(s, int64(len(s.Data)))
		return err
	})
	if err != nil {
		return nil, err
	}
	l, err := p.Plan(tracks)
	if err != nil {
		return nil, err
	}
	if maxOutput > 0 && l.Size > maxOutput {
		return nil, limitError{maxOutput}
	}
	ip.header, ip.mediaStart, ip.size, ip.relocated = l.Header, l.MediaStart, l.Size, l.Relocated
	ip.ends = make([]int64, len(segs))
	for pl := range l.Samples() {
		rf := from[pl.Track][pl.Sample]
		n := int64(pl.Size)
		if k := len(ip.ext) - 1; k >= 0 && ip.ext[k].src == rf.src && ip.ext[k].off+ip.ext[k].n == rf.off {
			ip.ext[k].n += n
		} else {
			ip.ext = append(ip.ext, extent{at: pl.Offset, n: n, off: rf.off, src: rf.src})
		}
		if rf.src >= 0 {
			ip.ends[rf.src] = max(ip.ends[rf.src], rf.off+n)
		}
	}
	ip.ext = slices.Clip(ip.ext)
	if ip.etag, err = fileETag(bytes.NewReader(ip.header), rs, src, typ, c.Validators); err != nil {
		return nil, err
	}
	return ip, nil
}

// plannable tells a source whose renditions for typ are all fMP4 and clear: what
// planInstant may plan (the index mode may still refuse it).
func plannable(src *hls.Source, typ Type) bool {
	rs, err := renditions(src, typ)
	if err != nil {
		return false
	}
	for _, r := range rs {
		for _, s := range r.segs {
			if s.Map == nil || s.Key != nil || s.Map.Key != nil {
				return false
			}
		}
	}
	return true
}

// instantErr marks what the index mode cannot plan as errNotInstant.
func instantErr(err error) error {
	if errors.Is(err, fmp4.ErrNeedsPayload) {
		return fmt.Errorf("%w: %w", errNotInstant, err)
	}
	return err
}

// sourceDigest identifies the segments the renditions take (URLs, ranges, init
// sections, in order): a job whose source has the same digest as a plan writes the
// file planned, so the plan's deliveries may read its staging file.
func sourceDigest(rs []*rendition) [32]byte {
	h := sha256.New()
	for _, r := range rs {
		fmt.Fprintf(h, "rendition %d\n", r.keep)
		for _, s := range r.segs {
			fmt.Fprintf(h, "%s %v %v %v", s.URL, s.Range, s.Discontinuity, s.Duration)
			if s.Map != nil {
				fmt.Fprintf(h, " %s %v", s.Map.URL, s.Map.Range)
			}
			h.Write([]byte{'\n'})
		}
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// headReads reads the boxes of segments that indexing needs (their heads, and each moof
// of a segment of several fragments by its own range: fmp4.NextRange) ahead of the
// indexer: up to concurrency segments at once, at most headsAhead past the one indexed.
type headReads struct {
	res    []chan headRead
	ahead  chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type headRead struct {
	pieces *fmp4.Pieces
	size   int64
	err    error
}

const (
	// headsAhead bounds the segments whose boxes are read and not indexed yet, and
	// maxBoxes what is read of one (its moofs, and what comes with them): together they
	// bound the plan's read-ahead to 16 MiB. A segment whose moofs take more is packaged
	// rather than served instantly.
	headsAhead = 16
	maxBoxes   = 1 << 20
)

func readHeads(ctx context.Context, c *hls.Client, segs []hls.Segment, concurrency int) *headReads {
	ctx, cancel := context.WithCancel(ctx)
	h := &headReads{res: make([]chan headRead, len(segs)), ahead: make(chan struct{}, headsAhead), cancel: cancel}
	for i := range h.res {
		h.res[i] = make(chan headRead, 1)
	}
	sem := make(chan struct{}, max(concurrency, 1))
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for i, s := range segs {
			select {
			case h.ahead <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				p, size, err := readBoxes(ctx, c, s)
				<-sem
				h.res[i] <- headRead{p, size, err}
			}()
		}
	}()
	return h
}

// readBoxes reads segment s's head and the rest of its box headers and moofs.
func readBoxes(ctx context.Context, c *hls.Client, s hls.Segment) (*fmp4.Pieces, int64, error) {
	head, size, err := c.ReadHead(ctx, s, hls.FirstHeadSize)
	if err != nil {
		return nil, 0, err
	}
	p := &fmp4.Pieces{}
	p.Add(0, head)
	_, err = c.IndexSpans(ctx, s, size, 0, maxBoxes, func() (int64, int64, error) {
		off, n := fmp4.NextRange(p, size)
		return off, n, nil
	}, p.Add)
	if err != nil {
		return nil, 0, err
	}
	return p, size, nil
}

// next is segment i's pieces and size; call it for i = 0, 1, … in order.
func (h *headReads) next(ctx context.Context, i int) (*fmp4.Pieces, int64, error) {
	select {
	case r := <-h.res[i]:
		<-h.ahead
		return r.pieces, r.size, r.err
	case <-ctx.Done():
		return nil, 0, context.Cause(ctx)
	}
}

// stop ends the reads and waits for them.
func (h *headReads) stop() {
	h.cancel()
	h.wg.Wait()
}
