package notify

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/stream-downloads/caddy-stream-downloads/packager"
)

// fakeClock is the tests' time: it moves only when told.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, fakeTimer{c.now.Add(d), ch})
	return ch
}

// set moves the clock to t and fires the timers due.
func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	keep := c.timers[:0]
	for _, tm := range c.timers {
		if !tm.at.After(t) {
			tm.ch <- t
		} else {
			keep = append(keep, tm)
		}
	}
	c.timers = keep
}

// receiver is a webhook endpoint that answers the statuses it is given in turn (the
// last one from then on) and records what it got.
type receiver struct {
	*httptest.Server
	secret []byte
	mu     sync.Mutex
	status []int
	got    []received
}

type received struct {
	id, sig string
	t       time.Time // the signature's time
	ok      bool      // verified
	ev      Event
	status  int
}

func newReceiver(t *testing.T, secret string, status ...int) *receiver {
	r := &receiver{secret: []byte(secret), status: status}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		rc := received{id: req.Header.Get(IDHeader), sig: req.Header.Get(SignatureHeader)}
		var ts int64
		for part := range strings.SplitSeq(rc.sig, ",") {
			if v, ok := strings.CutPrefix(part, "t="); ok {
				ts, _ = parseInt(v)
			}
		}
		rc.t = time.Unix(ts, 0)
		rc.ok = Verify(r.secret, rc.sig, body, rc.t) == nil
		json.Unmarshal(body, &rc.ev)
		r.mu.Lock()
		rc.status = r.status[min(len(r.got), len(r.status)-1)]
		r.got = append(r.got, rc)
		r.mu.Unlock()
		w.WriteHeader(rc.status)
	}))
	t.Cleanup(r.Close)
	return r
}

func parseInt(s string) (int64, error) {
	var n int64
	err := json.Unmarshal([]byte(s), &n)
	return n, err
}

func (r *receiver) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// idle waits until s has nothing in flight and no delivery due at the clock's time, and
// returns the earliest next attempt (zero: none queued).
func idle(t *testing.T, s *Sender, c *fakeClock) time.Time {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		s.mu.Lock()
		busy := len(s.inflight) > 0
		var next time.Time
		for _, d := range s.pending {
			if !d.Next.After(c.Now()) {
				busy = true
			}
			if next.IsZero() || d.Next.Before(next) {
				next = d.Next
			}
		}
		s.mu.Unlock()
		if !busy {
			return next
		}
	}
	t.Fatal("the sender did not settle")
	return time.Time{}
}

func newSender(t *testing.T, dir string, c *fakeClock, o Options) *Sender {
	t.Helper()
	o.Clock = c
	if o.Jitter == nil {
		o.Jitter = func() float64 { return 0 }
	}
	s, err := New(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Destruct() })
	return s
}

func queued(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+fileExt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBackoffSchedule: the delays double from 5s to the 10-minute cap, jitter takes up
// to half of one off, and a receiver that never succeeds gets attempts at 0, 5s, 15s …
// (the signature's timestamps) until the hour is over, then the delivery is dropped.
func TestBackoffSchedule(t *testing.T) {
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 600, 600, 600}
	for i, w := range want {
		if got := DefaultPolicy.Delay(i+1, 0); got != w*time.Second {
			t.Errorf("delay after attempt %d: %s, want %s", i+1, got, w*time.Second)
		}
		if got := DefaultPolicy.Delay(i+1, 0.999999); got < w*time.Second/2 || got > w*time.Second/2+time.Millisecond {
			t.Errorf("delay after attempt %d with the most jitter: %s, want about %s", i+1, got, w*time.Second/2)
		}
	}
	if got := DefaultPolicy.Delay(1000, 0); got != 10*time.Minute {
		t.Errorf("delay after attempt 1000: %s", got)
	}

	r := newReceiver(t, "0123456789abcdef", http.StatusServiceUnavailable)
	c := newFakeClock()
	dir := t.TempDir()
	s := newSender(t, dir, c, Options{})
	s.Configure(Config{URLs: []string{r.URL}, Secret: "0123456789abcdef"})
	start := c.Now()
	s.Enqueue(Event{Event: EventReady, Video: "v", Type: "default", Status: "ready", PercentComplete: 100})
	for {
		next := idle(t, s, c)
		if next.IsZero() {
			break
		}
		c.set(next)
		s.poke()
	}
	var at []time.Duration
	for _, rc := range r.received() {
		if !rc.ok {
			t.Errorf("attempt at %s: signature not verified", rc.t)
		}
		at = append(at, rc.t.Sub(start)/time.Second)
	}
	wantAt := []time.Duration{0, 5, 15, 35, 75, 155, 315, 635, 1235, 1835, 2435, 3035}
	if len(at) != len(wantAt) {
		t.Fatalf("attempts at %v s, want %v", at, wantAt)
	}
	for i := range at {
		if at[i] != wantAt[i] {
			t.Fatalf("attempts at %v s, want %v", at, wantAt)
		}
	}
	if f := queued(t, dir); len(f) != 0 || s.Queued() != 0 {
		t.Errorf("given up, but still queued: %v", f)
	}
}

