package hls

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

// FuzzResolve feeds arbitrary playlist bytes through everything Resolve does
// after a fetch: parsing, variant choice, URI resolution and the media
// playlist checks. It must never panic, and what it accepts must be sane.
func FuzzResolve(f *testing.F) {
	for _, p := range []string{"demo/master.m3u8", "demo/144p/index.m3u8", "demo/240p/index.m3u8"} {
		b, err := os.ReadFile(filepath.Join(fixtureDir, p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, 0)
		f.Add(b, 144)
	}
	f.Add([]byte(mediaHead+"#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0x01\n#EXTINF:4,\na.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:4,\n#EXT-X-BYTERANGE:10@5\nb.ts\n#EXT-X-ENDLIST\n"), 0)
	f.Add([]byte("#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"x\",DEFAULT=YES,URI=\"a.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=5,RESOLUTION=1x1,AUDIO=\"a\",FRAME-RATE=30\nv.m3u8\n"), 1)
	f.Add([]byte(mediaHead+"#EXT-X-MAP:URI=\"i.mp4\"\n#EXTINF:1e300,\n//evil/x\n"), 0)

	base := mustURL("http://u:p@origin.example/v/master.m3u8?tok=1")
	f.Fuzz(func(t *testing.T, data []byte, maxHeight int) {
		pl, err := parsePlaylist(base, data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("bad parse error %q", err)
			}
			return
		}
		switch pl := pl.(type) {
		case *playlist.Multivariant:
			v, _, err := chooseVariant(base, pl, SelectOptions{MaxHeight: maxHeight})
			if err != nil {
				return
			}
			_, _ = resolveURI(base, v.URI)
			if r := audioRendition(pl, v); r != nil {
				_, _ = resolveURI(base, *r.URI)
			}
		case *playlist.Media:
			src, err := mediaSource(base, pl)
			if err != nil {
				if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrLive) && !errors.Is(err, ErrUnsupported) {
					t.Fatalf("unexpected error kind %q", err)
				}
				if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "u:p@") || strings.Contains(err.Error(), "tok=1") {
					t.Fatalf("error %q spans lines or leaks credentials", err)
				}
				return
			}
			var sum time.Duration
			for _, s := range src.Segments {
				if s.Duration <= 0 || !s.URL.IsAbs() || s.URL.Host == "" {
					t.Fatalf("bad segment %+v", s)
				}
				sum += s.Duration
			}
			if len(src.Segments) == 0 || sum != src.Duration {
				t.Fatalf("%d segments, duration %v, sum %v", len(src.Segments), src.Duration, sum)
			}
		default:
			t.Fatalf("unexpected playlist type %T", pl)
		}
	})
}
