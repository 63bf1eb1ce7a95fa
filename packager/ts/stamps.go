package ts

// Timestamps of units whose bytes may be cut anywhere into PES.
//
// ISO 13818-1 (2.4.3.7): the PTS/DTS of a PES belong to the first access unit that
// starts in that PES; a PES in which none starts carries none. Packagers that do not
// align PES with access units (Apple's segmenters) rely on that rule. A unit "starts"
// at its first byte (the start code of its first NAL unit, or the ADTS sync word); when
// a PES boundary falls inside that start code or header, a muxer may have counted the
// unit to either PES: a PES that starts inside it lends its timestamps when the PES of
// the first byte has none, or when they fit the unit (fits: the DTS this unit is due
// at), else they are left for the next unit.

// stamp is where one PES starts in its elementary stream and what it carries.
type stamp struct {
	pos      int64 // offset in the elementary stream of the PES's first payload byte
	has      bool  // the PES has a PTS
	used     bool  // given to a unit already
	pts, dts int64 // raw 33-bit, 90 kHz
}

// maxStamps bounds the PES remembered inside one unit: the oldest are forgotten (they
// carry no timestamp of a later unit).
const maxStamps = 4096

// stamps is the queue of PES starts not yet passed by a unit start.
type stamps struct{ q []stamp }

func (s *stamps) reset() { s.q = s.q[:0] }

// add records a PES starting at pos.
func (s *stamps) add(pos int64, has bool, pts, dts int64) {
	if n := len(s.q); n > 0 && !has && !s.q[n-1].has {
		return // consecutive PES without timestamps: the first stands for all
	}
	if len(s.q) >= maxStamps {
		s.q = append(s.q[:0], s.q[len(s.q)/2:]...)
	}
	s.q = append(s.q, stamp{pos: pos, has: has, pts: pts, dts: dts})
}

// take returns the timestamps of a unit whose first byte is at o and whose start code or
// header ends at h (o ≤ h); ok is false when the unit has none of its own. fits, when
// not nil, says whether a DTS is the one this unit is due at.
func (s *stamps) take(o, h int64, fits func(dts int64) bool) (pts, dts int64, ok bool) {
	// The PES holding o is the last one starting at or before o; earlier ones are done.
	i := -1
	for j := range s.q {
		if s.q[j].pos > o {
			break
		}
		i = j
	}
	if i > 0 {
		s.q = append(s.q[:0], s.q[i:]...)
		i = 0
	}
	own := i == 0 && s.q[0].has
	if own && !s.q[0].used {
		s.q[0].used = true
		return s.q[0].pts, s.q[0].dts, true
	}
	for j := i + 1; j < len(s.q) && s.q[j].pos <= h; j++ {
		if s.q[j].has && !s.q[j].used && (!own || fits != nil && fits(s.q[j].dts)) {
			s.q[j].used = true
			return s.q[j].pts, s.q[j].dts, true
		}
	}
	return 0, 0, false
}
