package fmp4

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
	"github.com/stream-downloads/caddy-stream-downloads/packager/mp4"
)

// playlist is the part of a media playlist the tests need.
type playlist struct {
	dir   string
	items []item
}

type item struct {
	init     string // EXT-X-MAP for this segment
	seg      string
	dur      time.Duration
	discont  bool
	byteFrom int64 // -1: whole file
}

func readPlaylist(t *testing.T, path string) playlist {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := playlist{dir: filepath.Dir(path)}
	var mapURI string
	var dur time.Duration
	disc := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(l, "#EXT-X-MAP:"):
			i := strings.Index(l, `URI="`)
			mapURI = l[i+5:]
			mapURI = mapURI[:strings.IndexByte(mapURI, '"')]
		case strings.HasPrefix(l, "#EXTINF:"):
			v := strings.SplitN(strings.TrimPrefix(l, "#EXTINF:"), ",", 2)[0]
			s, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			dur = time.Duration(s * float64(time.Second))
		case l == "#EXT-X-DISCONTINUITY":
			disc = true
		case l != "" && !strings.HasPrefix(l, "#"):
			p.items = append(p.items, item{init: mapURI, seg: l, dur: dur, discont: disc, byteFrom: -1})
			disc = false
		}
	}
	return p
}

// feed hands a playlist's init sections and segments to d, like the packager.
func feed(t *testing.T, d *Demuxer, p playlist) testutil.Feed {
	return func(emit func(media.Sample) error) error {
		t.Helper()
		curInit := ""
		var at time.Duration
		for _, it := range p.items {
			if it.discont {
				d.Discontinuity(at)
			}
			if it.init != curInit {
				b, err := os.ReadFile(filepath.Join(p.dir, it.init))
				if err != nil {
					t.Fatal(err)
				}
				if err := d.Init(b); err != nil {
					return err
				}
				curInit = it.init
			}
			d.Expect(media.SegmentInfo{Start: at, Duration: it.dur})
			if err := testutil.SegmentFile(t, d, filepath.Join(p.dir, it.seg), emit); err != nil {
				return err
			}
			at += it.dur
		}
		return nil
	}
}

func collect(t *testing.T, p playlist) (*testutil.Samples, error) {
	t.Helper()
	d := NewDemuxer()
	return testutil.Demux(d, feed(t, d, p), nil)
}

// fmp4Checks are the sample checks of the fMP4 demuxer's output: signed composition
// offsets (trun version 1) pass through, so CTO may be negative.
var fmp4Checks = testutil.Checks{NegativeCTO: true}

// checkSamples verifies invariants every demuxed stream must satisfy; a stream
// without discontinuities must also have audio frames that follow each other exactly.
func checkSamples(t *testing.T, p playlist, c *testutil.Samples) {
	t.Helper()
	checks := fmp4Checks
	for _, tr := range c.Tracks {
		if tr.Kind == media.Audio {
			checks.AudioStep = int64(tr.FrameDuration) // 0 when it varies or is not known
		}
	}
	for _, it := range p.items {
		if it.discont {
			checks.AudioStep = 0
		}
	}
	testutil.CheckSamples(t, c, checks)
}

// ffmpegHLS makes an fMP4 HLS stream in dir from lavfi sources and returns the playlist path.
func ffmpegHLS(t *testing.T, dir string, seconds string, input []string, args ...string) string {
	t.Helper()
	pl := filepath.Join(dir, "index.m3u8")
	all := []string{"-v", "error", "-y"}
	all = append(all, input...)
	all = append(all, args...)
	all = append(all, "-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", "1", "-hls_playlist_type", "vod", "-t", seconds, pl)
	testutil.RunIn(t, dir, "ffmpeg", all...)
	return pl
}

func avInput(channels string) []string {
	return []string{
		"-f", "lavfi", "-i", "testsrc2=s=160x90:r=25",
		"-f", "lavfi", "-i", "sine=f=440:r=48000,aformat=channel_layouts=" + channels,
	}
}

