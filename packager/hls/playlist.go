package hls

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

// Source is a resolved VOD media playlist.
type Source struct {
	// URL is the media playlist's URL (after redirects). It may carry
	// credentials: show it to users through RedactURL.
	URL *url.URL
	// Segments lists the media segments in playback order, without the
	// EXT-X-GAP ones (which must not be fetched); never empty.
	Segments []Segment
	// Duration is the sum of the EXTINF durations of every segment of the
	// playlist, EXT-X-GAP segments included (the length of the stream's
	// timeline, which Segments may not cover in full when there are gaps).
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
	// Media is what the EXT-X-MEDIA tag says of the audio of this Source: of an
	// audio rendition, its own; of a variant whose audio is muxed in its segments,
	// the tag without URI that describes it (zero when none does).
	Media MediaInfo
	// AltAudio are the other audio renditions of the variant's group that have
	// their own URI, in playlist order: alternatives to the default audio (other
	// languages, commentary). Each has its Media.
	AltAudio []*Source
	// Subtitles are the subtitle renditions (WebVTT) of the variant's SUBTITLES
	// group, in playlist order, each with its Media.
	Subtitles []*Source
	// Chapters is the Apple chapters document (JSON) the multivariant playlist
	// points to (EXT-X-SESSION-DATA com.apple.hls.chapters; the one in the default
	// audio's language when there are several); nil when none. ChaptersErr says
	// why it could not be fetched: chapters are not the video, so that is no
	// failure of Resolve.
	Chapters    []byte
	ChaptersErr error
}

// Segment is one media segment of a Source.
type Segment struct {
	// URL is the segment's absolute URL.
	URL *url.URL
	// Range is the segment's sub-range of the resource at URL
	// (EXT-X-BYTERANGE, with an omitted offset already resolved); nil when
	// the segment is the whole resource. Fetch requests it with a Range
	// header.
	Range *ByteRange
	// Duration is the segment's EXTINF duration.
	Duration time.Duration
	// Start is the sum of the EXTINF durations of every segment before this
	// one in the playlist, EXT-X-GAP segments included: the segment's
	// nominal place on the stream's timeline.
	Start time.Duration
	// Sequence is the segment's media sequence number
	// (EXT-X-MEDIA-SEQUENCE plus its index in the playlist, gaps included).
	Sequence int
	// Discontinuity is set when an EXT-X-DISCONTINUITY precedes the segment
	// (or precedes a gap segment removed just before it): timestamps and
	// codec parameters may change from here on.
	Discontinuity bool
	// Map is the fMP4/CMAF initialization section (EXT-X-MAP) that applies
	// to the segment; nil when none does (MPEG-TS). Consecutive segments
	// under the same EXT-X-MAP tag share the same *Map, so a change of
	// pointer is a change of init section. Fetch hands its bytes on with the
	// segment (SegmentBody.Init); Client.FetchMap gets them alone.
	Map *Map
	// Key is the AES-128 key (EXT-X-KEY) the segment is encrypted with; nil
	// when it is clear. Fetch decrypts such segments itself.
	Key *Key

	hosts *hostPolicy // where redirects may go; nil when not made by Resolve
}

// ByteRange is a sub-range of a resource (EXT-X-BYTERANGE, or the BYTERANGE
// attribute of EXT-X-MAP).
type ByteRange struct {
	// Offset is the first byte's offset in the resource.
	Offset int64
	// Length is the number of bytes; always positive.
	Length int64
}

// String returns the range as in a Range header: "bytes=first-last".
func (r ByteRange) String() string {
	return fmt.Sprintf("bytes=%d-%d", r.Offset, r.Offset+r.Length-1)
}

