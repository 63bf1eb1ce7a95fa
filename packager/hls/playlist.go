package hls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

// Source is a resolved VOD media playlist.
type Source struct {
	// URL is the media playlist's URL (after redirects). It may carry
	// credentials: show it to users through RedactURL.
	URL *url.URL
	// Segments lists the media segments in playback order; never empty.
	Segments []Segment
	// Duration is the sum of the segments' EXTINF durations.
	Duration time.Duration
	// TargetDuration is the playlist's EXT-X-TARGETDURATION.
	TargetDuration time.Duration
	// Variant describes the variant chosen from a multivariant playlist; it
	// is the zero value when the URL given to Resolve was a media playlist.
	Variant VariantInfo
	// Audio is the media playlist of the chosen variant's audio rendition
	// (the DEFAULT one of its EXT-X-MEDIA AUDIO group, else the first) when
	// that rendition has its own URI, i.e. the audio is not muxed into the
	// variant's segments. nil otherwise. Its Variant is the zero value.
	Audio *Source
}

// Segment is one media segment of a Source.
type Segment struct {
	// URL is the segment's absolute URL.
	URL *url.URL
	// Duration is the segment's EXTINF duration.
	Duration time.Duration
	// Sequence is the segment's media sequence number
	// (EXT-X-MEDIA-SEQUENCE plus its index).
	Sequence int
	// Discontinuity is set when an EXT-X-DISCONTINUITY precedes the segment:
	// timestamps and codec parameters may change from here on.
	Discontinuity bool
}

// VariantInfo describes a variant (EXT-X-STREAM-INF) of a multivariant playlist.
type VariantInfo struct {
	// Bandwidth is the BANDWIDTH attribute, in bits per second.
	Bandwidth int
	// Width and Height come from RESOLUTION; 0 when it is absent.
	Width, Height int
	// Codecs lists the CODECS attribute's entries, e.g. "avc1.640015".
	Codecs []string
	// FrameRate is the FRAME-RATE attribute; 0 when it is absent.
	FrameRate float64
}

// SelectOptions steers the choice of a variant in a multivariant playlist.
type SelectOptions struct {
	// MaxHeight, when positive, excludes variants taller than it. If every
	// variant is taller, the shortest one is taken. Variants without a
	// RESOLUTION are never excluded.
	MaxHeight int
}

// maxTotalDuration bounds the sum of EXTINF values (and so rejects absurd ones).
const maxTotalDuration = 100_000 * time.Hour

// Resolve fetches the playlist at playlistURL. For a multivariant playlist it
// chooses the variant with the highest BANDWIDTH (ties: the larger
// resolution; within opt.MaxHeight when set and possible), then fetches that
// variant's media playlist (and its separate audio rendition, if any).
// Relative URIs resolve against the URL each playlist was finally served
// from, after redirects.
//
// Errors: an *OriginError wrapping ErrNotFound when the origin answers 404
// or 410 for playlistURL; an *OriginError for other failed requests;
// ErrLive when a media playlist has no EXT-X-ENDLIST (a playlist with
// EXT-X-PLAYLIST-TYPE:VOD is accepted without it, as it cannot change);
// ErrMalformed and ErrUnsupported wrapped with the reason.
func (c *Client) Resolve(ctx context.Context, playlistURL string, opt SelectOptions) (*Source, error) {
	u, err := url.Parse(strings.TrimSpace(playlistURL))
	if err != nil {
		return nil, fmt.Errorf("invalid origin URL %s", redactString(playlistURL))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("origin URL %s must be an absolute http or https URL", RedactURL(u))
	}
	u.Fragment, u.RawFragment = "", ""

	var buf bytes.Buffer
	final, err := c.get(ctx, u, &buf, MaxPlaylistSize)
	if err != nil {
		var oe *OriginError
		if errors.As(err, &oe) && (oe.Status == http.StatusNotFound || oe.Status == http.StatusGone) {
			oe.Err = ErrNotFound
		}
		return nil, err
	}
	pl, err := parsePlaylist(final, buf.Bytes())
	if err != nil {
		return nil, err
	}
	switch pl := pl.(type) {
	case *playlist.Media:
		return mediaSource(final, pl)
	case *playlist.Multivariant:
		v, info, err := chooseVariant(final, pl, opt)
		if err != nil {
			return nil, err
		}
		src, err := c.resolveMedia(ctx, final, v.URI, "variant")
		if err != nil {
			return nil, err
		}
		src.Variant = info
		if r := audioRendition(pl, v); r != nil {
			src.Audio, err = c.resolveMedia(ctx, final, *r.URI, "audio rendition")
			if err != nil {
				return nil, err
			}
		}
		return src, nil
	}
	return nil, fmt.Errorf("%w %s: unknown playlist type", ErrMalformed, RedactURL(final))
}

