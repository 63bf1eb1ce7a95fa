package packager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager/fmp4"
	"github.com/stream-downloads/caddy-stream-downloads/packager/hls"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
	"github.com/stream-downloads/caddy-stream-downloads/packager/mp4"
	"github.com/stream-downloads/caddy-stream-downloads/packager/ts"
)

// errNoMedia: the stream has none of the tracks the download type takes (e.g. no
// audio for an M4A).
var errNoMedia = errors.New("no playable track of the wanted kind in the stream (" + media.Supported + ")")

// rendition is one media playlist the output takes tracks from.
type rendition struct {
	segs  []hls.Segment
	demux media.Demuxer
	keep  media.Kind    // the kind of track taken from it; 0: every kind
	init  *hls.Map      // the init section the demuxer was given last
	audio hls.MediaInfo // what the playlist says of its audio (language, name)
	alt   bool          // an alternative audio rendition: its track is disabled
}

// renditions picks what the download type needs from the resolved source: the variant
// (with its muxed audio), the separate audio rendition when the variant has one, and
// the alternative audio renditions of its group (other languages), in that order.
func renditions(src *hls.Source, typ Type) ([]*rendition, error) {
	var out []*rendition
	add := func(s *hls.Source, keep media.Kind, alt bool) {
		if len(s.Segments) == 0 {
			return
		}
		r := &rendition{segs: s.Segments, keep: keep, demux: ts.NewDemuxer(), audio: s.Media, alt: alt}
		if s.Segments[0].Map != nil {
			r.demux = fmp4.NewDemuxer()
		}
		out = append(out, r)
	}
	switch {
	case typ.AudioOnly() && src.Audio != nil:
		add(src.Audio, media.Audio, false)
	case typ.AudioOnly():
		add(src, media.Audio, false)
	case src.Audio != nil:
		add(src, media.Video, false)
		add(src.Audio, media.Audio, false)
	default:
		add(src, 0, false)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the playlist has no segments", hls.ErrMalformed)
	}
	for _, a := range src.AltAudio {
		add(a, media.Audio, true)
	}
	return out, nil
}

// outputTracks are the tracks of the file, from the tracks of each rendition's demuxer
// (of[i] for rs[i]): those of the kinds taken, video first, then audio in the order of
// the renditions (the default first), with their IDs, and the playlist's language and
// name on the audio; with several audio tracks, they are one alternate group of which
// the alternatives are disabled.
func outputTracks(rs []*rendition, of [][]*media.Track) ([]*media.Track, error) {
	var tracks []*media.Track
	audio := 0
	for i, r := range rs {
		for _, t := range of[i] {
			if r.keep != 0 && t.Kind != r.keep {
				continue
			}
			if t.Kind == media.Audio {
				t.Language, t.Name, t.Disabled = r.audio.Language, r.audio.Name, r.alt
				audio++
			}
			tracks = append(tracks, t)
		}
	}
	if len(tracks) == 0 {
		return nil, errNoMedia
	}
	slices.SortStableFunc(tracks, func(a, b *media.Track) int { return cmp.Compare(a.Kind, b.Kind) })
	for i, t := range tracks {
		t.ID = i + 1
		if t.Kind == media.Audio && audio > 1 {
			t.AlternateGroup = 1
		}
	}
	return tracks, nil
}

// remux fetches the renditions' segments, interleaved by their time in the playlist so
// the file's chunks of audio and video stay close, demuxes them and writes the samples
// to w. It returns the tracks written, video first, with their IDs set.
//
// It also returns the notes of the demuxers about the tracks written (media.Accounting),
// and where the media start: the earliest presentation time, in seconds.
//
// maxOutput (0: none) bounds the media bytes written: the sample that would pass it
// ends the run before it is written. The header comes on top; pack checks the total.
// Before that, every sample is checked against what the playlist says of its segment
// and against limits.duration (timeline).
func remux(ctx context.Context, client *hls.Client, rs []*rendition, concurrency int, maxOutput int64, w *mp4.Writer, progress func(done, total time.Duration)) ([]*media.Track, []string, float64, error) {
	items, segs, total := fetchOrder(rs)

	// The demuxers emit from one goroutine at a time (Fetch's consumer, then Flush).
	var written int64
	start := math.Inf(1)
	emits := make([]func(media.Sample) error, len(rs))
	tls := make([]*timeline, len(rs))
	for i, r := range rs {
		tls[i] = newTimeline(r.segs, client.Limits.Duration)
		g := gate{r.keep, tls[i], &written, maxOutput, &start}
		emits[i] = func(s media.Sample) error {
			if ok, err := g.pass(s, int64(len(s.Data))); !ok {
				return err
			}
			return diskError("writing the packaged file", w.WriteSample(s))
		}
	}
	var done time.Duration
	err := client.Fetch(ctx, segs, concurrency, func(i int, body io.Reader) error {
		it := items[i]
		r, seg := rs[it.r], segs[i]
		tls[it.r].begin(it.seg)
		if err := feed(r, it.seg, body.(hls.SegmentBody), emits[it.r]); err != nil {
			return fmt.Errorf("segment %s: %w", hls.RedactURL(r.segs[segmentOf(err, it.seg)].URL), err)
		}
		done += seg.Duration
		progress(done, total)
		return nil
	})
	if err != nil {
		return nil, nil, 0, err
	}

	var notes []string
	of := make([][]*media.Track, len(rs))
	for i, r := range rs {
		if err := r.demux.Flush(emits[i]); err != nil {
			// What is left at the end belongs to the last segment.
			return nil, nil, 0, fmt.Errorf("segment %s: %w", hls.RedactURL(r.segs[segmentOf(err, len(r.segs)-1)].URL), err)
		}
		of[i] = r.demux.Tracks()
		if a, ok := r.demux.(media.Accounting); ok {
			for _, n := range a.Notes() {
				if r.keep == 0 || n.Kind == 0 || n.Kind == r.keep {
					notes = append(notes, n.Text)
				}
			}
		}
	}
	tracks, err := outputTracks(rs, of)
	if err != nil {
		return nil, nil, 0, err
	}
	return tracks, notes, start, nil
}

