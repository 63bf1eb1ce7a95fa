package mp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/packager/media"
	"github.com/stream-downloads/caddy-stream-downloads/packager/subtitles"
)

// Subtitle sidecars (issue 17): a packaged file's tx3g tracks as WebVTT files, timed
// as the file presents them. A sidecar is named by its track's language tag as the
// playlist wrote it (elng, else mdhd's code; "und" without either): "fr", or "fr-1",
// "fr-2", … in track order when several tracks have one language.

// ErrNoSidecar: the file has no subtitle track of that name.
var ErrNoSidecar = errors.New("mp4: no such subtitle track")

// maxSidecar bounds the text a sidecar reads (a subtitle track of hours is ~1 MB).
const maxSidecar = 16 << 20

// SidecarNames returns the sidecar names of s's subtitle tracks, in track order.
func (s *ClipSource) SidecarNames() []string {
	var langs []string
	for _, t := range s.tracks {
		if t.track.Kind == media.Subtitle {
			lang := t.track.Language
			if lang == "" {
				lang = "und"
			}
			langs = append(langs, lang)
		}
	}
	count := map[string]int{}
	for _, l := range langs {
		count[strings.ToLower(l)]++
	}
	seen := map[string]int{}
	names := make([]string, len(langs))
	for i, l := range langs {
		k := strings.ToLower(l)
		if count[k] == 1 {
			names[i] = l
			continue
		}
		seen[k]++
		names[i] = fmt.Sprintf("%s-%d", l, seen[k])
	}
	return names
}

// Sidecar renders the subtitle track whose sidecar is name (SidecarNames; the case of
// the language tag does not matter) as a WebVTT file, reading its samples from r, the
// file s was read from.
func (s *ClipSource) Sidecar(name string, r io.ReaderAt) ([]byte, error) {
	names := s.SidecarNames()
	k := 0
	for _, t := range s.tracks {
		if t.track.Kind != media.Subtitle {
			continue
		}
		if strings.EqualFold(names[k], name) {
			return sidecar(t, r)
		}
		k++
	}
	return nil, ErrNoSidecar
}

// sidecar reads t's tx3g samples from r: each one's text (a 16-bit length, UTF-8) is a
// cue from its presentation time to the next sample's (the last: to the track's end).
func sidecar(t *clipTrack, r io.ReaderAt) ([]byte, error) {
	var total int64
	for _, n := range t.size {
		total += int64(n)
	}
	if total > maxSidecar {
		return nil, fmt.Errorf("mp4: a subtitle track of %d bytes", total)
	}
	ts := time.Duration(t.track.Timescale)
	at := func(ticks int64) time.Duration { return time.Duration(ticks) * time.Second / ts }
	var cues []subtitles.Cue
	for i, n := range t.size {
		if n < 2 {
			continue
		}
		b := make([]byte, n)
		if _, err := r.ReadAt(b, t.off[i]); err != nil {
			return nil, fmt.Errorf("mp4: reading a subtitle sample: %w", err)
		}
		l := int(binary.BigEndian.Uint16(b))
		if l == 0 || 2+l > len(b) {
			continue // an empty sample: no cue
		}
		end := t.dts[i] + int64(t.lastDur)
		if i+1 < len(t.dts) {
			end = t.dts[i+1]
		}
		cues = append(cues, subtitles.Cue{Start: at(t.dts[i]), End: at(end), Text: string(b[2 : 2+l])})
	}
	var out bytes.Buffer
	if err := subtitles.WriteVTT(&out, cues); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
