package hls

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestCheckRange: the one validator of the answers to Range requests.
func TestCheckRange(t *testing.T) {
	t.Parallel()
	exact := rangeReq{first: 100, last: 199, exact: true, need: &ByteRange{Offset: 100, Length: 100}}
	open := rangeReq{first: 0, last: 99} // a probe of unknown size: may end early
	tail := rangeReq{first: 100, last: -1}
	resp := func(code int, cr string, cl int64) *http.Response {
		r := &http.Response{StatusCode: code, Header: http.Header{}, ContentLength: cl}
		if cr != "" {
			r.Header.Set("Content-Range", cr)
		}
		return r
	}
	for _, tt := range []struct {
		name    string
		q       rangeReq
		resp    *http.Response
		wantErr string // "": accepted
		last    int64
		total   int64
		whole   bool
	}{
		{"206 exact", exact, resp(206, "bytes 100-199/1000", 100), "", 199, 1000, false},
		{"206 exact, total *", exact, resp(206, "bytes 100-199/*", -1), "", 199, -1, false},
		{"206 exact, no Content-Range", exact, resp(206, "", 100), "", 199, -1, false},
		{"206 wrong first", exact, resp(206, "bytes 0-99/1000", 100), "bytes 0-99 for the requested 100-199", 0, 0, false},
		{"206 wrong last", exact, resp(206, "bytes 100-149/1000", 50), "bytes 100-149 for the requested 100-199", 0, 0, false},
		{"206 more than asked", open, resp(206, "bytes 0-199/1000", 200), "bytes 0-199 for the requested 0-99", 0, 0, false},
		{"206 unreadable", exact, resp(206, "bytes=100-199", 100), "unreadable Content-Range", 0, 0, false},
		{"206 total before last", exact, resp(206, "bytes 100-199/150", 100), "unreadable Content-Range", 0, 0, false},
		{"206 length disagrees with Content-Range", exact, resp(206, "bytes 100-199/1000", 99), "99 bytes for a 100-byte range", 0, 0, false},
		{"206 length disagrees with the request", exact, resp(206, "", 99), "99 bytes for a 100-byte range", 0, 0, false},
		{"206 open: resource ends early", open, resp(206, "bytes 0-49/50", 50), "", 49, 50, false},
		{"206 open: ends early but not at its total", open, resp(206, "bytes 0-49/80", 50), "bytes 0-49 for the requested 0-99", 0, 0, false},
		{"206 open: no Content-Range, short", open, resp(206, "", 50), "", 49, -1, false},
		{"206 open: no Content-Range, too long", open, resp(206, "", 150), "150 bytes for a 100-byte range", 0, 0, false},
		{"206 open: no Content-Range, no length", open, resp(206, "", -1), "", -1, -1, false},
		{"206 tail", tail, resp(206, "bytes 100-999/1000", 900), "", 999, 1000, false},
		{"206 tail from elsewhere", tail, resp(206, "bytes 0-999/1000", 1000), "bytes 0-999 for the requested 100-", 0, 0, false},
		{"200 to a ranged request", exact, resp(200, "", 1000), "", -1, -1, true},
		{"200 shorter than the range", exact, resp(200, "", 150), "the resource is 150 bytes, shorter than the range 100-199", 0, 0, true},
		{"200 of unknown length", exact, resp(200, "", -1), "", -1, -1, true},
		{"204", exact, resp(204, "", 0), "answered 204 No Content to a Range request", 0, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, err := checkRange(tt.resp, tt.q)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if transient(err) {
					t.Errorf("err %v is transient; a wrong answer is not retried", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.last != tt.last || a.total != tt.total || a.whole != tt.whole {
				t.Errorf("got last %d total %d whole %v, want %d %d %v", a.last, a.total, a.whole, tt.last, tt.total, tt.whole)
			}
		})
	}
}

// TestRangeShortBody: a body that ends early is a truncation worth a retry when its
// length was announced, else a wrong answer; a 206 body past its range is one too.
func TestRangeShortBody(t *testing.T) {
	t.Parallel()
	exact := rangeReq{first: 100, last: 199, exact: true, need: &ByteRange{Offset: 100, Length: 100}}
	for _, tt := range []struct {
		name    string
		code    int
		cl      int64
		at      int64
		wantErr string // "" : io.ErrUnexpectedEOF
	}{
		{"206 announced", 206, 100, 150, ""},
		{"206 unannounced", 206, -1, 150, "answered 206 with 50 bytes for a 100-byte range"},
		{"200 announced", 200, 1000, 150, ""},
		{"200 unannounced", 200, -1, 150, "the resource is 150 bytes, shorter than the range 100-199"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, err := checkRange(&http.Response{StatusCode: tt.code, Header: http.Header{}, ContentLength: tt.cl}, exact)
			if err != nil {
				t.Fatal(err)
			}
			err = a.cut(tt.at)
			if tt.wantErr == "" {
				if !errors.Is(err, io.ErrUnexpectedEOF) || !transient(err) {
					t.Errorf("err = %v, want a transient io.ErrUnexpectedEOF", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || transient(err) {
				t.Errorf("err = %v, want permanent %q", err, tt.wantErr)
			}
		})
	}
	a, _ := checkRange(&http.Response{StatusCode: 206, Header: http.Header{}, ContentLength: -1}, exact)
	if err := a.excess(); err == nil || !strings.Contains(err.Error(), "more than 100 bytes for a 100-byte range") || transient(err) {
		t.Errorf("excess = %v", err)
	}
}