// Map is a media initialization section (EXT-X-MAP): the ftyp/moov of fMP4
// (CMAF) segments. Get its bytes from Fetch's SegmentBody.Init or with
// Client.FetchMap, which fetches them once and keeps them in the Map.
type Map struct {
	// URL is the init section's absolute URL.
	URL *url.URL
	// Range is its sub-range of the resource at URL (BYTERANGE attribute);
	// nil when it is the whole resource.
	Range *ByteRange
	// Key is the AES-128 key the init section is encrypted with (the
	// EXT-X-KEY in effect at the EXT-X-MAP tag); nil when it is clear.
	Key *Key

	iv    [16]byte // the key's IV, else the next segment's sequence number
	data  *memo
	hosts *hostPolicy // where redirects may go; nil when not made by Resolve
	// validator is the origin's validator of the bytes in data (Validators), set
	// with them: a Client that takes them from the cache records it too.
	validator string
}

// Key is an AES-128 key (EXT-X-KEY:METHOD=AES-128). Segments and init
// sections that use the same key URI within one Resolve share its bytes,
// which are fetched once, on first use, by Fetch or FetchMap.
type Key struct {
	// URL is the key's absolute URL; nil when the key is inline (a base64
	// data: URI).
	URL *url.URL
	// IV is the IV attribute, left-padded with zeros to 16 bytes; nil when
	// the tag has none, in which case each segment's IV is its media
	// sequence number as a 128-bit big-endian integer.
	IV *[16]byte

	bytes *memo       // the 16-byte key
	hosts *hostPolicy // where redirects may go; nil when not made by Resolve
}

// iv returns the IV that segment s is decrypted with.
func (s *Segment) iv() [16]byte {
	if s.Key != nil && s.Key.IV != nil {
		return *s.Key.IV
	}
	return sequenceIV(s.Sequence)
}

