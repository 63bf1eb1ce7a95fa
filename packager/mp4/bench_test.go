package mp4

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
)

// BenchmarkMux writes synthetic samples (25 fps video of 20 KB frames, AAC of 400 B)
// through the progressive writer to disk and finishes the file; SetBytes makes the
// result MB/s of media written. It measures the writer's own cost: index bookkeeping,
// buffering, the header and the final fsync.
func BenchmarkMux(b *testing.B) {
	video := &media.Track{Kind: media.Video, Codec: media.H264, Timescale: 90000, Width: 1920, Height: 1080,
		SPS: [][]byte{{0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x60, 0xc6, 0x58}},
		PPS: [][]byte{{0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0}}}
	audio := &media.Track{Kind: media.Audio, Codec: media.AAC, Timescale: 48000, SampleRate: 48000, Channels: 2, Config: []byte{0x11, 0x90}, FrameDuration: 1024}
	frame := make([]byte, 20_000)
	aac := make([]byte, 400)
	const seconds = 60
	var total int64
	dir := b.TempDir()
	b.ReportAllocs()
	for b.Loop() {
		f, err := os.Create(filepath.Join(dir, "bench.mp4"))
		if err != nil {
			b.Fatal(err)
		}
		w := NewWriter(f, Options{ExpectedDuration: seconds * time.Second})
		total = 0
		a := int64(0)
		for i := range int64(seconds * 25) {
			s := media.Sample{Track: video, DTS: i * 3600, Sync: i%50 == 0, Data: frame}
			if err := w.WriteSample(s); err != nil {
				b.Fatal(err)
			}
			total += int64(len(frame))
			for ; a*1024*25 < (i+1)*48000; a++ { // audio up to the end of this frame
				if err := w.WriteSample(media.Sample{Track: audio, DTS: a * 1024, Sync: true, Data: aac}); err != nil {
					b.Fatal(err)
				}
				total += int64(len(aac))
			}
		}
		video.ID, audio.ID = 1, 2
		if _, err := w.Finish([]*media.Track{video, audio}); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil { // as the store does when it commits the file
			b.Fatal(err)
		}
		f.Close()
	}
	b.SetBytes(total)
}
