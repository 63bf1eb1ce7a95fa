package packager

import (
	"strings"

	"github.com/stream-downloads/caddy-stream-downloads/packager/hls"
)

// The languages option (docs/spec.md §2): the alternative audio renditions and the
// subtitle renditions kept are those of the languages listed; the audio the variant
// plays by default is always kept (a video needs its sound).

// LanguageKept says whether a rendition of language tag (as the playlist writes it) is
// kept by the list langs (nil: all): a listed tag matches itself and the tags it is a
// prefix of ("en" keeps "en-GB"; "pt-BR" only "pt-BR"), without regard to case. A
// rendition without a language is kept only when nothing is listed.
func LanguageKept(langs []string, tag string) bool {
	if len(langs) == 0 {
		return true
	}
	tag = strings.ToLower(tag)
	for _, l := range langs {
		l = strings.ToLower(l)
		if tag == l || strings.HasPrefix(tag, l+"-") {
			return true
		}
	}
	return false
}

// keepLanguages is src without the alternative audio and subtitle renditions that
// langs does not keep; src itself is not changed.
func keepLanguages(src *hls.Source, langs []string) *hls.Source {
	if len(langs) == 0 || src == nil {
		return src
	}
	out := *src
	out.AltAudio, out.Subtitles = nil, nil
	for _, a := range src.AltAudio {
		if LanguageKept(langs, a.Media.Language) {
			out.AltAudio = append(out.AltAudio, a)
		}
	}
	for _, s := range src.Subtitles {
		if LanguageKept(langs, s.Media.Language) {
			out.Subtitles = append(out.Subtitles, s)
		}
	}
	return &out
}
