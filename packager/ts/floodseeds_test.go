package ts

import (
	"os"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/packedaudio"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// floodSeeds are FuzzSegment seeds of the hostile shapes of issue 12 point 2: tiny
// frames by the thousand, which a demuxer must take (or refuse) without its work or
// memory growing past the frames it is given.
//   - an AAC PES without length of 9-byte ADTS frames, behind the demo's PAT and PMT;
//   - a packed-audio segment of 9-byte ADTS frames behind its ID3 timestamp;
//   - one-packet H.264 PES a tick apart, each an access unit of a few bytes (the first
//     with the demo's SPS and PPS and an IDR slice, the others P slices).
func floodSeeds(f *testing.F) [][]byte {
	seg, err := os.ReadFile(testutil.DemoSegments(f)[0])
	if err != nil {
		f.Fatal(err)
	}
	psi := seg[:3*tsPacketSize] // SDT, PAT, PMT (video PID 0x100, AAC PID 0x101)
	const packets = 64
	frames := func(n int) []byte {
		var b []byte
		for range n {
			b = append(b, tinyADTSFrame...)
		}
		return b
	}

	// The AAC PES: its header (no length, PTS 1.4 s), then frames, over the packets.
	es := append(floodPESHeader(0xc0, 126000, -1), frames((packets*184-14)/len(tinyADTSFrame))...)
	aac := append([]byte(nil), psi...)
	for i := 0; len(es) > 0 && i < packets; i++ {
		n := min(len(es), 184)
		aac = append(aac, floodPacket(0x101, i == 0, byte(i), es[:n])...)
		es = es[n:]
	}

	packed := append(packedaudio.ID3Timestamp(126000), frames(packets*188/len(tinyADTSFrame))...)

	// The video: SPS and PPS of the demo (seg_000's), AUD, slices of a few bytes.
	sps := []byte{0x67, 0x64, 0x00, 0x15, 0xac, 0xd9, 0x41, 0xb1, 0xfe, 0x4f, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x62, 0xd9, 0x60}
	pps := []byte{0x68, 0xef, 0xbc, 0xb0}
	nal := func(b []byte) []byte { return append([]byte{0, 0, 0, 1}, b...) }
	aud := nal([]byte{0x09, 0xf0})
	video := append([]byte(nil), psi...)
	for i := range packets {
		au := aud
		if i == 0 {
			au = append(append(append(au, nal(sps)...), nal(pps)...), nal([]byte{0x65, 0x88, 0x84, 0x00, 0x33})...)
		} else {
			au = append(au, nal([]byte{0x41, 0x9a, 0x02, 0x04, 0x80})...)
		}
		ts := int64(126000 + i) // a tick apart
		video = append(video, floodPacket(0x100, true, byte(i), append(floodPESHeader(0xe0, ts, ts), au...))...)
	}
	return [][]byte{aac, packed, video}
}

// tinyADTSFrame is an ADTS frame of 9 bytes: AAC LC, 48 kHz, stereo, 2 bytes of payload.
var tinyADTSFrame = []byte{0xff, 0xf1, 0x4c, 0x80, 0x01, 0x3f, 0xfc, 0x21, 0x10}

// floodPESHeader is the header of a PES without length, of stream id, with a PTS, and a DTS
// when dts >= 0.
func floodPESHeader(id byte, pts, dts int64) []byte {
	stamp := func(prefix byte, t int64) []byte {
		return []byte{prefix<<4 | byte(t>>29)&0x0e | 1, byte(t >> 22), byte(t>>14) | 1, byte(t >> 7), byte(t<<1) | 1}
	}
	if dts < 0 {
		return append([]byte{0, 0, 1, id, 0, 0, 0x80, 0x80, 5}, stamp(2, pts)...)
	}
	h := append([]byte{0, 0, 1, id, 0, 0, 0x80, 0xc0, 10}, stamp(3, pts)...)
	return append(h, stamp(1, dts)...)
}

// floodPacket is one TS packet of pid with payload (at most 184 bytes), padded by an
// adaptation field of stuffing when shorter.
func floodPacket(pid uint16, pusi bool, cc byte, payload []byte) []byte {
	p := []byte{tsSyncByte, byte(pid>>8) & 0x1f, byte(pid), 0x10 | cc&0x0f}
	if pusi {
		p[1] |= 0x40
	}
	if pad := 184 - len(payload); pad > 0 {
		p[3] |= 0x20
		p = append(p, byte(pad-1))
		if pad > 1 {
			p = append(p, 0)
			for range pad - 2 {
				p = append(p, 0xff)
			}
		}
	}
	return append(p, payload...)
}
