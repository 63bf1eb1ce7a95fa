package testutil

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Origin is an HLS origin on 127.0.0.1 serving a directory of real files, that counts
// the requests of each path and can hold segment requests to catch a job in the middle.
type Origin struct {
	*httptest.Server
	// Dir is the directory served.
	Dir string

	requestCounts

	mu      sync.Mutex
	match   func(*http.Request) bool // the requests held: MPEG-TS segments unless HoldMatching
	segs    int                      // matching requests seen
	passing int                      // matching requests let through before holding; -1: no hold
	release chan struct{}            // closed by Release
	// Held receives the path of each segment request that starts waiting.
	Held chan string
}

// NewOrigin serves dir until the test ends.
func NewOrigin(t testing.TB, dir string) *Origin {
	o := &Origin{
		Dir:     dir,
		match:   isTS,
		passing: -1,
		release: make(chan struct{}),
		Held:    make(chan string, 1024),
	}
	files := http.FileServer(http.Dir(dir))
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.add(r.URL.Path)
		o.mu.Lock()
		hold := false
		if o.match(r) {
			o.segs++
			hold = o.passing >= 0 && o.segs > o.passing
		}
		release := o.release
		o.mu.Unlock()
		if hold {
			o.Held <- r.URL.Path
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		o.Release()
		o.Close()
	})
	return o
}

// HoldSegmentsAfter lets n more MPEG-TS segment requests through, then holds the rest
// until Release.
func (o *Origin) HoldSegmentsAfter(n int) { o.HoldMatching(n, isTS) }

// HoldMatching lets n more requests that match through, then holds those that match
// until Release.
func (o *Origin) HoldMatching(n int, match func(*http.Request) bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.match, o.segs, o.passing = match, 0, n
	o.release = make(chan struct{})
}

func isTS(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, ".ts") }

// Release lets held and later requests through.
func (o *Origin) Release() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.passing >= 0 {
		close(o.release)
		o.passing = -1
	}
}

// JobSegmentRequest tells the requests of a packaging job for an fMP4 segment (the
// fetch engine asks for a segment's first MiB) from those of instant delivery (heads,
// and the ranges of samples): hold them with HoldMatching to keep a job in progress.
func JobSegmentRequest(r *http.Request) bool {
	return strings.HasSuffix(r.URL.Path, ".m4s") && strings.HasSuffix(r.Header.Get("Range"), "-1048575")
}
