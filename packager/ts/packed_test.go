package ts

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/id3"
	"github.com/stream-downloads/caddy-stream-downloads/internal/packedaudio"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// packedSegments encodes 3 s of a tone with the ffmpeg audio options args into an
// elementary stream file of extension ext and cuts it into 1 s packed audio segments.
func packedSegments(t *testing.T, ext string, args ...string) []packedaudio.Segment {
	t.Helper()
	es := filepath.Join(t.TempDir(), "audio"+ext)
	testutil.Run(t, "ffmpeg", append(append([]string{"-v", "error", "-y", "-f", "lavfi", "-i",
		"sine=frequency=440:sample_rate=48000:duration=3"}, args...), es)...)
	s, err := packedaudio.Probe(context.Background(), testutil.Tool(t, "ffprobe"), es)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(es)
	if err != nil {
		t.Fatal(err)
	}
	segs, err := packedaudio.Cut(data, s, packedaudio.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// demuxPacked demuxes segs (their data as given) as one rendition.
func demuxPacked(segs []packedaudio.Segment, data func(i int) []byte) (*testutil.Samples, []media.Note, error) {
	d := NewDemuxer()
	var at time.Duration
	c, err := testutil.Demux(d, func(emit func(media.Sample) error) error {
		for i, s := range segs {
			dur := time.Duration(s.Duration * float64(time.Second))
			d.Expect(media.SegmentInfo{Start: at, Duration: dur})
			at += dur
			if err := d.Segment(bytes.NewReader(data(i)), emit); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	return c, d.Notes(), err
}

// TestPacked reads packed audio of each codec Apple's tools write: every frame, timed
// from the ID3 timestamp.
func TestPacked(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ffmpeg")
	}
	for _, tc := range []struct {
		ext   string
		args  []string
		codec media.Codec
		step  int64
	}{
		{".aac", []string{"-c:a", "aac", "-b:a", "32k"}, media.AAC, 1024},
		{".ac3", []string{"-c:a", "ac3", "-b:a", "96k"}, media.AC3, 1536},
		{".eac3", []string{"-c:a", "eac3", "-b:a", "96k"}, media.EAC3, 1536},
		{".mp3", []string{"-c:a", "libmp3lame", "-b:a", "32k", "-write_xing", "0", "-id3v2_version", "0"}, media.MPEGAudio, 1152},
	} {
		t.Run(tc.ext, func(t *testing.T) {
			segs := packedSegments(t, tc.ext, tc.args...)
			c, notes, err := demuxPacked(segs, func(i int) []byte { return segs[i].Data })
			if err != nil {
				t.Fatal(err)
			}
			testutil.CheckSamples(t, c, testutil.Checks{AudioStep: tc.step})
			frames := 0
			for _, s := range segs {
				frames += s.Frames
			}
			if len(c.Tracks) != 1 || c.Tracks[0].Codec != tc.codec || len(c.Audio) != frames {
				t.Fatalf("tracks %+v, %d samples; want one %s track of %d", c.Tracks, len(c.Audio), tc.codec, frames)
			}
			// 1.4 s (the ID3 timestamp of the first segment) in the sample rate.
			if want := int64(packedaudio.DefaultStart) * 48000 / 90000; c.Audio[0].DTS != want {
				t.Errorf("first DTS %d, want %d", c.Audio[0].DTS, want)
			}
			if len(notes) != 0 {
				t.Errorf("notes %v", notes)
			}
		})
	}
}

// TestPackedTimestamps: a segment without the ID3 timestamp follows the one before; a
// stream whose first segment has none starts where the playlist says, with a note; bytes
// between frames are lost media.
func TestPackedTimestamps(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ffmpeg")
	}
	segs := packedSegments(t, ".aac", "-c:a", "aac", "-b:a", "32k")
	bare := func(i int) []byte { // the segment without its ID3 tag
		_, n, err := packedaudio.ReadTimestamp(segs[i].Data)
		if err != nil {
			t.Fatal(err)
		}
		return segs[i].Data[n:]
	}
	t.Run("middle segment without timestamp", func(t *testing.T) {
		whole, _, err := demuxPacked(segs, func(i int) []byte { return segs[i].Data })
		if err != nil {
			t.Fatal(err)
		}
		c, _, err := demuxPacked(segs, func(i int) []byte {
			if i == 1 {
				return bare(i)
			}
			return segs[i].Data
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Audio) != len(whole.Audio) || c.Audio[len(c.Audio)-1].DTS != whole.Audio[len(whole.Audio)-1].DTS {
			t.Errorf("%d samples, last at %d; with every timestamp %d, last at %d", len(c.Audio), c.Audio[len(c.Audio)-1].DTS, len(whole.Audio), whole.Audio[len(whole.Audio)-1].DTS)
		}
	})
	t.Run("no timestamp at all", func(t *testing.T) {
		c, notes, err := demuxPacked(segs, bare)
		if err != nil {
			t.Fatal(err)
		}
		if c.Audio[0].DTS != 0 {
			t.Errorf("first DTS %d, want 0 (the playlist's start)", c.Audio[0].DTS)
		}
		if len(notes) != 1 || !strings.Contains(notes[0].Text, "no ID3 timestamp") {
			t.Errorf("notes %v, want one about the missing timestamp", notes)
		}
	})
	t.Run("garbage between frames", func(t *testing.T) {
		_, _, err := demuxPacked(segs, func(i int) []byte {
			if i != 1 {
				return segs[i].Data
			}
			d := bytes.Clone(segs[i].Data)
			_, n, _ := packedaudio.ReadTimestamp(d)
			h, _ := parseADTSHeader(d[n:])
			at := n + h.frame
			return append(append(d[:at:at], 1, 2, 3, 4, 5), d[at:]...)
		})
		if err == nil || !strings.Contains(err.Error(), "media lost") || !strings.Contains(err.Error(), "segment 1") {
			t.Errorf("err = %v, want media lost in segment 1", err)
		}
	})
	t.Run("neither TS nor audio", func(t *testing.T) {
		_, _, err := demuxPacked(segs[:1], func(int) []byte {
			return append(packedaudio.ID3Timestamp(0), "not audio at all"...)
		})
		if err == nil || !strings.Contains(err.Error(), "no ADTS, AC-3, E-AC-3 or MPEG audio frame") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestReadID3(t *testing.T) {
	priv := func(owner string, ts uint64) []byte {
		b := append([]byte(owner), 0)
		return binary.BigEndian.AppendUint64(b, ts)
	}
	frame := func(ver byte, id string, body []byte) []byte {
		b := []byte(id)
		n := len(body)
		if ver == 4 {
			b = append(b, byte(n>>21&0x7f), byte(n>>14&0x7f), byte(n>>7&0x7f), byte(n&0x7f))
		} else {
			b = binary.BigEndian.AppendUint32(b, uint32(n))
		}
		return append(append(b, 0, 0), body...)
	}
	tag := func(ver, flags byte, body ...[]byte) []byte {
		all := bytes.Join(body, nil)
		n := len(all)
		b := []byte{'I', 'D', '3', ver, 0, flags, byte(n >> 21 & 0x7f), byte(n >> 14 & 0x7f), byte(n >> 7 & 0x7f), byte(n & 0x7f)}
		b = append(b, all...)
		if flags&0x10 != 0 {
			b = append(b, []byte{'3', 'D', 'I', ver, 0, flags, b[6], b[7], b[8], b[9]}...)
		}
		return b
	}
	const owner = id3.TimestampOwner
	tests := []struct {
		name string
		in   []byte
		pts  int64
		ok   bool
		bad  bool
	}{
		{"v2.4", tag(4, 0, frame(4, "PRIV", priv(owner, 126000))), 126000, true, false},
		{"v2.3", tag(3, 0, frame(3, "PRIV", priv(owner, 90000))), 90000, true, false},
		{"33 bits kept", tag(4, 0, frame(4, "PRIV", priv(owner, 1<<40|5))), 5, true, false},
		{"after another frame", tag(4, 0, frame(4, "TXXX", []byte("\x00a\x00b")), frame(4, "PRIV", priv(owner, 7))), 7, true, false},
		{"other owner", tag(4, 0, frame(4, "PRIV", priv("com.example", 7))), 0, false, false},
		{"footer", tag(4, 0x10, frame(4, "PRIV", priv(owner, 8))), 8, true, false},
		{"extended header", tag(4, 0x40, []byte{0, 0, 0, 6, 1, 0}, frame(4, "PRIV", priv(owner, 9))), 9, true, false},
		{"two tags", append(tag(4, 0, frame(4, "TIT2", []byte("\x00x"))), tag(4, 0, frame(4, "PRIV", priv(owner, 10)))...), 10, true, false},
		{"padding", append(tag(4, 0, frame(4, "PRIV", priv(owner, 11)), make([]byte, 20)), 0xff, 0xf1), 11, true, false},
		{"frame overruns", tag(4, 0, frame(4, "PRIV", priv(owner, 12))[:20]), 0, false, false},
		{"no tag", []byte{0xff, 0xf1, 0x50}, 0, false, false},
		{"bad size", []byte{'I', 'D', '3', 4, 0, 0, 0x80, 0, 0, 0}, 0, false, true},
		{"cut short", tag(4, 0, frame(4, "PRIV", priv(owner, 13)))[:15], 0, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pts, ok, err := readID3(bufioReader(tc.in))
			if (err != nil) != tc.bad || ok != tc.ok || pts != tc.pts {
				t.Errorf("readID3 = %d %v %v, want %d %v (error: %v)", pts, ok, err, tc.pts, tc.ok, tc.bad)
			}
		})
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
