package packedaudio

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/id3"
)

func TestID3Timestamp(t *testing.T) {
	for _, ts := range []int64{0, 126000, 1<<32 + 5, 1<<33 - 1} {
		tag := ID3Timestamp(ts)
		// Header: "ID3", v2.4.0, no flags, size (syncsafe) of what follows the header.
		if string(tag[:3]) != "ID3" || tag[3] != 4 || tag[4] != 0 || tag[5] != 0 {
			t.Fatalf("header % x", tag[:10])
		}
		if n, ok := id3.Syncsafe(tag[6:10]); !ok || n != len(tag)-10 {
			t.Errorf("tag size % x = %d (syncsafe %v), want %d", tag[6:10], n, ok, len(tag)-10)
		}
		// One PRIV frame, its size syncsafe (v2.4), no flags, owner then 8 bytes.
		f := tag[10:]
		if string(f[:4]) != "PRIV" || f[8] != 0 || f[9] != 0 {
			t.Fatalf("frame header % x", f[:10])
		}
		if n, ok := id3.Syncsafe(f[4:8]); !ok || n != len(f)-10 {
			t.Errorf("frame size % x = %d, want %d", f[4:8], n, len(f)-10)
		}
		owner, data, _ := bytes.Cut(f[10:], []byte{0})
		if string(owner) != "com.apple.streaming.transportStreamTimestamp" || len(data) != 8 || int64(binary.BigEndian.Uint64(data)) != ts {
			t.Errorf("PRIV %q % x, want the owner and %d", owner, data, ts)
		}
		got, n, err := ReadTimestamp(append(tag, 0xff, 0xf1))
		if err != nil || got != ts || n != len(tag) {
			t.Errorf("ReadTimestamp: %d, %d, %v; want %d, %d", got, n, err, ts, len(tag))
		}
	}
	if got := ID3Timestamp(1<<33 + 7); !bytes.Equal(got, ID3Timestamp(7)) {
		t.Error("a timestamp of more than 33 bits is not wrapped")
	}
	for _, bad := range [][]byte{nil, []byte("ID3\x04\x00\x00\x00\x00\x00\x80"), []byte("ID3\x04\x00\x00\x00\x00\x00\x00")} {
		if _, _, err := ReadTimestamp(bad); err == nil {
			t.Errorf("ReadTimestamp(% x): no error", bad)
		}
	}
}

// synthetic is a stream of n frames of size bytes and dur ticks each (time base 1/rate).
func synthetic(n int, size, dur, rate int64) ([]byte, *Stream) {
	s := &Stream{Codec: "aac"}
	s.TimeBase.Num, s.TimeBase.Den = 1, rate
	var es []byte
	for i := range n {
		s.Frames = append(s.Frames, Frame{Pos: int64(i) * size, Size: size, PTS: 1000 + int64(i)*dur, Duration: dur})
		es = append(es, bytes.Repeat([]byte{byte(i)}, int(size))...)
	}
	return es, s
}

