// Package fmp4 demuxes the fragmented MP4 (fMP4/CMAF) segments of one HLS rendition —
// an init section (EXT-X-MAP) followed by media segments of moof+mdat — into
// media.Samples on one continuous timeline. It is the fMP4 twin of packager/ts.
//
// Timeline rules:
//   - A sample's decode time is the traf's tfdt plus the durations of the samples before
//     it in the traf (a traf without tfdt continues where the track's previous one ended),
//     in the track's mdhd timescale, which is kept as Track.Timescale.
//   - The init's edit list is applied the way players (and ffmpeg's demuxer) do: the
//     leading empty edits delay the track, and the first real edit's media_time is
//     presented at their end. Every time of a track is moved by
//     (empty edits − media_time); so a video elst of the B-frame delay presents the first
//     PTS at 0, and the empty edits ffmpeg writes for start offsets keep the A/V offset.
//     The tracks' offsets (their first times, in seconds) are kept as they are: the
//     timeline is the source's, not rebased to 0 (the muxer derives edit lists from it).
//   - Discontinuity(at) moves the next period so that its earliest decode time (over all
//     tracks of its first segment) lands at the first segment's earliest decode time
//     plus at, but never before the end of what a track already emitted; all tracks move
//     by the same time, keeping the period's A/V offset.
//   - A tfdt that goes backwards (or does not advance) without a discontinuity is
//     media.ErrMalformed.
//
// Samples: every sample is copied as it is, with its sample entry's configuration
// (avcC, hvcC, av1C, esds, dac3, dec3, dOps) carried over as Track.Config, so that what
// is emitted (which samples, their sizes, which are sync samples) follows from the init
// section and the moofs alone, without reading the media:
//   - Sync samples are those the sample flags mark (trun first-sample or per-sample
//     flags, else tfhd's default, else trex's). Only a sample the source gives no flags
//     for (none in its trun or tfhd, and trex's default flags 0, which every muxer
//     writes that puts them in the truns) is judged by its content: H.264/HEVC by a
//     random-access NAL unit; AV1 as sync.
//   - Video samples before the first sync sample cannot be decoded and are left out,
//     as are empty samples.
//   - A later init section whose H.264/HEVC parameter sets differ from the first one's
//     puts its sets in band, in front of each sync sample (as from MPEG-TS).
//
// The exception is H.264/HEVC whose sample entry is avc3/hev1 (parameter sets in band;
// the entry may lack them), or avc1/hvc1 without its parameter sets: there the samples
// are rewritten with 4-byte NAL lengths, without AUD, filler data and parameter sets
// equal to the sample entry's, which takes those of the first sync sample when it has
// none, and written as avc1/hvc1.
//
// The index mode (NewIndexDemuxer, SegmentIndex; index.go) emits the same samples without
// their data, from the init sections and moofs, or refuses with ErrNeedsPayload where
// the above reads the content (docs/instant.md).
//
// Segments are read as streams, box by box, holding the moofs whose samples are still to
// come, the sample being read and what waits to be interleaved, each bounded whatever
// the input (segment.go). Samples of one
// segment are emitted interleaved by decode time across the tracks (so the muxer's
// chunks interleave), within that bound (order.go).
package fmp4

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// unsupportedEntry is the error for a sample entry of type entry in a codec we cannot
// package.
func unsupportedEntry(codec, entry string, video bool) *media.UnsupportedCodecError {
	e := &media.UnsupportedCodecError{Codec: codec, Video: video}
	if entry != "" {
		e.Declared = fmt.Sprintf("sample entry %q", printable(entry))
	}
	return e
}

// malformedIn is the error about the part of the input where names ("init section",
// "segment 3"); seg is the segment's index, -1 for the init section.
func malformedIn(where string, seg int, err error) *media.MalformedError {
	return &media.MalformedError{Container: "fMP4", Where: where, Seg: seg, Err: err}
}

// maxTime bounds decode times (ticks) so that sums and conversions cannot overflow.
const maxTime = 1 << 60

