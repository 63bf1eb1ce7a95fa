package ts

import (
	"bytes"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/stream-downloads/caddy-stream-downloads/packager/codec"
)

// Presentation times of access units whose PES carried none.
//
// A PES holds the timestamps of the first access unit that starts in it only; when a
// packager puts several units in one PES (legal, up to 0.7 s apart), the others have
// none. Their DTS follows the one before by a frame; their PTS, with B-frames, does not:
// it follows from the picture order count (POC) in the slice header, against the last
// unit that had its own timestamps: PTS = its PTS + (POC - its POC) × ticks per POC step,
// the step learnt from units that had timestamps (2 per frame for x264, 1 for x265 until
// learnt otherwise). POC restarts at IDR pictures, so only units since the last one are
// compared; an IDR picture without timestamps is shown as late after its DTS as the last
// one that had them (the stream's reorder delay).

// pocState follows the picture order count of one video stream.
type pocState struct {
	hevc bool

	h264SPS  h264.SPS
	h265SPS  h265.SPS
	h265PPS  h265.PPS
	spsBytes []byte
	ppsBytes []byte
	haveSPS  bool
	havePPS  bool

	// The last unit with its own timestamps, in this IDR period.
	refPTS, refPOC int64
	haveRef        bool
	perStep        int64 // PTS ticks per POC step; 0: not learnt
	restartCTO     int64 // PTS-DTS of the last IDR picture with timestamps
	haveRestart    bool
}

// params takes the parameter sets of an access unit.
func (s *pocState) params(nalus [][]byte) {
	for _, n := range nalus {
		if len(n) < 2 {
			continue
		}
		switch codec.ParameterSetKind(n, s.hevc) {
		case codec.SPS:
			if !bytes.Equal(n, s.spsBytes) {
				s.spsBytes = append(s.spsBytes[:0], n...)
				if s.hevc {
					s.haveSPS = s.h265SPS.Unmarshal(n) == nil
				} else {
					s.haveSPS = s.h264SPS.Unmarshal(n) == nil
				}
			}
		case codec.PPS:
			if s.hevc && !bytes.Equal(n, s.ppsBytes) {
				s.ppsBytes = append(s.ppsBytes[:0], n...)
				s.havePPS = s.h265PPS.Unmarshal(n) == nil
			}
		}
	}
}

// poc returns the picture order count (its LSBs, or 0 at an IDR) of an access unit, and
// whether it restarts the count (an IDR or BLA picture); ok is false when it cannot be
// read, and then idr says nothing. The slice headers are read by packager/codec.
func (s *pocState) poc(nalus [][]byte) (poc int64, idr, ok bool) {
	s.params(nalus)
	for _, n := range nalus {
		if len(n) < 3 || !codec.VCL(n, s.hevc) {
			continue
		}
		if s.hevc {
			if codec.IDR(n, true) {
				return 0, true, true
			}
			if !s.haveSPS || !s.havePPS {
				return 0, false, false
			}
			lsb, ok := codec.HEVCSlicePOC(n, &s.h265SPS, &s.h265PPS)
			return int64(lsb), codec.BLA(n, true), ok
		}
		if typ := h264.NALUType(codec.NALType(n, false)); typ != h264.NALUTypeIDR && typ != h264.NALUTypeNonIDR {
			continue // a slice data partition
		}
		idr = codec.IDR(n, false)
		if !s.haveSPS {
			return 0, idr, false
		}
		lsb, ok := codec.H264SlicePOC(n, &s.h264SPS)
		return int64(lsb), idr, ok
	}
	return 0, false, false
}

// pocBits is the width of the POC LSBs, for differences across their wrap.
func (s *pocState) pocBits() int {
	if s.hevc {
		return int(s.h265SPS.Log2MaxPicOrderCntLsbMinus4 + 4)
	}
	return int(s.h264SPS.Log2MaxPicOrderCntLsbMinus4 + 4)
}

// diff is a-b for POC LSBs (the nearest way round).
func (s *pocState) diff(a, b int64) int64 {
	m := int64(1) << s.pocBits()
	d := (a - b) & (m - 1)
	if d >= m/2 {
		d -= m
	}
	return d
}

// unit takes an access unit; for one without timestamps (stamped false) it returns its
// PTS from the POC when that can be known (ok).
func (s *pocState) unit(nalus [][]byte, pts, dts int64, stamped bool, frame int64) (int64, bool) {
	poc, restart, ok := s.poc(nalus)
	if restart || !ok {
		s.haveRef = false
	}
	if !ok {
		return 0, false
	}
	if restart && stamped {
		s.restartCTO, s.haveRestart = wrapDiff(pts, dts), true
	}
	if restart && !stamped && s.haveRestart {
		pts, stamped = (dts+s.restartCTO)&tsMask, true
	}
	if stamped {
		if s.haveRef {
			dp := wrapDiff(pts, s.refPTS)
			if d := s.diff(poc, s.refPOC); d != 0 && dp%d == 0 && dp/d > 0 {
				s.perStep = dp / d
			}
		}
		s.refPTS, s.refPOC, s.haveRef = pts, poc, true
		return pts, true
	}
	if !s.haveRef {
		return 0, false
	}
	step := s.perStep
	if step == 0 {
		step = frame / 2 // x264 counts two per frame
		if s.hevc {
			step = frame
		}
	}
	// The unit becomes the reference: POC LSBs wrap, so differences must stay short.
	s.refPTS, s.refPOC = (s.refPTS+s.diff(poc, s.refPOC)*step)&tsMask, poc
	return s.refPTS, true
}

// tsMask keeps the 33 bits of an MPEG-TS timestamp.
const tsMask = 1<<33 - 1

// wrapDiff is a-b for 33-bit timestamps (the nearest way round).
func wrapDiff(a, b int64) int64 {
	d := (a - b) & tsMask
	if d >= 1<<32 {
		d -= 1 << 33
	}
	return d
}
