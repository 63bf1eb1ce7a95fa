package subtitles

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string // inline segment, or "@file" in testdata
		m    *TimestampMap
		cues []Cue
	}{
		{
			name: "ffmpeg hls muxer, first segment",
			in:   "@ffmpeg_hls_0.vtt",
			cues: []Cue{{Start: ms(1200), End: ms(3700), Text: "Hello & world"}},
		},
		{
			name: "ffmpeg hls muxer, two-line cue",
			in:   "@ffmpeg_hls_2.vtt",
			cues: []Cue{{Start: ms(5200), End: ms(7200), Text: "Line one\nLine two"}},
		},
		{
			name: "ffmpeg hls muxer, segment without cues",
			in:   "@ffmpeg_hls_empty.vtt",
		},
		{
			name: "apple style: BOM, CRLF, map, NOTE STYLE REGION, id, settings, tags, entities",
			in:   "@apple_map.vtt",
			m:    &TimestampMap{MPEGTS: 900000, Local: 0},
			cues: []Cue{
				{ID: "1", Start: ms(10000), End: ms(12500), Settings: "align:start line:0", Text: "Hi & welcome\nsecond\u00a0line"},
				{Start: ms(12500), End: ms(14000), Text: "<music> \u200eok"},
			},
		},
		{
			name: "map with MPEGTS second, spaces, hours of three digits, CR line ends",
			in:   "WEBVTT\rX-TIMESTAMP-MAP=MPEGTS:8589934591, LOCAL:01:00:00.000\r\r100:00:00.000 --> 100:00:01.000\rx\r",
			m:    &TimestampMap{MPEGTS: 8589934591, Local: time.Hour},
			cues: []Cue{{Start: 100 * time.Hour, End: 100*time.Hour + time.Second, Text: "x"}},
		},
		{
			name: "MPEGTS beyond 33 bits is taken modulo 2^33",
			in:   "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:8589934692,LOCAL:00:00.000\n",
			m:    &TimestampMap{MPEGTS: 100, Local: 0},
		},
		{
			name: "cue without blank line after header, tab separators, single-digit hours",
			in:   "WEBVTT\n0:00:01.000\t-->\t0:00:02.000\na\n\n00:03.000 --> 00:04.000\nb\n00:05.000 --> 00:06.000\nc",
			cues: []Cue{
				{Start: ms(1000), End: ms(2000), Text: "a"},
				{Start: ms(3000), End: ms(4000), Text: "b"},
				{Start: ms(5000), End: ms(6000), Text: "c"},
			},
		},
		{
			name: "dropped: empty text, end before start; skipped: block without timing",
			in:   "WEBVTT\n\n00:01.000 --> 00:02.000\n<i></i>\n\n00:03.000 --> 00:02.000\nback\n\njust text\nmore text\n\n00:04.000 --> 00:05.000\nkept &foo; &#65;&#x42; & <b>bold\n",
			cues: []Cue{{Start: ms(4000), End: ms(5000), Text: "kept &foo; AB & bold"}},
		},
		{
			name: "unterminated tag drops the rest of the line; timestamp tags removed",
			in:   "WEBVTT\n\n00:01.000 --> 00:02.000\nkaraoke <00:01.500>done <i unterminated\n",
			cues: []Cue{{Start: ms(1000), End: ms(2000), Text: "karaoke done "}},
		},
		{
			name: "a timing line on the third line of a block ends it and starts a cue",
			in:   "WEBVTT\n\nNOTE\nsome\n00:01.000 --> 00:02.000\nnote-cue\n\nfoo\nbar\n00:03.000 --> 00:04.000\nafter\n",
			cues: []Cue{
				{Start: ms(1000), End: ms(2000), Text: "note-cue"},
				{Start: ms(3000), End: ms(4000), Text: "after"},
			},
		},
		{
			name: "header with text after WEBVTT and metadata lines",
			in:   "WEBVTT\tKind: captions\nLanguage: fr\n\n00:00.000 --> 00:00.001\nx\n",
			cues: []Cue{{Start: 0, End: ms(1), Text: "x"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.in)
			if name, ok := strings.CutPrefix(tc.in, "@"); ok {
				var err error
				if data, err = os.ReadFile("testdata/" + name); err != nil {
					t.Fatal(err)
				}
			}
			seg, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(seg.Map, tc.m) {
				t.Errorf("map = %+v, want %+v", seg.Map, tc.m)
			}
			if len(seg.Cues) != len(tc.cues) || (len(tc.cues) > 0 && !reflect.DeepEqual(seg.Cues, tc.cues)) {
				t.Errorf("cues:\n got %+v\nwant %+v", seg.Cues, tc.cues)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "line 1: missing the WEBVTT header"},
		{"no header", "00:01.000 --> 00:02.000\nx\n", "line 1: missing the WEBVTT header"},
		{"WEBVTTX", "WEBVTTX\n", "line 1: missing the WEBVTT header"},
		{"bad start", "WEBVTT\n\n00:01,000 --> 00:02.000\nx\n", "line 3: cue start: malformed timestamp"},
		{"bad end", "WEBVTT\n\nid\n00:01.000 --> 00:2.000\nx\n", "line 4: cue end: malformed timestamp"},
		{"no arrow", "WEBVTT\n\n00:01.000 -> 00:02.000 -->\nx\n", "line 3: no \"-->\""},
		{"minutes over 59", "WEBVTT\n\n00:61:00.000 --> 01:00:00.000\nx\n", "line 3: cue start: timestamp"},
		{"three-digit minutes", "WEBVTT\n\n100:00.000 --> 101:00.000\nx\n", "line 3: cue start: malformed"},
		{"end glued to settings", "WEBVTT\n\n00:01.000 --> 00:02.000align:start\nx\n", "line 3: cue end time followed by"},
		{"map without LOCAL", "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0\n", "line 2: X-TIMESTAMP-MAP: needs both"},
		{"map bad MPEGTS", "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:-5,LOCAL:00:00.000\n", "line 2: X-TIMESTAMP-MAP: MPEGTS \"-5\""},
		{"map bad LOCAL", "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:5,LOCAL:0\n", "line 2: X-TIMESTAMP-MAP: LOCAL \"0\""},
		{"map unknown key", "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:5,LOCAL:00:00.000,FOO:1\n", "unknown key \"FOO\""},
		{"two maps", "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:5,LOCAL:00:00.000\nX-TIMESTAMP-MAP=MPEGTS:5,LOCAL:00:00.000\n", "line 3: second X-TIMESTAMP-MAP"},
		{"long line", "WEBVTT\n\n" + strings.Repeat("a", MaxLineLength+1), "line 3: 16385 bytes, over the limit"},
		{"long payload", "WEBVTT\n\n00:01.000 --> 00:02.000\n" + strings.Repeat(strings.Repeat("a", 1000)+"\n", 40), "line 36: cue payload over the limit"},
		{"hours out of range", "WEBVTT\n\n100001:00:00.000 --> 100002:00:00.000\nx\n", "line 3: cue start: timestamp \"100001:00:00.000 --> 100002:00:00.000\": over 100000 hours"},
		{"too big", "WEBVTT\n" + strings.Repeat("\n", MaxSegmentSize), "over the limit of 4194304"},
		{"too many cues", "WEBVTT\n\n" + strings.Repeat("00:01.000 --> 00:02.000\nx\n", MaxCues+1), "line 40003: more than 20000 cues"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seg, err := Parse([]byte(tc.in))
			if err == nil {
				t.Fatalf("no error, got %+v", seg)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "webvtt: ") {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestPlace(t *testing.T) {
	const wrap = int64(1) << 33
	tests := []struct {
		name     string
		m        *TimestampMap
		firstPTS int64
		want     time.Duration // offset
	}{
		{"no map: cue times as is", nil, 126000, 0},
		{"map equal to first PTS", &TimestampMap{MPEGTS: 900000}, 900000, 0},
		{"ffmpeg-style TS start 1.4 s, map at 10 s", &TimestampMap{MPEGTS: 900000}, 126000, ms(8600)},
		{"LOCAL subtracted", &TimestampMap{MPEGTS: 900000, Local: 10 * time.Second}, 0, 0},
		{"LOCAL and MPEGTS", &TimestampMap{MPEGTS: 180000, Local: ms(500)}, 90000, ms(500)},
		{"map before first PTS", &TimestampMap{MPEGTS: 0}, 90000, -time.Second},
		{"sub-millisecond ticks", &TimestampMap{MPEGTS: 90001}, 90000, time.Second / 90000},
		{"MPEGTS wrapped past 2^33, first PTS not", &TimestampMap{MPEGTS: 1000}, wrap - 89000, time.Second},
		{"first PTS wrapped, MPEGTS not", &TimestampMap{MPEGTS: wrap - 90000}, 0, -time.Second},
		{"first PTS given unwrapped (over 33 bits)", &TimestampMap{MPEGTS: 90000}, wrap + 90000, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seg := &Segment{Map: tc.m, Cues: []Cue{{Start: ms(1000), End: ms(2000), Text: "x"}}}
			if got := seg.Offset(tc.firstPTS); got != tc.want {
				t.Fatalf("Offset = %v, want %v", got, tc.want)
			}
			got := seg.Place(tc.firstPTS)
			if got[0].Start != ms(1000)+tc.want || got[0].End != ms(2000)+tc.want || seg.Cues[0].Start != ms(1000) {
				t.Errorf("Place = %+v (segment %+v)", got, seg.Cues)
			}
		})
	}
}

func TestParseSegment(t *testing.T) {
	data, err := os.ReadFile("testdata/apple_map.vtt")
	if err != nil {
		t.Fatal(err)
	}
	// Video starts at PTS 10 s + 0.5 s: the cue at MPEGTS 10 s lands at -0.5 s
	// + 10 s (its LOCAL time) = 9.5 s.
	cues, err := ParseSegment(data, 945000)
	if err != nil {
		t.Fatal(err)
	}
	if cues[0].Start != ms(9500) || cues[0].End != ms(12000) || cues[1].Start != ms(12000) {
		t.Errorf("cues %+v", cues)
	}
	if _, err := ParseSegment([]byte("nope"), 0); err == nil {
		t.Error("no error for a bad segment")
	}
}

func TestNormalize(t *testing.T) {
	in := []Cue{
		{Start: ms(5000), End: ms(6000), Text: "c"},
		{Start: ms(1000), End: ms(3000), Text: "a"},
		{Start: ms(1000), End: ms(2000), Text: "b"},
		{Start: ms(1000), End: ms(3000), Text: "a2"},
		{Start: ms(1000), End: ms(3000), Text: "a"}, // repeat from the next segment
		{Start: ms(5000), End: ms(6000), Text: "c"},
	}
	want := []Cue{
		{Start: ms(1000), End: ms(2000), Text: "b"},
		{Start: ms(1000), End: ms(3000), Text: "a"},
		{Start: ms(1000), End: ms(3000), Text: "a2"},
		{Start: ms(5000), End: ms(6000), Text: "c"},
	}
	got := Normalize(in)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Normalize:\n got %+v\nwant %+v", got, want)
	}
	if in[0].Text != "c" {
		t.Error("Normalize changed its input")
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"ffmpeg_hls_0.vtt", "ffmpeg_hls_2.vtt", "apple_map.vtt"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, int64(126000))
	}
	f.Add([]byte("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:1,LOCAL:00:00.000\n\n00:00.000 --> 00:01.000\n&#x10FFFF;<b>&amp\n"), int64(1)<<33-1)
	f.Add([]byte("WEBVTT\n\nid\n99:59:59.999 --> 999999999:00:00.000 a\nx\n"), int64(-1))
	f.Fuzz(func(t *testing.T, data []byte, firstPTS int64) {
		seg, err := Parse(data)
		if err != nil {
			if seg != nil {
				t.Fatal("segment with an error")
			}
			return
		}
		if len(seg.Cues) > MaxCues || len(seg.Cues) > len(data)/10 {
			t.Fatalf("%d cues from %d bytes", len(seg.Cues), len(data))
		}
		total := 0
		for _, c := range seg.Cues {
			if c.End <= c.Start || c.Text == "" || len(c.Text) > MaxCueText {
				t.Fatalf("bad cue %+v", c)
			}
			total += len(c.Text) + len(c.ID) + len(c.Settings)
		}
		if total > 3*len(data) { // an invalid byte becomes U+FFFD, 3 bytes
			t.Fatalf("%d bytes of cue strings from %d bytes", total, len(data))
		}
		cues := Normalize(seg.Place(firstPTS))
		samples, err := TX3GSamples(cues, 1000)
		if err != nil {
			return // a gap too long for 32 bits
		}
		if len(samples) > 2*len(cues)+1 {
			t.Fatalf("%d samples for %d cues", len(samples), len(cues))
		}
		var sb strings.Builder
		if err := WriteVTT(&sb, cues); err != nil {
			t.Fatal(err)
		}
		if _, err := Parse([]byte(sb.String())); err != nil {
			t.Fatalf("WriteVTT output does not parse: %v\n%s", err, sb.String())
		}
	})
}
