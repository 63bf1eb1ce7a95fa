package handler

import (
	"errors"
	"net/http"
	"net/netip"
	"path"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/stream-downloads/caddy-stream-downloads/packager"
	"github.com/stream-downloads/caddy-stream-downloads/tokens"
)

// errRefused is an access refusal: status is 401 or 403, msg one line for the client.
type errRefused struct {
	status int
	msg    string
}

func (e *errRefused) Error() string { return e.msg }

// access decides whether the request may have the files of the video or token in the
// path, and returns the video id the files belong to. A plain id is served unless every
// video is private (require_signed_urls); a token is verified, names the video in its
// sub, and its access rules apply (docs/spec.md §5). Each check of a token (or of its lack)
// is counted (Meter.TokenCheck), and each refusal heard (Denied).
// The token's clip claim, when it has one, is returned too: the delivery then serves only
// clips within it (docs/clips.md).
func (h *Handler) access(r *http.Request, idOrToken string) (string, *tokens.Clip, error) {
	video, result, cached, clip, err := h.checkAccess(r, idOrToken)
	if result == "" { // a public video by its id: nothing was checked
		return video, nil, err
	}
	if h.Meter != nil {
		h.Meter.TokenCheck(result, cached)
	}
	var ref *errRefused
	if h.Denied != nil && errors.As(err, &ref) {
		typ, _ := packager.TypeFromFile(path.Base(r.URL.Path))
		h.Denied(r, Denial{Video: video, Type: typ.Name, Status: ref.status, Result: result, Reason: ref.msg})
	}
	return video, clip, err
}

// checkAccess is access, with the result of the token check ("" when there was none)
// and whether the token was in the verification cache, and the token's clip claim. The
// video is returned also when it is refused, when known.
func (h *Handler) checkAccess(r *http.Request, idOrToken string) (video, result string, cached bool, clip *tokens.Clip, err error) {
	if ValidID(idOrToken) {
		if h.RequireSigned {
			return idOrToken, "unsigned", false, nil, &errRefused{http.StatusUnauthorized, "this video needs a signed URL"}
		}
		return idOrToken, "", false, nil, nil
	}
	if strings.Count(idOrToken, ".") != 2 {
		return "", "malformed", false, nil, &errRefused{http.StatusBadRequest, "invalid video id"}
	}
	if h.Verifier == nil {
		return "", "not_configured", false, nil, &errRefused{http.StatusUnauthorized, "signed URLs are not configured here"}
	}
	claims, cached, err := h.Verifier.VerifyCached(idOrToken)
	if err != nil {
		// The verifier's messages are written to be shown and never hold the token.
		return "", tokens.Reason(err), cached, nil, &errRefused{http.StatusUnauthorized, err.Error()}
	}
	if !ValidID(claims.Subject) {
		return "", "invalid", cached, nil, &errRefused{http.StatusUnauthorized, "invalid token: sub is not a video id"}
	}
	if h.RequireSigned && !claims.Downloadable {
		return claims.Subject, "not_downloadable", cached, nil, &errRefused{http.StatusForbidden, "this token does not allow downloads"}
	}
	ip := clientIP(r)
	if !claims.Allow(ip, h.country(r, ip)) {
		return claims.Subject, "rule_blocked", cached, nil, &errRefused{http.StatusForbidden, "access denied by the token's access rules"}
	}
	return claims.Subject, "ok", cached, claims.Clip, nil
}

// clientIP is Caddy's client address: the peer, or what trusted proxies say it is.
func clientIP(r *http.Request) netip.Addr {
	s, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return ip.WithZone("").Unmap()
}

// country is the client's ISO country code, "" when unknown: from the trusted header
// when one is configured and present, else from the GeoIP database.
func (h *Handler) country(r *http.Request, ip netip.Addr) string {
	if h.CountryHeader != "" {
		if c := strings.TrimSpace(r.Header.Get(h.CountryHeader)); len(c) == 2 {
			return strings.ToUpper(c)
		}
	}
	if h.GeoIP != nil && ip.IsValid() {
		return h.GeoIP.Country(ip)
	}
	return ""
}

// refusal writes an access refusal, or reports that err is none.
func refusal(w http.ResponseWriter, err error) (bool, error) {
	var ref *errRefused
	if !errors.As(err, &ref) {
		return false, nil
	}
	if ref.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="stream_downloads"`)
	}
	return true, writeLine(w, ref.status, ref.msg)
}
