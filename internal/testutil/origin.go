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
	segs    int           // segment requests seen
	passing int           // segment requests let through before holding; -1: no hold
	release chan struct{} // closed by Release
	// Held receives the path of each segment request that starts waiting.
	Held chan string
}

// NewOrigin serves dir until the test ends.
func NewOrigin(t testing.TB, dir string) *Origin {
	o := &Origin{
		Dir:     dir,
		passing: -1,
		release: make(chan struct{}),
		Held:    make(chan string, 1024),
	}
	files := http.FileServer(http.Dir(dir))
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.add(r.URL.Path)
		o.mu.Lock()
		hold := false
		if strings.HasSuffix(r.URL.Path, ".ts") {
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

// HoldSegmentsAfter lets n more segment requests through, then holds the rest until
// Release.
func (o *Origin) HoldSegmentsAfter(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.passing = o.segs + n
	o.release = make(chan struct{})
}

// Release lets held and later requests through.
func (o *Origin) Release() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.passing >= 0 {
		close(o.release)
		o.passing = -1
	}
}
