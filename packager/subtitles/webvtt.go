package subtitles

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on one WebVTT segment. An HLS subtitle segment holds a few seconds
// of cues and weighs a few kilobytes; these bounds are far above that and keep
// the memory of a hostile or broken segment bounded.
const (
	// MaxSegmentSize is the largest segment Parse accepts, in bytes.
	MaxSegmentSize = 4 << 20
	// MaxLineLength is the longest line Parse accepts, in bytes.
	MaxLineLength = 16 << 10
	// MaxCues is the most cues one segment may hold.
	MaxCues = 20000
	// MaxCueText is the longest cue payload Parse accepts, in bytes.
	MaxCueText = 32 << 10
)

// Cue is one WebVTT cue.
type Cue struct {
	// ID is the cue identifier ("" when the cue has none).
	ID string
	// Start and End are the cue's times: as written in the segment for
	// Parse, on the MP4 timeline for ParseSegment and Segment.Place.
	Start, End time.Duration
	// Settings is the cue settings list as written after the end time
	// (e.g. "align:start line:0"), "" when absent.
	Settings string
	// Text is the payload, lines joined by "\n", with the WebVTT tags
	// (<i>, <b>, <u>, <c.x>, <v Name>, <lang>, <ruby>, timestamps) removed
	// and the character references decoded. Lines left empty are dropped.
	Text string
}

// TimestampMap is a segment's X-TIMESTAMP-MAP (RFC 8216 §3.5): the WebVTT
// time Local corresponds to the MPEG-2 timestamp MPEGTS (90 kHz, 33 bits).
type TimestampMap struct {
	MPEGTS int64
	Local  time.Duration
}

// Segment is a parsed WebVTT segment.
type Segment struct {
	// Map is the X-TIMESTAMP-MAP of the header, nil when absent.
	Map *TimestampMap
	// Cues are the segment's cues in file order, times as written.
	Cues []Cue
}

const (
	ptsWrap = int64(1) << 33
	ptsMask = ptsWrap - 1
)

// ParseSegment parses an HLS WebVTT segment and places its cues on the MP4
// timeline: firstPTS is the 90 kHz MPEG-2 timestamp of the stream's first
// media sample, which is time 0 of the MP4. See Segment.Place.
func ParseSegment(data []byte, firstPTS int64) ([]Cue, error) {
	seg, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return seg.Place(firstPTS), nil
}

// Offset is what Place adds to every cue time. With an X-TIMESTAMP-MAP a
// player puts a cue at the media time cue − LOCAL + MPEGTS/90000; the MP4
// timeline starts at firstPTS, so the offset is (MPEGTS − firstPTS)/90000 −
// LOCAL, the difference MPEGTS − firstPTS taken modulo 2³³ into
// [−2³², 2³²) ticks (±13.25 h), which absorbs a wraparound of the 33-bit
// timestamps between the two. Without a map the cue times are taken as is:
// they already are on the presentation timeline that starts at 0 (so the
// offset is 0).
func (s *Segment) Offset(firstPTS int64) time.Duration {
	if s.Map == nil {
		return 0
	}
	d := (s.Map.MPEGTS - firstPTS) & ptsMask
	if d >= ptsWrap/2 {
		d -= ptsWrap
	}
	return time.Duration(d)*time.Second/90000 - s.Map.Local
}

// Place returns the segment's cues with Offset(firstPTS) added to their
// times. Times may come out negative for cues before the first media sample;
// TX3GSamples and WriteVTT clip them at 0.
func (s *Segment) Place(firstPTS int64) []Cue {
	off := s.Offset(firstPTS)
	out := make([]Cue, len(s.Cues))
	for i, c := range s.Cues {
		c.Start += off
		c.End += off
		out[i] = c
	}
	return out
}

