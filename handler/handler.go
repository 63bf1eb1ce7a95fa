// Package handler is the HTTP side of stream_downloads: the management API
// (…/stream/{video}/downloads[/{type}]) and the delivery of packaged files
// (…/{video}/downloads/default.mp4). Everything else goes to the next handler.
package handler

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
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
	// Types names the download types that may be created and delivered (the types
	// option); empty: all.
	Types []string
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
	// OnDemandClientRate and OnDemandRate bound the downloads that on-demand GETs
	// create, per minute, from one client address (an IPv6 /64) and in all; beyond,
	// such a GET answers 429. 0: DefaultOnDemandClientRate, DefaultOnDemandRate.
	OnDemandClientRate int
	OnDemandRate       int

	// Meter counts the requests answered, the bytes delivered and the token checks
	// (the module's metrics); nil: none.
	Meter Meter
	// Denied, when set, hears each delivery refused because of its token or its lack
	// of one (the stream_download_denied event). It never gets the token.
	Denied func(r *http.Request, d Denial)

	hashOnce    sync.Once
	tokenHashes [][sha256.Size]byte

	limitOnce sync.Once
	limits    *rateLimits
}

// Defaults of the on-demand creation rates, per minute: a viewer creates one download
// per video, and max_jobs packages a few at a time anyway.
const (
	DefaultOnDemandClientRate = 10
	DefaultOnDemandRate       = 120
)

// errRateLimited refuses an on-demand creation beyond the rates; retry is when a
// creation is allowed again.
type errRateLimited struct {
	client bool // the client's rate, not the global one
	retry  time.Duration
}

func (e *errRateLimited) Error() string {
	if e.client {
		return fmt.Sprintf("too many downloads created on demand from this address; try again in %v", e.retry.Round(time.Second))
	}
	return fmt.Sprintf("too many downloads created on demand; try again in %v", e.retry.Round(time.Second))
}

// allowOnDemand counts an on-demand creation for the request's client, or refuses it
// with an *errRateLimited.
func (h *Handler) allowOnDemand(r *http.Request) error {
	h.limitOnce.Do(func() {
		client, all := h.OnDemandClientRate, h.OnDemandRate
		if client <= 0 {
			client = DefaultOnDemandClientRate
		}
		if all <= 0 {
			all = DefaultOnDemandRate
		}
		h.limits = newRateLimits(client, all)
	})
	return h.limits.allow(clientIP(r), now())
}

// maxRateClients bounds the client addresses whose rate is kept; beyond, those whose
// bucket is full again go first, then any (a flood of addresses then shares the
// global rate, which still holds).
const maxRateClients = 10_000

// rateLimits are token buckets: one per client address and one for all, each holding
// up to a minute's worth of creations and refilled at its rate.
type rateLimits struct {
	mu      sync.Mutex
	client  float64 // creations per minute per client
	all     bucket
	clients map[netip.Prefix]*bucket
}

type bucket struct {
	rate   float64 // tokens per minute, and the most it holds
	tokens float64
	at     time.Time
}

func newRateLimits(client, all int) *rateLimits {
	return &rateLimits{
		client:  float64(client),
		all:     bucket{rate: float64(all), tokens: float64(all)},
		clients: make(map[netip.Prefix]*bucket),
	}
}

// refill brings b's tokens up to t.
func (b *bucket) refill(t time.Time) {
	if !b.at.IsZero() {
		b.tokens = min(b.rate, b.tokens+t.Sub(b.at).Minutes()*b.rate)
	}
	b.at = t
}

// wait is how long until b holds a token.
func (b *bucket) wait() time.Duration {
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Minute))
}

