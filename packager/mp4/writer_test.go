package mp4

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
	"github.com/stream-downloads/caddy-stream-downloads/packager/ts"
)

// packageSegments demuxes TS segments into a progressive MP4 at out.
func packageSegments(t *testing.T, segs []string, out string, opts Options) Info {
	t.Helper()
	w := NewWriter(testutil.CreateFile(t, out), opts)
	d := ts.NewDemuxer()
	for _, p := range segs {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		err = d.Segment(f, w.WriteSample)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Flush(w.WriteSample); err != nil {
		t.Fatal(err)
	}
	info, err := w.Finish(d.Tracks())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestEndToEndDemo(t *testing.T) {
	segs := testutil.DemoSegments(t)
	testutil.Tool(t, "ffprobe")
	dir := t.TempDir()
	out := filepath.Join(dir, "out.mp4")
	info := packageSegments(t, segs, out, Options{ExpectedDuration: 12e9})
	if info.Relocated {
		t.Errorf("the reserve for 12 s was too small: header %d", info.HeaderSize)
	}

	// Layout: ftyp, moov, (free), mdat, and nothing else.
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != info.Size {
		t.Errorf("Info.Size %d, file %d", info.Size, len(b))
	}
	var types []string
	for _, bx := range walk(t, b, 0) {
		types = append(types, bx.typ)
	}
	if got := strings.Join(types, ","); got != "ftyp,moov,free,mdat" {
		t.Errorf("top-level boxes %s", got)
	}

	t.Log(testutil.CompareWithSource(t, out, "concat:"+strings.Join(segs, "|")))

	// Deterministic: the same input gives the same bytes.
	out2 := filepath.Join(dir, "out2.mp4")
	packageSegments(t, segs, out2, Options{ExpectedDuration: 12e9})
	b2, err := os.ReadFile(out2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Error("two runs gave different bytes")
	}
}

// TestRelocate forces a reserve too small for the header: the media is moved once behind
// the header, and the file is as valid (and deterministic) as with the reserve.
func TestRelocate(t *testing.T) {
	segs := testutil.DemoSegments(t)
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.mp4")
	refInfo := packageSegments(t, segs, ref, Options{})
	refB, err := os.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	// The compact header size: what a relocation produces.
	compact := packageSegments(t, segs, filepath.Join(dir, "probe.mp4"), Options{Reserve: 64}).HeaderSize
	tests := []struct {
		name      string
		reserve   int64
		relocated bool
		boxes     string
	}{
		{"tiny reserve", 64, true, "ftyp,moov,mdat"},
		{"one byte short", compact - 1, true, "ftyp,moov,mdat"},
		{"gap too small for a free box", compact + 7, true, "ftyp,moov,mdat"},
		{"exact", compact, false, "ftyp,moov,mdat"},
		{"room for a free box", compact + 8, false, "ftyp,moov,free,mdat"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var outs [][]byte
			var info Info
			for run := range 2 {
				out := filepath.Join(dir, strconv.Itoa(int(tc.reserve))+"-"+strconv.Itoa(run)+".mp4")
				info = packageSegments(t, segs, out, Options{Reserve: tc.reserve})
				if info.Relocated != tc.relocated {
					t.Errorf("Relocated = %v", info.Relocated)
				}
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(b)) != info.Size {
					t.Errorf("file of %d bytes, Info.Size %d", len(b), info.Size)
				}
				outs = append(outs, b)
			}
			if !bytes.Equal(outs[0], outs[1]) {
				t.Error("not deterministic")
			}
			var types []string
			for _, bx := range walk(t, outs[0], 0) {
				types = append(types, bx.typ)
			}
			if got := strings.Join(types, ","); got != tc.boxes {
				t.Errorf("boxes %s, want %s", got, tc.boxes)
			}
			// Same media payload as with the default reserve.
			if !bytes.Equal(refB[refInfo.HeaderSize:], outs[0][info.HeaderSize:]) {
				t.Error("media differs from the reserved-layout file")
			}
			if testing.Short() {
				return
			}
			if out := testutil.Run(t, "ffmpeg", "-v", "error", "-i", filepath.Join(dir, strconv.Itoa(int(tc.reserve))+"-0.mp4"), "-f", "null", "-"); len(out) != 0 {
				t.Errorf("ffmpeg decode printed:\n%s", out)
			}
		})
	}
}

