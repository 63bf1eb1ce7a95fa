package mp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"testing"

	mp4ff "github.com/Eyevinn/mp4ff/mp4"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

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
		h, err := planHeader(x, []*media.Track{v, a}, BrandMP4, start, nil)
		if err != nil {
			t.Fatal(err)
		}
		var streamed bytes.Buffer
		if err := h.writeHead(&streamed); err != nil {
			t.Fatal(err)
		}
		var mem boxWriter
		mem.b = append(mem.b, h.ftyp...)
		if err := buildMoov(&mem, x, h.order, h.start, h.co64, nil); err != nil {
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