// resolveMedia fetches and parses the media playlist uri found in the
// multivariant playlist at base.
func (c *Client) resolveMedia(ctx context.Context, base *url.URL, uri, what string) (*Source, error) {
	u, err := resolveURI(base, uri)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %s URI: %v", ErrMalformed, RedactURL(base), what, err)
	}
	var buf bytes.Buffer
	final, err := c.get(ctx, u, &buf, MaxPlaylistSize)
	if err != nil {
		return nil, err
	}
	pl, err := parsePlaylist(final, buf.Bytes())
	if err != nil {
		return nil, err
	}
	m, ok := pl.(*playlist.Media)
	if !ok {
		return nil, fmt.Errorf("%w %s: the %s is a multivariant playlist, expected a media playlist", ErrMalformed, RedactURL(final), what)
	}
	return mediaSource(final, m)
}

// parsePlaylist decodes data, served from u, into a *playlist.Media or a
// *playlist.Multivariant.
func parsePlaylist(u *url.URL, data []byte) (pl playlist.Playlist, err error) {
	malformed := func(reason string) error {
		return fmt.Errorf("%w %s: %s", ErrMalformed, RedactURL(u), reason)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 BOM
	if !bytes.HasPrefix(data, []byte("#EXTM3U")) {
		return nil, malformed("not an HLS playlist (no #EXTM3U header)")
	}
	if !bytes.Contains(data, []byte("\n#EXTINF:")) && !bytes.Contains(data, []byte("\n#EXT-X-STREAM-INF:")) {
		return nil, malformed("no segments (#EXTINF) or variants (#EXT-X-STREAM-INF) found")
	}
	// The parser wants every line, including the last, to end in a newline.
	if data[len(data)-1] != '\n' {
		data = append(data[:len(data):len(data)], '\n')
	}
	defer func() {
		if r := recover(); r != nil {
			pl, err = nil, malformed(fmt.Sprintf("parser failed: %v", r))
		}
	}()
	pl, err = playlist.Unmarshal(data)
	if err != nil {
		return nil, malformed(oneLine(err.Error()))
	}
	return pl, nil
}

// chooseVariant picks the variant of mv to download.
func chooseVariant(base *url.URL, mv *playlist.Multivariant, opt SelectOptions) (*playlist.MultivariantVariant, VariantInfo, error) {
	type cand struct {
		v    *playlist.MultivariantVariant
		info VariantInfo
	}
	var all, fit []cand
	for _, v := range mv.Variants {
		if v == nil {
			continue
		}
		c := cand{v: v, info: variantInfo(v)}
		all = append(all, c)
		if opt.MaxHeight <= 0 || c.info.Height == 0 || c.info.Height <= opt.MaxHeight {
			fit = append(fit, c)
		}
	}
	if len(all) == 0 {
		return nil, VariantInfo{}, fmt.Errorf("%w %s: no variants found", ErrMalformed, RedactURL(base))
	}
	better := func(a, b VariantInfo) bool { // a better than b
		if a.Bandwidth != b.Bandwidth {
			return a.Bandwidth > b.Bandwidth
		}
		return a.Width*a.Height > b.Width*b.Height
	}
	if len(fit) == 0 {
		// Everything is taller than MaxHeight: take the shortest.
		best := all[0]
		for _, c := range all[1:] {
			if c.info.Height < best.info.Height || (c.info.Height == best.info.Height && better(c.info, best.info)) {
				best = c
			}
		}
		return best.v, best.info, nil
	}
	best := fit[0]
	for _, c := range fit[1:] {
		if better(c.info, best.info) {
			best = c
		}
	}
	return best.v, best.info, nil
}

func variantInfo(v *playlist.MultivariantVariant) VariantInfo {
	info := VariantInfo{Bandwidth: v.Bandwidth}
	if w, h, ok := strings.Cut(v.Resolution, "x"); ok {
		wi, err1 := strconv.Atoi(strings.TrimSpace(w))
		hi, err2 := strconv.Atoi(strings.TrimSpace(h))
		if err1 == nil && err2 == nil && wi > 0 && hi > 0 && wi < 1<<20 && hi < 1<<20 {
			info.Width, info.Height = wi, hi
		}
	}
	for _, c := range v.Codecs {
		if c = strings.TrimSpace(c); c != "" {
			info.Codecs = append(info.Codecs, c)
		}
	}
	if v.FrameRate != nil && *v.FrameRate > 0 && !math.IsInf(*v.FrameRate, 0) {
		info.FrameRate = *v.FrameRate
	}
	return info
}

// audioRendition returns the EXT-X-MEDIA audio rendition of v's AUDIO group
// that has its own URI: the DEFAULT one, else the first. nil when the
// variant's audio is muxed into its segments.
func audioRendition(mv *playlist.Multivariant, v *playlist.MultivariantVariant) *playlist.MultivariantRendition {
	if v.Audio == "" {
		return nil
	}
	var first *playlist.MultivariantRendition
	for _, r := range mv.Renditions {
		if r == nil || r.Type != playlist.MultivariantRenditionTypeAudio || r.GroupID != v.Audio {
			continue
		}
		if r.URI == nil || strings.TrimSpace(*r.URI) == "" {
			// A rendition without URI is the audio muxed in the variant.
			if r.Default {
				return nil
			}
			continue
		}
		if r.Default {
			return r
		}
		if first == nil {
			first = r
		}
	}
	return first
}

// mediaSource turns a parsed media playlist, served from u, into a Source.
func mediaSource(u *url.URL, m *playlist.Media) (*Source, error) {
	loc := RedactURL(u)
	if !m.Endlist && (m.PlaylistType == nil || *m.PlaylistType != playlist.MediaPlaylistTypeVOD) {
		return nil, fmt.Errorf("%w: playlist %s has no EXT-X-ENDLIST, so the stream is still going on; only finished (VOD) streams can be downloaded", ErrLive, loc)
	}
	unsupported := func(what string) error {
		return fmt.Errorf("%w: %s are not supported yet (playlist %s)", ErrUnsupported, what, loc)
	}
	if m.Map != nil {
		return nil, unsupported("fMP4/CMAF segments (EXT-X-MAP)")
	}
	src := &Source{
		URL:            u,
		Segments:       make([]Segment, 0, len(m.Segments)),
		TargetDuration: time.Duration(m.TargetDuration) * time.Second,
	}
	for i, s := range m.Segments {
		if s == nil {
			continue
		}
		if s.Key != nil && s.Key.Method != playlist.MediaKeyMethodNone {
			return nil, unsupported("encrypted segments (EXT-X-KEY METHOD=" + string(s.Key.Method) + ")")
		}
		if s.ByteRangeLength != nil {
			return nil, unsupported("byte-range segments (EXT-X-BYTERANGE)")
		}
		if s.Gap {
			return nil, unsupported("gap segments (EXT-X-GAP)")
		}
		if s.Duration <= 0 || s.Duration > maxTotalDuration {
			return nil, fmt.Errorf("%w %s: segment %d has an invalid duration (#EXTINF)", ErrMalformed, loc, i+1)
		}
		su, err := resolveURI(u, s.URI)
		if err != nil {
			return nil, fmt.Errorf("%w %s: segment %d: %v", ErrMalformed, loc, i+1, err)
		}
		src.Duration += s.Duration
		if src.Duration > maxTotalDuration {
			return nil, fmt.Errorf("%w %s: total duration is implausibly long", ErrMalformed, loc)
		}
		src.Segments = append(src.Segments, Segment{
			URL:           su,
			Duration:      s.Duration,
			Sequence:      m.MediaSequence + i,
			Discontinuity: s.Discontinuity,
		})
	}
	if len(src.Segments) == 0 {
		return nil, fmt.Errorf("%w %s: no segments found", ErrMalformed, loc)
	}
	return src, nil
}

// resolveURI resolves a playlist URI against the playlist's URL and checks
// that the result is an http(s) URL.
func resolveURI(base *url.URL, uri string) (*url.URL, error) {
	uri = strings.TrimSpace(uri)
	if uri == "" {
		return nil, errors.New("empty URI")
	}
	ref, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("invalid URI %q", truncate(uri, 80))
	}
	u := base.ResolveReference(ref)
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("URI %s is not an http or https URL", RedactURL(u))
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
