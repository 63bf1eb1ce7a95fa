// Package mp4 writes progressive ("faststart") MP4 files: ftyp, moov, then mdat.
//
// It is split in two: an Index (compact per-sample tables, filled as samples arrive)
// with a pure layout function, BuildHeader, that turns it into the bytes that precede
// the media for a given media start offset; and a Writer that copies media to disk and
// places the header in front of it. A later streaming or clipping writer can reuse the
// Index and BuildHeader without the Writer.
package mp4

import (
	"errors"
	"fmt"
	"math"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// SampleEntry is the in-memory table entry of one sample (12 bytes).
type SampleEntry struct {
	Size uint32
	// Duration is the DTS delta to the next sample of the track, in track timescale.
	// The last sample's duration is derived at layout time (see sampleDuration).
	Duration uint32
	CTO      int32
}

// TrackIndex holds the sample table of one track.
type TrackIndex struct {
	Track    *media.Track
	FirstDTS int64
	Samples  []SampleEntry
	// SyncSamples lists 1-based sample numbers of sync samples.
	SyncSamples []uint32
	lastDTS     int64
}

// Chunk is a run of consecutive samples of one track, contiguous in the media.
type Chunk struct {
	Track       uint32 // index into Index.Tracks
	FirstSample uint32 // 0-based index into that track's Samples
	Count       uint32
	Offset      int64 // byte offset relative to the start of the media (mdat payload)
}

// Index is the sample tables of all tracks plus the chunk list in media order.
type Index struct {
	Tracks    []*TrackIndex
	Chunks    []Chunk
	MediaSize int64 // bytes of media (mdat payload)

	byTrack map[*media.Track]uint32
}

// Chunks end when another track's sample comes, or at these limits (so that a reader of
// a single-track file is not handed one chunk as large as the file).
const (
	maxChunkSamples = 1024
	maxChunkBytes   = 1 << 20
)

// ErrTimestamps reports samples whose decode times do not increase.
var ErrTimestamps = errors.New("non-increasing decode timestamps")

// Add records a sample of size bytes placed right after the previous one in the media.
func (x *Index) Add(s media.Sample, size int64) error {
	if s.Track == nil {
		return errors.New("mp4: sample without track")
	}
	if size < 0 || size > math.MaxUint32 {
		return fmt.Errorf("mp4: sample size %d out of range", size)
	}
	if x.byTrack == nil {
		x.byTrack = map[*media.Track]uint32{}
	}
	ti, ok := x.byTrack[s.Track]
	if !ok {
		if s.Track.Timescale == 0 {
			return errors.New("mp4: track with timescale 0")
		}
		ti = uint32(len(x.Tracks))
		x.byTrack[s.Track] = ti
		x.Tracks = append(x.Tracks, &TrackIndex{Track: s.Track, FirstDTS: s.DTS, lastDTS: s.DTS})
	}
	t := x.Tracks[ti]
	if n := len(t.Samples); n > 0 {
		d := s.DTS - t.lastDTS
		if d <= 0 || d > math.MaxUint32 {
			return fmt.Errorf("mp4: %w: %s track sample %d has DTS %d after %d", ErrTimestamps, s.Track.Kind, n+1, s.DTS, t.lastDTS)
		}
		t.Samples[n-1].Duration = uint32(d)
	}
	t.lastDTS = s.DTS
	if len(t.Samples) >= math.MaxUint32-1 {
		return errors.New("mp4: too many samples")
	}
	t.Samples = append(t.Samples, SampleEntry{Size: uint32(size), CTO: s.CTO})
	if s.Sync {
		t.SyncSamples = append(t.SyncSamples, uint32(len(t.Samples)))
	}
	if n := len(x.Chunks); n > 0 && x.Chunks[n-1].Track == ti &&
		x.Chunks[n-1].Count < maxChunkSamples && x.MediaSize-x.Chunks[n-1].Offset < maxChunkBytes {
		x.Chunks[n-1].Count++
	} else {
		x.Chunks = append(x.Chunks, Chunk{Track: ti, FirstSample: uint32(len(t.Samples) - 1), Count: 1, Offset: x.MediaSize})
	}
	x.MediaSize += size
	return nil
}

// sampleDuration is the duration of sample i of t: the DTS delta to the next sample; the
// last sample takes the previous delta (1024 for AAC, one frame at 25 fps when alone).
func (t *TrackIndex) sampleDuration(i int) uint32 {
	n := len(t.Samples)
	if i < n-1 {
		return t.Samples[i].Duration
	}
	if t.Track.Codec == media.AAC {
		return 1024
	}
	if n >= 2 {
		return t.Samples[n-2].Duration
	}
	return max(t.Track.Timescale/25, 1)
}
