package ts

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/internal/tsrecut"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// demuxBytes demuxes whole segments in order, flushing at the end.
func demuxBytes(t *testing.T, segs [][]byte) (*testutil.Samples, error) {
	t.Helper()
	d := NewDemuxer()
	return testutil.Demux(d, func(emit func(media.Sample) error) error {
		for _, s := range segs {
			if err := d.Segment(bytes.NewReader(s), emit); err != nil {
				return err
			}
		}
		return nil
	}, nil)
}

func readAll(t *testing.T, paths []string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// sameSamples fails unless a and b hold the same samples (time, flags and bytes); with
// anyCTO, the composition offsets of video are not compared.
func sameSamples(t *testing.T, want, got *testutil.Samples, anyCTO bool) {
	t.Helper()
	for _, k := range []struct {
		name      string
		want, got []media.Sample
	}{{"video", want.Video, got.Video}, {"audio", want.Audio, got.Audio}} {
		if len(k.got) != len(k.want) {
			t.Errorf("%s: %d samples, want %d", k.name, len(k.got), len(k.want))
			continue
		}
		for i := range k.want {
			w, g := k.want[i], k.got[i]
			if w.DTS != g.DTS || (w.CTO != g.CTO && !(anyCTO && k.name == "video")) || w.Sync != g.Sync || !bytes.Equal(w.Data, g.Data) {
				t.Errorf("%s sample %d: DTS %d CTO %d sync %v %d bytes; want DTS %d CTO %d sync %v %d bytes",
					k.name, i, g.DTS, g.CTO, g.Sync, len(g.Data), w.DTS, w.CTO, w.Sync, len(w.Data))
				break
			}
		}
	}
	if len(got.Tracks) != len(want.Tracks) {
		t.Fatalf("%d tracks, want %d", len(got.Tracks), len(want.Tracks))
	}
	for i, w := range want.Tracks {
		g := got.Tracks[i]
		if g.Codec != w.Codec || g.Width != w.Width || g.Height != w.Height || !bytes.Equal(g.Config, w.Config) || len(g.SPS) != len(w.SPS) {
			t.Errorf("track %d = %+v, want %+v", i, g, w)
		}
	}
}

// TestRecutSameSamples: PES cut anywhere (access units and ADTS frames split across PES,
// PES without timestamps, cuts inside start codes and headers, as Apple's segmenters and
// others cut them) give exactly the samples of the aligned original.
func TestRecutSameSamples(t *testing.T) {
	inputs := map[string][]string{"h264-aac": testutil.DemoSegments(t)}
	if !testing.Short() {
		hevc := genHLS(t, "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
			"-t", "3", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:bframes=2:keyint=25",
			"-c:a", "aac", "-ac", "1")
		inputs["hevc-aac-mono"] = hevc
	}
	for name, paths := range inputs {
		aligned := readAll(t, paths)
		want, err := demuxBytes(t, aligned)
		if err != nil {
			t.Fatalf("%s aligned: %v", name, err)
		}
		if len(want.Video) == 0 || len(want.Audio) == 0 {
			t.Fatalf("%s: %d video, %d audio samples", name, len(want.Video), len(want.Audio))
		}
		for _, p := range tsrecut.Patterns() {
			t.Run(name+"/"+p.Name, func(t *testing.T) {
				var cut [][]byte
				for i, s := range aligned {
					c, err := tsrecut.Recut(s, p)
					if err != nil {
						t.Fatalf("recut segment %d: %v", i, err)
					}
					if bytes.Equal(c, s) {
						t.Fatalf("recut segment %d is unchanged", i)
					}
					cut = append(cut, c)
				}
				got, err := demuxBytes(t, cut)
				if err != nil {
					t.Fatal(err)
				}
				sameSamples(t, want, got, false)
			})
		}
	}
}

// TestLossesCounted: packets lost, a segment cut short, bytes that belong to no unit end
// the segment in an error, never in fewer samples.
func TestLossesCounted(t *testing.T) {
	seg, err := os.ReadFile(testutil.DemoSegments(t)[1])
	if err != nil {
		t.Fatal(err)
	}
	lost, n, err := tsrecut.Lose(seg, 0x100, 3)
	if err != nil || n == 0 {
		t.Fatalf("Lose: %d packets, %v", n, err)
	}
	short, err := tsrecut.Truncate(seg, 0.3)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"lost packets":    lost,
		"cut mid-packet":  seg[:len(seg)/2+77],
		"transport error": setTEI(seg, 0x101, 5),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			err := NewDemuxer().Segment(bytes.NewReader(in), func(media.Sample) error { return nil })
			if err == nil || !bytesContains(err.Error(), "media lost") {
				t.Fatalf("err = %v, want media lost", err)
			}
		})
	}
	t.Run("short of its EXTINF", func(t *testing.T) {
		d := NewDemuxer()
		d.Expect(media.SegmentInfo{Duration: extinfOf(t, 1)})
		err := d.Segment(bytes.NewReader(short), func(media.Sample) error { return nil })
		if err == nil || !bytesContains(err.Error(), "EXTINF") {
			t.Fatalf("err = %v, want media lost against EXTINF", err)
		}
		d = NewDemuxer()
		d.Expect(media.SegmentInfo{Duration: extinfOf(t, 1)})
		if err := d.Segment(bytes.NewReader(seg), func(media.Sample) error { return nil }); err != nil {
			t.Fatalf("the whole segment: %v", err)
		}
	})
}

