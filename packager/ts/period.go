package ts

import (
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
)

// Periods: the timeline of the output across discontinuities, explicit
// (EXT-X-DISCONTINUITY) and implicit (jumps), as the Demuxer doc describes.

// period is one span of timestamps between discontinuities.
type period struct {
	td       mpegts.TimeDecoder
	init     bool
	base     int64
	offset   int64 // added to unwrapped timestamps
	resolved bool  // offset known
	fresh    bool  // follows another period: tracks restart when it is resolved
	firstSeg int   // the segment it starts in
	first    [2]int64
	seen     [2]bool
	firstPTS int64 // earliest video PTS seen (valid with seen[idxVideo])

	// The last units, unwrapped (90 kHz), for coverage and jumps.
	lastV, vDelta int64 // last video DTS and the step to it
	aEnd          int64 // end of the last audio frame
	haveV, haveA  bool
}

// end is where track i's last unit ended (unwrapped), if it had one.
func (p *period) end(i int) (int64, bool) {
	if i == idxVideo {
		return p.lastV + p.vDelta, p.haveV
	}
	return p.aEnd, p.haveA
}

const (
	idxVideo = 0
	idxAudio = 1
)

func (p *period) unwrap(raw int64) int64 {
	if !p.init {
		p.init = true
		p.base = raw
	}
	return p.base + p.td.Decode(raw)
}

// peek is what unwrap would return, without moving the unwrapper.
func (p *period) peek(raw int64) int64 {
	td := p.td
	if !p.init {
		return raw
	}
	return p.base + td.Decode(raw)
}

func (p *period) observe(i int, ts int64) {
	if !p.seen[i] || ts < p.first[i] {
		p.first[i] = ts
		p.seen[i] = true
	}
}

func (p *period) earliest() (int64, bool) {
	switch {
	case p.seen[0] && p.seen[1]:
		return min(p.first[0], p.first[1]), true
	case p.seen[0]:
		return p.first[0], true
	case p.seen[1]:
		return p.first[1], true
	}
	return 0, false
}

// Discontinuity starts a new period: the next segment's timestamps may restart anywhere
// (see the Demuxer doc for how they are placed). at is where that segment starts on the
// output timeline by the playlist, counted from the first segment.
func (d *Demuxer) Discontinuity(at time.Duration) {
	d.newPeriod(at, d.segIndex)
}

// newPeriod starts a period with the units that start in segment seg.
func (d *Demuxer) newPeriod(at time.Duration, seg int) {
	if d.per.resolved {
		if _, ok := d.per.earliest(); !ok {
			return // nothing seen yet (discontinuity before the first media): no-op
		}
		if !d.originTaken {
			e, _ := d.per.earliest()
			d.origin = e + d.per.offset
			d.originTaken = true
		}
		d.prevPer = d.per
		d.per = &period{fresh: true, firstSeg: seg}
	}
	// A pending period with nothing seen yet (an empty segment): only at changes.
	d.at = durationTo90k(at)
}

// periodOf is the period of a unit that started in segment seg.
func (d *Demuxer) periodOf(seg int) *period {
	if seg < d.per.firstSeg && d.prevPer != nil {
		return d.prevPer
	}
	return d.per
}

func durationTo90k(at time.Duration) int64 {
	if at < 0 {
		at = 0
	}
	sec := int64(at / time.Second)
	rem := int64(at % time.Second)
	return sec*VideoTimescale + (rem*VideoTimescale+5e8)/1e9
}

// maxPending bounds the units held back until a new period's offset is known, each
// counted with what holding it costs besides its bytes (pendingOverhead): a track that
// shows no timestamp while the other goes on (a declared video stream that never carries
// a packet, beside a PES of audio frames without end) would hold them all. Past it the
// offset is fixed with what was seen, as at the end of a segment; with nothing stamped at
// all, the media cannot be placed: an error.
const (
	maxPending      = 8 << 20
	pendingOverhead = 96
)

// event is an access unit held back until its period's offset is known.
type event struct {
	audio    bool
	stamped  bool
	pts, dts int64 // unwrapped, without the period offset
	samples  int   // audio: PCM samples of the unit
	au       [][]byte
}

