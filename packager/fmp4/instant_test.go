package fmp4

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mp4ff "github.com/Eyevinn/mp4ff/mp4"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
	"github.com/stream-downloads/caddy-stream-downloads/packager/mp4"
)

// source is an fMP4 rendition read into memory: its segments with their init sections,
// byte ranges applied.
type source struct {
	segs  []sourceSeg
	total time.Duration
}

type sourceSeg struct {
	initKey string // the init section's URI and range
	init    []byte
	data    []byte
	dur     time.Duration
	discont bool
}

// readSource reads a media playlist with its EXT-X-MAP, EXT-X-BYTERANGE and
// EXT-X-DISCONTINUITY tags, and the bytes they point at.
func readSource(t testing.TB, path string) source {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := filepath.Dir(path)
	files := map[string][]byte{}
	read := func(uri string, rng string, next int64) ([]byte, int64) {
		b, ok := files[uri]
		if !ok {
			if b, err = os.ReadFile(filepath.Join(dir, uri)); err != nil {
				t.Fatal(err)
			}
			files[uri] = b
		}
		if rng == "" {
			return b, 0
		}
		n, o, hasO := strings.Cut(rng, "@")
		size, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		off := next
		if hasO {
			if off, err = strconv.ParseInt(o, 10, 64); err != nil {
				t.Fatal(err)
			}
		}
		return b[off : off+size], off + size
	}
	var src source
	var cur sourceSeg
	var rng string
	next := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(l, "#EXT-X-MAP:"):
			attr := func(name string) string {
				i := strings.Index(l, name+`="`)
				if i < 0 {
					return ""
				}
				v := l[i+len(name)+2:]
				return v[:strings.IndexByte(v, '"')]
			}
			uri, r := attr("URI"), attr("BYTERANGE")
			cur.initKey = uri + "@" + r
			cur.init, _ = read(uri, r, 0)
		case strings.HasPrefix(l, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(l, "#EXTINF:"), ",")
			s, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			cur.dur = time.Duration(s * float64(time.Second))
		case strings.HasPrefix(l, "#EXT-X-BYTERANGE:"):
			rng = strings.TrimPrefix(l, "#EXT-X-BYTERANGE:")
		case l == "#EXT-X-DISCONTINUITY":
			cur.discont = true
		case l != "" && !strings.HasPrefix(l, "#"):
			seg := cur
			seg.data, next[l] = read(l, rng, next[l])
			src.segs = append(src.segs, seg)
			src.total += seg.dur
			cur.discont, rng = false, ""
		}
	}
	return src
}

// fixtureSource is a source of one init section and one segment.
func fixtureSource(t testing.TB, init, seg string, dur time.Duration) source {
	t.Helper()
	i, err := os.ReadFile(filepath.Join("testdata", init))
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.ReadFile(filepath.Join("testdata", seg))
	if err != nil {
		t.Fatal(err)
	}
	return source{segs: []sourceSeg{{initKey: init, init: i, data: s, dur: dur}}, total: dur}
}

// demuxSource feeds src to d as the packager does (init section, discontinuity, EXTINF,
// segment), with segment(i, d) demuxing segment i.
func demuxSource(src source, d *Demuxer, segment func(i int) error) error {
	var at time.Duration
	key := ""
	for i, s := range src.segs {
		if s.initKey != key {
			if err := d.Init(s.init); err != nil {
				return err
			}
			key = s.initKey
		}
		if s.discont && i > 0 {
			d.Discontinuity(at)
		}
		d.Expect(media.SegmentInfo{Start: at, Duration: s.dur})
		if err := segment(i); err != nil {
			return fmt.Errorf("segment %d: %w", i, err)
		}
		at += s.dur
	}
	return nil
}

// packageNormal writes src in the normal mode with the mp4.Writer and returns the file.
func packageNormal(t testing.TB, src source, opts mp4.Options, path string) ([]byte, mp4.Info) {
	t.Helper()
	f := testutil.CreateFile(t, path)
	w := mp4.NewWriter(f, opts)
	d := NewDemuxer()
	err := demuxSource(src, d, func(i int) error {
		return d.Segment(bytes.NewReader(src.segs[i].data), w.WriteSample)
	})
	if err != nil {
		t.Fatal(err)
	}
	info, err := w.Finish(d.Tracks())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b, info
}

// where is an IndexedSample's source: its segment and place.
type where struct {
	seg int
	IndexedSample
}

