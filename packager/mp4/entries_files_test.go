package mp4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	mp4ff "github.com/Eyevinn/mp4ff/mp4"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// demuxMP4 reads the tracks and samples of a progressive MP4 (made by ffmpeg) the way a
// demuxer hands them to the muxer: the decoder configuration box's payload as
// Track.Config, samples in decode order with the edit list applied as players do (the
// first edit's media_time is presented at 0, so an Opus track starts at -PreSkip).
// Channels and sample rates come from ffprobe, whose report it returns.
func demuxMP4(t *testing.T, path string) ([]*media.Track, []media.Sample, *testutil.Probe) {
	t.Helper()
	f, err := mp4ff.ReadMP4File(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	probe := testutil.ProbeFile(t, path)
	var tracks []*media.Track
	var samples []media.Sample
	for i, trak := range f.Moov.Traks {
		stbl := trak.Mdia.Minf.Stbl
		tr := &media.Track{ID: int(trak.Tkhd.TrackID), Timescale: trak.Mdia.Mdhd.Timescale}
		p := probe.Streams[i]
		switch e := stbl.Stsd.Children[0].(type) {
		case *mp4ff.AudioSampleEntryBox:
			tr.Kind, tr.Channels = media.Audio, p.Channels
			if tr.SampleRate, err = strconv.Atoi(p.SampleRate); err != nil {
				t.Fatal(err)
			}
			switch e.Type() {
			case "ac-3":
				tr.Codec, tr.FrameDuration, tr.Config = media.AC3, 1536, boxBody(t, e.Dac3)
			case "ec-3":
				tr.Codec, tr.FrameDuration, tr.Config = media.EAC3, 1536, boxBody(t, e.Dec3)
			case "Opus":
				tr.Codec, tr.Config = media.Opus, boxBody(t, e.Dops)
			case "mp4a":
				dcd := e.Esds.DecConfigDescriptor
				if dcd.ObjectType == 0x40 {
					tr.Codec, tr.FrameDuration, tr.Config = media.AAC, 1024, dcd.DecSpecificInfo.DecConfig
					break
				}
				// MP3/MP2: the object type by the sample rate, as a demuxer reads it
				// from the frame header; ffmpeg must have written the same.
				tr.Codec, tr.FrameDuration, tr.ObjectType = media.MPEGAudio, stbl.Stts.SampleTimeDelta[0], objMPEG1Audio
				if tr.SampleRate < 32000 {
					tr.ObjectType = objMPEG2Audio
				}
				if dcd.ObjectType != tr.ObjectType || dcd.DecSpecificInfo != nil {
					t.Fatalf("ffmpeg wrote object type %#x (DecoderSpecificInfo %v), want %#x", dcd.ObjectType, dcd.DecSpecificInfo, tr.ObjectType)
				}
			default:
				t.Fatalf("source has %s", e.Type())
			}
		case *mp4ff.VisualSampleEntryBox:
			tr.Kind, tr.Width, tr.Height = media.Video, int(e.Width), int(e.Height)
			if e.Type() != "av01" {
				t.Fatalf("source has %s", e.Type())
			}
			tr.Codec, tr.Config = media.AV1, boxBody(t, e.Av1C)
		}
		var shift int64
		if trak.Edts != nil && len(trak.Edts.Elst) > 0 {
			for _, e := range trak.Edts.Elst[0].Entries {
				if e.MediaTime >= 0 {
					shift = e.MediaTime
					break
				}
			}
		}
		for c := range stbl.Stco.ChunkOffset {
			chunk := stbl.Stsc.GetChunk(uint32(c + 1))
			off := int64(stbl.Stco.ChunkOffset[c])
			for nr := chunk.StartSampleNr; nr < chunk.StartSampleNr+chunk.NrSamples; nr++ {
				size := int64(stbl.Stsz.GetSampleSize(int(nr)))
				dts, _ := stbl.Stts.GetDecodeTime(nr)
				s := media.Sample{Track: tr, DTS: int64(dts) - shift, Sync: stbl.Stss == nil || stbl.Stss.IsSyncSample(nr),
					Data: data[off : off+size]}
				if stbl.Ctts != nil {
					s.CTO = stbl.Ctts.GetCompositionTimeOffset(nr)
				}
				samples = append(samples, s)
				off += size
			}
		}
		tracks = append(tracks, tr)
	}
	// Interleaved by time, as a demuxer hands them out.
	sort.SliceStable(samples, func(i, j int) bool {
		a, b := samples[i], samples[j]
		return a.DTS*int64(b.Track.Timescale) < b.DTS*int64(a.Track.Timescale)
	})
	return tracks, samples, probe
}

// boxBody is the payload of a decoded box as it was in the file.
func boxBody(t *testing.T, b mp4ff.Box) []byte {
	t.Helper()
	if b == nil {
		t.Fatal("source sample entry without its configuration box")
	}
	var buf bytes.Buffer
	if err := b.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()[8:]
}

// TestCodecFiles writes MP4s of real frames of each codec the muxer writes besides H.264,
// HEVC and AAC: ffmpeg encodes a short source into an MP4, whose samples and decoder
// configurations go through the Writer as a demuxer would hand them over; ffprobe must
// then see the codec, its tag, channels and sample rate, ffmpeg must decode the file
// without a word, the packets must be the source's and the timing as the source's.
func TestCodecFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ffmpeg")
	}
	sine := func(rate, channels int, codec ...string) []string {
		return append([]string{"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:sample_rate=%d:duration=0.5", rate),
			"-ac", strconv.Itoa(channels), "-c:a"}, codec...)
	}
	type stream struct {
		codec, tag string
		channels   int
		rate       string
	}
	tests := []struct {
		name  string
		args  []string
		brand Brand
		ftyp  string // major brand and compatible brands
		want  []stream
	}{
		{"AC-3 5.1", sine(48000, 6, "ac3"), BrandM4A, "isom isomiso2mp41", []stream{{"ac3", "ac-3", 6, "48000"}}},
		{"E-AC-3 stereo", sine(48000, 2, "eac3"), BrandM4A, "isom isomiso2mp41", []stream{{"eac3", "ec-3", 2, "48000"}}},
		{"MP3 (MPEG-1) stereo", sine(44100, 2, "libmp3lame"), BrandM4A, "isom isomiso2mp41", []stream{{"mp3", "mp4a", 2, "44100"}}},
		{"MP3 (MPEG-2) mono", sine(22050, 1, "libmp3lame"), BrandM4A, "isom isomiso2mp41", []stream{{"mp3", "mp4a", 1, "22050"}}},
		// ffprobe names MPEG audio in MP4 mp3 whatever the layer (as for ffmpeg's own file).
		{"MP2 stereo", sine(48000, 2, "mp2"), BrandM4A, "isom isomiso2mp41", []stream{{"mp3", "mp4a", 2, "48000"}}},
		{"Opus stereo", sine(48000, 2, "libopus"), BrandM4A, "isom isomiso2mp41", []stream{{"opus", "Opus", 2, "48000"}}},
		{"AV1 and Opus", []string{"-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=0.4",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=0.4",
			"-c:v", "libaom-av1", "-cpu-used", "8", "-threads", "1", "-ac", "1", "-c:a", "libopus"},
			BrandMP4, "isom isomav01iso2mp41", []stream{{"av1", "av01", 0, ""}, {"opus", "Opus", 1, "48000"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src, out := filepath.Join(dir, "src.mp4"), filepath.Join(dir, "out.mp4")
			testutil.Run(t, "ffmpeg", append(append([]string{"-v", "error", "-y"}, tc.args...), src)...)
			tracks, samples, ref := demuxMP4(t, src)
			w := NewWriter(testutil.CreateFile(t, out), Options{Brand: tc.brand})
			for _, s := range samples {
				if err := w.WriteSample(s); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := w.Finish(tracks); err != nil {
				t.Fatal(err)
			}

			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if ftyp := onlyBox(t, b[:binary.BigEndian.Uint32(b)], "ftyp"); string(ftyp[:4])+" "+string(ftyp[8:]) != tc.ftyp {
				t.Errorf("ftyp %q, want %q", ftyp, tc.ftyp)
			}
			got := testutil.ProbeFile(t, out)
			if len(got.Streams) != len(tc.want) {
				t.Fatalf("%d streams", len(got.Streams))
			}
			for i, want := range tc.want {
				g, r := got.Streams[i], ref.Streams[i]
				if have := (stream{g.CodecName, g.CodecTagName, g.Channels, g.SampleRate}); have != want {
					t.Errorf("stream %d: %+v, want %+v", i, have, want)
				}
				// Within a frame of the source, whose encoder delay ffmpeg trims with the
				// edit list: for Opus we do too (PreSkip), for the others we cannot know it.
				tr := tracks[i]
				first, frame := trackSpan(samples, tr)
				delay := -float64(first) / float64(tr.Timescale)
				if tr.Codec == media.Opus {
					delay = 0
				}
				if d, rd := testutil.Seconds(t, g.Duration), testutil.Seconds(t, r.Duration)+delay; math.Abs(d-rd) > float64(frame)/float64(tr.Timescale)+0.001 {
					t.Errorf("stream %d lasts %.3f s, the source's %.3f s with its encoder delay", i, d, rd)
				}
				if st, rst := testutil.Seconds(t, g.StartTime), testutil.Seconds(t, r.StartTime); math.Abs(st-rst) > 0.001 {
					t.Errorf("stream %d starts at %.3f s, the source's at %.3f s", i, st, rst)
				}
			}
			if e := testutil.DecodeErrors(t, out); e != "" {
				t.Errorf("ffmpeg decode printed:\n%s", e)
			}
			// The packets' bytes: streams 0..n-1 are the output's, n..2n-1 the source's.
			hashes := strings.Fields(string(testutil.Run(t, "ffmpeg", "-v", "error", "-i", out, "-i", src,
				"-map", "0", "-map", "1", "-c", "copy", "-f", "streamhash", "-hash", "md5", "-")))
			n := len(tc.want)
			for i := range n {
				if len(hashes) != 2*n || hashes[i][strings.Index(hashes[i], "MD5"):] != hashes[n+i][strings.Index(hashes[n+i], "MD5"):] {
					t.Errorf("packets differ from the source's: %q", hashes)
					break
				}
			}
			if strings.Contains(tc.name, "Opus") {
				// The priming is trimmed by the edit list as ffmpeg does it: media_time
				// PreSkip, from -PreSkip.
				moov := decodeMoov(t, b, 0)
				trak := moov.Traks[len(moov.Traks)-1]
				refMoov, _ := mp4ff.ReadMP4File(src)
				refTrak := refMoov.Moov.Traks[len(refMoov.Moov.Traks)-1]
				if mt, rmt := trak.Edts.Elst[0].Entries[0].MediaTime, refTrak.Edts.Elst[0].Entries[0].MediaTime; mt != rmt || mt != 312 {
					t.Errorf("Opus edit media_time %d, ffmpeg's %d", mt, rmt)
				}
			}
		})
	}
}

// trackSpan returns the DTS of tr's first sample and the duration of its last (FrameDuration,
// else the last delta).
func trackSpan(samples []media.Sample, tr *media.Track) (first, last int64) {
	var dts []int64
	for _, s := range samples {
		if s.Track == tr {
			dts = append(dts, s.DTS)
		}
	}
	last = int64(tr.FrameDuration)
	if last == 0 {
		last = dts[len(dts)-1] - dts[len(dts)-2]
	}
	return dts[0], last
}
