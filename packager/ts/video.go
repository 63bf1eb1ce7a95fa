package ts

import (
	"bytes"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// Video access units on the output timeline: where video may start, sync samples,
// parameter sets, and the sample handed to the muxer (see the Demuxer doc).

// frameInfo is what the demuxer needs to know of one video access unit.
type frameInfo struct {
	start  bool // a decoder can start here
	sync   bool // mark as sync sample
	idr    bool // H.264 IDR / HEVC IRAP: ends leading-picture dropping
	nonIDR bool // start is not an IDR (H.264 open GOP) / CRA or BLA (HEVC)
	rasl   bool // HEVC RASL picture
	vps    [][]byte
	sps    [][]byte
	pps    [][]byte
	hasVCL bool
}

func h264Info(au [][]byte) frameInfo {
	var fi frameInfo
	allI, anySlice, recovery := true, false, false
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeIDR:
			fi.idr = true
			anySlice = true
			fi.hasVCL = true
		case h264.NALUTypeNonIDR:
			anySlice = true
			fi.hasVCL = true
			if !h264IntraSlice(n) {
				allI = false
			}
		case h264.NALUTypeDataPartitionA, h264.NALUTypeDataPartitionB, h264.NALUTypeDataPartitionC:
			fi.hasVCL = true
			allI = false
		case h264.NALUTypeSEI:
			if h264RecoveryPoint(n) {
				recovery = true
			}
		case h264.NALUTypeSPS:
			fi.sps = append(fi.sps, n)
		case h264.NALUTypePPS:
			fi.pps = append(fi.pps, n)
		}
	}
	intra := anySlice && allI && !fi.idr
	fi.start = fi.idr || intra
	fi.nonIDR = intra
	fi.sync = fi.idr || (intra && recovery)
	return fi
}

func h265Info(au [][]byte) frameInfo {
	var fi frameInfo
	for _, n := range au {
		if len(n) < 2 {
			continue
		}
		typ := h265.NALUType((n[0] >> 1) & 0x3f)
		switch {
		case typ <= h265.NALUType_RSV_IRAP_VCL23:
			fi.hasVCL = true
			switch {
			case typ >= h265.NALUType_BLA_W_LP && typ <= h265.NALUType_CRA_NUT:
				fi.idr = true
				fi.start = true
				fi.sync = true
				if typ != h265.NALUType_IDR_W_RADL && typ != h265.NALUType_IDR_N_LP {
					fi.nonIDR = true
				}
			case typ == h265.NALUType_RASL_N || typ == h265.NALUType_RASL_R:
				fi.rasl = true
			}
		case typ == h265.NALUType_VPS_NUT:
			fi.vps = append(fi.vps, n)
		case typ == h265.NALUType_SPS_NUT:
			fi.sps = append(fi.sps, n)
		case typ == h265.NALUType_PPS_NUT:
			fi.pps = append(fi.pps, n)
		}
	}
	return fi
}

func cloneAll(l [][]byte) [][]byte {
	if len(l) == 0 {
		return nil
	}
	return cloneAU(l)
}

func containsNALU(l [][]byte, n []byte) bool {
	for _, x := range l {
		if bytes.Equal(x, n) {
			return true
		}
	}
	return false
}

// videoAU handles one video access unit on the output timeline.
func (d *Demuxer) videoAU(pts, dts int64, au [][]byte) error {
	t := d.video
	hevc := t.Codec == media.H265
	var fi frameInfo
	if hevc {
		fi = h265Info(au)
	} else {
		fi = h264Info(au)
	}
	if !d.videoStarted {
		if len(fi.vps) > 0 {
			d.lastVPS = cloneAll(fi.vps)
		}
		if len(fi.sps) > 0 {
			d.lastSPS = cloneAll(fi.sps)
		}
		if len(fi.pps) > 0 {
			d.lastPPS = cloneAll(fi.pps)
		}
	}
	if d.needKey {
		if !fi.start {
			if fi.hasVCL {
				d.skipped++
			}
			return nil // not decodable: drop frames before the first key frame
		}
		if !d.videoStarted {
			if len(d.lastSPS) == 0 || len(d.lastPPS) == 0 || (hevc && len(d.lastVPS) == 0) {
				return nil // parameter sets not seen yet
			}
			if err := d.setVideoParams(hevc); err != nil {
				return err
			}
		}
		d.needKey = false
		d.startPTS = pts
		d.dropLeading = !hevc && fi.nonIDR
		d.dropRASL = hevc && fi.nonIDR
		fi.sync = true
	} else {
		if fi.idr {
			d.dropLeading, d.dropRASL = false, false
		}
		if d.dropRASL && fi.rasl {
			d.skipped++
			return nil // RASL of the CRA/BLA we started at: references precede the start
		}
		if d.dropLeading && pts < d.startPTS {
			d.skipped++
			return nil // leading picture of an open GOP: references precede the start
		}
	}

	// Parameter sets equal to the sample entry's are stripped; if any of the access unit's
	// differs (new SPS/PPS after a discontinuity), all of them stay in-band, as ffmpeg
	// keeps them: a decoder drops the PPS of an SPS that changed, so an identical PPS
	// must follow a changed SPS.
	keepParams := false
	for _, n := range fi.vps {
		keepParams = keepParams || !containsNALU(t.VPS, n)
	}
	for _, n := range fi.sps {
		keepParams = keepParams || !containsNALU(t.SPS, n)
	}
	for _, n := range fi.pps {
		keepParams = keepParams || !containsNALU(t.PPS, n)
	}
	buf := d.buf[:0]
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if hevc {
			if len(n) < 2 {
				continue
			}
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_AUD_NUT, h265.NALUType_FD_NUT:
				continue
			case h265.NALUType_VPS_NUT, h265.NALUType_SPS_NUT, h265.NALUType_PPS_NUT:
				if !keepParams {
					continue
				}
			}
		} else {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeFillerData:
				continue
			case h264.NALUTypeSPS, h264.NALUTypePPS:
				if !keepParams {
					continue
				}
			}
		}
		buf = append(buf, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
		buf = append(buf, n...)
	}
	d.buf = buf
	if len(buf) == 0 || !fi.hasVCL {
		return nil
	}
	if d.videoStarted && dts <= d.lastDTS {
		return d.malformed("video timestamps go backwards (DTS %d after %d) without EXT-X-DISCONTINUITY", dts, d.lastDTS)
	}
	if d.videoStarted {
		d.lastDelta = dts - d.lastDTS
	} else {
		d.lastDelta = VideoTimescale / 25
	}
	d.lastDTS = dts
	if !d.videoStarted || pts > d.maxPTS {
		d.maxPTS = pts
	}
	d.videoStarted = true
	cto := pts - dts
	if cto < 0 {
		cto = 0
	}
	if cto > 1<<31-1 {
		return d.malformed("PTS is %d ticks after DTS", cto)
	}
	return d.curEmit(media.Sample{Track: t, DTS: dts, CTO: int32(cto), Sync: fi.sync, Data: buf})
}

