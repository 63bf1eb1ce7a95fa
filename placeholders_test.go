package streamdownloads_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testcaddy"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// TestAPITokenFromEnv: `api_token {env.NAME}`, as the README writes it, is the value of
// the environment variable; the literal placeholder is not a token.
func TestAPITokenFromEnv(t *testing.T) {
	const secret = "token-from-the-environment"
	t.Setenv("SD_TEST_API_TOKEN", secret)
	origin := testutil.NewOrigin(t, testutil.DemoOrigin(t))
	port := testutil.FreePort(t)
	e := &edge{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	testcaddy.Start(t, testcaddy.Caddyfile(fmt.Sprintf(`
http://127.0.0.1:%d {
	bind 127.0.0.1
	stream_downloads {
		origin %s/{video_id}/master.m3u8
		api_token {env.SD_TEST_API_TOKEN}
		storage_dir %s
	}
}
`, port, origin.URL, t.TempDir())))
	if code, env := e.callWith("GET", "/a/stream/demo/downloads", secret); code != http.StatusOK {
		t.Errorf("the environment variable's value: %d %+v, want 200", code, env.Errors)
	}
	if code, _ := e.callWith("GET", "/a/stream/demo/downloads", "{env.SD_TEST_API_TOKEN}"); code != http.StatusUnauthorized {
		t.Errorf("the literal placeholder: %d, want 401", code)
	}
}

// TestPlaceholders runs a real Caddy whose every string option comes from {env.*} or
// {file.*}: the origin's URL and an origin header (which the origin, Caddy's
// file_server behind a header matcher, requires), the storage directory, the public
// URL, the API token, a signing key given as {file./path} (the key itself), the country
// header and the allowed hosts (two in one variable); a second signing key is a file
// whose directory is an environment variable. The origin keeps {video_id} for
// each request.
func TestPlaceholders(t *testing.T) {
	dir := t.TempDir()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, key2, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "k1.pem")
	originTokenFile := filepath.Join(dir, "origin-token")
	for name, b := range map[string][]byte{
		keyFile:                      pemOf(t, "PRIVATE KEY", key),
		filepath.Join(dir, "k2.pem"): pemOf(t, "PUBLIC KEY", key2.Public()),
		originTokenFile:              []byte("origin-secret\n"),
	} {
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	originPort, port := testutil.FreePort(t), testutil.FreePort(t)
	storage := filepath.Join(t.TempDir(), "store")
	env := map[string]string{
		"SD_TEST_API_TOKEN": "api-token-from-env",
		"SD_TEST_ORIGIN":    fmt.Sprintf("http://127.0.0.1:%d", originPort),
		"SD_TEST_DIR":       storage,
		"SD_TEST_PUBLIC":    "https://downloads.example/base",
		"SD_TEST_COUNTRY":   "X-Test-Country",
		"SD_TEST_HOSTS":     "cdn.example, media.example",
		"SD_TEST_KEYS":      dir,
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	testcaddy.Start(t, testcaddy.Caddyfile(fmt.Sprintf(`
http://127.0.0.1:%d {
	bind 127.0.0.1
	@authorized header X-Origin-Auth "Bearer origin-secret"
	handle @authorized {
		root * %s
		file_server
	}
	respond "origin: no X-Origin-Auth" 403
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	stream_downloads {
		origin {env.SD_TEST_ORIGIN}/{video_id}/master.m3u8
		origin_header X-Origin-Auth "Bearer {file.%s}"
		api_token {env.SD_TEST_API_TOKEN}
		storage_dir {env.SD_TEST_DIR}
		public_url {env.SD_TEST_PUBLIC}
		require_signed_urls
		signing_key k1 {file.%s}
		signing_key k2 {env.SD_TEST_KEYS}/k2.pem
		country_header {env.SD_TEST_COUNTRY}
		allowed_hosts {env.SD_TEST_HOSTS}
	}
}
`, originPort, testutil.DemoOrigin(t), port, originTokenFile, keyFile)))
	e := &edge{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), dir: storage}

	if code, _ := e.callWith("POST", "/a/stream/demo/downloads", "{env.SD_TEST_API_TOKEN}"); code != http.StatusUnauthorized {
		t.Errorf("POST with the literal placeholder as token: %d, want 401", code)
	}
	code, envl := e.callWith("POST", "/a/stream/demo/downloads", env["SD_TEST_API_TOKEN"])
	if code != http.StatusOK {
		t.Fatalf("POST with the environment's token: %d %+v", code, envl.Errors)
	}
	if got, want := envl.Result["default"].URL, "https://downloads.example/base/demo/downloads/default.mp4"; got != want {
		t.Errorf("url %q, want %q (public_url from the environment)", got, want)
	}
	var en entry
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, envl = e.callWith("GET", "/a/stream/demo/downloads", env["SD_TEST_API_TOKEN"])
		if en = envl.Result["default"]; en.Status != "inprogress" {
			break
		}
	}
	if en.Status != "ready" {
		t.Fatalf("packaging ended %s: %s %s (origin from the environment, its header from a file)", en.Status, en.ErrorReasonCode, en.ErrorReasonText)
	}
	if _, err := os.Stat(filepath.Join(storage, "demo", "default.json")); err != nil {
		t.Errorf("storage_dir from the environment: %v", err)
	}

	sign := func(extra jwt.MapClaims) string { return mint(t, jwt.SigningMethodEdDSA, key, "k1", claims(extra)) }
	gbBlock := jwt.MapClaims{"accessRules": []map[string]any{{"type": "ip.geoip.country", "country": []string{"gb"}, "action": "block"}}}
	for _, c := range []struct {
		name   string
		token  string
		header map[string]string
		status int
	}{
		{name: "signed with the {file.*} key", token: sign(nil), status: 200},
		{name: "signed with the key at a path from the environment", token: mint(t, jwt.SigningMethodEdDSA, key2, "k2", claims(nil)), status: 200},
		{name: "signed with another key", token: mint(t, jwt.SigningMethodEdDSA, ed25519.NewKeyFromSeed(make([]byte, 32)), "k1", claims(nil)), status: 401},
		{name: "country from the header the environment names", token: sign(gbBlock), header: map[string]string{"X-Test-Country": "GB"}, status: 403},
		{name: "other country", token: sign(gbBlock), header: map[string]string{"X-Test-Country": "SE"}, status: 200},
	} {
		if code, body := get(t, e.base+"/"+c.token+"/downloads/default.mp4", c.header); code != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, code, firstLine(body), c.status)
		}
	}
}