func (l *rateLimits) allow(ip netip.Addr, t time.Time) error {
	key := netip.PrefixFrom(ip, ip.BitLen())
	if ip.Is6() && !ip.Is4In6() {
		key, _ = ip.Prefix(64) // one subscriber, one /64
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[key]
	if c == nil {
		l.prune(t)
		c = &bucket{rate: l.client, tokens: l.client, at: t}
		l.clients[key] = c
	}
	c.refill(t)
	l.all.refill(t)
	if c.tokens < 1 {
		return &errRateLimited{client: true, retry: c.wait()}
	}
	if l.all.tokens < 1 {
		return &errRateLimited{retry: l.all.wait()}
	}
	c.tokens--
	l.all.tokens--
	return nil
}

// prune makes room for one more client. Call with l.mu held.
func (l *rateLimits) prune(t time.Time) {
	if len(l.clients) < maxRateClients {
		return
	}
	for k, b := range l.clients {
		if b.refill(t); b.tokens >= b.rate {
			delete(l.clients, k)
		}
	}
	for k := range l.clients {
		if len(l.clients) < maxRateClients {
			break
		}
		delete(l.clients, k)
	}
}

// ValidID reports whether s may be a video id: it is checked before an id reaches a
// path or a URL.
func ValidID(s string) bool { return packager.ValidID(s) }

// ServeHTTP implements caddyhttp.MiddlewareHandler's method.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	kind, serve := h.route(r)
	if serve == nil {
		return next.ServeHTTP(w, r)
	}
	if h.Meter == nil {
		return serve(w, r)
	}
	cw := &countingWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	err := serve(cw, r)
	status := cw.status
	if status == 0 { // nothing written: the error is Caddy's to answer
		var he caddyhttp.HandlerError
		switch {
		case errors.As(err, &he) && he.StatusCode != 0:
			status = he.StatusCode
		case err != nil:
			status = http.StatusInternalServerError
		default:
			status = http.StatusOK
		}
	}
	h.Meter.Request(kind, status, cw.bytes)
	return err
}

// route names the kind of r ("delivery", "api" or "token") and the method that serves
// it; nil when r is for the next handler.
func (h *Handler) route(r *http.Request) (string, func(http.ResponseWriter, *http.Request) error) {
	seg := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	n := len(seg)
	if n >= 3 && seg[n-2] == "downloads" {
		if typ, ok := packager.TypeFromFile(seg[n-1]); ok {
			return "delivery", func(w http.ResponseWriter, r *http.Request) error { return h.deliver(w, r, seg[n-3], typ) }
		}
		if name, ok := sidecarOf(seg[n-1]); ok {
			return "delivery", func(w http.ResponseWriter, r *http.Request) error { return h.deliverSidecar(w, r, seg[n-3], name) }
		}
	}
	switch {
	case n >= 3 && seg[n-1] == "downloads" && seg[n-3] == "stream":
		return "api", func(w http.ResponseWriter, r *http.Request) error { return h.api(w, r, seg[n-2], "") }
	case n >= 4 && seg[n-2] == "downloads" && seg[n-4] == "stream":
		return "api", func(w http.ResponseWriter, r *http.Request) error { return h.api(w, r, seg[n-3], seg[n-1]) }
	case n >= 3 && seg[n-1] == "token" && seg[n-3] == "stream":
		return "token", func(w http.ResponseWriter, r *http.Request) error { return h.signToken(w, r, seg[n-2]) }
	}
	return "", nil
}

// Meter counts what the handler answers, for the module's metrics. Its methods must be
// cheap and safe for concurrent use.
type Meter interface {
	// Request: a request of kind "delivery", "api" or "token" was answered with status
	// and bytes of body.
	Request(kind string, status int, bytes int64)
	// TokenCheck: a delivery's token (or its lack) was judged: result is "ok",
	// "unsigned" (a plain id where a token is needed), "malformed", "not_configured",
	// "expired", "not_yet_valid", "bad_signature", "unknown_key", "algorithm",
	// "invalid", "not_downloadable" or "rule_blocked"; cached: the
	// token's signature was verified before (the verification cache).
	TokenCheck(result string, cached bool)
}

// Denial is a delivery refused because of its token, for Handler.Denied.
type Denial struct {
	Video  string // the video asked for; empty when a token that does not verify hides it
	Type   string // the download type of the file asked for
	Status int    // 400, 401 or 403
	Result string // as Meter.TokenCheck's
	Reason string // the one line the client got
}

// countingWriter notes the status and the body bytes of an answer. Its ReadFrom keeps
// the underlying writer's (sendfile).
type countingWriter struct {
	*caddyhttp.ResponseWriterWrapper
	status int
	bytes  int64
}

func (c *countingWriter) WriteHeader(status int) {
	if c.status == 0 && status >= 200 || status == http.StatusSwitchingProtocols {
		c.status = status
	}
	c.ResponseWriterWrapper.WriteHeader(status)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriterWrapper.Write(b)
	c.bytes += int64(n)
	return n, err
}

func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriterWrapper.ReadFrom(r)
	c.bytes += n
	return n, err
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
