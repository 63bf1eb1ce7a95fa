package notify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// verifyWebhook checks a delivery's signature and age, and returns its body.
func verifyWebhook(r *http.Request, secret []byte, now time.Time) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	var ts string
	var sigs []string
	for _, part := range strings.Split(r.Header.Get("Webhook-Signature"), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, errors.New("no timestamp")
	}
	if age := now.Sub(time.Unix(t, 0)); age > 5*time.Minute || age < -5*time.Minute {
		return nil, errors.New("timestamp more than 5 minutes away: a replay?")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range sigs {
		if got, err := hex.DecodeString(s); err == nil && hmac.Equal(got, want) {
			return body, nil
		}
	}
	return nil, errors.New("bad signature")
}

// docsPage is docs/webhooks.md.
func docsPage(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../docs/webhooks.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDocsReceiver: docs/webhooks.md holds verifyWebhook verbatim, and its sample
// delivery verifies with the documented secret at its time.
func TestDocsReceiver(t *testing.T) {
	src, err := os.ReadFile("receiver_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fn := regexp.MustCompile(`(?s)// verifyWebhook .*?\n}\n`).Find(src)
	if fn == nil {
		t.Fatal("verifyWebhook not found in receiver_test.go")
	}
	page := docsPage(t)
	if !strings.Contains(page, "```go\n"+string(fn)+"```") {
		t.Error("docs/webhooks.md does not hold verifyWebhook as receiver_test.go has it")
	}
	sig := regexp.MustCompile(`Webhook-Signature: (t=\d+,v1=[0-9a-f]+)\n\n(\{.*\})\n`).FindStringSubmatch(page)
	secret := regexp.MustCompile("notify_secret (whsec-[0-9a-z-]+)").FindStringSubmatch(page)
	if sig == nil || secret == nil {
		t.Fatal("no sample delivery or secret in docs/webhooks.md")
	}
	ts, _ := strconv.ParseInt(strings.TrimPrefix(strings.Split(sig[1], ",")[0], "t="), 10, 64)
	req := httptest.NewRequest("POST", "/hook", strings.NewReader(sig[2]))
	req.Header.Set(SignatureHeader, sig[1])
	if _, err := verifyWebhook(req, []byte(secret[1]), time.Unix(ts, 0).Add(time.Minute)); err != nil {
		t.Errorf("the sample delivery does not verify: %v", err)
	}
	if err := Verify([]byte(secret[1]), sig[1], []byte(sig[2]), time.Unix(ts, 0)); err != nil {
		t.Errorf("the sample delivery does not verify with Verify: %v", err)
	}
}

// TestSignVerify: what Sign makes, verifyWebhook (the docs' receiver) and Verify accept;
// an altered body, another secret, a timestamp more than 5 minutes away either way, and
// a malformed header are refused.
func TestSignVerify(t *testing.T) {
	secret := []byte("0123456789abcdef-secret")
	body := []byte(`{"id":"evt_1","event":"ready"}`)
	now := time.Unix(1_800_000_000, 0)
	check := func(what, header string, b []byte, at time.Time, want error) {
		t.Helper()
		err := Verify(secret, header, b, at)
		if !errors.Is(err, want) {
			t.Errorf("%s: Verify: %v, want %v", what, err, want)
		}
		req := httptest.NewRequest("POST", "/", bytes.NewReader(b))
		req.Header.Set(SignatureHeader, header)
		got, err := verifyWebhook(req, secret, at)
		if (err == nil) != (want == nil) || want == nil && !bytes.Equal(got, b) {
			t.Errorf("%s: verifyWebhook: %v, want ok=%v", what, err, want == nil)
		}
	}
	h := Sign(secret, now, body)
	if !regexp.MustCompile(`^t=1800000000,v1=[0-9a-f]{64}$`).MatchString(h) {
		t.Fatalf("header %q", h)
	}
	// The HMAC over "<t>.<body>", computed here independently.
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("1800000000." + string(body)))
	if want := "t=1800000000,v1=" + hex.EncodeToString(m.Sum(nil)); h != want {
		t.Errorf("Sign: %s, want %s", h, want)
	}
	check("fresh", h, body, now, nil)
	check("4m59s later", h, body, now.Add(5*time.Minute-time.Second), nil)
	check("5m01s later (a replay)", h, body, now.Add(5*time.Minute+time.Second), ErrExpired)
	check("5m01s early", h, body, now.Add(-5*time.Minute-time.Second), ErrExpired)
	check("body altered", h, []byte(`{"id":"evt_1","event":"error"}`), now, ErrSignature)
	check("another secret", Sign([]byte("another-secret-0123"), now, body), body, now, ErrSignature)
	check("re-stamped", strings.Replace(h, "t=1800000000", "t=1800000100", 1), body, now, ErrSignature)
	check("no v1", "t=1800000000", body, now, ErrMalformed)
	check("no t", h[strings.Index(h, "v1"):], body, now, ErrMalformed)
	check("rotation: two v1, one right", h+",v1="+strings.Repeat("00", 32), body, now, nil)
}
