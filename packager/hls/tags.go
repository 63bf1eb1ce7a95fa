package hls

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist/primitives"
)

// The gohlslib parser is used for everything it gets right, but three things
// about EXT-X-MAP and EXT-X-KEY it cannot express, so scanTags reads those
// two tags itself, in a second pass over the same lines:
//
//   - it keeps a single EXT-X-MAP per playlist (the last one), while a
//     playlist may switch init sections (e.g. after a discontinuity);
//   - it does not tell which EXT-X-KEY applies to an EXT-X-MAP (an
//     encrypted init section);
//   - it rejects EXT-X-KEY methods other than NONE, AES-128 and SAMPLE-AES
//     as a parse error, where a user should read "unsupported" (AES-256,
//     SAMPLE-AES-CTR, …).
//
// The pass reads the same normalised text (normalizePlaylist) and splits
// lines exactly as gohlslib does, so that its n-th URI line is gohlslib's
// n-th segment; mediaSource checks that the counts agree.

// keyTag is an EXT-X-KEY tag (or a group of them, see pendingKeys).
type keyTag struct {
	method    string
	uri       string
	iv        string
	keyFormat string
}

// mapTag is an EXT-X-MAP tag.
type mapTag struct {
	uri string
	rng *primitives.ByteRange // nil: the whole resource
	key *keyTag               // the key in effect at the tag; nil: clear
	// next is the index of the segment that follows the tag: its media
	// sequence number is the init section's IV when the key has none.
	next int
}

// segTags is what scanTags found for one media segment.
type segTags struct {
	mapTag *mapTag // nil: no EXT-X-MAP so far
	key    *keyTag // nil: clear
}

// scanTags returns, for each media segment of the playlist data in order,
// the EXT-X-MAP and EXT-X-KEY that apply to it. It fails with ErrUnsupported
// (wrapped) when a segment or init section is encrypted with something other
// than AES-128, and with ErrMalformed on a broken tag. loc names the playlist
// in messages.
func scanTags(loc string, data []byte) ([]segTags, error) {
	s := string(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
	var (
		out     []segTags
		curMap  *mapTag
		curKey  *keyTag
		pending []*keyTag // EXT-X-KEY tags since the last URI or EXT-X-MAP
	)
	// settle makes the key tags read since the last segment the current key.
	settle := func() error {
		if len(pending) == 0 {
			return nil
		}
		k, err := chooseKey(loc, pending)
		if err != nil {
			return err
		}
		curKey, pending = k, nil
		return nil
	}
	first := true
	for s != "" {
		var line string
		line, s, _ = strings.Cut(s, "\n")
		line = strings.TrimSuffix(line, "\r")
		if first { // the #EXTM3U header
			first = false
			continue
		}
		switch {
		case strings.HasPrefix(line, "#EXT-X-KEY:"):
			var a primitives.Attributes
			if err := a.Unmarshal(line[len("#EXT-X-KEY:"):]); err != nil {
				return nil, fmt.Errorf("%w %s: EXT-X-KEY: %v", ErrMalformed, loc, err)
			}
			pending = append(pending, &keyTag{method: a["METHOD"], uri: a["URI"], iv: a["IV"], keyFormat: a["KEYFORMAT"]})
		case strings.HasPrefix(line, "#EXT-X-MAP:"):
			if err := settle(); err != nil {
				return nil, err
			}
			var a primitives.Attributes
			if err := a.Unmarshal(line[len("#EXT-X-MAP:"):]); err != nil {
				return nil, fmt.Errorf("%w %s: EXT-X-MAP: %v", ErrMalformed, loc, err)
			}
			m := &mapTag{uri: a["URI"], key: curKey, next: len(out)}
			if m.uri == "" {
				return nil, fmt.Errorf("%w %s: EXT-X-MAP without URI", ErrMalformed, loc)
			}
			if v, ok := a["BYTERANGE"]; ok {
				var br primitives.ByteRange
				if err := br.Unmarshal(v); err != nil {
					return nil, fmt.Errorf("%w %s: EXT-X-MAP: invalid BYTERANGE %q", ErrMalformed, loc, truncate(v, 40))
				}
				m.rng = &br
			}
			curMap = m
		case len(line) != 0 && line[0] != '#':
			if err := settle(); err != nil {
				return nil, err
			}
			out = append(out, segTags{mapTag: curMap, key: curKey})
		}
	}
	if err := settle(); err != nil { // key tags after the last segment
		return nil, err
	}
	return out, nil
}

// chooseKey turns the EXT-X-KEY tags that appear together (RFC 8216 allows
// several, one per KEYFORMAT, for the same segments) into the key in effect:
// nil for METHOD=NONE, the AES-128 key in the "identity" format if there is
// one, else an error saying why the segments cannot be decrypted.
func chooseKey(loc string, tags []*keyTag) (*keyTag, error) {
	var firstErr error
	for _, k := range tags {
		err := checkKey(loc, k)
		if err == nil {
			if strings.EqualFold(k.method, "NONE") {
				return nil, nil
			}
			return k, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// checkKey tells whether k is a key this package can use.
func checkKey(loc string, k *keyTag) error {
	unsupported := func(what string) error {
		return fmt.Errorf("%w: %s cannot be downloaded (playlist %s)", ErrUnsupported, what, loc)
	}
	m := strings.ToUpper(strings.TrimSpace(k.method))
	switch m {
	case "NONE":
		return nil
	case "AES-128":
	case "":
		return fmt.Errorf("%w %s: EXT-X-KEY without METHOD", ErrMalformed, loc)
	case "SAMPLE-AES", "SAMPLE-AES-CTR", "SAMPLE-AES-CENC", "SAMPLE-AES-CBCS":
		return unsupported("segments encrypted with " + m + " (FairPlay/Widevine/PlayReady-style DRM)")
	default:
		return unsupported("segments encrypted with METHOD=" + truncate(oneLine(k.method), 40))
	}
	if f := strings.TrimSpace(k.keyFormat); f != "" && f != "identity" {
		return unsupported("segments whose AES-128 key is delivered in the DRM key format " + truncate(oneLine(f), 60))
	}
	uri := strings.TrimSpace(k.uri)
	if uri == "" {
		return fmt.Errorf("%w %s: EXT-X-KEY METHOD=AES-128 without URI", ErrMalformed, loc)
	}
	if i := strings.IndexByte(uri, ':'); i > 0 {
		switch scheme := strings.ToLower(uri[:i]); scheme {
		case "http", "https", "data":
		case "skd":
			return unsupported("segments whose key is a FairPlay key (skd:// URI)")
		default:
			if !strings.ContainsAny(scheme, "/?#") {
				return unsupported("segments whose key URI has the scheme " + truncate(oneLine(scheme), 20) + ":")
			}
		}
	}
	return nil
}
