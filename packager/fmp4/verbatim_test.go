package fmp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	mp4ff "github.com/Eyevinn/mp4ff/mp4"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
	"github.com/stream-downloads/caddy-stream-downloads/packager/mp4"
)

// Synthetic H.264 streams for the two sample paths: avc1 (copied verbatim under the
// source's avcC, whatever its NAL length size) and avc3 (rewritten), and for where sync
// samples come from.

var (
	testSPS  = []byte{0x67, 0x64, 0x00, 0x0b, 0xac, 0xd9, 0x42, 0x8d, 0xf9, 0x30, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x14, 0x29, 0x96}
	testPPS  = []byte{0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0}
	testPPS2 = []byte{0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc1}
	nalIDR   = []byte{0x65, 1, 2, 3}
	nalP     = []byte{0x41, 4, 5, 6}
	nalAUD   = []byte{0x09, 0xf0}
	nalFill  = []byte{0x0c, 0xff, 0xff}
)

// Sample flags: an I picture (sync), a non-sync sample depending on others.
const (
	flagsSync    = 0x02000000
	flagsNonSync = 0x01010000
)

// lp joins NAL units with lenSize-byte length prefixes.
func lp(lenSize int, nals ...[]byte) []byte {
	var out []byte
	for _, n := range nals {
		for i := lenSize - 1; i >= 0; i-- {
			out = append(out, byte(len(n)>>(8*i)))
		}
		out = append(out, n...)
	}
	return out
}

// avcCOf is an AVCDecoderConfigurationRecord of one SPS and one PPS.
func avcCOf(lenSize int, sps, pps []byte) []byte {
	c := []byte{1, sps[1], sps[2], sps[3], 0xfc | byte(lenSize-1), 0xe1}
	c = binary.BigEndian.AppendUint16(c, uint16(len(sps)))
	c = append(append(c, sps...), 1)
	c = binary.BigEndian.AppendUint16(c, uint16(len(pps)))
	return append(c, pps...)
}

// videoInit is a minimal init: one video track (ID 1, timescale 90000, 160x90) whose
// sample entry is entry with the avcC cfg, and trex default flags trexFlags.
func videoInit(entry string, cfg []byte, trexFlags uint32) []byte {
	mvhd := make([]byte, 100)
	binary.BigEndian.PutUint32(mvhd[12:], 1000)
	tkhd := make([]byte, 84)
	binary.BigEndian.PutUint32(tkhd[12:], 1)
	mdhd := make([]byte, 24)
	binary.BigEndian.PutUint32(mdhd[12:], 90000)
	hdlr := append(make([]byte, 8), "vide"...)
	hdlr = append(hdlr, make([]byte, 13)...)
	vse := make([]byte, visualEntryHeader)
	binary.BigEndian.PutUint16(vse[6:], 1)
	binary.BigEndian.PutUint16(vse[24:], 160)
	binary.BigEndian.PutUint16(vse[26:], 90)
	binary.BigEndian.PutUint16(vse[74:], 0x18)
	binary.BigEndian.PutUint16(vse[76:], 0xffff)
	stsd := boxOf("stsd", append(be32(be32(nil, 0), 1), boxOf(entry, append(vse, boxOf("avcC", cfg)...))...))
	minf := boxOf("minf", boxOf("stbl", stsd))
	mdia := boxOf("mdia", append(append(boxOf("mdhd", mdhd), boxOf("hdlr", hdlr)...), minf...))
	trak := boxOf("trak", append(boxOf("tkhd", tkhd), mdia...))
	trex := be32(be32(be32(be32(be32(be32(nil, 0), 1), 1), 3000), 0), trexFlags)
	moov := boxOf("moov", append(append(boxOf("mvhd", mvhd), trak...), boxOf("mvex", boxOf("trex", trex))...))
	return append(boxOf("ftyp", []byte("iso6\x00\x00\x00\x00iso6")), moov...)
}

// How a videoFragment gives its samples' flags.
type flagMode int

const (
	perSample    flagMode = iota // in each trun entry
	firstAndTfhd                 // trun first-sample flags, tfhd default flags for the rest
	tfhdOnly                     // tfhd default flags (the first sample's) for all
	noneGiven                    // none: trex's apply
)

