package hls

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

func TestChooseVariantHeight(t *testing.T) {
	t.Parallel()
	// variants is a ladder in the order a master playlist lists it: "name BANDWIDTH
	// [WxH]", the name being the URI.
	master := func(variants ...string) *playlist.Multivariant {
		var b strings.Builder
		b.WriteString("#EXTM3U\n")
		for _, v := range variants {
			f := strings.Fields(v)
			fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%s", f[1])
			if len(f) > 2 {
				b.WriteString(",RESOLUTION=" + f[2])
			}
			b.WriteString("\n" + f[0] + "\n")
		}
		pl, _, err := parsePlaylist(mustURL("http://origin.example/v/master.m3u8"), []byte(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		return pl.(*playlist.Multivariant)
	}
	ladder := master("1080 5000000 1920x1080", "720 3000000 1280x720", "720lo 2000000 1280x720", "480 1000000 854x480", "audio 100000")
	portrait := master("tall 3000000 1080x1920", "short 800000 720x1280")
	noRes := master("a 3000000", "b 1000000")
	for _, tc := range []struct {
		name    string
		mv      *playlist.Multivariant
		opt     SelectOptions
		want    string // the URI chosen; "" for NoRenditionError
		heights []int  // of the NoRenditionError
	}{
		{"exact", ladder, SelectOptions{Height: 1080}, "1080", nil},
		{"exact, highest bandwidth of the height", ladder, SelectOptions{Height: 720}, "720", nil},
		{"nearest below", ladder, SelectOptions{Height: 1000}, "720", nil},
		{"nearest below the middle", ladder, SelectOptions{Height: 719}, "480", nil},
		{"above all takes the tallest", ladder, SelectOptions{Height: 4320}, "1080", nil},
		{"lowest", ladder, SelectOptions{Height: 480}, "480", nil},
		{"below all", ladder, SelectOptions{Height: 479}, "", []int{480, 720, 1080}},
		{"max_height does not bound a height", ladder, SelectOptions{Height: 1080, MaxHeight: 480}, "1080", nil},
		{"without height: highest bandwidth", ladder, SelectOptions{}, "1080", nil},
		{"without height: within max_height", ladder, SelectOptions{MaxHeight: 720}, "720", nil},
		{"portrait by height", portrait, SelectOptions{Height: 1500}, "short", nil},
		{"no resolution", noRes, SelectOptions{Height: 720}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, info, err := chooseVariant(mustURL("http://origin.example/v/master.m3u8"), tc.mv, tc.opt)
			if tc.want == "" {
				var nr *NoRenditionError
				if !errors.As(err, &nr) || !errors.Is(err, ErrNoRendition) || !errors.Is(err, ErrNotFound) ||
					nr.Height != tc.opt.Height || fmt.Sprint(nr.Heights) != fmt.Sprint(tc.heights) {
					t.Fatalf("err = %v (%#v), want a NoRenditionError for %d with heights %v", err, err, tc.opt.Height, tc.heights)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.URI != tc.want {
				t.Errorf("chose %s (%+v), want %s", v.URI, info, tc.want)
			}
		})
	}
}

func TestNoRenditionError(t *testing.T) {
	for _, tc := range []struct {
		err  NoRenditionError
		want string
	}{
		{NoRenditionError{Height: 100, Heights: []int{144, 240, 360}}, "the stream has no rendition of 100p or lower (it has 144p, 240p, 360p)"},
		{NoRenditionError{Height: 720}, "the stream has no rendition of 720p or lower: its playlists give no resolution"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.err, got, tc.want)
		}
	}
}