var x264 = []string{"-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-g", "25", "-pix_fmt", "yuv420p"}

// packageMP4 runs a playlist through the demuxer and the MP4 writer, and checks the
// samples written.
func packageMP4(t *testing.T, p playlist, out string) *testutil.Samples {
	t.Helper()
	w := mp4.NewWriter(testutil.CreateFile(t, out), mp4.Options{})
	d := NewDemuxer()
	_, c := testutil.PackageMP4(t, w, d, feed(t, d, p))
	checkSamples(t, p, c)
	return c
}

func endToEnd(t *testing.T, pl string) *testutil.Samples {
	t.Helper()
	p := readPlaylist(t, pl)
	out := filepath.Join(t.TempDir(), "out.mp4")
	c := packageMP4(t, p, out)
	t.Log(testutil.CompareWithSource(t, out, pl))
	return c
}

func TestEndToEndH264AAC(t *testing.T) {
	testutil.Tool(t, "ffmpeg")
	cases := []struct {
		name string
		args []string
	}{
		{"default", nil},
		{"frag_keyframe", []string{"-hls_fmp4_init_filename", "map.mp4", "-movflags", "+frag_keyframe"}},
		{"frag_duration", []string{"-hls_segment_options", "frag_duration=200000"}}, // media in init.mp4 too
		{"tfdt_v1", []string{"-output_ts_offset", "100000"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append(append([]string{}, x264...), "-c:a", "aac", "-b:a", "64k")
			pl := ffmpegHLS(t, dir, "4", avInput("stereo"), append(args, tc.args...)...)
			c := endToEnd(t, pl)
			if len(c.Tracks) != 2 || c.Tracks[0].Codec != media.H264 || c.Tracks[1].Codec != media.AAC {
				t.Fatalf("tracks %+v", c.Tracks)
			}
			v, a := c.Tracks[0], c.Tracks[1]
			if v.Width != 160 || v.Height != 90 || len(v.SPS) != 1 || len(v.PPS) != 1 || a.Channels != 2 || a.SampleRate != 48000 {
				t.Errorf("video %+v audio %+v", v, a)
			}
			// Interleaved: the kinds alternate many times (not all video then all audio).
			switches := 0
			for i := 1; i < len(c.Order); i++ {
				if c.Order[i] != c.Order[i-1] {
					switches++
				}
			}
			if switches < 20 {
				t.Errorf("samples barely interleaved: %d switches", switches)
			}
			if tc.name == "tfdt_v1" && float64(c.Video[0].DTS)/float64(v.Timescale) < 99999 {
				t.Errorf("first video DTS %d/%d: tfdt offset lost", c.Video[0].DTS, v.Timescale)
			}
		})
	}
}

func TestEndToEndChannels(t *testing.T) {
	testutil.Tool(t, "ffmpeg")
	for _, layout := range []string{"mono", "5.1"} {
		t.Run(layout, func(t *testing.T) {
			dir := t.TempDir()
			args := append(append([]string{}, x264...), "-c:a", "aac", "-b:a", "96k")
			pl := ffmpegHLS(t, dir, "3", avInput(layout), args...)
			c := endToEnd(t, pl)
			want := map[string]int{"mono": 1, "5.1": 6}[layout]
			if a := c.Tracks[len(c.Tracks)-1]; a.Channels != want {
				t.Errorf("channels %d, want %d", a.Channels, want)
			}
		})
	}
}

func TestEndToEndAudioOnlyRendition(t *testing.T) {
	testutil.Tool(t, "ffmpeg")
	dir := t.TempDir()
	pl := ffmpegHLS(t, dir, "3", []string{"-f", "lavfi", "-i", "sine=f=440:r=44100"}, "-c:a", "aac")
	c := endToEnd(t, pl)
	if len(c.Tracks) != 1 || c.Tracks[0].Kind != media.Audio || c.Tracks[0].SampleRate != 44100 || len(c.Video) != 0 {
		t.Fatalf("tracks %+v", c.Tracks)
	}
}

