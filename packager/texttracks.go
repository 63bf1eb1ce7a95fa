package packager

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stream-downloads/caddy-stream-downloads/packager/chapters"
	"github.com/stream-downloads/caddy-stream-downloads/packager/hls"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
	"github.com/stream-downloads/caddy-stream-downloads/packager/subtitles"
)

// Subtitles (issue 17): the playlist's WebVTT renditions become tx3g tracks. They are
// small, so they are read whole before the media (instant delivery has them before
// its first byte); their cues are placed on the media's timeline once its start is
// known (the first sample's presentation time), as players place them: through each
// segment's X-TIMESTAMP-MAP.

// subtitleTimescale is the timescale of the tx3g tracks (milliseconds, as WebVTT's).
const subtitleTimescale = 1000

// subtitleSource is a subtitle rendition's WebVTT, read before the media.
type subtitleSource struct {
	info hls.MediaInfo
	segs [][]byte
}

// maxSubtitleBytes bounds the WebVTT a download reads, all renditions together: what
// it holds in memory until the media are done (real subtitles of hours in a dozen
// languages are a few MB).
const maxSubtitleBytes = 32 << 20

// readSubtitles reads the segments of src's subtitle renditions, up to concurrency at
// once; the audio type takes none.
func readSubtitles(ctx context.Context, client *hls.Client, src *hls.Source, typ Type, concurrency int) ([]subtitleSource, error) {
	if typ.AudioOnly() || len(src.Subtitles) == 0 {
		return nil, nil
	}
	out := make([]subtitleSource, len(src.Subtitles))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(concurrency, 1))
	var total atomic.Int64
	for i, r := range src.Subtitles {
		out[i] = subtitleSource{info: r.Media, segs: make([][]byte, len(r.Segments))}
		for j, s := range r.Segments {
			g.Go(func() error {
				b, err := client.ReadSubtitle(gctx, s)
				if total.Add(int64(len(b))) > maxSubtitleBytes {
					return fmt.Errorf("%w: the subtitle renditions hold more than %d MiB of WebVTT", hls.ErrLimit, maxSubtitleBytes>>20)
				}
				out[i].segs[j] = b
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// subtitleTracks turns the subtitle renditions into tx3g tracks and their samples, on
// the timeline of the media, which starts at start (seconds): each track's samples
// cover it from start to its last cue's end, empty samples between cues. A rendition
// without cues gives no track. Its tracks are one alternate group, disabled but for
// the DEFAULT rendition.
func subtitleTracks(subs []subtitleSource, start float64) ([]*media.Track, []media.Sample, error) {
	firstPTS := int64(math.Round(start * 90000))
	offset := int64(math.Round(start * subtitleTimescale))
	var tracks []*media.Track
	var samples []media.Sample
	for _, sub := range subs {
		var cues []subtitles.Cue
		for j, data := range sub.segs {
			c, err := subtitles.ParseSegment(data, firstPTS)
			if err != nil {
				return nil, nil, &media.MalformedError{Container: "WebVTT", Where: fmt.Sprintf("subtitle rendition %q, segment %d", sub.info.Name, j), Seg: -1, Err: err}
			}
			cues = append(cues, c...)
		}
		ss, err := subtitles.TX3GSamples(subtitles.Normalize(cues), subtitleTimescale)
		if err != nil {
			return nil, nil, err
		}
		if len(ss) == 0 {
			continue
		}
		tr := &media.Track{Kind: media.Subtitle, Codec: media.TX3G, Timescale: subtitleTimescale,
			Config: subtitles.TX3GSampleEntry(), Language: sub.info.Language, Name: sub.info.Name,
			Disabled: !sub.info.Default, AlternateGroup: 2, FrameDuration: ss[len(ss)-1].Duration}
		tracks = append(tracks, tr)
		for _, s := range ss {
			samples = append(samples, media.Sample{Track: tr, DTS: s.DTS + offset, Sync: true, Data: s.Data})
		}
	}
	return tracks, samples, nil
}

// addTextTracks makes the subtitle tracks of subs and the chapter track of chs on the
// media's timeline (start; the media last dur), hands their samples to add (after the
// media: they are placed behind it), and returns tracks with them, numbered after the
// others.
func addTextTracks(tracks []*media.Track, subs []subtitleSource, chs []chapters.Chapter, start float64, dur time.Duration, add func(media.Sample) error) ([]*media.Track, error) {
	st, samples, err := subtitleTracks(subs, start)
	if err != nil {
		return nil, err
	}
	if len(chs) > 0 {
		ct, cs, err := chapterTrack(chs, start, dur)
		if err != nil {
			return nil, err
		}
		st, samples = append(st, ct), append(samples, cs...)
	}
	for _, s := range samples {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	for _, t := range st {
		t.ID = len(tracks) + 1
		tracks = append(tracks, t)
	}
	return tracks, nil
}

// chapterEntry is the QuickTime text sample entry of a chapter track, as ffmpeg writes
// it (mov_create_chapter_track): the reserved fields, data reference 1, and the text
// properties QuickTime needs to take the track for chapters (justification 1, the rest
// zeros).
var chapterEntry = func() []byte {
	b := []byte{0, 0, 0, 8 + 8 + 43, 't', 'e', 'x', 't', 0, 0, 0, 0, 0, 0, 0, 1}
	props := make([]byte, 43)
	props[7] = 1
	return append(b, props...)
}()

// chapterTrack is the QuickTime chapter track of chs: a sample per chapter, its title,
// from the chapter's start on the media's timeline (start) to the next one's, the last
// to the end of the media (dur) unless the document says longer.
func chapterTrack(chs []chapters.Chapter, start float64, dur time.Duration) (*media.Track, []media.Sample, error) {
	chs = slices.Clone(chs)
	if last := &chs[len(chs)-1]; last.End < dur {
		last.End = dur
	}
	ss, err := chapters.TrackSamples(chs, subtitleTimescale)
	if err != nil {
		return nil, nil, err
	}
	tr := &media.Track{Kind: media.Chapter, Codec: media.QTText, Timescale: subtitleTimescale, Config: chapterEntry,
		Disabled: true, FrameDuration: ss[len(ss)-1].Duration}
	offset := int64(math.Round(start * subtitleTimescale))
	samples := make([]media.Sample, len(ss))
	for i, s := range ss {
		samples[i] = media.Sample{Track: tr, DTS: s.DTS + offset, Sync: true, Data: s.Data}
	}
	return tr, samples, nil
}