func sequenceIV(seq int) [16]byte {
	var iv [16]byte
	binary.BigEndian.PutUint64(iv[8:], uint64(seq))
	return iv
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
// Every URL a playlist gives (variant, rendition, segment, init section,
// key) must be allowed by Client.AllowedHosts' rules, with playlistURL's host
// as the origin's; the Source remembers that policy, so that Fetch, FetchMap
// and key requests refuse redirects elsewhere. The Limits' segment count and
// duration are checked here, before any segment is fetched.
//
// Errors: an *OriginError wrapping ErrNotFound when the origin answers 404
// or 410 for playlistURL; an *OriginError for other failed requests (one
// over Limits.PlaylistSize matches ErrLimit and ErrTooLarge, a refused
// redirect ErrForbiddenHost); ErrLive when a media playlist has no
// EXT-X-ENDLIST (a playlist with EXT-X-PLAYLIST-TYPE:VOD is accepted
// without it, as it cannot change); ErrForbiddenHost and ErrLimit, wrapped
// with the URL or the numbers; ErrMalformed and ErrUnsupported wrapped with
// the reason; a *NoRenditionError (matching ErrNoRendition and ErrNotFound)
// when opt.Height asks for a height the stream has not (a media playlist
// says none).
func (c *Client) Resolve(ctx context.Context, playlistURL string, opt SelectOptions) (*Source, error) {
	u, err := url.Parse(strings.TrimSpace(playlistURL))
	if err != nil {
		return nil, fmt.Errorf("invalid origin URL %s", redactString(playlistURL))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("origin URL %s must be an absolute http or https URL", RedactURL(u))
	}
	u.Fragment, u.RawFragment = "", ""
	sc := &scope{keys: keyCache{}, hosts: newHostPolicy(u, c.AllowedHosts), limits: c.Limits}

	var buf bytes.Buffer
	final, err := c.get(ctx, u, sc.hosts, &buf, sc.limits.playlistSize())
	if err != nil {
		var oe *OriginError
		if errors.As(err, &oe) && (oe.Status == http.StatusNotFound || oe.Status == http.StatusGone) {
			oe.Err = ErrNotFound
		}
		return nil, err
	}
	pl, tags, err := parsePlaylist(final, buf.Bytes())
	if err != nil {
		return nil, err
	}
	switch pl := pl.(type) {
	case *playlist.Media:
		src, err := mediaSource(final, pl, tags, sc)
		if err == nil && opt.Height > 0 {
			return nil, &NoRenditionError{Height: opt.Height}
		}
		return src, err
	case *playlist.Multivariant:
		v, info, err := chooseVariant(final, pl, opt)
		if err != nil {
			return nil, err
		}
		src, err := c.resolveMedia(ctx, final, v.URI, "variant", sc)
		if err != nil {
			return nil, err
		}
		src.Variant = info
		if err := c.resolveRenditions(ctx, final, buf.Bytes(), pl, v, src, sc); err != nil {
			return nil, err
		}
		return src, nil
	}
	return nil, fmt.Errorf("%w %s: unknown playlist type", ErrMalformed, RedactURL(final))
}

// resolveMedia fetches and parses the media playlist uri found in the
// multivariant playlist at base.
func (c *Client) resolveMedia(ctx context.Context, base *url.URL, uri, what string, sc *scope) (*Source, error) {
	u, err := sc.resolve(base, uri, what+" URI")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	final, err := c.get(ctx, u, sc.hosts, &buf, sc.limits.playlistSize())
	if err != nil {
		return nil, err
	}
	pl, tags, err := parsePlaylist(final, buf.Bytes())
	if err != nil {
		return nil, err
	}
	m, ok := pl.(*playlist.Media)
	if !ok {
		return nil, fmt.Errorf("%w %s: the %s is a multivariant playlist, expected a media playlist", ErrMalformed, RedactURL(final), what)
	}
	return mediaSource(final, m, tags, sc)
}

// parsePlaylist decodes data, served from u, into a *playlist.Media or a
// *playlist.Multivariant; for a media playlist it also returns the
// EXT-X-MAP and EXT-X-KEY tags of each segment (see scanTags).
func parsePlaylist(u *url.URL, data []byte) (pl playlist.Playlist, tags []segTags, err error) {
	malformed := func(reason string) error {
		return fmt.Errorf("%w %s: %s", ErrMalformed, RedactURL(u), reason)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 BOM
	if looksLikeHTML(data) {
		return nil, nil, malformed("the origin answered an HTML page, not an HLS playlist")
	}
	// Every check and parse below reads the normalised text, so that
	// gohlslib and scanTags see the same lines.
	data = normalizePlaylist(data)
	if !bytes.HasPrefix(data, []byte("#EXTM3U\n")) {
		return nil, nil, malformed("not an HLS playlist (no #EXTM3U header)")
	}
	if iFramesOnly(data) { // gohlslib would take it for a video
		return nil, nil, fmt.Errorf("%w %s: I-frames-only playlist (EXT-X-I-FRAMES-ONLY): a trick-play index, not a video", ErrUnsupported, RedactURL(u))
	}
	if !bytes.Contains(data, []byte("\n#EXTINF:")) && !bytes.Contains(data, []byte("\n#EXT-X-STREAM-INF:")) {
		return nil, nil, malformed("no segments (#EXTINF) or variants (#EXT-X-STREAM-INF) found")
	}
	defer func() {
		if r := recover(); r != nil {
			pl, tags, err = nil, nil, malformed(fmt.Sprintf("parser failed: %v", r))
		}
	}()
	pl, err = playlist.Unmarshal(data)
	if err != nil {
		// gohlslib rejects methods such as SAMPLE-AES-CTR as invalid:
		// say "unsupported" rather than "malformed" for those.
		if _, serr := scanTags(RedactURL(u), data); errors.Is(serr, ErrUnsupported) {
			return nil, nil, serr
		}
		return nil, nil, malformed(oneLine(err.Error()))
	}
	if _, ok := pl.(*playlist.Media); ok {
		if tags, err = scanTags(RedactURL(u), data); err != nil {
			return nil, nil, err
		}
	}
	return pl, tags, nil
}

// looksLikeHTML tells whether a body that should be a playlist is an HTML
// page (an error or login page answered with 200).
func looksLikeHTML(data []byte) bool {
	head := bytes.ToLower(bytes.TrimSpace(data[:min(len(data), 512)]))
	return bytes.HasPrefix(head, []byte("<!doctype html")) || bytes.HasPrefix(head, []byte("<html")) ||
		bytes.HasPrefix(head, []byte("<head")) || bytes.HasPrefix(head, []byte("<body")) ||
		bytes.HasPrefix(head, []byte("<?xml")) && bytes.Contains(head, []byte("<html"))
}

// scope is what the playlists of one Resolve call share: the key cache (keys
// are shared by the variant and its audio), the host policy and the limits.
type scope struct {
	keys   keyCache
	hosts  *hostPolicy
	limits Limits
}

// resolve resolves uri, found as what in the playlist at base, and checks
// that the host policy allows it.
func (sc *scope) resolve(base *url.URL, uri, what string) (*url.URL, error) {
	loc := RedactURL(base)
	u, err := resolveURI(base, uri)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %s: %v", ErrMalformed, loc, what, err)
	}
	if err := sc.hosts.refuse(loc, what, u); err != nil {
		return nil, err
	}
	return u, nil
}

// mediaSource turns a parsed media playlist, served from u, into a Source.
// tags are scanTags' findings for m's segments; sc is the Resolve call's
// scope.
func mediaSource(u *url.URL, m *playlist.Media, tags []segTags, sc *scope) (*Source, error) {
	loc := RedactURL(u)
	if !m.Endlist && (m.PlaylistType == nil || *m.PlaylistType != playlist.MediaPlaylistTypeVOD) {
		return nil, fmt.Errorf("%w: playlist %s has no EXT-X-ENDLIST, so the stream is still going on; only finished (VOD) streams can be downloaded", ErrLive, loc)
	}
	malformed := func(format string, a ...any) error {
		return fmt.Errorf("%w %s: %s", ErrMalformed, loc, fmt.Sprintf(format, a...))
	}
	if len(tags) != len(m.Segments) {
		// Cannot happen: scanTags splits lines as the parser does.
		return nil, malformed("%d segments parsed but %d found", len(m.Segments), len(tags))
	}
	// Limits first, before any other work (or any segment request).
	if n, most := len(m.Segments), sc.limits.segments(); n > most {
		return nil, fmt.Errorf("%w: the playlist %s has %d segments, more than limits.segments (%d)", ErrLimit, loc, n, most)
	}
	var total time.Duration
	for _, s := range m.Segments {
		if s != nil && s.Duration > 0 && s.Duration <= maxTotalDuration {
			total += s.Duration
		}
	}
	if most := sc.limits.duration(); total > most {
		return nil, fmt.Errorf("%w: the playlist %s lasts %s, more than limits.duration (%s)", ErrLimit, loc, total, most)
	}
	src := &Source{
		URL:            u,
		Segments:       make([]Segment, 0, len(m.Segments)),
		TargetDuration: time.Duration(m.TargetDuration) * time.Second,
	}
	var (
		maps     = map[*mapTag]*Map{}
		keyOf    = map[*keyTag]*Key{}
		rangeEnd = map[string]int64{} // resource URL → end of its last sub-range
		disc     bool                 // a discontinuity on a skipped gap segment
		gaps     int
	)
	for i, s := range m.Segments {
		if s == nil {
			continue
		}
		if s.Duration <= 0 || s.Duration > maxTotalDuration {
			return nil, malformed("segment %d has an invalid duration (#EXTINF)", i+1)
		}
		su, err := sc.resolve(u, s.URI, fmt.Sprintf("segment %d", i+1))
		if err != nil {
			return nil, err
		}
		seg := Segment{
			URL:           su,
			Duration:      s.Duration,
			Start:         src.Duration,
			Sequence:      m.MediaSequence + i,
			Discontinuity: s.Discontinuity || disc,
			hosts:         sc.hosts,
		}
		src.Duration += s.Duration
		if src.Duration > maxTotalDuration {
			return nil, malformed("total duration is implausibly long")
		}
		if s.ByteRangeLength != nil {
			// Gap segments take part too: a following omitted offset
			// continues after them.
			r, err := segmentRange(su, *s.ByteRangeLength, s.ByteRangeStart, rangeEnd)
			if err != nil {
				return nil, malformed("segment %d: %v", i+1, err)
			}
			seg.Range = r
		}
		if s.Gap {
			disc = seg.Discontinuity
			gaps++
			continue
		}
		disc = false
		if t := tags[i].mapTag; t != nil {
			if seg.Map = maps[t]; seg.Map == nil {
				mp, err := newMap(u, t, m.MediaSequence, sc)
				if err != nil {
					return nil, err
				}
				maps[t], seg.Map = mp, mp
			}
		}
		if t := tags[i].key; t != nil {
			if seg.Key = keyOf[t]; seg.Key == nil {
				k, err := newKey(u, t, sc)
				if err != nil {
					return nil, err
				}
				keyOf[t], seg.Key = k, k
			}
		}
		src.Segments = append(src.Segments, seg)
	}
	if len(src.Segments) == 0 {
		if gaps > 0 {
			return nil, malformed("every segment is a gap (EXT-X-GAP)")
		}
		return nil, malformed("no segments found")
	}
	return src, nil
}

// segmentRange resolves an EXT-X-BYTERANGE of the resource su. An omitted
// offset continues after the previous sub-range of the same resource
// (RFC 8216 §4.3.2.2 requires that to be the previous segment's; any
// earlier one of the same resource is accepted here). end records each
// resource's last sub-range end.
func segmentRange(su *url.URL, length uint64, start *uint64, end map[string]int64) (*ByteRange, error) {
	const maxOffset = 1 << 53
	if length == 0 || length > maxOffset {
		return nil, fmt.Errorf("invalid EXT-X-BYTERANGE length %d", length)
	}
	res := su.String()
	var off int64
	if start != nil {
		if *start > maxOffset {
			return nil, fmt.Errorf("invalid EXT-X-BYTERANGE offset %d", *start)
		}
		off = int64(*start)
	} else {
		prev, ok := end[res]
		if !ok {
			return nil, errors.New("EXT-X-BYTERANGE has no offset, and no sub-range of the same resource comes before it")
		}
		off = prev
	}
	r := &ByteRange{Offset: off, Length: int64(length)}
	end[res] = r.Offset + r.Length
	return r, nil
}

// newMap makes the Map of an EXT-X-MAP tag of the playlist at u.
func newMap(u *url.URL, t *mapTag, mediaSequence int, sc *scope) (*Map, error) {
	loc := RedactURL(u)
	mu, err := sc.resolve(u, t.uri, "EXT-X-MAP")
	if err != nil {
		return nil, err
	}
	mp := &Map{URL: mu, data: newMemo(), hosts: sc.hosts}
	if t.rng != nil {
		const maxOffset = 1 << 53
		var off uint64 // an omitted offset is 0
		if t.rng.Start != nil {
			off = *t.rng.Start
		}
		if t.rng.Length == 0 || t.rng.Length > maxOffset || off > maxOffset {
			return nil, fmt.Errorf("%w %s: EXT-X-MAP: invalid BYTERANGE", ErrMalformed, loc)
		}
		mp.Range = &ByteRange{Offset: int64(off), Length: int64(t.rng.Length)}
	}
	if t.key != nil {
		if mp.Key, err = newKey(u, t.key, sc); err != nil {
			return nil, err
		}
		// RFC 8216 requires an IV for an encrypted init section; without
		// one, do as ffmpeg does: the next segment's sequence number.
		mp.iv = sequenceIV(mediaSequence + t.next)
		if mp.Key.IV != nil {
			mp.iv = *mp.Key.IV
		}
	}
	return mp, nil
}

// resolveURI resolves a playlist URI against the playlist's URL. An http(s)
// result must have a host; other schemes are left to the host policy, which
// refuses them.
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
	if (u.Scheme == "http" || u.Scheme == "https") && u.Host == "" {
		return nil, fmt.Errorf("URI %s has no host", truncate(RedactURL(u), 200))
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
