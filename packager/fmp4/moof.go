package fmp4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// trun is a track fragment run, read by hand so that its samples are walked in place
// (mp4ff expands every entry into a slice; a moof of the largest allowed size would be
// held twice).
type trun struct {
	version    byte
	flags      uint32
	count      int
	dataOffset int32
	fsf        uint32 // first-sample-flags
	entries    []byte // count entries of stride bytes, in the moof's buffer
	stride     int
}

const (
	trunDataOffset = 0x01
	trunFirstFlags = 0x04
	trunDuration   = 0x100
	trunSize       = 0x200
	trunFlags      = 0x400
	trunCTO        = 0x800
)

// parseTrun reads a trun box's payload (after its header).
func parseTrun(p []byte) (trun, error) {
	if len(p) < 8 {
		return trun{}, errors.New("box \"trun\": truncated")
	}
	vf := binary.BigEndian.Uint32(p)
	t := trun{version: byte(vf >> 24), flags: vf & 0xffffff}
	count := uint64(binary.BigEndian.Uint32(p[4:]))
	p = p[8:]
	if t.flags&trunDataOffset != 0 {
		if len(p) < 4 {
			return trun{}, errors.New("box \"trun\": truncated")
		}
		t.dataOffset = int32(binary.BigEndian.Uint32(p))
		p = p[4:]
	}
	if t.flags&trunFirstFlags != 0 {
		if len(p) < 4 {
			return trun{}, errors.New("box \"trun\": truncated")
		}
		t.fsf = binary.BigEndian.Uint32(p)
		p = p[4:]
	}
	t.stride = 4 * bits.OnesCount32(t.flags&(trunDuration|trunSize|trunFlags|trunCTO))
	if count*uint64(t.stride) != uint64(len(p)) {
		return trun{}, fmt.Errorf("box \"trun\": %d samples of %d bytes in %d bytes", count, t.stride, len(p))
	}
	if count > maxSamplesPerSegment {
		return trun{}, fmt.Errorf("a trun of %d samples (more than the %d a segment may have)", count, maxSamplesPerSegment)
	}
	t.count, t.entries = int(count), p
	return t, nil
}

// defaults are the sample fields a trun may leave out (tfhd, else trex). flagsSet says
// whether flags says anything: given by the tfhd, or a trex's that is not 0 (every init
// has a trex, and muxers that put the flags in the truns leave its flags at 0).
type defaults struct {
	dur, size, flags uint32
	flagsSet         bool
}

// sample reads entry i of the run.
func (t *trun) sample(i int, def defaults) (dur, size, flags uint32, cto int32) {
	dur, size, flags = def.dur, def.size, def.flags
	if i == 0 && t.flags&trunFirstFlags != 0 {
		flags = t.fsf
	}
	e := t.entries[i*t.stride:]
	if t.flags&trunDuration != 0 {
		dur, e = binary.BigEndian.Uint32(e), e[4:]
	}
	if t.flags&trunSize != 0 {
		size, e = binary.BigEndian.Uint32(e), e[4:]
	}
	if t.flags&trunFlags != 0 {
		flags, e = binary.BigEndian.Uint32(e), e[4:]
	}
	if t.flags&trunCTO != 0 {
		cto = int32(binary.BigEndian.Uint32(e)) // version 0 is unsigned; as mp4ff reads it
	}
	return
}

// flagsGiven reports whether the source gives sample i's flags (see sample): in the
// trun, or as defaults that say something (defaults.flagsSet). When it does not, the
// flags read are trex's 0, which says nothing about sync samples.
func (t *trun) flagsGiven(i int, def defaults) bool {
	return t.flags&trunFlags != 0 || (i == 0 && t.flags&trunFirstFlags != 0) || def.flagsSet
}

// run is a trun of a track we take whose samples are not all read yet: a cursor on its
// next sample.
type run struct {
	k     int // track index: 0 video, 1 audio
	track uint32
	tr    trun
	def   defaults
	moof  *moofBuf
	i     int   // next sample of the trun
	seq   int   // its place in decode order among the track's samples of the segment
	pos   int64 // stream offset of its data
	t     int64 // its raw decode time
}

// next reads the run's next sample's fields.
func (r *run) next() (dur, size, flags uint32, cto int32) { return r.tr.sample(r.i, r.def) }

// moofBuf is a moof's bytes, kept while runs read their entries from it.
type moofBuf struct {
	b    []byte
	runs int
}

// maxSampleSize bounds one sample of a kind: see maxVideoSample.
func maxSampleSize(k media.Kind) uint32 {
	if k == media.Video {
		return maxVideoSample
	}
	return maxAudioSample
}

// readTraf reads a traf's tfhd, tfdt (nil when absent) and truns.
func readTraf(payload []byte) (tfhd *mp4.TfhdBox, tfdt *mp4.TfdtBox, truns []trun, err error) {
	err = walkBoxes(payload, 0, func(c box) error {
		switch c.typ {
		case "tfhd", "tfdt":
			b, err := decodeLeaf(c)
			if err != nil {
				return err
			}
			switch v := b.(type) {
			case *mp4.TfhdBox:
				tfhd = v
			case *mp4.TfdtBox:
				tfdt = v
			}
		case "trun":
			tr, err := parseTrun(c.payload)
			if err != nil {
				return err
			}
			truns = append(truns, tr)
		}
		return nil
	})
	if err == nil && tfhd == nil {
		err = errors.New("traf without tfhd")
	}
	return tfhd, tfdt, truns, err
}

