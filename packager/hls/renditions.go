package hls

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

// The renditions of a chosen variant (issue 17): every audio rendition of its AUDIO
// group, its subtitle renditions, and the chapters its multivariant playlist points to.

// MaxRenditions bounds the audio and the subtitle renditions of a variant that Resolve
// reads (each: a playlist, a demuxer or cues in memory, requests).
const MaxRenditions = 64

// resolveRenditions reads the renditions of variant v of the multivariant playlist pl
// (its bytes master, served from final) into src, v's Source: the audio it plays
// (Audio or Media), the alternatives (AltAudio), the subtitles, and the chapters.
func (c *Client) resolveRenditions(ctx context.Context, final *url.URL, master []byte, pl *playlist.Multivariant, v *playlist.MultivariantVariant, src *Source, sc *scope) error {
	var err error
	main, alts := audioRenditions(pl, v)
	switch {
	case main != nil && hasURI(main):
		if src.Audio, err = c.resolveMedia(ctx, final, *main.URI, "audio rendition", sc); err != nil {
			return err
		}
		src.Audio.Media = mediaInfo(main)
	case main != nil:
		src.Media = mediaInfo(main)
	}
	subs := subtitleRenditions(pl, v)
	if len(alts) > MaxRenditions || len(subs) > MaxRenditions {
		return fmt.Errorf("%w: the variant has %d audio and %d subtitle renditions; at most %d of each are read", ErrLimit, len(alts)+1, len(subs), MaxRenditions)
	}
	for _, r := range alts {
		alt, err := c.resolveMedia(ctx, final, *r.URI, "audio rendition", sc)
		if err != nil {
			return err
		}
		alt.Media = mediaInfo(r)
		src.AltAudio = append(src.AltAudio, alt)
	}
	for _, r := range subs {
		sub, err := c.resolveMedia(ctx, final, *r.URI, "subtitle rendition", sc)
		if err != nil {
			return err
		}
		sub.Media = mediaInfo(r)
		src.Subtitles = append(src.Subtitles, sub)
	}
	lang := ""
	if main != nil {
		lang = main.Language
	}
	if uri := chaptersURI(normalizePlaylist(bytes.Clone(master)), lang); uri != "" {
		src.Chapters, src.ChaptersErr = c.fetchChapters(ctx, final, uri, sc)
	}
	return nil
}

// MediaInfo is what an EXT-X-MEDIA tag says of a rendition.
type MediaInfo struct {
	// Language is its LANGUAGE, a BCP 47 tag as written ("en", "pt-BR"); "" when absent.
	Language string
	// Name is its NAME.
	Name string
	// Default is its DEFAULT=YES.
	Default bool
	// Forced is its FORCED=YES (subtitles shown even when subtitles are off).
	Forced bool
}

// audioRenditions returns the EXT-X-MEDIA audio renditions of v's AUDIO group, the
// DEFAULT one first (else the first listed), the others in playlist order: main is the
// one the variant plays (nil when the group has none); alts are the others that have
// their own URI (alternatives to it). When main has no URI the variant's segments
// carry its audio; a rendition without URI that is not main is not taken (the variant's
// own audio, when main is another).
func audioRenditions(mv *playlist.Multivariant, v *playlist.MultivariantVariant) (main *playlist.MultivariantRendition, alts []*playlist.MultivariantRendition) {
	if v.Audio == "" {
		return nil, nil
	}
	var group []*playlist.MultivariantRendition
	for _, r := range mv.Renditions {
		if r != nil && r.Type == playlist.MultivariantRenditionTypeAudio && r.GroupID == v.Audio {
			group = append(group, r)
		}
	}
	if len(group) == 0 {
		return nil, nil
	}
	for i, r := range group { // the DEFAULT one first
		if r.Default {
			copy(group[1:i+1], group[:i])
			group[0] = r
			break
		}
	}
	for _, r := range group[1:] {
		if hasURI(r) {
			alts = append(alts, r)
		}
	}
	return group[0], alts
}

// subtitleRenditions returns the EXT-X-MEDIA subtitle renditions of v's SUBTITLES
// group that have a URI, in playlist order.
func subtitleRenditions(mv *playlist.Multivariant, v *playlist.MultivariantVariant) []*playlist.MultivariantRendition {
	var out []*playlist.MultivariantRendition
	if v.Subtitles == "" {
		return nil
	}
	for _, r := range mv.Renditions {
		if r != nil && r.Type == playlist.MultivariantRenditionTypeSubtitles && r.GroupID == v.Subtitles && hasURI(r) {
			out = append(out, r)
		}
	}
	return out
}

// hasURI tells a rendition with a media playlist of its own.
func hasURI(r *playlist.MultivariantRendition) bool {
	return r.URI != nil && strings.TrimSpace(*r.URI) != ""
}

// mediaInfo is r's MediaInfo.
func mediaInfo(r *playlist.MultivariantRendition) MediaInfo {
	return MediaInfo{Language: r.Language, Name: r.Name, Default: r.Default, Forced: r.Forced}
}
