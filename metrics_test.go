package streamdownloads_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testcaddy"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// originSecret is an origin_header value: it must never reach a log.
const originSecret = "origin-secret-5d1c0e"

// opsEdge is an edge with Caddy's admin endpoint on a free port, its log at DEBUG in a
// file, a signing key, and an origin that serves the demo video as "demo", "two" and
// "bad" (whose second segment is always 404).
type opsEdge struct {
	*edge
	admin  string // base URL of the admin endpoint
	log    string // path of the log file
	origin *testutil.FaultOrigin
	signer *signer
	site   string // the site block
}

// opsCaddyfile is testcaddy.Caddyfile with the admin endpoint on adminAddr and the log
// at DEBUG in logPath.
func opsCaddyfile(adminAddr, logPath, body string) string {
	return fmt.Sprintf("{\n\tadmin %s\n\tpersist_config off\n\tauto_https off\n\tskip_install_trust\n\tlog {\n\t\toutput file %s\n\t\tlevel DEBUG\n\t}\n}\n%s",
		adminAddr, logPath, body)
}

func newOpsEdge(t *testing.T, extra string) *opsEdge {
	t.Helper()
	dir := t.TempDir()
	demo := filepath.Join(testutil.DemoOrigin(t), "demo")
	for _, v := range []string{"demo", "two", "bad"} {
		if err := os.Symlink(demo, filepath.Join(dir, v)); err != nil {
			t.Fatal(err)
		}
	}
	origin := testutil.NewFaultOrigin(t, dir)
	origin.Always("/bad/240p/seg_001.ts", testutil.Fault{Kind: testutil.Status, Status: 404})

	s := newSigner(t)
	key := filepath.Join(t.TempDir(), "k1.pem")
	if err := os.WriteFile(key, pemOf(t, "PRIVATE KEY", s.rsa), 0o600); err != nil {
		t.Fatal(err)
	}
	port, adminPort := testutil.FreePort(t), testutil.FreePort(t)
	e := &edge{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), dir: t.TempDir()}
	o := &opsEdge{edge: e, admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort),
		log: filepath.Join(t.TempDir(), "caddy.log"), origin: origin, signer: s}
	o.site = fmt.Sprintf(`
http://127.0.0.1:%d {
	bind 127.0.0.1
	stream_downloads {
		origin %s/{video_id}/master.m3u8
		origin_header X-Origin-Key %s
		api_token %s
		storage_dir %s
		signing_key k1 %s
%s	}
	respond "next handler" 418
}
`, port, origin.URL, originSecret, apiToken, e.dir, key, extra)
	e.cfg = opsCaddyfile(fmt.Sprintf("127.0.0.1:%d", adminPort), o.log, o.site)
	return o
}

// token signs a token for video, with extra claims.
func (o *opsEdge) token(video string, extra jwt.MapClaims) string {
	c := claims(extra)
	c["sub"] = video
	return mint(o.t, jwt.SigningMethodRS256, o.signer.rsa, "k1", c)
}

