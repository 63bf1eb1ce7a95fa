// Package hls resolves an origin's HLS (RFC 8216) playlists to the list of
// media segments of a finished (VOD) stream, and fetches those segments in
// parallel while handing them to the caller strictly in order.
//
// Only the playlist parser of github.com/bluenviron/gohlslib/v2/pkg/playlist
// is used; requests, retries and pacing are this package's own.
package hls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
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

// Backoff parameters; variables so tests can shrink them.
var (
	backoffBase = 250 * time.Millisecond
	backoffMax  = 8 * time.Second
	// maxRetryAfter caps how long a Retry-After header can make us wait.
	maxRetryAfter = 30 * time.Second
)

// sleep waits d or until ctx is done. Tests replace it to avoid real waits.
var sleep = func(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// now is the clock used to interpret Retry-After dates.
var now = time.Now

// defaultHTTP is shared by every Client without its own HTTP client, so that
// kept-alive connections are reused across playlists, segments and jobs.
var defaultHTTP = &http.Client{Transport: newTransport()}

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
	// HTTP is the client used for every request. nil: a package default
	// shared by all Clients, with keep-alive, MaxIdleConnsPerHost 64 and
	// connect/TLS timeouts (waits for headers and body are bounded by
	// StallTimeout). Its CheckRedirect is not used: redirects follow the
	// AllowedHosts rules.
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
	return defaultHTTP
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

// get fetches u into buf (which it resets), retrying transient faults. It
// returns the final URL after redirects, which pol must allow (nil: u's own
// host only). A cancelled ctx yields ctx's cause; any other failure is an
// *OriginError.
func (c *Client) get(ctx context.Context, u *url.URL, pol *hostPolicy, buf *bytes.Buffer, limit sizeLimit) (*url.URL, error) {
	return c.getRange(ctx, u, pol, nil, buf, limit)
}

// getRange is get for the sub-range rng of u (the whole resource when rng
// is nil), asked for with a Range header. A 206 answer must hold exactly
// the range; a 200 answer (a server that ignores Range) is sliced here,
// reading no further than the range's end.
func (c *Client) getRange(ctx context.Context, u *url.URL, pol *hostPolicy, rng *ByteRange, buf *bytes.Buffer, limit sizeLimit) (*url.URL, error) {
	if pol != nil && !pol.allows(u) {
		// Resolve refuses such URLs already; this guards Segments, Maps
		// and Keys edited by the caller.
		return nil, &OriginError{URL: describeResource(u, rng), Attempts: 0,
			Err: &forbiddenError{fmt.Sprintf("host not allowed: %s is neither on the origin's host (%s) nor in allowed_hosts", RedactURL(u), pol.originName())}}
	}
	retries := c.retries()
	hc := pol.httpClient(c.httpClient(), u)
	for attempt := 0; ; attempt++ {
		buf.Reset()
		final, err := c.getOnce(ctx, hc, u, rng, buf, limit)
		if err == nil {
			return final, nil
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if !transient(err) || attempt >= retries {
			buf.Reset()
			oe := &OriginError{URL: describeResource(u, rng), Attempts: attempt + 1}
			var se *statusError
			if errors.As(err, &se) {
				oe.Status = se.code
			} else {
				oe.Err = describeTransport(err)
			}
			return nil, oe
		}
		if err := sleep(ctx, retryDelay(attempt, err)); err != nil {
			return nil, err
		}
	}
}

// retryDelay is the wait before retry number attempt+1: exponential backoff
// from backoffBase capped at backoffMax, with jitter in [d/2, d), raised to
// the server's Retry-After (capped at maxRetryAfter) when it sent one.
func retryDelay(attempt int, err error) time.Duration {
	d := backoffBase
	for i := 0; i < attempt && d < backoffMax; i++ {
		d *= 2
	}
	d = min(d, backoffMax)
	d = d/2 + rand.N(d/2+1)
	var se *statusError
	if errors.As(err, &se) && se.retryAfter != "" {
		if ra, ok := parseRetryAfter(se.retryAfter); ok {
			d = max(d, min(ra, maxRetryAfter))
		}
	}
	return d
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string) (time.Duration, bool) {
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now()), 0), true
	}
	return 0, false
}

