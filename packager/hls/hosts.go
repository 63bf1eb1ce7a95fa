package hls

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// maxRedirects is how many redirects one request may follow.
const maxRedirects = 5

// hostPolicy decides which URLs a stream may make the client fetch: those on
// the host of the top-level playlist URL and those on Client.AllowedHosts.
//
// The rules (see Client.AllowedHosts):
//   - only http and https URLs, whatever the host;
//   - host names compare case-insensitively, without a trailing dot; IP
//     literals compare as written (so 127.0.0.1 does not match localhost);
//   - the origin's host matches on the origin's port (explicit, else the
//     scheme's default); when that port is a default one (80, 443), the
//     other default port matches too, so http and https mix;
//   - an allowed entry "host" or "*.domain" (any subdomain of domain, not
//     domain itself) matches on ports 80 and 443 and on the origin's port;
//     an entry "host:port" (or "[v6]:port") matches on that port only.
type hostPolicy struct {
	host, port string // the origin's, normalised
	allowed    []hostPattern
}

type hostPattern struct {
	host     string // normalised; for a wildcard, the domain after "*."
	wildcard bool
	port     string // "" → 80, 443 or the origin's port
}

// newHostPolicy makes the policy of a stream whose top-level playlist is at
// origin.
func newHostPolicy(origin *url.URL, allowed []string) *hostPolicy {
	p := &hostPolicy{host: normHost(origin.Hostname()), port: effectivePort(origin)}
	for _, a := range allowed {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		var pat hostPattern
		if h, port, err := net.SplitHostPort(a); err == nil {
			a, pat.port = h, port
		}
		a = strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
		if rest, ok := strings.CutPrefix(a, "*."); ok {
			a, pat.wildcard = rest, true
		}
		if pat.host = normHost(a); pat.host == "" {
			continue
		}
		p.allowed = append(p.allowed, pat)
	}
	return p
}

func normHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

func defaultPort(p string) bool { return p == "80" || p == "443" }

// allows tells whether u may be fetched.
func (p *hostPolicy) allows(u *url.URL) bool {
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		return false
	}
	host, port := normHost(u.Hostname()), effectivePort(u)
	if host == "" {
		return false
	}
	if host == p.host && (port == p.port || defaultPort(port) && defaultPort(p.port)) {
		return true
	}
	for _, a := range p.allowed {
		match := host == a.host
		if a.wildcard {
			match = strings.HasSuffix(host, "."+a.host)
		}
		if !match {
			continue
		}
		if a.port != "" {
			if port == a.port {
				return true
			}
		} else if defaultPort(port) || port == p.port {
			return true
		}
	}
	return false
}

// originName is the origin's host as messages show it.
func (p *hostPolicy) originName() string {
	return net.JoinHostPort(p.host, p.port)
}

// forbiddenError is a refused URL: the message reads as one sentence, and
// errors.Is(err, ErrForbiddenHost) holds.
type forbiddenError struct{ msg string }

func (e *forbiddenError) Error() string        { return e.msg }
func (e *forbiddenError) Is(target error) bool { return target == ErrForbiddenHost }

// refuse checks u, found as what in the playlist at loc (both for messages).
func (p *hostPolicy) refuse(loc, what string, u *url.URL) error {
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		return &forbiddenError{fmt.Sprintf("URL not allowed: %s of playlist %s is %s; only http and https URLs are fetched", what, loc, truncate(RedactURL(u), 200))}
	}
	if !p.allows(u) {
		return &forbiddenError{fmt.Sprintf("host not allowed: %s of playlist %s is at %s, which is neither the origin's host (%s) nor in allowed_hosts", what, loc, RedactURL(u), p.originName())}
	}
	return nil
}

// httpClient returns hc with redirects limited to maxRedirects and to the
// URLs p allows (the request's own host when p is nil). hc is copied, so
// its transport and kept-alive connections are shared.
func (p *hostPolicy) httpClient(hc *http.Client, first *url.URL) *http.Client {
	if p == nil {
		p = &hostPolicy{host: normHost(first.Hostname()), port: effectivePort(first)}
	}
	c := *hc
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		status := ""
		if req.Response != nil {
			status = fmt.Sprintf("%d ", req.Response.StatusCode)
		}
		if len(via) > maxRedirects {
			return permanent(fmt.Errorf("more than %d redirects", maxRedirects))
		}
		if s := strings.ToLower(req.URL.Scheme); s != "http" && s != "https" {
			return permanent(&forbiddenError{fmt.Sprintf("URL not allowed: the origin answered %sredirecting to %s; only http and https URLs are fetched", status, truncate(RedactURL(req.URL), 200))})
		}
		if !p.allows(req.URL) {
			return permanent(&forbiddenError{fmt.Sprintf("host not allowed: the origin answered %sredirecting to %s, which is neither the origin's host (%s) nor in allowed_hosts", status, RedactURL(req.URL), p.originName())})
		}
		return nil
	}
	return &c
}