// setTEI sets the transport error indicator on the n-th packet of pid.
func setTEI(seg []byte, pid uint16, n int) []byte {
	out := bytes.Clone(seg)
	for i := 0; i+tsPacketSize <= len(out); i += tsPacketSize {
		if packetPID(out[i:]) == pid {
			if n--; n == 0 {
				out[i+1] |= 0x80
				break
			}
		}
	}
	return out
}

func bytesContains(s, sub string) bool { return bytes.Contains([]byte(s), []byte(sub)) }

// TestAcrossSegments: a PES (and the access unit or ADTS frame in it) that goes on into
// the next segment, as segmenters that cut a transport stream at packet boundaries leave
// it, gives the samples of the uncut stream.
func TestAcrossSegments(t *testing.T) {
	segs := readAll(t, testutil.DemoSegments(t))
	want, err := demuxBytes(t, segs)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{40, 333, 1001} { // packets into the first segment
		var cut [][]byte
		for _, s := range segs {
			k := min(at, len(s)/tsPacketSize-1) * tsPacketSize
			cut = append(cut, s[:k], s[k:])
		}
		got, err := demuxBytes(t, cut)
		if err != nil {
			t.Fatalf("cut at packet %d: %v", at, err)
		}
		sameSamples(t, want, got, false)
	}
}

// TestPrivateStreamsIgnored: timed ID3 (stream type 0x15, declared) and packets of a PID
// the PMT does not list, both carrying PES, change nothing.
func TestPrivateStreamsIgnored(t *testing.T) {
	segs := readAll(t, testutil.DemoSegments(t))
	want, err := demuxBytes(t, segs)
	if err != nil {
		t.Fatal(err)
	}
	var with [][]byte
	for _, s := range segs {
		s, err := tsrecut.DeclareStream(s, 0x15, 0x102)
		if err != nil {
			t.Fatal(err)
		}
		with = append(with, withPrivatePackets(s, 20))
	}
	got, err := demuxBytes(t, with)
	if err != nil {
		t.Fatal(err)
	}
	sameSamples(t, want, got, false)
}

// withPrivatePackets puts a one-packet PES on PID 0x102 (an ID3 tag) and one on 0x103
// (bytes that look like start codes and ADTS headers) after every n-th packet of seg.
func withPrivatePackets(seg []byte, n int) []byte {
	var out []byte
	cc := 0
	for i := 0; i+tsPacketSize <= len(seg); i += tsPacketSize {
		out = append(out, seg[i:i+tsPacketSize]...)
		if (i/tsPacketSize)%n != n-1 {
			continue
		}
		for _, pid := range []uint16{0x102, 0x103} {
			p := []byte{tsSyncByte, 0x40 | byte(pid>>8), byte(pid), 0x10 | byte(cc&0x0f)}
			pes := []byte{0, 0, 1, 0xbd, 0, tsPacketSize - 4 - 6, 0x84, 0x80, 5, 0x21, 0, 1, 0, 1}
			p = append(p, pes...)
			body := []byte("ID3\x04\x00\x00\x00\x00\x00\x3fPRIV")
			if pid == 0x103 {
				body = []byte{0, 0, 1, 0x09, 0xf0, 0xff, 0xf1, 0x50, 0x80}
			}
			for len(p) < tsPacketSize {
				p = append(p, body...)
			}
			out = append(out, p[:tsPacketSize]...)
		}
		cc++
	}
	return out
}

