package mp4

import (
	"iter"
	"math"
)

// This file derives the tables of the moov from the Index: the timing of each track (its
// edit list, the durations of mvhd, tkhd and mdhd) and the run-length tables (stts, ctts,
// stsc). Nothing here writes bytes, so the planner and the box writers share it.

// MovieTimescale is the timescale of mvhd, tkhd and elst durations (as ffmpeg uses).
// Every value in it is rounded once from exact track times, so nothing accumulates.
const MovieTimescale = 1000

// trackTiming holds the derived timing facts of one track, in its timescale.
type trackTiming struct {
	firstDTS    int64
	earliestPTS int64 // minimum DTS+CTO, after the priming samples
	mediaDur    uint64
	presDur     uint64 // latest presentation end - earliestPTS
}

// timing derives a track's timing facts. The decoder priming at the start of an Opus
// track (primingTicks) is not presented: the track starts after it.
func timing(t *TrackIndex) trackTiming {
	tt := trackTiming{firstDTS: t.FirstDTS, earliestPTS: math.MaxInt64}
	dts := t.FirstDTS
	var end int64 = math.MinInt64
	for _, s := range t.samples() {
		d := s.Duration
		pts := dts + int64(s.CTO)
		tt.earliestPTS = min(tt.earliestPTS, pts)
		end = max(end, pts+int64(d))
		dts += int64(d)
		tt.mediaDur += uint64(d)
	}
	if tr := t.trim; tr != nil { // a clip's track (clip.go): presented from..to
		tt.earliestPTS, end = max(tt.earliestPTS, tr.from), min(end, tr.to)
		tt.presDur = uint64(max(end-tt.earliestPTS, 0))
		return tt
	}
	tt.presDur = uint64(end - tt.earliestPTS)
	if skip := primingTicks(t.Track); skip > 0 && uint64(skip) < tt.presDur {
		tt.earliestPTS += skip
		tt.presDur -= uint64(skip)
	}
	return tt
}

// toNanos converts ticks in timescale ts to nanoseconds without overflow for any
// realistic timestamp.
func toNanos(ticks int64, ts uint32) int64 {
	q, r := ticks/int64(ts), ticks%int64(ts)
	if r < 0 {
		q--
		r += int64(ts)
	}
	return q*1e9 + r*1e9/int64(ts)
}

// rescale converts v from timescale from to timescale to, rounding to nearest.
func rescale(v uint64, from, to uint32) uint64 {
	q, r := v/uint64(from), v%uint64(from)
	return q*uint64(to) + (r*uint64(to)+uint64(from)/2)/uint64(from)
}

// Edit is one elst entry; MediaTime -1 is an empty edit.
type Edit struct {
	Duration  uint64 // movie timescale
	MediaTime int64  // track timescale
}

// editLists computes ffmpeg-style edit lists: each track starts at its earliest
// presentation time; the earliest track starts at 0 and the others get an empty edit for
// their delay; the normal edit skips the B-frame delay (earliest PTS - first DTS) and an
// Opus track's priming (media_time = PreSkip, as the Opus-in-ISOBMFF spec and ffmpeg have it).
func editLists(tims []trackTiming, timescales []uint32) [][]Edit {
	starts := make([]int64, len(tims))
	global := int64(math.MaxInt64)
	for i, tt := range tims {
		starts[i] = toNanos(tt.earliestPTS, timescales[i])
		global = min(global, starts[i])
	}
	out := make([][]Edit, len(tims))
	for i, tt := range tims {
		var el []Edit
		if delay := starts[i] - global; delay > 0 {
			if d := rescale(uint64(delay), 1e9, MovieTimescale); d > 0 {
				el = append(el, Edit{Duration: d, MediaTime: -1})
			}
		}
		el = append(el, Edit{
			Duration:  rescale(tt.presDur, timescales[i], MovieTimescale),
			MediaTime: tt.earliestPTS - tt.firstDTS,
		})
		out[i] = el
	}
	return out
}

// trackEdits computes the timing and the edit list of each track of order.
func trackEdits(order []*TrackIndex) ([]trackTiming, [][]Edit) {
	tims := make([]trackTiming, len(order))
	tss := make([]uint32, len(order))
	for i, t := range order {
		tims[i] = timing(t)
		tss[i] = t.Track.Timescale
	}
	return tims, editLists(tims, tss)
}

// trackDurations sums each track's edits into its tkhd duration; the movie lasts as long
// as its longest track (mvhd), both in MovieTimescale.
func trackDurations(edits [][]Edit) (tracks []uint64, movie uint64) {
	tracks = make([]uint64, len(edits))
	for i, el := range edits {
		for _, e := range el {
			tracks[i] += e.Duration
		}
		movie = max(movie, tracks[i])
	}
	return tracks, movie
}

// Run is one run-length entry (stts, ctts).
type Run struct {
	Count uint32
	Value int64
}

// sttsRuns yields the run-length encoding of the sample durations.
func sttsRuns(t *TrackIndex) iter.Seq[Run] {
	return runs(t, func(s SampleEntry) int64 { return int64(s.Duration) })
}

// cttsRuns yields the run-length encoding of the composition offsets (nil when every
// CTO is 0), and says whether any is negative.
func cttsRuns(t *TrackIndex) (iter.Seq[Run], bool) {
	if t.ctos.len() == 0 {
		return nil, false
	}
	negative := false
	for _, s := range t.samples() {
		negative = negative || s.CTO < 0
	}
	return runs(t, func(s SampleEntry) int64 { return int64(s.CTO) }), negative
}

// runs yields the run-length encoding of v over t's samples, computed as it goes (a
// 60-minute video with B-frames has ~90k ctts runs, which are not kept).
func runs(t *TrackIndex, v func(SampleEntry) int64) iter.Seq[Run] {
	return func(yield func(Run) bool) {
		var r Run
		for _, s := range t.samples() {
			x := v(s)
			if r.Count > 0 && r.Value == x {
				r.Count++
				continue
			}
			if r.Count > 0 && !yield(r) {
				return
			}
			r = Run{1, x}
		}
		if r.Count > 0 {
			yield(r)
		}
	}
}

// count is the length of seq: the entry counts of stts and ctts precede their entries,
// and the runs are computed again rather than kept.
func count[T any](seq iter.Seq[T]) uint32 {
	var n uint32
	for range seq {
		n++
	}
	return n
}

// StscEntry is one sample-to-chunk entry (sample description index is always 1).
type StscEntry struct{ FirstChunk, SamplesPerChunk uint32 }

// trackChunks returns the chunks of track ti in media order.
func trackChunks(x *Index, ti uint32) []Chunk {
	var cs []Chunk
	for _, c := range x.Chunks {
		if c.Track == ti {
			cs = append(cs, c)
		}
	}
	return cs
}

// stscEntries run-length encodes the chunks' sample counts: an entry opens where the
// count changes.
func stscEntries(chunks []Chunk) []StscEntry {
	var out []StscEntry
	for i, c := range chunks {
		if n := len(out); n > 0 && out[n-1].SamplesPerChunk == c.Count {
			continue
		}
		out = append(out, StscEntry{FirstChunk: uint32(i + 1), SamplesPerChunk: c.Count})
	}
	return out
}
