package chapters

import (
	"encoding/binary"
	"fmt"

	"github.com/stream-downloads/caddy-stream-downloads/packager/subtitles"
)

// maxChpl is the most chapters a chpl box holds: its count is one byte.
const maxChpl = 255

// ChplBox returns the bytes of a Nero chapter box, `chpl`, for the movie's
// `udta`, laid out as ffmpeg writes it (libavformat/movenc.c,
// mov_write_chpl_tag): size, "chpl", version 1 and flags 0, four reserved
// bytes, an 8-bit chapter count, then per chapter its start in 100 ns units
// (64 bits) and its title as an 8-bit length and that many bytes of UTF-8.
// As in ffmpeg, only the first 255 chapters are written and a title is cut at
// 255 bytes (here on a character boundary). Chapters before 0 start at 0.
// No chapters give nil: no box.
func ChplBox(chs []Chapter) []byte {
	if len(chs) == 0 {
		return nil
	}
	chs = chs[:min(len(chs), maxChpl)]
	b := make([]byte, 8, 17+len(chs)*(9+maxChpl))
	copy(b[4:], "chpl")
	b = append(b, 1, 0, 0, 0) // version 1, flags 0
	b = append(b, 0, 0, 0, 0) // reserved
	b = append(b, byte(len(chs)))
	for _, c := range chs {
		b = binary.BigEndian.AppendUint64(b, uint64(max(c.Start, 0)/100))
		t := subtitles.TruncateUTF8(c.Title, maxChpl)
		b = append(b, byte(len(t)))
		b = append(b, t...)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b
}

// encd is the box ffmpeg appends to each chapter track sample to say that
// the text is UTF-8 (libavformat/movenc.c, mov_create_chapter_track).
var encd = []byte{0x00, 0x00, 0x00, 0x0C, 'e', 'n', 'c', 'd', 0x00, 0x00, 0x01, 0x00}

// TrackSamples returns the samples of a QuickTime chapter track with the
// given timescale, whose sample entry is subtitles.TX3GSampleEntry(): one
// sample per chapter, its text the title (16-bit length, UTF-8, then an
// `encd` box as ffmpeg writes), lasting from the chapter's start to the next
// chapter's start, the last one to its end (at least one tick). Sample times
// in a track are contiguous from 0, so when the first chapter starts after 0
// an untitled sample fills the time before it. chs must be sorted and not
// overlap, as Parse returns them.
func TrackSamples(chs []Chapter, timescale uint32) ([]subtitles.Sample, error) {
	if timescale == 0 {
		return nil, fmt.Errorf("chapters: timescale 0")
	}
	var out []subtitles.Sample
	add := func(dts, end int64, title string) error {
		if end-dts > 0xFFFFFFFF {
			return fmt.Errorf("chapters: a sample of %d ticks at %d is too long for a 32-bit duration", end-dts, dts)
		}
		data := subtitles.TX3GText(title)
		if title != "" {
			data = append(data, encd...)
		}
		out = append(out, subtitles.Sample{DTS: dts, Duration: uint32(end - dts), Data: data})
		return nil
	}
	for i, c := range chs {
		if i > 0 && c.Start < chs[i-1].Start {
			return nil, fmt.Errorf("chapters: chapter %d starts before the one before it", i+1)
		}
		start := subtitles.Ticks(c.Start, timescale)
		if i == 0 && start > 0 {
			if err := add(0, start, ""); err != nil {
				return nil, err
			}
		}
		end := subtitles.Ticks(c.End, timescale)
		if i+1 < len(chs) {
			end = subtitles.Ticks(chs[i+1].Start, timescale)
		}
		if end <= start {
			if i+1 < len(chs) {
				continue // rounds to nothing before the next chapter
			}
			end = start + 1
		}
		if err := add(start, end, c.Title); err != nil {
			return nil, err
		}
	}
	return out, nil
}
