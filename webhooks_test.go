package streamdownloads_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testcaddy"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
	"github.com/stream-downloads/caddy-stream-downloads/notify"
)

// hookReceiver is an application's webhook endpoint on 127.0.0.1: it verifies each
// delivery's signature and age (refusing replays older than 5 minutes), answers 503 to
// the first failFirst deliveries, de-duplicates by id, and can go down and come back on
// the same address.
type hookReceiver struct {
	t      *testing.T
	secret []byte
	addr   string
	srv    *httptest.Server

	mu        sync.Mutex
	failFirst int
	attempts  int
	refused   []string          // deliveries that did not verify, and why
	accepted  []notify.Event    // in the order accepted
	bodies    map[string]string // id → body
	dups      []string          // ids accepted twice
}

func newHookReceiver(t *testing.T, secret string, failFirst int) *hookReceiver {
	h := &hookReceiver{t: t, secret: []byte(secret), failFirst: failFirst, bodies: map[string]string{}, addr: "127.0.0.1:0"}
	h.start()
	t.Cleanup(h.stop)
	return h
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attempts++
	if err := notify.Verify(h.secret, r.Header.Get("Webhook-Signature"), body, time.Now()); err != nil {
		h.refused = append(h.refused, err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if h.failFirst > 0 {
		h.failFirst--
		http.Error(w, "not now", http.StatusServiceUnavailable)
		return
	}
	var ev notify.Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || ev.ID != r.Header.Get("Webhook-Id") {
		h.refused = append(h.refused, fmt.Sprintf("payload %s (Webhook-Id %s): %v", body, r.Header.Get("Webhook-Id"), err))
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	if _, ok := h.bodies[ev.ID]; ok {
		h.dups = append(h.dups, ev.ID)
	} else {
		h.accepted = append(h.accepted, ev)
		h.bodies[ev.ID] = string(body)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) start() {
	ln, err := net.Listen("tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	h.srv = httptest.NewUnstartedServer(h)
	h.srv.Listener = ln
	h.srv.Start()
}

func (h *hookReceiver) stop() {
	if h.srv != nil {
		h.srv.Close()
		h.srv = nil
	}
}

func (h *hookReceiver) url() string { return "http://" + h.addr + "/hooks/downloads" }

// wait waits until an event for video (event name) was accepted and returns it.
func (h *hookReceiver) wait(video, event string) notify.Event {
	h.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		h.mu.Lock()
		for _, ev := range h.accepted {
			if ev.Video == video && ev.Event == event {
				h.mu.Unlock()
				return ev
			}
		}
		h.mu.Unlock()
	}
	h.t.Fatalf("no %s webhook for %s within 30s", event, video)
	return notify.Event{}
}

func (h *hookReceiver) check() {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.refused) > 0 {
		h.t.Errorf("deliveries that did not verify: %q", h.refused)
	}
	if len(h.dups) > 0 {
		h.t.Errorf("ids delivered twice: %q", h.dups)
	}
}

// queuedWebhooks lists the deliveries queued on disk under the storage_dir.
func queuedWebhooks(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, ".webhooks", "*.delivery"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestWebhooks runs Caddy from a Caddyfile with notify_url against a receiver that
// verifies every signature: the first deliveries fail (503) and are retried; an error
// and a deletion are notified; deliveries made while the receiver is down, queued on disk,
// survive a Caddy restart and arrive once it is back — none lost, none twice; a
// delivery replayed with a signature older than 5 minutes is refused by the receiver.
func TestWebhooks(t *testing.T) {
	saved := notify.DefaultPolicy
	notify.DefaultPolicy = notify.Policy{Base: 50 * time.Millisecond, Max: 400 * time.Millisecond, Window: time.Hour}
	t.Cleanup(func() { notify.DefaultPolicy = saved })
	const secret = "whsec-test-0123456789abcdef"
	t.Setenv("SD_HOOK_SECRET", secret)

	rcv := newHookReceiver(t, secret, 2)
	src := demoCopies(t, "w1", "w2", "broken")
	if err := os.Remove(filepath.Join(src, "broken", "240p", "seg_001.ts")); err != nil {
		t.Fatal(err)
	}
	origin := testutil.NewOrigin(t, src)
	e := startEdge(t, origin.URL+"/{video_id}/master.m3u8", "\t\tpublic_url http://edge.example/dl\n"+
		"\t\tnotify_url "+rcv.url()+"\n\t\tnotify_secret {env.SD_HOOK_SECRET}\n")

	// ready, after two 503s.
	if code, env := e.call("POST", "/acct/stream/w1/downloads"); code != http.StatusOK {
		t.Fatalf("POST w1: %d %+v", code, env.Errors)
	}
	if en := e.waitReady("w1", "default"); en.Status != "ready" {
		t.Fatalf("w1 ended %s: %s", en.Status, en.ErrorReasonText)
	}
	start := time.Now()
	ready := rcv.wait("w1", notify.EventReady)
	rcv.mu.Lock()
	attempts := rcv.attempts
	rcv.mu.Unlock()
	if attempts < 3 {
		t.Errorf("%d attempts for the first delivery, want 3 (two 503s, then 204)", attempts)
	}
	ts, err := time.Parse(time.RFC3339, ready.Time)
	if err != nil || start.Sub(ts) > time.Minute || ts.Sub(start) > time.Second {
		t.Errorf("time %q: %v", ready.Time, err)
	}
	if want := (notify.Event{ID: ready.ID, Event: "ready", Time: ready.Time, Video: "w1", Type: "default", Status: "ready",
		URL: "http://edge.example/dl/w1/downloads/default.mp4", PercentComplete: 100, Size: ready.Size}); ready != want || ready.Size <= 0 || !strings.HasPrefix(ready.ID, "evt_") {
		t.Errorf("ready event %+v, want %+v", ready, want)
	}

	// error.
	if code, _ := e.call("POST", "/acct/stream/broken/downloads"); code != http.StatusOK {
		t.Fatalf("POST broken: %d", code)
	}
	failed := e.waitReady("broken", "default")
	if failed.Status != "error" {
		t.Fatalf("broken ended %s", failed.Status)
	}
	ev := rcv.wait("broken", notify.EventError)
	if ev.Status != "error" || ev.ErrorReasonCode != failed.ErrorReasonCode || ev.ErrorReasonText != failed.ErrorReasonText || ev.PercentComplete != 0 {
		t.Errorf("error event %+v, the API says %+v", ev, failed)
	}

	// The receiver goes down; a ready and a deletion are queued on disk.
	rcv.stop()
	if code, _ := e.call("POST", "/acct/stream/w2/downloads"); code != http.StatusOK {
		t.Fatalf("POST w2: %d", code)
	}
	e.waitReady("w2", "default")
	if code, _ := e.call("DELETE", "/acct/stream/w1/downloads"); code != http.StatusOK {
		t.Fatalf("DELETE w1: %d", code)
	}
	for deadline := time.Now().Add(5 * time.Second); len(queuedWebhooks(t, e.dir)) < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if q := queuedWebhooks(t, e.dir); len(q) != 2 {
		t.Fatalf("queued while the receiver is down: %v, want 2", q)
	}

	// Caddy stops (a config without the module) and starts again, the receiver still down.
	port := strings.TrimPrefix(e.base, "http://127.0.0.1:")
	testcaddy.Load(t, testcaddy.Caddyfile("http://127.0.0.1:"+port+" {\n\tbind 127.0.0.1\n\trespond 503\n}\n"))
	if q := queuedWebhooks(t, e.dir); len(q) != 2 {
		t.Fatalf("queued after the stop: %v, want 2", q)
	}
	testcaddy.Load(t, e.cfg)
	time.Sleep(300 * time.Millisecond) // a few attempts that find nobody
	rcv.start()
	w2 := rcv.wait("w2", notify.EventReady)
	del := rcv.wait("w1", notify.EventDeleted)
	if del.Status != "deleted" || del.Type != "default" || del.URL != ready.URL {
		t.Errorf("deleted event %+v", del)
	}
	if w2.ID == ready.ID || del.ID == ready.ID || w2.ID == del.ID {
		t.Errorf("ids not unique: %s %s %s", ready.ID, w2.ID, del.ID)
	}
	for deadline := time.Now().Add(5 * time.Second); len(queuedWebhooks(t, e.dir)) > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if q := queuedWebhooks(t, e.dir); len(q) != 0 {
		t.Errorf("still queued once delivered: %v", q)
	}
	time.Sleep(200 * time.Millisecond) // time for a duplicate to show
	rcv.check()
	rcv.mu.Lock()
	n := len(rcv.accepted)
	body := rcv.bodies[ready.ID]
	rcv.mu.Unlock()
	if n != 4 {
		t.Errorf("%d events accepted, want 4 (ready, error, ready, deleted)", n)
	}

	// A captured delivery replayed 6 minutes later is refused.
	req, _ := http.NewRequest("POST", rcv.url(), bytes.NewReader([]byte(body)))
	req.Header.Set("Webhook-Signature", notify.Sign([]byte(secret), time.Now().Add(-6*time.Minute), []byte(body)))
	req.Header.Set("Webhook-Id", ready.ID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a replay with a 6-minute-old signature: %d, want 400", resp.StatusCode)
	}
}

// TestWebhookOptions: sites sharing a storage_dir must agree on notify_url,
// notify_secret (and public_url with them), named in the error without their values; a
// notify_secret placeholder that comes out empty fails the load naming the option.
func TestWebhookOptions(t *testing.T) {
	if testing.Short() {
		t.Skip("loads configs")
	}
	origin := testutil.NewOrigin(t, demoCopies(t, "x"))
	port1, port2 := testutil.FreePort(t), testutil.FreePort(t)
	dir := t.TempDir()
	site := func(port int, options string) string {
		return sharedSite(port, origin.URL+"/{video_id}/master.m3u8", dir, options)
	}
	const secret = "notify-secret-not-to-echo"
	hook := "\t\tnotify_url http://127.0.0.1:9/hook\n\t\tnotify_secret " + secret + "\n"
	for _, c := range []struct {
		name, options1, options2 string
		want                     []string
	}{
		{"same", hook, hook, nil},
		{"one side", hook, "", []string{"storage_dir " + dir, "notify_url", "notify_secret"}},
		{"another URL", hook, strings.Replace(hook, "9/hook", "9/other", 1), []string{"notify_url"}},
		{"another secret", hook, strings.Replace(hook, secret, secret+"-2", 1), []string{"notify_secret"}},
		{"another public_url", hook + "\t\tpublic_url https://a.example\n", hook, []string{"public_url"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			loadShared(t, site(port1, c.options1)+site(port2, c.options2), c.want, secret)
		})
	}
	t.Run("empty placeholder", func(t *testing.T) {
		err := testcaddy.TryLoad(testcaddy.Caddyfile(site(port1, "\t\tnotify_url http://127.0.0.1:9/hook\n\t\tnotify_secret {env.SD_UNSET_HOOK_SECRET}\n")))
		if err == nil || !strings.Contains(err.Error(), "notify_secret") {
			t.Errorf("error %v, want one naming notify_secret", err)
		}
	})
	t.Run("URL from the environment", func(t *testing.T) {
		t.Setenv("SD_HOOK_URL", "not a url")
		err := testcaddy.TryLoad(testcaddy.Caddyfile(site(port1, "\t\tnotify_url {env.SD_HOOK_URL}\n\t\tnotify_secret "+secret+"\n")))
		if err == nil || !strings.Contains(err.Error(), "notify_url") || strings.Contains(err.Error(), secret) {
			t.Errorf("error %v, want one naming notify_url", err)
		}
	})
}
