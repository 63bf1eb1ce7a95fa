package testutil

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// The helpers below are shared by the demuxer tests of packager/ts and packager/fmp4.
// They only know the media.Demuxer seam and an MP4 writer's methods: this package must
// not import packager/ts, packager/fmp4 or packager/mp4, whose in-package tests import
// this one (an import cycle).

// Samples are the samples a demuxer emitted, by kind, in emit order per kind.
type Samples struct {
	Video, Audio []media.Sample
	Order        []media.Kind   // the kind of each sample, in emit order (interleaving)
	Tracks       []*media.Track // the demuxer's Tracks after the run (also after an error)
}

// Add keeps s with a copy of its Data: demuxers reuse their buffers once emit returns.
func (c *Samples) Add(s media.Sample) error {
	s.Data = bytes.Clone(s.Data)
	c.Order = append(c.Order, s.Track.Kind)
	if s.Track.Kind == media.Video {
		c.Video = append(c.Video, s)
	} else {
		c.Audio = append(c.Audio, s)
	}
	return nil
}

// Feed hands the input of one rendition to a demuxer in playlist order (segments, and
// what else that demuxer takes: init sections, discontinuities), passing emit to each
// Segment call. It does not flush.
type Feed func(emit func(media.Sample) error) error

// SegmentFile hands the segment file at path to d.Segment.
func SegmentFile(t testing.TB, d media.Demuxer, path string, emit func(media.Sample) error) error {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return d.Segment(f, emit)
}

// Demux runs feed and then flushes d, collecting every sample; also, when not nil, gets
// each sample too (as emitted, Data not copied). It stops at the first error and returns
// what it collected so far.
func Demux(d media.Demuxer, feed Feed, also func(media.Sample) error) (*Samples, error) {
	c := &Samples{}
	emit := c.Add
	if also != nil {
		emit = func(s media.Sample) error {
			c.Add(s)
			return also(s)
		}
	}
	err := feed(emit)
	if err == nil {
		err = d.Flush(emit)
	}
	c.Tracks = d.Tracks()
	return c, err
}

// Writer is what PackageMP4 needs of an *mp4.Writer; Info is mp4.Info.
type Writer[Info any] interface {
	WriteSample(media.Sample) error
	Finish(tracks []*media.Track) (Info, error)
}

// PackageMP4 demuxes with feed and d into w (an *mp4.Writer on a CreateFile), like the
// packager, failing the test on any error. It returns the writer's Info and the samples
// written.
func PackageMP4[Info any](t testing.TB, w Writer[Info], d media.Demuxer, feed Feed) (Info, *Samples) {
	t.Helper()
	c, err := Demux(d, feed, w.WriteSample)
	if err != nil {
		t.Fatalf("demux: %v", err)
	}
	info, err := w.Finish(c.Tracks)
	if err != nil {
		t.Fatalf("finish: %v", err)
	}
	return info, c
}

// Checks relaxes or tightens CheckSamples where what is right depends on the demuxer or
// on the stream. The zero value is the strictest that holds for every stream.
type Checks struct {
	// NegativeCTO accepts video samples with CTO < 0. The fMP4 demuxer passes signed
	// composition offsets of trun version 1 through as they are; in MPEG-TS PTS is never
	// before DTS, so the TS demuxer must not emit one.
	NegativeCTO bool
	// ChangedParamSets accepts parameter sets (H.264 SPS/PPS, HEVC VPS/SPS/PPS) in a
	// sample as long as one of them differs from the sample entry's: both demuxers keep a
	// new SPS/PPS in-band (all of the access unit's), which happens after a discontinuity
	// that joins two encodes. A sample whose parameter sets all equal the entry's fails
	// even so (those are stripped). Without it any parameter set in a sample fails.
	ChangedParamSets bool
	// AudioStep, when not 0, is the exact DTS step between consecutive audio samples
	// (1024 for AAC, whose timescale is its sample rate). Only for streams without a
	// discontinuity: a new period starts where the playlist says, not one frame on.
	// With 0 the audio DTS must only increase strictly.
	AudioStep int64
}

// CheckSamples verifies the invariants of a demuxer's output: the first video sample
// is a sync sample; DTS strictly increase per kind; CTO is not negative (see Checks);
// video data is a walk of 4-byte length-prefixed, non-empty NAL units that ends
// exactly at the end, without access unit delimiters and without parameter sets
// (see Checks); every audio sample is a sync sample.
func CheckSamples(t testing.TB, c *Samples, opt Checks) {
	t.Helper()
	for i, s := range c.Video {
		if i == 0 && !s.Sync {
			t.Errorf("first video sample is not a sync sample")
		}
		if i > 0 && s.DTS <= c.Video[i-1].DTS {
			t.Fatalf("video DTS not increasing at %d: %d after %d", i, s.DTS, c.Video[i-1].DTS)
		}
		if s.CTO < 0 && !opt.NegativeCTO {
			t.Errorf("negative CTO %d at %d", s.CTO, i)
		}
		tr := s.Track
		if tr.Codec == media.AV1 {
			continue // OBUs, not NAL units
		}
		hevc := tr.Codec == media.H265
		params, same := 0, 0
		for b := s.Data; len(b) > 0; {
			if len(b) < 4 {
				t.Fatalf("sample %d: truncated length prefix", i)
			}
			n := int(binary.BigEndian.Uint32(b))
			if n == 0 || n > len(b)-4 {
				t.Fatalf("sample %d: bad NAL length %d", i, n)
			}
			nal := b[4 : 4+n]
			var aud, param bool
			var typ byte
			if hevc {
				typ = (nal[0] >> 1) & 0x3f
				aud, param = typ == 35, typ >= 32 && typ <= 34
			} else {
				typ = nal[0] & 0x1f
				aud, param = typ == 9, typ == 7 || typ == 8
			}
			switch {
			case aud:
				t.Fatalf("sample %d has an AUD (NAL type %d)", i, typ)
			case param && !opt.ChangedParamSets:
				t.Fatalf("sample %d contains parameter set NAL type %d", i, typ)
			case param:
				params++
				if contains(tr.VPS, nal) || contains(tr.SPS, nal) || contains(tr.PPS, nal) {
					same++
				}
			}
			b = b[4+n:]
		}
		if params > 0 && params == same {
			t.Fatalf("sample %d repeats only parameter sets of the sample entry", i)
		}
	}
	for i, s := range c.Audio {
		if i > 0 {
			if d := s.DTS - c.Audio[i-1].DTS; d <= 0 {
				t.Fatalf("audio DTS not increasing at %d: %d after %d", i, s.DTS, c.Audio[i-1].DTS)
			} else if opt.AudioStep != 0 && d != opt.AudioStep {
				t.Errorf("audio DTS delta at %d = %d, want %d", i, d, opt.AudioStep)
			}
		}
		if !s.Sync {
			t.Errorf("audio sample %d not sync", i)
		}
	}
}

func contains(sets [][]byte, n []byte) bool {
	for _, s := range sets {
		if bytes.Equal(s, n) {
			return true
		}
	}
	return false
}

// CreateFile creates the file at path for an mp4.Writer to write, and closes it when the
// test ends.
func CreateFile(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
