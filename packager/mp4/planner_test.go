package mp4

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// plannerSamples is a synthetic stream that exercises the Planner's decisions: video
// of varying sizes, AAC held back and placed by time (a second), by bytes (large
// frames pass holdAudioBytes) and when a second audio track interrupts; the data of
// each sample is its number, so that where it lands can be checked.
func plannerSamples() ([]*media.Track, []media.Sample) {
	v := &media.Track{ID: 1, Kind: media.Video, Codec: media.H264, Timescale: 90000, Width: 160, Height: 90,
		SPS: [][]byte{{0x67, 0x64, 0x00, 0x0b, 0xac, 0xd9, 0x42, 0x8d, 0xf9, 0x30, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x14, 0x29, 0x96}},
		PPS: [][]byte{{0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0}}}
	a := &media.Track{ID: 2, Kind: media.Audio, Codec: media.AAC, Timescale: 48000, SampleRate: 48000, Channels: 2, Config: []byte{0x11, 0x90}, FrameDuration: 1024}
	a2 := &media.Track{ID: 3, Kind: media.Audio, Codec: media.AAC, Timescale: 44100, SampleRate: 44100, Channels: 1, Config: []byte{0x12, 0x08}, FrameDuration: 1024}
	var out []media.Sample
	n := 0
	data := func(size int) []byte {
		b := make([]byte, max(size, 4))
		binary.BigEndian.PutUint32(b, uint32(n))
		n++
		return b
	}
	ai, a2i := int64(0), int64(0)
	for i := range int64(250) { // 10 s at 25 fps
		out = append(out, media.Sample{Track: v, DTS: i * 3600, CTO: int32(i%3) * 3600, Sync: i%50 == 0, Data: data(1000 + int(i%7)*300)})
		for ; ai*1024*25 < (i+1)*48000; ai++ {
			size := 300
			if i >= 100 && i < 150 {
				size = 20_000 // 256 KiB of audio before a second of it
			}
			out = append(out, media.Sample{Track: a, DTS: ai * 1024, Sync: true, Data: data(size)})
		}
		if i%60 == 30 {
			for range 3 {
				out = append(out, media.Sample{Track: a2, DTS: a2i * 1024, Sync: true, Data: data(200)})
				a2i++
			}
		}
	}
	return []*media.Track{v, a, a2}, out
}

// TestPlannerEqualsWriter: the Planner, given the samples' sizes only, decides the
// file the Writer writes: its header bytes, its size, and where every sample lands
// (with the reserve, and relocated behind a compact header).
func TestPlannerEqualsWriter(t *testing.T) {
	tracks, samples := plannerSamples()
	for _, opts := range []Options{{ExpectedDuration: 10 * time.Second}, {Reserve: 64}, {Reserve: 1 << 20}} {
		path := filepath.Join(t.TempDir(), "out.mp4")
		w := NewWriter(testutil.CreateFile(t, path), opts)
		p := NewPlanner(opts)
		placed := 0
		for _, s := range samples {
			if err := w.WriteSample(s); err != nil {
				t.Fatal(err)
			}
			held := p.Held()
			flushed, now, err := p.Add(media.Sample{Track: s.Track, DTS: s.DTS, CTO: s.CTO, Sync: s.Sync}, int64(len(s.Data)))
			if err != nil {
				t.Fatal(err)
			}
			if flushed != 0 && flushed != held {
				t.Fatalf("%d of %d held samples placed", flushed, held)
			}
			if now == (s.Track.Kind == media.Audio) {
				t.Fatalf("a %s sample placed now: %v", s.Track.Kind, now)
			}
			placed += flushed
			if now {
				placed++
			}
		}
		info, err := w.Finish(tracks)
		if err != nil {
			t.Fatal(err)
		}
		pending := p.Held()
		l, err := p.Plan(tracks)
		if err != nil {
			t.Fatal(err)
		}
		file, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if l.MediaStart != info.HeaderSize || l.Size != info.Size || l.Relocated != info.Relocated || int64(len(file)) != l.Size {
			t.Fatalf("%+v: planned %d/%d/%v, written %d/%d/%v", opts, l.MediaStart, l.Size, l.Relocated, info.HeaderSize, info.Size, info.Relocated)
		}
		if !bytes.Equal(l.Header, file[:l.MediaStart]) {
			t.Fatalf("%+v: the planned header is not the file's", opts)
		}
		if opts.Reserve == 64 && !l.Relocated {
			t.Errorf("a reserve of 64 bytes: not relocated")
		}
		// Sample k of a track is the k-th of that track given; its data starts with its
		// number in the stream.
		byTrack := map[*media.Track][]int{}
		for i, s := range samples {
			byTrack[s.Track] = append(byTrack[s.Track], i)
		}
		n := 0
		for pl := range l.Samples() {
			i := byTrack[pl.Track][pl.Sample]
			if got := binary.BigEndian.Uint32(file[pl.Offset:]); got != uint32(i) || int(pl.Size) != len(samples[i].Data) {
				t.Fatalf("%+v: sample %d of track %d at %d holds sample %d", opts, pl.Sample, pl.Track.ID, pl.Offset, got)
			}
			n++
		}
		if n != len(samples) || placed+pending != len(samples) || pending == 0 {
			t.Errorf("%+v: %d samples in the layout, %d placed before Plan, of %d", opts, n, placed, len(samples))
		}
	}
}

// TestPlannerErrors: an error is kept.
func TestPlannerErrors(t *testing.T) {
	p := NewPlanner(Options{})
	v := &media.Track{ID: 1, Kind: media.Video, Timescale: 90000}
	if _, _, err := p.Add(media.Sample{Track: v, DTS: 10}, 5); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Add(media.Sample{Track: v, DTS: 10}, 5); err == nil {
		t.Fatal("a repeated DTS: no error")
	}
	if _, _, err := p.Add(media.Sample{Track: v, DTS: 20}, 5); err == nil {
		t.Error("after an error: no error")
	}
	if _, err := p.Plan([]*media.Track{v}); err == nil {
		t.Error("Plan after an error: no error")
	}
}
