package fmp4

import (
	"fmt"
	"slices"
	"sort"

	"github.com/stream-downloads/caddy-stream-downloads/packager/codec"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// Samples are read in the order of their data and leave in decode order per track,
// interleaved by decode time across the tracks, as a whole segment sorted would give
// them (so that the muxer's chunks interleave, and the same source gives the same file):
// within a segment, a sample waits until the other track has shown a later one; at the
// end of the segment everything goes. What waits is copied aside, at most maxHeld bytes,
// each sample counted with what holding it costs besides its data (heldOverhead); beyond,
// the track that waits goes on alone, and a sample that would pass the bound by itself
// is not copied but goes at once, after what waits before it. A sample whose data comes
// before that of a sample preceding it in decode order (trafs or truns out of file
// order) waits for it too, within the same bound; beyond, it is an error.

// rawSample is one sample of a segment before it is placed on the timeline.
type rawSample struct {
	raw   int64 // DTS in the init's timescale
	dur   uint32
	cto   int32
	flags uint32
	// noFlags: the source gives no flags for the sample (trun.flagsGiven); flags is 0
	// and video sync is decided from the content.
	noFlags bool
	data    []byte // nil in the index mode (but for the samples it needs: needsData)
	size    int    // of the sample in the source: len(data) when data is read
	pos     int64  // stream offset of its data in the segment (index mode)
	seq     int    // place in decode order among its track's samples of the segment
}

// heldOverhead is what a sample copied aside costs besides its data: its rawSample in a
// queue and its buffer's header.
const heldOverhead = 96

// holder keeps the samples copied aside, by track (0 video, 1 audio).
type holder struct {
	early      [2][]rawSample // data read before a sample preceding it in decode order; by seq
	q          [2][]rawSample // in decode order, waiting for the other track
	next       [2]int         // seq of the track's next sample in decode order
	held       int            // bytes of early and q
	earlyBytes int            // bytes of early
	free       [][]byte       // buffers to reuse
	spare      int            // their capacity
}

func (h *holder) reset() {
	for k := range h.q {
		for _, s := range h.q[k] {
			h.put(s.data)
		}
		for _, s := range h.early[k] {
			h.put(s.data)
		}
		h.q[k], h.early[k] = h.q[k][:0], h.early[k][:0]
	}
	h.next, h.held, h.earlyBytes = [2]int{}, 0, 0
}

func (h *holder) copy(b []byte) []byte {
	var c []byte
	if n := len(h.free); n > 0 {
		c, h.free = h.free[n-1][:0], h.free[:n-1]
		h.spare -= cap(c)
	}
	return append(c, b...)
}

// copyData is copy, but keeps nil (the index mode's samples without data) nil.
func (h *holder) copyData(b []byte) []byte {
	if b == nil {
		return nil
	}
	return h.copy(b)
}

// put keeps b for reuse while the buffers kept stay within maxHeld.
func (h *holder) put(b []byte) {
	if b == nil {
		return
	}
	if h.spare+cap(b) <= maxHeld {
		h.free = append(h.free, b)
		h.spare += cap(b)
	}
}

// take receives the sample of track k whose data was just read (valid during the call).
func (d *Demuxer) take(k, seq int, s rawSample) error {
	h := &d.s.hold
	if s.data != nil {
		s.size = len(s.data)
	}
	if seq != h.next[k] {
		s.data, s.seq = h.copyData(s.data), seq
		i := sort.Search(len(h.early[k]), func(i int) bool { return h.early[k][i].seq > seq })
		h.early[k] = slices.Insert(h.early[k], i, s)
		h.held += s.size + heldOverhead
		h.earlyBytes += s.size + heldOverhead
		if h.earlyBytes > maxHeld {
			return fmt.Errorf("the %s samples' data is out of decode order by more than %d MiB", d.streamOf(k).track.Kind, maxHeld>>20)
		}
		return d.release(false)
	}
	if err := d.push(k, s, false); err != nil {
		return err
	}
	h.next[k]++
	for len(h.early[k]) > 0 && h.early[k][0].seq == h.next[k] {
		e := h.early[k][0]
		h.early[k] = slices.Delete(h.early[k], 0, 1)
		h.held -= e.size + heldOverhead
		h.earlyBytes -= e.size + heldOverhead
		if err := d.push(k, e, true); err != nil {
			return err
		}
		h.next[k]++
	}
	return nil
}

// push hands on the next sample of track k in decode order, or queues it; owned: its
// data is a copy of the holder's.
func (d *Demuxer) push(k int, s rawSample, owned bool) error {
	h := &d.s.hold
	o := 1 - k
	now := len(h.q[k]) == 0 && !d.has(o)
	if len(h.q[k]) == 0 && len(h.q[o]) > 0 {
		var err error
		if now, err = d.precedes(k, s, h.q[o][0]); err != nil {
			return err
		}
	}
	if !now && h.held+s.size+heldOverhead > maxHeld {
		// Holding it would pass the bound: what waits before it goes, then it.
		if err := d.releaseBefore(k, s); err != nil {
			return err
		}
		now = true
	}
	if now {
		err := d.out(k, s)
		if owned {
			h.put(s.data)
		}
		return err
	}
	if !owned {
		s.data = h.copyData(s.data)
	}
	h.q[k] = append(h.q[k], s)
	h.held += s.size + heldOverhead
	return d.release(false)
}

// releaseBefore hands on what waits before s, the next sample of track k: its track's
// queue (interleaved with the other's as far as it can be), then the other track's
// samples that precede s.
func (d *Demuxer) releaseBefore(k int, s rawSample) error {
	h := &d.s.hold
	o := 1 - k
	for len(h.q[k]) > 0 {
		next := k
		if len(h.q[o]) > 0 {
			first, err := d.precedes(o, h.q[o][0], h.q[k][0])
			if err != nil {
				return err
			}
			if first {
				next = o
			}
		}
		if err := d.releaseOne(next); err != nil {
			return err
		}
	}
	for len(h.q[o]) > 0 {
		first, err := d.precedes(o, h.q[o][0], s)
		if err != nil || !first {
			return err
		}
		if err := d.releaseOne(o); err != nil {
			return err
		}
	}
	return nil
}

// releaseOne hands on the first sample waiting in track k's queue.
func (d *Demuxer) releaseOne(k int) error {
	h := &d.s.hold
	s := h.q[k][0]
	h.q[k] = h.q[k][1:]
	if len(h.q[k]) == 0 {
		h.q[k] = h.q[k][:0]
	}
	h.held -= s.size + heldOverhead
	err := d.out(k, s)
	h.put(s.data)
	return err
}

// release hands on what may go: all of it at the end of a segment.
func (d *Demuxer) release(all bool) error {
	h := &d.s.hold
	for {
		v, a := len(h.q[0]) > 0, len(h.q[1]) > 0
		over := h.held > maxHeld
		var k int
		switch {
		case v && a:
			first, err := d.precedes(0, h.q[0][0], h.q[1][0])
			if err != nil {
				return err
			}
			if k = 1; first {
				k = 0
			}
		case v && (all || over || !d.has(1)):
			k = 0
		case a && (all || over || !d.has(0)):
			k = 1
		default:
			return nil
		}
		if err := d.releaseOne(k); err != nil {
			return err
		}
	}
}

// precedes reports whether a of track k goes before b of the other track: by decode
// time, video first at equal times.
func (d *Demuxer) precedes(k int, a, b rawSample) (bool, error) {
	if err := d.placeSegment(); err != nil {
		return false, err
	}
	if k == 0 {
		return d.seconds(d.video, a.raw) <= d.seconds(d.audio, b.raw), nil
	}
	return d.seconds(d.audio, a.raw) < d.seconds(d.video, b.raw), nil
}

// streamOf is track k's stream (0 video, 1 audio).
func (d *Demuxer) streamOf(k int) *stream {
	if k == 0 {
		return d.video
	}
	return d.audio
}

// has reports whether the segments may carry track k (the latest init has it).
func (d *Demuxer) has(k int) bool {
	st := d.streamOf(k)
	return st != nil && st.cur != nil
}

// out places a sample on the output timeline and emits it.
func (d *Demuxer) out(k int, s rawSample) error {
	if err := d.placeSegment(); err != nil {
		return err
	}
	st := d.streamOf(k)
	dts := d.outTime(st, s.raw)
	if st.emitted && dts <= st.lastOut {
		return fmt.Errorf("%s decode times do not increase (%d after %d) after a timescale change", st.track.Kind, dts, st.lastOut)
	}
	sample := media.Sample{Track: st.track, DTS: dts, CTO: s.cto, Sync: true, Data: s.data}
	if st == d.video {
		var keep bool
		var err error
		sample.Data, sample.Sync, keep, err = d.videoSample(st, s)
		if err != nil || !keep {
			return err
		}
	} else if s.size == 0 {
		return nil
	} else if t := st.track; t.Codec == media.MPEGAudio && !st.emitted {
		// The sample entry's channel count is often the template's 2: the frame says.
		if h, ok := codec.ParseMPEGAudio(s.data); ok && h.SampleRate == t.SampleRate {
			t.Channels = h.Channels
			if uint32(h.SampleRate) == t.Timescale {
				t.FrameDuration = uint32(h.Samples)
			}
		}
	}
	var err error
	if d.s.emitIx != nil {
		size := s.size
		if sample.Data != nil {
			size = len(sample.Data) // as the normal mode would emit it
		}
		sample.Data = nil
		err = d.s.emitIx(d.indexed(sample, size, s.pos))
	} else {
		err = d.s.emit(sample)
	}
	if err != nil {
		d.s.emitErr = err
		return err
	}
	st.emitted = true
	st.lastOut = dts
	st.endOut = dts + d.scaleDur(st, s.dur)
	return nil
}
