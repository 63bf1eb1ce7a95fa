// Package hls resolves an origin's HLS (RFC 8216) playlists to the list of
// media segments of a finished (VOD) stream, and fetches those segments in
// parallel while handing them to the caller strictly in order.
//
// Only the playlist parser of github.com/bluenviron/gohlslib/v2/pkg/playlist
// is used; requests, retries and pacing are this package's own.
package hls

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Defaults and limits.
const (
	// DefaultRetries is the number of retries after a first failed attempt
	// when Client.Retries is 0.
	DefaultRetries = 4
	// DefaultStallTimeout is how long a request may go without progress
	// (no response headers yet, or no body bytes) when Client.StallTimeout is 0.
	DefaultStallTimeout = 30 * time.Second
	// MaxPlaylistSize is the largest playlist body accepted.
	MaxPlaylistSize = 16 << 20
	// MaxSegmentSize is the largest segment body accepted.
	MaxSegmentSize = 1 << 30
	// DefaultMaxSegments is the most segments one rendition may have.
	DefaultMaxSegments = 100_000
	// DefaultMaxDuration is the longest stream accepted.
	DefaultMaxDuration = 24 * time.Hour
)

// Backoff parameters.
const (
	backoffBase = 250 * time.Millisecond
	backoffMax  = 8 * time.Second
	// maxRetryAfter caps how long a Retry-After header can make us wait.
	maxRetryAfter = 30 * time.Second
)

// sleepCtx waits d or until ctx is done: the wait between retries of a
// Client whose tuning has no sleep.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// NewHTTPClient returns the HTTP client a Client is meant to be given (Client.HTTP):
// its transport (newTransport) keeps connections alive for reuse across playlists,
// segments and jobs, so whoever makes the Clients should make it once and keep it as
// long as it runs (a Manager across config reloads, so that jobs running across a
// reload keep their connections), and close its idle connections when done.
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: newTransport()}
}

// defaultHTTP serves the Clients not given an HTTP client (Client.HTTP nil),
// made on first use.
var defaultHTTP = sync.OnceValue(NewHTTPClient)

// newTransport speaks HTTP/1.1 only, also to origins that offer HTTP/2: Fetch's parallel
// requests are meant to be as many TCP connections, each with its own share of a distant
// origin's bandwidth (which CDNs and long paths cap per connection); over HTTP/2 they
// would be streams of a single connection.
func newTransport() *http.Transport {
	var h1 http.Protocols
	h1.SetHTTP1(true)
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		Protocols:             &h1,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64, // ≥ any sensible fetch_concurrency
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// No ResponseHeaderTimeout: Client.StallTimeout bounds the wait for
		// headers and for body bytes, whatever the http.Client.
	}
}

// Client fetches playlists and segments from one origin. The zero value is
// ready to use; a Client is safe for concurrent use.
type Client struct {
	// HTTP is the client used for every request, owned by the caller: make
	// it with NewHTTPClient (keep-alive, HTTP/1.1 only, MaxIdleConnsPerHost
	// 64, connect/TLS timeouts; waits for headers and body are bounded by
	// StallTimeout) and share it across the Clients made over time. nil: a
	// package default shared by all Clients that have none. Its
	// CheckRedirect is not used: redirects follow the AllowedHosts rules.
	HTTP *http.Client

	// Header holds extra headers for every origin request (config option
	// origin_header). A "Host" entry sets the request's Host.
	Header http.Header

	// Retries is how many times a request that failed transiently (timeout,
	// connection error, truncated body, 5xx, 408, 429) is tried again, with
	// capped exponential backoff plus jitter; a Retry-After header is
	// honoured up to 30s. 0 means DefaultRetries; negative means no retries.
	// Other 4xx answers are never retried.
	Retries int

	// StallTimeout bounds how long one attempt may wait for the response
	// headers or for the next body bytes. 0 means DefaultStallTimeout.
	StallTimeout time.Duration

	// Limits bound what a playlist may make the client fetch; zero fields
	// take the defaults.
	Limits Limits

	// AllowedHosts lists the hosts, besides the top-level playlist's, that
	// playlists may point variants, renditions, segments, init sections and
	// keys at, and that origin requests may be redirected to. A playlist must
	// not make the edge fetch other (e.g. internal) addresses: such URLs are
	// refused with ErrForbiddenHost before any request is made to them.
	//
	// An entry is a host name or IP address ("cdn.example.com", "10.0.0.7"),
	// "*.example.com" for every subdomain of example.com (not example.com
	// itself), optionally with a port ("cdn.example.com:8443",
	// "[2001:db8::1]:8080"). Host names compare case-insensitively. An entry
	// without a port matches ports 80 and 443 and the origin's port; with a
	// port, that port only. The top-level playlist's host matches on its own
	// port (and on 80 and 443 when its port is one of them). Only http and
	// https URLs are fetched (data: URIs are accepted for keys). Redirects
	// are followed up to 5 times, each to an allowed URL; Resolve takes the
	// host of the URL it is given as the origin's, so a top-level playlist
	// redirected to another host needs that host listed too.
	//
	// Names are not resolved to check their addresses: a listed name must be
	// trusted not to point at internal addresses.
	AllowedHosts []string

	// Log receives Debug lines about retries, stalls and redirects, with URLs
	// redacted (RedactURL: no query, no user info) and never a header: give it
	// the job's logger, naming its video and type. nil: no log.
	Log *zap.Logger

	// Meter counts origin requests, bytes and retries; nil: none.
	Meter Meter

	// Validators, when not nil, records the validators of the resources fetched
	// (a download's ETag is computed from them), and OpenRange refuses an answer
	// whose validator differs from the one recorded.
	Validators *Validators

	tune tuning // sizes and seams tests change
}

