// Package handler is the HTTP side of stream_downloads: the management API
// (…/stream/{video}/downloads[/{type}]) and the delivery of packaged files
// (…/{video}/downloads/default.mp4). Everything else goes to the next handler.
package handler

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager"
	"github.com/stream-downloads/caddy-stream-downloads/tokens"
)

// Handler serves the API and the files. Its fields are set once, before use.
type Handler struct {
	// Manager runs and tracks the downloads.
	Manager *packager.Manager
	// APITokens are the accepted bearer tokens; none: every API request is refused.
	APITokens []string
	// PublicURL is the base of the "url" fields; empty: the request's scheme and host.
	PublicURL string
	// Origin returns the playlist URL of video for this request (the configured
	// template with its placeholders replaced).
	Origin func(r *http.Request, video string) string
	// Logger receives request-level problems; tokens never go to it.
	Logger *zap.Logger

	// RequireSigned makes every video private: its files need a signed token.
	RequireSigned bool
	// Verifier checks signed tokens; nil when no signing key is configured.
	Verifier *tokens.Verifier
	// Signer signs tokens for POST …/token; nil without a private signing key.
	Signer *tokens.Key
	// GeoIP gives the client's country for ip.geoip.country rules; nil: none.
	GeoIP *tokens.GeoIP
	// CountryHeader, when set, names a trusted request header that holds the country.
	CountryHeader string
	// OnDemand, when above zero, makes a GET of a file that is not packaged start
	// packaging it and wait up to this long before answering 503.
	OnDemand time.Duration

	hashOnce    sync.Once
	tokenHashes [][sha256.Size]byte
}

// Download types and the file names they are delivered as.
var fileNames = map[string]string{
	"default": "default.mp4",
	"audio":   "audio.m4a",
}

var validID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// ValidID reports whether s may be a video id: it is checked before an id reaches a
// path or a URL.
func ValidID(s string) bool { return validID.MatchString(s) }

// ServeHTTP implements caddyhttp.MiddlewareHandler's method.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	seg := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	n := len(seg)
	switch {
	case n >= 3 && seg[n-2] == "downloads" && isFileName(seg[n-1]):
		return h.deliver(w, r, seg[n-3], strings.SplitN(seg[n-1], ".", 2)[0])
	case n >= 3 && seg[n-1] == "downloads" && seg[n-3] == "stream":
		return h.api(w, r, seg[n-2], "")
	case n >= 4 && seg[n-2] == "downloads" && seg[n-4] == "stream":
		return h.api(w, r, seg[n-3], seg[n-1])
	case n >= 3 && seg[n-1] == "token" && seg[n-3] == "stream":
		return h.signToken(w, r, seg[n-2])
	}
	return next.ServeHTTP(w, r)
}

func isFileName(s string) bool {
	for _, f := range fileNames {
		if s == f {
			return true
		}
	}
	return false
}

// authorized checks the bearer token in constant time against every configured one.
func (h *Handler) authorized(r *http.Request) bool {
	h.hashOnce.Do(func() {
		for _, t := range h.APITokens {
			h.tokenHashes = append(h.tokenHashes, sha256.Sum256([]byte(t)))
		}
	})
	auth := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(auth) <= len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(auth[len(prefix):])))
	ok := 0
	for _, want := range h.tokenHashes {
		ok |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	return ok == 1
}

// baseURL is where delivery URLs start.
func (h *Handler) baseURL(r *http.Request) string {
	if h.PublicURL != "" {
		return strings.TrimSuffix(h.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