// TestPlaceholderErrors: a placeholder that comes out empty (an unset variable, a
// missing file), one that is not known when the config loads, and a secret that is not
// one once expanded all fail the load, naming the option, never echoing a value.
func TestPlaceholderErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: runs without -short")
	}
	const secret = "do-not-echo-this-value"
	t.Setenv("SD_TEST_UNSET", "")
	os.Unsetenv("SD_TEST_UNSET")
	t.Setenv("SD_TEST_EMPTY", "")
	t.Setenv("SD_TEST_SPACED", secret+" "+secret)
	t.Setenv("SD_TEST_NOT_URL", "edge.example")
	t.Setenv("SD_TEST_BAD_KEY", "-----BEGIN PRIVATE KEY-----\n"+secret+"\n-----END PRIVATE KEY-----\n")
	notKey := filepath.Join(t.TempDir(), secret+".pem")
	if err := os.WriteFile(notKey, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SD_TEST_NOT_KEY_FILE", notKey)
	origin := testutil.NewOrigin(t, testutil.DemoOrigin(t))
	port := testutil.FreePort(t)
	for _, c := range []struct{ name, options, want string }{
		{"api_token unset", "api_token {env.SD_TEST_UNSET}", "api_token: evaluated placeholder {env.SD_TEST_UNSET} is empty"},
		{"api_token empty", "api_token {env.SD_TEST_EMPTY}", "api_token: evaluated placeholder {env.SD_TEST_EMPTY} is empty"},
		{"api_token with a space", "api_token {env.SD_TEST_SPACED}", "api_token: a token must be non-empty and without spaces"},
		{"api_token of the request", "api_token {http.request.header.X-Token}", "api_token: holds a placeholder that is not known when the config loads"},
		{"api_token from a missing file", "api_token {file./nonexistent/token}", "api_token: evaluated placeholder {file./nonexistent/token} is empty"},
		{"storage_dir unset", "storage_dir {env.SD_TEST_UNSET}", "storage_dir: evaluated placeholder {env.SD_TEST_UNSET} is empty"},
		{"origin_header unset", `origin_header Authorization "Bearer {env.SD_TEST_UNSET}"`, "origin_header Authorization: evaluated placeholder {env.SD_TEST_UNSET} is empty"},
		{"public_url unset", "public_url {env.SD_TEST_UNSET}", "public_url: evaluated placeholder {env.SD_TEST_UNSET} is empty"},
		{"public_url not a URL", "public_url {env.SD_TEST_NOT_URL}", `public_url: "edge.example" is not an absolute http:// or https:// URL`},
		{"geoip_db unset", "geoip_db {env.SD_TEST_UNSET}", "geoip_db: evaluated placeholder {env.SD_TEST_UNSET} is empty"},
		{"country_header unset", "country_header {env.SD_TEST_UNSET}", "country_header: evaluated placeholder {env.SD_TEST_UNSET} is empty"},
		{"allowed_hosts unset", "allowed_hosts {env.SD_TEST_UNSET}", "allowed_hosts: evaluated placeholder {env.SD_TEST_UNSET} is empty"},
		{"signing_key from a missing file", "signing_key k1 {file./nonexistent/k1.pem}", "signing_key file: evaluated placeholder {file./nonexistent/k1.pem} is empty"},
		{"signing_key not a key", "signing_key k1 {env.SD_TEST_BAD_KEY}", "signing_key k1: the key from {env.SD_TEST_BAD_KEY}:"},
		{"signing_key path that is not a key", "signing_key k1 {env.SD_TEST_NOT_KEY_FILE}", "signing_key k1: {env.SD_TEST_NOT_KEY_FILE}: "},
		{"origin unset", "", "origin: evaluated placeholder {env.SD_TEST_UNSET} is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			originURL := origin.URL + "/{video_id}/master.m3u8"
			if c.options == "" {
				originURL = "{env.SD_TEST_UNSET}/{video_id}/master.m3u8"
			}
			err := testcaddy.TryLoad(testcaddy.Caddyfile(fmt.Sprintf(`
http://127.0.0.1:%d {
	bind 127.0.0.1
	stream_downloads {
		origin %s
		storage_dir %s
		%s
	}
}
`, port, originURL, t.TempDir(), c.options)))
			if err == nil {
				caddy.Stop()
				t.Fatal("the config was accepted")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want one containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error echoes a secret: %q", err)
			}
		})
	}
}

