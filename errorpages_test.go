package streamdownloads_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testcaddy"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// TestErrorPages: the delivery's refusals (403, 404, 503) go through a site's
// handle_errors routes when they would handle them, and keep their one-line bodies
// (docs/spec.md §3.2) otherwise — on a site without handle_errors that shares its server
// with one that has them, and for a status that a site's handle_errors does not list.
// Retry-After stays on the 503 either way; the API keeps its JSON envelope. Polling a
// download being packaged writes no ERROR log line (Caddy's server logs an error its
// routes handled at DEBUG; one it has no routes for, at ERROR when 5xx, which the
// handler avoids by answering itself). Caddy runs as a process of its own, so that its
// log is read as an operator sees it.
func TestErrorPages(t *testing.T) {
	bin := testcaddy.Binary(t)
	s := newSigner(t)
	key := filepath.Join(t.TempDir(), "k1.pub.pem")
	if err := os.WriteFile(key, s.rsaPubPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	origin := testutil.NewOrigin(t, testutil.DemoOrigin(t))
	port := testutil.FreePort(t)
	storage := t.TempDir()
	// Four sites on one server (one port), told apart by Host; they share the store.
	block := fmt.Sprintf(`	stream_downloads {
		origin %s/{video_id}/master.m3u8
		api_token %s
		storage_dir %s
		signing_key k1 %s
	}
	respond "next handler" 418
`, origin.URL, apiToken, storage, key)
	cfg := fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	skip_install_trust
	log {
		level DEBUG
	}
}

http://plain.test:%[1]d {
	bind 127.0.0.1
%[2]s}

http://pages.test:%[1]d {
	bind 127.0.0.1
%[2]s	handle_errors {
		header Content-Type "text/html; charset=utf-8"
		respond "<p>custom {err.status_code}: {err.message}</p>"
	}
}

http://only404.test:%[1]d {
	bind 127.0.0.1
%[2]s	handle_errors 404 {
		respond "custom 404"
	}
}

http://rewrite.test:%[1]d {
	bind 127.0.0.1
	uri strip_prefix /media
%[2]s	handle_errors {
		handle /media/* {
			respond "custom media {err.status_code}"
		}
	}
}
`, port, block)
	p := testcaddy.StartProcess(t, bin, cfg, fmt.Sprintf("127.0.0.1:%d", port))

	send := func(method, host, path string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host + fmt.Sprintf(":%d", port)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	get := func(host, path string, hdr ...string) (*http.Response, string) {
		t.Helper()
		return send(http.MethodGet, host, path, hdr...)
	}
	type want struct {
		host, body, contentType string
	}
	check := func(name, path string, status int, wants ...want) {
		t.Helper()
		for _, w := range wants {
			resp, body := get(w.host, path)
			if resp.StatusCode != status || body != w.body {
				t.Errorf("%s on %s: %d %q, want %d %q", name, w.host, resp.StatusCode, body, status, w.body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != w.contentType {
				t.Errorf("%s on %s: Content-Type %q, want %q", name, w.host, ct, w.contentType)
			}
			if status == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
				t.Errorf("%s on %s: no Retry-After", name, w.host)
			}
		}
	}
	const plain, html = "text/plain; charset=utf-8", "text/html; charset=utf-8"

	// 404: not created.
	check("404 before creation", "/demo/downloads/default.mp4", http.StatusNotFound,
		want{"plain.test", "download not found\n", plain},
		want{"pages.test", "<p>custom 404: download not found</p>", html},
		want{"only404.test", "custom 404", plain})

	// The error routes see the request as it came, before the rewrite (as Caddy gives it
	// to them): /media/… is theirs, a path without /media is not.
	check("404 of a rewritten path", "/media/demo/downloads/default.mp4", http.StatusNotFound,
		want{"rewrite.test", "custom media 404", plain})
	check("404 of a path the error routes do not match", "/demo/downloads/default.mp4", http.StatusNotFound,
		want{"rewrite.test", "download not found\n", plain})

	// 403: a valid token whose access rules block everyone.
	blocked := mint(t, jwt.SigningMethodRS256, s.rsa, "k1", claims(jwt.MapClaims{
		"accessRules": []map[string]any{{"type": "any", "action": "block"}}}))
	check("403 by access rules", "/"+blocked+"/downloads/default.mp4", http.StatusForbidden,
		want{"plain.test", "access denied by the token's access rules\n", plain},
		want{"pages.test", "<p>custom 403: access denied by the token's access rules</p>", html},
		want{"only404.test", "access denied by the token's access rules\n", plain})

	// The API keeps its envelope on every site, handle_errors or not.
	for _, host := range []string{"plain.test", "pages.test"} {
		resp, body := get(host, "/a/stream/demo/downloads", "Authorization", "Bearer wrong")
		var env envelope
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "application/json" ||
			json.Unmarshal([]byte(body), &env) != nil || env.Success || len(env.Errors) != 1 {
			t.Errorf("API 401 on %s: %d %s %q", host, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}

	// 503: being packaged (the origin holds its segments), polled a few times.
	origin.HoldSegmentsAfter(0)
	auth := []string{"Authorization", "Bearer " + apiToken}
	if resp, body := send(http.MethodPost, "pages.test", "/a/stream/demo/downloads", auth...); resp.StatusCode != 200 {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	<-origin.Held
	for range 3 {
		check("503 while packaging", "/demo/downloads/default.mp4", http.StatusServiceUnavailable,
			want{"plain.test", "download is being prepared, try again shortly\n", plain},
			want{"pages.test", "<p>custom 503: download is being prepared, try again shortly</p>", html},
			want{"only404.test", "download is being prepared, try again shortly\n", plain})
	}
	origin.Release()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		_, body := get("plain.test", "/a/stream/demo/downloads", auth...)
		var env envelope
		json.Unmarshal([]byte(body), &env)
		if st := env.Result["default"].Status; st != "inprogress" {
			if st != "ready" {
				t.Fatalf("packaging ended: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after a minute: %s", body)
		}
	}
	for _, host := range []string{"plain.test", "pages.test", "only404.test"} {
		if resp, _ := get(host, "/demo/downloads/default.mp4"); resp.StatusCode != http.StatusOK ||
			resp.Header.Get("Content-Type") != "video/mp4" {
			t.Errorf("ready on %s: %d %s", host, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}

	// The log: no ERROR line at all; the handled errors at DEBUG, one line each, the
	// token never in a message.
	time.Sleep(200 * time.Millisecond) // the last lines reach the buffer
	handled := 0
	sc := bufio.NewScanner(strings.NewReader(p.Logs()))
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Level, Logger, Msg string
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		if line.Level == "error" {
			t.Errorf("ERROR log line: %s", sc.Text())
		}
		if line.Logger == "http.log.error" {
			if line.Level != "debug" || strings.Contains(line.Msg, "\n") || strings.Contains(line.Msg, blocked) {
				t.Errorf("error log line: %s", sc.Text())
			}
			if strings.Contains(line.Msg, "being prepared") {
				handled++
			}
		}
	}
	if handled != 3 {
		t.Errorf("%d DEBUG lines of the 503s handled by handle_errors, want 3 (one per poll)", handled)
	}
}
