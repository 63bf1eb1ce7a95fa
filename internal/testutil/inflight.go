package testutil

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Gauge is a proxy on 127.0.0.1 in front of an origin that measures which videos (the
// first path element) have segment requests in flight, and can slow segments down so
// that jobs overlap long enough to be measured.
type Gauge struct {
	*httptest.Server
	delay time.Duration // before each segment request is passed on

	mu       sync.Mutex
	inFlight map[string]int // video → segment requests in flight
	max      int            // most videos with segment requests in flight at once
}

// NewGauge proxies to target (an origin's URL) until the test ends, delaying each
// segment request by delay.
func NewGauge(t testing.TB, target string, delay time.Duration) *Gauge {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &Gauge{inFlight: map[string]int{}, delay: delay}
	proxy := httputil.NewSingleHostReverseProxy(u)
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, ".ts") && !strings.HasSuffix(r.URL.Path, ".m4s") {
			proxy.ServeHTTP(w, r)
			return
		}
		video := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0]
		g.mu.Lock()
		g.inFlight[video]++
		g.max = max(g.max, len(g.inFlight))
		g.mu.Unlock()
		defer func() {
			g.mu.Lock()
			if g.inFlight[video]--; g.inFlight[video] == 0 {
				delete(g.inFlight, video)
			}
			g.mu.Unlock()
		}()
		if g.delay > 0 {
			select {
			case <-time.After(g.delay):
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(g.Close)
	return g
}

// MaxVideos returns the most videos that had segment requests in flight at once.
func (g *Gauge) MaxVideos() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.max
}
