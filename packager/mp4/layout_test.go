package mp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"slices"
	"testing"

	mp4ff "github.com/Eyevinn/mp4ff/mp4"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

func videoTrack() *media.Track {
	return &media.Track{ID: 1, Kind: media.Video, Codec: media.H264, Timescale: 90000, Width: 426, Height: 240,
		// SPS/PPS of the demo fixture.
		SPS: [][]byte{{103, 100, 0, 21, 172, 217, 65, 177, 254, 79, 1, 16, 0, 0, 3, 0, 16, 0, 0, 3, 3, 32, 241, 98, 217, 96}},
		PPS: [][]byte{{104, 239, 188, 176}}}
}

func audioTrack() *media.Track {
	return &media.Track{ID: 2, Kind: media.Audio, Codec: media.AAC, Timescale: 48000, SampleRate: 48000, Channels: 2,
		Config: []byte{0x11, 0x90}, FrameDuration: 1024}
}

type fs struct {
	t    *media.Track
	dts  int64
	cto  int32
	sync bool
	size int64
}

func buildIndex(t *testing.T, samples []fs) *Index {
	t.Helper()
	x := &Index{}
	for _, s := range samples {
		if err := x.Add(media.Sample{Track: s.t, DTS: s.dts, CTO: s.cto, Sync: s.sync}, s.size); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

func seq(t *media.Track, first int64, deltas ...int64) []fs {
	out := []fs{{t: t, dts: first, sync: true, size: 10}}
	for _, d := range deltas {
		out = append(out, fs{t: t, dts: out[len(out)-1].dts + d, sync: true, size: 10})
	}
	return out
}

func TestSttsRuns(t *testing.T) {
	v, a := videoTrack(), audioTrack()
	ac3 := &media.Track{ID: 2, Kind: media.Audio, Codec: media.AC3, Timescale: 48000, FrameDuration: 1536}
	opus := &media.Track{ID: 2, Kind: media.Audio, Codec: media.Opus, Timescale: 48000} // frames vary
	tests := []struct {
		name    string
		samples []fs
		want    []Run
	}{
		{"constant video", seq(v, 126000, 3600, 3600, 3600), []Run{{4, 3600}}},
		{"video last takes previous delta", seq(v, 0, 3600, 3000, 3000), []Run{{1, 3600}, {3, 3000}}},
		{"single video sample", seq(v, 5), []Run{{1, 3600}}},
		{"aac", seq(a, 70016, 1024, 1024), []Run{{3, 1024}}},
		{"aac gap, last is 1024", seq(a, 0, 1024, 3072), []Run{{1, 1024}, {1, 3072}, {1, 1024}}},
		{"ac-3 gap, last is FrameDuration", seq(ac3, 0, 1536, 3072), []Run{{1, 1536}, {1, 3072}, {1, 1536}}},
		{"opus: last takes previous delta", seq(opus, 0, 960, 1920), []Run{{1, 960}, {2, 1920}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := buildIndex(t, tc.samples)
			if got := slices.Collect(sttsRuns(x.Tracks[0])); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCttsRuns(t *testing.T) {
	v := videoTrack()
	mk := func(ctos ...int32) *TrackIndex {
		var s []fs
		for i, c := range ctos {
			s = append(s, fs{t: v, dts: int64(i) * 3600, cto: c, size: 1})
		}
		return buildIndex(t, s).Tracks[0]
	}
	tests := []struct {
		name    string
		ti      *TrackIndex
		want    []Run
		wantNeg bool
	}{
		{"all zero: no ctts", mk(0, 0, 0), nil, false},
		{"b-frames", mk(7200, 18000, 7200, 7200, 0, 0), []Run{{1, 7200}, {1, 18000}, {2, 7200}, {2, 0}}, false},
		{"negative: version 1", mk(3600, -3600, 0), []Run{{1, 3600}, {1, -3600}, {1, 0}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seq, neg := cttsRuns(tc.ti)
			var got []Run
			if seq != nil {
				got = slices.Collect(seq)
			}
			if !reflect.DeepEqual(got, tc.want) || neg != tc.wantNeg {
				t.Errorf("got %v %v, want %v %v", got, neg, tc.want, tc.wantNeg)
			}
		})
	}
}

func TestStscEntries(t *testing.T) {
	tests := []struct {
		counts []uint32
		want   []StscEntry
	}{
		{[]uint32{1}, []StscEntry{{1, 1}}},
		{[]uint32{3, 3, 2, 2, 5}, []StscEntry{{1, 3}, {3, 2}, {5, 5}}},
		{[]uint32{1, 2, 1}, []StscEntry{{1, 1}, {2, 2}, {3, 1}}},
	}
	for _, tc := range tests {
		var cs []Chunk
		for _, c := range tc.counts {
			cs = append(cs, Chunk{Count: c})
		}
		if got := stscEntries(cs); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: got %v, want %v", tc.counts, got, tc.want)
		}
	}
}

func TestChunksInterleave(t *testing.T) {
	v, a := videoTrack(), audioTrack()
	x := buildIndex(t, []fs{
		{t: a, dts: 0, size: 5}, {t: a, dts: 1024, size: 5},
		{t: v, dts: 0, sync: true, size: 100},
		{t: a, dts: 2048, size: 5},
		{t: v, dts: 3600, size: 50}, {t: v, dts: 7200, size: 50},
	})
	want := []Chunk{{0, 0, 2, 0}, {1, 0, 1, 10}, {0, 2, 1, 110}, {1, 1, 2, 115}} // track index = order of first sample
	if !reflect.DeepEqual(x.Chunks, want) || x.MediaSize != 215 {
		t.Errorf("chunks %v size %d", x.Chunks, x.MediaSize)
	}
}

func TestChunkLimits(t *testing.T) {
	a := audioTrack()
	var s []fs
	for i := range 2500 {
		s = append(s, fs{t: a, dts: int64(i) * 1024, size: 10})
	}
	s = append(s, fs{t: a, dts: 2500 * 1024, size: 1 << 20}, fs{t: a, dts: 2501 * 1024, size: 5})
	x := buildIndex(t, s)
	var counts []uint32
	for _, c := range x.Chunks {
		counts = append(counts, c.Count)
	}
	if want := []uint32{1024, 1024, 453, 1}; !reflect.DeepEqual(counts, want) {
		t.Errorf("chunk sizes %v, want %v", counts, want)
	}
}

func TestEditLists(t *testing.T) {
	tests := []struct {
		name string
		tims []trackTiming
		ts   []uint32
		want [][]Edit
	}{
		{
			// The demo fixture: video DTS 1.40 s, first PTS 1.48 s; audio 1.458667 s.
			name: "audio first, video B-frame delay",
			tims: []trackTiming{
				{firstDTS: 126000, earliestPTS: 133200, presDur: 12 * 90000},
				{firstDTS: 70016, earliestPTS: 70016, presDur: 564 * 1024},
			},
			ts:   []uint32{90000, 48000},
			want: [][]Edit{{{21, -1}, {12000, 7200}}, {{12032, 0}}},
		},
		{
			name: "video first",
			tims: []trackTiming{
				{firstDTS: 0, earliestPTS: 0, presDur: 90000},
				{firstDTS: 4800, earliestPTS: 4800, presDur: 48000},
			},
			ts:   []uint32{90000, 48000},
			want: [][]Edit{{{1000, 0}}, {{100, -1}, {1000, 0}}},
		},
		{
			name: "sub-millisecond delay gives no empty edit",
			tims: []trackTiming{
				{firstDTS: 0, earliestPTS: 10, presDur: 90000},
				{firstDTS: 0, earliestPTS: 0, presDur: 48000},
			},
			ts:   []uint32{90000, 48000},
			want: [][]Edit{{{1000, 10}}, {{1000, 0}}},
		},
		{
			name: "beyond 2^33 (unwrapped)",
			tims: []trackTiming{
				{firstDTS: 1<<33 + 90000, earliestPTS: 1<<33 + 93600, presDur: 90000},
			},
			ts:   []uint32{90000},
			want: [][]Edit{{{1000, 3600}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := editLists(tc.tims, tc.ts); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

type topBox struct {
	typ        string
	start, len int64
	hdr        int64
}

// walk lists the top-level boxes of a file made of b followed by mediaSize bytes of
// media that are not materialised: only the last box (mdat) may extend past b.
func walk(t *testing.T, b []byte, mediaSize int64) []topBox {
	t.Helper()
	var out []topBox
	total := int64(len(b)) + mediaSize
	for off := int64(0); off < total; {
		if int64(len(b))-off < 8 {
			t.Fatalf("box header at %d beyond the header bytes", off)
		}
		size := int64(binary.BigEndian.Uint32(b[off:]))
		typ := string(b[off+4 : off+8])
		hdr := int64(8)
		if size == 1 {
			if int64(len(b))-off < 16 {
				t.Fatalf("largesize at %d beyond the header bytes", off)
			}
			size = int64(binary.BigEndian.Uint64(b[off+8:]))
			hdr = 16
		}
		if size < hdr || off+size > total {
			t.Fatalf("bad box %q size %d at %d (file %d)", typ, size, off, total)
		}
		if off+size > int64(len(b)) && off+size != total {
			t.Fatalf("box %q at %d extends into the media but does not end with it", typ, off)
		}
		out = append(out, topBox{typ, off, size, hdr})
		off += size
	}
	return out
}

func decodeMoov(t *testing.T, hdr []byte, mediaSize int64) *mp4ff.MoovBox {
	t.Helper()
	for _, b := range walk(t, hdr, mediaSize) {
		if b.typ == "moov" {
			box, err := mp4ff.DecodeBox(uint64(b.start), bytes.NewReader(hdr[b.start:b.start+b.len]))
			if err != nil {
				t.Fatal(err)
			}
			return box.(*mp4ff.MoovBox)
		}
	}
	t.Fatal("no moov")
	return nil
}

// TestBuildHeaderLarge proves the > 4 GiB logic on fabricated tables: co64 and a 64-bit
// mdat header exactly when needed.
func TestBuildHeaderLarge(t *testing.T) {
	v, a := videoTrack(), audioTrack()
	const G = int64(1) << 30
	tests := []struct {
		name      string
		sizes     []int64 // video sample sizes; an audio sample follows each
		lastAudio int64   // size of the last audio sample
		wantCo64  bool
		wantLarge bool
	}{
		{"small", []int64{1000, 2000, 3000}, 100, false, false},
		{"just under 4 GiB media, offsets fit", []int64{2 * G, 2*G - 20000}, 100, false, false},
		{"media ends past 4 GiB, last chunk offset fits", []int64{2 * G, 2*G - 20000}, 100000, false, true},
		{"last chunk offset just past 2^32-1", []int64{2 * G, 2*G - 100}, 100, true, true},
		{"6 GiB", []int64{2 * G, 2 * G, 2 * G}, 100, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var samples []fs
			for i, s := range tc.sizes {
				as := int64(100)
				if i == len(tc.sizes)-1 {
					as = tc.lastAudio
				}
				samples = append(samples,
					fs{t: v, dts: int64(i) * 3600, cto: 3600, sync: i == 0, size: s},
					fs{t: a, dts: int64(i) * 1024, sync: true, size: as})
			}
			x := buildIndex(t, samples)
			hdr, err := BuildHeader(x, []*media.Track{v, a}, BrandMP4, 0)
			if err != nil {
				t.Fatal(err)
			}
			boxes := walk(t, hdr, x.MediaSize)
			if len(boxes) != 3 || boxes[0].typ != "ftyp" || boxes[1].typ != "moov" || boxes[2].typ != "mdat" {
				t.Fatalf("boxes %v", boxes)
			}
			mdat := boxes[2]
			if mdat.start+mdat.hdr != int64(len(hdr)) || mdat.len != mdat.hdr+x.MediaSize {
				t.Errorf("mdat %+v, header %d, media %d", mdat, len(hdr), x.MediaSize)
			}
			if (mdat.hdr == 16) != tc.wantLarge {
				t.Errorf("largesize mdat = %v, want %v", mdat.hdr == 16, tc.wantLarge)
			}
			moov := decodeMoov(t, hdr, x.MediaSize)
			for i, trak := range moov.Traks {
				stbl := trak.Mdia.Minf.Stbl
				var offs []uint64
				if stbl.Co64 != nil {
					offs = stbl.Co64.ChunkOffset
				} else {
					for _, o := range stbl.Stco.ChunkOffset {
						offs = append(offs, uint64(o))
					}
				}
				if (stbl.Co64 != nil) != tc.wantCo64 {
					t.Errorf("track %d co64 = %v, want %v", i, stbl.Co64 != nil, tc.wantCo64)
				}
				var want []uint64
				for _, c := range x.Chunks {
					if c.Track == uint32(i) {
						want = append(want, uint64(int64(len(hdr))+c.Offset))
					}
				}
				if !reflect.DeepEqual(offs, want) {
					t.Errorf("track %d offsets %v, want %v", i, offs, want)
				}
				for _, o := range want {
					if o > math.MaxUint32 && stbl.Co64 == nil {
						t.Errorf("offset %d in stco", o)
					}
				}
			}
		})
	}
}

func TestBuildHeaderReserve(t *testing.T) {
	v, a := videoTrack(), audioTrack()
	x := buildIndex(t, append(seq(v, 0, 3600, 3600), seq(a, 0, 1024)...))
	compact, err := BuildHeader(x, []*media.Track{v, a}, BrandMP4, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(compact))
	tests := []struct {
		start   int64
		wantErr bool
		free    int64
	}{
		{n, false, 0},
		{n + 8, false, 8},
		{n + 4096, false, 4096},
		{n + 3, true, 0},
		{n - 1, true, 0},
		{100, true, 0},
	}
	for _, tc := range tests {
		hdr, err := BuildHeader(x, []*media.Track{v, a}, BrandMP4, tc.start)
		if tc.wantErr {
			var hse *HeaderSizeError
			if !errors.Is(err, ErrHeaderTooLarge) || !errors.As(err, &hse) || hse.Need != n {
				t.Errorf("start %d: err = %v", tc.start, err)
			}
			continue
		}
		if err != nil || int64(len(hdr)) != tc.start {
			t.Fatalf("start %d: len %d err %v", tc.start, len(hdr), err)
		}
		var free int64
		for _, b := range walk(t, hdr, x.MediaSize) {
			if b.typ == "free" {
				free = b.len
			}
		}
		if free != tc.free {
			t.Errorf("start %d: free %d, want %d", tc.start, free, tc.free)
		}
		// Same tables, moved media: the moov differs only by its chunk offsets.
		if tc.free == 0 && !bytes.Equal(hdr, compact) {
			t.Errorf("start %d: differs from compact header", tc.start)
		}
	}
}

func TestBuildHeaderErrors(t *testing.T) {
	v, a := videoTrack(), audioTrack()
	x := buildIndex(t, seq(v, 0, 3600))
	if _, err := BuildHeader(x, []*media.Track{a}, BrandMP4, 0); err == nil {
		t.Error("track missing from list: no error")
	}
	if _, err := BuildHeader(&Index{}, []*media.Track{v}, BrandMP4, 0); err == nil {
		t.Error("no samples: no error")
	}
	bad := *v
	bad.SPS = nil
	y := buildIndex(t, seq(&bad, 0, 3600))
	if _, err := BuildHeader(y, []*media.Track{&bad}, BrandMP4, 0); err == nil {
		t.Error("no SPS: no error")
	}
	if err := x.Add(media.Sample{Track: v, DTS: 3600}, 1); !errors.Is(err, ErrTimestamps) {
		t.Errorf("DTS not increasing: err = %v", err)
	}
}

func TestEsdsChannels(t *testing.T) {
	for _, ch := range []struct {
		n   int
		asc []byte
	}{{1, []byte{0x11, 0x88}}, {2, []byte{0x11, 0x90}}, {6, []byte{0x11, 0xb0}}} {
		a := audioTrack()
		a.ID = 1
		a.Channels, a.Config = ch.n, ch.asc
		x := buildIndex(t, seq(a, 0, 1024, 1024))
		hdr, err := BuildHeader(x, []*media.Track{a}, BrandM4A, 0)
		if err != nil {
			t.Fatal(err)
		}
		if string(hdr[8:12]) != "M4A " {
			t.Errorf("brand %q", hdr[8:12])
		}
		moov := decodeMoov(t, hdr, x.MediaSize)
		mp4a := moov.Traks[0].Mdia.Minf.Stbl.Stsd.Mp4a
		if mp4a == nil || int(mp4a.ChannelCount) != ch.n || mp4a.SampleRate != 48000 {
			t.Fatalf("%d ch: mp4a %+v", ch.n, mp4a)
		}
		got := mp4a.Esds.DecConfigDescriptor.DecSpecificInfo.DecConfig
		if !bytes.Equal(got, ch.asc) {
			t.Errorf("%d ch: esds ASC %x, want %x", ch.n, got, ch.asc)
		}
	}
}

// TestStreamedMoov: the moov written in two streaming passes (measured, then handed out
// 64 KiB at a time) is byte for byte the one built in memory, for tables far larger
// than one piece, with a reserve (free box) and without.
func TestStreamedMoov(t *testing.T) {
	v, a := videoTrack(), audioTrack()
	var samples []fs
	ctos := []int32{7200, 18000, 7200, 0, 3600}
	for i := range 20000 { // 800 s of video (B-frames: a ctts run per sample) and audio
		samples = append(samples, fs{t: v, dts: int64(i) * 3600, cto: ctos[i%5], sync: i%50 == 0, size: int64(1000 + i%97)})
		for j := range 2 {
			samples = append(samples, fs{t: a, dts: int64(2*i+j) * 1024, sync: true, size: int64(300 + i%13)})
		}
	}
	x := buildIndex(t, samples)
	for _, start := range []int64{0, 2 << 20} {
		h, err := planHeader(x, []*media.Track{v, a}, BrandMP4, start)
		if err != nil {
			t.Fatal(err)
		}
		var streamed bytes.Buffer
		if err := h.writeHead(&streamed); err != nil {
			t.Fatal(err)
		}
		var mem boxWriter
		mem.b = append(mem.b, h.ftyp...)
		if err := buildMoov(&mem, x, h.order, h.start, h.co64); err != nil {
			t.Fatal(err)
		}
		want := append(mem.b, h.free...)
		if streamed.Len() < 4*64<<10 || !bytes.Equal(streamed.Bytes(), want) {
			t.Errorf("start %d: streamed head of %d bytes differs from the %d built in memory", start, streamed.Len(), len(want))
		}
		if got := int64(streamed.Len()); got != h.headSize() {
			t.Errorf("start %d: head %d bytes, planned %d", start, got, h.headSize())
		}
	}
}

// TestFtyp: the brands for each download type and codec mix.
func TestFtyp(t *testing.T) {
	h264, hevc, av1 := videoTrack(), hevcTrack(), av1Track()
	aac := audioTrack()
	isom := "isom\x00\x00\x02\x00isomiso2mp41"
	tests := []struct {
		name   string
		brand  Brand
		tracks []*media.Track
		want   string // major, minor, compatible
	}{
		{"audio: AAC", BrandM4A, []*media.Track{aac}, "M4A \x00\x00\x02\x00M4A isomiso2mp41"},
		{"audio: AC-3", BrandM4A, []*media.Track{ac3Track()}, isom},
		{"audio: E-AC-3", BrandM4A, []*media.Track{eac3Track()}, isom},
		{"audio: MP3", BrandM4A, []*media.Track{mp3Track(44100, 2, 0x6B)}, isom},
		{"audio: Opus", BrandM4A, []*media.Track{opusTrack()}, isom},
		{"audio: AAC and AC-3", BrandM4A, []*media.Track{aac, ac3Track()}, isom},
		{"video: H.264", BrandMP4, []*media.Track{h264, aac}, "isom\x00\x00\x02\x00isomiso2avc1mp41"},
		{"video: HEVC", BrandMP4, []*media.Track{hevc, aac}, isom},
		{"video: HEVC, AC-3", BrandMP4, []*media.Track{hevc, ac3Track()}, isom},
		{"video: AV1, Opus", BrandMP4, []*media.Track{av1, opusTrack()}, "isom\x00\x00\x02\x00isomav01iso2mp41"},
		{"video: AV1, AAC", BrandMP4, []*media.Track{av1, aac}, "isom\x00\x00\x02\x00isomav01iso2mp41"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var samples []fs
			for i, tr := range tc.tracks {
				tr.ID = i + 1
				samples = append(samples, seq(tr, 0, 1024, 1024)...)
			}
			hdr, err := BuildHeader(buildIndex(t, samples), tc.tracks, tc.brand, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := onlyBox(t, hdr[:binary.BigEndian.Uint32(hdr)], "ftyp"); string(got) != tc.want {
				t.Errorf("ftyp %q, want %q", got, tc.want)
			}
		})
	}
}

// TestOpusPreSkip: an Opus track's edit skips dOps' PreSkip (media_time = PreSkip): its
// first PreSkip samples are decoder priming, presented neither at the start nor in the
// duration. Its DTS count from the first decoded sample, as ffmpeg's demuxers and ours
// give them (-PreSkip for a stream whose valid samples start at 0).
func TestOpusPreSkip(t *testing.T) {
	v := videoTrack()
	opus := func(preSkip uint16, timescale uint32) *media.Track {
		o := opusTrack()
		o.ID, o.Timescale = 2, timescale
		o.Config = append([]byte(nil), dopsPayload...)
		binary.BigEndian.PutUint16(o.Config[2:], preSkip)
		return o
	}
	frames := func(tr *media.Track, first, n, d int64) []fs {
		var out []fs
		for i := range n {
			out = append(out, fs{t: tr, dts: first + i*d, sync: true, size: 10})
		}
		return out
	}
	video := frames(v, 0, 25, 3600) // 1 s from 0
	tests := []struct {
		name    string
		samples []fs
		want    [][]Edit
	}{
		{"alone", frames(opus(312, 48000), 0, 50, 960), [][]Edit{{{994, 312}}}}, // 47688 ticks: 993.5 ms
		{"alone, no pre-skip", frames(opus(0, 48000), 0, 50, 960), [][]Edit{{{1000, 0}}}},
		{"pre-skip of the whole track is not applied", frames(opus(3840, 48000), 0, 2, 960), [][]Edit{{{40, 0}}}},
		{"starting at -PreSkip with video at 0: in sync", append(video, frames(opus(312, 48000), -312, 51, 960)...),
			[][]Edit{{{1000, 0}}, {{1014, 312}}}},
		{"starting with video at 0: the priming delays it", append(video, frames(opus(312, 48000), 0, 50, 960)...),
			[][]Edit{{{1000, 0}}, {{7, -1}, {994, 312}}}},
		{"timescale 96 kHz: PreSkip scaled", frames(opus(312, 96000), 0, 50, 1920), [][]Edit{{{994, 624}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := buildIndex(t, tc.samples)
			var tracks []*media.Track
			for _, ti := range x.Tracks {
				tracks = append(tracks, ti.Track)
			}
			order, err := trackOrder(x, tracks)
			if err != nil {
				t.Fatal(err)
			}
			if _, got := trackEdits(order); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("edits %v, want %v", got, tc.want)
			}
		})
	}
}