type vsample struct {
	flags uint32
	data  []byte
}

// videoFragment is a moof+mdat of track 1 with samples of 3000 ticks from base.
func videoFragment(base uint64, mode flagMode, ss []vsample) []byte {
	tfhdFlags := uint32(0x020000) // default-base-is-moof
	tfhd := []byte{}
	if mode == firstAndTfhd || mode == tfhdOnly {
		tfhdFlags |= 0x20
	}
	tfhd = be32(be32(tfhd, tfhdFlags), 1)
	switch mode {
	case firstAndTfhd:
		tfhd = be32(tfhd, ss[min(1, len(ss)-1)].flags)
	case tfhdOnly:
		tfhd = be32(tfhd, ss[0].flags)
	}
	tfdt := binary.BigEndian.AppendUint64(be32(nil, 0x01000000), base)
	trunFlags := uint32(0x01 | 0x100 | 0x200)
	switch mode {
	case perSample:
		trunFlags |= 0x400
	case firstAndTfhd:
		trunFlags |= 0x04
	}
	entries := []byte{}
	var mdat []byte
	for _, s := range ss {
		entries = be32(be32(entries, 3000), uint32(len(s.data)))
		if mode == perSample {
			entries = be32(entries, s.flags)
		}
		mdat = append(mdat, s.data...)
	}
	trunHdr := 8 + 12 // header, version/flags, count, data offset
	if mode == firstAndTfhd {
		trunHdr += 4
	}
	moofLen := 8 + 16 + 8 + (8 + len(tfhd)) + (8 + len(tfdt)) + trunHdr + len(entries)
	trun := be32(be32(be32(nil, trunFlags), uint32(len(ss))), uint32(moofLen+8))
	if mode == firstAndTfhd {
		trun = be32(trun, ss[0].flags)
	}
	trun = append(trun, entries...)
	traf := append(append(boxOf("tfhd", tfhd), boxOf("tfdt", tfdt)...), boxOf("trun", trun)...)
	moof := boxOf("moof", append(boxOf("mfhd", be32(be32(nil, 0), 1)), boxOf("traf", traf)...))
	if len(moof) != moofLen {
		panic("moof length")
	}
	return append(moof, boxOf("mdat", mdat)...)
}

