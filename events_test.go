package streamdownloads_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/golang-jwt/jwt/v5"
)

func init() {
	caddy.RegisterModule(eventRecorder{})
}

// recorded are the events the test handler module received.
var recorded = struct {
	sync.Mutex
	events []caddy.Event
}{}

// eventRecorder is events.handlers.stream_downloads_test_recorder: a Caddy event
// handler that keeps what it receives, for TestEvents.
type eventRecorder struct{}

func (eventRecorder) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "events.handlers.stream_downloads_test_recorder",
		New: func() caddy.Module { return new(eventRecorder) },
	}
}

func (eventRecorder) Handle(_ context.Context, e caddy.Event) error {
	recorded.Lock()
	recorded.events = append(recorded.events, e)
	recorded.Unlock()
	return nil
}

var _ caddyevents.Handler = eventRecorder{}

// waitEvent waits for an event named name of video and returns its data.
func waitEvent(t *testing.T, name, video string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		recorded.Lock()
		for _, e := range recorded.events {
			if e.Name() == name && e.Data["video"] == video {
				recorded.Unlock()
				return e.Data
			}
		}
		recorded.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no event %s for %q", name, video)
	return nil
}

// TestEvents subscribes a handler module to the module's events in Caddy's events app
// and sees them arrive: ready, failed, denied (without the token), deleted; each with
// the handler as its origin.
func TestEvents(t *testing.T) {
	o := newOpsEdge(t, "")
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(o.cfg), nil)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(adapted, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["apps"].(map[string]any)["events"] = map[string]any{
		"subscriptions": []any{map[string]any{
			"events":   []string{"stream_download_ready", "stream_download_failed", "stream_download_deleted", "stream_download_denied"},
			"handlers": []any{map[string]any{"handler": "stream_downloads_test_recorder"}},
		}},
	}
	b, _ := json.Marshal(cfg)
	recorded.Lock()
	recorded.events = nil
	recorded.Unlock()
	if err := caddy.Load(b, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	waitAnswers(t, o.base)

	if code, env := o.call("POST", "/a/stream/demo/downloads"); code != 200 {
		t.Fatalf("POST: %d %+v", code, env.Errors)
	}
	o.waitReady("demo", "default")
	ready := waitEvent(t, "stream_download_ready", "demo")
	if ready["type"] != "default" || ready["size"].(int64) <= 0 || ready["etag"] == "" {
		t.Errorf("ready: %v", ready)
	}

	o.call("POST", "/a/stream/bad/downloads")
	o.waitReady("bad", "default")
	failed := waitEvent(t, "stream_download_failed", "bad")
	if failed["code"] != "origin_error" || !strings.Contains(failed["reason"].(string), "404") {
		t.Errorf("failed: %v", failed)
	}

	expired := o.token("demo", jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()})
	if code, _ := o.deliver("/"+expired+"/downloads/default.mp4", nil); code != 401 {
		t.Fatalf("expired token: %d", code)
	}
	denied := waitEvent(t, "stream_download_denied", "")
	if denied["result"] != "expired" || denied["status"] != 401 || denied["type"] != "default" || denied["client_ip"] != "127.0.0.1" {
		t.Errorf("denied: %v", denied)
	}
	blocked := o.token("two", jwt.MapClaims{"accessRules": []map[string]any{{"type": "any", "action": "block"}}})
	o.deliver("/"+blocked+"/downloads/default.mp4", nil)
	if d := waitEvent(t, "stream_download_denied", "two"); d["result"] != "rule_blocked" || d["status"] != 403 {
		t.Errorf("denied by a rule: %v", d)
	}

	if code, env := o.call("DELETE", "/a/stream/demo/downloads"); code != 200 {
		t.Fatalf("DELETE: %d %+v", code, env.Errors)
	}
	if d := waitEvent(t, "stream_download_deleted", "demo"); d["type"] != "default" {
		t.Errorf("deleted: %v", d)
	}

	recorded.Lock()
	defer recorded.Unlock()
	for _, e := range recorded.events {
		if e.Origin() == nil || e.Origin().CaddyModule().ID != "http.handlers.stream_downloads" {
			t.Errorf("event %s: origin %v", e.Name(), e.Origin())
		}
		if s := fmtData(e.Data); strings.Contains(s, expired) || strings.Contains(s, blocked) {
			t.Errorf("event %s holds the token: %s", e.Name(), s)
		}
	}
}

func fmtData(d map[string]any) string {
	b, _ := json.Marshal(d)
	return string(b)
}

// waitAnswers waits until base answers HTTP.
func waitAnswers(t *testing.T, base string) {
	t.Helper()
	for range 100 {
		if resp, err := http.Get(base + "/"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s does not answer", base)
}