// item is a segment of a rendition: rs[r].segs[seg].
type item struct{ r, seg int }

// fetchOrder is the order in which the renditions' segments are fetched and demuxed:
// interleaved by their time in the playlist, so that the file's chunks of audio and
// video stay close. It returns the items, their segments and the total duration.
func fetchOrder(rs []*rendition) ([]item, []hls.Segment, time.Duration) {
	var items []item
	var total time.Duration
	for ri, r := range rs {
		for si, s := range r.segs {
			items = append(items, item{ri, si})
			total += s.Duration
		}
	}
	slices.SortStableFunc(items, func(a, b item) int {
		return cmp.Compare(rs[a.r].segs[a.seg].Start, rs[b.r].segs[b.seg].Start)
	})
	segs := make([]hls.Segment, len(items))
	for i, it := range items {
		segs[i] = rs[it.r].segs[it.seg]
	}
	return items, segs, total
}

// gate is what a rendition's samples pass before they are written (or planned): the
// kind of track taken, the timeline's checks, and the bound on the media written.
type gate struct {
	keep    media.Kind
	tl      *timeline
	written *int64   // media bytes let through so far, of every rendition
	max     int64    // Settings.MaxOutput; 0: none
	start   *float64 // the earliest presentation time let through, in seconds (+Inf before any)
}

// pass says whether sample s, of size bytes, goes into the file; an error ends the run.
func (g gate) pass(s media.Sample, size int64) (bool, error) {
	if g.keep != 0 && s.Track.Kind != g.keep {
		return false, nil
	}
	if err := g.tl.check(s); err != nil {
		return false, err
	}
	if g.max > 0 && *g.written+size > g.max {
		return false, limitError{g.max}
	}
	*g.written += size
	*g.start = min(*g.start, float64(s.DTS+int64(s.CTO))/float64(s.Track.Timescale))
	return true, nil
}

// segmentOf is the segment of a rendition that a demuxer's error about segment j is
// about: an earlier one when the error says so (a loss that shows only in the segment
// after it, media.MalformedError.Seg), else j.
func segmentOf(err error, j int) int {
	var e interface{ Segment() int }
	if errors.As(err, &e) && e.Segment() >= 0 && e.Segment() < j {
		return e.Segment()
	}
	return j
}

// feed hands segment j of r to its demuxer, after the init section (fetched by Fetch
// with the segment) and discontinuity that apply to it.
func feed(r *rendition, j int, body hls.SegmentBody, emit func(media.Sample) error) error {
	seg := r.segs[j]
	if seg.Map != r.init {
		data, err := body.Init()
		if err != nil {
			return err
		}
		if err := r.demux.Init(data); errors.Is(err, ts.ErrInitSection) {
			return fmt.Errorf("%w: %w", hls.ErrUnsupported, err)
		} else if err != nil {
			return fmt.Errorf("init section %s: %w", hls.RedactURL(seg.Map.URL), err)
		}
		r.init = seg.Map
	}
	if seg.Discontinuity && j > 0 {
		r.demux.Discontinuity(seg.Start)
	}
	if a, ok := r.demux.(media.Accounting); ok {
		a.Expect(media.SegmentInfo{Start: seg.Start, Duration: seg.Duration})
	}
	return r.demux.Segment(body, emit)
}

// errImplausible: a segment's media does not fit what the playlist says of it (see
// timeline). classify reports it as malformed_segment.
var errImplausible = errors.New("malformed segment")

// Bounds of what a segment's media may be against its EXTINF (timeline).
const (
	// timelineSlack is what a segment's media may reach past its end by the playlist on
	// top of its grace: the holes a TS demuxer keeps at a segment start (2 s ahead of
	// where the segment before ended, beyond the playlist's gaps), a frame of B-frame
	// delay or of audio priming, a unit completed only by the next segment.
	timelineSlack = 3 * time.Second
	// maxVideoRate and maxAudioRate bound the samples of each kind a segment may yield
	// per second of its EXTINF (grace and slack included). Real streams stay far below:
	// video up to 240 frames/s (high frame rate captures), audio up to 400 frames/s
	// (Opus 2.5 ms frames; AAC at 96 kHz is ~94/s, E-AC-3 is joined into 1536-sample
	// units, MP3/MP2 at 48 kHz is ~42/s).
	maxVideoRate = 300
	maxAudioRate = 1000
)

