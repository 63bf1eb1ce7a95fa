package hls

import (
	"bytes"
	"strings"
)

// normalizePlaylist rewrites a playlist into the strict RFC 8216 spelling
// gohlslib's parser expects, accepting what players (hls.js, AVPlayer,
// ffmpeg) accept. gohlslib is strict: "#EXT-X-VERSION: 10", "#EXTINF: 6,",
// "BANDWIDTH=1000 ,RESOLUTION=…", a blank line after EXT-X-STREAM-INF or a
// trailing space after "#EXT-X-ENDLIST" are parse errors or silent misreads
// there, yet players read them. parsePlaylist runs it once, and both the parser
// and scanTags read its output, so they still agree on the segments.
//
// What it does, never touching bytes between a pair of double quotes:
//   - drops a leading UTF-8 BOM; ends every line, the last included, with
//     "\n" (CRLF and a lone CR end lines too);
//   - trims trailing spaces and tabs from every line, and leading ones from
//     lines that then start with '#'; drops blank lines;
//   - in "#EXT" tags, drops whitespace after the tag's colon and around the
//     separators of attribute lists ('=' and ','), of EXTINF's duration and
//     of EXT-X-BYTERANGE's '@';
//   - moves an EXT-X-STREAM-INF tag past comment or tag lines between it and
//     its URI line, which players skip (gohlslib takes the next line).
//
// URI lines keep their bytes but for trailing whitespace. The result is
// never longer than data plus one byte, so size limits still hold.
func normalizePlaylist(data []byte) []byte {
	s := string(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
	out := make([]byte, 0, len(s)+1)
	emit := func(line string) {
		out = append(out, line...)
		out = append(out, '\n')
	}
	// An EXT-X-STREAM-INF waits for its URI line, with the lines in between;
	// without a URI line, all keep their order for the parser to refuse.
	var streamInf string
	var between []string
	flush := func() {
		if streamInf != "" {
			emit(streamInf)
		}
		for _, l := range between {
			emit(l)
		}
		streamInf, between = "", nil
	}
	for s != "" {
		line := s
		s = ""
		if i := strings.IndexAny(line, "\r\n"); i >= 0 {
			if line[i] == '\r' && i+1 < len(line) && line[i+1] == '\n' {
				line, s = line[:i], line[i+2:]
			} else {
				line, s = line[:i], line[i+1:]
			}
		}
		line = strings.TrimRight(line, " \t")
		t := strings.TrimLeft(line, " \t")
		switch {
		case t == "":
		case t[0] == '#':
			if strings.HasPrefix(t, "#EXT") {
				t = normalizeTag(t)
			}
			if strings.HasPrefix(t, "#EXT-X-STREAM-INF:") {
				flush()
				streamInf = t
			} else if streamInf != "" {
				between = append(between, t)
			} else {
				emit(t)
			}
		default: // a URI line
			for _, l := range between {
				emit(l)
			}
			if streamInf != "" {
				emit(streamInf)
			}
			streamInf, between = "", nil
			emit(line)
		}
	}
	flush()
	return out
}

// attrListTags are the tags whose value is an attribute list (RFC 8216 and
// its successor draft).
var attrListTags = map[string]bool{
	"#EXT-X-STREAM-INF": true, "#EXT-X-I-FRAME-STREAM-INF": true, "#EXT-X-MEDIA": true,
	"#EXT-X-KEY": true, "#EXT-X-SESSION-KEY": true, "#EXT-X-MAP": true, "#EXT-X-START": true,
	"#EXT-X-SESSION-DATA": true, "#EXT-X-DATERANGE": true, "#EXT-X-SERVER-CONTROL": true,
	"#EXT-X-PART-INF": true, "#EXT-X-PART": true, "#EXT-X-PRELOAD-HINT": true,
	"#EXT-X-RENDITION-REPORT": true, "#EXT-X-SKIP": true, "#EXT-X-CONTENT-STEERING": true,
	"#EXT-X-DEFINE": true,
}

// normalizeTag tidies the whitespace of one "#EXT…" tag line, already trimmed.
func normalizeTag(line string) string {
	name, value, ok := strings.Cut(line, ":")
	if !ok || strings.IndexByte(name, '"') >= 0 {
		return line
	}
	value = strings.TrimLeft(value, " \t")
	switch {
	case attrListTags[name]:
		value = squeeze(value, "=,", false)
	case name == "#EXTINF":
		value = squeeze(value, ",", true) // the title after the comma is free text
	case name == "#EXT-X-BYTERANGE":
		value = squeeze(value, "@", false)
	}
	if len(name)+1+len(value) == len(line) {
		return line // unchanged: no allocation
	}
	return name + ":" + value
}

// squeeze drops the spaces and tabs outside double quotes that touch one of
// the separator bytes in seps. With first, it stops after the first
// separator outside quotes.
func squeeze(v, seps string, first bool) string {
	if !strings.ContainsAny(v, " \t") {
		return v
	}
	isSep := func(c byte) bool { return strings.IndexByte(seps, c) >= 0 }
	b := make([]byte, 0, len(v))
	quoted := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == ' ' || c == '\t':
			j := i
			for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
				j++
			}
			if len(b) > 0 && isSep(b[len(b)-1]) || j == len(v) || isSep(v[j]) {
				i = j - 1 // drop the run
				continue
			}
		case first && isSep(c):
			return string(append(append(b, c), v[i+1:]...))
		}
		b = append(b, c)
	}
	return string(b)
}

// iFramesOnly tells whether the normalised playlist data is a media playlist
// with EXT-X-I-FRAMES-ONLY: a trick-play index whose "segments" are byte
// ranges of single I-frames, which gohlslib reads as a video. Like gohlslib,
// it takes a playlist for a multivariant one when an EXT-X-STREAM-INF comes
// before the first EXTINF.
func iFramesOnly(data []byte) bool {
	if !bytes.Contains(data, []byte("\n#EXT-X-I-FRAMES-ONLY\n")) {
		return false
	}
	inf := bytes.Index(data, []byte("\n#EXTINF:"))
	si := bytes.Index(data, []byte("\n#EXT-X-STREAM-INF:"))
	return si < 0 || inf >= 0 && inf < si
}
