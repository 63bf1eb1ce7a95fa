package codec

import (
	"errors"
	"fmt"
)

// AC3Config is what a dac3 or dec3 payload says: sample rate, channel count (E-AC-3:
// of independent substream 0 with its dependent substreams) and the JOC (Dolby Atmos)
// extension flag.
type AC3Config struct {
	SampleRate      int // 0 for E-AC-3's reduced rates (fscod 3): take the sample entry's
	Channels        int
	JOC             bool
	ComplexityIndex uint8 // complexity_index_type_a when JOC
}

// DAC3 returns the 3-byte payload of the dac3 box (AC3SpecificBox, TS 102 366 F.4)
// of an AC-3 stream.
func DAC3(h AC3Header) []byte {
	var w bitWriter
	w.put(uint32(h.Fscod), 2)
	w.put(uint32(h.Bsid), 5)
	w.put(uint32(h.Bsmod), 3)
	w.put(uint32(h.Acmod), 3)
	w.put(b2u(h.LFE), 1)
	w.put(uint32(h.BitRateCode), 5)
	w.put(0, 5) // reserved
	return w.b
}

// eac3Program is one independent substream of an access unit with what its
// dependent substreams add.
type eac3Program struct {
	h      AC3Header
	deps   int
	locMap uint16 // union of the dependents' chanmaps
}

// eac3Programs groups the syncframes of one access unit: each dependent substream
// belongs to the independent substream before it (TS 102 366 E.1.3.1.2). An AC-3
// syncframe counts as an independent substream. Dependents before any independent
// one are ignored, and so is all from the second syncframe of an independent
// substream on: with fewer than 6 blocks per syncframe, a unit of 1536 samples holds
// the same substreams again, as ffmpeg's MP4 muxer also reads it.
func eac3Programs(frames []AC3Header) []eac3Program {
	var ps []eac3Program
	var seen [8]bool
	for _, f := range frames {
		if !(f.EAC3 && f.StreamType == 1) {
			if seen[f.SubstreamID&7] {
				break
			}
			seen[f.SubstreamID&7] = true
		}
		if f.EAC3 && f.StreamType == 1 {
			if len(ps) == 0 {
				continue
			}
			p := &ps[len(ps)-1]
			p.deps++
			// Without chanmap a dependent substream has the standard locations of
			// its acmod, replacing the independent substream's: it adds none.
			if f.HasChanMap {
				p.locMap |= f.ChanMap
			}
			continue
		}
		ps = append(ps, eac3Program{h: f})
	}
	return ps
}

// Locations in a chanmap (TS 102 366 Table E.1.4), bit 15 first.
const (
	locL     = 1 << 15
	locC     = 1 << 14
	locR     = 1 << 13
	locLs    = 1 << 12
	locRs    = 1 << 11
	locCs    = 1 << 8
	locLFE   = 1 << 0
	locPairs = 1<<10 | 1<<9 | 1<<6 | 1<<5 | 1<<4 | 1<<2 // Lc/Rc, Lrs/Rrs, Lsd/Rsd, Lw/Rw, Lvh/Rvh, Lts/Rts
)

// acmodLocations is the chanmap of the channels acmod and lfeon code; a 2/1 or 3/1
// mono surround counts as Cs, and 1+1 (dual mono) as L and R.
func acmodLocations(acmod uint8, lfe bool) uint16 {
	m := [8]uint16{locL | locR, locC, locL | locR, locL | locC | locR, locL | locR | locCs,
		locL | locC | locR | locCs, locL | locR | locLs | locRs, locL | locC | locR | locLs | locRs}[acmod&7]
	if lfe {
		m |= locLFE
	}
	return m
}

// chanLoc maps chanmap locations to dec3's 9-bit chan_loc (TS 102 366 Table F.6.1):
// bit 0 Lc/Rc, 1 Lrs/Rrs, 2 Cs, 3 Ts, 4 Lsd/Rsd, 5 Lw/Rw, 6 Lvh/Rvh, 7 Cvh, 8 LFE2.
// chanmap has them from bit 10 down to bit 3, and LFE2 at bit 1; Lts/Rts has no bit.
func chanLoc(chanmap uint16) uint16 {
	var loc uint16
	for i := 0; i < 8; i++ {
		if chanmap&(1<<(10-i)) != 0 {
			loc |= 1 << i
		}
	}
	if chanmap&(1<<1) != 0 {
		loc |= 1 << 8
	}
	return loc
}