// holdBack holds a unit of the pending period back until its offset is known.
func (d *Demuxer) holdBack(ev event) error {
	d.pending = append(d.pending, ev)
	for _, n := range ev.au {
		d.pendingSize += len(n) + pendingOverhead
	}
	if d.pendingSize <= maxPending {
		return d.maybeResolve()
	}
	if _, ok := d.per.earliest(); !ok {
		return d.malformed("more than %d MiB of media without a timestamp", maxPending>>20)
	}
	return d.resolve()
}

// maybeResolve fixes the pending period's offset once every track of the segment showed
// a timestamp.
func (d *Demuxer) maybeResolve() error {
	p := d.per
	if p.resolved || (d.segV && !p.seen[idxVideo]) || (d.segA && !p.seen[idxAudio]) {
		return nil
	}
	return d.resolve()
}

// resolve computes the pending period's offset and emits what was held back.
func (d *Demuxer) resolve() error {
	p := d.per
	earliest, ok := p.earliest()
	if p.resolved || !ok {
		return nil
	}
	off := d.origin + d.at - earliest
	if d.videoStarted {
		first := earliest
		if p.seen[idxVideo] {
			first = p.first[idxVideo]
		}
		end := d.lastDTS + max(d.lastDelta, 1)
		off = max(off, end-first)
		if p.seen[idxVideo] {
			// Nor may its pictures be shown before (or with) the last one shown.
			off = max(off, d.maxPTS+max(d.lastDelta, 1)-p.firstPTS)
		}
	}
	if d.audioStarted && d.audio != nil {
		first := earliest
		if p.seen[idxAudio] {
			first = p.first[idxAudio]
		}
		sr := int64(d.audio.SampleRate)
		end := (d.audioNext*VideoTimescale + sr - 1) / sr // ceil, in 90 kHz
		off = max(off, end-first)
	}
	if d.videoStarted && p.seen[idxVideo] && d.lastDelta > 0 {
		// Keep the video on its frame grid: the gap from the last frame to the new
		// period's first is a whole number of frame durations (at most one frame later).
		// A fractional gap makes ffmpeg guess an absurd frame rate (from the GCD of the
		// DTS deltas) and complain when it decodes the file.
		gap := p.first[idxVideo] + off - d.lastDTS
		if r := gap % d.lastDelta; r != 0 {
			off += d.lastDelta - r
		}
	}
	p.offset = off
	p.resolved = true
	if p.fresh {
		// The tracks restart: video at a key frame, audio at its timestamp.
		d.needKey = true
		d.dropLeading, d.dropRASL = false, false
		d.audioResync = true
	}
	evs := d.pending
	d.pending, d.pendingSize = nil, 0
	for _, ev := range evs {
		var err error
		if ev.audio {
			err = d.audioAU(ev.pts+off, ev.stamped, ev.samples, ev.au[0])
		} else {
			err = d.videoAU(ev.pts+off, ev.dts+off, ev.au)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Bounds of implicit discontinuities (see the Demuxer doc): jumpBack and jumpAhead, how
// far the first unit of a segment may be behind or ahead of where the previous one ended
// (plus, ahead, any gap the playlist has there, as EXT-X-GAP segments make) before the
// segment starts a new period. Ahead, a source may have holes of its own (kept, as ffmpeg
// does); behind, anything more than a few frames cannot be played in order.
const (
	jumpBack  = VideoTimescale / 2
	jumpAhead = 2 * VideoTimescale
)

// jump checks the first unit of a segment (track i, raw timestamp ts) against where the
// track's last unit ended, and starts a period there when it jumps (an implicit
// discontinuity).
func (d *Demuxer) jump(seg, i int, ts int64) {
	if d.jumped || seg != d.segIndex-1 {
		return
	}
	d.jumped = true
	p := d.per
	end, ok := p.end(i)
	if !p.resolved || !ok || seg == p.firstSeg {
		return
	}
	delta := p.peek(ts) - end
	gap := durationTo90k(d.seg.Start - d.prevSeg.Start - d.prevSeg.Duration)
	if delta >= -jumpBack && delta <= gap+jumpAhead {
		return
	}
	d.note("segment %d: timestamps jump by %+.3f s without EXT-X-DISCONTINUITY; taken as a discontinuity", seg, float64(delta)/VideoTimescale)
	d.newPeriod(d.seg.Start, seg)
}
