package ts

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// TestAudioCodecs packages ffmpeg-made TS streams of every audio codec the demuxer reads
// (in the stream types ffmpeg writes, and the DVB forms) and compares each MP4 with its
// source.
func TestAudioCodecs(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ffmpeg")
	}
	cases := []struct {
		name       string
		audio      []string // ffmpeg output options of the audio
		dvb        bool     // written with -mpegts_flags system_b (stream type 0x06 + descriptor)
		codec      media.Codec
		channels   int
		rate       int
		objectType uint8
	}{
		{name: "ac3 5.1", audio: []string{"-c:a", "ac3", "-ac", "6", "-b:a", "192k"}, codec: media.AC3, channels: 6, rate: 48000},
		{name: "ac3 dvb", audio: []string{"-c:a", "ac3", "-ac", "2", "-b:a", "96k"}, dvb: true, codec: media.AC3, channels: 2, rate: 48000},
		{name: "eac3 5.1", audio: []string{"-c:a", "eac3", "-ac", "6", "-b:a", "192k"}, codec: media.EAC3, channels: 6, rate: 48000},
		{name: "eac3 dvb", audio: []string{"-c:a", "eac3", "-ac", "2", "-b:a", "96k"}, dvb: true, codec: media.EAC3, channels: 2, rate: 48000},
		{name: "mp3", audio: []string{"-c:a", "libmp3lame", "-ar", "44100", "-ac", "2", "-b:a", "64k"}, codec: media.MPEGAudio, channels: 2, rate: 44100, objectType: 0x6b},
		{name: "mp3 lsf mono", audio: []string{"-c:a", "libmp3lame", "-ar", "22050", "-ac", "1", "-b:a", "32k"}, codec: media.MPEGAudio, channels: 1, rate: 22050, objectType: 0x69},
		{name: "mp2", audio: []string{"-c:a", "mp2", "-ac", "2", "-b:a", "128k"}, codec: media.MPEGAudio, channels: 2, rate: 48000, objectType: 0x6b},
		{name: "opus", audio: []string{"-c:a", "libopus", "-ac", "2", "-b:a", "48k"}, codec: media.Opus, channels: 2, rate: 48000},
		{name: "opus 5.1", audio: []string{"-c:a", "libopus", "-ac", "6", "-b:a", "96k"}, codec: media.Opus, channels: 6, rate: 48000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{
				"-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25",
				"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
				"-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
			}
			var s hlsStream
			if tc.dvb {
				s = dvbSegments(t, append(args, tc.audio...)...)
			} else {
				s = makeHLS(t, nil, append(args, tc.audio...)...)
			}
			out, c := packageTS(t, inPeriod{segs: s.segs})
			a := c.Tracks[len(c.Tracks)-1]
			if a.Kind != media.Audio || a.Codec != tc.codec || a.Channels != tc.channels || a.SampleRate != tc.rate || a.ObjectType != tc.objectType {
				t.Errorf("audio track %s %d ch %d Hz object type %#x, want %s %d ch %d Hz %#x",
					a.Codec, a.Channels, a.SampleRate, a.ObjectType, tc.codec, tc.channels, tc.rate, tc.objectType)
			}
			if (tc.codec == media.MPEGAudio) != (len(a.Config) == 0) {
				t.Errorf("decoder configuration %x", a.Config)
			}
			t.Log(testutil.CompareWithSource(t, out, s.playlist))
		})
	}
}

// dvbSegments makes 1 s TS segments with -mpegts_flags system_b (AC-3 and E-AC-3 as
// stream type 0x06 with their descriptors), by ffmpeg's segment muxer: its hls muxer
// overrides mpegts_flags.
func dvbSegments(t *testing.T, args ...string) hlsStream {
	t.Helper()
	dir := t.TempDir()
	testutil.RunIn(t, dir, "ffmpeg", append(append([]string{"-v", "error", "-y"}, args...),
		"-f", "segment", "-segment_time", "1", "-segment_format", "mpegts",
		"-segment_format_options", "mpegts_flags=system_b", "-segment_list", "index.m3u8",
		"-segment_list_type", "m3u8", "s%03d.ts")...)
	s := readPlaylist(t, filepath.Join(dir, "index.m3u8"))
	if pmt := testutil.PMTString(t, s.segs[0]); !strings.Contains(pmt, "0x06") {
		t.Fatalf("PMT %s: no private stream (0x06)", pmt)
	}
	return s
}

// TestStreamsLeftOut: of several audio streams the first is read; the others, in a codec
// read or not, are named in Notes, never dropped silently.
func TestStreamsLeftOut(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ffmpeg")
	}
	s := makeHLS(t, nil,
		"-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-map", "0:v", "-map", "1:a", "-map", "1:a", "-map", "1:a", "-t", "2",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
		"-c:a:0", "aac", "-c:a:1", "ac3", "-c:a:2", "dca", "-strict", "-2")
	d := NewDemuxer()
	c, err := testutil.Demux(d, func(emit func(media.Sample) error) error {
		for _, seg := range s.segs {
			if err := testutil.SegmentFile(t, d, seg, emit); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tracks) != 2 || c.Tracks[1].Codec != media.AAC {
		t.Fatalf("tracks %+v, want video and the first audio stream (AAC)", c.Tracks)
	}
	var notes []string
	for _, n := range d.Notes() {
		notes = append(notes, n.Text)
	}
	got := strings.Join(notes, "\n")
	t.Log(got)
	if !strings.Contains(got, "AC-3") || !strings.Contains(got, "DTS") || strings.Count(got, "left out") != 1 {
		t.Errorf("notes %q, want one naming the AC-3 and DTS streams left out", notes)
	}
}