// TestWriterDone: a Writer takes no sample after Finish, nor a second Finish; a Finish
// without samples is an error.
func TestWriterDone(t *testing.T) {
	dir := t.TempDir()
	a := audioTrack()
	a.ID = 1
	w := NewWriter(testutil.CreateFile(t, filepath.Join(dir, "x.mp4")), Options{})
	if err := w.WriteSample(media.Sample{Track: a, DTS: 0, Sync: true, Data: []byte{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Finish([]*media.Track{a}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSample(media.Sample{Track: a, Data: []byte{1}}); err == nil {
		t.Error("write after Finish: no error")
	}
	if _, err := w.Finish(nil); err == nil {
		t.Error("second Finish: no error")
	}
	w = NewWriter(testutil.CreateFile(t, filepath.Join(dir, "y.mp4")), Options{})
	if _, err := w.Finish(nil); err == nil {
		t.Error("Finish without samples: no error")
	}
}

// TestWrapMonoEndToEnd packages a stream that crosses the 33-bit wrap, with mono audio.
func TestWrapMonoEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ffmpeg")
	}
	dir := t.TempDir()
	testutil.Run(t, "ffmpeg", "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=size=160x96:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "3", "-ac", "1", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "25",
		"-c:a", "aac", "-output_ts_offset", "95441",
		"-f", "hls", "-hls_time", "1", "-hls_list_size", "0",
		"-hls_segment_filename", filepath.Join(dir, "s%03d.ts"), filepath.Join(dir, "index.m3u8"))
	segs, _ := filepath.Glob(filepath.Join(dir, "s*.ts"))
	out := filepath.Join(dir, "out.mp4")
	packageSegments(t, segs, out, Options{})
	t.Log(testutil.CompareWithSource(t, out, filepath.Join(dir, "index.m3u8")))
	if p := testutil.ProbeFile(t, out); p.Streams[1].Channels != 1 {
		t.Errorf("channels %d, want 1", p.Streams[1].Channels)
	}
}

func TestAudioOnlyM4A(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ffmpeg")
	}
	dir := t.TempDir()
	testutil.Run(t, "ffmpeg", "-v", "error", "-y",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "2", "-ac", "1", "-c:a", "aac",
		"-f", "hls", "-hls_time", "1", "-hls_list_size", "0",
		"-hls_segment_filename", filepath.Join(dir, "s%03d.ts"), filepath.Join(dir, "index.m3u8"))
	segs, _ := filepath.Glob(filepath.Join(dir, "s*.ts"))
	out := filepath.Join(dir, "out.m4a")
	info := packageSegments(t, segs, out, Options{Brand: BrandM4A})
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	moov := decodeMoov(t, b[:info.HeaderSize], info.Size-info.HeaderSize)
	if len(moov.Traks) != 1 || moov.Trak.Tkhd.TrackID != 1 || moov.Trak.Mdia.Hdlr.HandlerType != "soun" {
		t.Fatalf("%d tracks, the first with ID %d", len(moov.Traks), moov.Trak.Tkhd.TrackID)
	}
	t.Log(testutil.CompareWithSource(t, out, filepath.Join(dir, "index.m3u8")))
}

// TestInterleave: audio goes to the file in chunks of about a second between the video's,
// not a chunk per frame or two as the demuxer hands them out.
func TestInterleave(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.mp4")
	info := packageSegments(t, testutil.DemoSegments(t), out, Options{})
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	moov := decodeMoov(t, b[:info.HeaderSize], info.Size-info.HeaderSize)
	type chunk struct {
		off     uint64
		audio   bool
		samples uint32
	}
	var chunks []chunk
	for _, trak := range moov.Traks {
		stbl := trak.Mdia.Minf.Stbl
		audio := trak.Mdia.Hdlr.HandlerType == "soun"
		for i, off := range stbl.Stco.ChunkOffset {
			chunks = append(chunks, chunk{uint64(off), audio, stbl.Stsc.GetChunk(uint32(i + 1)).NrSamples})
		}
	}
	sort.Slice(chunks, func(i, j int) bool { return chunks[i].off < chunks[j].off })
	var audioChunks, videoChunks, switches int
	for i, c := range chunks {
		if c.audio {
			audioChunks++
			// 48 kHz AAC: 1 s is 46.875 frames.
			if c.samples > 47 {
				t.Errorf("audio chunk %d holds %d frames, more than a second", i, c.samples)
			}
		} else {
			videoChunks++
		}
		if i > 0 && c.audio != chunks[i-1].audio {
			switches++
		}
	}
	// 12 s of video: ~12 audio chunks, as many video chunks between them.
	if audioChunks < 12 || audioChunks > 16 || videoChunks > 2*audioChunks || switches < 2*audioChunks-2 {
		t.Errorf("%d audio and %d video chunks, %d switches: want ~12 of each, alternating", audioChunks, videoChunks, switches)
	}
}
