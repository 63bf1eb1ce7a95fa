package mp4

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
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
	w, err := Create(out, opts)
	if err != nil {
		t.Fatal(err)
	}
	d := ts.NewDemuxer()
	for _, p := range segs {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		err = d.Segment(f, w.WriteSample)
		f.Close()
		if err != nil {
			w.Abort()
			t.Fatal(err)
		}
	}
	if err := d.Flush(w.WriteSample); err != nil {
		w.Abort()
		t.Fatal(err)
	}
	info, err := w.Finish(d.Tracks())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

type probeStream struct {
	CodecName    string `json:"codec_name"`
	CodecTag     string `json:"codec_tag_string"`
	CodecType    string `json:"codec_type"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	Channels     int    `json:"channels"`
	SampleRate   string `json:"sample_rate"`
	StartTime    string `json:"start_time"`
	NbReadFrames string `json:"nb_read_frames"`
}

type probeResult struct {
	Streams []probeStream `json:"streams"`
	Format  struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func probe(t *testing.T, input string) probeResult {
	t.Helper()
	out := testutil.Run(t, "ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", input)
	var r probeResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	return r
}

// packetSpan is the source's real duration: from the earliest packet PTS to the latest
// packet end over all streams (ffprobe's format duration of MPEG-TS/HLS is an estimate).
func packetSpan(t *testing.T, input string) float64 {
	t.Helper()
	out := testutil.Run(t, "ffprobe", "-v", "error", "-show_entries", "packet=pts_time,duration_time", "-of", "json", input)
	var r struct {
		Packets []struct {
			PTS string `json:"pts_time"`
			Dur string `json:"duration_time"`
		} `json:"packets"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range r.Packets {
		if p.PTS == "" {
			continue
		}
		s := num(t, p.PTS)
		lo, hi = min(lo, s), max(hi, s+num(t, p.Dur))
	}
	return hi - lo
}

func (r probeResult) stream(t *testing.T, typ string) probeStream {
	t.Helper()
	for _, s := range r.Streams {
		if s.CodecType == typ {
			return s
		}
	}
	t.Fatalf("no %s stream", typ)
	return probeStream{}
}

func num(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return f
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

	src := probe(t, "concat:"+strings.Join(segs, "|"))
	dst := probe(t, out)
	sv, sa := src.stream(t, "video"), src.stream(t, "audio")
	dv, da := dst.stream(t, "video"), dst.stream(t, "audio")

	if dv.CodecName != "h264" || dv.CodecTag != "avc1" || da.CodecName != "aac" || da.CodecTag != "mp4a" {
		t.Errorf("codecs %s/%s %s/%s", dv.CodecName, dv.CodecTag, da.CodecName, da.CodecTag)
	}
	if dv.Width != 426 || dv.Height != 240 || da.Channels != 2 || da.SampleRate != "48000" {
		t.Errorf("video %dx%d audio %d ch %s Hz", dv.Width, dv.Height, da.Channels, da.SampleRate)
	}
	if dv.NbReadFrames != sv.NbReadFrames || da.NbReadFrames != sa.NbReadFrames {
		t.Errorf("frames: video %s (source %s), audio %s (source %s)", dv.NbReadFrames, sv.NbReadFrames, da.NbReadFrames, sa.NbReadFrames)
	}
	const frame = 0.040
	srcDur, dstDur := packetSpan(t, "concat:"+strings.Join(segs, "|")), num(t, dst.Format.Duration)
	t.Logf("duration: source %.6f s (packets; ffprobe format %s), output %.6f s (Info %v)", srcDur, src.Format.Duration, dstDur, info.Duration)
	if math.Abs(srcDur-dstDur) > frame {
		t.Errorf("duration %.6f, source %.6f", dstDur, srcDur)
	}
	srcOff := num(t, sv.StartTime) - num(t, sa.StartTime)
	dstOff := num(t, dv.StartTime) - num(t, da.StartTime)
	t.Logf("video start - audio start: source %.6f s, output %.6f s", srcOff, dstOff)
	if math.Abs(srcOff-dstOff) > frame {
		t.Errorf("A/V offset %.6f, source %.6f", dstOff, srcOff)
	}
	if out := testutil.Run(t, "ffmpeg", "-v", "error", "-i", out, "-f", "null", "-"); len(out) != 0 {
		t.Errorf("ffmpeg decode printed:\n%s", out)
	}

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
				if _, err := os.Stat(out + ".relocate"); !os.IsNotExist(err) {
					t.Errorf("temp file left behind: %v", err)
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

func TestAbortRemoves(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.mp4")
	w, err := Create(out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSample(media.Sample{Track: audioTrack(), DTS: 0, Sync: true, Data: []byte{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("file still there: %v", err)
	}
	if err := w.WriteSample(media.Sample{Track: audioTrack(), Data: []byte{1}}); err == nil {
		t.Error("write after Abort: no error")
	}
}

func TestFinishErrorRemoves(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.mp4")
	w, err := Create(out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Finish(nil); err == nil {
		t.Error("Finish without samples: no error")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("file still there: %v", err)
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
	src := probe(t, filepath.Join(dir, "index.m3u8"))
	dst := probe(t, out)
	if got := dst.stream(t, "audio").Channels; got != 1 {
		t.Errorf("channels %d", got)
	}
	if s, d := src.stream(t, "video").NbReadFrames, dst.stream(t, "video").NbReadFrames; s != d {
		t.Errorf("video frames %s, source %s", d, s)
	}
	srcDur, dstDur := packetSpan(t, filepath.Join(dir, "index.m3u8")), num(t, dst.Format.Duration)
	t.Logf("duration: source %.6f s (packets), output %.6f s", srcDur, dstDur)
	if math.Abs(srcDur-dstDur) > 0.040 {
		t.Errorf("duration %.6f, source %.6f", dstDur, srcDur)
	}
	if out := testutil.Run(t, "ffmpeg", "-v", "error", "-i", out, "-f", "null", "-"); len(out) != 0 {
		t.Errorf("ffmpeg decode printed:\n%s", out)
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
	if len(info.Tracks) != 1 || info.Tracks[0].ID != 1 || info.Tracks[0].Kind != media.Audio {
		t.Fatalf("tracks %+v", info.Tracks)
	}
	src, dst := probe(t, filepath.Join(dir, "index.m3u8")), probe(t, out)
	if s, d := src.stream(t, "audio").NbReadFrames, dst.stream(t, "audio").NbReadFrames; s != d {
		t.Errorf("audio frames %s, source %s", d, s)
	}
	if len(dst.Streams) != 1 || dst.Streams[0].Channels != 1 {
		t.Errorf("streams %+v", dst.Streams)
	}
	if out := testutil.Run(t, "ffmpeg", "-v", "error", "-i", out, "-f", "null", "-"); len(out) != 0 {
		t.Errorf("ffmpeg decode printed:\n%s", out)
	}
}