func TestSeparateRenditions(t *testing.T) {
	// CMAF-style: one track per rendition; each demuxed alone, both written to one MP4.
	testutil.Tool(t, "ffmpeg")
	dir := t.TempDir()
	vdir, adir := filepath.Join(dir, "v"), filepath.Join(dir, "a")
	os.Mkdir(vdir, 0o755)
	os.Mkdir(adir, 0o755)
	src := filepath.Join(dir, "src.mp4")
	testutil.Run(t, "ffmpeg", append(append(append([]string{"-v", "error"}, avInput("stereo")...), x264...), "-c:a", "aac", "-t", "3", src)...)
	vpl := ffmpegHLS(t, vdir, "3", []string{"-i", src}, "-map", "0:v", "-c", "copy")
	apl := ffmpegHLS(t, adir, "3", []string{"-i", src}, "-map", "0:a", "-c", "copy")
	vp, ap := readPlaylist(t, vpl), readPlaylist(t, apl)
	vc, err := collect(t, vp)
	if err != nil {
		t.Fatal(err)
	}
	ac, err := collect(t, ap)
	if err != nil {
		t.Fatal(err)
	}
	checkSamples(t, vp, vc)
	checkSamples(t, ap, ac)
	if len(vc.Tracks) != 1 || len(ac.Tracks) != 1 || vc.Tracks[0].Kind != media.Video || ac.Tracks[0].Kind != media.Audio {
		t.Fatalf("tracks %v / %v", vc.Tracks, ac.Tracks)
	}
	// Start offset as ffprobe sees it in the two renditions.
	start := func(pl string) float64 {
		pr := testutil.ProbeFile(t, pl)
		return testutil.Seconds(t, pr.Streams[0].StartTime)
	}
	vStart, aStart := start(vpl), start(apl)
	v, a := vc.Video[0], ac.Audio[0]
	gotV := float64(v.DTS+int64(v.CTO)) / float64(v.Track.Timescale)
	gotA := float64(a.DTS) / float64(a.Track.Timescale)
	if d := (gotV - gotA) - (vStart - aStart); d > 0.002 || d < -0.002 {
		t.Errorf("video−audio start %.4f, source %.4f", gotV-gotA, vStart-aStart)
	}
}

func TestHEVC(t *testing.T) {
	testutil.Tool(t, "ffmpeg")
	if !strings.Contains(string(testutil.Run(t, "ffmpeg", "-hide_banner", "-encoders")), "libx265") {
		t.Skip("no libx265 encoder")
	}
	for _, tag := range []string{"hvc1", "hev1"} {
		t.Run(tag, func(t *testing.T) {
			dir := t.TempDir()
			pl := ffmpegHLS(t, dir, "3", avInput("stereo"), "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:bframes=3:keyint=25",
				"-tag:v", tag, "-pix_fmt", "yuv420p", "-c:a", "aac")
			out := filepath.Join(t.TempDir(), "out.mp4")
			c := packageMP4(t, readPlaylist(t, pl), out) // checks the samples
			v := c.Tracks[0]
			if v.Codec != media.H265 || v.Width != 160 || v.Height != 90 || len(v.VPS) != 1 || len(v.SPS) != 1 || len(v.PPS) != 1 {
				t.Fatalf("video track %+v", v)
			}
			// hvc1: copied verbatim under the source's hvcC; hev1: rewritten.
			if verbatim := len(v.Config) > 0; verbatim != (tag == "hvc1") {
				t.Errorf("hvcC carried over: %v", verbatim)
			}
			t.Log(testutil.CompareWithSource(t, out, pl))
		})
	}
}

