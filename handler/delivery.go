package handler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager"
	"github.com/stream-downloads/caddy-stream-downloads/tokens"
)

var validFilename = regexp.MustCompile(`^[A-Za-z0-9_-]{1,120}$`)

// deliver serves GET and HEAD of …/{video-or-token}/downloads/{file}, the file of typ.
func (h *Handler) deliver(w http.ResponseWriter, r *http.Request, idOrToken string, typ packager.Type) error {
	if !h.typeAllowed(typ.Name) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		return refuse(w, r, http.StatusNotFound, "download not found: "+typ.FileName()+" is not offered here")
	}
	video, tokClip, done, err := h.admit(w, r, idOrToken)
	if done {
		return err
	}
	name := r.URL.Query().Get("filename")
	if r.URL.Query().Has("filename") && !validFilename.MatchString(name) {
		return refuse(w, r, http.StatusBadRequest, "invalid filename: use 1 to 120 of A-Z a-z 0-9 _ -")
	}

	clip, msg := clipParams(r.URL.Query())
	if msg != "" {
		return refuse(w, r, http.StatusBadRequest, msg)
	}
	if msg := tokenClipRefusal(tokClip, clip); msg != "" {
		if h.Denied != nil {
			h.Denied(r, Denial{Video: video, Type: typ.Name, Status: http.StatusForbidden, Result: "clip_outside", Reason: msg})
		}
		return refuse(w, r, http.StatusForbidden, msg)
	}

	f, st, done, err := h.open(w, r, packager.Key{Video: video, Type: typ.Name})
	if done {
		return err
	}
	defer f.Close()
	if clip != nil {
		return h.deliverClip(w, r, f, st, typ, name, *clip, tokClip)
	}

	prepareServe(w, r, typ, st.ETag, name)
	// ServeContent handles Range, If-Range, If-None-Match, HEAD; a stored file goes out
	// with sendfile through Caddy's ReadFrom-capable writer (serveContent).
	serveContent(w, r, f, st.Ready)
	return nil
}

