package ts

import (
	"bytes"
	"testing"
)

// recSink records what a pesReader hands on.
type recSink struct{ data []byte }

func (r *recSink) pes(bool, int64, int64) {}
func (r *recSink) write(b []byte) error   { r.data = append(r.data, b...); return nil }
func (r *recSink) lose()                  {}
func (r *recSink) kind() string           { return "video" }

// tsPacket is one packet of pid with the PUSI flag, continuity counter cc and payload
// (stuffed with an adaptation field to 188 bytes).
func tsPacket(pid uint16, pusi bool, cc byte, payload []byte) []byte {
	p := []byte{tsSyncByte, byte(pid >> 8), byte(pid), 0x10 | cc&0x0f}
	if pusi {
		p[1] |= 0x40
	}
	if stuff := tsPacketSize - 4 - len(payload); stuff > 0 {
		p[3] |= 0x20
		p = append(p, byte(stuff-1))
		if stuff > 1 {
			p = append(p, 0)
			p = append(p, bytes.Repeat([]byte{0xff}, stuff-2)...)
		}
	}
	return append(p, payload...)
}

func TestPESReader(t *testing.T) {
	pesOf := func(id byte, body []byte) []byte {
		if id == 0xbe {
			return append([]byte{0, 0, 1, id, 0, byte(len(body))}, body...)
		}
		return append([]byte{0, 0, 1, id, 0, byte(len(body) + 8), 0x80, 0x80, 5, 0x21, 0, 1, 0, 1}, body...)
	}
	video1 := []byte{0, 0, 0, 1, 9, 0xf0, 0, 0, 1, 0x65, 1, 2, 3}
	video2 := []byte{0, 0, 0, 1, 9, 0xf0, 0, 0, 1, 0x41, 4, 5, 6}
	tests := []struct {
		name    string
		packets [][]byte
		data    []byte
		lost    string
	}{
		{"padding PES between", [][]byte{
			tsPacket(0x100, true, 0, pesOf(0xe0, video1)),
			tsPacket(0x100, true, 1, pesOf(0xbe, bytes.Repeat([]byte{0xff}, 40))),
			tsPacket(0x100, true, 2, pesOf(0xe0, video2)),
		}, append(append([]byte{}, video1...), video2...), ""},
		{"continuity jump", [][]byte{
			tsPacket(0x100, true, 0, pesOf(0xe0, video1)),
			tsPacket(0x100, true, 3, pesOf(0xe0, video2)),
		}, append(append([]byte{}, video1...), video2...), "2 TS packets of the video missing"},
		{"repeated packet", [][]byte{
			tsPacket(0x100, true, 0, pesOf(0xe0, video1)),
			tsPacket(0x100, true, 0, pesOf(0xe0, video1)),
			tsPacket(0x100, true, 1, pesOf(0xe0, video2)),
		}, append(append([]byte{}, video1...), video2...), ""},
		{"the end of a PES from before the stream", [][]byte{
			tsPacket(0x100, false, 0, video1),
			tsPacket(0x100, true, 1, pesOf(0xe0, video2)),
		}, video2, ""},
		{"payload past a complete PES", [][]byte{
			tsPacket(0x100, true, 0, pesOf(0xe0, video1)),
			tsPacket(0x100, false, 1, video2),
		}, video1, "bytes of video PES packets whose start was lost"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var lost losses
			sink := &recSink{}
			r := &pesReader{lost: &lost}
			r.follow(0x100, sink)
			r.newSegment()
			if err := r.read(bytes.NewReader(bytes.Join(tc.packets, nil))); err != nil {
				t.Fatal(err)
			}
			r.end()
			if !bytes.Equal(sink.data, tc.data) {
				t.Errorf("data % x, want % x", sink.data, tc.data)
			}
			if got := lost.String(); (tc.lost == "") != (got == "") || !bytes.Contains([]byte(got), []byte(tc.lost)) {
				t.Errorf("lost %q, want %q", got, tc.lost)
			}
		})
	}
}
