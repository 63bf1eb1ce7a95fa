package ts

import (
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// Samples leave the demuxer in time order across its tracks (video first at equal times),
// whatever the order in which their units completed. Where a PES ends decides when a unit
// completes, so without this the same media cut into PES differently would interleave
// differently in the MP4 and give other bytes and another ETag. Within a segment, a
// sample waits until the other track has shown a later one; at the end of each segment
// everything goes, so the order depends on the segments and timestamps only. maxHeld
// bounds what waits (a track that falls silent mid-segment), each sample counted with what
// holding it costs besides its data (heldOverhead): millions of tiny frames are bounded
// too.
type orderer struct {
	q     [2][]media.Sample // video, audio; Data owned
	free  [][]byte
	spare int // capacity of free
	held  int
	other [2]bool // the program has the other track (per index: video's other is audio)
	emit  func(media.Sample) error
}

const maxHeld = 8 << 20

// heldOverhead is what a waiting sample costs besides its data: its media.Sample in the
// queue and its buffer's header.
const heldOverhead = 80

func (o *orderer) push(s media.Sample) error {
	i, j := idxVideo, idxAudio
	if s.Track.Kind == media.Audio {
		i, j = idxAudio, idxVideo
	}
	if len(o.q[i]) == 0 && (!o.other[i] || len(o.q[j]) > 0 && precedes(s, o.q[j][0])) {
		return o.emit(s) // it would be released at once: no copy
	}
	var b []byte
	if n := len(o.free); n > 0 {
		b, o.free = o.free[n-1][:0], o.free[:n-1]
		o.spare -= cap(b)
	}
	s.Data = append(b, s.Data...)
	o.q[i] = append(o.q[i], s)
	o.held += len(s.Data) + heldOverhead
	return o.release(false)
}

// release hands on what may go: all of it at the end of a segment.
func (o *orderer) release(all bool) error {
	for {
		v, a := len(o.q[idxVideo]) > 0, len(o.q[idxAudio]) > 0
		var i int
		switch {
		case v && a:
			i = idxAudio
			if precedes(o.q[idxVideo][0], o.q[idxAudio][0]) {
				i = idxVideo
			}
		case v && (all || !o.other[idxVideo] || o.held > maxHeld):
			i = idxVideo
		case a && (all || !o.other[idxAudio] || o.held > maxHeld):
			i = idxAudio
		default:
			return nil
		}
		s := o.q[i][0]
		o.q[i] = o.q[i][1:]
		o.held -= len(s.Data) + heldOverhead
		err := o.emit(s)
		if o.spare+cap(s.Data) <= maxHeld { // the buffers kept for reuse are bounded too
			o.free = append(o.free, s.Data)
			o.spare += cap(s.Data)
		}
		if len(o.q[i]) == 0 {
			o.q[i] = o.q[i][:0]
		}
		if err != nil {
			return err
		}
	}
}

// precedes reports whether a goes before b (of the other track): by decode time, video
// first at equal times.
func precedes(a, b media.Sample) bool {
	l, r := a.DTS*int64(b.Track.Timescale), b.DTS*int64(a.Track.Timescale)
	return l < r || l == r && a.Track.Kind == media.Video
}
