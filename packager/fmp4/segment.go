package fmp4

import (
	"bytes"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// Bounds on what a segment may make the demuxer hold: memory per job is bounded
// whatever the input, however long a segment or an mdat is.
const (
	// maxMoof bounds a moof box, which is read whole: 4 MiB is 262144 trun entries of
	// 16 bytes, more than an hour of 60 fps video in one fragment (real ones are a few
	// KiB).
	maxMoof = 4 << 20
	// maxVideoSample and maxAudioSample bound one sample: the largest real video ones (an
	// 8K intra frame at a high bit rate) are a few MB; an audio frame is at most tens of
	// KB (E-AC-3 at its 6.144 Mb/s maximum: 37 KB). A sample beyond is an error at once,
	// before its data is read.
	maxVideoSample = 16 << 20
	maxAudioSample = 1 << 20
	// maxHeld bounds the sample bytes copied aside: held to interleave the tracks by
	// decode time, or to put a track's samples back in decode order when the mdat has
	// them in another (the rest of the segment goes as it comes; out of order by more is
	// an error).
	maxHeld = 8 << 20
	// maxRuns bounds the track runs waiting for their data.
	maxRuns = 1 << 14
	// maxSamplesPerSegment bounds the samples of one segment (hostile truns).
	maxSamplesPerSegment = 1 << 20
)

// segState is the state of the segment being read.
type segState struct {
	in       window
	emit     func(media.Sample) error
	emitIx   func(IndexedSample) error // the index mode's emit (emit is nil then)
	emitErr  error                     // an error of emit: passed on as it is
	prefix   int64                     // bytes of the init section's media in front of the segment
	prefixAt int64                     // where they are in the init section

	runs    runHeap // by the offset of their next sample's data
	moofs   int     // bytes of the moofs that runs still read from
	count   int     // samples announced
	needEnd int64   // where the data of the tracks not taken ends
	dataEnd int64   // where the data of the last sample read ends

	// By track (0 video, 1 audio).
	seqs    [2]int    // samples announced, in decode order
	seen    [2]bool   // the track has samples in the segment
	first   [2]int64  // its first raw decode time
	lastDur [2]uint32 // duration of the last one announced
	span    [2]int64  // ticks announced (init timescale)

	hold holder
}

// runHeap orders the runs by where their next sample's data is, so that the segment is
// read front to back whatever the order of the trafs and truns.
type runHeap []*run

func (h runHeap) Len() int { return len(h) }
func (h runHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.pos != b.pos {
		return a.pos < b.pos
	}
	if a.k != b.k {
		return a.k < b.k
	}
	return a.seq < b.seq
}
func (h runHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)   { *h = append(*h, x.(*run)) }
func (h *runHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return r
}
func (h *runHeap) push(r *run) { heap.Push(h, r) }

// Segment demuxes one media segment (one or more moof+mdat; styp, sidx, prft, emsg and
// other top-level boxes are skipped) and calls emit for each sample.
//
// The segment is read as a stream, box by box: a moof whole (at most maxMoof), then the
// samples its truns announce as their data arrives, holding no more than the sample
// being read and what waits to be interleaved (maxHeld). Every sample of a moof is
// checked before its data is read; what a segment lacks as a whole (its EXTINF not
// covered, data past its end) is found at its end, after samples before went out: the
// run ends in an error all the same.
func (d *Demuxer) Segment(r io.Reader, emit func(media.Sample) error) error {
	if d.index {
		return errors.New("fmp4: Segment on a demuxer in the index mode (SegmentIndex)")
	}
	return d.segment(r, emit, nil)
}

// segment demuxes a segment for Segment (emit) or SegmentIndex (emitIx).
func (d *Demuxer) segment(r io.Reader, emit func(media.Sample) error, emitIx func(IndexedSample) error) (err error) {
	seg := d.segIndex
	d.segIndex++
	where := fmt.Sprintf("segment %d", seg)
	defer func() {
		if p := recover(); p != nil {
			err = malformedIn(where, seg, fmt.Errorf("demuxer panic: %v", p))
		}
		var re *readError
		var me *media.MalformedError
		var uc *media.UnsupportedCodecError
		switch {
		case err == nil:
		case d.s.emitErr != nil:
			err = d.s.emitErr
		case errors.Is(err, ErrNeedsPayload):
		case errors.As(err, &re):
			err = re.err // a read error is not a malformed segment
		case !errors.As(err, &me) && !errors.As(err, &uc):
			err = malformedIn(where, seg, err)
		}
		d.s.in.r, d.s.emit, d.s.emitIx = nil, nil, nil
	}()
	d.resetSegment(emit)
	d.s.emitIx = emitIx
	if !d.haveInit {
		return errors.New("no init section (EXT-X-MAP) before the segment")
	}
	if d.initMedia != nil {
		r = io.MultiReader(bytes.NewReader(d.initMedia), r)
		d.s.prefix, d.s.prefixAt = int64(len(d.initMedia)), d.initAt
		d.initMedia = nil
	}
	d.s.in.reset(r)
	if err := d.readBoxes(); err != nil {
		return err
	}
	return d.endSegment()
}

// resetSegment starts the state of a segment, keeping the buffers.
func (d *Demuxer) resetSegment(emit func(media.Sample) error) {
	s := &d.s
	for _, r := range s.runs {
		r.moof = nil
	}
	in, hold, runs := s.in, s.hold, s.runs[:0]
	hold.reset()
	*s = segState{in: in, hold: hold, runs: runs, emit: emit}
}

// readBoxes reads the top-level boxes to the end of the segment.
func (d *Demuxer) readBoxes() error {
	s := &d.s
	for start := int64(0); ; {
		h, err := s.in.get(start, 8)
		switch {
		case err != nil:
			return err
		case len(h) == 0:
			return nil // the end, between boxes
		case len(h) < 8:
			return fmt.Errorf("%d stray bytes after the last box", len(h))
		}
		size := uint64(binary.BigEndian.Uint32(h))
		typ := string(h[4:8])
		hdr := uint64(8)
		if size == 1 {
			h, err := s.in.get(start, 16)
			if err != nil {
				return err
			}
			if len(h) < 16 {
				return fmt.Errorf("box %q: truncated 64-bit size", printable(typ))
			}
			size, hdr = binary.BigEndian.Uint64(h[8:]), 16
		}
		if size != 0 && size < hdr {
			return fmt.Errorf("box %q has an invalid size %d", printable(typ), size)
		}
		if size > maxTime {
			return fmt.Errorf("box %q has a size of %d bytes", printable(typ), size)
		}
		if typ == "moof" {
			err = d.readMoof(start, int64(size), int(hdr))
		} else {
			end := int64(-1) // size 0: to the end of the segment
			if size != 0 {
				end = start + int64(size)
			}
			err = d.readData(typ, start, start+int64(hdr), end)
		}
		if err != nil || size == 0 {
			return err
		}
		start += int64(size)
	}
}

// readMoof reads a moof box (size 0: to the end of the segment) and adds its runs.
func (d *Demuxer) readMoof(start, size int64, hdr int) error {
	s := &d.s
	if size > maxMoof {
		return fmt.Errorf("a moof box of %d bytes: larger than any plausible one, at most %d MiB", size, maxMoof>>20)
	}
	if size == 0 {
		b, err := s.in.get(start, maxMoof+1)
		if err != nil {
			return err
		}
		if len(b) > maxMoof {
			return fmt.Errorf("a moof box to the end of the segment larger than any plausible one, at most %d MiB", maxMoof>>20)
		}
		size = int64(len(b))
	}
	if r, ok := s.runs.peek(); ok && r.pos < start+size {
		return d.dataMissing(r) // its data would be in this moof, or before it
	}
	m := &moofBuf{}
	if s.moofs += int(size); s.moofs > maxMoof {
		return fmt.Errorf("the moofs of samples still waiting for their data exceed %d MiB", maxMoof>>20)
	}
	if len(s.runs) == 0 && cap(d.moofBuf) >= int(size) {
		m.b = d.moofBuf[:size] // no run reads from it any more
	} else {
		m.b = make([]byte, size)
		d.moofBuf = m.b
	}
	n, err := s.in.readAt(start, m.b)
	if err != nil {
		return err
	}
	if n < len(m.b) {
		return fmt.Errorf("box \"moof\" is truncated: %d bytes declared, %d present", size, n)
	}
	if err := d.parseMoof(m, start, hdr); err != nil {
		return err
	}
	if m.runs == 0 {
		s.moofs -= len(m.b)
	}
	return nil
}

// readData reads a box other than a moof (payload from a to end; end -1: to the end of
// the segment): the samples whose data is in it, in the order of their data; the rest
// is skipped.
func (d *Demuxer) readData(typ string, start, a, end int64) error {
	s := &d.s
	for {
		r, ok := s.runs.peek()
		if !ok || (end >= 0 && r.pos >= end) {
			break
		}
		if r.pos < a {
			return d.dataMissing(r)
		}
		dur, size, flags, cto := r.next()
		if end >= 0 && r.pos+int64(size) > end {
			return fmt.Errorf("track %d: sample data at %d+%d goes past the end of its %q box (at %d)", r.track, r.pos, size, printable(typ), end)
		}
		var data []byte
		have := int64(0) // bytes of its data the segment holds
		if d.index && !d.needsData(r.k) {
			// The index mode does not read the data: it only checks that it is there.
			ok, err := s.in.seek(r.pos + int64(size))
			if err != nil {
				return err
			}
			if ok {
				have = int64(size)
			}
		} else {
			var err error
			if data, err = s.in.get(r.pos, int(size)); err != nil {
				return err
			}
			have = int64(len(data))
		}
		if have < int64(size) {
			if end < 0 {
				return d.dataMissing(r)
			}
			return fmt.Errorf("box %q is truncated: %d bytes declared, %d present", printable(typ), end-start, s.in.end()-start)
		}
		if r.pos < s.dataEnd {
			// Read in file order, so this sample shares bytes with the one before: one
			// could make a segment's bytes count again and again.
			return fmt.Errorf("sample data overlaps: track %d's sample at %d+%d starts before the end of the sample data before it (%d)", r.track, r.pos, size, s.dataEnd)
		}
		s.dataEnd = r.pos + int64(size)
		if err := d.take(r.k, r.seq, rawSample{raw: r.t, dur: dur, cto: cto, flags: flags, noFlags: !r.tr.flagsGiven(r.i, r.def), data: data, size: int(size), pos: r.pos}); err != nil {
			return err
		}
		r.i++
		r.seq++
		r.pos += int64(size)
		r.t += int64(dur)
		if r.i < r.tr.count {
			heap.Fix(&s.runs, 0)
			continue
		}
		heap.Pop(&s.runs)
		if r.moof.runs--; r.moof.runs == 0 {
			s.moofs -= len(r.moof.b)
		}
		r.moof = nil
	}
	if end < 0 {
		end = maxTime
	}
	ok, err := s.in.seek(end)
	if err != nil {
		return err
	}
	if !ok && end != maxTime {
		return fmt.Errorf("box %q is truncated: %d bytes declared, %d present", printable(typ), end-start, s.in.end()-start)
	}
	return nil
}

func (h runHeap) peek() (*run, bool) {
	if len(h) == 0 {
		return nil, false
	}
	return h[0], true
}

// dataMissing is the error of a run whose next sample's data is not where the segment
// still has bytes to read.
func (d *Demuxer) dataMissing(r *run) error {
	_, size, _, _ := r.next()
	if r.pos < d.s.in.end() {
		return fmt.Errorf("track %d: sample data at %d+%d is not in a box after its moof (the samples must be in file order within a bounded window)", r.track, r.pos, size)
	}
	return fmt.Errorf("track %d: sample data at %d+%d outside the segment (%d bytes)", r.track, r.pos, size, d.s.in.end())
}

// endSegment checks what the segment holds as a whole and sends what waits.
func (d *Demuxer) endSegment() error {
	s := &d.s
	if r, ok := s.runs.peek(); ok {
		return d.dataMissing(r)
	}
	if s.needEnd > s.in.end() {
		return fmt.Errorf("sample data up to %d outside the segment (%d bytes)", s.needEnd, s.in.end())
	}
	if got := max(d.span(d.video, 0), d.span(d.audio, 1)); !media.Covers(got, d.extinf) {
		return fmt.Errorf("media lost: the segment holds %.3f s of media (%d samples) but its EXTINF says %.3f s",
			got.Seconds(), s.seqs[0]+s.seqs[1], d.extinf.Seconds())
	}
	return d.release(true)
}

// span is how long the samples of track k (st) in the segment last, by their durations.
func (d *Demuxer) span(st *stream, k int) time.Duration {
	if st == nil || st.cur == nil || st.cur.timescale == 0 {
		return 0
	}
	return time.Duration(float64(d.s.span[k]) / float64(st.cur.timescale) * float64(time.Second))
}
