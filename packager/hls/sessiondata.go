package hls

import (
	"bytes"
	"context"
	"net/url"
	"strings"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist/primitives"
)

// Chapters: Apple's HLS chapters, a JSON document a multivariant playlist points to
// with EXT-X-SESSION-DATA:DATA-ID="com.apple.hls.chapters",URI="…". Resolve fetches it
// (Source.Chapters); the packager reads it (packager/chapters).

// chaptersID is the DATA-ID of Apple's chapters.
const chaptersID = "com.apple.hls.chapters"

// MaxChaptersSize bounds the chapters document.
const MaxChaptersSize = 1 << 20

// chaptersURI is the URI of the chapters document data (a multivariant playlist,
// normalised) points to: the first EXT-X-SESSION-DATA of chaptersID whose LANGUAGE is
// lang, else the first one; "" when there is none.
func chaptersURI(data []byte, lang string) string {
	first := ""
	for _, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, "#EXT-X-SESSION-DATA:")
		if !ok {
			continue
		}
		var a primitives.Attributes
		if err := a.Unmarshal(rest); err != nil || a["DATA-ID"] != chaptersID || a["URI"] == "" {
			continue
		}
		if lang != "" && strings.EqualFold(a["LANGUAGE"], lang) {
			return a["URI"]
		}
		if first == "" {
			first = a["URI"]
		}
	}
	return first
}

// fetchChapters fetches the chapters document uri (relative to base) points to. A
// failure is returned as it is: chapters are not the video, the caller notes it.
func (c *Client) fetchChapters(ctx context.Context, base *url.URL, uri string, sc *scope) ([]byte, error) {
	u, err := sc.resolve(base, uri, "chapters URI")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := c.get(ctx, u, sc.hosts, &buf, sizeLimit{n: MaxChaptersSize, what: "a chapters document"}); err != nil {
		return nil, err
	}
	return bytes.Clone(buf.Bytes()), nil
}
