package ts

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// TestSegmentCutShort (issue 12 point 3): a segment cut at a packet boundary, in the middle
// of the playlist, is an error about that segment (media.MalformedError.Seg), found in the
// next one: a PES short of its length, or, where the packager keeps the continuity
// counters across segments (the PAT and PMT go on), a media counter that jumps. Where the
// counters do not tell (a packager that starts every segment anew, a discontinuity), a
// whole stream gives the same samples as before: no loss is made up.
func TestSegmentCutShort(t *testing.T) {
	segs := readAll(t, testutil.DemoSegments(t))
	want, err := demuxBytes(t, segs)
	if err != nil {
		t.Fatal(err)
	}
	with1 := func(seg []byte) [][]byte { return [][]byte{segs[0], seg, segs[2]} }
	inVideo := testutil.CutInsidePES(t, segs[1], 0.9, testutil.TSPES.Video)
	inAudio := testutil.CutInsidePES(t, segs[1], 0.9, testutil.TSPES.Audio)
	pes := testutil.PESOf(t, segs[1])
	lastPES := pes[len(pes)-1] // ffmpeg ends a segment with audio
	if !lastPES.Audio() {
		t.Fatalf("the last PES of segment 1 is not audio: %+v", lastPES)
	}
	afterLastVideo := 0 // past the last video PES: only whole audio PES are cut off
	for _, p := range pes {
		if p.Video() {
			afterLastVideo = (p.Packets[len(p.Packets)-1] + 1) * tsPacketSize
		}
	}
	for _, c := range []struct {
		name string
		segs [][]byte
		want string // in the error about segment 1
	}{
		{"inside a video PES", with1(segs[1][:inVideo]), "TS packets (modulo 16) of the video missing at its end"},
		{"inside an audio PES", with1(segs[1][:inAudio]), "bytes of audio PES packets cut short"},
		{"inside the last PES", with1(segs[1][:lastPES.Packets[1]*tsPacketSize]), "bytes of audio PES packets cut short"},
		{"after the last video PES", with1(segs[1][:afterLastVideo]), "TS packets (modulo 16) of the audio missing at its end"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := demuxBytes(t, c.segs)
			var me *media.MalformedError
			if !errors.As(err, &me) || me.Segment() != 1 || !bytesContains(err.Error(), "segment 1: media lost at its end, where segment 2 does not go on with it: ") ||
				!bytesContains(err.Error(), c.want) {
				t.Fatalf("err = %v; want an error about segment 1 saying %q", err, c.want)
			}
		})
	}

	// A packager that starts each segment anew: every counter from 0. Nothing is lost.
	var reset [][]byte
	for _, s := range segs {
		reset = append(reset, withCountersFromZero(s))
	}
	got, err := demuxBytes(t, reset)
	if err != nil {
		t.Fatalf("counters from 0 in each segment: %v", err)
	}
	sameSamples(t, want, got, false)

	// An explicit discontinuity before segment 2, whose media counters jump while its PAT
	// and PMT go on (content spliced in by the same packager): no loss.
	jumped := withCounterShift(segs[2], 5)
	d := NewDemuxer()
	_, err = testutil.Demux(d, func(emit func(media.Sample) error) error {
		var start time.Duration
		for i, s := range [][]byte{segs[0], segs[1], jumped} {
			if i == 2 {
				d.Discontinuity(start)
			}
			d.Expect(media.SegmentInfo{Start: start, Duration: extinfOf(t, i)})
			start += extinfOf(t, i)
			if err := d.Segment(bytes.NewReader(s), emit); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatalf("counters jump at a discontinuity: %v", err)
	}
	// The same without the tag: the packets are missing.
	if _, err := demuxBytes(t, [][]byte{segs[0], segs[1], jumped}); err == nil || !bytesContains(err.Error(), "segment 1: media lost at its end") {
		t.Fatalf("counters jump without a discontinuity: err = %v", err)
	}
}

// withCountersFromZero renumbers the continuity counters of seg from 0, PID by PID.
func withCountersFromZero(seg []byte) []byte {
	out := bytes.Clone(seg)
	next := map[uint16]byte{}
	for i := 0; i+tsPacketSize <= len(out); i += tsPacketSize {
		p := out[i : i+tsPacketSize]
		if p[3]&0x10 == 0 {
			continue // no payload: the counter does not move
		}
		pid := packetPID(p)
		p[3] = p[3]&0xf0 | next[pid]
		next[pid] = (next[pid] + 1) & 0x0f
	}
	return out
}

// withCounterShift adds n to the continuity counters of seg's media packets (not PAT, PMT).
func withCounterShift(seg []byte, n byte) []byte {
	out := bytes.Clone(seg)
	for i := 0; i+tsPacketSize <= len(out); i += tsPacketSize {
		p := out[i : i+tsPacketSize]
		if pid := packetPID(p); pid != 0 && pid != 0x1000 && pid != 0x11 {
			p[3] = p[3]&0xf0 | (p[3]+n)&0x0f
		}
	}
	return out
}
