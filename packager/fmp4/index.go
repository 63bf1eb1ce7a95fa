package fmp4

import (
	"errors"
	"fmt"
	"io"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// The index mode (NewIndexDemuxer): the samples a Demuxer emits, with their sizes and
// where their bytes are in the source, but without their data, from the init sections
// and the moofs alone. It is the normal mode with the reading of the sample data left
// out: the same timeline, edit lists, discontinuities, sync samples from the flags,
// dropped leading and empty samples, and the same order (the bounds on what waits to
// be interleaved count the sizes the normal mode would hold), so that a planner fed
// with it decides the same file (docs/instant.md).
//
// Where the normal mode decides from the content, the index mode refuses with
// ErrNeedsPayload: H.264/HEVC whose samples are rewritten (avc3/hev1, or avc1/hvc1
// without parameter sets), video samples without sample flags (sync from content), and
// sync samples that get a later init section's parameter sets in front. The one sample
// content it reads is the first MPEG audio frame's header (the channel count and frame
// length the sample entry may lack), whose data the segment must then hold.

// ErrNeedsPayload says that the index mode cannot decide what the normal mode would
// write without reading the samples' data: package the source in the normal mode.
var ErrNeedsPayload = errors.New("fmp4: the layout depends on the samples' data")

func needsPayload(reason string) error { return fmt.Errorf("%w: %s", ErrNeedsPayload, reason) }

// IndexedSample is a sample of the index mode: what the normal mode emits but its data.
type IndexedSample struct {
	// Sample is as the normal mode emits it, with Data nil (but for a sample whose data
	// the index mode reads: the first MPEG audio frame).
	media.Sample
	// Size is the length of the data the normal mode would emit: the source's bytes.
	Size int
	// Offset is where those bytes are: in the segment, or (InInit) in the init section,
	// whose media fragments ffmpeg's HLS muxer may put there and which are demuxed with
	// the segment after it.
	Offset int64
	InInit bool
}

// NewIndexDemuxer returns a Demuxer in the index mode for one rendition: feed it with
// Init, Discontinuity, Expect and SegmentIndex as a normal one with Segment.
func NewIndexDemuxer() *Demuxer { return &Demuxer{index: true} }

// SegmentIndex is Segment in the index mode: emit gets the samples without their data.
// The segment's bytes are read through (the samples' data is skipped, not held), so
// that the sizes of its boxes are checked as in the normal mode. It fails with an
// error matching ErrNeedsPayload where the normal mode decides from the data.
func (d *Demuxer) SegmentIndex(r io.Reader, emit func(IndexedSample) error) error {
	if !d.index {
		return errors.New("fmp4: SegmentIndex on a demuxer in the normal mode")
	}
	return d.segment(r, nil, emit)
}

// indexable refuses, after an init section, what the index mode cannot do.
func (d *Demuxer) indexable() error {
	if st := d.video; st != nil && st.track.Codec != media.AV1 && !st.verbatim {
		return needsPayload(fmt.Sprintf("%s whose sample entry has parameter sets in band (avc3/hev1) or none: its samples are rewritten", st.track.Codec.Name()))
	}
	return nil
}

// needsData says whether the index mode reads the data of track k's next sample: the
// first MPEG audio frame's header tells the channel count and frame length (out).
func (d *Demuxer) needsData(k int) bool {
	st := d.streamOf(k)
	return k == 1 && st != nil && st.track.Codec == media.MPEGAudio && !st.emitted
}

// indexed is the IndexedSample of s, size bytes at stream offset pos of the segment.
func (d *Demuxer) indexed(s media.Sample, size int, pos int64) IndexedSample {
	x := IndexedSample{Sample: s, Size: size, Offset: pos - d.s.prefix}
	if pos < d.s.prefix {
		x.InInit, x.Offset = true, d.s.prefixAt+pos
	}
	return x
}