// grace is how much longer than its EXTINF a segment's media may last: a quarter of it
// (EXTINF is often rounded: to whole seconds before protocol version 3), and at least a
// second when it is a whole number of seconds (it may have been rounded down).
func grace(extinf time.Duration) time.Duration {
	g := extinf / 4
	if extinf%time.Second == 0 {
		g = max(g, time.Second)
	}
	return g
}

// timeline checks the samples a rendition's demuxer emits against its playlist
// (issue 12: a segment of millions of tiny frames, or a timestamp jump of hours, must end
// in an error, not in a file of hundreds of hours). Every demuxer's samples go through it
// (remux's emit), with the segment being fed; positions are seconds on the playlist's
// timeline, the rendition's first sample placed at the start of the segment it came in.
// A sample fails when:
//
//   - it lies past limits.duration (hls.ErrLimit: the limit applies to the media's
//     timeline as to the playlist's);
//   - it lies past the end of its segment by more than the segment's grace plus
//     timelineSlack, counted both from where the segment starts (the later of its start
//     by the playlist and where the media before it reached: a hole of the source or a
//     forward jump is not charged twice) and from the stream's start (its start by the
//     playlist plus the grace of every segment so far: the media may not drift away
//     from the playlist by more than that), so that a jump of hours inside one segment
//     ends the run at that segment;
//   - its segment yielded more samples of its kind than maxVideoRate or maxAudioRate per
//     second of EXTINF, grace and slack (tiny frames that do not advance time fast,
//     as fMP4 sample durations or TS video timestamps may make).
//
// Memory: the sample tables grow with the samples (mp4.Index), so these bounds are what
// keeps a job's memory in proportion to the playlist's duration whatever the segments
// hold. A sample is checked before it is written.
type timeline struct {
	segs  []hls.Segment
	limit time.Duration   // limits.duration
	drift []time.Duration // drift[j]: the grace of segments 0..j

	cur     int     // the segment being fed (the last one during Flush)
	started bool    // origin and at are set
	origin  float64 // the first sample's DTS, in seconds
	at      float64 // its position: the start of the segment it came in
	reach   float64 // the latest position of a sample so far
	base    float64 // where the current segment may start from
	n       [3]int  // samples of the current segment, by media.Kind
}

func newTimeline(segs []hls.Segment, limit time.Duration) *timeline {
	if limit <= 0 {
		limit = hls.DefaultMaxDuration
	}
	tl := &timeline{segs: segs, limit: limit, drift: make([]time.Duration, len(segs))}
	var sum time.Duration
	for j, s := range segs {
		sum += grace(s.Duration)
		tl.drift[j] = sum
	}
	return tl
}

// begin says segment j of the rendition is fed next.
func (tl *timeline) begin(j int) {
	tl.cur = j
	tl.base = max(tl.reach, tl.segs[j].Start.Seconds())
	tl.n = [3]int{}
}

// check takes one sample of the segment being fed, or fails it (see timeline).
func (tl *timeline) check(s media.Sample) error {
	t := float64(s.DTS) / float64(s.Track.Timescale)
	seg := tl.segs[tl.cur]
	if !tl.started {
		tl.started, tl.origin, tl.at = true, t, seg.Start.Seconds()
		tl.reach = tl.at
	}
	pos := t - tl.origin + tl.at
	if pos > tl.limit.Seconds() {
		return fmt.Errorf("%w: the media goes on to %s of its timeline, more than limits.duration (%s)",
			hls.ErrLimit, seconds(pos), tl.limit)
	}
	extinf, g := seg.Duration, grace(seg.Duration)
	end := (seg.Start + extinf).Seconds()
	allowed := min(tl.base+(extinf+g).Seconds(), end+tl.drift[tl.cur].Seconds()) + timelineSlack.Seconds()
	if pos > allowed {
		return fmt.Errorf("%w: its %s reaches %s of the stream's timeline, %s past where the playlist ends the segment (%s: EXTINF %.3f s from %s); up to %s past it is taken",
			errImplausible, s.Track.Kind, seconds(pos), seconds(pos-end), seconds(end), extinf.Seconds(), seconds(seg.Start.Seconds()), seconds(allowed-end))
	}
	k := s.Track.Kind
	if k == media.Video || k == media.Audio {
		rate := maxVideoRate
		if k == media.Audio {
			rate = maxAudioRate
		}
		tl.n[k]++
		if most := int(float64(rate) * (extinf + g + timelineSlack).Seconds()); tl.n[k] > most {
			return fmt.Errorf("%w: it holds more than %d %s samples against its EXTINF of %.3f s (at most %d per second are taken)",
				errImplausible, most, k, extinf.Seconds(), rate)
		}
	}
	tl.reach = max(tl.reach, pos)
	return nil
}

// seconds formats a position in seconds as a duration to the millisecond ("8h0m3.96s").
func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}
