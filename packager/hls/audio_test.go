package hls

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

// TestAudioRenditions: the variant's AUDIO group gives the audio it plays (the DEFAULT
// rendition, else the first) and the alternatives with their own URI, in playlist order.
func TestAudioRenditions(t *testing.T) {
	const head = "#EXTM3U\n#EXT-X-VERSION:6\n"
	const variant = "#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,AUDIO=\"aud\"\nv.m3u8\n"
	media := func(name, lang string, def bool, uri string) string {
		l := fmt.Sprintf("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=%q,LANGUAGE=%q,DEFAULT=%s", name, lang, map[bool]string{true: "YES", false: "NO"}[def])
		if uri != "" {
			l += fmt.Sprintf(",URI=%q", uri)
		}
		return l + "\n"
	}
	cases := []struct {
		name string
		tags string
		want string // main's name and URI, then the alternatives' names
	}{
		{"none", "", "-"},
		{"default second", media("English", "en", false, "en.m3u8") + media("Français", "fr", true, "fr.m3u8") + media("Deutsch", "de", false, "de.m3u8"),
			"Français fr.m3u8 | English Deutsch"},
		{"no default", media("English", "en", false, "en.m3u8") + media("Español", "es", false, "es.m3u8"), "English en.m3u8 | Español"},
		{"muxed default", media("Main", "en", true, "") + media("Commentary", "en", false, "c.m3u8"), "Main - | Commentary"},
		{"muxed not default", media("Main", "en", false, "") + media("Dub", "it", true, "it.m3u8"), "Dub it.m3u8 |"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pl, _, err := parsePlaylist(mustURL("http://o/m.m3u8"), []byte(head+c.tags+variant))
			if err != nil {
				t.Fatal(err)
			}
			mv := pl.(*playlist.Multivariant)
			main, alts := audioRenditions(mv, mv.Variants[0])
			got := "-"
			if main != nil {
				uri := "-"
				if hasURI(main) {
					uri = *main.URI
				}
				var names []string
				for _, a := range alts {
					names = append(names, a.Name)
				}
				got = strings.TrimSpace(main.Name + " " + uri + " | " + strings.Join(names, " "))
			}
			if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestChaptersURI(t *testing.T) {
	const sd = "#EXT-X-SESSION-DATA:"
	for _, c := range []struct{ data, lang, want string }{
		{"#EXTM3U\n", "en", ""},
		{sd + `DATA-ID="com.example.title",VALUE="x"` + "\n", "", ""},
		{sd + `DATA-ID="com.apple.hls.chapters",URI="c.json"` + "\n", "", "c.json"},
		{sd + `DATA-ID="com.apple.hls.chapters",URI="en.json",LANGUAGE="en"` + "\n" + sd + `DATA-ID="com.apple.hls.chapters",URI="fr.json",LANGUAGE="fr"` + "\n", "fr", "fr.json"},
		{sd + `DATA-ID="com.apple.hls.chapters",URI="en.json",LANGUAGE="en"` + "\n" + sd + `DATA-ID="com.apple.hls.chapters",URI="fr.json",LANGUAGE="fr"` + "\n", "de", "en.json"},
		{sd + `DATA-ID="com.apple.hls.chapters"` + "\n", "", ""},
		{sd + `garbage` + "\n", "", ""},
	} {
		if got := chaptersURI([]byte(c.data), c.lang); got != c.want {
			t.Errorf("chaptersURI(%q, %q) = %q, want %q", c.data, c.lang, got, c.want)
		}
	}
}