func TestDiscontinuity(t *testing.T) {
	testutil.Tool(t, "ffmpeg")
	dir := t.TempDir()
	args := append(append([]string{}, x264...), "-c:a", "aac")
	ffmpegHLS(t, dir, "3", avInput("stereo"), args...)
	p := readPlaylist(t, filepath.Join(dir, "index.m3u8"))
	// The same segments twice: timestamps restart.
	n := len(p.items)
	for i := range n {
		it := p.items[i]
		it.discont = i == 0
		p.items = append(p.items, it)
	}
	c, err := collect(t, p)
	if err != nil {
		t.Fatal(err)
	}
	checkSamples(t, p, c)
	// Without the discontinuity it is an error.
	for i := range p.items {
		p.items[i].discont = false
	}
	_, err = collect(t, p)
	if !errors.Is(err, media.ErrMalformed) || !strings.Contains(err.Error(), "backwards") {
		t.Fatalf("err = %v, want a malformed backwards error", err)
	}
	// The second period starts at the sum of the EXTINFs (3 s) after the first.
	var total time.Duration
	for _, it := range p.items[:n] {
		total += it.dur
	}
	half := len(c.Video) / 2
	v := c.Video[0].Track
	got := float64(c.Video[half].DTS-c.Video[0].DTS) / float64(v.Timescale)
	if d := got - total.Seconds(); d < -0.001 || d > 0.05 {
		t.Errorf("second period starts %.4f s after the first, want %.4f", got, total.Seconds())
	}
	// A/V offset kept.
	ha := len(c.Audio) / 2
	a := c.Audio[0].Track
	off1 := float64(c.Video[0].DTS)/float64(v.Timescale) - float64(c.Audio[0].DTS)/float64(a.Timescale)
	off2 := float64(c.Video[half].DTS)/float64(v.Timescale) - float64(c.Audio[ha].DTS)/float64(a.Timescale)
	if d := off1 - off2; d > 0.001 || d < -0.001 {
		t.Errorf("A/V offset %.4f then %.4f", off1, off2)
	}
}