// TestSharedStorageDir: two sites of one config that share a storage_dir (and with it
// the downloads and their packaging) must agree on the packaging settings, else the
// config fails to load, naming storage_dir and the options (never their values); the
// settings of the handlers' own (tokens, public_url, signed URLs) may differ. A reload
// may still change the settings of a storage_dir: the new config packages with them.
func TestSharedStorageDir(t *testing.T) {
	origin := testutil.NewOrigin(t, demoCopies(t, "r1", "r2"))
	port1, port2 := testutil.FreePort(t), testutil.FreePort(t)
	dir := t.TempDir()
	site := func(port int, options string) string {
		return sharedSite(port, origin.URL+"/{video_id}/master.m3u8", dir, "\t\tapi_token "+apiToken+"\n"+options)
	}
	const secret = "Bearer origin-credentials-not-to-echo"
	for _, c := range []struct {
		name, options1, options2 string
		want                     []string // parts of the error; none: it loads
	}{
		{"max_height", "max_height 720", "max_height 1080", []string{"storage_dir " + dir, "max_height"}},
		{"max_height on one side", "", "max_height 1080", []string{"storage_dir " + dir, "max_height"}},
		{"origin_header", `origin_header Authorization "` + secret + `"`, "", []string{"storage_dir " + dir, "origin_header"}},
		{"several", "max_jobs 3\n\t\tallowed_hosts cdn.example\n\t\tlimits {\n\t\t\tsegments 10\n\t\t}", "",
			[]string{"storage_dir " + dir, "max_jobs", "allowed_hosts", "limits"}},
		{"same settings, other handler options", "max_height 720\n\t\tpublic_url https://a.example\n\t\tapi_token other",
			"max_height 720\n\t\ton_demand 5s\n\t\tcountry_header X-Country", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			loadShared(t, site(port1, c.options1)+site(port2, c.options2), c.want, "origin-credentials")
		})
	}

	// One site, reloaded with other settings for the same directory: max_height 200
	// picks the 144p variant, and once reloaded without it, the 240p one.
	e := &edge{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port1), dir: dir}
	testcaddy.Start(t, testcaddy.Caddyfile(site(port1, "max_height 200")))
	for i, v := range []string{"r1", "r2"} {
		if i == 1 {
			testcaddy.Load(t, testcaddy.Caddyfile(site(port1, "")))
		}
		if code, env := e.call("POST", "/a/stream/"+v+"/downloads"); code != http.StatusOK {
			t.Fatalf("POST %s: %d %+v", v, code, env.Errors)
		}
		if en := e.waitReady(v, "default"); en.Status != "ready" {
			t.Fatalf("%s ended %s: %s", v, en.Status, en.ErrorReasonText)
		}
	}
	for path, want := range map[string]int{"/r1/144p/seg_000.ts": 1, "/r1/240p/seg_000.ts": 0, "/r2/144p/seg_000.ts": 0, "/r2/240p/seg_000.ts": 1} {
		if n := origin.Count(path); n != want {
			t.Errorf("%s fetched %d times, want %d", path, n, want)
		}
	}
}

// loadShared loads a config whose two sites share a storage_dir: it must load when want
// is nil, else fail with an error holding every part of want and not the secret.
func loadShared(t *testing.T, config string, want []string, secret string) {
	t.Helper()
	err := testcaddy.TryLoad(testcaddy.Caddyfile(config))
	if err == nil {
		caddy.Stop()
	}
	switch {
	case want == nil && err != nil:
		t.Fatalf("refused: %v", err)
	case want != nil && err == nil:
		t.Fatal("two sites sharing a storage_dir with different settings were accepted")
	case err != nil:
		t.Log(err)
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q, want one containing %q", err, w)
			}
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error echoes a secret: %q", err)
		}
	}
}

// sharedSite is a site on 127.0.0.1:port whose stream_downloads block has origin, the
// storage_dir dir and the option lines options, for the configs of loadShared.
func sharedSite(port int, origin, dir, options string) string {
	return fmt.Sprintf("\nhttp://127.0.0.1:%d {\n\tbind 127.0.0.1\n\tstream_downloads {\n\t\torigin %s\n\t\tstorage_dir %s\n%s\n\t}\n}\n",
		port, origin, dir, options)
}