// demuxVideo runs segments after init and returns the video samples (data copied).
func demuxVideo(t *testing.T, d *Demuxer, init []byte, segs ...[]byte) ([]media.Sample, error) {
	t.Helper()
	if err := d.Init(init); err != nil {
		t.Fatal(err)
	}
	var got []media.Sample
	for _, seg := range segs {
		err := d.Segment(bytes.NewReader(seg), func(s media.Sample) error {
			if s.Track.Kind == media.Video {
				s.Data = bytes.Clone(s.Data)
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

// TestVerbatimSamples: the samples of an avc1 source go out as they are, whatever their
// NAL length size (AUD, filler and the sample entry's parameter sets included); sync
// samples are those the flags mark, the ones before the first are left out; the avcC
// goes into the output's avc1 entry as it is.
func TestVerbatimSamples(t *testing.T) {
	for _, ls := range []int{1, 2, 4} {
		ss := []vsample{
			{flagsNonSync, lp(ls, nalP)},                          // leading: dropped
			{flagsSync, lp(ls, nalAUD, testSPS, testPPS, nalIDR)}, // sync
			{flagsNonSync, lp(ls, nalAUD, nalP, nalFill)},
			{flagsNonSync, lp(ls, nalIDR)}, // an IDR the flags do not mark: not sync
			{flagsSync, lp(ls, nalP)},      // the flags mark it: sync
		}
		cfg := avcCOf(ls, testSPS, testPPS)
		d := NewDemuxer()
		got, err := demuxVideo(t, d, videoInit("avc1", cfg, 0), videoFragment(0, perSample, ss))
		if err != nil {
			t.Fatalf("length size %d: %v", ls, err)
		}
		if len(got) != len(ss)-1 {
			t.Fatalf("length size %d: %d samples, want %d", ls, len(got), len(ss)-1)
		}
		for i, s := range got {
			want := ss[i+1]
			if !bytes.Equal(s.Data, want.data) || s.Sync != sampleFlagsSync(want.flags) {
				t.Errorf("length size %d: sample %d: sync %v %x, want sync %v %x", ls, i, s.Sync, s.Data, sampleFlagsSync(want.flags), want.data)
			}
		}
		if d.skipped != 1 {
			t.Errorf("length size %d: %d skipped, want 1", ls, d.skipped)
		}
		tr := d.Tracks()[0]
		if !bytes.Equal(tr.Config, cfg) || len(tr.SPS) != 1 || len(tr.PPS) != 1 {
			t.Fatalf("length size %d: track config %x SPS %d PPS %d, want the avcC", ls, tr.Config, len(tr.SPS), len(tr.PPS))
		}

		// The MP4: an avc1 entry with the source's avcC, the samples as they came.
		out := filepath.Join(t.TempDir(), "out.mp4")
		w := mp4.NewWriter(testutil.CreateFile(t, out), mp4.Options{})
		for _, s := range got {
			if err := w.WriteSample(s); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.Finish(d.Tracks()); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		entry := append([]byte("avc1"), make([]byte, 6)...)
		if !bytes.Contains(b, entry) || !bytes.Contains(b, append(binary.BigEndian.AppendUint32(nil, uint32(8+len(cfg))), append([]byte("avcC"), cfg...)...)) {
			t.Errorf("length size %d: the MP4 lacks the avc1 entry with the source's avcC", ls)
		}
		var media []byte
		for _, s := range got {
			media = append(media, s.Data...)
		}
		if !bytes.Contains(b, media) {
			t.Errorf("length size %d: the MP4 lacks the samples as they came", ls)
		}
	}
}

// TestRewrittenSamples: the samples of an avc3 source are rewritten (4-byte NAL lengths,
// no AUD, no filler, no parameter sets equal to the entry's) and written with an avcC
// made from the parameter sets.
func TestRewrittenSamples(t *testing.T) {
	for _, ls := range []int{1, 2, 4} {
		ss := []vsample{
			{flagsSync, lp(ls, nalAUD, testSPS, testPPS, nalIDR)},
			{flagsNonSync, lp(ls, nalAUD, nalP, nalFill)},
		}
		d := NewDemuxer()
		got, err := demuxVideo(t, d, videoInit("avc3", avcCOf(ls, testSPS, testPPS), 0), videoFragment(0, perSample, ss))
		if err != nil {
			t.Fatalf("length size %d: %v", ls, err)
		}
		if len(got) != 2 || !bytes.Equal(got[0].Data, lp(4, nalIDR)) || !got[0].Sync || !bytes.Equal(got[1].Data, lp(4, nalP)) || got[1].Sync {
			t.Fatalf("length size %d: %+v", ls, got)
		}
		if tr := d.Tracks()[0]; len(tr.Config) != 0 || len(tr.SPS) != 1 || len(tr.PPS) != 1 {
			t.Errorf("length size %d: track config %x SPS %d PPS %d: want parameter sets, no config", ls, tr.Config, len(tr.SPS), len(tr.PPS))
		}
		// Truncated NAL: an error, no panic.
		d = NewDemuxer()
		bad := []vsample{{flagsSync, ss[0].data[:len(ss[0].data)-2]}}
		if _, err := demuxVideo(t, d, videoInit("avc3", avcCOf(ls, testSPS, testPPS), 0), videoFragment(0, perSample, bad)); !errors.Is(err, media.ErrMalformed) {
			t.Errorf("length size %d: truncated sample: %v", ls, err)
		}
	}
	// avc3 without parameter sets in the entry: those of the first sync sample that
	// brings them; samples before are left out.
	d := NewDemuxer()
	noSets := []byte{1, 0x64, 0, 0x0b, 0xff, 0xe0, 0}
	ss := []vsample{
		{flagsSync, lp(4, nalIDR)},
		{flagsSync, lp(4, testSPS, testPPS, nalIDR)},
		{flagsNonSync, lp(4, nalP)},
	}
	got, err := demuxVideo(t, d, videoInit("avc3", noSets, 0), videoFragment(0, perSample, ss))
	if err != nil || len(got) != 2 || !bytes.Equal(got[0].Data, lp(4, nalIDR)) || d.skipped != 1 {
		t.Fatalf("avc3 with sets in band: %d samples, %d skipped, err %v", len(got), d.skipped, err)
	}
	if tr := d.Tracks()[0]; !bytes.Equal(tr.SPS[0], testSPS) || !bytes.Equal(tr.PPS[0], testPPS) || len(tr.Config) != 0 {
		t.Errorf("avc3 with sets in band: track %+v", tr)
	}
	// An avc1 entry without parameter sets is read as avc3.
	d = NewDemuxer()
	if _, err := demuxVideo(t, d, videoInit("avc1", noSets, 0), videoFragment(0, perSample, ss)); err != nil || d.video.verbatim {
		t.Errorf("avc1 without parameter sets: verbatim %v, err %v", d.video.verbatim, err)
	}
}

// TestSyncFromFlags: sync samples come from the flags wherever the source gives them
// (trun per sample, trun first-sample flags, tfhd default, a trex default that is not 0),
// and from the content (an IDR picture) only where it gives none.
func TestSyncFromFlags(t *testing.T) {
	idr, p := lp(4, nalIDR), lp(4, nalP)
	cases := []struct {
		name      string
		mode      flagMode
		trex      uint32
		ss        []vsample
		wantSync  []bool // of the samples kept
		wantSkips int
	}{
		{"per sample", perSample, 0, []vsample{{flagsSync, p}, {flagsNonSync, idr}}, []bool{true, false}, 0},
		{"first and tfhd", firstAndTfhd, 0, []vsample{{flagsSync, p}, {flagsNonSync, idr}, {flagsNonSync, idr}}, []bool{true, false, false}, 0},
		{"tfhd", tfhdOnly, 0, []vsample{{flagsNonSync, idr}, {flagsNonSync, idr}}, nil, 2},
		{"trex", noneGiven, flagsNonSync, []vsample{{0, idr}, {0, p}}, nil, 2},
		{"trex sync", noneGiven, flagsSync, []vsample{{0, p}, {0, p}}, []bool{true, true}, 0},
		{"none: content", noneGiven, 0, []vsample{{0, p}, {0, idr}, {0, p}, {0, idr}}, []bool{true, false, true}, 1},
	}
	for _, tc := range cases {
		for _, entry := range []string{"avc1", "avc3"} {
			d := NewDemuxer()
			got, err := demuxVideo(t, d, videoInit(entry, avcCOf(4, testSPS, testPPS), tc.trex), videoFragment(0, tc.mode, tc.ss))
			if err != nil {
				t.Fatalf("%s %s: %v", tc.name, entry, err)
			}
			var sync []bool
			for _, s := range got {
				sync = append(sync, s.Sync)
			}
			if !equalBools(sync, tc.wantSync) || d.skipped != tc.wantSkips {
				t.Errorf("%s %s: sync %v skipped %d, want %v %d", tc.name, entry, sync, d.skipped, tc.wantSync, tc.wantSkips)
			}
		}
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestParameterSetChange: a later init section with other parameter sets puts them in
// band in front of each sync sample after it, with the NAL lengths of the samples (the
// first init's size for avc1, copied verbatim; 4 bytes for avc3, rewritten). A NAL length
// size that changes is refused for avc1.
func TestParameterSetChange(t *testing.T) {
	for _, entry := range []string{"avc1", "avc3"} {
		ls := 2
		out := 2 // the length size of the samples written
		if entry == "avc3" {
			out = 4
		}
		seg := func(base uint64) []byte {
			return videoFragment(base, perSample, []vsample{{flagsSync, lp(ls, nalIDR)}, {flagsNonSync, lp(ls, nalP)}})
		}
		d := NewDemuxer()
		got, err := demuxVideo(t, d, videoInit(entry, avcCOf(ls, testSPS, testPPS), 0), seg(0))
		if err != nil {
			t.Fatal(err)
		}
		later, err := demuxVideo(t, d, videoInit(entry, avcCOf(ls, testSPS, testPPS2), 0), seg(6000))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, later...)
		want := [][]byte{lp(out, nalIDR), lp(out, nalP), lp(out, testSPS, testPPS2, nalIDR), lp(out, nalP)}
		if len(got) != len(want) {
			t.Fatalf("%s: %d samples", entry, len(got))
		}
		for i := range want {
			if !bytes.Equal(got[i].Data, want[i]) {
				t.Errorf("%s: sample %d: %x, want %x", entry, i, got[i].Data, want[i])
			}
		}
		if tr := d.Tracks()[0]; !bytes.Equal(tr.PPS[0], testPPS) {
			t.Errorf("%s: the sample entry's PPS changed", entry)
		}
	}
	d := NewDemuxer()
	if _, err := demuxVideo(t, d, videoInit("avc1", avcCOf(2, testSPS, testPPS), 0)); err != nil {
		t.Fatal(err)
	}
	if err := d.Init(videoInit("avc1", avcCOf(4, testSPS, testPPS), 0)); !errors.Is(err, media.ErrUnsupportedCodec) {
		t.Errorf("NAL length size 2 then 4: %v, want unsupported", err)
	}
}

// TestVerbatimFromFFmpeg: the samples of ffmpeg's avc1 segment (testdata) come out as the
// segment has them (as mp4ff reads them), under its avcC; its hev1 segment is
// rewritten, and read as hvc1 it is copied too.
func TestVerbatimFromFFmpeg(t *testing.T) {
	for _, tc := range []struct {
		init, seg, from, to string
		verbatim            bool
	}{
		{"avc_init.mp4", "avc_seg.m4s", "", "", true},
		{"avc_init.mp4", "avc_seg.m4s", "avc1", "avc3", false},
		{"hevc_init.mp4", "hevc_seg.m4s", "", "", false},
		{"hevc_init.mp4", "hevc_seg.m4s", "hev1", "hvc1", true},
	} {
		init, seg := readTestdata(t, tc.init), readTestdata(t, tc.seg)
		if tc.from != "" {
			init = bytes.Replace(init, []byte(tc.from), []byte(tc.to), 1)
		}
		d := NewDemuxer()
		got, err := demuxVideo(t, d, init, seg)
		if err != nil {
			t.Fatal(err)
		}
		tr := d.Tracks()[0]
		if (len(tr.Config) > 0) != tc.verbatim || d.video.verbatim != tc.verbatim {
			t.Errorf("%s %s: config %d bytes, verbatim %v, want verbatim %v", tc.init, tc.to, len(tr.Config), d.video.verbatim, tc.verbatim)
		}
		if !tc.verbatim {
			continue
		}
		src := sourceSamples(t, init, seg, 1)
		if len(src) != len(got) || len(got) == 0 {
			t.Fatalf("%s %s: %d samples, the source has %d", tc.init, tc.to, len(got), len(src))
		}
		for i := range got {
			if !bytes.Equal(got[i].Data, src[i].Data) || got[i].Sync != src[i].IsSync() {
				t.Errorf("%s %s: sample %d differs from the source's (sync %v, source %v)", tc.init, tc.to, i, got[i].Sync, src[i].IsSync())
			}
		}
	}
}

// sourceSamples reads track id's samples of a segment with mp4ff.
func sourceSamples(t *testing.T, init, seg []byte, id uint32) []mp4ff.FullSample {
	t.Helper()
	fi, err := mp4ff.DecodeFile(bytes.NewReader(init))
	if err != nil {
		t.Fatal(err)
	}
	trex, _ := fi.Moov.Mvex.GetTrex(id)
	var out []mp4ff.FullSample
	// ffmpeg puts the first fragments in the init section: they come first.
	if i := bytes.Index(init, []byte("moof")); i >= 4 {
		seg = append(bytes.Clone(init[i-4:]), seg...)
	}
	fs, err := mp4ff.DecodeFile(bytes.NewReader(seg))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range fs.Segments {
		for _, f := range s.Fragments {
			ss, err := f.GetFullSamples(trex)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ss...)
		}
	}
	return out
}
