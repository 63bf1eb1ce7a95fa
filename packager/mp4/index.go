// Package mp4 writes progressive ("faststart") MP4 files: ftyp, moov, then mdat.
//
// It is split in two: an Index (compact per-sample tables, filled as samples arrive)
// with a pure layout function, BuildHeader, that turns it into the bytes that precede
// the media for a given media start offset; a Planner that makes every layout decision
// from the samples' sizes alone (their order in the media, the Index, the header in the
// reserve or compact); and a Writer that copies media to disk where its Planner places
// them and writes the header in front. A server that sends a file before its media are
// fetched plans it with a Planner alone (docs/instant.md).
package mp4

import (
	"errors"
	"fmt"
	"iter"
	"math"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// SampleEntry describes one sample of a track.
type SampleEntry struct {
	Size uint32
	// Duration is the DTS delta to the next sample of the track, in track timescale;
	// the last sample's is derived (see lastDuration).
	Duration uint32
	CTO      int32
}

// TrackIndex holds the sample table of one track, compactly: a 60-minute video has
// ~260k samples, and the tables stay in memory until the file is finished.
type TrackIndex struct {
	Track    *media.Track
	FirstDTS int64
	// SyncSamples lists 1-based sample numbers of sync samples.
	SyncSamples []uint32
	sizes       blockList[uint32]
	ctos        blockList[int32] // empty while every CTO is 0 (always, for audio)
	durs        []durRun         // DTS deltas of all samples but the last (mostly one run)
	lastDTS     int64
	// trim bounds the presentation of a clip's track (Clip); nil for a whole file.
	trim *clipTrim
}

// Len is the number of samples.
func (t *TrackIndex) Len() int { return t.sizes.len() }

// samples yields the samples in order.
func (t *TrackIndex) samples() iter.Seq2[int, SampleEntry] {
	return func(yield func(int, SampleEntry) bool) {
		n, run, left := t.Len(), -1, uint32(0)
		for i := range n {
			e := SampleEntry{Size: t.sizes.at(i), Duration: t.lastDuration()}
			if t.ctos.len() > 0 {
				e.CTO = t.ctos.at(i)
			}
			if i < n-1 {
				for left == 0 {
					run++
					left = t.durs[run].count
				}
				left--
				e.Duration = t.durs[run].delta
			}
			if !yield(i, e) {
				return
			}
		}
	}
}

// lastDuration is the duration of the last sample: the track's FrameDuration when its
// frames all last the same (AAC 1024, AC-3 1536), else the previous delta (one frame at
// 25 fps when alone).
func (t *TrackIndex) lastDuration() uint32 {
	if d := t.Track.FrameDuration; d > 0 {
		return d
	}
	if n := len(t.durs); n > 0 {
		return t.durs[n-1].delta
	}
	return max(t.Track.Timescale/25, 1)
}

// durRun is a run of samples of the same duration.
type durRun struct{ count, delta uint32 }

// blockList is an append-only list kept in fixed-size blocks: it grows without copying
// and without the slack of a doubling slice.
type blockList[T any] struct {
	blocks [][]T
	n      int
}

const listBlock = 4096

func (l *blockList[T]) add(v T) {
	if l.n%listBlock == 0 {
		l.blocks = append(l.blocks, make([]T, 0, listBlock))
	}
	b := &l.blocks[len(l.blocks)-1]
	*b = append(*b, v)
	l.n++
}

func (l *blockList[T]) at(i int) T { return l.blocks[i/listBlock][i%listBlock] }
func (l *blockList[T]) len() int   { return l.n }

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
	n := t.Len()
	if n >= math.MaxUint32-1 {
		return errors.New("mp4: too many samples")
	}
	if n > 0 {
		d := s.DTS - t.lastDTS
		if d <= 0 || d > math.MaxUint32 {
			return fmt.Errorf("mp4: %w: %s track sample %d has DTS %d after %d", ErrTimestamps, s.Track.Kind, n+1, s.DTS, t.lastDTS)
		}
		if r := len(t.durs) - 1; r >= 0 && t.durs[r].delta == uint32(d) {
			t.durs[r].count++
		} else {
			t.durs = append(t.durs, durRun{1, uint32(d)})
		}
	}
	t.lastDTS = s.DTS
	t.sizes.add(uint32(size))
	if s.CTO != 0 || t.ctos.len() > 0 {
		for t.ctos.len() < n {
			t.ctos.add(0)
		}
		t.ctos.add(s.CTO)
	}
	if s.Sync {
		t.SyncSamples = append(t.SyncSamples, uint32(n+1))
	}
	if c := len(x.Chunks); c > 0 && x.Chunks[c-1].Track == ti &&
		x.Chunks[c-1].Count < maxChunkSamples && x.MediaSize-x.Chunks[c-1].Offset < maxChunkBytes {
		x.Chunks[c-1].Count++
	} else {
		x.Chunks = append(x.Chunks, Chunk{Track: ti, FirstSample: uint32(n), Count: 1, Offset: x.MediaSize})
	}
	x.MediaSize += size
	return nil
}
