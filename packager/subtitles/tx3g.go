package subtitles

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Sample is one media sample of a timed text track: DTS and Duration in the
// track's timescale, Data the sample bytes.
type Sample struct {
	DTS      int64
	Duration uint32
	Data     []byte
}

// maxSampleText is the most text a tx3g sample holds: its length is 16 bits.
const maxSampleText = math.MaxUint16

// TX3GSamples turns cues into the samples of one tx3g track whose timescale
// is timescale, the way ffmpeg's mov_text muxing does it: the timeline is cut
// at every cue start and end, each piece is one sample whose text is that of
// the cues active over it (in the order of cues, joined by "\n"), and a piece
// without cues is an empty sample (text length 0), so the samples are
// contiguous from DTS 0 to the end of the last cue. Cue times are rounded to
// the timescale; a cue (or what remains of it) before 0 is clipped at 0, and
// one that rounds to nothing is dropped. Each sample is a 16-bit big-endian
// text length followed by the UTF-8 text (cut at 65535 bytes, on a character
// boundary). No cues give no samples.
func TX3GSamples(cues []Cue, timescale uint32) ([]Sample, error) {
	if timescale == 0 {
		return nil, fmt.Errorf("tx3g: timescale 0")
	}
	type span struct {
		start, end int64
		idx        int
	}
	spans := make([]span, 0, len(cues))
	for i, c := range cues {
		s, e := Ticks(c.Start, timescale), Ticks(c.End, timescale)
		if e > s {
			spans = append(spans, span{s, e, i})
		}
	}
	if len(spans) == 0 {
		return nil, nil
	}
	bounds := make([]int64, 0, 2*len(spans)+1)
	bounds = append(bounds, 0)
	for _, s := range spans {
		bounds = append(bounds, s.start, s.end)
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	slices.SortFunc(spans, func(a, b span) int {
		if a.start != b.start {
			return cmp.Compare(a.start, b.start)
		}
		return a.idx - b.idx
	})

	var samples []Sample
	var active []span // ordered by idx
	next := 0
	for k := 0; k+1 < len(bounds); k++ {
		b, e := bounds[k], bounds[k+1]
		active = slices.DeleteFunc(active, func(s span) bool { return s.end <= b })
		for ; next < len(spans) && spans[next].start == b; next++ {
			s := spans[next]
			at, _ := slices.BinarySearchFunc(active, s.idx, func(a span, idx int) int { return a.idx - idx })
			active = slices.Insert(active, at, s)
		}
		if e-b > math.MaxUint32 {
			return nil, fmt.Errorf("tx3g: a sample of %d ticks at %d is too long for a 32-bit duration", e-b, b)
		}
		texts := make([]string, len(active))
		for j, s := range active {
			texts[j] = cues[s.idx].Text
		}
		samples = append(samples, Sample{DTS: b, Duration: uint32(e - b), Data: TX3GText(strings.Join(texts, "\n"))})
	}
	return samples, nil
}

// TX3GText returns the bytes of a tx3g sample holding text: its length as a
// 16-bit big-endian number, then the text (cut at 65535 bytes, on a
// character boundary). An empty text gives the 2-byte empty sample.
func TX3GText(text string) []byte {
	text = TruncateUTF8(text, maxSampleText)
	b := make([]byte, 2+len(text))
	binary.BigEndian.PutUint16(b, uint16(len(text)))
	copy(b[2:], text)
	return b
}

// Ticks converts d to ticks of the timescale, rounding to nearest; times
// before 0 become 0.
func Ticks(d time.Duration, timescale uint32) int64 {
	if d <= 0 {
		return 0
	}
	ts := int64(timescale)
	sec, rem := int64(d/time.Second), int64(d%time.Second)
	return sec*ts + (rem*ts+int64(time.Second)/2)/int64(time.Second)
}
