package hls

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// rangeReq is a Range request for bytes first..last of a resource (absolute
// offsets; last -1: to its end), as checkRange judges its answer.
type rangeReq struct {
	first, last int64
	// exact: a 206 answer must hold exactly first..last; otherwise it may
	// end earlier (at the resource's end).
	exact bool
	// need is the byte range the resource must hold, told in the errors
	// about a 200 answer (the whole resource) that is too short; nil: none.
	need *ByteRange
}

// rangeAns is what checkRange found of a 2xx answer to a rangeReq.
type rangeAns struct {
	q      rangeReq
	whole  bool  // 200: the server ignored Range; the body is the whole resource
	last   int64 // 206: the last byte the body holds (absolute); -1: unknown, to EOF
	total  int64 // 206: the resource's size, when the answer told it; else -1
	length int64 // the response's Content-Length (-1: unknown)
}

// checkRange is the one validator of the answers to Range requests: a 206
// must hold the range asked for (its Content-Range and Content-Length, when
// present, must agree with it and with each other); a 200 (a server that
// ignores Range) must not be shorter than q.need when its length is known;
// any other 2xx is refused. Its errors are permanent: asking again would get
// the same answer.
func checkRange(resp *http.Response, q rangeReq) (rangeAns, error) {
	a := rangeAns{q: q, last: q.last, total: -1, length: resp.ContentLength}
	cl := resp.ContentLength
	switch resp.StatusCode {
	case http.StatusPartialContent:
		reqLen := q.last - q.first + 1 // when q.last >= 0
		if cr := resp.Header.Get("Content-Range"); cr != "" {
			first, last, total, ok := parseContentRangeTotal(cr)
			if !ok {
				return a, permanent(fmt.Errorf("answered 206 with an unreadable Content-Range %q", truncate(cr, 60)))
			}
			bad := first != q.first
			switch {
			case q.last >= 0 && q.exact:
				bad = bad || last != q.last
			case q.last >= 0:
				bad = bad || last > q.last || total >= 0 && last != min(q.last, total-1)
			}
			if bad {
				if q.last >= 0 {
					return a, permanent(fmt.Errorf("answered 206 with bytes %d-%d for the requested %d-%d", first, last, q.first, q.last))
				}
				return a, permanent(fmt.Errorf("answered 206 with bytes %d-%d for the requested %d-", first, last, q.first))
			}
			if cl >= 0 && cl != last-first+1 {
				return a, permanent(fmt.Errorf("answered 206 with %d bytes for a %d-byte range", cl, last-first+1))
			}
			a.last, a.total = last, total
		} else if q.exact && q.last >= 0 || q.last >= 0 && cl > reqLen {
			if cl >= 0 && cl != reqLen {
				return a, permanent(fmt.Errorf("answered 206 with %d bytes for a %d-byte range", cl, reqLen))
			}
		} else if cl >= 0 {
			a.last = q.first + cl - 1
		} else {
			a.last = -1
		}
		return a, nil
	case http.StatusOK:
		a.whole, a.last = true, -1
		if n := q.need; n != nil && cl >= 0 && cl < n.Offset+n.Length {
			return a, permanent(fmt.Errorf("the resource is %d bytes, shorter than the range %d-%d", cl, n.Offset, n.Offset+n.Length-1))
		}
		return a, nil
	}
	return a, permanent(fmt.Errorf("answered %d %s to a Range request", resp.StatusCode, http.StatusText(resp.StatusCode)))
}

// cut is the error for a body that ended at absolute offset at, before the
// bytes it should hold: a truncation (worth a retry) when its length was
// announced, else an answer too short (not).
func (a rangeAns) cut(at int64) error {
	switch {
	case a.length >= 0:
	case !a.whole && a.last >= 0:
		return permanent(fmt.Errorf("answered 206 with %d bytes for a %d-byte range", at-a.q.first, a.last-a.q.first+1))
	case a.whole && a.q.need != nil:
		n := a.q.need
		return permanent(fmt.Errorf("the resource is %d bytes, shorter than the range %d-%d", at, n.Offset, n.Offset+n.Length-1))
	}
	return io.ErrUnexpectedEOF
}

// excess is the error for a 206 body that goes on past a.last.
func (a rangeAns) excess() error {
	n := a.last - a.q.first + 1
	return permanent(fmt.Errorf("answered 206 with more than %d bytes for a %d-byte range", n, n))
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

// parseContentRangeTotal reads "bytes first-last/total"; total is -1 for "*".
func parseContentRangeTotal(v string) (first, last, total int64, ok bool) {
	first, last, ok = parseContentRange(v)
	if !ok {
		return 0, 0, 0, false
	}
	_, t, found := strings.Cut(v, "/")
	t = strings.TrimSpace(t)
	if !found || t == "*" {
		return first, last, -1, true
	}
	total, err := strconv.ParseInt(t, 10, 64)
	if err != nil || total <= last {
		return 0, 0, 0, false
	}
	return first, last, total, true
}
