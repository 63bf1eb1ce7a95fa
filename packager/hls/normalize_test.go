package hls

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

// The canonical spellings the lenient ones are compared with. Quoted values
// hold spaces and commas, which normalisation must keep.
const (
	canonicalMaster = "#EXTM3U\n" +
		"#EXT-X-VERSION:10\n" +
		"#EXT-X-INDEPENDENT-SEGMENTS\n" +
		"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English (US), main\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,URI=\"audio/en  main.m3u8\"\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=640000,RESOLUTION=640x360,CODECS=\"avc1.4d401e,mp4a.40.2\",AUDIO=\"aud\"\n" +
		"v360/index.m3u8\n" +
		"#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=9000000,RESOLUTION=1920x1080,CODECS=\"avc1.640028\",URI=\"iframes.m3u8\"\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=1280000,AVERAGE-BANDWIDTH=1000000,RESOLUTION=1280x720,FRAME-RATE=29.970,CODECS=\"avc1.64001f, mp4a.40.2\",AUDIO=\"aud\"\n" +
		"v720/index.m3u8?a=1,b=2\n"
	canonicalMedia = "#EXTM3U\n" +
		"#EXT-X-VERSION:7\n" +
		"#EXT-X-TARGETDURATION:6\n" +
		"#EXT-X-MEDIA-SEQUENCE:3\n" +
		"#EXT-X-PLAYLIST-TYPE:VOD\n" +
		"#EXT-X-KEY:METHOD=AES-128,URI=\"keys/k 1,a=b.key\",IV=0x00000000000000000000000000000001\n" +
		"#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"700@0\"\n" +
		"#EXTINF:6.0,first, \"quoted\" title\n" +
		"#EXT-X-BYTERANGE:1000@700\n" +
		"seg.mp4\n" +
		"#EXT-X-DISCONTINUITY\n" +
		"#EXTINF:5.5,\n" +
		"#EXT-X-BYTERANGE:500\n" +
		"seg.mp4\n" +
		"#EXT-X-KEY:METHOD=NONE\n" +
		"#EXT-X-MAP:URI=\"init2.mp4\"\n" +
		"#EXTINF:4\n" +
		"seg2.m4s?a=1,b=2\n" +
		"#EXT-X-ENDLIST\n"
)

// testAttrTags are the attribute-list tags of the canonical playlists.
var testAttrTags = []string{"#EXT-X-STREAM-INF", "#EXT-X-I-FRAME-STREAM-INF", "#EXT-X-MEDIA", "#EXT-X-KEY", "#EXT-X-MAP"}

// eachLine applies f to every line of s (which ends in "\n").
func eachLine(s string, f func(string) string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString(f(strings.TrimSuffix(l, "\n")) + "\n")
		}
	}
	return b.String()
}

// eachTag applies f to the name and value of every "#EXT…:" tag line.
func eachTag(s string, f func(name, value string) string) string {
	return eachLine(s, func(l string) string {
		if name, value, ok := strings.Cut(l, ":"); ok && strings.HasPrefix(l, "#EXT") {
			return name + ":" + f(name, value)
		}
		return l
	})
}

