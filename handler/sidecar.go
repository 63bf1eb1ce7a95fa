package handler

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager"
)

// Subtitle sidecars (docs/spec.md §3.2): …/{video-or-token}/downloads/{LANGUAGE}.vtt is
// the subtitle track of that language of the video's default download (or of a height
// type's, when only those exist), as WebVTT ({LANGUAGE}-{n}.vtt when several have one
// language). It is read from that file (stored, or served instantly while packaged),
// so it needs no download of its own; with on_demand, asking for it packages the
// default download.

// sidecarName is a sidecar's name: a language tag as playlists write them, and a
// number when several tracks have that language.
var sidecarName = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,4}$`)

// sidecarOf returns the sidecar name of a delivery file name ("fr" of "fr.vtt").
func sidecarOf(file string) (string, bool) {
	name, ok := strings.CutSuffix(file, ".vtt")
	return name, ok && sidecarName.MatchString(name)
}

// sidecarSource is the download type whose file a sidecar of video is read from:
// default, unless only height types of the video exist (the first of them listed).
func (h *Handler) sidecarSource(r *http.Request, video string) string {
	states, err := h.Manager.List(r.Context(), video)
	if err != nil {
		return packager.DefaultType.Name
	}
	alt := ""
	for _, st := range states {
		typ, ok := packager.ParseType(st.Type)
		switch {
		case !ok:
		case typ == packager.DefaultType:
			return typ.Name
		case typ.Kind == packager.KindVideo && alt == "":
			alt = typ.Name
		}
	}
	if alt == "" {
		return packager.DefaultType.Name
	}
	return alt
}

// deliverSidecar serves GET and HEAD of the sidecar name of the video.
func (h *Handler) deliverSidecar(w http.ResponseWriter, r *http.Request, idOrToken, name string) error {
	video, tokClip, done, err := h.admit(w, r, idOrToken)
	if done {
		return err
	}
	if tokClip != nil {
		return refuse(w, r, http.StatusForbidden, "this token allows only a clip of the video, not its subtitles")
	}
	if !h.typeAllowed(packager.DefaultType.Name) {
		return refuse(w, r, http.StatusNotFound, "subtitles not found: the default download is not offered here")
	}
	f, st, done, err := h.open(w, r, packager.Key{Video: video, Type: h.sidecarSource(r, video)})
	if done {
		return err
	}
	defer f.Close()
	src, ra, err := h.sourceOf(f, st)
	if err != nil {
		return err
	}
	vtt, err := src.Sidecar(name, ra)
	if errors.Is(err, packager.ErrNoSidecar) {
		msg := "subtitles not found: the video has no " + name + " subtitles"
		if names := src.SidecarNames(); len(names) > 0 {
			msg += " (it has " + strings.Join(names, ", ") + ")"
		}
		return refuse(w, r, http.StatusNotFound, msg)
	}
	if err != nil {
		h.Logger.Error("reading subtitles", zap.String("video", video), zap.String("subtitles", name), zap.Error(err))
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	// The sidecar follows from the file (its strong ETag) and the way it is rendered.
	sum := sha256.Sum256([]byte("vtt1\x00" + st.ETag + "\x00" + strings.ToLower(name)))
	w.Header().Set("Content-Type", "text/vtt; charset=utf-8")
	w.Header().Set("ETag", `"vtt-`+hex.EncodeToString(sum[:16])+`"`)
	w.Header().Set("Accept-Ranges", "bytes")
	serveContent(w, r, bytes.NewReader(vtt), st.Ready)
	return nil
}
