package fmp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/stream-downloads/caddy-stream-downloads/packager/codec"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// sampleFlagsSync says whether ISO BMFF sample flags mark a sync sample:
// sample_is_non_sync_sample is 0 and sample_depends_on is not 1 (depends on others).
func sampleFlagsSync(flags uint32) bool {
	return flags&0x00010000 == 0 && (flags>>24)&3 != 1
}

// videoSample gives the data of a video sample as the output stores it, whether it is a
// sync sample, and whether to keep it: empty samples and the samples before the first
// sync sample (which cannot be decoded) are left out.
//
// Sync samples are those the sample flags mark (sampleFlagsSync), wherever the source
// gives flags; a sample without any (rawSample.noFlags) is a sync sample when it holds a
// random-access picture (codec.RandomAccess), or for AV1, which has no such rule here,
// as the flags of 0 it is read with say.
//
// AV1 samples and H.264/HEVC samples of a verbatim track (an avc1/hvc1 sample entry) are
// copied as they are: what is kept and its size follow from the moof alone (the content
// is read only for a sample without flags). Only sync samples after an init section
// whose parameter sets changed carry more: the new sets in front (stream.inband).
// Other H.264/HEVC samples are rewritten (rewrite).
func (d *Demuxer) videoSample(st *stream, s rawSample) (out []byte, sync, keep bool, err error) {
	t := st.track
	if t.Codec != media.AV1 && !st.verbatim {
		return d.rewrite(st, s) // never in the index mode (indexable)
	}
	if s.size == 0 {
		return nil, false, false, nil
	}
	switch {
	case !s.noFlags || t.Codec == media.AV1:
		sync = sampleFlagsSync(s.flags)
	case d.index:
		return nil, false, false, needsPayload("a video sample without sample flags: whether it is a sync sample depends on its content")
	default:
		sync = randomAccess(s.data, st.nalLen, t.Codec == media.H265)
	}
	if !st.gotSync {
		if !sync {
			d.skipped++
			return nil, false, false, nil // not decodable: dropped
		}
		if t.Width <= 0 || t.Height <= 0 {
			return nil, false, false, errors.New("video width and height unknown (no parsable SPS, no size in the sample entry)")
		}
		st.gotSync = true
	}
	if !sync || len(st.inband) == 0 {
		return s.data, sync, true, nil
	}
	if d.index {
		return nil, false, false, needsPayload("a later init section changes the parameter sets: they are written in front of the sync samples, which are then not the source's bytes")
	}
	buf := d.sampleBuf(len(st.inband) + len(s.data))
	buf = append(append(buf, st.inband...), s.data...)
	d.buf = buf
	return buf, true, true, nil
}

// sampleBuf is d.buf emptied, with room for n bytes.
func (d *Demuxer) sampleBuf(n int) []byte {
	if cap(d.buf) < n {
		// At its size at once: growing by append to a sample of many MiB would leave
		// several times that behind as garbage.
		return make([]byte, 0, n)
	}
	return d.buf[:0]
}

// randomAccess reports whether a length-prefixed sample holds a random-access NAL unit
// (an IDR picture; for HEVC an IRAP picture). A sample whose lengths do not walk holds
// none that can be found.
func randomAccess(data []byte, nalLen int, hevc bool) bool {
	found := false
	_ = forNALs(data, nalLen, func(n []byte) error {
		if codec.RandomAccess(n, hevc) {
			found = true
			return errFound
		}
		return nil
	})
	return found
}

// errFound ends a walk of forNALs early.
var errFound = errors.New("found")

// rewrite converts a sample of an avc3/hev1 track (parameter sets in band; the sample
// entry may lack them) to 4-byte NAL lengths without AUD, filler data and parameter
// sets equal to the sample entry's, which takes those of the first sync sample when it
// has none. The first sync sample must bring the parameter sets; samples before are
// dropped.
func (d *Demuxer) rewrite(st *stream, s rawSample) (out []byte, sync, keep bool, err error) {
	t, ti := st.track, st.cur
	hevc := t.Codec == media.H265
	irap := false
	var vps, sps, pps []byte
	err = forNALs(s.data, ti.nalLen, func(n []byte) error {
		if codec.RandomAccess(n, hevc) {
			irap = true
			return nil
		}
		switch codec.ParameterSetKind(n, hevc) {
		case codec.VPS:
			if vps == nil {
				vps = n
			}
		case codec.SPS:
			if sps == nil {
				sps = n
			}
		case codec.PPS:
			if pps == nil {
				pps = n
			}
		}
		return nil
	})
	if err != nil {
		return nil, false, false, fmt.Errorf("video sample at decode time %d: %v", s.raw, err)
	}
	sync = irap
	if !s.noFlags {
		sync = sampleFlagsSync(s.flags)
	}
	if len(t.SPS) == 0 && sync && sps != nil && pps != nil && (!hevc || vps != nil) {
		// avc3/hev1 without parameter sets in the sample entry: the first keyframe's.
		t.SPS, t.PPS = [][]byte{bytes.Clone(sps)}, [][]byte{bytes.Clone(pps)}
		if hevc {
			t.VPS = [][]byte{bytes.Clone(vps)}
		}
		if w, h, ok := spsSize(t.Codec, sps); ok {
			t.Width, t.Height = w, h
		}
	}
	if !st.gotSync {
		if !sync || len(t.SPS) == 0 || len(t.PPS) == 0 || (hevc && len(t.VPS) == 0) {
			d.skipped++
			return nil, false, false, nil // not decodable: dropped
		}
		if t.Width <= 0 || t.Height <= 0 {
			return nil, false, false, errors.New("video width and height unknown (no parsable SPS, no size in the sample entry)")
		}
		st.gotSync = true
	}
	buf := d.sampleBuf(len(st.inband) + len(s.data) + 64)
	if sync {
		buf = append(buf, st.inband...)
	}
	_ = forNALs(s.data, ti.nalLen, func(n []byte) error {
		if codec.AUDOrFiller(n, hevc) {
			return nil
		}
		var entry [][]byte
		switch codec.ParameterSetKind(n, hevc) {
		case codec.VPS:
			entry = t.VPS
		case codec.SPS:
			entry = t.SPS
		case codec.PPS:
			entry = t.PPS
		}
		if containsSet(entry, n) {
			return nil
		}
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(n)))
		buf = append(buf, n...)
		return nil
	})
	d.buf = buf
	if len(buf) == 0 {
		return nil, false, false, nil
	}
	return buf, sync, true, nil
}

func containsSet(sets [][]byte, n []byte) bool {
	for _, s := range sets {
		if bytes.Equal(s, n) {
			return true
		}
	}
	return false
}

// forNALs calls fn for each non-empty NAL unit of a length-prefixed sample (lenSize 1, 2
// or 4 bytes per length).
func forNALs(b []byte, lenSize int, fn func([]byte) error) error {
	if lenSize != 1 && lenSize != 2 && lenSize != 4 {
		return fmt.Errorf("NAL length size %d", lenSize)
	}
	for len(b) > 0 {
		if len(b) < lenSize {
			return fmt.Errorf("%d stray bytes after the last NAL unit", len(b))
		}
		var n uint64
		for _, c := range b[:lenSize] {
			n = n<<8 | uint64(c)
		}
		b = b[lenSize:]
		if n > uint64(len(b)) {
			return fmt.Errorf("NAL unit length %d exceeds the %d bytes left in the sample", n, len(b))
		}
		if n > 0 {
			if err := fn(b[:n]); err != nil {
				return err
			}
		}
		b = b[n:]
	}
	return nil
}
