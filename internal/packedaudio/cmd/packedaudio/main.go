// Command packedaudio makes a packed-audio HLS stream (RFC 8216 §3.4) from an elementary
// audio stream file written by ffmpeg (.aac ADTS, .ac3, .eac3, .mp3), for the conformance
// streams (testdata/conformance/make.sh): frames from ffprobe, segments of about a second
// cut at frame boundaries, each starting with an ID3 tag holding its 90 kHz timestamp, and
// the media playlist.
//
//	packedaudio [-start 126000] [-segment 1] [-name seg_%03d.aac] [-playlist play.m3u8] [-reference reference.ffconcat] IN OUTDIR
//
// -reference also writes an ffconcat list of the segments with their exact durations, which
// ffmpeg reads right (its HLS reader does not always: see packedaudio.Concat).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/stream-downloads/caddy-stream-downloads/internal/packedaudio"
)

func main() {
	start := flag.Int64("start", packedaudio.DefaultStart, "90 kHz timestamp of the first frame")
	segment := flag.Float64("segment", 1, "segment length in seconds (cut at the first frame at or after each multiple)")
	name := flag.String("name", "", "segment file names, a pattern with one %d (default seg_%03d and the codec's extension: .aac .ac3 .ec3 .mp3)")
	playlist := flag.String("playlist", "play.m3u8", "name of the media playlist written in OUTDIR")
	reference := flag.String("reference", "", "also write an ffconcat list of the segments by this name in OUTDIR")
	ffprobe := flag.String("ffprobe", "ffprobe", "the ffprobe program")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: packedaudio [flags] IN OUTDIR")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 || (*name != "" && strings.Count(*name, "%") != 1) {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), *ffprobe, *playlist, *reference, packedaudio.Options{Start: *start, SegmentSeconds: *segment}, *name); err != nil {
		fmt.Fprintln(os.Stderr, "packedaudio:", err)
		os.Exit(1)
	}
}

func run(in, outDir, ffprobe, playlist, reference string, opt packedaudio.Options, name string) error {
	es, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	s, err := packedaudio.Probe(context.Background(), ffprobe, in)
	if err != nil {
		return err
	}
	if name != "" {
		opt.Name = func(i int) string { return fmt.Sprintf(name, i) }
	}
	segs, err := packedaudio.Cut(es, s, opt)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	for _, seg := range segs {
		if err := os.WriteFile(filepath.Join(outDir, seg.Name), seg.Data, 0o644); err != nil {
			return err
		}
	}
	if reference != "" {
		if err := os.WriteFile(filepath.Join(outDir, reference), []byte(packedaudio.Concat(segs)), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(outDir, playlist), []byte(packedaudio.Playlist(segs)), 0o644)
}