// TestTrackHole: a segment without the audio the segments around it have is a loss,
// reported once the audio goes on; audio that ends a segment early is not. Where the
// packager keeps the continuity counters across segments (the demo's, made by ffmpeg),
// the counters tell first; where the next segment's PAT and PMT counters start at 0 (a
// packager that resets them each segment), the coverage does.
func TestTrackHole(t *testing.T) {
	pl := readPlaylist(t, filepath.Join(filepath.Dir(testutil.DemoSegments(t)[0]), "index.m3u8"))
	segs := readAll(t, pl.segs)
	run := func(noAudio int, resetPSI bool) error {
		d := NewDemuxer()
		emit := func(media.Sample) error { return nil }
		var start time.Duration
		for i, s := range segs {
			if i == noAudio {
				s = withoutPID(s, 0x101)
			}
			if i == noAudio+1 && resetPSI {
				s = withPSICounters(s, 0)
			}
			d.Expect(media.SegmentInfo{Start: start, Duration: pl.extinf[i]})
			start += pl.extinf[i]
			if err := d.Segment(bytes.NewReader(s), emit); err != nil {
				return err
			}
		}
		return d.Flush(emit)
	}
	if err := run(1, false); err == nil || !bytesContains(err.Error(), "malformed MPEG-TS segment 1: media lost at its end, where segment 2 does not go on with it: ") ||
		!bytesContains(err.Error(), "TS packets (modulo 16) of the audio missing at its end (its continuity counter jumps into the next segment") {
		t.Errorf("audio missing from the middle segment: err = %v", err)
	}
	if err := run(1, true); err == nil || !bytesContains(err.Error(), "segment 1 holds 0.000 s of audio") {
		t.Errorf("audio missing from the middle segment, counters reset after it: err = %v", err)
	}
	if err := run(len(segs)-1, false); err != nil {
		t.Errorf("audio missing from the last segment: %v", err)
	}
}

// withPSICounters sets the continuity counter of the PAT and PMT (PID 0x1000) packets
// of seg to cc, as a packager that starts every segment anew writes them.
func withPSICounters(seg []byte, cc byte) []byte {
	out := bytes.Clone(seg)
	for i := 0; i+tsPacketSize <= len(out); i += tsPacketSize {
		if pid := packetPID(out[i:]); pid == 0 || pid == 0x1000 {
			out[i+3] = out[i+3]&0xf0 | cc
		}
	}
	return out
}

// withoutPID drops the packets of pid.
func withoutPID(seg []byte, pid uint16) []byte {
	var out []byte
	for i := 0; i+tsPacketSize <= len(seg); i += tsPacketSize {
		if packetPID(seg[i:]) != pid {
			out = append(out, seg[i:i+tsPacketSize]...)
		}
	}
	return out
}

// TestStartsWithTail: a playlist whose first segment begins inside the packager's stream
// (its first video PES starts with the end of a frame that began before it, as Apple's
// segmenters cut) packages from the first frame; the tail is a note, not a loss.
func TestStartsWithTail(t *testing.T) {
	seg, err := tsrecut.Recut(readAll(t, testutil.DemoSegments(t)[1:2])[0], tsrecut.Apple)
	if err != nil {
		t.Fatal(err)
	}
	var in []byte
	pusi := 0
	for i := 0; i+tsPacketSize <= len(seg); i += tsPacketSize {
		p := seg[i : i+tsPacketSize]
		if packetPID(p) == 0x100 && p[1]&0x40 != 0 {
			pusi++
		}
		// PAT, PMT, then from the 3rd video PES on (the audio PES then in progress
		// goes on without its start)
		if pusi >= 3 || packetPID(p) == 0 || packetPID(p) == 0x1000 {
			in = append(in, p...)
		}
	}
	d := NewDemuxer()
	c, err := testutil.Demux(d, func(emit func(media.Sample) error) error {
		return d.Segment(bytes.NewReader(in), emit)
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Video) == 0 || len(c.Audio) == 0 {
		t.Fatalf("%d video, %d audio samples", len(c.Video), len(c.Audio))
	}
	var notes []string
	for _, n := range d.Notes() {
		notes = append(notes, n.Text)
	}
	if !bytesContains(fmt.Sprint(notes), "bytes before the first access unit") {
		t.Errorf("notes %q, want one on the bytes before the first access unit", notes)
	}
}
