package streamdownloads_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
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

// signer makes tokens the way an outside issuer would: with golang-jwt directly, not
// with the module's own signing code.
type signer struct {
	rsa       *rsa.PrivateKey
	ec        *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
	rsaPubPEM []byte
}

func newSigner(t *testing.T) *signer {
	s := &signer{}
	var err error
	if s.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if s.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if _, s.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	s.rsaPubPEM = pemOf(t, "PUBLIC KEY", s.rsa.Public())
	return s
}

func pemOf(t *testing.T, typ string, key any) []byte {
	var der []byte
	var err error
	if typ == "PRIVATE KEY" {
		der, err = x509.MarshalPKCS8PrivateKey(key)
	} else {
		der, err = x509.MarshalPKIXPublicKey(key)
	}
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// mint signs claims with method and key, putting kid in the header when not empty.
func mint(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims for the demo video, valid for an hour, downloadable, plus extra.
func claims(extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "demo", "exp": time.Now().Add(time.Hour).Unix(), "downloadable": true}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// tamper replaces the payload of a signed token, keeping its signature.
func tamper(t *testing.T, token string, c jwt.MapClaims) string {
	parts := strings.Split(token, ".")
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}

// TestSignedURLs runs hostile and edge cases of docs/spec.md §5 through a real Caddy. Site
// "proxied" trusts 127.0.0.1 as a proxy (so X-Forwarded-For sets the client address)
// and looks countries up in MaxMind's GeoLite2 test database; site "direct" trusts no
// proxy and takes the country from a header. Both serve the same store.
func TestSignedURLs(t *testing.T) {
	s := newSigner(t)
	keys := t.TempDir()
	files := map[string][]byte{
		"rsa.pem":    pemOf(t, "PRIVATE KEY", s.rsa),
		"ec.pub.pem": pemOf(t, "PUBLIC KEY", s.ec.Public()),
		"ed.pub.pem": pemOf(t, "PUBLIC KEY", s.ed.Public()),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(keys, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	geoip := filepath.Join(testutil.RepoRoot(t), "tokens", "testdata", "geoip", "GeoLite2-Country-Test.mmdb")
	origin := testutil.NewOrigin(t, testutil.DemoOrigin(t))
	proxied, direct := testutil.FreePort(t), testutil.FreePort(t)
	storage := t.TempDir()
	site := func(port int, extra string) string {
		return fmt.Sprintf(`
http://127.0.0.1:%d {
	bind 127.0.0.1
	stream_downloads {
		origin %s/{video_id}/master.m3u8
		api_token %s
		storage_dir %s
		require_signed_urls
		signing_key k-rsa %s
		signing_key k-ec %s
		signing_key k-ed %s
%s	}
}
`, port, origin.URL, apiToken, storage, filepath.Join(keys, "rsa.pem"), filepath.Join(keys, "ec.pub.pem"), filepath.Join(keys, "ed.pub.pem"), extra)
	}
	cfg := testcaddy.Caddyfile(site(proxied, "\t\tgeoip_db "+geoip+"\n")+site(direct, "\t\tcountry_header X-Country\n"),
		fmt.Sprintf("servers 127.0.0.1:%d {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}", proxied))
	testcaddy.Start(t, cfg)
	e := &edge{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", proxied), dir: storage}
	if code, env := e.call("POST", "/a/stream/demo/downloads"); code != 200 {
		t.Fatalf("POST: %d %+v", code, env.Errors)
	}
	if en := e.waitReady("demo", "default"); en.Status != "ready" {
		t.Fatalf("packaging ended %s: %s", en.Status, en.ErrorReasonText)
	}

	valid := mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", claims(nil))
	rules := func(r ...map[string]any) jwt.MapClaims { return claims(jwt.MapClaims{"accessRules": r}) }
	gbBlock := rules(map[string]any{"type": "ip.geoip.country", "country": []string{"gb"}, "action": "block"})
	onlyDocNet := rules(
		map[string]any{"type": "ip.src", "ip": []string{"198.51.100.0/24", "2001:db8::/32"}, "action": "allow"},
		map[string]any{"type": "any", "action": "block"})
	cases := []struct {
		name    string
		site    int
		token   string
		header  map[string]string
		status  int
		message string // part of the one-line body of a refusal
	}{
		{name: "RS256", token: valid, status: 200},
		{name: "ES256", token: mint(t, jwt.SigningMethodES256, s.ec, "k-ec", claims(nil)), status: 200},
		{name: "EdDSA", token: mint(t, jwt.SigningMethodEdDSA, s.ed, "k-ed", claims(nil)), status: 200},
		{name: "kid in the claims", token: mint(t, jwt.SigningMethodES256, s.ec, "", claims(jwt.MapClaims{"kid": "k-ec"})), status: 200},
		{name: "expired", token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", claims(jwt.MapClaims{"exp": time.Now().Add(-2 * time.Minute).Unix()})), status: 401, message: "expired"},
		{name: "expired within leeway", token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", claims(jwt.MapClaims{"exp": time.Now().Add(-20 * time.Second).Unix()})), status: 200},
		{name: "not yet valid", token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", claims(jwt.MapClaims{"nbf": time.Now().Add(2 * time.Minute).Unix()})), status: 401},
		{name: "other video not packaged", token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", claims(jwt.MapClaims{"sub": "other"})), status: 404},
		{name: "sub not a video id", token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", claims(jwt.MapClaims{"sub": "../demo"})), status: 401},
		{name: "unknown kid", token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-nope", claims(nil)), status: 401},
		{name: "no kid", token: mint(t, jwt.SigningMethodRS256, s.rsa, "", claims(nil)), status: 401},
		{name: "tampered payload", token: tamper(t, mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", claims(jwt.MapClaims{"downloadable": false})), claims(nil)), status: 401},
		{name: "tampered signature", token: valid[:len(valid)-4] + flip(valid[len(valid)-4:]), status: 401},
		{name: "alg none", token: mint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "k-rsa", claims(nil)), status: 401},
		{name: "HS256 with the public key as secret", token: mint(t, jwt.SigningMethodHS256, s.rsaPubPEM, "k-rsa", claims(nil)), status: 401},
		{name: "RS256 token naming the EC key", token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-ec", claims(nil)), status: 401},
		{name: "ES256 token naming the RSA key", token: mint(t, jwt.SigningMethodES256, s.ec, "k-rsa", claims(nil)), status: 401},
		{name: "downloadable missing", token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", claims(jwt.MapClaims{"downloadable": nil})), status: 403, message: "download"},
		{name: "downloadable false", token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", claims(jwt.MapClaims{"downloadable": false})), status: 403, message: "download"},
		{name: "downloadable as a string", token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", claims(jwt.MapClaims{"downloadable": "true"})), status: 401},
		{name: "six rules", token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", rules(anyAllow, anyAllow, anyAllow, anyAllow, anyAllow, anyAllow)), status: 401},
		{name: "unknown rule type", token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", rules(map[string]any{"type": "ip.asn", "action": "allow"})), status: 401},
		{name: "ip allowed", token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", onlyDocNet), header: map[string]string{"X-Forwarded-For": "198.51.100.7"}, status: 200},
		{name: "ip blocked", token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", onlyDocNet), header: map[string]string{"X-Forwarded-For": "203.0.113.9"}, status: 403, message: "access rules"},
		{name: "ipv6 allowed", token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", onlyDocNet), header: map[string]string{"X-Forwarded-For": "2001:db8::5"}, status: 200},
		{name: "ipv6 blocked", token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", onlyDocNet), header: map[string]string{"X-Forwarded-For": "2001:218::1"}, status: 403},
		{name: "country blocked (GeoIP)", token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", gbBlock), header: map[string]string{"X-Forwarded-For": "81.2.69.160"}, status: 403},
		{name: "other country (GeoIP)", token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", gbBlock), header: map[string]string{"X-Forwarded-For": "89.160.20.115"}, status: 200},
		{name: "unknown country matches no rule", token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", gbBlock), status: 200},
		{name: "spoofed X-Forwarded-For from an untrusted client", site: direct, token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", onlyDocNet), header: map[string]string{"X-Forwarded-For": "198.51.100.7"}, status: 403},
		{name: "country blocked (header)", site: direct, token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", gbBlock), header: map[string]string{"X-Country": "GB"}, status: 403},
		{name: "other country (header)", site: direct, token: mint(t, jwt.SigningMethodRS256, s.rsa, "k-rsa", gbBlock), header: map[string]string{"X-Country": "SE"}, status: 200},
		{name: "garbage token", token: "a.b.c", status: 401},
		{name: "plain id of a private video", token: "demo", status: 401, message: "signed URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port := proxied
			if c.site != 0 {
				port = c.site
			}
			code, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/%s/downloads/default.mp4", port, c.token), c.header)
			if code != c.status {
				t.Fatalf("status %d (%s), want %d", code, firstLine(body), c.status)
			}
			if strings.Contains(body, c.token) && c.token != "demo" {
				t.Errorf("the answer echoes the token")
			}
			if c.status >= 400 && (!strings.Contains(body, c.message) || strings.Count(strings.TrimSpace(body), "\n") > 0) {
				t.Errorf("body %q: want one line containing %q", body, c.message)
			}
		})
	}

	t.Run("POST token", func(t *testing.T) {
		req, _ := http.NewRequest("POST", e.base+"/a/stream/demo/token", strings.NewReader(
			`{"downloadable": true, "exp": `+fmt.Sprint(time.Now().Add(10*time.Minute).Unix())+`,
			  "accessRules": [{"type": "ip.src", "ip": ["198.51.100.0/24"], "action": "allow"}, {"type": "any", "action": "block"}]}`))
		req.Header.Set("Authorization", "Bearer "+apiToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env struct {
			Result struct {
				Token string `json:"token"`
			} `json:"result"`
			Success bool `json:"success"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || resp.StatusCode != 200 || !env.Success {
			t.Fatalf("POST token: %d %v %+v", resp.StatusCode, err, env)
		}
		url := e.base + "/" + env.Result.Token + "/downloads/default.mp4"
		if code, body := get(t, url, map[string]string{"X-Forwarded-For": "198.51.100.1"}); code != 200 {
			t.Errorf("issued token, allowed address: %d %s", code, firstLine(body))
		}
		if code, _ := get(t, url, map[string]string{"X-Forwarded-For": "192.0.2.1"}); code != 403 {
			t.Errorf("issued token, other address: %d, want 403", code)
		}
		// Parsed by an outside verifier with the public key: RS256, the kid, the claims.
		parsed, err := jwt.Parse(env.Result.Token, func(tok *jwt.Token) (any, error) { return s.rsa.Public(), nil },
			jwt.WithValidMethods([]string{"RS256"}))
		if err != nil || parsed.Header["kid"] != "k-rsa" {
			t.Errorf("outside verification: %v, header %v", err, parsed.Header)
		}
	})
}

var anyAllow = map[string]any{"type": "any", "action": "allow"}

// flip changes every character of s, keeping it base64url.
func flip(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
	}
	return string(b)
}

func get(t *testing.T, url string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == 200 {
		return 200, ""
	}
	return resp.StatusCode, string(b)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