func TestLeadingNonKeyframes(t *testing.T) {
	testutil.Tool(t, "ffmpeg")
	dir := t.TempDir()
	args := append(append([]string{}, x264...), "-c:a", "aac", "-hls_segment_options", "frag_duration=200000")
	pl := ffmpegHLS(t, dir, "3", avInput("stereo"), args...)
	p := readPlaylist(t, pl)
	moofs := func(b []byte) []int {
		var out []int
		walkBoxes(b, 0, func(bx box) error {
			if bx.typ == "moof" {
				out = append(out, bx.start)
			}
			return nil
		})
		return out
	}
	// The init without the media ffmpeg put in it, and the second segment without its
	// first fragment: the stream starts mid-GOP.
	ib, err := os.ReadFile(filepath.Join(p.dir, p.items[0].init))
	if err != nil {
		t.Fatal(err)
	}
	if m := moofs(ib); len(m) > 0 {
		ib = ib[:m[0]]
	}
	b, err := os.ReadFile(filepath.Join(p.dir, p.items[1].seg))
	if err != nil {
		t.Fatal(err)
	}
	m := moofs(b)
	if len(m) < 2 {
		t.Fatalf("%d fragments in the second segment", len(m))
	}
	os.WriteFile(filepath.Join(p.dir, "clean.mp4"), ib, 0o644)
	os.WriteFile(filepath.Join(p.dir, "cut.m4s"), b[m[1]:], 0o644)
	p.items = p.items[1:]
	p.items[0].seg = "cut.m4s"
	for i := range p.items {
		p.items[i].init = "clean.mp4"
	}
	first, err := collect(t, playlist{dir: p.dir, items: p.items[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Video) != 0 || len(first.Audio) == 0 {
		t.Errorf("cut segment alone: %d video, %d audio samples", len(first.Video), len(first.Audio))
	}
	out := filepath.Join(t.TempDir(), "out.mp4")
	c := packageMP4(t, p, out) // checks the samples
	if len(c.Video) == 0 || len(c.Audio) == 0 {
		t.Fatalf("video %d, audio %d", len(c.Video), len(c.Audio))
	}
	if float64(c.Audio[0].DTS)/float64(c.Audio[0].Track.Timescale) >= float64(c.Video[0].DTS)/float64(c.Video[0].Track.Timescale) {
		t.Errorf("audio does not start before the first keyframe")
	}
	if msg := testutil.DecodeErrors(t, out); msg != "" {
		t.Errorf("decoding: %s", msg)
	}
}

func TestUnsupportedCodecs(t *testing.T) {
	testutil.Tool(t, "ffmpeg")
	encs := string(testutil.Run(t, "ffmpeg", "-hide_banner", "-encoders"))
	if !strings.Contains(encs, " libvpx-vp9 ") {
		t.Skip("no libvpx-vp9 encoder")
	}
	dir := t.TempDir()
	pl := ffmpegHLS(t, dir, "1", []string{"-f", "lavfi", "-i", "testsrc2=s=160x90:r=10"}, "-c:v", "libvpx-vp9", "-cpu-used", "8", "-deadline", "realtime", "-g", "10")
	_, err := collect(t, readPlaylist(t, pl))
	if !errors.Is(err, media.ErrUnsupportedCodec) || !strings.Contains(err.Error(), "VP9") {
		t.Fatalf("err = %v, want unsupported VP9", err)
	}
	t.Log(err)

	// Common Encryption (DRM): encv/enca sample entries, refused naming the codec inside.
	dir = t.TempDir()
	const key = "00112233445566778899aabbccddeeff"
	pl = ffmpegHLS(t, dir, "1", avInput("stereo"), append(append([]string{}, x264...), "-c:a", "aac",
		"-hls_segment_options", "encryption_scheme=cenc-aes-ctr:encryption_key="+key+":encryption_kid="+key)...)
	_, err = collect(t, readPlaylist(t, pl))
	if !errors.Is(err, media.ErrUnsupportedCodec) || !strings.Contains(err.Error(), "encrypted video (DRM/Common Encryption, original format H.264)") {
		t.Fatalf("err = %v, want unsupported encrypted H.264", err)
	}
	t.Log(err)
}

// TestCodecs packages ffmpeg-made fMP4 streams of the codecs besides H.264/HEVC/AAC:
// samples copied as they are, the sample entry's configuration carried over.
func TestCodecs(t *testing.T) {
	testutil.Tool(t, "ffmpeg")
	video := []string{"-f", "lavfi", "-i", "testsrc2=s=160x90:r=25"}
	audio := []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"}
	cases := []struct {
		name     string
		input    []string
		args     []string
		codec    media.Codec
		channels int
		rate     int
		ot       uint8
	}{
		{"ac3", audio, []string{"-c:a", "ac3", "-ac", "6", "-b:a", "192k"}, media.AC3, 6, 48000, 0},
		{"eac3", audio, []string{"-c:a", "eac3", "-ac", "6", "-b:a", "192k"}, media.EAC3, 6, 48000, 0},
		{"opus", audio, []string{"-c:a", "libopus", "-ac", "2", "-b:a", "48k"}, media.Opus, 2, 48000, 0},
		{"mp3", audio, []string{"-c:a", "libmp3lame", "-ac", "2", "-b:a", "64k"}, media.MPEGAudio, 2, 48000, 0x6b},
		{"mp3 lsf", audio, []string{"-c:a", "libmp3lame", "-ar", "22050", "-ac", "1", "-b:a", "32k"}, media.MPEGAudio, 1, 22050, 0x69},
		{"av1", video, []string{"-c:v", "libaom-av1", "-cpu-used", "8", "-threads", "1", "-g", "25"}, media.AV1, 0, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pl := ffmpegHLS(t, t.TempDir(), "2", tc.input, tc.args...)
			c := endToEnd(t, pl)
			tr := c.Tracks[0]
			if tr.Codec != tc.codec || tr.Channels != tc.channels || tr.SampleRate != tc.rate || tr.ObjectType != tc.ot {
				t.Errorf("track %s %d ch %d Hz object type %#x, want %s %d ch %d Hz %#x", tr.Codec, tr.Channels, tr.SampleRate, tr.ObjectType, tc.codec, tc.channels, tc.rate, tc.ot)
			}
			if tc.codec == media.AV1 && (tr.Width != 160 || tr.Height != 90 || len(tr.Config) < 4) {
				t.Errorf("AV1 track %dx%d, av1C %x", tr.Width, tr.Height, tr.Config)
			}
		})
	}
}

func TestSampleFlagsSync(t *testing.T) {
	cases := []struct {
		flags uint32
		want  bool
	}{
		{0x02000000, true},  // depends_on 2 (I picture)
		{0x00000000, true},  // nothing said: sync
		{0x01010000, false}, // depends_on 1, non-sync
		{0x00010000, false}, // non-sync
		{0x01000000, false}, // depends on others
		{0x02010000, false}, // I picture but marked non-sync (open GOP)
	}
	for _, c := range cases {
		if got := sampleFlagsSync(c.flags); got != c.want {
			t.Errorf("flags %08x: sync %v, want %v", c.flags, got, c.want)
		}
	}
}

// fragment builds a moof+mdat with one traf for track 1 from explicit trun fields.
func fragment(tfdtV1 bool, base uint64, trunVersion byte, firstFlags *uint32, samples []struct {
	dur, size, flags uint32
	cto              int32
}) []byte {
	var traf []byte
	// tfhd: default-base-is-moof, track 1
	tfhd := be32(nil, 0x00020000)
	tfhd = be32(tfhd, 1)
	traf = append(traf, boxOf("tfhd", tfhd)...)
	var tfdt []byte
	if tfdtV1 {
		tfdt = be32(nil, 0x01000000)
		tfdt = binary.BigEndian.AppendUint64(tfdt, base)
	} else {
		tfdt = be32(nil, 0)
		tfdt = be32(tfdt, uint32(base))
	}
	traf = append(traf, boxOf("tfdt", tfdt)...)
	flags := uint32(0x01 | 0x100 | 0x200 | 0x800)
	if firstFlags != nil {
		flags |= 0x04
	} else {
		flags |= 0x400
	}
	trunHdrLen := 8 + 4 + 4 + 4
	if firstFlags != nil {
		trunHdrLen += 4
	}
	per := 12
	if firstFlags == nil {
		per = 16
	}
	trunLen := trunHdrLen + per*len(samples)
	moofLen := 8 + (8 + 8) + 8 + len(traf) + trunLen
	trun := be32(nil, uint32(trunVersion)<<24|flags)
	trun = be32(trun, uint32(len(samples)))
	trun = be32(trun, uint32(moofLen+8))
	if firstFlags != nil {
		trun = be32(trun, *firstFlags)
	}
	var payload []byte
	for _, s := range samples {
		trun = be32(trun, s.dur)
		trun = be32(trun, s.size)
		if firstFlags == nil {
			trun = be32(trun, s.flags)
		}
		trun = be32(trun, uint32(s.cto))
		payload = append(payload, make([]byte, s.size)...)
	}
	traf = append(traf, boxOf("trun", trun)...)
	moof := boxOf("mfhd", be32(be32(nil, 0), 1))
	moof = append(moof, boxOf("traf", traf)...)
	out := boxOf("moof", moof)
	if len(out) != moofLen {
		panic("moof length")
	}
	return append(out, boxOf("mdat", payload)...)
}

func be32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

func boxOf(typ string, payload []byte) []byte {
	b := be32(nil, uint32(8+len(payload)))
	return append(append(b, typ...), payload...)
}

// audioInit is a minimal init: one AAC track (ID 1, timescale 48000) with an elst.
func audioInit(t testing.TB, emptyMs uint32, mediaTime int32) []byte {
	t.Helper()
	mvhd := make([]byte, 100)
	binary.BigEndian.PutUint32(mvhd[12:], 1000)
	tkhd := make([]byte, 84)
	binary.BigEndian.PutUint32(tkhd[12:], 1)
	elst := be32(nil, 0)
	n := uint32(1)
	if emptyMs > 0 {
		n = 2
	}
	elst = be32(elst, n)
	if emptyMs > 0 {
		elst = be32(be32(be32(elst, emptyMs), 0xffffffff), 0x00010000)
	}
	elst = be32(be32(be32(elst, 0), uint32(mediaTime)), 0x00010000)
	mdhd := make([]byte, 24)
	binary.BigEndian.PutUint32(mdhd[12:], 48000)
	hdlr := append(make([]byte, 8), "soun"...)
	hdlr = append(hdlr, make([]byte, 13)...)
	asc := []byte{0x11, 0x90}
	dsi := append([]byte{0x05, byte(len(asc))}, asc...)
	dcd := append([]byte{0x04, byte(13 + len(dsi)), 0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, dsi...)
	esd := append([]byte{0x03, byte(3 + len(dcd) + 3), 0, 1, 0}, dcd...)
	esd = append(esd, 0x06, 0x01, 0x02)
	esds := boxOf("esds", append(be32(nil, 0), esd...))
	mp4a := make([]byte, 28)
	binary.BigEndian.PutUint16(mp4a[6:], 1)
	binary.BigEndian.PutUint16(mp4a[16:], 2)
	binary.BigEndian.PutUint16(mp4a[18:], 16)
	binary.BigEndian.PutUint32(mp4a[24:], 48000<<16)
	stsd := boxOf("stsd", append(be32(be32(nil, 0), 1), boxOf("mp4a", append(mp4a, esds...))...))
	stbl := boxOf("stbl", stsd)
	minf := boxOf("minf", stbl)
	mdia := boxOf("mdia", append(append(boxOf("mdhd", mdhd), boxOf("hdlr", hdlr)...), minf...))
	trak := boxOf("trak", append(append(boxOf("tkhd", tkhd), boxOf("edts", boxOf("elst", elst))...), mdia...))
	trex := be32(be32(be32(be32(be32(be32(nil, 0), 1), 1), 1024), 0), 0x02000000)
	moov := boxOf("moov", append(append(boxOf("mvhd", mvhd), trak...), boxOf("mvex", boxOf("trex", trex))...))
	return append(boxOf("ftyp", []byte("iso6\x00\x00\x00\x00iso6")), moov...)
}

type trunSample = struct {
	dur, size, flags uint32
	cto              int32
}

func TestSyntheticTimeline(t *testing.T) {
	d := NewDemuxer()
	if err := d.Init(audioInit(t, 100, 0)); err != nil {
		t.Fatal(err)
	}
	var got []media.Sample
	emit := func(s media.Sample) error { got = append(got, s); return nil }
	ss := []trunSample{{1024, 10, 0, 0}, {1024, 10, 0, 0}, {1024, 10, 0, 0}}
	// tfdt v1 with a large value.
	if err := d.Segment(bytes.NewReader(fragment(true, 1<<33, 0, nil, ss)), emit); err != nil {
		t.Fatal(err)
	}
	// The empty edit of 100 ms (movie timescale 1000) delays the track by 4800 ticks.
	if got[0].DTS != 1<<33+4800 || got[2].DTS != 1<<33+4800+2048 {
		t.Errorf("DTS %d %d", got[0].DTS, got[2].DTS)
	}
	// Continuing at the next tfdt.
	if err := d.Segment(bytes.NewReader(fragment(true, 1<<33+3072, 0, nil, ss)), emit); err != nil {
		t.Fatal(err)
	}
	// Backwards without a discontinuity.
	err := d.Segment(bytes.NewReader(fragment(false, 0, 0, nil, ss)), emit)
	if !errors.Is(err, media.ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
	t.Log(err)
	// With one: placed at origin + at, never before the end.
	got = nil
	d.Discontinuity(10 * time.Second)
	if err := d.Segment(bytes.NewReader(fragment(false, 0, 0, nil, ss)), emit); err != nil {
		t.Fatal(err)
	}
	if want := int64(1<<33 + 4800 + 480000); got[0].DTS != want {
		t.Errorf("after discontinuity DTS %d, want %d", got[0].DTS, want)
	}
	got = nil
	d.Discontinuity(0) // at before the end of what was emitted: follows it
	if err := d.Segment(bytes.NewReader(fragment(false, 500, 0, nil, ss)), emit); err != nil {
		t.Fatal(err)
	}
	if want := int64(1<<33 + 4800 + 480000 + 3072); got[0].DTS != want {
		t.Errorf("after second discontinuity DTS %d, want %d", got[0].DTS, want)
	}
}

func TestSyntheticTrunFields(t *testing.T) {
	// Video-less checks on trun parsing through a fake video stream: flags, first sample
	// flags, v1 negative composition offsets.
	d := NewDemuxer()
	if err := d.Init(audioInit(t, 0, 0)); err != nil {
		t.Fatal(err)
	}
	var raws []rawSample
	ff := uint32(0x02000000)
	ss := []trunSample{{512, 4, 0, -1024}, {512, 4, 0, 512}, {512, 4, 0, 0}}
	data := fragment(false, 7, 1, &ff, ss)
	d.resetSegment(nil)
	err := walkBoxes(data, 0, func(bx box) error {
		if bx.typ != "moof" {
			return nil
		}
		return d.parseMoof(&moofBuf{b: bx.data}, int64(bx.start), 8)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range d.s.runs {
		for i, t := 0, r.t; i < r.tr.count; i++ {
			dur, _, flags, cto := r.tr.sample(i, r.def)
			raws = append(raws, rawSample{raw: t, dur: dur, flags: flags, cto: cto})
			t += int64(dur)
		}
	}
	if len(raws) != 3 || raws[0].cto != -1024 || raws[1].cto != 512 || raws[0].raw != 7 || raws[2].raw != 7+1024 {
		t.Fatalf("samples %+v", raws)
	}
	// First sample flags for the first; trex default (0x02000000 in audioInit) for the rest.
	if raws[0].flags != ff || raws[1].flags != 0x02000000 {
		t.Errorf("flags %08x %08x", raws[0].flags, raws[1].flags)
	}
}

func TestErrorsNotPanics(t *testing.T) {
	d := NewDemuxer()
	if err := d.Segment(bytes.NewReader([]byte("garbage")), func(media.Sample) error { return nil }); !errors.Is(err, media.ErrMalformed) {
		t.Errorf("segment before init: %v", err)
	}
	if err := d.Init([]byte{0, 0, 0, 8, 'f', 't', 'y', 'p'}); !errors.Is(err, media.ErrMalformed) {
		t.Errorf("init without moov: %v", err)
	}
	init := audioInit(t, 0, 0)
	for i := 0; i < len(init); i += 7 {
		_ = NewDemuxer().Init(init[:i])
	}
}

// TestCoverage: a segment whose samples last much less than its EXTINF is lost media.
func TestCoverage(t *testing.T) {
	p := readPlaylist(t, filepath.Join(testutil.RepoRoot(t), "testdata", "conformance", "streams", "fmp4-h264-aac", "play.m3u8"))
	if _, err := collect(t, p); err != nil {
		t.Fatalf("as the playlist says: %v", err)
	}
	p.items[1].dur *= 3
	_, err := collect(t, p)
	if err == nil || !strings.Contains(err.Error(), "media lost") || !strings.Contains(err.Error(), "segment 1") {
		t.Fatalf("a segment of a third of its EXTINF: err = %v, want media lost in segment 1", err)
	}
}