// admit checks a delivery's method and access (access): the video it is for and the
// token's clip claim, or done when it has been answered (with err for Caddy).
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, idOrToken string) (video string, tokClip *tokens.Clip, done bool, err error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return "", nil, true, refuse(w, r, http.StatusMethodNotAllowed, "method not allowed: use GET or HEAD")
	}
	video, tokClip, err = h.access(r, idOrToken)
	var ref *errRefused
	if errors.As(err, &ref) && errorRoutes(r, ref.status, ref.msg) {
		if ref.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="stream_downloads"`)
		}
		return "", nil, true, pageError(w, ref.status, ref.msg)
	}
	if done, werr := refusal(w, err); done {
		return "", nil, true, werr
	}
	return video, tokClip, false, nil
}

// open opens k's file for a delivery (created on demand with on_demand; instantly
// when it can be), or answers why it cannot (done, with err for Caddy).
func (h *Handler) open(w http.ResponseWriter, r *http.Request, k packager.Key) (packager.File, packager.State, bool, error) {
	var f packager.File
	var st packager.State
	var err error
	if h.OnDemand > 0 {
		f, st, err = h.openOnDemand(r, k)
	} else {
		f, st, err = h.Manager.OpenWithin(r.Context(), k, planWait)
	}
	if a, ok := h.answerFor(err, k.Video); ok {
		return nil, st, true, refuse(a.header(w), r, a.status, a.msg)
	}
	switch {
	case errors.Is(err, errCreate):
		// Not the origin's fault (its refusals are above, its failures end the download
		// in error): the store's, which the log details and the client need not see.
		h.Logger.Error("creating download on demand", zap.String("video", k.Video), zap.String("type", k.Type), zap.Error(err))
		return nil, st, true, caddyhttp.Error(http.StatusInternalServerError, err)
	case err != nil:
		h.Logger.Error("opening packaged file", zap.String("video", k.Video), zap.String("type", k.Type), zap.Error(err))
		return nil, st, true, caddyhttp.Error(http.StatusInternalServerError, err)
	}
	return f, st, false, nil
}

// planWait bounds how long a GET of a download in progress waits for its instant plan
// (docs/instant.md) before it answers 503: a plan takes a second or two; one that takes
// longer goes on, and a later GET gets it.
const planWait = 10 * time.Second

// clipRange is the interval a delivery URL's ?start=S&end=E asks for, in seconds; End 0
// means to the end of the video.
type clipRange struct{ Start, End float64 }

// clipSeconds is a number of seconds of a clip parameter: digits, and decimals.
var clipSeconds = regexp.MustCompile(`^[0-9]{1,9}(\.[0-9]{1,9})?$`)

// clipParams reads start and end (docs/clips.md): nil when neither is given, else the
// interval, or a one-line message for a 400.
func clipParams(q url.Values) (*clipRange, string) {
	if !q.Has("start") && !q.Has("end") {
		return nil, ""
	}
	var c clipRange
	for _, p := range []struct {
		name string
		dst  *float64
	}{{"start", &c.Start}, {"end", &c.End}} {
		vs, ok := q[p.name]
		if !ok {
			continue
		}
		if len(vs) != 1 || !clipSeconds.MatchString(vs[0]) {
			return nil, "invalid " + p.name + ": use seconds, like 12 or 12.5"
		}
		*p.dst, _ = strconv.ParseFloat(vs[0], 64)
	}
	if q.Has("end") && c.End <= c.Start {
		return nil, "invalid clip: end must be after start"
	}
	return &c, ""
}

// tokenClipRefusal is the 403 message for a clip (nil: the whole file) that a token's
// clip claim does not allow, "" when it is allowed. A clip to the end of the video is
// checked again when its end is known (deliverClip).
func tokenClipRefusal(tok *tokens.Clip, c *clipRange) string {
	switch {
	case tok == nil:
		return ""
	case c == nil:
		return "this token allows only a clip: add start and end within " + clipSpan(tok)
	case c.Start < tok.Start || c.End > tok.End:
		return "this clip is outside the token's: start and end must be within " + clipSpan(tok)
	}
	return ""
}

// clipSpan says a token's clip, "10-25.5 s".
func clipSpan(c *tokens.Clip) string {
	return strconv.FormatFloat(c.Start, 'f', -1, 64) + "-" + strconv.FormatFloat(c.End, 'f', -1, 64) + " s"
}

// clipVersion names the way clips are cut: change it when a clip of the same file and
// interval would have other bytes, so that its ETag changes too.
const clipVersion = "clip1"

// sourceOf parses (or takes from clipSources) the sample tables of f, the file of st,
// and returns them with f as a ReaderAt; its error is the one to return to Caddy.
func (h *Handler) sourceOf(f packager.File, st packager.State) (*packager.ClipSource, io.ReaderAt, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, caddyhttp.Error(http.StatusInternalServerError, err)
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		ra = packager.SeekReaderAt{R: f}
	}
	src, err := clipSources.Source(st.ETag+"\x00"+strconv.FormatInt(fi.Size(), 10), ra, fi.Size())
	if err != nil {
		h.Logger.Error("reading the packaged file's sample tables", zap.String("video", st.Video), zap.String("type", st.Type), zap.Error(err))
		return nil, nil, caddyhttp.Error(http.StatusInternalServerError, err)
	}
	return src, ra, nil
}

// clipSources caches the parsed sample tables of the files recently clipped (a 60-minute
// video's take ~7 MB), by the file's ETag and size.
var clipSources = packager.NewClipCache(64 << 20)

// deliverClip serves the clip c of the open stored file f (docs/clips.md): the header of
// the clip's own moov, then the samples it keeps as byte ranges of f, read as they are
// sent; its ETag is derived from the file's and the interval.
func (h *Handler) deliverClip(w http.ResponseWriter, r *http.Request, f packager.File, st packager.State, typ packager.Type, name string, c clipRange, tok *tokens.Clip) error {
	src, _, err := h.sourceOf(f, st)
	if err != nil {
		return err
	}
	const slack = 0.0005 // the file's duration is in milliseconds
	if c.End == 0 {
		c.End = src.Duration
	}
	if c.Start >= src.Duration || c.End > src.Duration+slack {
		return refuse(w, r, http.StatusBadRequest, "clip out of range: the video lasts "+strconv.FormatFloat(src.Duration, 'f', 3, 64)+" s")
	}
	if msg := tokenClipRefusal(tok, &c); msg != "" {
		return refuse(w, r, http.StatusForbidden, msg)
	}
	cl, err := src.Clip(c.Start, c.End)
	if errors.Is(err, packager.ErrClipRange) {
		return refuse(w, r, http.StatusBadRequest, "clip out of range: no media between start and end")
	}
	if err != nil {
		h.Logger.Error("building a clip", zap.String("type", typ.Name), zap.Error(err))
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	// The clip's bytes follow from the file's (its strong ETag), the interval and the
	// way clips are cut (clipVersion).
	sum := sha256.Sum256([]byte(clipVersion + "\x00" + st.ETag + "\x00" + strconv.FormatFloat(c.Start, 'f', -1, 64) + "\x00" + strconv.FormatFloat(c.End, 'f', -1, 64)))
	prepareServe(w, r, typ, `"clip-`+hex.EncodeToString(sum[:16])+`"`, name)
	serveContent(w, r, cl.Reader(f), st.Ready)
	return nil
}

// normalizeRange rewrites a Range header that http.ServeContent would answer with 416
// into the request RFC 9110 §14 says it is; ok reports a rewrite, and an empty result
// means the header is to be ignored.
//   - The unit is case-insensitive (§14.1): "Bytes=" is "bytes=". Another unit is
//     ignored, so the whole file is served (§14.2: a server MUST ignore a Range of a unit
//     it does not understand).
//   - Positions are digits without a bound (§14.1.1): each one too large for an int64
//     becomes the largest int64. A last-byte-pos beyond the end is then clamped to the
//     end (bytes=0-99999999999999999999 is the whole file, 206; §14.1.2), a suffix
//     longer than the file is the whole file, and a first-byte-pos that large is still
//     past the end (416, or left out of a multi-range).
//
// Any other header, valid or not, is left to ServeContent as it is.
func normalizeRange(h string) (string, bool) {
	const unit = "bytes=" // as ServeContent matches it
	name, specs, ok := strings.Cut(h, "=")
	if !ok {
		return h, false
	}
	if name = textproto.TrimString(name); !strings.EqualFold(name, "bytes") {
		return "", h != "" && isToken(name)
	}
	parts := strings.Split(specs, ",")
	changed := !strings.HasPrefix(h, unit)
	for i, spec := range parts {
		first, last, ok := strings.Cut(spec, "-")
		if !ok {
			continue
		}
		f, fc := clampPos(first)
		l, lc := clampPos(last)
		if fc || lc {
			parts[i] = f + "-" + l
			changed = true
		}
	}
	if !changed {
		return h, false
	}
	return unit + strings.Join(parts, ","), true
}

// isToken reports whether s is an RFC 9110 token, as a range unit is.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// clampPos is the largest int64 for a position of digits that does not fit in one.
func clampPos(s string) (string, bool) {
	t := textproto.TrimString(s)
	if t == "" || strings.Trim(t, "0123456789") != "" {
		return s, false
	}
	if _, err := strconv.ParseInt(t, 10, 64); err == nil {
		return s, false
	}
	return strconv.FormatInt(math.MaxInt64, 10), true
}

// errCreate marks a failure of the on-demand creation other than 404 and live.
var errCreate = errors.New("creating the download")

// openOnDemand opens k's file, first creating the download when it does not exist or
// was evicted, and waiting up to h.OnDemand while it is packaged (docs/spec.md §2
// on_demand) unless it can be sent at once (instant delivery, docs/instant.md).
// A download that failed for another reason is not retried by a GET: that takes a POST.
func (h *Handler) openOnDemand(r *http.Request, k packager.Key) (packager.File, packager.State, error) {
	ctx, cancel := context.WithTimeout(r.Context(), h.OnDemand)
	defer cancel()
	// A file evicted between the wait and the open is packaged again, a few times at
	// most; each round sleeps in Wait, so this never spins.
	for range 3 {
		st, ok, err := h.Manager.State(ctx, k)
		if err != nil {
			return nil, st, err
		}
		if !ok || st.Evicted() {
			// A recent failure answers without a creation; a creation counts against
			// the rates (strangers may ask for any id).
			if err := h.Manager.Refused(k); err != nil {
				return nil, st, err
			}
			if err := h.allowOnDemand(r); err != nil {
				return nil, st, err
			}
			if _, err := h.Manager.CreateOnDemand(ctx, k, h.Origin(r, k.Video)); err != nil {
				if errors.Is(err, packager.ErrNotFound) || errors.Is(err, packager.ErrLive) {
					return nil, st, err
				}
				if ctx.Err() != nil {
					return nil, st, packager.ErrInProgress
				}
				return nil, st, errors.Join(errCreate, err)
			}
		}
		// Instant delivery answers at once (fMP4 sources); else the file is waited for.
		wait := time.Millisecond // the wait is over: at once, or in progress
		if dl, ok := ctx.Deadline(); ok {
			wait = max(wait, time.Until(dl))
		}
		f, st, err := h.Manager.OpenWithin(r.Context(), k, wait)
		if errors.Is(err, packager.ErrInProgress) {
			h.Manager.Wait(ctx, k)
			f, st, err = h.Manager.OpenWithin(r.Context(), k, time.Millisecond) // a plan made meanwhile
		}
		if !errors.Is(err, packager.ErrEvicted) && !errors.Is(err, packager.ErrNotCreated) || ctx.Err() != nil {
			return f, st, err
		}
	}
	return nil, packager.State{}, packager.ErrInProgress
}

// retryAfter is the Retry-After, in seconds, of a 503 for a file being packaged.
func retryAfter(onDemand time.Duration) int {
	return max(5, int(onDemand/time.Second))
}

// refuse answers a delivery that cannot be served: through the site's handle_errors
// routes when they would handle it (errorRoutes), else with writeLine's one line. The
// headers already set on w (Retry-After, Allow, WWW-Authenticate) are kept either way.
func refuse(w http.ResponseWriter, r *http.Request, status int, msg string) error {
	if errorRoutes(r, status, msg) {
		return pageError(w, status, msg)
	}
	return writeLine(w, status, msg)
}

// pageError hands status to Caddy's error routes, msg being {http.error.message}: one
// line, without paths or tokens, as writeLine's. Caddy's server logs an error that its
// routes handled at Debug, so a client polling a download being packaged (503) adds no
// ERROR line; the body, Content-Type included, is the routes' to write.
func pageError(w http.ResponseWriter, status int, msg string) error {
	w.Header().Set("Cache-Control", "no-store")
	return caddyhttp.Error(status, errors.New(msg))
}

// errorRoutes reports whether the server's handle_errors routes would handle an error
// of status for r: a route matches it (the site's host matcher, a handle_errors status
// list) and has a handler of its own, directly or in the subroutes it holds. Without
// such a route Caddy's server would answer the bare status with no body — and log a 5xx
// at ERROR — so the delivery answers itself (docs/spec.md §3.2).
func errorRoutes(r *http.Request, status int, msg string) bool {
	srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv == nil || srv.Errors == nil || len(srv.Errors.Routes) == 0 {
		return false
	}
	// The routes' matchers see the error as Caddy's server will give it to them, in a
	// replacer of their own: the request's is left as it is.
	herr := caddyhttp.HandlerError{StatusCode: status, Err: errors.New(msg)}
	orig, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl := caddy.NewReplacer()
	repl.Map(func(key string) (any, bool) {
		switch key {
		case "http.error":
			return herr, true
		case "http.error.status_code":
			return status, true
		case "http.error.status_text":
			return http.StatusText(status), true
		case "http.error.message":
			return msg, true
		case "http.error.id", "http.error.trace":
			return "", true
		}
		if orig == nil {
			return nil, false
		}
		return orig.Get(key)
	})
	ctx := context.WithValue(r.Context(), caddyhttp.ErrorCtxKey, error(herr))
	ctx = context.WithValue(ctx, caddy.ReplacerCtxKey, repl)
	er := r.WithContext(ctx)
	// And the request as the server gives it to them: as it came, before any rewrite.
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		u := *orig.URL
		er.Method, er.RemoteAddr, er.RequestURI, er.URL = orig.Method, orig.RemoteAddr, orig.RequestURI, &u
	}
	return handles(srv.Errors.Routes, er)
}

// handles reports whether routes would handle r: a route that matches it and has a
// handler other than a subroute, or a subroute that handles r. A matcher that fails
// counts as handling: Caddy's server then answers as it sees fit.
func handles(routes caddyhttp.RouteList, r *http.Request) bool {
	for _, route := range routes {
		ok, err := route.MatcherSets.AnyMatchWithError(r)
		if err != nil {
			return true
		}
		if !ok {
			continue
		}
		for _, mh := range route.Handlers {
			sub, isSub := mh.(*caddyhttp.Subroute)
			if !isSub || handles(sub.Routes, r) {
				return true
			}
		}
		if route.Terminal {
			return false
		}
	}
	return false
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

// prepareServe sets the headers of a file or clip of type typ with etag (and the
// download's file name, when asked for) and clamps the request's Range, before
// http.ServeContent answers it.
func prepareServe(w http.ResponseWriter, r *http.Request, typ packager.Type, etag, name string) {
	hdr := w.Header()
	hdr.Set("Content-Type", typ.ContentType)
	hdr.Set("ETag", etag)
	if name != "" {
		hdr.Set("Content-Disposition", `attachment; filename="`+name+typ.Ext+`"`)
	}
	if rng, ok := normalizeRange(r.Header.Get("Range")); ok {
		if rng == "" {
			r.Header.Del("Range")
		} else {
			r.Header.Set("Range", rng)
		}
	}
}
