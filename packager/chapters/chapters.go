// Package chapters reads the chapters of an HLS stream — the Apple chapters
// JSON that a master playlist points to with
// EXT-X-SESSION-DATA:DATA-ID="com.apple.hls.chapters",URI="…" — and writes
// them the two ways ffmpeg's MP4 muxer does: a Nero `chpl` box (in the
// movie's `udta`) and the samples of a QuickTime chapter track (a tx3g text
// track that another track references with a `chap` track reference).
//
// The package is self-contained: the packager integration (fetching the
// JSON, the chapter track and udta in the MP4) is pending, see issue 17.
package chapters

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Limits on a chapters document.
const (
	// MaxJSONSize is the largest chapters document Parse accepts, in bytes.
	MaxJSONSize = 1 << 20
	// MaxChapters is the most chapters a document may hold.
	MaxChapters = 1000
	// MaxTitleLength is the longest title accepted, in bytes.
	MaxTitleLength = 1024
	// maxSeconds bounds start-time and duration (about 11 years).
	maxSeconds = 100000 * 3600
)

// Chapter is one chapter on the presentation timeline (0 is the start of
// the stream).
type Chapter struct {
	Start, End time.Duration
	Title      string
}

// appleChapter is one element of the Apple chapters JSON array. Pointers
// tell a missing field from a zero one.
type appleChapter struct {
	Chapter   *float64     `json:"chapter"`
	StartTime *float64     `json:"start-time"`
	Duration  *float64     `json:"duration"`
	Titles    []appleTitle `json:"titles"`
	// "images" (thumbnails) and unknown fields are ignored.
}

type appleTitle struct {
	Language string `json:"language"`
	Title    string `json:"title"`
}

// Parse reads an Apple HLS chapters document: a JSON array of objects with
// "chapter" (number), "start-time" and "duration" (seconds), "titles" (an
// array of {"language", "title"}) and optional "images", which are ignored.
//
// Each chapter's title is the one for language (a BCP 47 tag matched
// case-insensitively, exactly, else on its primary subtag: "en" matches
// "en-US" and the other way round), else the first title; a chapter without
// titles is named "Chapter N" (N its "chapter" number, else its position).
// Chapters are returned sorted by start; a chapter's end is start + duration,
// cut at the next chapter's start so that chapters never overlap; without
// "duration" it ends where the next starts, and the last one at its start
// (the caller extends it to the end of the media). An empty array gives no
// chapters. Two chapters starting at the same time, a negative or missing
// start-time, a negative duration, over MaxChapters chapters or a title over
// MaxTitleLength bytes are errors.
func Parse(data []byte, language string) ([]Chapter, error) {
	if len(data) > MaxJSONSize {
		return nil, fmt.Errorf("chapters: document of %d bytes is over the limit of %d", len(data), MaxJSONSize)
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("chapters: not JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("chapters: the document is not a JSON array")
	}
	var raw []appleChapter
	for dec.More() {
		if len(raw) == MaxChapters {
			return nil, fmt.Errorf("chapters: more than %d chapters", MaxChapters)
		}
		var c appleChapter
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("chapters: chapter %d: %v", len(raw)+1, err)
		}
		raw = append(raw, c)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("chapters: after chapter %d: %v", len(raw), err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("chapters: data after the JSON array")
	}

	type item struct {
		Chapter
		hasEnd bool
		pos    int
	}
	items := make([]item, 0, len(raw))
	for i, c := range raw {
		n := i + 1
		if c.StartTime == nil {
			return nil, fmt.Errorf("chapters: chapter %d: no start-time", n)
		}
		start, err := seconds(*c.StartTime)
		if err != nil {
			return nil, fmt.Errorf("chapters: chapter %d: start-time %w", n, err)
		}
		it := item{Chapter: Chapter{Start: start}, pos: n}
		if c.Duration != nil {
			d, err := seconds(*c.Duration)
			if err != nil {
				return nil, fmt.Errorf("chapters: chapter %d: duration %w", n, err)
			}
			it.End, it.hasEnd = start+d, true
		}
		it.Title = pickTitle(c.Titles, language)
		if len(it.Title) > MaxTitleLength {
			return nil, fmt.Errorf("chapters: chapter %d: title of %d bytes is over the limit of %d", n, len(it.Title), MaxTitleLength)
		}
		if it.Title == "" {
			num := n
			if c.Chapter != nil && *c.Chapter >= 1 && *c.Chapter <= MaxChapters*1000 && *c.Chapter == math.Trunc(*c.Chapter) {
				num = int(*c.Chapter)
			}
			it.Title = fmt.Sprintf("Chapter %d", num)
		}
		items = append(items, it)
	}
	slices.SortStableFunc(items, func(a, b item) int { return cmp.Compare(a.Start, b.Start) })
	out := make([]Chapter, len(items))
	for i, it := range items {
		if i+1 < len(items) {
			next := items[i+1]
			if next.Start == it.Start {
				return nil, fmt.Errorf("chapters: chapters %d and %d both start at %v", it.pos, next.pos, it.Start)
			}
			if !it.hasEnd || it.End > next.Start {
				it.End = next.Start
			}
		} else if !it.hasEnd {
			it.End = it.Start
		}
		out[i] = it.Chapter
	}
	return out, nil
}

// seconds converts a JSON number of seconds to a duration rounded to the
// microsecond (which keeps 0.1 exactly 100 ms).
func seconds(s float64) (time.Duration, error) {
	if math.IsNaN(s) || s < 0 || s > maxSeconds {
		return 0, fmt.Errorf("%v is not a number of seconds in [0, %d]", s, maxSeconds)
	}
	return time.Duration(math.Round(s*1e6)) * time.Microsecond, nil
}

// pickTitle returns the title for language: an exact (case-insensitive)
// match, else a match of the primary subtags, else the first title.
// Runs of white space (line breaks included) become one space, and
// surrounding white space goes.
func pickTitle(titles []appleTitle, language string) string {
	if len(titles) == 0 {
		return ""
	}
	best := 0
	if language != "" {
		primary := func(tag string) string { p, _, _ := strings.Cut(tag, "-"); return p }
		found := false
		for i, t := range titles {
			if strings.EqualFold(t.Language, language) {
				best, found = i, true
				break
			}
		}
		if !found {
			for i, t := range titles {
				if t.Language != "" && strings.EqualFold(primary(t.Language), primary(language)) {
					best = i
					break
				}
			}
		}
	}
	return strings.Join(strings.Fields(titles[best].Title), " ")
}
