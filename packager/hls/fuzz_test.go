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
	// Byte ranges (omitted offsets), several maps and keys, gaps, DRM.
	f.Add([]byte(mediaHead+"#EXT-X-MAP:URI=\"a.mp4\",BYTERANGE=\"700@0\"\n#EXTINF:1,\n#EXT-X-BYTERANGE:100@700\na.mp4\n#EXTINF:1,\n#EXT-X-BYTERANGE:200\na.mp4\n#EXT-X-ENDLIST\n"), 0)
	f.Add([]byte(mediaHead+"#EXT-X-MEDIA-SEQUENCE:5\n#EXT-X-KEY:METHOD=AES-128,URI=\"k1\",IV=0x0000000000000001\n#EXT-X-MAP:URI=\"i1.mp4\"\n#EXTINF:2,\na.m4s\n#EXT-X-GAP\n#EXT-X-DISCONTINUITY\n#EXTINF:2,\nb.m4s\n"+
		"#EXT-X-KEY:METHOD=NONE\n#EXT-X-MAP:URI=\"i2.mp4\"\n#EXTINF:2,\nc.m4s\n#EXT-X-KEY:METHOD=AES-128,URI=\"data:text/plain;base64,AAECAwQFBgcICQoLDA0ODw==\"\n#EXTINF:2,\nd.m4s\n#EXT-X-ENDLIST\n"), 0)
	f.Add([]byte(mediaHead+"#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://x\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI=\"data:x\"\n#EXTINF:2,\na.ts\n#EXT-X-ENDLIST\n"), 0)
	f.Add([]byte(mediaHead+"#EXT-X-KEY:METHOD=AES-256,URI=\"k\"\n#EXTINF:2,\n#EXT-X-BYTERANGE:5\na.ts\n#EXTINF:2,\n#EXT-X-GAP\nb.ts\n#EXT-X-ENDLIST\n"), 0)
	// Lenient spellings (normalizePlaylist) and an I-frames-only playlist.
	for _, sp := range spellings {
		f.Add([]byte(sp.rewrite(canonicalMaster)), 0)
		f.Add([]byte(sp.rewrite(canonicalMedia)), 0)
	}
	f.Add([]byte(iFramesMedia), 0)

	base := mustURL("http://u:p@origin.example/v/master.m3u8?tok=1")
	f.Fuzz(func(t *testing.T, data []byte, maxHeight int) {
		pl, tags, err := parsePlaylist(base, data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) || strings.Contains(err.Error(), "\n") {
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
			main, alts := audioRenditions(pl, v)
			if main != nil && hasURI(main) {
				_, _ = resolveURI(base, *main.URI)
			}
			for _, r := range alts {
				_, _ = resolveURI(base, *r.URI)
			}
		case *playlist.Media:
			sc := &scope{keys: keyCache{}, hosts: newHostPolicy(base, []string{"*.example.com"})}
			src, err := mediaSource(base, pl, tags, sc)
			if err != nil {
				if strings.Contains(err.Error(), "segments parsed but") {
					t.Fatalf("scanTags and the parser disagree: %q", err)
				}
				if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrLive) && !errors.Is(err, ErrUnsupported) &&
					!errors.Is(err, ErrForbiddenHost) && !errors.Is(err, ErrLimit) {
					t.Fatalf("unexpected error kind %q", err)
				}
				if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "u:p@") || strings.Contains(err.Error(), "tok=1") {
					t.Fatalf("error %q spans lines or leaks credentials", err)
				}
				return
			}
			var end time.Duration
			for i, s := range src.Segments {
				if s.Duration <= 0 || !s.URL.IsAbs() || s.URL.Host == "" || s.Start < end || !sc.hosts.allows(s.URL) {
					t.Fatalf("bad segment %d %+v", i, s)
				}
				if s.Range != nil && (s.Range.Offset < 0 || s.Range.Length <= 0) {
					t.Fatalf("bad range %+v", *s.Range)
				}
				if s.Map != nil && (!s.Map.URL.IsAbs() || !sc.hosts.allows(s.Map.URL) || s.Map.Range != nil && s.Map.Range.Length <= 0) {
					t.Fatalf("bad map %+v", *s.Map)
				}
				if s.Key != nil && (s.Key.URL == nil && s.Key.bytes.data == nil || s.Key.URL != nil && !sc.hosts.allows(s.Key.URL)) {
					t.Fatalf("key without URL or bytes")
				}
				if i > 0 && s.Sequence <= src.Segments[i-1].Sequence {
					t.Fatalf("sequence numbers not increasing")
				}
				end = s.Start + s.Duration
			}
			if len(src.Segments) == 0 || end > src.Duration || len(pl.Segments) == len(src.Segments) && end != src.Duration {
				t.Fatalf("%d segments, duration %v, end %v", len(src.Segments), src.Duration, end)
			}
		default:
			t.Fatalf("unexpected playlist type %T", pl)
		}
	})
}