// planIndex plans src from the index mode with an mp4.Planner: the layout, and where
// each track's samples (in the Planner's order, Placement.Sample) come from.
func planIndex(src source, opts mp4.Options) (mp4.Layout, map[*media.Track][]where, error) {
	p := mp4.NewPlanner(opts)
	d := NewIndexDemuxer()
	from := map[*media.Track][]where{}
	err := demuxSource(src, d, func(i int) error {
		return d.SegmentIndex(bytes.NewReader(src.segs[i].data), func(s IndexedSample) error {
			from[s.Track] = append(from[s.Track], where{i, s})
			_, _, err := p.Add(s.Sample, int64(s.Size))
			return err
		})
	})
	if err != nil {
		return mp4.Layout{}, nil, err
	}
	l, err := p.Plan(d.Tracks())
	return l, from, err
}

// instantSources are the fMP4 flavours of the conformance suite and the fixtures the
// index mode takes.
func instantSources(t testing.TB) map[string]source {
	t.Helper()
	root := filepath.Join(testutil.RepoRoot(t), "testdata", "conformance", "streams")
	dirs, err := filepath.Glob(filepath.Join(root, "fmp4-*"))
	if err != nil {
		t.Fatal(err)
	}
	dirs = append(dirs, filepath.Join(root, "byterange-fmp4"), filepath.Join(root, "audio-only-fmp4"))
	out := map[string]source{}
	for _, d := range dirs {
		out[filepath.Base(d)] = readSource(t, filepath.Join(d, "play.m3u8"))
	}
	out["fixture-avc"] = fixtureSource(t, "avc_init.mp4", "avc_seg.m4s", 0)
	return out
}

// TestIndexPlanEqualsFile: for every fMP4 flavour of the conformance suite and the
// fixtures, the header and the sample offsets planned from the index mode (moofs and
// init sections alone) are those of the file the normal mode writes, byte for byte,
// with the reserve and when the header is relocated; and every planned sample's bytes
// in that file are the source's bytes where the index says they are.
func TestIndexPlanEqualsFile(t *testing.T) {
	srcs := instantSources(t)
	if len(srcs) < 10 {
		t.Fatalf("only %d fMP4 sources found", len(srcs))
	}
	for name, src := range srcs {
		for _, reserve := range []int64{0, 64} {
			t.Run(fmt.Sprintf("%s/reserve=%d", name, reserve), func(t *testing.T) {
				opts := mp4.Options{ExpectedDuration: src.total, Reserve: reserve}
				if strings.HasPrefix(name, "audio-only") {
					opts.Brand = mp4.BrandM4A
				}
				file, info := packageNormal(t, src, opts, filepath.Join(t.TempDir(), "out.mp4"))
				l, from, err := planIndex(src, opts)
				if err != nil {
					t.Fatal(err)
				}
				if l.MediaStart != info.HeaderSize || l.Size != info.Size || l.Relocated != info.Relocated || int64(len(file)) != info.Size {
					t.Fatalf("planned media start %d, size %d, relocated %v; the file's %d, %d (%d bytes), %v",
						l.MediaStart, l.Size, l.Relocated, info.HeaderSize, info.Size, len(file), info.Relocated)
				}
				if !bytes.Equal(l.Header, file[:info.HeaderSize]) {
					t.Fatalf("the planned header differs from the file's first %d bytes", info.HeaderSize)
				}
				if reserve == 64 && !l.Relocated {
					t.Error("a reserve of 64 bytes did not relocate")
				}
				offsets := fileOffsets(t, file[:info.HeaderSize])
				n := 0
				next := l.MediaStart
				for p := range l.Samples() {
					if p.Offset != next {
						t.Fatalf("sample %d of track %d at %d, not right after the one before (%d)", p.Sample, p.Track.ID, p.Offset, next)
					}
					next += int64(p.Size)
					o := offsets[p.Track.ID]
					if p.Sample >= len(o) || o[p.Sample] != [2]int64{p.Offset, int64(p.Size)} {
						t.Fatalf("sample %d of track %d planned at %d+%d; the file's moov has it otherwise", p.Sample, p.Track.ID, p.Offset, p.Size)
					}
					w := from[p.Track][p.Sample]
					s := src.segs[w.seg]
					b := s.data
					if w.InInit {
						b = s.init
					}
					if !bytes.Equal(file[p.Offset:p.Offset+int64(p.Size)], b[w.Offset:w.Offset+int64(w.Size)]) {
						t.Fatalf("sample %d of track %d: the file's bytes at %d are not the source's (segment %d at %d, init %v)", p.Sample, p.Track.ID, p.Offset, w.seg, w.Offset, w.InInit)
					}
					n++
				}
				if next != info.Size {
					t.Errorf("the planned samples end at %d, the file at %d", next, info.Size)
				}
				total := 0
				for _, o := range offsets {
					total += len(o)
				}
				if n != total || n == 0 {
					t.Errorf("%d samples planned, %d in the file", n, total)
				}
			})
		}
	}
}