// stream is the state of the video or the audio track across inits and segments.
type stream struct {
	track *media.Track
	cur   *trakInfo // from the latest init; nil when the latest init lacks this kind
	// verbatim: H.264/HEVC samples are copied as they are, in NAL units of nalLen-byte
	// lengths, under the sample entry configuration of the first init (Track.Config).
	verbatim bool
	nalLen   int
	// inband holds length-prefixed parameter sets of a later init that differ from the
	// sample entry's: they go in front of each sync sample (as from TS).
	inband []byte

	// Decode timeline of the source in the current period (init timescale).
	haveRaw bool
	lastRaw int64 // raw DTS of the last sample
	nextRaw int64 // raw DTS after the last sample (for a traf without tfdt)

	// Output timeline (track timescale).
	shift    int64 // added to the elst-adjusted time
	shiftSet bool  // shift is known for the current period
	emitted  bool
	lastOut  int64
	endOut   int64 // lastOut + its duration

	gotSync bool // video: the first decodable sample was emitted
}

// Demuxer turns the fMP4 segments of one HLS rendition, fed in playlist order, into samples.
type Demuxer struct {
	video, audio *stream
	haveInit     bool
	segIndex     int

	originSet bool
	originTS  uint32 // origin = originT / originTS seconds
	originT   int64
	period    int // number of discontinuities seen
	at        time.Duration
	shiftSet  bool     // the current period's shift is known
	shiftNs   *big.Int // the current period's shift in nanoseconds

	buf       []byte // reused sample buffer
	moofBuf   []byte // reused moof buffer
	initMedia []byte // moof+mdat found in the init section, for the next segment
	initAt    int64  // where initMedia starts in the init section
	index     bool   // the index mode (NewIndexDemuxer)
	s         segState

	extinf  time.Duration // of the segment being read (Expect)
	skipped int           // video samples left out before the first decodable one
	leftOut []string      // tracks of the init sections not taken, named
}

var (
	_ media.Demuxer    = (*Demuxer)(nil)
	_ media.Accounting = (*Demuxer)(nil)
)

// Expect takes the EXTINF of the next segment, which its samples must cover
// (media.Covers).
func (d *Demuxer) Expect(seg media.SegmentInfo) { d.extinf = seg.Duration }

// Notes says what was left out without it being an error.
func (d *Demuxer) Notes() []media.Note {
	var out []media.Note
	if len(d.leftOut) > 0 {
		out = append(out, media.Note{Text: "tracks left out (one video and one audio track are taken): " + strings.Join(d.leftOut, ", ")})
	}
	if d.skipped > 0 {
		out = append(out, media.Note{Kind: media.Video, Text: fmt.Sprintf("%d video frames before the first key frame were left out (they cannot be decoded)", d.skipped)})
	}
	return out
}

// NewDemuxer returns a Demuxer for one rendition.
func NewDemuxer() *Demuxer { return &Demuxer{} }

// Tracks lists the tracks found (video first, then audio), IDs 1..n. A video track is
// listed once its first decodable sample was emitted.
func (d *Demuxer) Tracks() []*media.Track {
	var out []*media.Track
	if d.video != nil && d.video.gotSync {
		out = append(out, d.video.track)
	}
	if d.audio != nil {
		out = append(out, d.audio.track)
	}
	for i, t := range out {
		t.ID = i + 1
	}
	return out
}

// Flush emits what is still pending after the last segment: every segment is emitted
// to its end, so nothing; callers must still call it.
func (d *Demuxer) Flush(emit func(media.Sample) error) error { return nil }

// Discontinuity says the next segment starts a new timeline (EXT-X-DISCONTINUITY); see
// the package documentation.
func (d *Demuxer) Discontinuity(at time.Duration) {
	if !d.originSet {
		return // nothing seen yet (a discontinuity before the first media): no-op
	}
	d.period++
	d.at = at
	d.shiftSet = false
	for _, st := range []*stream{d.video, d.audio} {
		if st != nil {
			st.haveRaw = false
			st.shiftSet = false
		}
	}
}