// Parse parses one WebVTT file or HLS WebVTT segment: an optional byte order
// mark, the WEBVTT header (with an optional X-TIMESTAMP-MAP), then blocks
// separated by blank lines. NOTE, STYLE and REGION blocks, and blocks without
// a timing line, are skipped as the W3C parser does; a cue whose end is not
// after its start, or whose text is empty, is dropped. LF, CRLF and CR line
// ends are accepted; invalid UTF-8 is replaced with U+FFFD.
func Parse(data []byte) (*Segment, error) {
	if len(data) > MaxSegmentSize {
		return nil, fmt.Errorf("webvtt: segment of %d bytes is over the limit of %d", len(data), MaxSegmentSize)
	}
	text := string(data)
	text = strings.TrimPrefix(text, "\uFEFF")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	text = strings.ReplaceAll(text, "\x00", "\uFFFD")
	text = strings.ToValidUTF8(text, "\uFFFD")
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if len(l) > MaxLineLength {
			return nil, fmt.Errorf("webvtt: line %d: %d bytes, over the limit of %d", i+1, len(l), MaxLineLength)
		}
	}
	first := lines[0]
	if !strings.HasPrefix(first, "WEBVTT") || (len(first) > 6 && first[6] != ' ' && first[6] != '\t') {
		return nil, fmt.Errorf("webvtt: line 1: missing the WEBVTT header")
	}
	seg := &Segment{}
	i := 1
	// Header: up to the first blank line (or a line that is already a
	// cue timing line).
	for ; i < len(lines) && lines[i] != "" && !strings.Contains(lines[i], "-->"); i++ {
		v, ok := strings.CutPrefix(lines[i], "X-TIMESTAMP-MAP=")
		if !ok {
			continue
		}
		if seg.Map != nil {
			return nil, fmt.Errorf("webvtt: line %d: second X-TIMESTAMP-MAP", i+1)
		}
		m, err := parseTimestampMap(v)
		if err != nil {
			return nil, fmt.Errorf("webvtt: line %d: X-TIMESTAMP-MAP: %w", i+1, err)
		}
		seg.Map = m
	}
	// skipBlock skips to the end of a block that is not a cue; a line
	// with "-->" ends it too, and starts a cue, as in the W3C parser.
	skipBlock := func() {
		i++
		for i < len(lines) && lines[i] != "" && !strings.Contains(lines[i], "-->") {
			i++
		}
	}
	for i < len(lines) {
		l := lines[i]
		if l == "" {
			i++
			continue
		}
		if !strings.Contains(l, "-->") && (isKeyword(l, "NOTE") || isKeyword(l, "STYLE") || isKeyword(l, "REGION")) {
			skipBlock()
			continue
		}
		var c Cue
		if !strings.Contains(l, "-->") {
			if i+1 >= len(lines) || !strings.Contains(lines[i+1], "-->") {
				skipBlock() // no timing line: not a cue
				continue
			}
			c.ID = l
			i++
		}
		var err error
		c.Start, c.End, c.Settings, err = parseTiming(lines[i])
		if err != nil {
			return nil, fmt.Errorf("webvtt: line %d: %w", i+1, err)
		}
		timingLine := i + 1
		i++
		var payload []string
		size := 0
		for ; i < len(lines) && lines[i] != "" && !strings.Contains(lines[i], "-->"); i++ {
			size += len(lines[i]) + 1
			if size > MaxCueText {
				return nil, fmt.Errorf("webvtt: line %d: cue payload over the limit of %d bytes", i+1, MaxCueText)
			}
			if t := cleanLine(lines[i]); t != "" {
				payload = append(payload, t)
			}
		}
		c.Text = strings.Join(payload, "\n")
		if c.Text == "" || c.End <= c.Start {
			continue
		}
		if len(seg.Cues) == MaxCues {
			return nil, fmt.Errorf("webvtt: line %d: more than %d cues", timingLine, MaxCues)
		}
		seg.Cues = append(seg.Cues, c)
	}
	return seg, nil
}

