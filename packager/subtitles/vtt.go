package subtitles

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// WriteVTT writes cues as a WebVTT file: the WEBVTT header, then the cues in
// order of start time (stable for equal starts), each with its identifier
// and settings when they can be written back safely, times as HH:MM:SS.mmm
// (times before 0 written as 0, cues left without duration skipped), and its
// text with '&', '<' and '>' escaped, empty lines dropped.
func WriteVTT(w io.Writer, cues []Cue) error {
	sorted := slices.Clone(cues)
	slices.SortStableFunc(sorted, func(a, b Cue) int { return cmp.Compare(a.Start, b.Start) })
	bw := bufio.NewWriter(w)
	bw.WriteString("WEBVTT\n")
	for _, c := range sorted {
		start, end := roundMs(c.Start), roundMs(c.End)
		if end <= start {
			continue
		}
		var lines []string
		for l := range strings.SplitSeq(c.Text, "\n") {
			if l = strings.TrimRight(l, "\r"); l != "" {
				lines = append(lines, escapeText(l))
			}
		}
		if len(lines) == 0 {
			continue
		}
		bw.WriteString("\n")
		if safeID(c.ID) {
			bw.WriteString(c.ID + "\n")
		}
		bw.WriteString(formatTimestamp(start) + " --> " + formatTimestamp(end))
		if c.Settings != "" && !strings.Contains(c.Settings, "-->") && !strings.ContainsAny(c.Settings, "\r\n") {
			bw.WriteString(" " + c.Settings)
		}
		bw.WriteString("\n" + strings.Join(lines, "\n") + "\n")
	}
	return bw.Flush()
}

var textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func escapeText(s string) string { return textEscaper.Replace(s) }

// safeID reports whether id can be written as a cue identifier and read back
// as one: not empty, no line break, no "-->", not a block keyword.
func safeID(id string) bool {
	return id != "" && !strings.Contains(id, "-->") && !strings.ContainsAny(id, "\r\n") &&
		!isKeyword(id, "NOTE") && !isKeyword(id, "STYLE") && !isKeyword(id, "REGION")
}

// roundMs returns d in milliseconds, rounded to nearest as TX3GSamples
// rounds to a 1000 timescale, and 0 for times before 0.
func roundMs(d time.Duration) int64 {
	return Ticks(d, 1000)
}

// formatTimestamp writes ms milliseconds (≥ 0) as HH:MM:SS.mmm; hours take
// more digits past 99.
func formatTimestamp(ms int64) string {
	return fmt.Sprintf("%02d:%02d:%02d.%03d", ms/3600000, ms/60000%60, ms/1000%60, ms%1000)
}