// fileOffsets reads the offset and size of every sample from a header's moov, by
// track ID.
func fileOffsets(t *testing.T, hdr []byte) map[int][][2]int64 {
	t.Helper()
	f, err := mp4ff.DecodeFile(bytes.NewReader(hdr), mp4ff.WithDecodeMode(mp4ff.DecModeLazyMdat))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][][2]int64{}
	for _, trak := range f.Moov.Traks {
		stbl := trak.Mdia.Minf.Stbl
		var chunkOffs []uint64
		if stbl.Stco != nil {
			for _, o := range stbl.Stco.ChunkOffset {
				chunkOffs = append(chunkOffs, uint64(o))
			}
		} else {
			chunkOffs = stbl.Co64.ChunkOffset
		}
		var o [][2]int64
		for c := range chunkOffs {
			ch := stbl.Stsc.GetChunk(uint32(c + 1))
			off := int64(chunkOffs[c])
			for s := ch.StartSampleNr; s < ch.StartSampleNr+ch.NrSamples; s++ {
				size := int64(stbl.Stsz.GetSampleSize(int(s)))
				o = append(o, [2]int64{off, size})
				off += size
			}
		}
		out[int(trak.Tkhd.TrackID)] = o
	}
	return out
}

// TestIndexRefuses: what the index mode cannot decide without the samples' data is
// ErrNeedsPayload: an hev1 sample entry (rewritten samples).
func TestIndexRefuses(t *testing.T) {
	src := fixtureSource(t, "hevc_init.mp4", "hevc_seg.m4s", 0)
	_, _, err := planIndex(src, mp4.Options{})
	if !errors.Is(err, ErrNeedsPayload) {
		t.Fatalf("hev1: %v, want ErrNeedsPayload", err)
	}
	// The normal mode packages it.
	packageNormal(t, src, mp4.Options{}, filepath.Join(t.TempDir(), "out.mp4"))
}

