package tokens

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary strings to Verify: it must never panic, every refusal
// must wrap ErrInvalid with a short message that does not echo the token, and only
// tokens signed by the test keys (their signed part unchanged) may pass.
func FuzzVerify(f *testing.F) {
	tk := keysOnce()
	at := time.Now()
	yes := true
	var signedParts []string
	for _, k := range []*Key{tk.rsa, tk.ec, tk.ed} {
		for _, r := range []Request{
			{Expires: at.Add(time.Hour), Downloadable: &yes},
			{Expires: at.Add(time.Hour), NotBefore: at.Add(-time.Hour), AccessRules: []Rule{
				{Type: RuleIPSrc, Action: ActionAllow, IP: []string{"203.0.113.0/24", "2001:db8::/32"}},
				{Type: RuleCountry, Action: ActionBlock, Country: []string{"GB"}},
				{Type: RuleAny, Action: ActionBlock},
			}},
		} {
			tok, err := Sign(k, "video1", r)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(tok)
			i := strings.LastIndexByte(tok, '.')
			signedParts = append(signedParts, tok[:i])
			f.Add(tok[:i] + ".")
			f.Add(tok[:i] + "." + b64([]byte("x")))
			f.Add(strings.Replace(tok, "e", "f", 1))
		}
	}
	f.Add(craft(f, map[string]any{"alg": "none", "kid": "rsa"}, claimsAt(at, nil), nil))
	f.Add(craft(f, map[string]any{"alg": "HS256", "kid": "rsa"}, claimsAt(at, nil), signHS256([]byte("k"))))
	f.Add(craft(f, map[string]any{"alg": "RS256", "kid": "ec"}, claimsAt(at, nil), signRS256(tk.rsa.Private)))
	f.Add(craft(f, hdr(tk.ec), claimsAt(at, map[string]any{"downloadable": "true"}), signES256(tk.ec.Private)))
	f.Add("")
	f.Add("..")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")

	v := testVerifier(f, 64)
	f.Fuzz(func(t *testing.T, token string) {
		for _, ver := range []*Verifier{v, v} { // twice: the second may hit the cache
			c, err := ver.Verify(token)
			if err != nil {
				if c != nil {
					t.Fatal("claims with an error")
				}
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v does not wrap ErrInvalid", err)
				}
				msg := err.Error()
				if len(msg) > 120 || strings.ContainsAny(msg, "\r\n") || (len(token) >= 16 && strings.Contains(msg, token)) {
					t.Fatalf("bad message %q", msg)
				}
				continue
			}
			if c == nil || c.Subject == "" {
				t.Fatal("no claims")
			}
			i := strings.LastIndexByte(token, '.')
			found := false
			for _, s := range signedParts {
				found = found || token[:i] == s
			}
			if !found {
				t.Fatalf("forged token accepted: %q", token)
			}
			c.Allow(netip.MustParseAddr("203.0.113.1"), "GB")
		}
	})
}

// FuzzParseKeys: no panic on arbitrary key data.
func FuzzParseKeys(f *testing.F) {
	tk := keysOnce()
	for _, k := range []*Key{tk.rsa, tk.ec, tk.ed} {
		p, _ := k.PEM(true)
		j, _ := k.JWK(true)
		f.Add(p)
		f.Add(j)
	}
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseKeys("k", data)
		if err == nil {
			for _, k := range keys {
				if k.Alg() == "" || k.ID == "" {
					t.Fatal("unusable key accepted")
				}
			}
		}
	})
}

// FuzzRequest: no panic decoding token requests; accepted requests sign.
func FuzzRequest(f *testing.F) {
	f.Add([]byte(`{"exp": 1900000000, "downloadable": true, "accessRules": [{"type":"ip.src","action":"allow","ip":["10.0.0.0/8"]}]}`))
	f.Add([]byte(`{"accessRules": [{"type":"ip.geoip.country","action":"block","country":["gb"]}]}`))
	tk := keysOnce()
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRequest(data)
		if err != nil {
			return
		}
		if !r.Expires.IsZero() && !r.NotBefore.IsZero() && r.NotBefore.Unix() >= r.Expires.Unix() {
			return
		}
		if r.Expires.Unix() < 0 || r.NotBefore.Unix() < 0 {
			return
		}
		if _, err := Sign(tk.ed, "v", r); err != nil {
			t.Fatalf("accepted request does not sign: %v", err)
		}
	})
}