// padSeps surrounds the separators in seps outside double quotes of v with
// before and after; with first, only the first one.
func padSeps(v, seps, before, after string, first bool) string {
	var b strings.Builder
	quoted, done := false, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '"' {
			quoted = !quoted
		}
		if !quoted && !done && strings.IndexByte(seps, c) >= 0 {
			b.WriteString(before + string(c) + after)
			done = first
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// spaceSeps pads the separators of attribute lists, EXTINF and EXT-X-BYTERANGE.
func spaceSeps(before, after string) func(string) string {
	return func(s string) string {
		return eachTag(s, func(name, v string) string {
			switch {
			case slices.Contains(testAttrTags, name):
				return padSeps(v, "=,", before, after, false)
			case name == "#EXTINF":
				return padSeps(v, ",", before, after, true)
			case name == "#EXT-X-BYTERANGE":
				return padSeps(v, "@", before, after, false)
			}
			return v
		})
	}
}

// reverseAttrs reverses the order of the attributes of every attribute list.
func reverseAttrs(s string) string {
	return eachTag(s, func(name, v string) string {
		if !slices.Contains(testAttrTags, name) {
			return v
		}
		var attrs []string
		quoted, start := false, 0
		for i := 0; i <= len(v); i++ {
			if i == len(v) || v[i] == ',' && !quoted {
				attrs = append(attrs, v[start:i])
				start = i + 1
			} else if v[i] == '"' {
				quoted = !quoted
			}
		}
		slices.Reverse(attrs)
		return strings.Join(attrs, ",")
	})
}

// spelling is a lenient way of writing a playlist, as a rewrite of the
// canonical text.
type spelling struct {
	name    string
	rewrite func(string) string
}

var spellings = []spelling{
	{"space after the colon", func(s string) string { return eachTag(s, func(_, v string) string { return " " + v }) }},
	{"spaces and tabs after the colon", func(s string) string { return eachTag(s, func(_, v string) string { return " \t  " + v }) }},
	{"CRLF", func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }},
	{"lone CR", func(s string) string { return strings.ReplaceAll(s, "\n", "\r") }},
	{"BOM", func(s string) string { return "\xef\xbb\xbf" + s }},
	{"BOM and CRLF", func(s string) string { return "\xef\xbb\xbf" + strings.ReplaceAll(s, "\n", "\r\n") }},
	{"trailing spaces and tabs", func(s string) string { return eachLine(s, func(l string) string { return l + " \t " }) }},
	{"trailing spaces and CRLF", func(s string) string { return eachLine(s, func(l string) string { return l + "  \r" }) }},
	{"indented tags", func(s string) string {
		return eachLine(s, func(l string) string {
			if strings.HasPrefix(l, "#") {
				return "\t " + l
			}
			return l
		})
	}},
	{"blank lines", func(s string) string { return eachLine(s, func(l string) string { return l + "\n\n \t\n" }) }},
	{"no final newline", func(s string) string { return strings.TrimSuffix(s, "\n") }},
	{"no final newline after CRLF", func(s string) string { return strings.TrimSuffix(strings.ReplaceAll(s, "\n", "\r\n"), "\r\n") }},
	{"attributes reversed", reverseAttrs},
	{"space after commas", spaceSeps("", " ")},
	{"spaces around separators", spaceSeps(" ", " ")},
	{"tabs around separators", spaceSeps("\t", " \t")},
	{"comments before URI lines", func(s string) string {
		return eachLine(s, func(l string) string {
			if strings.HasPrefix(l, "#EXT-X-STREAM-INF:") || strings.HasPrefix(l, "#EXTINF:") {
				return l + "\n# a comment\n\n#EXT-X-UNKNOWN-TAG:1"
			}
			return l
		})
	}},
	{"everything at once", func(s string) string {
		s = reverseAttrs(s)
		s = spaceSeps(" ", "\t ")(s)
		s = eachTag(s, func(_, v string) string { return "\t " + v })
		s = eachLine(s, func(l string) string {
			if strings.HasPrefix(l, "#EXT-X-STREAM-INF:") {
				return " " + l + " \n\n# comment"
			}
			return l + " \t\n"
		})
		return "\xef\xbb\xbf" + strings.TrimSuffix(strings.ReplaceAll(s, "\n", "\r\n"), "\r\n")
	}},
}

var normBase = mustURL("http://origin.example/v/index.m3u8")

// parsedSummary parses data as Resolve does and describes everything it
// found: the gohlslib result, scanTags' keys and maps, and the chosen
// variant or the Source made of the media playlist.
func parsedSummary(data string) string {
	pl, tags, err := parsePlaylist(normBase, []byte(data))
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	switch pl := pl.(type) {
	case *playlist.Multivariant:
		p("multivariant version %d independent %v", pl.Version, pl.IndependentSegments)
		for _, v := range pl.Variants {
			p("variant %q bandwidth %d average %v resolution %q codecs %q frame rate %v audio %q",
				v.URI, v.Bandwidth, deref(v.AverageBandwidth), v.Resolution, v.Codecs, deref(v.FrameRate), v.Audio)
		}
		for _, r := range pl.Renditions {
			p("rendition %s group %q name %q language %q default %v autoselect %v URI %q",
				r.Type, r.GroupID, r.Name, r.Language, r.Default, r.Autoselect, deref(r.URI))
		}
		v, info, err := chooseVariant(normBase, pl, SelectOptions{})
		if err != nil {
			p("choice error %v", err)
			break
		}
		p("chosen %q %+v", v.URI, info)
		main, alts := audioRenditions(pl, v)
		if main != nil && hasURI(main) {
			p("audio %q", *main.URI)
		}
		for _, r := range alts {
			p("alternative audio %q %+v", *r.URI, mediaInfo(r))
		}
	case *playlist.Media:
		p("media version %d target %d sequence %d type %v endlist %v", pl.Version, pl.TargetDuration, pl.MediaSequence, deref(pl.PlaylistType), pl.Endlist)
		for _, s := range pl.Segments {
			p("segment %q %v title %q discontinuity %v range %v@%v", s.URI, s.Duration, s.Title, s.Discontinuity, deref(s.ByteRangeLength), deref(s.ByteRangeStart))
		}
		for i, tg := range tags {
			if m := tg.mapTag; m != nil {
				rng := "whole"
				if m.rng != nil {
					rng = m.rng.Marshal()
				}
				p("tags %d: map %q range %s key %+v next %d", i, m.uri, rng, deref(m.key), m.next)
			}
			p("tags %d: key %+v", i, deref(tg.key))
		}
		src, err := mediaSource(normBase, pl, tags, &scope{keys: keyCache{}, hosts: newHostPolicy(normBase, nil)})
		if err != nil {
			p("source error %v", err)
			break
		}
		p("source %v duration %v target %v", src.URL, src.Duration, src.TargetDuration)
		for _, s := range src.Segments {
			p("segment %v range %v duration %v start %v sequence %d discontinuity %v", s.URL, deref(s.Range), s.Duration, s.Start, s.Sequence, s.Discontinuity)
			if s.Map != nil {
				p("  map %v range %v", s.Map.URL, deref(s.Map.Range))
			}
			if s.Key != nil {
				p("  key %v IV %x", s.Key.URL, deref(s.Key.IV))
			}
		}
	default:
		p("type %T", pl)
	}
	return b.String()
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestNormalizeSpellings: every lenient spelling, of a master and of a media
// playlist, parses to what the canonical spelling does.
func TestNormalizeSpellings(t *testing.T) {
	t.Parallel()
	for _, pl := range []struct {
		name, text string
		has        []string // in the canonical results: quoted spaces and commas kept
	}{
		{"master", canonicalMaster, []string{`name "English (US), main"`, `audio "audio/en  main.m3u8"`, `codecs ["avc1.64001f" " mp4a.40.2"]`,
			`chosen "v720/index.m3u8?a=1,b=2" {Bandwidth:1280000 Width:1280 Height:720 Codecs:[avc1.64001f mp4a.40.2] FrameRate:29.97}`}},
		{"media", canonicalMedia, []string{"key http://origin.example/v/keys/k%201,a=b.key IV 00000000000000000000000000000001",
			`title "first, \"quoted\" title"`, "segment http://origin.example/v/seg2.m4s?a=1,b=2 range <nil> duration 4s start 11.5s sequence 5",
			"map http://origin.example/v/init.mp4 range bytes=0-699", "segment http://origin.example/v/seg.mp4 range bytes=1700-2199"}},
	} {
		want := parsedSummary(pl.text)
		for _, s := range pl.has {
			if !strings.Contains(want, s) {
				t.Errorf("%s: canonical summary lacks %q:\n%s", pl.name, s, want)
			}
		}
		for _, sp := range spellings {
			t.Run(pl.name+"/"+sp.name, func(t *testing.T) {
				text := sp.rewrite(pl.text)
				if text == pl.text {
					t.Fatal("the spelling changes nothing")
				}
				if got := parsedSummary(text); got != want {
					t.Errorf("playlist %q\nparses to\n%s\nwant\n%s", text, got, want)
				}
				// Normalising is idempotent, so scanTags re-reading is safe.
				n := normalizePlaylist([]byte(text))
				if n2 := normalizePlaylist(n); string(n2) != string(n) {
					t.Errorf("not idempotent:\n%q\n%q", n, n2)
				}
			})
		}
	}
}

// TestNormalizeLines pins the exact output on a few lines.
func TestNormalizeLines(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"#EXTM3U\r\n#EXT-X-VERSION: 10\r\n", "#EXTM3U\n#EXT-X-VERSION:10\n"},
		{"#EXTM3U\r#EXTINF: 6.0 , title  x \t\ra b.ts \t", "#EXTM3U\n#EXTINF:6.0, title  x\na b.ts\n"},
		{"#EXTM3U\n#EXT-X-KEY:METHOD = AES-128 ,\tURI = \" a , b = c \" , IV=0x1\n", "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\" a , b = c \",IV=0x1\n"},
		{"#EXTM3U\n#EXT-X-MAP:URI=\"unterminated , x \n", "#EXTM3U\n#EXT-X-MAP:URI=\"unterminated , x\n"},
		{"#EXTM3U\n#EXT-X-BYTERANGE: 100 @ 7\n", "#EXTM3U\n#EXT-X-BYTERANGE:100@7\n"},
		{"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n\n# c\n#EXT-X-MEDIA:TYPE=AUDIO\n v.m3u8\n", "#EXTM3U\n# c\n#EXT-X-MEDIA:TYPE=AUDIO\n#EXT-X-STREAM-INF:BANDWIDTH=1\n v.m3u8\n"},
		{"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXT-X-STREAM-INF:BANDWIDTH=2\nv.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=3\n", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXT-X-STREAM-INF:BANDWIDTH=2\nv.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=3\n"},
		{"#EXTM3U\n# comment:  kept ,  as is \n#EXT\"X: a\n", "#EXTM3U\n# comment:  kept ,  as is\n#EXT\"X: a\n"},
		{"#EXTM3U\n#EXT-X-DATERANGE:ID=\"a b\" ,X-COM-EXAMPLE=\" , \"\n", "#EXTM3U\n#EXT-X-DATERANGE:ID=\"a b\",X-COM-EXAMPLE=\" , \"\n"},
		{"#EXT-X-STREAM-INF:\n#EXT-X-STREAM-INF:\n#", "#EXT-X-STREAM-INF:\n#EXT-X-STREAM-INF:\n#\n"},
		{"#EXT-X-STREAM-INF:A=1\n#a\n#EXT-X-STREAM-INF:A=2\n#b\nv\n", "#EXT-X-STREAM-INF:A=1\n#a\n#b\n#EXT-X-STREAM-INF:A=2\nv\n"},
		{"", ""},
		{"\r\n \t\r\n", ""},
	}
	for _, tt := range tests {
		if got := string(normalizePlaylist([]byte(tt.in))); got != tt.want {
			t.Errorf("normalizePlaylist(%q)\n = %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

// TestNormalizeStrictErrorsRemain: what players refuse too stays refused.
func TestNormalizeStrictErrorsRemain(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n",                               // no URI line
		"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:four,\na.ts\n",                // bad duration
		"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=\"1,2\"\nv.m3u8\n",                 // quoted number
		mediaHead + "#EXT-X-KEY:METHOD=AES-128,URI=\"k\nb\"\n#EXTINF:4,\na.ts\n", // line end in quotes
	} {
		if _, _, err := parsePlaylist(normBase, []byte(text)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: error %v, want ErrMalformed", text, err)
		}
	}
}

const iFramesMedia = "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-I-FRAMES-ONLY\n" +
	"#EXTINF:4,\n#EXT-X-BYTERANGE:376@564\n../demo/240p/seg_000.ts\n" +
	"#EXTINF:4,\n#EXT-X-BYTERANGE:376@0\n../demo/240p/seg_001.ts\n#EXT-X-ENDLIST\n"

// TestIFramesOnly: an I-frames-only playlist is never packaged, and the
// I-frame streams of a master are never chosen.
func TestIFramesOnly(t *testing.T) {
	t.Parallel()
	const msg = "I-frames-only playlist (EXT-X-I-FRAMES-ONLY): a trick-play index, not a video"
	t.Run("parse", func(t *testing.T) {
		for _, sp := range append([]spelling{{"canonical", func(s string) string { return s }}}, spellings...) {
			_, _, err := parsePlaylist(normBase, []byte(sp.rewrite(iFramesMedia)))
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), msg) {
				t.Errorf("%s: error %v, want ErrUnsupported: %s", sp.name, err, msg)
			}
		}
		// The tag decides in a media playlist only, as gohlslib types them.
		if !iFramesOnly([]byte(iFramesMedia + "#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n")) {
			t.Error("a media playlist with a stray EXT-X-STREAM-INF is not I-frames-only")
		}
		master := "#EXTM3U\n#EXT-X-I-FRAMES-ONLY\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n"
		if pl, _, err := parsePlaylist(normBase, []byte(master)); err != nil {
			t.Errorf("master with a stray EXT-X-I-FRAMES-ONLY: %v", err)
		} else if _, ok := pl.(*playlist.Multivariant); !ok {
			t.Errorf("master parsed as %T", pl)
		}
	})

	o := newOrigin(t)
	o.page("/if/iframes.m3u8", iFramesMedia)
	o.page("/if/master.m3u8", "#EXTM3U\n#EXT-X-VERSION:4\n"+
		"#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=9000000,RESOLUTION=426x240,URI=\"iframes.m3u8\"\n"+
		"#EXT-X-STREAM-INF:BANDWIDTH=200000,RESOLUTION=256x144\n../demo/144p/index.m3u8\n"+
		"#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=426x240\n../demo/240p/index.m3u8\n"+
		"#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=8000000,URI=\"iframes.m3u8\"\n")
	o.page("/if/onlyiframes.m3u8", "#EXTM3U\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=9000000,URI=\"iframes.m3u8\"\n")
	o.page("/if/trick.m3u8", "#EXTM3U\n"+
		"#EXT-X-STREAM-INF:BANDWIDTH=9000000\niframes.m3u8\n"+
		"#EXT-X-STREAM-INF:BANDWIDTH=400000\n../demo/240p/index.m3u8\n")
	c := quick(&Client{})
	ctx := context.Background()

	t.Run("entry playlist refused", func(t *testing.T) {
		_, err := c.Resolve(ctx, o.URL+"/if/iframes.m3u8", SelectOptions{})
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), o.URL+"/if/iframes.m3u8: "+msg) {
			t.Errorf("error %v", err)
		}
		if o.count("/demo/240p/seg_000.ts") != 0 {
			t.Error("a segment was fetched")
		}
	})
	t.Run("I-frame streams are not candidates", func(t *testing.T) {
		before := o.count("/if/iframes.m3u8")
		for _, opt := range []SelectOptions{{}, {MaxHeight: 240}, {MaxHeight: 144}} {
			src, err := c.Resolve(ctx, o.URL+"/if/master.m3u8", opt)
			if err != nil {
				t.Fatal(err)
			}
			want := "/demo/240p/"
			if opt.MaxHeight == 144 {
				want = "/demo/144p/"
			}
			if !strings.Contains(src.Segments[0].URL.Path, want) || src.Variant.Bandwidth > 400000 {
				t.Errorf("%+v: chose %v (%+v)", opt, src.URL, src.Variant)
			}
		}
		if n := o.count("/if/iframes.m3u8") - before; n != 0 {
			t.Errorf("the I-frame playlist was fetched %d times", n)
		}
	})
	t.Run("master of I-frame streams only", func(t *testing.T) {
		_, err := c.Resolve(ctx, o.URL+"/if/onlyiframes.m3u8", SelectOptions{})
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("error %v, want ErrMalformed", err)
		}
	})
	t.Run("variant that is I-frames-only refused", func(t *testing.T) {
		_, err := c.Resolve(ctx, o.URL+"/if/trick.m3u8", SelectOptions{})
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), o.URL+"/if/iframes.m3u8: "+msg) {
			t.Errorf("error %v", err)
		}
	})
}

