package mp4

import (
	"errors"
	"math"
	"sort"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// This file cuts clips out of a stored file with no re-encode (docs/clips.md): the
// sample tables of the file's moov (ReadClipSource) give, for an interval [S, E) in
// seconds of the file's presentation, the samples to keep: video from the sync sample at
// or before S, audio from the frame that overlaps S, both up to E. The clip's header is
// built by BuildHeader from an Index of those samples, with edit lists that start its
// presentation exactly at S (clipTrim); its media are byte ranges of the stored file,
// in their order there.

// ErrClipRange is an interval outside the file, or empty.
var ErrClipRange = errors.New("clip out of range")

// maxMoov bounds the moov a clip source reads (a 60-minute video's is a few MB).
const maxMoov = 256 << 20

// ClipSource holds the sample tables of a stored file, as ReadClipSource parsed them.
type ClipSource struct {
	brand  Brand
	tracks []*clipTrack
	// Duration is the file's duration in seconds (mvhd).
	Duration float64
}

// clipTrack is one track of a ClipSource, its samples on the file's presentation
// timeline: the presentation time of a sample is dts+cto, in the track's timescale.
type clipTrack struct {
	track    *media.Track
	start    int64 // presentation start of the track (its empty edit)
	dts      []int64
	cto      []int32
	size     []uint32
	off      []int64
	sync     []bool // nil: every sample is a sync sample
	lastDur  uint32 // duration of the last sample
	presEnds int64  // presentation end of the track (its edit's end)
}

// Memory is an estimate of the bytes the source holds (for a cache's bound).
func (s *ClipSource) Memory() int64 {
	var n int64
	for _, t := range s.tracks {
		n += int64(len(t.dts))*25 + 512
	}
	return n
}

// Piece is a byte range of the stored file.
type Piece struct{ Off, Len int64 }

// Clip is a clip's file: Header, then the stored file's Pieces in order.
type Clip struct {
	Header []byte
	Pieces []Piece
	// Size is the clip's length in bytes.
	Size int64
}

// clipTrim bounds the presentation of a clip's track, in its timescale on the
// timeline of its samples' DTS: it starts at from (not before the earliest sample) and
// ends at to (not after the latest).
type clipTrim struct{ from, to int64 }

// Clip cuts the interval [start, end) seconds of the file's presentation; end ≤ 0
// means to the end. ErrClipRange when start is not before end or the file's end.
func (s *ClipSource) Clip(start, end float64) (*Clip, error) {
	if end <= 0 || end > s.Duration {
		end = s.Duration
	}
	if math.IsNaN(start) || start < 0 || start >= end {
		return nil, ErrClipRange
	}
	type pick struct {
		t    *clipTrack
		tr   *media.Track
		i, j int // samples i..j-1
	}
	var picks []pick
	for _, t := range s.tracks {
		ts := float64(t.track.Timescale)
		st, et := int64(math.Round(start*ts)), int64(math.Round(end*ts))
		i, j := t.span(st, et)
		if i >= j {
			continue
		}
		tr := *t.track
		// The last sample keeps its duration (lastDuration takes FrameDuration).
		tr.FrameDuration = t.lastDur
		if j < len(t.dts) {
			tr.FrameDuration = uint32(t.dts[j] - t.dts[j-1])
		}
		picks = append(picks, pick{t, &tr, i, j})
	}
	if len(picks) == 0 {
		return nil, ErrClipRange
	}
	// The samples in the order of the stored file.
	type ref struct {
		p int
		k int
	}
	var refs []ref
	for p, pk := range picks {
		for k := pk.i; k < pk.j; k++ {
			refs = append(refs, ref{p, k})
		}
	}
	sort.SliceStable(refs, func(a, b int) bool {
		return picks[refs[a].p].t.off[refs[a].k] < picks[refs[b].p].t.off[refs[b].k]
	})
	x := &Index{}
	c := &Clip{}
	for _, r := range refs {
		pk := picks[r.p]
		t := pk.t
		smp := media.Sample{Track: pk.tr, DTS: t.dts[r.k], Sync: t.sync == nil || t.sync[r.k]}
		if t.cto != nil {
			smp.CTO = t.cto[r.k]
		}
		if err := x.Add(smp, int64(t.size[r.k])); err != nil {
			return nil, err
		}
		off, n := t.off[r.k], int64(t.size[r.k])
		if l := len(c.Pieces) - 1; l >= 0 && c.Pieces[l].Off+c.Pieces[l].Len == off {
			c.Pieces[l].Len += n
		} else if n > 0 {
			c.Pieces = append(c.Pieces, Piece{off, n})
		}
	}
	tracks := make([]*media.Track, len(picks))
	for p, pk := range picks {
		tracks[p] = pk.tr
		ts := float64(pk.t.track.Timescale)
		trim := clipTrim{
			from: max(int64(math.Round(start*ts)), pk.t.start),
			to:   min(int64(math.Round(end*ts)), pk.t.presEnds),
		}
		for _, ti := range x.Tracks {
			if ti.Track == pk.tr {
				ti.trim = &trim // timing presents the track from..to
			}
		}
	}
	hdr, err := BuildHeader(x, tracks, s.brand, 0)
	if err != nil {
		return nil, err
	}
	c.Header = hdr
	c.Size = int64(len(hdr)) + x.MediaSize
	return c, nil
}

// span returns the samples [i, j) of t that a clip of [st, et) (track ticks on the
// presentation timeline) keeps: video from the sync sample presented at or before st
// to the last sample presented before et (in decode order, so that every frame shown is
// decodable); other tracks the samples that overlap [st, et).
func (t *clipTrack) span(st, et int64) (int, int) {
	n := len(t.dts)
	pts := func(k int) int64 {
		if t.cto != nil {
			return t.dts[k] + int64(t.cto[k])
		}
		return t.dts[k]
	}
	dur := func(k int) int64 {
		if k+1 < n {
			return t.dts[k+1] - t.dts[k]
		}
		return int64(t.lastDur)
	}
	j := 0
	for k := range n {
		if pts(k) < et {
			j = k + 1
		}
	}
	if t.track.Kind == media.Video {
		i := -1
		for k := range n {
			if (t.sync == nil || t.sync[k]) && pts(k) <= st {
				i = k
			}
		}
		if i < 0 { // the track starts after st: from its first sync sample
			for k := range n {
				if t.sync == nil || t.sync[k] {
					i = k
					break
				}
			}
		}
		if i < 0 {
			return 0, 0
		}
		return i, j
	}
	i := sort.Search(n, func(k int) bool { return pts(k)+dur(k) > st })
	return i, j
}
