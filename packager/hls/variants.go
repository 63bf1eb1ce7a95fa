package hls

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

// Choosing what to download of a multivariant playlist: the variant and its audio rendition.

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
	// Height, when positive, asks for the variant of that height, else the
	// nearest below it (never a taller one); among several of that height,
	// the highest bandwidth. MaxHeight is ignored then. When no variant has
	// a RESOLUTION of that height or less (a media playlist has none), the
	// error is a *NoRenditionError, which matches ErrNoRendition and
	// ErrNotFound.
	Height int
}

// ErrNoRendition: the stream has no rendition of the height asked for
// (SelectOptions.Height) or less. Such errors are *NoRenditionError values,
// and match ErrNotFound too: the origin has no such download to offer.
var ErrNoRendition = errors.New("no such rendition")

// NoRenditionError is the error of a choice by SelectOptions.Height that no
// variant satisfies. Its message names no URL, so that clients may read it.
type NoRenditionError struct {
	// Height is the height asked for.
	Height int
	// Heights are the distinct heights the stream has, ascending; empty when
	// no variant says its RESOLUTION.
	Heights []int
}

func (e *NoRenditionError) Error() string {
	if len(e.Heights) == 0 {
		return fmt.Sprintf("the stream has no rendition of %dp or lower: its playlists give no resolution", e.Height)
	}
	hs := make([]string, len(e.Heights))
	for i, h := range e.Heights {
		hs[i] = strconv.Itoa(h) + "p"
	}
	return fmt.Sprintf("the stream has no rendition of %dp or lower (it has %s)", e.Height, strings.Join(hs, ", "))
}

// Is makes the error match ErrNoRendition and ErrNotFound.
func (e *NoRenditionError) Is(target error) bool {
	return target == ErrNoRendition || target == ErrNotFound
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
	if opt.Height > 0 {
		// The tallest height at or below opt.Height, then its best variant.
		var best *cand
		var heights []int
		for i, c := range all {
			h := c.info.Height
			if h == 0 {
				continue
			}
			if !slices.Contains(heights, h) {
				heights = append(heights, h)
			}
			if h <= opt.Height && (best == nil || h > best.info.Height || (h == best.info.Height && better(c.info, best.info))) {
				best = &all[i]
			}
		}
		if best == nil {
			slices.Sort(heights)
			return nil, VariantInfo{}, &NoRenditionError{Height: opt.Height, Heights: heights}
		}
		return best.v, best.info, nil
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