// isKeyword reports whether line is keyword alone or followed by a space or
// tab, as the W3C parser recognises NOTE, STYLE and REGION blocks.
func isKeyword(line, keyword string) bool {
	rest, ok := strings.CutPrefix(line, keyword)
	return ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t')
}

// parseTimestampMap parses the value of X-TIMESTAMP-MAP: "MPEGTS:<ticks>" and
// "LOCAL:<timestamp>" in either order, separated by a comma. An MPEGTS above
// 33 bits is taken modulo 2³³, as the timestamps it is compared with are.
func parseTimestampMap(v string) (*TimestampMap, error) {
	var m TimestampMap
	var haveTS, haveLocal bool
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		key, val, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("%q is not KEY:VALUE", part)
		}
		switch key {
		case "MPEGTS":
			if haveTS {
				return nil, fmt.Errorf("MPEGTS twice")
			}
			n, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("MPEGTS %q is not a number", val)
			}
			m.MPEGTS = int64(n & uint64(ptsMask))
			haveTS = true
		case "LOCAL":
			if haveLocal {
				return nil, fmt.Errorf("LOCAL twice")
			}
			d, rest, err := parseTimestamp(val)
			if err != nil || rest != "" {
				return nil, fmt.Errorf("LOCAL %q is not a WebVTT timestamp", val)
			}
			m.Local = d
			haveLocal = true
		default:
			return nil, fmt.Errorf("unknown key %q", key)
		}
	}
	if !haveTS || !haveLocal {
		return nil, fmt.Errorf("needs both MPEGTS and LOCAL")
	}
	return &m, nil
}

// parseTiming parses a cue timing line: start "-->" end, then settings.
func parseTiming(line string) (start, end time.Duration, settings string, err error) {
	start, rest, err := parseTimestamp(strings.TrimLeft(line, " \t"))
	if err != nil {
		return 0, 0, "", fmt.Errorf("cue start: %w", err)
	}
	rest, ok := strings.CutPrefix(strings.TrimLeft(rest, " \t"), "-->")
	if !ok {
		return 0, 0, "", fmt.Errorf("no \"-->\" after the cue start time")
	}
	end, rest, err = parseTimestamp(strings.TrimLeft(rest, " \t"))
	if err != nil {
		return 0, 0, "", fmt.Errorf("cue end: %w", err)
	}
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return 0, 0, "", fmt.Errorf("cue end time followed by %q", rest)
	}
	return start, end, strings.TrimSpace(rest), nil
}

// maxHours bounds the hours of a timestamp (about 11 years), far from the
// limits of time.Duration.
const maxHours = 100000

// parseTimestamp parses a WebVTT timestamp at the start of s —
// [hours:]mm:ss.ttt, hours of one or more digits, at most maxHours — and
// returns it with the rest of s.
func parseTimestamp(s string) (time.Duration, string, error) {
	var parts [3]int64
	n, firstLen := 0, 0
	rest := s
	for {
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		if j == 0 {
			return 0, s, fmt.Errorf("malformed timestamp %q", clip(s))
		}
		if n > 0 && j != 2 || j > 9 {
			return 0, s, fmt.Errorf("malformed timestamp %q", clip(s))
		}
		if n == 0 {
			firstLen = j
		}
		v, _ := strconv.ParseInt(rest[:j], 10, 64)
		parts[n] = v
		n++
		rest = rest[j:]
		if rest == "" || rest[0] != ':' || n == 3 {
			break
		}
		rest = rest[1:]
	}
	if n < 2 || rest == "" || rest[0] != '.' || len(rest) < 4 {
		return 0, s, fmt.Errorf("malformed timestamp %q", clip(s))
	}
	for k := 1; k < 4; k++ {
		if rest[k] < '0' || rest[k] > '9' {
			return 0, s, fmt.Errorf("malformed timestamp %q", clip(s))
		}
	}
	ms, _ := strconv.ParseInt(rest[1:4], 10, 64)
	rest = rest[4:]
	var h, m, sec int64
	if n == 3 {
		h, m, sec = parts[0], parts[1], parts[2]
	} else {
		m, sec = parts[0], parts[1]
		if firstLen != 2 { // mm:ss.ttt: minutes are two digits
			return 0, s, fmt.Errorf("malformed timestamp %q", clip(s))
		}
	}
	if m > 59 || sec > 59 {
		return 0, s, fmt.Errorf("timestamp %q: minutes or seconds over 59", clip(s))
	}
	if h > maxHours {
		return 0, s, fmt.Errorf("timestamp %q: over %d hours", clip(s), maxHours)
	}
	d := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(sec)*time.Second + time.Duration(ms)*time.Millisecond
	return d, rest, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) <= 40 {
		return s
	}
	return TruncateUTF8(s, 40) + "…"
}

