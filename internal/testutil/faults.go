package testutil

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// FaultKind is what a fault-injecting origin does to a request.
type FaultKind int

// The faults of a FaultOrigin.
const (
	// Delay waits Fault.Delay (or until the client goes away), then serves
	// the request normally.
	Delay FaultKind = iota + 1
	// Stall sends the headers (with the file's Content-Length) and half the
	// body, then hangs for Fault.Delay (0: until the client goes away) and
	// closes the connection.
	Stall
	// Reset closes the connection with a TCP RST (SO_LINGER 0) before
	// answering anything.
	Reset
	// Status answers Fault.Status (500, 502, 503, 429, 404, …), with a
	// Retry-After header when Fault.RetryAfter is set, and a short text body.
	Status
	// Truncate announces the file's Content-Length, sends half the body and
	// closes the connection.
	Truncate
	// Body answers 200 with Fault.Body (nil: as many pseudo-random bytes as
	// the file has) and the Content-Type Fault.ContentType
	// (default application/octet-stream): garbage, an HTML error page, or
	// another version of a playlist.
	Body
	// ContentType serves the file normally but with the Content-Type
	// Fault.ContentType.
	ContentType
	// Redirect answers Fault.Status (default 302) with Location
	// Fault.Location: a path on this origin or an absolute URL.
	Redirect
)

// Fault describes one fault; which fields count depends on Kind.
type Fault struct {
	Kind        FaultKind
	Status      int           // Status, Redirect
	RetryAfter  string        // Status
	Delay       time.Duration // Delay, Stall
	Body        []byte        // Body
	ContentType string        // Body, ContentType
	Location    string        // Redirect
}

// Rule applies Fault to the requests whose path matches Pattern (path.Match
// syntax: "/v/240p/*.ts"; an exact path matches itself) and whose number
// among the requests of that path (counting from 1) is in [From, To]; To 0
// means no end. A zero From is 1.
type Rule struct {
	Pattern  string
	From, To int
	Fault    Fault
}

// FaultOrigin is an HLS origin on 127.0.0.1 serving a directory of files
// (Range requests included), that counts the requests of each path and
// applies the first matching Rule to a request instead of serving it.
type FaultOrigin struct {
	*httptest.Server
	// Dir is the directory served.
	Dir string

	requestCounts

	mu    sync.Mutex
	rules []Rule
	stop  chan struct{} // closed when the server closes, to end stalls
}

// NewFaultOrigin serves dir until the test ends.
func NewFaultOrigin(t testing.TB, dir string) *FaultOrigin {
	o := &FaultOrigin{Dir: dir, stop: make(chan struct{})}
	o.Server = httptest.NewServer(o.Handler(http.FileServer(http.Dir(dir))))
	t.Cleanup(func() {
		close(o.stop)
		o.Server.CloseClientConnections()
		o.Close()
	})
	return o
}

// Add appends rules; the first rule that matches a request applies.
func (o *FaultOrigin) Add(rules ...Rule) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rules = append(o.rules, rules...)
}

// Once applies f to the first request of the paths matching pattern.
func (o *FaultOrigin) Once(pattern string, f Fault) {
	o.Add(Rule{Pattern: pattern, From: 1, To: 1, Fault: f})
}

// Always applies f to every request of the paths matching pattern.
func (o *FaultOrigin) Always(pattern string, f Fault) { o.Add(Rule{Pattern: pattern, Fault: f}) }

// Handler counts the requests and applies the rules, passing the requests
// no rule takes to next. (NewFaultOrigin serves the directory with it; it
// can wrap any handler.)
func (o *FaultOrigin) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := o.add(r.URL.Path)
		o.mu.Lock()
		var fault *Fault
		for i := range o.rules {
			if o.rules[i].matches(r.URL.Path, n) {
				f := o.rules[i].Fault
				fault = &f
				break
			}
		}
		o.mu.Unlock()
		if fault == nil || !o.apply(w, r, *fault) {
			next.ServeHTTP(w, r)
		}
	})
}

func (r *Rule) matches(p string, n int) bool {
	from := max(r.From, 1)
	if n < from || r.To > 0 && n > r.To {
		return false
	}
	if r.Pattern == p {
		return true
	}
	ok, _ := path.Match(r.Pattern, p)
	return ok
}

// file returns the served file's bytes for r, nil when there is none.
func (o *FaultOrigin) file(r *http.Request) []byte {
	b, err := os.ReadFile(filepath.Join(o.Dir, filepath.FromSlash(path.Clean("/"+r.URL.Path))))
	if err != nil {
		return nil
	}
	return b
}

// apply performs f; false means "serve the request normally now".
func (o *FaultOrigin) apply(w http.ResponseWriter, r *http.Request, f Fault) bool {
	switch f.Kind {
	case Delay:
		o.wait(r, f.Delay)
		return false
	case ContentType:
		w.Header().Set("Content-Type", f.ContentType)
		return false // http.ServeContent keeps a Content-Type already set
	case Reset:
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // close sends RST
		}
		conn.Close()
	case Status:
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		http.Error(w, fmt.Sprintf("injected fault: %d %s", f.Status, http.StatusText(f.Status)), f.Status)
	case Redirect:
		status := f.Status
		if status == 0 {
			status = http.StatusFound
		}
		http.Redirect(w, r, f.Location, status)
	case Body:
		body := f.Body
		if body == nil {
			size := len(o.file(r))
			if size == 0 {
				size = 4096
			}
			body = Garbage(size, uint64(size))
		}
		ct := f.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	case Stall, Truncate:
		b := o.file(r)
		if b == nil {
			http.NotFound(w, r)
			return true
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		if f.Kind == Stall {
			if f.Delay > 0 {
				o.wait(r, f.Delay)
			} else {
				o.wait(r, -1)
			}
		}
		// Returning with less than Content-Length written makes net/http
		// close the connection: the client sees a truncated body.
	default:
		panic(fmt.Sprintf("testutil: unknown fault kind %d", f.Kind))
	}
	return true
}

// wait sleeps d (d < 0: forever) or until the client or the server goes.
func (o *FaultOrigin) wait(r *http.Request, d time.Duration) {
	var timer <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-timer:
	case <-r.Context().Done():
	case <-o.stop:
	}
}

// Garbage returns n deterministic pseudo-random bytes (seeded by seed) that
// no demuxer takes for media: no MPEG-TS sync byte at the packet starts, no
// MP4 box.
func Garbage(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x6661756c74))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for i := 0; i < n; i += 188 {
		if b[i] == 0x47 {
			b[i] = 0x48
		}
	}
	return b
}
