package hls

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// Validators records what the origin said identifies each resource it served: its
// strong ETag, else its Last-Modified and length (docs/instant.md, "ETag"). A download's
// ETag is computed from them and the file's header, so that a server that sends the file
// before its media are fetched (from segment heads) and the job that fetches the whole
// segments compute the same one. Safe for concurrent use.
type Validators struct {
	mu sync.Mutex
	m  map[string]string // by RedactURL of the resource
}

// NewValidators returns an empty record; set it as a Client's Validators.
func NewValidators() *Validators { return &Validators{m: map[string]string{}} }

// Of is the validator recorded for the resource at u: "etag:<strong ETag>",
// "modified:<Last-Modified>/<length>", or "" when the origin gave neither.
func (v *Validators) Of(u *url.URL) string {
	if v == nil {
		return ""
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.m[RedactURL(u)]
}

// note records the validator of a 2xx answer for u; the first one recorded stays. It
// returns the one recorded before, "" when none.
func (v *Validators) note(u *url.URL, resp *http.Response) (was, now string) {
	now = validatorOf(resp)
	if v == nil || now == "" {
		return "", now
	}
	k := RedactURL(u)
	v.mu.Lock()
	defer v.mu.Unlock()
	was = v.m[k]
	if was == "" {
		v.m[k] = now
	}
	return was, now
}

// adopt records validator for the resource at u unless one is recorded (bytes the
// Client took from a cache that another request filled).
func (v *Validators) adopt(u *url.URL, validator string) {
	if v == nil || validator == "" {
		return
	}
	k := RedactURL(u)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m[k] == "" {
		v.m[k] = validator
	}
}

// validatorOf is what identifies the representation resp carries: its strong ETag;
// else its Last-Modified with the resource's length (Content-Range's total of a 206,
// Content-Length of a 200 not decompressed by the transport); "" without either.
func validatorOf(resp *http.Response) string {
	if et := resp.Header.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		return "etag:" + et
	}
	lm := resp.Header.Get("Last-Modified")
	if lm == "" {
		return ""
	}
	size := int64(-1)
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		if _, _, total, ok := parseContentRangeTotal(resp.Header.Get("Content-Range")); ok {
			size = total
		}
	case !resp.Uncompressed:
		size = resp.ContentLength
	}
	if size < 0 {
		return "modified:" + lm
	}
	return "modified:" + lm + "/" + strconv.FormatInt(size, 10)
}