// dataBase is the base data offset of a traf's truns in the segment: tfhd's explicit
// one, the moof's start (default-base-is-moof, or the first traf), else where the data
// of the traf before it ended.
func dataBase(tfhd *mp4.TfhdBox, first bool, moofStart, prevEnd int64) (int64, error) {
	switch {
	case tfhd.HasBaseDataOffset():
		if tfhd.BaseDataOffset > maxTime {
			return 0, fmt.Errorf("base data offset %d out of range", tfhd.BaseDataOffset)
		}
		return int64(tfhd.BaseDataOffset), nil
	case tfhd.DefaultBaseIfMoof() || first:
		return moofStart, nil
	}
	return prevEnd, nil
}

// parseMoof reads the trafs of a moof (m.b, the whole box, at stream offset start) and
// adds a run for each trun of a track we take. Every sample is checked here, before
// any data is read: its size against the bounds, its decode time against the track's
// (increasing, across segments within a period too), and its data after the moof.
func (d *Demuxer) parseMoof(m *moofBuf, start int64, hdr int) error {
	s := &d.s
	moofEnd := start + int64(len(m.b))
	prevEnd := start
	first := true
	return walkBoxes(m.b[hdr:], 0, func(bx box) error {
		if bx.typ != "traf" {
			return nil
		}
		tfhd, tfdt, truns, err := readTraf(bx.payload)
		if err != nil {
			return err
		}
		base, err := dataBase(tfhd, first, start, prevEnd)
		if err != nil {
			return err
		}
		first = false
		k, st := -1, (*stream)(nil)
		for i, c := range []*stream{d.video, d.audio} {
			if c != nil && c.cur != nil && c.cur.id == tfhd.TrackID {
				k, st = i, c
			}
		}
		var def defaults
		if st != nil {
			def = defaults{st.cur.defDur, st.cur.defSize, st.cur.defFlags, st.cur.defFlags != 0}
		}
		if tfhd.HasDefaultSampleDuration() {
			def.dur = tfhd.DefaultSampleDuration
		}
		if tfhd.HasDefaultSampleSize() {
			def.size = tfhd.DefaultSampleSize
		}
		if tfhd.HasDefaultSampleFlags() {
			def.flags, def.flagsSet = tfhd.DefaultSampleFlags, true
		}
		var t int64
		if tfdt != nil {
			v := tfdt.BaseMediaDecodeTime()
			if v >= maxTime {
				return fmt.Errorf("track %d: tfdt %d out of range", tfhd.TrackID, v)
			}
			t = int64(v)
		} else if st != nil && st.haveRaw {
			t = st.nextRaw
		}
		pos := base
		for n := range truns {
			tr := &truns[n]
			if tr.flags&trunDataOffset != 0 {
				pos = base + int64(tr.dataOffset)
			} else if n == 0 {
				pos = base
			}
			if s.count += tr.count; s.count > maxSamplesPerSegment {
				return fmt.Errorf("more than %d samples in one segment", maxSamplesPerSegment)
			}
			if pos < 0 {
				return fmt.Errorf("track %d: sample data at %d, before the segment", tfhd.TrackID, pos)
			}
			if st == nil {
				// A track we do not take: its data must still be in the segment.
				for i := 0; i < tr.count; i++ {
					_, size, _, _ := tr.sample(i, def)
					pos += int64(size)
				}
				s.needEnd = max(s.needEnd, pos)
				continue
			}
			if tr.count == 0 {
				continue
			}
			if pos < moofEnd {
				return fmt.Errorf("track %d: sample data at %d, before the end of its moof (at %d): the data must follow the moof", tfhd.TrackID, pos, moofEnd)
			}
			r := &run{k: k, track: tfhd.TrackID, tr: *tr, def: def, moof: m, seq: s.seqs[k], pos: pos, t: t}
			for i := 0; i < tr.count; i++ {
				dur, size, _, _ := tr.sample(i, def)
				if err := d.checkSample(k, st, t, dur, size); err != nil {
					return err
				}
				pos += int64(size)
				t += int64(dur)
				if t >= maxTime {
					return fmt.Errorf("track %d: decode time out of range", tfhd.TrackID)
				}
			}
			st.nextRaw = t
			s.seqs[k] += tr.count
			if len(s.runs) >= maxRuns {
				return fmt.Errorf("more than %d track runs waiting for their data", maxRuns)
			}
			m.runs++
			s.runs.push(r)
		}
		prevEnd = pos
		return nil
	})
}

// checkSample checks a sample of track k (st) at raw decode time t before any of it is
// read: its size, and that decode times increase (across segments within a period
// too); it records it in the segment's span and the track's last time.
func (d *Demuxer) checkSample(k int, st *stream, t int64, dur, size uint32) error {
	s := &d.s
	if limit := maxSampleSize(st.track.Kind); size > limit {
		what := "a video"
		if st.track.Kind == media.Audio {
			what = "an audio"
		}
		return fmt.Errorf("%s sample of %d bytes (at decode time %d): larger than any plausible one, at most %d MiB", what, size, t, limit>>20)
	}
	if st.haveRaw && t <= st.lastRaw {
		if s.seen[k] && t == st.lastRaw && s.lastDur[k] == 0 {
			return fmt.Errorf("%s sample with duration 0 (decode time %d repeats)", st.track.Kind, t)
		}
		return fmt.Errorf("%s decode time goes backwards without EXT-X-DISCONTINUITY (tfdt gives %d after %d, timescale %d)",
			st.track.Kind, t, st.lastRaw, st.cur.timescale)
	}
	if !s.seen[k] {
		s.seen[k], s.first[k] = true, t
	}
	s.lastDur[k] = dur
	s.span[k] += int64(dur)
	st.haveRaw, st.lastRaw = true, t
	return nil
}