// getOnce is one attempt of getRange.
func (c *Client) getOnce(ctx context.Context, hc *http.Client, u *url.URL, rng *ByteRange, buf *bytes.Buffer, limit sizeLimit) (*url.URL, error) {
	if rng != nil && rng.Length > limit.n {
		return nil, limit.tooLarge(rng.Length)
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	req, err := c.newRequest(actx, u)
	if err != nil {
		return nil, err
	}
	if rng != nil {
		req.Header.Set("Range", rng.String())
	}

	// The watchdog cancels the attempt when nothing arrives for stall.
	stall := c.stallTimeout()
	watchdog := time.AfterFunc(stall, func() {
		cancel(&stallError{timeout: stall.String()})
	})
	defer watchdog.Stop()

	resp, err := hc.Do(req)
	if err != nil {
		if cause := context.Cause(actx); ctx.Err() == nil && cause != nil {
			return nil, cause
		}
		return nil, err
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Drain a little so that the connection can be reused.
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		return nil, &statusError{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	}
	if rng != nil {
		return readRange(ctx, actx, resp, rng, buf, watchdog, stall)
	}
	if resp.ContentLength > limit.n {
		return nil, limit.tooLarge(resp.ContentLength)
	}
	if resp.ContentLength > 0 {
		growExact(buf, int(resp.ContentLength))
	}
	watchdog.Reset(stall)
	n, err := buf.ReadFrom(&progressReader{r: io.LimitReader(resp.Body, limit.n+1), watchdog: watchdog, stall: stall})
	if err != nil {
		if cause := context.Cause(actx); ctx.Err() == nil && cause != nil {
			return nil, cause
		}
		return nil, err
	}
	if n > limit.n {
		return nil, limit.tooLarge(-1)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return nil, io.ErrUnexpectedEOF
	}
	return resp.Request.URL, nil
}

// growExact makes room in buf for n more bytes, plus bytes.MinRead for ReadFrom's
// last call (which finds EOF; without that room it would double a full buffer). When
// buf must grow, it gets exactly that room, not the twice its capacity of
// bytes.Buffer.Grow: segment buffers are large and held several at a time.
func growExact(buf *bytes.Buffer, n int) {
	need := n + bytes.MinRead
	if buf.Cap()-buf.Len() >= need {
		return
	}
	b := make([]byte, buf.Len(), buf.Len()+need)
	copy(b, buf.Bytes())
	*buf = *bytes.NewBuffer(b)
}

// readRange reads the answer to a Range request for rng into buf.
func readRange(ctx, actx context.Context, resp *http.Response, rng *ByteRange, buf *bytes.Buffer, watchdog *time.Timer, stall time.Duration) (*url.URL, error) {
	body := &progressReader{r: resp.Body, watchdog: watchdog, stall: stall}
	fail := func(err error) (*url.URL, error) {
		if cause := context.Cause(actx); ctx.Err() == nil && cause != nil {
			return nil, cause
		}
		return nil, err
	}
	last := rng.Offset + rng.Length - 1
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if cr := resp.Header.Get("Content-Range"); cr != "" {
			first, end, ok := parseContentRange(cr)
			if !ok {
				return nil, permanent(fmt.Errorf("answered 206 with an unreadable Content-Range %q", truncate(cr, 60)))
			}
			if first != rng.Offset || end != last {
				return nil, permanent(fmt.Errorf("answered 206 with bytes %d-%d for the requested %d-%d", first, end, rng.Offset, last))
			}
		}
		if resp.ContentLength >= 0 && resp.ContentLength != rng.Length {
			return nil, permanent(fmt.Errorf("answered 206 with %d bytes for a %d-byte range", resp.ContentLength, rng.Length))
		}
		watchdog.Reset(stall)
		growExact(buf, int(rng.Length))
		n, err := buf.ReadFrom(io.LimitReader(body, rng.Length+1))
		if err != nil {
			return fail(err)
		}
		switch {
		case n < rng.Length && resp.ContentLength >= 0:
			return nil, io.ErrUnexpectedEOF // truncated: worth a retry
		case n < rng.Length:
			return nil, permanent(fmt.Errorf("answered 206 with %d bytes for a %d-byte range", n, rng.Length))
		case n > rng.Length:
			return nil, permanent(fmt.Errorf("answered 206 with more than %d bytes for a %d-byte range", rng.Length, rng.Length))
		}
	case http.StatusOK:
		// The server ignored Range: skip to the range and read it only.
		if resp.ContentLength >= 0 && resp.ContentLength < rng.Offset+rng.Length {
			return nil, permanent(fmt.Errorf("the resource is %d bytes, shorter than the range %d-%d", resp.ContentLength, rng.Offset, last))
		}
		watchdog.Reset(stall)
		if skipped, err := io.CopyN(io.Discard, body, rng.Offset); err != nil {
			if err == io.EOF && resp.ContentLength < 0 {
				return nil, permanent(fmt.Errorf("the resource is %d bytes, shorter than the range %d-%d", skipped, rng.Offset, last))
			}
			return fail(err)
		}
		growExact(buf, int(rng.Length))
		n, err := buf.ReadFrom(io.LimitReader(body, rng.Length))
		if err != nil {
			return fail(err)
		}
		if n != rng.Length {
			if resp.ContentLength < 0 {
				return nil, permanent(fmt.Errorf("the resource is %d bytes, shorter than the range %d-%d", rng.Offset+n, rng.Offset, last))
			}
			return nil, io.ErrUnexpectedEOF
		}
	default:
		return nil, permanent(fmt.Errorf("answered %d %s to a Range request", resp.StatusCode, http.StatusText(resp.StatusCode)))
	}
	return resp.Request.URL, nil
}

// parseContentRange reads "bytes first-last/total" (total may be "*").
func parseContentRange(v string) (first, last int64, ok bool) {
	v, found := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !found {
		return 0, 0, false
	}
	r, _, _ := strings.Cut(v, "/")
	a, b, found := strings.Cut(r, "-")
	if !found {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	last, err2 := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first {
		return 0, 0, false
	}
	return first, last, true
}

// progressReader re-arms the stall watchdog whenever bytes arrive.
type progressReader struct {
	r        io.Reader
	watchdog *time.Timer
	stall    time.Duration
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.watchdog.Reset(p.stall)
	}
	return n, err
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

// newRequest makes a GET of u with the client's extra headers; a "Host" entry sets the
// request's Host.
func (c *Client) newRequest(ctx context.Context, u *url.URL) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	for k, vs := range c.Header {
		if http.CanonicalHeaderKey(k) == "Host" {
			if len(vs) > 0 {
				req.Host = vs[0]
			}
			continue
		}
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return req, nil
}
