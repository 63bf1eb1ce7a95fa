package fmp4

import (
	"errors"
	"math"
	"math/big"
)

// The output timeline: edit lists applied, tracks rescaled to their output timescale,
// periods placed after discontinuities (see the package documentation).

// adjusted is a raw time with the edit list applied, in the init's timescale.
func adjusted(st *stream, raw int64) int64 { return raw + st.cur.offset }

// inTrack converts an adjusted time from the init's timescale to the track's.
func inTrack(st *stream, v int64) int64 {
	if st.cur.timescale == st.track.Timescale {
		return v
	}
	return bigToInt(bigDivFloor(new(big.Int).Mul(big.NewInt(v), big.NewInt(int64(st.track.Timescale))), big.NewInt(int64(st.cur.timescale))))
}

func (d *Demuxer) outTime(st *stream, raw int64) int64 {
	return inTrack(st, adjusted(st, raw)) + st.shift
}

func (d *Demuxer) scaleDur(st *stream, dur uint32) int64 {
	if st.cur.timescale == st.track.Timescale {
		return int64(dur)
	}
	return int64(rescaleU(uint64(dur), st.cur.timescale, st.track.Timescale))
}

// seconds is the output decode time of a raw time, for ordering across tracks.
func (d *Demuxer) seconds(st *stream, raw int64) float64 {
	return float64(d.outTime(st, raw)) / float64(st.track.Timescale)
}

// placeSegment computes the shift of the tracks that start the period in this segment,
// from the first decode time of each track in it. It is called before a sample goes
// out or is compared across tracks: by then the first times of both tracks are known
// when both have samples in the moofs read so far (always, unless maxHeld was passed
// before the second track's first moof).
func (d *Demuxer) placeSegment() error {
	type first struct {
		st *stream
		t  int64 // first time in track timescale, before shift
	}
	var firsts []first
	for k, st := range []*stream{d.video, d.audio} {
		if st != nil && d.s.seen[k] && !st.shiftSet {
			firsts = append(firsts, first{st, inTrack(st, adjusted(st, d.s.first[k]))})
		}
	}
	if len(firsts) == 0 {
		return nil
	}
	ns := func(t int64, ts uint32) *big.Int {
		return bigDivFloor(new(big.Int).Mul(big.NewInt(t), big.NewInt(1e9)), big.NewInt(int64(ts)))
	}
	if !d.originSet {
		for _, f := range firsts {
			if !d.originSet || ns(f.t, f.st.track.Timescale).Cmp(ns(d.originT, d.originTS)) < 0 {
				d.originT, d.originTS, d.originSet = f.t, f.st.track.Timescale, true
			}
		}
	}
	if d.period == 0 {
		for _, f := range firsts {
			f.st.shift, f.st.shiftSet = 0, true
		}
		return nil
	}
	if !d.shiftSet {
		// Earliest time of the new period → origin + at, never before what was emitted.
		var earliest *big.Int
		for _, f := range firsts {
			if v := ns(f.t, f.st.track.Timescale); earliest == nil || v.Cmp(earliest) < 0 {
				earliest = v
			}
		}
		shift := ns(d.originT, d.originTS)
		shift.Add(shift, big.NewInt(int64(d.at)))
		shift.Sub(shift, earliest)
		for _, f := range firsts {
			if !f.st.emitted {
				continue
			}
			need := ns(f.st.endOut, f.st.track.Timescale)
			need.Sub(need, ns(f.t, f.st.track.Timescale))
			if need.Cmp(shift) > 0 {
				shift = need
			}
		}
		d.shiftNs, d.shiftSet = shift, true
	}
	for _, f := range firsts {
		ts := big.NewInt(int64(f.st.track.Timescale))
		s := new(big.Int).Mul(d.shiftNs, ts)
		s = bigDivFloor(s.Add(s, big.NewInt(5e8)), big.NewInt(1e9)) // rounded to nearest
		shift := bigToInt(s)
		if f.st.emitted && f.t+shift < f.st.endOut {
			shift = f.st.endOut - f.t
		}
		if shift > maxTime || shift < -maxTime {
			return errors.New("timeline shift after a discontinuity out of range")
		}
		f.st.shift, f.st.shiftSet = shift, true
	}
	return nil
}

func bigDivFloor(a, b *big.Int) *big.Int {
	q, _ := new(big.Int).DivMod(a, b, new(big.Int)) // Euclidean, so floor for b > 0 (always here)
	return q
}

func bigToInt(v *big.Int) int64 {
	if !v.IsInt64() {
		if v.Sign() < 0 {
			return math.MinInt64 / 2
		}
		return math.MaxInt64 / 2
	}
	return v.Int64()
}