// TestRefused: a 4xx other than 408 and 429 is final (one attempt, dropped); 408, 429
// and 5xx are retried; 429's Retry-After is honoured.
func TestRefused(t *testing.T) {
	for _, tc := range []struct {
		status  int
		retried bool
	}{{400, false}, {401, false}, {404, false}, {410, false}, {408, true}, {429, true}, {500, true}, {503, true}, {302, true}} {
		r := newReceiver(t, "0123456789abcdef", tc.status, http.StatusNoContent)
		c := newFakeClock()
		dir := t.TempDir()
		s := newSender(t, dir, c, Options{})
		s.Configure(Config{URLs: []string{r.URL}, Secret: "0123456789abcdef"})
		s.Enqueue(Event{Event: EventDeleted, Video: "v", Type: "default", Status: "deleted"})
		next := idle(t, s, c)
		if tc.retried {
			if next.IsZero() {
				t.Errorf("%d: not retried", tc.status)
				continue
			}
			c.set(next)
			s.poke()
			idle(t, s, c)
		}
		got := r.received()
		if want := map[bool]int{false: 1, true: 2}[tc.retried]; len(got) != want {
			t.Errorf("%d: %d attempts, want %d", tc.status, len(got), want)
		}
		if f := queued(t, dir); len(f) != 0 || s.Queued() != 0 {
			t.Errorf("%d: still queued: %v", tc.status, f)
		}
	}
}