// setVideoParams fills the track's parameter sets and size from those seen last.
func (d *Demuxer) setVideoParams(hevc bool) error {
	t := d.video
	if hevc {
		var sps h265.SPS
		if err := sps.Unmarshal(d.lastSPS[0]); err != nil {
			return d.malformed("invalid HEVC SPS: %v", err)
		}
		t.Width, t.Height = sps.Width(), sps.Height()
		t.VPS = d.lastVPS
	} else {
		var sps h264.SPS
		if err := sps.Unmarshal(d.lastSPS[0]); err != nil {
			return d.malformed("invalid H.264 SPS: %v", err)
		}
		t.Width, t.Height = sps.Width(), sps.Height()
	}
	t.SPS, t.PPS = d.lastSPS, d.lastPPS
	return nil
}

// bitReader reads an RBSP (emulation prevention bytes skipped) MSB first.
type bitReader struct {
	head [rbspHead]byte
	b    []byte
	pos  int // bit position
}

// rbspHead is how much of a NAL unit's head newRBSP reads: slice headers up to the POC.
const rbspHead = 40

// newRBSP reads the first rbspHead bytes of a NAL unit's payload n, without its emulation
// prevention bytes (00 00 03), in a buffer of the reader's own: this runs for every frame.
func newRBSP(n []byte) bitReader {
	var r bitReader
	w, zeros := 0, 0
	for _, c := range n[:min(len(n), rbspHead)] {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		r.head[w] = c
		w++
	}
	r.b = r.head[:w]
	return r
}

func (r *bitReader) bit() (uint, bool) {
	if r.pos >= len(r.b)*8 {
		return 0, false
	}
	v := uint(r.b[r.pos/8]>>(7-r.pos%8)) & 1
	r.pos++
	return v, true
}

// bits reads n bits (n ≤ 32).
func (r *bitReader) bits(n int) (uint, bool) {
	v := uint(0)
	for range n {
		b, ok := r.bit()
		if !ok {
			return 0, false
		}
		v = v<<1 | b
	}
	return v, true
}

func (r *bitReader) ue() (uint, bool) {
	lz := 0
	for {
		b, ok := r.bit()
		if !ok {
			return 0, false
		}
		if b == 1 {
			break
		}
		lz++
		if lz > 31 {
			return 0, false
		}
	}
	v, ok := r.bits(lz)
	return (1 << lz) - 1 + v, ok
}

// h264IntraSlice reports whether an H.264 slice NAL unit is an I or SI slice.
func h264IntraSlice(n []byte) bool {
	if len(n) < 2 {
		return false
	}
	r := newRBSP(n[1:])
	if _, ok := r.ue(); !ok { // first_mb_in_slice
		return false
	}
	st, ok := r.ue()
	if !ok {
		return false
	}
	st %= 5
	return st == 2 || st == 4
}

// h264RecoveryPoint reports whether an H.264 SEI NAL unit holds a recovery point SEI
// message (payload type 6).
func h264RecoveryPoint(n []byte) bool {
	b := h264.EmulationPreventionRemove(n[1:])
	for len(b) > 1 {
		typ, rest, ok := seiNumber(b)
		if !ok {
			return false
		}
		size, rest, ok := seiNumber(rest)
		if !ok {
			return false
		}
		if typ == 6 {
			return true
		}
		if size > len(rest) {
			return false
		}
		b = rest[size:]
		if len(b) == 1 && b[0] == 0x80 { // rbsp_trailing_bits
			return false
		}
	}
	return false
}

// seiNumber reads an SEI payload type or size (0xFF bytes adding 255 each, then one
// byte) from the start of b.
func seiNumber(b []byte) (int, []byte, bool) {
	v := 0
	for len(b) > 0 && b[0] == 0xff {
		v += 255
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, nil, false
	}
	return v + int(b[0]), b[1:], true
}
