package hls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const fixtureDir = "../../testdata/demo/origin"

func TestMain(m *testing.M) {
	code := m.Run()
	removeFFmpegFixtures()
	os.Exit(code)
}

// noSleep is a Client's sleep seam that returns at once: tests never really
// wait between retries.
func noSleep(ctx context.Context, _ time.Duration) error { return context.Cause(ctx) }

// quick gives c the noSleep seam and returns c.
func quick(c *Client) *Client {
	c.tune.sleep = noSleep
	return c
}

// sleepLog records the waits a Client asks for between retries, instead of
// waiting.
type sleepLog struct {
	mu sync.Mutex
	d  []time.Duration
}

// record makes c's retries record their waits in a new sleepLog.
func record(c *Client) *sleepLog {
	l := &sleepLog{}
	c.tune.sleep = func(ctx context.Context, d time.Duration) error {
		l.mu.Lock()
		l.d = append(l.d, d)
		l.mu.Unlock()
		return context.Cause(ctx)
	}
	return l
}

// take returns the waits recorded since the last take.
func (l *sleepLog) take() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.d
	l.d = nil
	return s
}

// settler tells when a Fetch has done all it can ahead of its reader.
type settler chan struct{}

// settle makes c's Fetches tell their settler when their dispatcher waits
// with no request in flight.
func settle(c *Client) settler {
	s := make(settler, 1)
	c.tune.dispatchWait = func(inflight int) {
		if inflight == 0 {
			select {
			case s <- struct{}{}:
			default:
			}
		}
	}
	return s
}

// wait, called by fn with its body, returns once the Fetch has done all it
// can before fn reads on: every request it may make answered (or waiting for
// the reader), no other to make.
func (s settler) wait(body io.Reader) error {
	f := body.(*segReader).f
	select {
	case <-s: // a report from before fn was called
	default:
	}
	// The dispatcher may be waiting already: make it look again, and report.
	f.mu.Lock()
	f.cond.Broadcast()
	f.mu.Unlock()
	select {
	case <-s:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("the Fetch never settled")
	}
}

// origin is a real HTTP server on 127.0.0.1 serving the fixture files, plus
// handcrafted playlists and faults, counting requests and concurrency.
type origin struct {
	*httptest.Server

	mu        sync.Mutex
	counts    map[string]int
	pages     map[string]string                                  // path → body served as a playlist
	faults    map[string]func(w http.ResponseWriter, n int) bool // path → fault for the n-th request (1-based); true: handled
	blockers  map[string]bool                                    // path → hang until the client goes away
	onBlock   func(path string)                                  // called as a request starts hanging
	lastReq   *http.Request
	mounts    map[string]string      // path prefix → directory served under it
	ranges    map[string][]string    // path → Range headers received, in order
	headers   map[string]http.Header // path → last request's headers
	delay     time.Duration
	inflight  atomic.Int64
	maxFlight atomic.Int64
}

func newOrigin(t testing.TB) *origin {
	t.Helper()
	o := &origin{
		counts:   map[string]int{},
		pages:    map[string]string{},
		faults:   map[string]func(http.ResponseWriter, int) bool{},
		blockers: map[string]bool{},
		mounts:   map[string]string{},
		ranges:   map[string][]string{},
		headers:  map[string]http.Header{},
	}
	files := http.FileServer(http.Dir(fixtureDir))
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur := o.inflight.Add(1)
		defer o.inflight.Add(-1)
		for {
			m := o.maxFlight.Load()
			if cur <= m || o.maxFlight.CompareAndSwap(m, cur) {
				break
			}
		}
		o.mu.Lock()
		o.counts[r.URL.Path]++
		n := o.counts[r.URL.Path]
		o.lastReq = r.Clone(context.Background())
		o.headers[r.URL.Path] = r.Header.Clone()
		if rg := r.Header.Get("Range"); rg != "" {
			o.ranges[r.URL.Path] = append(o.ranges[r.URL.Path], rg)
		}
		var mountDir, mountRel string
		for prefix, dir := range o.mounts {
			if rel, ok := strings.CutPrefix(r.URL.Path, prefix); ok {
				mountDir, mountRel = dir, rel
			}
		}
		page, isPage := o.pages[r.URL.Path]
		fault := o.faults[r.URL.Path]
		block := o.blockers[r.URL.Path]
		onBlock := o.onBlock
		delay := o.delay
		o.mu.Unlock()

		if delay > 0 {
			time.Sleep(delay)
		}
		if block {
			if onBlock != nil {
				onBlock(r.URL.Path)
			}
			<-r.Context().Done()
			return
		}
		if fault != nil && fault(w, n) {
			return
		}
		switch {
		case isPage:
			w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
			io.WriteString(w, page)
		case mountDir != "":
			http.ServeFile(w, r, filepath.Join(mountDir, filepath.FromSlash(mountRel)))
		case strings.HasPrefix(r.URL.Path, "/many/"):
			// /many/17.ts is a copy of fixture segment 17%3.
			k, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/many/"), ".ts"))
			if err != nil {
				http.NotFound(w, r)
				return
			}
			http.ServeFile(w, r, filepath.Join(fixtureDir, "demo/144p", fmt.Sprintf("seg_%03d.ts", k%3)))
		default:
			files.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *origin) page(path, body string) {
	o.mu.Lock()
	o.pages[path] = body
	o.mu.Unlock()
}

func (o *origin) fault(path string, f func(w http.ResponseWriter, n int) bool) {
	o.mu.Lock()
	o.faults[path] = f
	o.mu.Unlock()
}

func (o *origin) count(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[path]
}

func (o *origin) total() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.counts {
		n += c
	}
	return n
}

func fixture(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func manyPlaylist(n int) string {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n")
	for i := range n {
		fmt.Fprintf(&b, "#EXTINF:4.0,\n%d.ts\n", i)
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return b.String()
}

const mediaHead = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n"

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func fetchBodies(c *Client, segs []Segment, conc int) ([][]byte, error) {
	var got [][]byte
	err := c.Fetch(context.Background(), segs, conc, func(i int, body io.Reader) error {
		if i != len(got) {
			return fmt.Errorf("got segment %d, want %d", i, len(got))
		}
		b, err := io.ReadAll(body)
		got = append(got, b)
		return err
	})
	return got, err
}

func checkBodies(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d bodies, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("body %d: %d bytes, not the %d expected", i, len(got[i]), len(want[i]))
		}
	}
}