// TestPersistence: deliveries that failed stay on disk when the sender stops, and a new
// sender of the directory delivers them after a restart, same ids and bodies, once.
func TestPersistence(t *testing.T) {
	const secret = "persist-secret-0123"
	r := newReceiver(t, secret, http.StatusBadGateway, http.StatusBadGateway, http.StatusBadGateway, http.StatusOK)
	c := newFakeClock()
	dir := t.TempDir()
	s := newSender(t, dir, c, Options{})
	s.Configure(Config{URLs: []string{r.URL}, Secret: secret})
	for _, v := range []string{"a", "b", "c"} {
		s.Enqueue(Event{Event: EventReady, Video: v, Type: "default", Status: "ready"})
	}
	idle(t, s, c)
	if got := len(r.received()); got != 3 {
		t.Fatalf("%d first attempts, want 3", got)
	}
	s.Destruct()
	files := queued(t, dir)
	if len(files) != 3 {
		t.Fatalf("after stop, %d deliveries on disk, want 3", len(files))
	}
	os.WriteFile(filepath.Join(dir, ".tmp-123"), []byte("half"), 0o600)          // a crash mid-write
	os.WriteFile(filepath.Join(dir, "junk"+fileExt), []byte("{not json"), 0o600) // unreadable: removed

	c.set(c.Now().Add(time.Minute))
	s2 := newSender(t, dir, c, Options{})
	if n := s2.Queued(); n != 3 {
		t.Fatalf("resumed %d deliveries, want 3", n)
	}
	s2.Configure(Config{URLs: []string{r.URL}, Secret: secret})
	idle(t, s2, c)
	got := r.received()
	if len(got) != 6 {
		t.Fatalf("%d attempts in all, want 6", len(got))
	}
	seen := map[string]string{}
	for _, rc := range got[:3] {
		seen[rc.id] = rc.ev.Video
	}
	for _, rc := range got[3:] {
		if !rc.ok || rc.status != http.StatusOK {
			t.Errorf("resumed delivery %s: verified %v, status %d", rc.id, rc.ok, rc.status)
		}
		if seen[rc.id] != rc.ev.Video || rc.ev.ID != rc.id {
			t.Errorf("resumed delivery %s (%s) is not one of the first: %v", rc.id, rc.ev.Video, seen)
		}
		delete(seen, rc.id)
	}
	if len(seen) != 0 {
		t.Errorf("not delivered after the restart: %v", seen)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 0 {
		t.Errorf("left in the queue folder: %v", m)
	}
}

// TestQueueCap: beyond MaxQueued the oldest deliveries are dropped, on disk too.
func TestQueueCap(t *testing.T) {
	r := newReceiver(t, "0123456789abcdef", http.StatusServiceUnavailable)
	c := newFakeClock()
	dir := t.TempDir()
	s := newSender(t, dir, c, Options{MaxQueued: 3})
	s.Configure(Config{URLs: []string{r.URL}, Secret: "0123456789abcdef"})
	for _, v := range []string{"v1", "v2", "v3", "v4", "v5"} {
		s.Enqueue(Event{Event: EventReady, Video: v, Type: "default", Status: "ready"})
		c.set(c.Now().Add(time.Millisecond))
	}
	idle(t, s, c)
	if n := s.Queued(); n != 3 {
		t.Errorf("%d queued, want 3", n)
	}
	files := queued(t, dir)
	if len(files) != 3 {
		t.Fatalf("%d on disk, want 3", len(files))
	}
	for i, f := range files {
		b, _ := os.ReadFile(f)
		var d delivery
		json.Unmarshal(b, &d)
		if want := []string{"v3", "v4", "v5"}[i]; d.Video != want {
			t.Errorf("queued %d: %s, want %s (the oldest go)", i, d.Video, want)
		}
	}
}

// TestNewestConfig: a queued delivery is sent with the newest config's secret, and one
// whose URL the newest config dropped is dropped.
func TestNewestConfig(t *testing.T) {
	r := newReceiver(t, "second-secret-0123", http.StatusServiceUnavailable, http.StatusOK)
	other := newReceiver(t, "x", http.StatusServiceUnavailable)
	c := newFakeClock()
	s := newSender(t, t.TempDir(), c, Options{})
	release := s.Configure(Config{URLs: []string{r.URL, other.URL}, Secret: "first-secret-01234"})
	s.Enqueue(Event{Event: EventError, Video: "v", Type: "audio", Status: "error", ErrorReasonCode: "origin_error"})
	next := idle(t, s, c)
	s.Configure(Config{URLs: []string{r.URL}, Secret: "second-secret-0123"})
	release()
	c.set(next)
	s.poke()
	idle(t, s, c)
	got := r.received()
	if len(got) != 2 || got[0].ok || !got[1].ok {
		t.Fatalf("want a first attempt signed with the first secret, a second with the second: %+v", got)
	}
	if len(other.received()) != 1 || s.Queued() != 0 {
		t.Errorf("the URL no longer configured: %d attempts, %d queued", len(other.received()), s.Queued())
	}
}

// TestListener: the packager's outcomes become the documented payloads, one id each,
// the same id for every URL.
func TestListener(t *testing.T) {
	const secret = "listener-secret-0123"
	r1, r2 := newReceiver(t, secret, http.StatusOK), newReceiver(t, secret, http.StatusOK)
	c := newFakeClock()
	s := newSender(t, t.TempDir(), c, Options{})
	s.Configure(Config{URLs: []string{r1.URL, r2.URL}, Secret: secret})
	l := s.Listener("https://edge.example/dl/")
	l.Ready(packager.Record{Video: "v1", Type: "default", Status: packager.StatusReady, Size: 1234}, time.Second)
	l.Failed(packager.Record{Video: "v2", Type: "audio", Status: packager.StatusError, ErrorCode: "origin_error", ErrorText: "origin answered 404"}, time.Second)
	l.Deleted(packager.Key{Video: "v3", Type: "default"})
	idle(t, s, c)
	when := c.Now().UTC().Format(timeFormat)
	want := []Event{
		{Event: "ready", Time: when, Video: "v1", Type: "default", Status: "ready", URL: "https://edge.example/dl/v1/downloads/default.mp4", PercentComplete: 100, Size: 1234},
		{Event: "error", Time: when, Video: "v2", Type: "audio", Status: "error", URL: "https://edge.example/dl/v2/downloads/audio.m4a", ErrorReasonCode: "origin_error", ErrorReasonText: "origin answered 404"},
		{Event: "deleted", Time: when, Video: "v3", Type: "default", Status: "deleted", URL: "https://edge.example/dl/v3/downloads/default.mp4"},
	}
	// Sent at once by several workers: in any order.
	got1, got2 := r1.received(), r2.received()
	for _, g := range [][]received{got1, got2} {
		sort.Slice(g, func(i, j int) bool { return g[i].ev.Video < g[j].ev.Video })
	}
	if len(got1) != 3 || len(got2) != 3 {
		t.Fatalf("received %d and %d, want 3 each", len(got1), len(got2))
	}
	ids := map[string]bool{}
	for i := range got1 {
		a, b := got1[i], got2[i]
		if !a.ok || !b.ok || a.id != a.ev.ID || a.id != b.id || !strings.HasPrefix(a.id, "evt_") || ids[a.id] {
			t.Errorf("delivery %d: verified %v %v, ids %s %s %s", i, a.ok, b.ok, a.id, b.id, a.ev.ID)
		}
		ids[a.id] = true
		ev := a.ev
		ev.ID = ""
		if ev != want[i] || b.ev != a.ev {
			t.Errorf("payload %d: %+v, want %+v", i, ev, want[i])
		}
	}
	// Without public_url, no url.
	s.Listener("").Deleted(packager.Key{Video: "v4", Type: "default"})
	idle(t, s, c)
	if got := r1.received(); len(got) != 4 || got[3].ev.URL != "" {
		t.Errorf("without public_url: %+v", got)
	}
}

// TestLogsKeepSecrets: no log line holds the secret, the signature, or the URL's user
// info or query (which may hold credentials).
func TestLogsKeepSecrets(t *testing.T) {
	const secret = "never-log-this-secret"
	r := newReceiver(t, secret, http.StatusServiceUnavailable, http.StatusForbidden)
	core, logs := observer.New(zapcore.DebugLevel)
	c := newFakeClock()
	s := newSender(t, t.TempDir(), c, Options{Logger: zap.New(core)})
	u := strings.Replace(r.URL, "http://", "http://user:pa55word@", 1) + "/hook?token=query-t0ken"
	s.Configure(Config{URLs: []string{u}, Secret: secret})
	s.Enqueue(Event{Event: EventReady, Video: "v", Type: "default", Status: "ready"})
	c.set(idle(t, s, c))
	s.poke()
	idle(t, s, c)
	got := r.received()
	if len(got) != 2 {
		t.Fatalf("%d attempts, want 2 (503, then 403: dropped)", len(got))
	}
	if logs.FilterMessageSnippet("refused by the receiver").Len() != 1 {
		t.Errorf("no log line for the refused delivery: %v", logs.All())
	}
	for _, e := range logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += fmt.Sprintf(" %s=%v", k, v)
		}
		for _, bad := range []string{secret, "pa55word", "query-t0ken", got[0].sig, got[1].sig} {
			if strings.Contains(line, bad) {
				t.Errorf("log line holds %q: %s", bad, line)
			}
		}
	}
}
