package handler

import (
	"errors"
	"net/http"
	"regexp"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager"
	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

var validFilename = regexp.MustCompile(`^[A-Za-z0-9_-]{1,120}$`)

var contentTypes = map[string]string{
	"default": "video/mp4",
	"audio":   "audio/mp4",
}

// deliver serves GET and HEAD of …/{video-or-token}/downloads/{typ}.{ext}.
func (h *Handler) deliver(w http.ResponseWriter, r *http.Request, idOrToken, typ string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return writeLine(w, http.StatusMethodNotAllowed, "method not allowed: use GET or HEAD")
	}
	video, err := h.access(r, idOrToken)
	if done, werr := refusal(w, err); done {
		return werr
	}
	name := r.URL.Query().Get("filename")
	if r.URL.Query().Has("filename") && !validFilename.MatchString(name) {
		return writeLine(w, http.StatusBadRequest, "invalid filename: use 1 to 120 of A-Z a-z 0-9 _ -")
	}

	f, st, err := h.Manager.Open(storage.Key{Video: video, Type: typ})
	switch {
	case errors.Is(err, packager.ErrNotCreated):
		return writeLine(w, http.StatusNotFound, "download not found")
	case errors.Is(err, packager.ErrInProgress):
		w.Header().Set("Retry-After", "5")
		return writeLine(w, http.StatusServiceUnavailable, "download is being prepared, try again shortly")
	case errors.Is(err, packager.ErrFailed):
		return writeLine(w, http.StatusNotFound, "download not available: packaging failed")
	case err != nil:
		h.Logger.Error("opening packaged file", zap.String("video", video), zap.String("type", typ), zap.Error(err))
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	defer f.Close()

	hdr := w.Header()
	hdr.Set("Content-Type", contentTypes[typ])
	hdr.Set("ETag", st.ETag)
	if name != "" {
		ext := ".mp4"
		if typ == "audio" {
			ext = ".m4a"
		}
		hdr.Set("Content-Disposition", `attachment; filename="`+name+ext+`"`)
	}
	// ServeContent handles Range, If-Range, If-None-Match, HEAD and sends an *os.File
	// with sendfile through Caddy's ReadFrom-capable writer.
	http.ServeContent(w, r, "", st.Ready, f)
	return nil
}

// writeLine answers status with a one-line plain-text reason.
func writeLine(w http.ResponseWriter, status int, msg string) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err := w.Write([]byte(msg + "\n"))
	return err
}