// tuning holds the sizes of Fetch and the seams of the retries that tests
// change, per Client so that such tests can run in parallel; zero fields take
// the defaults.
type tuning struct {
	partSize    int // defaultPartSize; a multiple of blockSize, or smaller than it
	blockSize   int // defaultBlockSize; a multiple of the AES block size
	fetchBudget int // defaultFetchBudget
	// sleep waits d or until ctx is done, between retries; nil: sleepCtx.
	sleep func(ctx context.Context, d time.Duration) error
	// now is the clock that reads Retry-After dates; nil: time.Now.
	now func() time.Time
	// dispatchWait, a test hook, is called (the fetcher's lock held) each
	// time Fetch's dispatcher waits for a change, with the requests then in
	// flight: at 0 nothing changes any more until the reader moves on.
	dispatchWait func(inflight int)
}

// Limits bound one stream's size; a zero (or negative) field means its
// default. Exceeding one fails with an error matching ErrLimit that names the
// config option (limits.playlist_size, limits.segment_size, limits.segments,
// limits.duration).
type Limits struct {
	PlaylistSize int64         // bytes of one playlist (default MaxPlaylistSize)
	SegmentSize  int64         // bytes of one segment or init section (default MaxSegmentSize; init sections never more than MaxMapSize)
	Segments     int           // segments of one rendition, gaps included, checked by Resolve (default DefaultMaxSegments)
	Duration     time.Duration // total EXTINF of one rendition, checked by Resolve (default DefaultMaxDuration)
}

func (l Limits) playlistSize() sizeLimit {
	if l.PlaylistSize > 0 {
		return sizeLimit{n: l.PlaylistSize, name: "limits.playlist_size"}
	}
	return sizeLimit{n: MaxPlaylistSize, name: "limits.playlist_size"}
}

func (l Limits) segmentSize() sizeLimit {
	if l.SegmentSize > 0 {
		return sizeLimit{n: l.SegmentSize, name: "limits.segment_size"}
	}
	return sizeLimit{n: MaxSegmentSize, name: "limits.segment_size"}
}

func (l Limits) mapSize() sizeLimit {
	if s := l.segmentSize(); s.n <= MaxMapSize {
		return s
	}
	return sizeLimit{n: MaxMapSize, what: "an init section (EXT-X-MAP)"}
}

func (l Limits) segments() int {
	if l.Segments > 0 {
		return l.Segments
	}
	return DefaultMaxSegments
}

func (l Limits) duration() time.Duration {
	if l.Duration > 0 {
		return l.Duration
	}
	return DefaultMaxDuration
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP()
}

// sleep waits d or until ctx is done: c.tune.sleep, or sleepCtx.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.tune.sleep != nil {
		return c.tune.sleep(ctx, d)
	}
	return sleepCtx(ctx, d)
}

// now is the time by c.tune.now, or time.Now.
func (c *Client) now() time.Time {
	if c.tune.now != nil {
		return c.tune.now()
	}
	return time.Now()
}

func (c *Client) retries() int {
	switch {
	case c.Retries == 0:
		return DefaultRetries
	case c.Retries < 0:
		return 0
	}
	return c.Retries
}

func (c *Client) stallTimeout() time.Duration {
	if c.StallTimeout > 0 {
		return c.StallTimeout
	}
	return DefaultStallTimeout
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + " GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
