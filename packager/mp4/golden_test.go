package mp4

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// goldenCases are fixed indexes covering every branch of the layout: B-frames (ctts),
// sync samples (stss), a free box, an empty edit, Opus priming, co64 with a 64-bit mdat
// header, version-1 mdhd/tkhd/mvhd durations and the M4A brand.
func goldenCases(t testing.TB) []struct {
	name   string
	x      *Index
	tracks []*media.Track
	brand  Brand
	start  int64
} {
	add := func(x *Index, s media.Sample, size int64) {
		if err := x.Add(s, size); err != nil {
			t.Fatal(err)
		}
	}
	// avAAC: 2000 frames of H.264 with B-frames and AAC starting 40 ms late.
	v, a := videoTrack(), audioTrack()
	av := &Index{}
	ctos := []int32{7200, 18000, 7200, 0, 3600}
	for i := range int64(2000) {
		add(av, media.Sample{Track: v, DTS: i * 3600, CTO: ctos[i%5], Sync: i%50 == 0}, 1000+i%97)
		for j := range int64(2) {
			add(av, media.Sample{Track: a, DTS: 1920 + (2*i+j)*1024, Sync: true}, 300+i%13)
		}
	}
	// av1Opus: AV1 and Opus with pre-skip, both from 0, so the priming delays the audio.
	v1, o := av1Track(), opusTrack()
	v1.ID, o.ID = 1, 2
	o.Config = append([]byte(nil), dopsPayload...)
	o.Config[2], o.Config[3] = 0x01, 0x38 // PreSkip 312
	ao := &Index{}
	for i := range int64(100) {
		add(ao, media.Sample{Track: v1, DTS: i * 3600, Sync: i%25 == 0}, 5000)
		for j := range int64(2) {
			add(ao, media.Sample{Track: o, DTS: (2*i + j) * 960, Sync: true}, 120)
		}
	}
	// big: samples of 1.5 GB (co64, 64-bit mdat size) lasting 11 hours each (v1 boxes).
	bv := videoTrack()
	big := &Index{}
	for i := range int64(4) {
		add(big, media.Sample{Track: bv, DTS: i * 3_600_000_000, Sync: true}, 1_500_000_000)
	}
	// m4a: AAC alone.
	ma := audioTrack()
	ma.ID = 1
	m4a := &Index{}
	for i := range int64(500) {
		add(m4a, media.Sample{Track: ma, DTS: i * 1024, Sync: true}, 200+i%7)
	}
	return []struct {
		name   string
		x      *Index
		tracks []*media.Track
		brand  Brand
		start  int64
	}{
		{"H.264+AAC compact", av, []*media.Track{v, a}, BrandMP4, 0},
		{"H.264+AAC reserve", av, []*media.Track{v, a}, BrandMP4, 1 << 20},
		{"AV1+Opus", ao, []*media.Track{v1, o}, BrandMP4, 0},
		{"co64 v1", big, []*media.Track{bv}, BrandMP4, 0},
		{"co64 v1 reserve", big, []*media.Track{bv}, BrandMP4, 64 << 10},
		{"M4A", m4a, []*media.Track{ma}, BrandM4A, 0},
	}
}

// TestGoldenHeaders: BuildHeader's bytes for fixed indexes are those hashed before the
// layout code was split up (issue 13): refactoring must not change a byte.
func TestGoldenHeaders(t *testing.T) {
	want := map[string]string{
		"H.264+AAC compact": "8a09ad1c3e453d21e3371ad4e37c5a13bade328b3d3dea16996b31811b8e322c",
		"H.264+AAC reserve": "539929a544989ae4e884284ca107c1bbf9fa4e126b0d2270209ecb336e339431",
		"AV1+Opus":          "844c5635598c140ca115b92a520432b4dc6b613325642ce1c4e63982c746823d",
		"co64 v1":           "c1f9d4afaffa6d7686940c28b56d8dad5d6c58852a6dfeaa2f05ccaf6781a356",
		"co64 v1 reserve":   "9142fb606867fa5221cb872249d7b9ee3acd63e99a1ddd46ec1da336e793bd46",
		"M4A":               "09d5500960cb9f50f81367da50c529edcf3bde4441b781a7e908c6d873ea38d2",
	}
	for _, tc := range goldenCases(t) {
		hdr, err := BuildHeader(tc.x, tc.tracks, tc.brand, tc.start)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		sum := sha256.Sum256(hdr)
		if got := hex.EncodeToString(sum[:]); got != want[tc.name] {
			t.Errorf("%s: header of %d bytes has sha256 %s, want %s", tc.name, len(hdr), got, want[tc.name])
		}
	}
}

// BenchmarkBuildHeader plans and writes the headers of the golden cases (the moov alone,
// without the disk: BenchmarkMux is dominated by writing the media).
func BenchmarkBuildHeader(b *testing.B) {
	cases := goldenCases(b)
	b.ReportAllocs()
	for b.Loop() {
		for _, tc := range cases {
			if _, err := BuildHeader(tc.x, tc.tracks, tc.brand, tc.start); err != nil {
				b.Fatal(err)
			}
		}
	}
}