// BenchmarkIndexPass compares the index mode with the normal one over the conformance
// suite's fMP4 flavours: demuxing and planning (index) against demuxing and writing
// the file (normal). SetBytes makes the results MB/s of source segments.
func BenchmarkIndexPass(b *testing.B) {
	srcs := instantSources(b)
	var total int64
	for _, src := range srcs {
		for _, s := range src.segs {
			total += int64(len(s.data))
		}
	}
	b.Run("index", func(b *testing.B) {
		b.SetBytes(total)
		b.ReportAllocs()
		for b.Loop() {
			for _, src := range srcs {
				if _, _, err := planIndex(src, mp4.Options{ExpectedDuration: src.total}); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("normal", func(b *testing.B) {
		dir := b.TempDir()
		b.SetBytes(total)
		b.ReportAllocs()
		for b.Loop() {
			for _, src := range srcs {
				packageNormal(b, src, mp4.Options{ExpectedDuration: src.total}, filepath.Join(dir, "out.mp4"))
			}
		}
	})
}

// indexVideo runs segments after init in the index mode and returns the video samples.
func indexVideo(d *Demuxer, init []byte, segs ...[]byte) ([]IndexedSample, error) {
	if err := d.Init(init); err != nil {
		return nil, err
	}
	var got []IndexedSample
	for _, seg := range segs {
		err := d.SegmentIndex(bytes.NewReader(seg), func(s IndexedSample) error {
			if s.Track.Kind == media.Video {
				got = append(got, s)
			}
			return nil
		})
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

// TestIndexModeSync: the index mode emits what the normal mode does but the data (sync
// samples from the flags wherever the source gives them, leading ones dropped), with
// each sample's size and place; where the normal mode reads the content it refuses:
// video samples without flags, avc3 (rewritten), parameter sets that a later init
// changes (put in front of the sync samples).
func TestIndexModeSync(t *testing.T) {
	idr, p := lp(4, nalIDR), lp(4, nalP)
	for _, tc := range []struct {
		name string
		mode flagMode
		trex uint32
		ss   []vsample
		want error
	}{
		{"per sample", perSample, 0, []vsample{{flagsSync, p}, {flagsNonSync, idr}}, nil},
		{"first and tfhd", firstAndTfhd, 0, []vsample{{flagsNonSync, p}, {flagsSync, idr}, {flagsNonSync, lp(4, nalP, nalP)}}, nil},
		{"trex", noneGiven, flagsNonSync, []vsample{{0, idr}, {0, p}}, nil},
		{"trex sync", noneGiven, flagsSync, []vsample{{0, p}, {0, p}}, nil},
		{"empty sample", perSample, 0, []vsample{{flagsSync, p}, {flagsNonSync, nil}, {flagsNonSync, p}}, nil},
		{"none: content", noneGiven, 0, []vsample{{0, p}, {0, idr}}, ErrNeedsPayload},
	} {
		init := videoInit("avc1", avcCOf(4, testSPS, testPPS), tc.trex)
		seg := videoFragment(0, tc.mode, tc.ss)
		d := NewDemuxer()
		want, err := demuxVideo(t, d, init, seg)
		if err != nil {
			t.Fatal(err)
		}
		x := NewIndexDemuxer()
		got, err := indexVideo(x, init, seg)
		if tc.want != nil {
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(got) != len(want) || x.skipped != d.skipped {
			t.Fatalf("%s: %d samples, %d skipped; the normal mode %d, %d", tc.name, len(got), x.skipped, len(want), d.skipped)
		}
		for i, w := range want {
			g := got[i]
			if g.Data != nil || g.DTS != w.DTS || g.CTO != w.CTO || g.Sync != w.Sync || g.Size != len(w.Data) ||
				!bytes.Equal(seg[g.Offset:g.Offset+int64(g.Size)], w.Data) {
				t.Errorf("%s: sample %d: %+v, the normal mode's %+v", tc.name, i, g, w)
			}
		}
	}

	if _, err := indexVideo(NewIndexDemuxer(), videoInit("avc3", avcCOf(4, testSPS, testPPS), 0)); !errors.Is(err, ErrNeedsPayload) {
		t.Errorf("avc3: %v, want ErrNeedsPayload", err)
	}
	seg := func(base uint64) []byte {
		return videoFragment(base, perSample, []vsample{{flagsSync, idr}, {flagsNonSync, p}})
	}
	x := NewIndexDemuxer()
	if _, err := indexVideo(x, videoInit("avc1", avcCOf(4, testSPS, testPPS), 0), seg(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := indexVideo(x, videoInit("avc1", avcCOf(4, testSPS, testPPS), 0), seg(6000)); err != nil {
		t.Errorf("the same parameter sets again: %v", err)
	}
	if _, err := indexVideo(x, videoInit("avc1", avcCOf(4, testSPS, testPPS2), 0), seg(12000)); !errors.Is(err, ErrNeedsPayload) {
		t.Errorf("a parameter set change: %v, want ErrNeedsPayload", err)
	}
	// Media in the init section (ffmpeg's frag_duration) go with the next segment: their
	// place is in the init section.
	withMedia := append(videoInit("avc1", avcCOf(4, testSPS, testPPS), 0), seg(0)...)
	want, err := demuxVideo(t, NewDemuxer(), withMedia, seg(6000))
	if err != nil {
		t.Fatal(err)
	}
	got, err := indexVideo(NewIndexDemuxer(), withMedia, seg(6000))
	if err != nil || len(got) != 4 || len(want) != 4 {
		t.Fatalf("media in the init section: %d samples (%v), the normal mode %d", len(got), err, len(want))
	}
	for i, g := range got {
		b := seg(6000)
		if g.InInit != (i < 2) {
			t.Errorf("sample %d: in the init section %v", i, g.InInit)
		}
		if g.InInit {
			b = withMedia
		}
		if !bytes.Equal(b[g.Offset:g.Offset+int64(g.Size)], want[i].Data) || g.DTS != want[i].DTS {
			t.Errorf("sample %d at %d (init %v): not the normal mode's", i, g.Offset, g.InInit)
		}
	}
	if err := NewDemuxer().SegmentIndex(bytes.NewReader(seg(0)), nil); err == nil {
		t.Error("SegmentIndex in the normal mode: no error")
	}
	if err := NewIndexDemuxer().Segment(bytes.NewReader(seg(0)), nil); err == nil {
		t.Error("Segment in the index mode: no error")
	}
}
