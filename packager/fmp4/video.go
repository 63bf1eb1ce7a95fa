package fmp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// sampleFlagsSync says whether ISO BMFF sample flags mark a sync sample:
// sample_is_non_sync_sample is 0 and sample_depends_on is not 1 (depends on others).
func sampleFlagsSync(flags uint32) bool {
	return flags&0x00010000 == 0 && (flags>>24)&3 != 1
}

// videoSample converts a video sample to 4-byte NAL lengths without AUD, filler data
// and parameter sets equal to the sample entry's. It reports whether the sample is a
// sync sample (the flags say so and it holds an IDR/IRAP picture) and whether to keep
// it (leading samples before the first decodable one are dropped).
func (d *Demuxer) videoSample(st *stream, s rawSample) (out []byte, sync, keep bool, err error) {
	t, ti := st.track, st.cur
	if t.Codec == media.AV1 {
		// Copied as it is: a temporal unit in the av1C sample format; sync from the flags.
		sync = sampleFlagsSync(s.flags)
		if !st.gotSync && !sync {
			d.skipped++
			return nil, false, false, nil
		}
		st.gotSync = true
		return s.data, sync, len(s.data) > 0, nil
	}
	hevc := t.Codec == media.H265
	irap := false
	var vps, sps, pps []byte
	err = forNALs(s.data, ti.nalLen, func(n []byte) error {
		typ := nalType(n, hevc)
		if hevc {
			switch {
			case typ >= 16 && typ <= 21:
				irap = true
			case typ == hevcVPS && vps == nil:
				vps = n
			case typ == hevcSPS && sps == nil:
				sps = n
			case typ == hevcPPS && pps == nil:
				pps = n
			}
		} else {
			switch typ {
			case 5:
				irap = true
			case 7:
				if sps == nil {
					sps = n
				}
			case 8:
				if pps == nil {
					pps = n
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, false, false, fmt.Errorf("video sample at decode time %d: %v", s.raw, err)
	}
	sync = irap && sampleFlagsSync(s.flags)
	if len(t.SPS) == 0 && irap && sps != nil && pps != nil && (!hevc || vps != nil) {
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
	buf := d.buf[:0]
	if n := len(st.inband) + len(s.data) + 64; cap(buf) < n {
		// At its size at once: growing by append to a sample of many MiB would leave
		// several times that behind as garbage.
		buf = make([]byte, 0, n)
	}
	if sync {
		buf = append(buf, st.inband...)
	}
	_ = forNALs(s.data, ti.nalLen, func(n []byte) error {
		typ := nalType(n, hevc)
		if hevc {
			switch typ {
			case hevcAUD, hevcFD:
				return nil
			case hevcVPS:
				if containsSet(t.VPS, n) {
					return nil
				}
			case hevcSPS:
				if containsSet(t.SPS, n) {
					return nil
				}
			case hevcPPS:
				if containsSet(t.PPS, n) {
					return nil
				}
			}
		} else {
			switch typ {
			case 9, 12:
				return nil
			case 7:
				if containsSet(t.SPS, n) {
					return nil
				}
			case 8:
				if containsSet(t.PPS, n) {
					return nil
				}
			}
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

func nalType(n []byte, hevc bool) byte {
	if hevc {
		return (n[0] >> 1) & 0x3f
	}
	return n[0] & 0x1f
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
