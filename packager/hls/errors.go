package hls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Sentinel errors. Match them with errors.Is; every error this package returns
// reads as one line a user understands.
var (
	// ErrNotFound: the origin answered 404 or 410 for the top-level playlist,
	// i.e. it does not have the video. It is wrapped in an *OriginError.
	ErrNotFound = errors.New("video not found at the origin")

	// ErrLive: the media playlist has no EXT-X-ENDLIST (a live or event stream
	// that is still growing), so there is no complete file to make yet.
	ErrLive = errors.New("live stream")

	// ErrMalformed: a playlist could not be parsed or makes no sense; the
	// wrapping error names the playlist and the reason.
	ErrMalformed = errors.New("malformed playlist")

	// ErrUnsupported: the playlist is valid but uses a feature this package
	// does not handle: DRM encryption (SAMPLE-AES and the like), AES-256,
	// key URIs that are not http(s) or base64 data: URIs, I-frames-only
	// (trick-play) playlists.
	ErrUnsupported = errors.New("unsupported stream")

	// ErrTooLarge: a playlist, segment, init section or key body exceeded
	// its size limit (Limits.PlaylistSize, Limits.SegmentSize, …). It is
	// wrapped in an *OriginError, and such errors match ErrLimit too.
	ErrTooLarge = errors.New("response too large")

	// ErrLimit: the stream exceeds one of the Client's Limits: a playlist or
	// segment too large (with ErrTooLarge, in an *OriginError), too many
	// segments or too long a duration (from Resolve, before any segment is
	// fetched). The message names the limit and its config option, e.g.
	//
	//	limit exceeded: the playlist http://host/v/index.m3u8 has 250000 segments, more than limits.segments (100000)
	ErrLimit = errors.New("limit exceeded")

	// ErrForbiddenHost: a playlist points a variant, rendition, segment, init
	// section or key at a URL the client must not fetch (a host other than
	// the top-level playlist's and those in Client.AllowedHosts, or a scheme
	// other than http and https; data: is accepted for keys only), or an
	// origin request was redirected to one. Nothing is requested from such
	// a URL. From Resolve it is returned as is; a refused redirect comes
	// wrapped in an *OriginError naming the URL that was redirected.
	ErrForbiddenHost = errors.New("host not allowed")
)

// sizeLimit is a bound on one response body, with the name messages give it.
type sizeLimit struct {
	n    int64
	name string // e.g. "limits.segment_size"; "" → "the n allowed for a <what>"
	what string // used when name is ""
}

func (l sizeLimit) String() string {
	if l.name != "" {
		return fmt.Sprintf("%s (%s)", l.name, sizeString(l.n))
	}
	return fmt.Sprintf("the %s allowed for %s", sizeString(l.n), l.what)
}

// tooLarge is the error of a body over l; size < 0 when unknown (chunked).
func (l sizeLimit) tooLarge(size int64) error {
	if size < 0 {
		return &limitError{msg: "response too large: more than " + l.String(), tooLarge: true}
	}
	return &limitError{msg: fmt.Sprintf("response too large: %s, more than %s", sizeString(size), l), tooLarge: true}
}

// limitError is a Limits violation; it matches ErrLimit (and ErrTooLarge for
// a body over its size limit).
type limitError struct {
	msg      string
	tooLarge bool
}

func (e *limitError) Error() string { return e.msg }
func (e *limitError) Is(target error) bool {
	return target == ErrLimit || e.tooLarge && target == ErrTooLarge
}

// OriginError reports a playlist or segment request that failed for good
// (after retries, when the fault was transient). Its message names the URL
// with any credentials and query string removed, and the status, e.g.
//
//	origin answered 404 Not Found for http://host/v/seg_3.ts
//	origin answered 503 Service Unavailable for http://host/v/seg_3.ts (after 5 attempts)
//	origin request for http://host/v/seg_3.ts failed: connection refused (after 5 attempts)
type OriginError struct {
	// URL is the request URL, redacted by RedactURL, followed by
	// " (bytes first-last)" for a byte-range request.
	URL string
	// Status is the HTTP status the origin answered, 0 when there was no
	// usable answer (connection error, timeout, body too large, …).
	Status int
	// Err is the underlying cause: ErrNotFound for a missing top-level
	// playlist, ErrTooLarge, a transport error; nil for a plain bad status.
	Err error
	// Attempts is how many times the request was tried.
	Attempts int
}

// Error implements error.
func (e *OriginError) Error() string {
	var b strings.Builder
	if e.Status != 0 {
		fmt.Fprintf(&b, "origin answered %d", e.Status)
		if t := http.StatusText(e.Status); t != "" {
			b.WriteString(" " + t)
		}
		b.WriteString(" for " + e.URL)
	} else {
		b.WriteString("origin request for " + e.URL + " failed")
		if e.Err != nil {
			b.WriteString(": " + oneLine(e.Err.Error()))
		}
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	return b.String()
}

// Unwrap returns Err.
func (e *OriginError) Unwrap() error { return e.Err }

// RedactURL returns u as a string without userinfo (credentials), query
// string or fragment, so that it can be shown to users and written to logs.
func RedactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.ForceQuery = false
	c.Fragment = ""
	c.RawFragment = ""
	return c.String()
}

// redactString is RedactURL for a URL that is still a string.
func redactString(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		// Do not echo something that may contain credentials.
		return "(invalid URL)"
	}
	return RedactURL(u)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// statusError is a non-2xx answer, before it becomes an *OriginError.
type statusError struct {
	code       int
	retryAfter string
}

func (e *statusError) Error() string { return fmt.Sprintf("status %d", e.code) }

// stallError is the cause set on a request the stall watchdog cancelled.
type stallError struct{ timeout string }

func (e *stallError) Error() string {
	return "the origin sent nothing for " + e.timeout
}

// permanentError is a failed attempt that retrying will not mend (an
// answer that contradicts the request).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }

// transient tells whether a failed attempt is worth another try.
func transient(err error) bool {
	var pe *permanentError
	if errors.As(err, &pe) {
		return false
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.code >= 500 || se.code == http.StatusTooManyRequests || se.code == http.StatusRequestTimeout
	}
	if errors.Is(err, ErrLimit) || errors.Is(err, ErrForbiddenHost) {
		return false
	}
	// Certificate problems do not heal by themselves.
	var (
		unknownAuth x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalid     x509.CertificateInvalidError
		verify      *tls.CertificateVerificationError
	)
	if errors.As(err, &unknownAuth) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verify) {
		return false
	}
	// Everything else that reaches here is a transport fault: refused or
	// reset connections, timeouts, stalls, truncated bodies.
	return true
}

// describeTransport turns an error from http.Client.Do or a body read into
// a short message without the (unredacted) URL net/http puts into it.
func describeTransport(err error) error {
	var se *stallError
	if errors.As(err, &se) {
		return se
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("timed out")
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		// "dial tcp 127.0.0.1:1: connect: connection refused" → "connection refused"
		msg := oe.Err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		return errors.New(msg)
	}
	return err
}