// TruncateUTF8 cuts s to at most n bytes without splitting a character.
func TruncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// entities are the character references decoded in cue text: those of the
// WebVTT spec's examples and serialisers, plus the usual HTML ones.
var entities = map[string]string{
	"amp":  "&",
	"lt":   "<",
	"gt":   ">",
	"nbsp": "\u00A0",
	"lrm":  "\u200E",
	"rlm":  "\u200F",
	"quot": "\"",
	"apos": "'",
}

// cleanLine removes the WebVTT tags of one payload line (everything from '<'
// to the next '>', or to the end of the line when unterminated) and decodes
// its character references; an unknown or malformed reference is kept as
// written, as a bare '&' is.
func cleanLine(line string) string {
	if !strings.ContainsAny(line, "<&") {
		return line
	}
	var b strings.Builder
	for i := 0; i < len(line); {
		switch line[i] {
		case '<':
			j := strings.IndexByte(line[i:], '>')
			if j < 0 {
				i = len(line)
			} else {
				i += j + 1
			}
		case '&':
			if r, n := decodeEntity(line[i:]); n > 0 {
				b.WriteString(r)
				i += n
			} else {
				b.WriteByte('&')
				i++
			}
		default:
			j := strings.IndexAny(line[i:], "<&")
			if j < 0 {
				j = len(line) - i
			}
			b.WriteString(line[i : i+j])
			i += j
		}
	}
	return b.String()
}

// decodeEntity decodes the character reference at the start of s ("&name;",
// "&#123;" or "&#x1F;") and returns it with its length, or 0 when s does not
// start with one it knows.
func decodeEntity(s string) (string, int) {
	end := strings.IndexByte(s, ';')
	if end < 2 || end > 10 {
		return "", 0
	}
	name := s[1:end]
	if r, ok := entities[name]; ok {
		return r, end + 1
	}
	if name[0] != '#' {
		return "", 0
	}
	var v uint64
	var err error
	if len(name) > 1 && (name[1] == 'x' || name[1] == 'X') {
		v, err = strconv.ParseUint(name[2:], 16, 32)
	} else {
		v, err = strconv.ParseUint(name[1:], 10, 32)
	}
	if err != nil || v == 0 || !utf8.ValidRune(rune(v)) {
		return "", 0
	}
	return string(rune(v)), end + 1
}

// Normalize sorts cues by start then end time (stably) and removes the
// repeats: HLS segmenters repeat a cue that spans a segment boundary in each
// segment it touches, and a player shows it once. Cues are repeats when their
// start, end and text are equal.
func Normalize(cues []Cue) []Cue {
	out := slices.Clone(cues)
	slices.SortStableFunc(out, func(a, b Cue) int {
		if a.Start != b.Start {
			return cmp.Compare(a.Start, b.Start)
		}
		return cmp.Compare(a.End, b.End)
	})
	kept := out[:0]
	for _, c := range out {
		dup := false
		for k := len(kept) - 1; k >= 0 && kept[k].Start == c.Start && kept[k].End == c.End; k-- {
			if kept[k].Text == c.Text {
				dup = true
				break
			}
		}
		if !dup {
			kept = append(kept, c)
		}
	}
	return kept
}
