package mp4

import (
	"encoding/binary"
	"reflect"
	"slices"
	"testing"

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
