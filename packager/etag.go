package packager

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/url"

	"github.com/stream-downloads/caddy-stream-downloads/packager/hls"
)

// fileETag is the strong ETag of a download's file, known before its media are fetched
// (docs/instant.md, "ETag"): SHA-256, cut to 128 bits, of the file's header (ftyp and
// moov: every sample's size, duration and place, so the layout of the media) and of
// the identity of each source resource the media came from, in the order the
// renditions list them: its URL without query (a signed URL's token changes, not the
// file), its byte range, and the validator the origin gave (Validators: strong ETag,
// else Last-Modified and length). The job that packages the file and a server that
// sends it from the segments' heads compute the same one; the same source packaged
// again gets it again, a changed source another one (without validators, only when
// its timing or sizes change).
func fileETag(header io.Reader, rs []*rendition, src *hls.Source, typ Type, v *hls.Validators) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, header); err != nil {
		return "", err
	}
	lists := make([][]hls.Segment, 0, len(rs)+len(src.Subtitles))
	for _, r := range rs {
		lists = append(lists, r.segs)
	}
	if !typ.AudioOnly() { // the subtitles the file takes (readSubtitles)
		for _, s := range src.Subtitles {
			lists = append(lists, s.Segments)
		}
	}
	for _, segs := range lists {
		var m *hls.Map
		for _, s := range segs {
			if s.Map != nil && s.Map != m {
				m = s.Map
				identity(h, "map", s.Map.URL, s.Map.Range, v)
			}
			identity(h, "seg", s.URL, s.Range, v)
		}
	}
	return `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`, nil
}

// identity writes one source resource's identity line into h.
func identity(h hash.Hash, kind string, u *url.URL, rng *hls.ByteRange, v *hls.Validators) {
	r := "-"
	if rng != nil {
		r = fmt.Sprintf("%d@%d", rng.Length, rng.Offset)
	}
	fmt.Fprintf(h, "\n%s %s %s %s", kind, hls.RedactURL(u), r, v.Of(u))
}
