package tsrecut

import (
	"fmt"
	"slices"

	"github.com/stream-downloads/caddy-stream-downloads/internal/mpegcrc"
)

// Damaged variants of a segment, for the refusals the module must make.

// DeclareStream returns in with every PMT that has no entry for pid extended by one
// elementary stream of streamType on pid (no descriptors), its CRC32 recomputed: a stream
// that the PMT declares and that never has a packet.
func DeclareStream(in []byte, streamType byte, pid uint16) ([]byte, error) {
	seg, err := Demux(in)
	if err != nil {
		return nil, err
	}
	if seg.Stream(pid) != nil || pid == 0 || pid == seg.PMTPID || pid >= nullPID {
		return nil, fmt.Errorf("tsrecut: PID %#x is already used", pid)
	}
	out := slices.Clone(in)
	n := 0
	for pos := 0; pos < len(out); pos += PacketSize {
		p, err := parsePacket(out[pos:], pos)
		if err != nil {
			return nil, err
		}
		if p.pid != seg.PMTPID || !p.pusi || !p.hasPayld {
			continue
		}
		sec, err := section(p.payload)
		if err != nil {
			return nil, err
		}
		start := pos + PacketSize - len(p.payload) + 1 + int(p.payload[0]) // section's offset in out
		end := start + len(sec)
		if end+5 > pos+PacketSize {
			return nil, fmt.Errorf("tsrecut: no room for one more PMT entry in the packet at %d", pos)
		}
		entry := []byte{streamType, 0xe0 | byte(pid>>8), byte(pid), 0xf0, 0}
		grown := slices.Concat(sec[:len(sec)-4], entry) // without the CRC
		l := len(grown) + 4 - 3
		grown[1] = grown[1]&0xf0 | byte(l>>8)
		grown[2] = byte(l)
		c := mpegcrc.Sum(grown)
		grown = append(grown, byte(c>>24), byte(c>>16), byte(c>>8), byte(c))
		copy(out[start:], grown) // the packet's stuffing (0xff) makes room
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("tsrecut: no PMT packet")
	}
	return out, nil
}

// Lose returns in without n TS packets of the largest PES on pid (the first such PES when
// several are as large), taken from its middle: its first packet stays, the continuity
// counter jumps, no discontinuity indicator says so. It also returns the index of the
// first packet removed.
func Lose(in []byte, pid uint16, n int) ([]byte, int, error) {
	if len(in)%PacketSize != 0 {
		return nil, 0, inputErr("%d bytes is not a whole number of packets", len(in))
	}
	// The packets of each PES of pid, by packet index.
	var pes [][]int
	for i := 0; i*PacketSize < len(in); i++ {
		p, err := parsePacket(in[i*PacketSize:], i*PacketSize)
		if err != nil {
			return nil, 0, err
		}
		if p.pid != pid || !p.hasPayld {
			continue
		}
		if p.pusi {
			pes = append(pes, nil)
		}
		if len(pes) > 0 {
			pes[len(pes)-1] = append(pes[len(pes)-1], i)
		}
	}
	best := -1
	for i, ps := range pes {
		if best < 0 || len(ps) > len(pes[best]) {
			best = i
		}
	}
	if best < 0 || len(pes[best]) < n+2 {
		return nil, 0, fmt.Errorf("tsrecut: no PES on PID %#x has %d packets or more", pid, n+2)
	}
	ps := pes[best]
	from := 1 + (len(ps)-1-n)/2
	drop := map[int]bool{}
	for _, i := range ps[from : from+n] {
		drop[i] = true
	}
	out := make([]byte, 0, len(in))
	for i := 0; i*PacketSize < len(in); i++ {
		if !drop[i] {
			out = append(out, in[i*PacketSize:(i+1)*PacketSize]...)
		}
	}
	return out, ps[from], nil
}

// Truncate returns in with only the PES that begin in its first keep (0..1) of packets:
// whole PES of every stream, all PSI packets; a well-formed segment that holds about keep
// of the media.
func Truncate(in []byte, keep float64) ([]byte, error) {
	seg, err := Demux(in)
	if err != nil {
		return nil, err
	}
	total := len(in) / PacketSize
	cut := int(float64(total) * keep)
	keeping := map[uint16]bool{}
	out := make([]byte, 0, len(in))
	for i := 0; i < total; i++ {
		b := in[i*PacketSize : (i+1)*PacketSize]
		p, _ := parsePacket(b, i*PacketSize)
		if seg.Stream(p.pid) != nil {
			if p.pusi {
				keeping[p.pid] = i < cut
			}
			if !keeping[p.pid] {
				continue
			}
		}
		out = append(out, b...)
	}
	return out, nil
}