// Init parses an init section (ftyp+moov, from EXT-X-MAP). It is called before the
// first segment and again whenever the map changes.
func (d *Demuxer) Init(data []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = malformedIn("init section", -1, fmt.Errorf("parser panic: %v", p))
		}
	}()
	info, err := parseInit(data)
	if err != nil {
		var uc *media.UnsupportedCodecError
		if errors.As(err, &uc) {
			return err
		}
		return malformedIn("init section", -1, err)
	}
	for _, n := range info.leftOut {
		if !slices.Contains(d.leftOut, n) {
			d.leftOut = append(d.leftOut, n)
		}
	}
	if err := d.setTrack(&d.video, info.video); err != nil {
		return err
	}
	if err := d.setTrack(&d.audio, info.audio); err != nil {
		return err
	}
	if d.index {
		if err := d.indexable(); err != nil {
			return err
		}
	}
	d.haveInit = true
	// Media fragments after the moov (ffmpeg's HLS muxer with frag_duration puts the first
	// segment's media there) are demuxed with the next segment, as ffmpeg's demuxer does.
	d.initMedia = nil
	_ = walkBoxes(data, 0, func(bx box) error {
		if bx.typ == "moof" && d.initMedia == nil {
			d.initMedia = bytes.Clone(data[bx.start:])
			d.initAt = int64(bx.start)
		}
		return nil
	})
	return nil
}

func (d *Demuxer) setTrack(sp **stream, ti *trakInfo) error {
	st := *sp
	if ti == nil {
		if st != nil {
			st.cur = nil
		}
		return nil
	}
	if st == nil {
		t := &media.Track{Kind: ti.kind, Codec: ti.codec, Timescale: ti.timescale}
		t.Config = ti.config
		if ti.kind == media.Video {
			t.Width, t.Height = ti.width, ti.height
			t.VPS, t.SPS, t.PPS = ti.vps, ti.sps, ti.pps
		} else {
			t.SampleRate, t.Channels = ti.sampleRate, ti.channels
			t.FrameDuration, t.ObjectType = ti.frameDur, ti.objectType
		}
		*sp = &stream{track: t, cur: ti, verbatim: ti.verbatim, nalLen: ti.nalLen}
		return nil
	}
	t := st.track
	if t.Codec != ti.codec {
		return unsupportedEntry(fmt.Sprintf("a %s codec change from %s to %s at a new EXT-X-MAP", ti.kind, t.Codec.Name(), ti.codec.Name()), ti.entry, ti.kind == media.Video)
	}
	if ti.kind == media.Audio {
		if !bytes.Equal(t.Config, ti.config) || t.ObjectType != ti.objectType || t.SampleRate != ti.sampleRate || t.Channels != ti.channels {
			return malformedIn("init section", -1, fmt.Errorf("%s configuration changes mid-stream (%d Hz %d ch -> %d Hz %d ch), not supported",
				t.Codec.Name(), t.SampleRate, t.Channels, ti.sampleRate, ti.channels))
		}
	} else if t.Codec == media.AV1 {
		if !bytes.Equal(t.Config, ti.config) || t.Width != ti.width || t.Height != ti.height {
			return malformedIn("init section", -1, errors.New("AV1 configuration changes mid-stream, not supported"))
		}
	} else {
		st.inband = nil
		lenSize := 4 // of the rewritten samples
		if st.verbatim {
			// The samples of this init go out as they are under the first init's
			// configuration: their NAL lengths must be of its size.
			if ti.nalLen != st.nalLen {
				return unsupportedEntry(fmt.Sprintf("%s whose NAL unit length size changes from %d to %d bytes at a new EXT-X-MAP", t.Codec.Name(), st.nalLen, ti.nalLen), ti.entry, true)
			}
			lenSize = st.nalLen
		}
		if len(t.SPS) == 0 && len(ti.sps) > 0 && !st.gotSync {
			t.VPS, t.SPS, t.PPS = ti.vps, ti.sps, ti.pps
			t.Width, t.Height = ti.width, ti.height
		} else if len(ti.sps) > 0 && !(equalSets(t.VPS, ti.vps) && equalSets(t.SPS, ti.sps) && equalSets(t.PPS, ti.pps)) {
			for _, set := range [][][]byte{ti.vps, ti.sps, ti.pps} {
				for _, n := range set {
					if uint64(len(n)) >= 1<<(8*lenSize) {
						return malformedIn("init section", -1, fmt.Errorf("a parameter set of %d bytes does not fit NAL lengths of %d bytes", len(n), lenSize))
					}
					for i := lenSize - 1; i >= 0; i-- {
						st.inband = append(st.inband, byte(len(n)>>(8*i)))
					}
					st.inband = append(st.inband, n...)
				}
			}
		}
	}
	st.cur = ti
	return nil
}

func equalSets(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