func TestCut(t *testing.T) {
	// MPEG-2 layer III at 22.05 kHz: 576 samples, 2351.02 ticks at 90 kHz: each segment's
	// timestamp is rounded from the exact time, not summed from rounded frames.
	es, s := synthetic(120, 10, 576, 22050) // 3.134 s
	segs, err := Cut(es, s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Segments begin at the first frame at or after 1 s and 2 s: 39 (1.0187 s), 77
	// (2.0114 s); the rest (43 frames, 1.12 s) is a segment of its own.
	want := []struct {
		first, frames int
		ts            int64
	}{{0, 39, 126000}, {39, 38, 126000 + 91690}, {77, 43, 126000 + 181029}}
	if len(segs) != len(want) {
		t.Fatalf("%d segments, want %d", len(segs), len(want))
	}
	var all []byte
	for i, seg := range segs {
		w := want[i]
		if seg.First != w.first || seg.Frames != w.frames || seg.Timestamp != w.ts || seg.Name != fmt.Sprintf("seg_%03d.aac", i) {
			t.Errorf("segment %d: %s first %d frames %d ts %d, want first %d frames %d ts %d", i, seg.Name, seg.First, seg.Frames, seg.Timestamp, w.first, w.frames, w.ts)
		}
		if d := float64(seg.Frames) * 576 / 22050; seg.Duration != d {
			t.Errorf("segment %d lasts %v, want %v", i, seg.Duration, d)
		}
		ts, n, err := ReadTimestamp(seg.Data)
		if err != nil || ts != seg.Timestamp {
			t.Errorf("segment %d: tag says %d (%v), want %d", i, ts, err, seg.Timestamp)
		}
		all = append(all, seg.Data[n:]...)
	}
	if !bytes.Equal(all, es) {
		t.Error("the segments' frames are not the stream")
	}
	if pl := Playlist(segs); !strings.Contains(pl, "#EXT-X-TARGETDURATION:1\n") || !strings.Contains(pl, "#EXTINF:0.992653,\nseg_001.aac\n") || !strings.HasSuffix(pl, "#EXT-X-ENDLIST\n") {
		t.Errorf("playlist:\n%s", pl)
	}
	if c := Concat(segs); !strings.HasPrefix(c, "ffconcat version 1.0\nfile seg_000.aac\nduration 1.018776\n") {
		t.Errorf("concat list:\n%s", c)
	}

	// A short tail joins the last segment; Start and names as given; 33-bit wrap.
	es, s = synthetic(100, 3, 1024, 48000) // 2.133 s: the third segment would be 0.13 s
	segs, err = Cut(es, s, Options{Start: 1<<33 - 90000, Name: func(i int) string { return fmt.Sprintf("a%d.ts", i) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 2 || segs[1].First != 47 || segs[1].Frames != 53 || segs[1].Name != "a1.ts" || segs[1].Timestamp != 90240-90000 {
		t.Errorf("segments %+v", segs)
	}

	// Frames that do not tile the stream are refused.
	for name, edit := range map[string]func(es []byte, s *Stream) []byte{
		"gap":      func(es []byte, s *Stream) []byte { s.Frames[5].Pos++; return es },
		"overlap":  func(es []byte, s *Stream) []byte { s.Frames[5].Pos--; return es },
		"leftover": func(es []byte, s *Stream) []byte { return append(es, 0) },
		"short":    func(es []byte, s *Stream) []byte { return es[:len(es)-1] },
		"time":     func(es []byte, s *Stream) []byte { s.Frames[5].PTS++; return es },
	} {
		es, s := synthetic(10, 4, 1024, 48000)
		if _, err := Cut(edit(es, s), s, Options{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// tool returns the path of an external program; the test fails without it (skips with
// -short), as testutil.Tool does.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if testing.Short() {
			t.Skipf("%s not found (skipped with -short)", name)
		}
		t.Fatalf("%s is needed by this test: %v", name, err)
	}
	return p
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(tool(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}

// TestFFmpeg packs what ffmpeg encodes and checks, with ffprobe, that every segment reads
// as the codec, with its frames, at the time its tag says: the segment alone (ffmpeg skips
// the tag) and through a one-segment playlist (ffmpeg's HLS reader takes the timestamp from
// the tag: RFC 8216 §3.4).
func TestFFmpeg(t *testing.T) {
	tool(t, "ffmpeg")
	ffprobe := tool(t, "ffprobe")
	for _, c := range []struct {
		codec, format, ext string
		args               []string
		rate, channels     int
	}{
		{"aac", "adts", ".aac", []string{"-c:a", "aac", "-b:a", "32k", "-ac", "2"}, 48000, 2},
		{"ac3", "ac3", ".ac3", []string{"-c:a", "ac3", "-b:a", "48k", "-ac", "6"}, 48000, 6},
		{"eac3", "eac3", ".ec3", []string{"-c:a", "eac3", "-b:a", "48k", "-ac", "6"}, 48000, 6},
		{"mp3", "mp3", ".mp3", []string{"-c:a", "libmp3lame", "-b:a", "32k", "-ac", "2", "-id3v2_version", "0", "-write_xing", "0"}, 48000, 2},
		{"mp3", "mp3", ".mp3", []string{"-c:a", "libmp3lame", "-b:a", "16k", "-ac", "1", "-ar", "22050", "-id3v2_version", "0", "-write_xing", "0"}, 22050, 1},
	} {
		t.Run(fmt.Sprintf("%s-%d", c.codec, c.rate), func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "es"+c.ext)
			args := append([]string{"-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2.3"}, c.args...)
			run(t, "ffmpeg", append(args, "-fflags", "+bitexact", "-flags:a", "+bitexact", "-f", c.format, in)...)
			es, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Probe(context.Background(), ffprobe, in)
			if err != nil {
				t.Fatal(err)
			}
			if s.Codec != c.codec {
				t.Fatalf("ffprobe says %s", s.Codec)
			}
			segs, err := Cut(es, s, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(segs) != 2 || segs[0].Name != "seg_000"+c.ext {
				t.Fatalf("%d segments (first %q), want 2 of about a second (the last 0.3 s joins the second)", len(segs), segs[0].Name)
			}
			tb := float64(s.TimeBase.Num) / float64(s.TimeBase.Den)
			for i, seg := range segs {
				// The tag, then the frames byte for byte.
				ts, n, err := ReadTimestamp(seg.Data)
				if err != nil || ts != seg.Timestamp {
					t.Fatalf("segment %d: tag %d, %v", i, ts, err)
				}
				first, last := s.Frames[seg.First], s.Frames[seg.First+seg.Frames-1]
				if !bytes.Equal(seg.Data[n:], es[first.Pos:last.Pos+last.Size]) {
					t.Errorf("segment %d: the frames are not the stream's %d..%d", i, seg.First, seg.First+seg.Frames-1)
				}
				wantTS := 126000 + int64(float64(first.PTS-s.Frames[0].PTS)*tb*90000+0.5)
				if ts != wantTS {
					t.Errorf("segment %d: timestamp %d, want %d", i, ts, wantTS)
				}
				name := filepath.Join(dir, seg.Name)
				if err := os.WriteFile(name, seg.Data, 0o644); err != nil {
					t.Fatal(err)
				}
				// The segment alone: the codec, every frame, no decoding error.
				p := probe(t, ffprobe, name)
				if p.codec != c.codec || p.rate != c.rate || p.channels != c.channels || len(p.pts) != seg.Frames {
					t.Errorf("segment %d alone: %s %d Hz %d ch, %d frames; want %s %d Hz %d ch, %d frames", i, p.codec, p.rate, p.channels, len(p.pts), c.codec, c.rate, c.channels, seg.Frames)
				}
				if out := run(t, "ffmpeg", "-v", "error", "-i", name, "-f", "null", "-"); len(bytes.TrimSpace(out)) != 0 {
					t.Errorf("segment %d: decoding printed %s", i, out)
				}
				// Through a playlist of that segment only: ffmpeg's HLS reader times the
				// frames from the tag (90 kHz). (One segment per playlist: over several
				// small segments it reads ahead and applies a later segment's tag.)
				list := filepath.Join(dir, fmt.Sprintf("one_%d.m3u8", i))
				if err := os.WriteFile(list, []byte(Playlist([]Segment{seg})), 0o644); err != nil {
					t.Fatal(err)
				}
				p = probe(t, ffprobe, list, "-extension_picky", "0") // ffmpeg's eac3 reader does not claim .ec3
				if p.codec != c.codec || len(p.pts) != seg.Frames || p.pts[0] != ts {
					t.Errorf("segment %d through HLS: %s, %d frames from %v; want %s, %d from %d", i, p.codec, len(p.pts), p.pts[:min(1, len(p.pts))], c.codec, seg.Frames, ts)
				}
			}
		})
	}
}

type probed struct {
	codec          string
	rate, channels int
	pts            []int64 // in the stream's time base (90 kHz through HLS)
}

func probe(t *testing.T, ffprobe, in string, opts ...string) probed {
	t.Helper()
	args := append(opts, "-v", "error", "-show_entries", "stream=codec_name,sample_rate,channels:packet=pts", "-of", "json", in)
	out, err := exec.Command(ffprobe, args...).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", in, err)
	}
	var r struct {
		Streams []struct {
			Codec    string `json:"codec_name"`
			Rate     string `json:"sample_rate"`
			Channels int    `json:"channels"`
		} `json:"streams"`
		Packets []struct {
			PTS int64 `json:"pts"`
		} `json:"packets"`
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r.Streams) != 1 {
		t.Fatalf("ffprobe %s: %v, %d streams", in, err, len(r.Streams))
	}
	p := probed{codec: r.Streams[0].Codec, channels: r.Streams[0].Channels}
	fmt.Sscan(r.Streams[0].Rate, &p.rate)
	for _, pk := range r.Packets {
		p.pts = append(p.pts, pk.PTS)
	}
	return p
}