// TestLenientResolve: a lenient master and its lenient variant resolve end
// to end as the canonical ones do.
func TestLenientResolve(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	o.page("/len/master.m3u8", "\xef\xbb\xbf#EXTM3U\r\n#EXT-X-VERSION: 10\r\n"+
		"#EXT-X-STREAM-INF: RESOLUTION=426x240 , BANDWIDTH = 400000,\tCODECS=\"avc1.640015, mp4a.40.2\"  \r\n\r\n"+
		"index.m3u8 \t\r\n"+
		"#EXT-X-STREAM-INF:BANDWIDTH=200000, RESOLUTION=256x144\r\n../demo/144p/index.m3u8")
	o.page("/len/index.m3u8", "#EXTM3U\r#EXT-X-VERSION: 3 \r#EXT-X-TARGETDURATION:\t4\r\r"+
		"#EXTINF: 4.0 ,\r../demo/240p/seg_000.ts\r#EXTINF: 4,\r../demo/240p/seg_001.ts\r#EXTINF:4 , x\r../demo/240p/seg_002.ts\r#EXT-X-ENDLIST  ")
	src, err := quick(&Client{}).Resolve(context.Background(), o.URL+"/len/master.m3u8", SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range src.Segments {
		got = append(got, fmt.Sprintf("%s %v", s.URL.Path, s.Duration))
	}
	if want := "[/demo/240p/seg_000.ts 4s /demo/240p/seg_001.ts 4s /demo/240p/seg_002.ts 4s]"; fmt.Sprint(got) != want {
		t.Errorf("segments %v, want %s", got, want)
	}
	if v := fmt.Sprintf("%+v", src.Variant); v != "{Bandwidth:400000 Width:426 Height:240 Codecs:[avc1.640015 mp4a.40.2] FrameRate:0}" {
		t.Errorf("variant %s", v)
	}
}

// FuzzNormalize: normalising is idempotent, never grows the playlist by
// more than a byte, and keeps every quoted string and URI line.
func FuzzNormalize(f *testing.F) {
	f.Add([]byte(canonicalMaster))
	f.Add([]byte(canonicalMedia))
	for _, sp := range spellings {
		f.Add([]byte(sp.rewrite(canonicalMaster)))
		f.Add([]byte(sp.rewrite(canonicalMedia)))
	}
	f.Add([]byte("#EXTM3U\n#EXT-X-KEY: URI = \"a \" b\" , c \n\t#EXT\"X: \" , \n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := normalizePlaylist(data)
		if len(n) > len(data)+1 {
			t.Fatalf("grew from %d to %d bytes", len(data), len(n))
		}
		if n2 := normalizePlaylist(n); string(n2) != string(n) {
			t.Fatalf("not idempotent: %q → %q", n, n2)
		}
		if len(n) > 0 && (n[len(n)-1] != '\n' || strings.Contains(string(n), "\n\n") || strings.ContainsRune(string(n), '\r') || n[0] == '\n') {
			t.Fatalf("bad line ends: %q", n)
		}
		in, out := fuzzLines(strings.TrimPrefix(string(data), "\xef\xbb\xbf")), fuzzLines(string(n))
		if !slices.Equal(in.uris, out.uris) {
			t.Fatalf("URI lines changed: %q → %q", in.uris, out.uris)
		}
		slices.Sort(in.quoted)
		slices.Sort(out.quoted)
		if !slices.Equal(in.quoted, out.quoted) {
			t.Fatalf("quoted strings changed: %q → %q", in.quoted, out.quoted)
		}
	})
}

type lineFacts struct{ uris, quoted []string }

// fuzzLines lists the URI lines (less trailing whitespace) and the quoted
// strings of "#EXT" lines of a playlist, line ends being LF, CRLF or CR.
func fuzzLines(s string) lineFacts {
	var f lineFacts
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		l = strings.TrimRight(l, " \t")
		switch t := strings.TrimLeft(l, " \t"); {
		case t == "":
		case t[0] != '#':
			f.uris = append(f.uris, l)
		case strings.HasPrefix(t, "#EXT"):
			parts := strings.Split(t, "\"")
			for i := 1; i+1 < len(parts); i += 2 {
				f.quoted = append(f.quoted, parts[i])
			}
		}
	}
	return f
}
