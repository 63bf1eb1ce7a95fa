package packager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
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
	keep  media.Kind // the kind of track taken from it; 0: every kind
	init  *hls.Map   // the init section the demuxer was given last
}

// initer is a demuxer that needs the init section (EXT-X-MAP) of its segments.
type initer interface{ Init(data []byte) error }

// renditions picks what the download type needs from the resolved source: the variant
// (with its muxed audio), and the separate audio rendition when the variant has one.
func renditions(src *hls.Source, typ string) ([]*rendition, error) {
	var out []*rendition
	add := func(s *hls.Source, keep media.Kind) {
		if len(s.Segments) == 0 {
			return
		}
		r := &rendition{segs: s.Segments, keep: keep, demux: ts.NewDemuxer()}
		if s.Segments[0].Map != nil {
			r.demux = fmp4.NewDemuxer()
		}
		out = append(out, r)
	}
	switch {
	case typ == "audio" && src.Audio != nil:
		add(src.Audio, media.Audio)
	case typ == "audio":
		add(src, media.Audio)
	case src.Audio != nil:
		add(src, media.Video)
		add(src.Audio, media.Audio)
	default:
		add(src, 0)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the playlist has no segments", hls.ErrMalformed)
	}
	return out, nil
}

// remux fetches the renditions' segments, interleaved by their time in the playlist so
// the file's chunks of audio and video stay close, demuxes them and writes the samples
// to w. It returns the tracks written, video first, with their IDs set.
//
// It also returns the notes of the demuxers about the tracks written (media.Accounting).
//
// maxOutput (0: none) bounds the media bytes written: the sample that would pass it
// ends the run before it is written. The header comes on top; pack checks the total.
func remux(ctx context.Context, client *hls.Client, rs []*rendition, concurrency int, maxOutput int64, w *mp4.Writer, progress func(done, total time.Duration)) ([]*media.Track, []string, error) {
	type item struct{ r, seg int }
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

	// The demuxers emit from one goroutine at a time (Fetch's consumer, then Flush).
	var written int64
	emits := make([]func(media.Sample) error, len(rs))
	for i, r := range rs {
		emits[i] = func(s media.Sample) error {
			if r.keep != 0 && s.Track.Kind != r.keep {
				return nil
			}
			if maxOutput > 0 && written+int64(len(s.Data)) > maxOutput {
				return limitError{maxOutput}
			}
			written += int64(len(s.Data))
			return diskError("writing the packaged file", w.WriteSample(s))
		}
	}
	var done time.Duration
	err := client.Fetch(ctx, segs, concurrency, func(i int, body io.Reader) error {
		it := items[i]
		r, seg := rs[it.r], segs[i]
		if err := feed(ctx, client, r, it.seg, body, emits[it.r]); err != nil {
			return fmt.Errorf("segment %s: %w", hls.RedactURL(seg.URL), err)
		}
		done += seg.Duration
		progress(done, total)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}

	var tracks []*media.Track
	var notes []string
	for i, r := range rs {
		if err := r.demux.Flush(emits[i]); err != nil {
			// What is left at the end belongs to the last segment.
			return nil, nil, fmt.Errorf("segment %s: %w", hls.RedactURL(r.segs[len(r.segs)-1].URL), err)
		}
		for _, t := range r.demux.Tracks() {
			if r.keep == 0 || t.Kind == r.keep {
				tracks = append(tracks, t)
			}
		}
		if a, ok := r.demux.(media.Accounting); ok {
			for _, n := range a.Notes() {
				if r.keep == 0 || n.Kind == 0 || n.Kind == r.keep {
					notes = append(notes, n.Text)
				}
			}
		}
	}
	slices.SortStableFunc(tracks, func(a, b *media.Track) int { return cmp.Compare(a.Kind, b.Kind) })
	for i, t := range tracks {
		t.ID = i + 1
	}
	if len(tracks) == 0 {
		return nil, nil, errNoMedia
	}
	return tracks, notes, nil
}

// feed hands segment j of r to its demuxer, after the init section and discontinuity
// that apply to it.
func feed(ctx context.Context, client *hls.Client, r *rendition, j int, body io.Reader, emit func(media.Sample) error) error {
	seg := r.segs[j]
	if seg.Map != r.init {
		in, ok := r.demux.(initer)
		if !ok {
			return fmt.Errorf("%w: an MPEG-TS rendition switches to fMP4 (EXT-X-MAP)", hls.ErrUnsupported)
		}
		data, err := client.FetchMap(ctx, seg.Map)
		if err != nil {
			return err
		}
		if err := in.Init(data); err != nil {
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