// DEC3 returns the payload of the dec3 box (EC3SpecificBox, TS 102 366 F.6) for the
// syncframes of one E-AC-3 access unit (independent substreams, each followed by its
// dependent substreams, in stream order; a unit of syncframes with fewer than 6 blocks
// repeats them, and what follows the second syncframe of an independent substream is
// not looked at), with data_rate in kbit/s. num_dep_sub counts
// the dependent substreams of each independent one, and chan_loc which locations
// beyond 5.1 their chanmaps carry (a dependent substream without chanmap has the
// standard locations of its acmod and adds none; ffmpeg writes its acmod there). When an independent substream has JOC, the
// flag_ec3_extension_type_a / complexity_index_type_a byte pair follows (TS 103 420
// C.3: 7 reserved bits, the flag, 8 bits of complexity index). nil when frames holds
// no independent substream.
func DEC3(frames []AC3Header, dataRateKbps int) []byte {
	ps := eac3Programs(frames)
	if len(ps) == 0 {
		return nil
	}
	var w bitWriter
	w.put(uint32(min(max(dataRateKbps, 0), 1<<13-1)), 13)
	w.put(uint32(len(ps)-1), 3)
	joc := -1
	for _, p := range ps {
		w.put(uint32(p.h.Fscod), 2)
		w.put(uint32(p.h.Bsid), 5)
		w.put(0, 1) // reserved
		w.put(0, 1) // asvc: a main service, as ffmpeg writes
		w.put(uint32(p.h.Bsmod), 3)
		w.put(uint32(p.h.Acmod), 3)
		w.put(b2u(p.h.LFE), 1)
		w.put(0, 3) // reserved
		w.put(uint32(min(p.deps, 15)), 4)
		if p.deps > 0 {
			w.put(uint32(chanLoc(p.locMap)), 9)
		} else {
			w.put(0, 1) // reserved
		}
		if joc < 0 && p.h.JOC {
			joc = int(p.h.ComplexityIndex)
		}
	}
	if joc >= 0 {
		w.put(1, 8) // reserved, flag_ec3_extension_type_a
		w.put(uint32(joc), 8)
	}
	return w.b
}

// EAC3Channels is the channel count of an E-AC-3 access unit: independent substream
// 0's channels and those its dependent substreams add at other locations (from their
// chanmaps; a pair such as Lrs/Rrs counts 2). 0 without an independent substream.
func EAC3Channels(frames []AC3Header) int {
	ps := eac3Programs(frames)
	if len(ps) == 0 {
		return 0
	}
	p := ps[0]
	n := p.h.Channels
	if n == 0 { // a header not from ParseAC3
		n = acmodChannels[p.h.Acmod&7] + int(b2u(p.h.LFE))
	}
	added := p.locMap &^ acmodLocations(p.h.Acmod, p.h.LFE)
	for i := 0; i < 16; i++ {
		if added&(1<<i) != 0 {
			n += 1 + int(b2u(locPairs&(1<<i) != 0))
		}
	}
	return n
}

// ParseDAC3 reads a dac3 payload (from an MP4 or fMP4 init section).
func ParseDAC3(p []byte) (AC3Config, error) {
	if len(p) < 3 {
		return AC3Config{}, fmt.Errorf("codec: dac3 of %d bytes, want 3", len(p))
	}
	r := &bitReader{b: p}
	fscod := r.u(2)
	bsid := r.u(5)
	r.skip(3) // bsmod
	acmod := r.u(3)
	lfe := r.u(1)
	if fscod == 3 {
		return AC3Config{}, errors.New("codec: dac3 has the reserved fscod 3")
	}
	if bsid > 8 {
		return AC3Config{}, fmt.Errorf("codec: dac3 has bsid %d, AC-3 has 0..8", bsid)
	}
	return AC3Config{SampleRate: ac3Rates[fscod], Channels: acmodChannels[acmod] + int(lfe)}, nil
}

// ParseDEC3 reads a dec3 payload: the sample rate and channels of independent
// substream 0 and its dependent substreams' chan_loc, and the JOC extension flag.
func ParseDEC3(p []byte) (AC3Config, error) {
	r := &bitReader{b: p}
	r.skip(13) // data_rate
	n := int(r.u(3)) + 1
	var c AC3Config
	for i := 0; i < n; i++ {
		fscod := r.u(2)
		bsid := r.u(5)
		r.skip(5) // reserved, asvc, bsmod
		acmod := r.u(3)
		lfe := r.u(1)
		r.skip(3) // reserved
		deps := r.u(4)
		loc := uint32(0)
		if deps > 0 {
			loc = r.u(9)
		} else {
			r.skip(1)
		}
		if r.over {
			return AC3Config{}, fmt.Errorf("codec: dec3 of %d bytes cut in substream %d of %d", len(p), i+1, n)
		}
		if bsid > 16 {
			return AC3Config{}, fmt.Errorf("codec: dec3 substream %d has bsid %d, over 16", i+1, bsid)
		}
		if i > 0 {
			continue
		}
		if fscod < 3 {
			c.SampleRate = ac3Rates[fscod]
		}
		c.Channels = acmodChannels[acmod] + int(lfe)
		for b := 0; b < 9; b++ {
			if loc&(1<<b) != 0 {
				c.Channels++
				if b == 0 || b == 1 || b == 4 || b == 5 || b == 6 { // the pairs
					c.Channels++
				}
			}
		}
	}
	// TS 103 420 C.3: two more bytes, the flag in the first one's lowest bit.
	if rest := p[r.pos/8:]; len(rest) >= 2 && rest[0]&1 == 1 {
		c.JOC, c.ComplexityIndex = true, rest[1]
	}
	return c, nil
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}