// adminGet GETs path on the admin endpoint and returns its body.
func (o *opsEdge) adminGet(path string) string {
	o.t.Helper()
	req, _ := http.NewRequest("GET", o.admin+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		o.t.Fatalf("GET admin %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// metricLine matches a sample of the scrape: name{labels} value.
var metricLine = regexp.MustCompile(`^(caddy_stream_downloads_[a-z_]+)(\{[^}]*\})? (\S+)$`)

// scrape reads the module's samples from the admin /metrics, keyed by the name and
// the labels without store (sorted as Prometheus writes them).
func (o *opsEdge) scrape() (map[string]float64, string) {
	o.t.Helper()
	text := o.adminGet("/metrics")
	out := map[string]float64{}
	var ours []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# HELP caddy_stream_downloads_") || strings.HasPrefix(line, "# TYPE caddy_stream_downloads_") {
			ours = append(ours, line)
			continue
		}
		m := metricLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ours = append(ours, line)
		labels := regexp.MustCompile(`,?store="[^"]*"`).ReplaceAllString(m[2], "")
		labels = strings.Replace(labels, "{,", "{", 1)
		if labels == "{}" {
			labels = ""
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			o.t.Fatalf("sample %q: %v", line, err)
		}
		out[m[1]+labels] = v
	}
	return out, strings.Join(ours, "\n") + "\n"
}

// deliver GETs the delivery path with header and returns its status and body length.
func (o *opsEdge) deliver(path string, header map[string]string) (int, int) {
	o.t.Helper()
	req, _ := http.NewRequest("GET", o.base+path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, len(b)
}

// TestMetrics runs a packaging run, a failed one and some deliveries through a real
// Caddy, and reads the module's metrics at the admin endpoint's /metrics; a reload
// keeps them (the manager's), registered into the new config's registry.
func TestMetrics(t *testing.T) {
	o := newOpsEdge(t, "")
	o.origin.Once("/demo/240p/seg_001.ts", testutil.Fault{Kind: testutil.Status, Status: 503}) // a retry
	o.origin.Once("/demo/240p/seg_000.ts", testutil.Fault{Kind: testutil.Redirect, Location: "/two/240p/seg_000.ts"})
	testcaddy.Start(t, o.cfg)

	if code, env := o.call("POST", "/a/stream/demo/downloads"); code != 200 {
		t.Fatalf("POST demo: %d %+v", code, env.Errors)
	}
	ready := o.waitReady("demo", "default")
	if ready.Status != "ready" {
		t.Fatalf("demo: %s %s", ready.Status, ready.ErrorReasonText)
	}
	if code, env := o.call("POST", "/a/stream/bad/downloads"); code != 200 {
		t.Fatalf("POST bad: %d %+v", code, env.Errors)
	}
	if en := o.waitReady("bad", "default"); en.ErrorReasonCode != "origin_error" {
		t.Fatalf("bad: %+v", en)
	}

	delivered := 0
	code, n := o.deliver("/demo/downloads/default.mp4", nil)
	if code != 200 || n == 0 {
		t.Fatalf("GET: %d, %d bytes", code, n)
	}
	size := n
	delivered += n
	code, n = o.deliver("/demo/downloads/default.mp4", map[string]string{"Range": "bytes=0-99"})
	if code != 206 || n != 100 {
		t.Fatalf("GET range: %d, %d bytes", code, n)
	}
	delivered += n
	tok := o.token("demo", nil)
	for range 2 { // the second is answered by the verification cache
		code, n = o.deliver("/"+tok+"/downloads/default.mp4", nil)
		if code != 200 {
			t.Fatalf("GET with token: %d", code)
		}
		delivered += n
	}
	expired := o.token("demo", jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()})
	if code, _ := o.deliver("/"+expired+"/downloads/default.mp4", nil); code != 401 {
		t.Fatalf("expired token: %d", code)
	}
	if code, _ := o.deliver("/"+tamper(t, tok, claims(jwt.MapClaims{"sub": "two"}))+"/downloads/default.mp4", nil); code != 401 {
		t.Fatalf("tampered token: %d", code)
	}
	blocked := o.token("demo", jwt.MapClaims{"accessRules": []map[string]any{{"type": "any", "action": "block"}}})
	if code, _ := o.deliver("/"+blocked+"/downloads/default.mp4", nil); code != 403 {
		t.Fatalf("blocked token: %d", code)
	}

	got, text := o.scrape()
	if dir := os.Getenv("STREAM_DOWNLOADS_SAMPLE_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "metrics.txt"), []byte(text), 0o644)
	}
	want := map[string]float64{
		`caddy_stream_downloads_runs_total{code="",outcome="ready",type="default"}`:             1,
		`caddy_stream_downloads_runs_total{code="origin_error",outcome="error",type="default"}`: 1,
		`caddy_stream_downloads_run_duration_seconds_count{outcome="ready",type="default"}`:     1,
		`caddy_stream_downloads_run_duration_seconds_count{outcome="error",type="default"}`:     1,
		`caddy_stream_downloads_requests_total{code="200",kind="delivery"}`:                     3,
		`caddy_stream_downloads_requests_total{code="206",kind="delivery"}`:                     1,
		`caddy_stream_downloads_requests_total{code="401",kind="delivery"}`:                     2,
		`caddy_stream_downloads_requests_total{code="403",kind="delivery"}`:                     1,
		`caddy_stream_downloads_delivered_bytes_total`:                                          float64(delivered),
		`caddy_stream_downloads_token_checks_total{result="ok"}`:                                2,
		`caddy_stream_downloads_token_checks_total{result="expired"}`:                           1,
		`caddy_stream_downloads_token_checks_total{result="bad_signature"}`:                     1,
		`caddy_stream_downloads_token_checks_total{result="rule_blocked"}`:                      1,
		`caddy_stream_downloads_token_cache_hits_total`:                                         1,
		`caddy_stream_downloads_stored_files`:                                                   1,
		`caddy_stream_downloads_stored_bytes`:                                                   float64(size),
		`caddy_stream_downloads_queue_length`:                                                   0,
		`caddy_stream_downloads_running_jobs`:                                                   0,
		`caddy_stream_downloads_evictions_total`:                                                0,
		`caddy_stream_downloads_origin_requests_total{outcome="5xx"}`:                           1,
		`caddy_stream_downloads_origin_requests_total{outcome="3xx"}`:                           0, // redirects are followed inside one request
		`caddy_stream_downloads_origin_retries_total`:                                           1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if got[`caddy_stream_downloads_origin_requests_total{outcome="2xx"}`] < 5 {
		t.Errorf("origin 2xx requests: %v", got[`caddy_stream_downloads_origin_requests_total{outcome="2xx"}`])
	}
	if got[`caddy_stream_downloads_origin_requests_total{outcome="4xx"}`] < 1 {
		t.Errorf("origin 4xx requests: %v", got[`caddy_stream_downloads_origin_requests_total{outcome="4xx"}`])
	}
	if got["caddy_stream_downloads_origin_bytes_total"] < float64(size)/2 {
		t.Errorf("origin bytes %v for a file of %d", got["caddy_stream_downloads_origin_bytes_total"], size)
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", text)
	}

	// A reload: a new registry, the same metrics.
	testcaddy.Load(t, o.cfg)
	again, _ := o.scrape()
	if k := `caddy_stream_downloads_runs_total{code="",outcome="ready",type="default"}`; again[k] != 1 {
		t.Errorf("after a reload, %s = %v, want 1", k, again[k])
	}
}

// TestOpsLog reads the DEBUG log of a run with a retry, a redirect and a failure, and
// deliveries with tokens: the origin's faults are Debug lines naming the video and the
// type, a 404 at the origin fails the run at Warn (not Error), and neither the API
// token, the signed tokens nor the origin_header value appear anywhere.
func TestOpsLog(t *testing.T) {
	o := newOpsEdge(t, "")
	o.origin.Once("/demo/240p/seg_001.ts", testutil.Fault{Kind: testutil.Status, Status: 503})
	o.origin.Once("/demo/240p/seg_000.ts", testutil.Fault{Kind: testutil.Redirect, Location: "/two/240p/seg_000.ts"})
	testcaddy.Start(t, o.cfg)

	o.call("POST", "/a/stream/demo/downloads")
	if en := o.waitReady("demo", "default"); en.Status != "ready" {
		t.Fatalf("demo: %+v", en)
	}
	o.call("POST", "/a/stream/bad/downloads")
	o.waitReady("bad", "default")
	tok := o.token("demo", nil)
	expired := o.token("demo", jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()})
	o.deliver("/"+tok+"/downloads/default.mp4", nil)
	o.deliver("/"+expired+"/downloads/default.mp4", nil)
	o.deliver("/"+tok+"/downloads/default.mp4?filename=x.y", nil) // 400
	o.call("DELETE", "/a/stream/demo/downloads")

	b, err := os.ReadFile(o.log)
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	for name, secret := range map[string]string{"api token": apiToken, "signed token": tok, "expired token": expired,
		"token signature": tok[strings.LastIndexByte(tok, '.')+1:], "origin_header value": originSecret} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds the %s", name)
		}
	}
	seen := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if l["logger"] != "http.handlers.stream_downloads" {
			continue
		}
		msg, _ := l["msg"].(string)
		switch msg {
		case "retrying origin request", "origin redirected", "packaging failed", "packaging done", "origin request stalled":
			if l["video"] == nil || l["type"] == nil {
				t.Errorf("%q names no video and type: %s", msg, line)
			}
			key := msg + " " + fmt.Sprint(l["video"])
			if seen[key] == nil {
				seen[key] = l
			}
		}
	}
	for key, level := range map[string]string{
		"retrying origin request demo": "debug",
		"origin redirected demo":       "debug",
		"packaging done demo":          "info",
		"packaging failed bad":         "warn",
	} {
		l := seen[key]
		if l == nil {
			t.Errorf("no %q line", key)
			continue
		}
		if l["level"] != level {
			t.Errorf("%q at %v, want %s", key, l["level"], level)
		}
	}
	if l := seen["packaging failed bad"]; l != nil && l["code"] != "origin_error" {
		t.Errorf("packaging failed: code %v", l["code"])
	}
	if t.Failed() {
		t.Logf("log:\n%s", log)
	}
}
