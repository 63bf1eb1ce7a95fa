package tokens

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

func testVerifier(t testing.TB, cacheSize int) *Verifier {
	t.Helper()
	tk := keysOnce()
	v, err := NewVerifier([]*Key{publicOnly(tk.rsa), publicOnly(tk.ec), publicOnly(tk.ed)}, cacheSize)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// claims is a typical claim set at t0.
func claimsAt(at time.Time, extra map[string]any) map[string]any {
	c := map[string]any{"sub": "video1", "exp": at.Add(time.Hour).Unix(), "nbf": at.Add(-time.Minute).Unix(), "downloadable": true}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func TestVerify(t *testing.T) {
	tk := keysOnce()
	fixedNow(t, t0)
	v := testVerifier(t, 0)

	good := func(k *Key, extra map[string]any) string {
		_, sign := signerFor(k)
		return craft(t, hdr(k), claimsAt(t0, extra), sign)
	}
	rsaPubPEM := pemOf(t, "PUBLIC KEY", mustDER(x509.MarshalPKIXPublicKey(tk.rsa.Public)))
	valid := good(tk.rsa, nil)
	parts := strings.Split(valid, ".")
	tamperedPayload := parts[0] + "." + jsonSeg(t, claimsAt(t0, map[string]any{"sub": "video2"})) + "." + parts[2]
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	sig[10] ^= 0x01 // a flipped bit of the decoded signature: canonical base64url again
	tamperedSig := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
	edValid := good(tk.ed, nil)
	edParts := strings.Split(edValid, ".")
	attackerJWK := json.RawMessage(jwkOf(t, tk.ed2, false, nil))
	rules := func(n int) []any {
		var r []any
		for i := 0; i < n; i++ {
			r = append(r, map[string]any{"type": "ip.src", "action": "allow", "ip": []string{fmt.Sprintf("10.0.%d.0/24", i)}})
		}
		return r
	}
	rule := func(r map[string]any) map[string]any { return map[string]any{"accessRules": []any{r}} }

	cases := []struct {
		name  string
		token string
		want  error // nil: valid
		check func(*Claims) error
	}{
		{"valid RS256", valid, nil, func(c *Claims) error {
			if c.Subject != "video1" || c.KeyID != "rsa" || !c.Downloadable || !c.Expires.Equal(t0.Add(time.Hour)) || !c.NotBefore.Equal(t0.Add(-time.Minute)) {
				return fmt.Errorf("claims %+v", c)
			}
			return nil
		}},
		{"valid ES256", good(tk.ec, nil), nil, nil},
		{"valid EdDSA", edValid, nil, nil},
		{"no exp, no nbf", good(tk.ec, map[string]any{"exp": nil, "nbf": nil}), nil, func(c *Claims) error {
			if !c.Expires.IsZero() || !c.NotBefore.IsZero() {
				return fmt.Errorf("times %v %v", c.Expires, c.NotBefore)
			}
			return nil
		}},
		{"fractional exp", good(tk.ec, map[string]any{"exp": float64(t0.Unix()) + 0.5}), nil, nil},
		{"expired", good(tk.rsa, map[string]any{"exp": t0.Add(-61 * time.Second).Unix()}), errExpired, nil},
		{"expired long ago", good(tk.rsa, map[string]any{"exp": 0}), errExpired, nil},
		{"expired within leeway", good(tk.rsa, map[string]any{"exp": t0.Add(-59 * time.Second).Unix()}), nil, nil},
		// RFC 7519 §4.1.4: the time must be before exp (+ leeway); jwt's validator.
		{"expired exactly leeway ago", good(tk.rsa, map[string]any{"exp": t0.Add(-60 * time.Second).Unix()}), errExpired, nil},
		{"not yet valid", good(tk.ec, map[string]any{"nbf": t0.Add(61 * time.Second).Unix()}), errNotYet, nil},
		{"nbf within leeway", good(tk.ec, map[string]any{"nbf": t0.Add(59 * time.Second).Unix()}), nil, nil},
		{"unknown kid", craft(t, map[string]any{"alg": "RS256", "kid": "nope"}, claimsAt(t0, nil), signRS256(tk.rsa.Private)), errUnknownKID, nil},
		{"no kid", craft(t, map[string]any{"alg": "RS256"}, claimsAt(t0, nil), signRS256(tk.rsa.Private)), errNoKID, nil},
		{"empty kid", craft(t, map[string]any{"alg": "RS256", "kid": ""}, claimsAt(t0, nil), signRS256(tk.rsa.Private)), errNoKID, nil},
		{"kid not a string", craft(t, map[string]any{"alg": "RS256", "kid": 1}, claimsAt(t0, nil), signRS256(tk.rsa.Private)), errKIDType, nil},
		{"kid in claims", craft(t, map[string]any{"alg": "ES256"}, claimsAt(t0, map[string]any{"kid": "ec"}), signES256(tk.ec.Private)), nil, func(c *Claims) error {
			if c.KeyID != "ec" {
				return fmt.Errorf("kid %q", c.KeyID)
			}
			return nil
		}},
		{"kid in header and claims, equal", craft(t, hdr(tk.ed), claimsAt(t0, map[string]any{"kid": "ed"}), signEdDSA(tk.ed.Private)), nil, nil},
		{"kid in header and claims differ", craft(t, hdr(tk.ed), claimsAt(t0, map[string]any{"kid": "ec"}), signEdDSA(tk.ed.Private)), errKIDMismatch, nil},
		{"kid claim not a string", craft(t, map[string]any{"alg": "ES256"}, claimsAt(t0, map[string]any{"kid": []int{1}}), signES256(tk.ec.Private)), errKIDType, nil},
		{"tampered payload", tamperedPayload, errBadSignature, nil},
		{"tampered signature", tamperedSig, errBadSignature, nil},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(good(tk.rsa, map[string]any{"sub": "x"}), ".")[2], errBadSignature, nil},
		{"signed by another key of the same type", craft(t, hdr(tk.rsa), claimsAt(t0, nil), signRS256(tk.rsa2.Private)), errBadSignature, nil},
		{"EdDSA signed by another key", craft(t, hdr(tk.ed), claimsAt(t0, nil), signEdDSA(tk.ed2.Private)), errBadSignature, nil},
		{"attacker key in jwk header", craft(t, map[string]any{"alg": "EdDSA", "kid": "ed", "jwk": attackerJWK}, claimsAt(t0, nil), signEdDSA(tk.ed2.Private)), errBadSignature, nil},
		{"empty signature", parts[0] + "." + parts[1] + ".", errBadSignature, nil},
		{"ES256 short signature", craft(t, hdr(tk.ec), claimsAt(t0, nil), func(in string) []byte { return signES256(tk.ec.Private)(in)[:63] }), errBadSignature, nil},
		{"alg none", craft(t, map[string]any{"alg": "none", "kid": "rsa"}, claimsAt(t0, nil), nil), errAlgUnknown, nil},
		{"alg None", craft(t, map[string]any{"alg": "None", "kid": "rsa"}, claimsAt(t0, nil), nil), errAlgUnknown, nil},
		{"alg none with signature", craft(t, map[string]any{"alg": "none", "kid": "ed"}, claimsAt(t0, nil), signEdDSA(tk.ed.Private)), errAlgUnknown, nil},
		{"alg missing", craft(t, map[string]any{"kid": "rsa"}, claimsAt(t0, nil), signRS256(tk.rsa.Private)), errAlgUnknown, nil},
		{"alg not a string", craft(t, map[string]any{"alg": 256, "kid": "rsa"}, claimsAt(t0, nil), signRS256(tk.rsa.Private)), errAlgUnknown, nil},
		{"HS256 with RSA public key PEM as secret", craft(t, map[string]any{"alg": "HS256", "kid": "rsa", "typ": "JWT"}, claimsAt(t0, nil), signHS256(rsaPubPEM)), errAlgUnknown, nil},
		{"HS256 with RSA public key DER as secret", craft(t, map[string]any{"alg": "HS256", "kid": "rsa"}, claimsAt(t0, nil), signHS256(mustDER(x509.MarshalPKIXPublicKey(tk.rsa.Public)))), errAlgUnknown, nil},
		{"HS512", craft(t, map[string]any{"alg": "HS512", "kid": "ec"}, claimsAt(t0, nil), signHS256([]byte("x"))), errAlgUnknown, nil},
		{"PS256 with the RSA key", craft(t, map[string]any{"alg": "PS256", "kid": "rsa"}, claimsAt(t0, nil), signPS256(tk.rsa.Private)), errAlgUnknown, nil},
		{"RS512", craft(t, map[string]any{"alg": "RS512", "kid": "rsa"}, claimsAt(t0, nil), signRS256(tk.rsa.Private)), errAlgUnknown, nil},
		{"RS256 token, kid of the EC key", craft(t, map[string]any{"alg": "RS256", "kid": "ec"}, claimsAt(t0, nil), signRS256(tk.rsa.Private)), errAlg, nil},
		{"ES256 token, kid of the RSA key", craft(t, map[string]any{"alg": "ES256", "kid": "rsa"}, claimsAt(t0, nil), signES256(tk.ec.Private)), errAlg, nil},
		{"EdDSA token, kid of the EC key", craft(t, map[string]any{"alg": "EdDSA", "kid": "ec"}, claimsAt(t0, nil), signEdDSA(tk.ed.Private)), errAlg, nil},
		{"ES256 token, kid of the Ed25519 key", craft(t, map[string]any{"alg": "ES256", "kid": "ed"}, claimsAt(t0, nil), signES256(tk.ec.Private)), errAlg, nil},
		{"crit header", craft(t, map[string]any{"alg": "EdDSA", "kid": "ed", "crit": []string{"b64"}, "b64": false}, claimsAt(t0, nil), signEdDSA(tk.ed.Private)), errCrit, nil},
		{"missing downloadable", good(tk.ec, map[string]any{"downloadable": nil}), nil, func(c *Claims) error {
			if c.Downloadable {
				return errors.New("downloadable true")
			}
			return nil
		}},
		{"downloadable false", good(tk.ec, map[string]any{"downloadable": false}), nil, func(c *Claims) error {
			if c.Downloadable {
				return errors.New("downloadable true")
			}
			return nil
		}},
		{"downloadable string true", good(tk.ec, map[string]any{"downloadable": "true"}), errDownloadable, nil},
		{"downloadable 1", good(tk.ec, map[string]any{"downloadable": 1}), errDownloadable, nil},
		{"downloadable null", `{"alg":"ES256","kid":"ec"}`, nil, nil}, // replaced below
		{"Downloadable in other case is another claim", good(tk.ec, map[string]any{"downloadable": nil, "Downloadable": true}), nil, func(c *Claims) error {
			if c.Downloadable {
				return errors.New("case-folded claim name accepted")
			}
			return nil
		}},
		{"SUB in other case is no sub", good(tk.ec, map[string]any{"sub": nil, "SUB": "video1"}), errNoSub, nil},
		{"sub missing", good(tk.ec, map[string]any{"sub": nil}), errNoSub, nil},
		{"sub empty", good(tk.ec, map[string]any{"sub": ""}), errNoSub, nil},
		{"sub a number", good(tk.ec, map[string]any{"sub": 12}), errSubType, nil},
		{"sub an array", good(tk.ec, map[string]any{"sub": []string{"video1"}}), errSubType, nil},
		{"exp a string", good(tk.ec, map[string]any{"exp": fmt.Sprint(t0.Add(time.Hour).Unix())}), errExp, nil},
		{"exp huge", good(tk.ec, map[string]any{"exp": 1e300}), errExp, nil},
		{"exp bool", good(tk.ec, map[string]any{"exp": true}), errExp, nil},
		{"nbf a string", good(tk.ec, map[string]any{"nbf": "0"}), errNbf, nil},
		{"5 rules", good(tk.ec, map[string]any{"accessRules": rules(5)}), nil, func(c *Claims) error {
			if len(c.AccessRules) != 5 {
				return fmt.Errorf("%d rules", len(c.AccessRules))
			}
			return nil
		}},
		{"6 rules", good(tk.ec, map[string]any{"accessRules": rules(6)}), ErrInvalid, nil},
		{"accessRules null", good(tk.ec, map[string]any{"accessRules": json.RawMessage("null")}), nil, nil},
		{"accessRules an object", good(tk.ec, map[string]any{"accessRules": map[string]any{"type": "any", "action": "allow"}}), ErrInvalid, nil},
		{"rule unknown type", good(tk.ec, rule(map[string]any{"type": "ip.asn", "action": "allow"})), ErrInvalid, nil},
		{"rule unknown action", good(tk.ec, rule(map[string]any{"type": "any", "action": "deny"})), ErrInvalid, nil},
		{"rule action missing", good(tk.ec, rule(map[string]any{"type": "any"})), ErrInvalid, nil},
		{"rule type in other case", good(tk.ec, rule(map[string]any{"Type": "any", "action": "block"})), ErrInvalid, nil},
		{"rule unknown member", good(tk.ec, rule(map[string]any{"type": "any", "action": "block", "asn": []int{1}})), ErrInvalid, nil},
		{"rule bad CIDR", good(tk.ec, rule(map[string]any{"type": "ip.src", "action": "allow", "ip": []string{"10.0.0.0/33"}})), ErrInvalid, nil},
		{"rule bad IP", good(tk.ec, rule(map[string]any{"type": "ip.src", "action": "allow", "ip": []string{"10.0.0.256"}})), ErrInvalid, nil},
		{"rule IP with zone", good(tk.ec, rule(map[string]any{"type": "ip.src", "action": "allow", "ip": []string{"fe80::1%eth0"}})), ErrInvalid, nil},
		{"rule ip a string", good(tk.ec, rule(map[string]any{"type": "ip.src", "action": "allow", "ip": "10.0.0.1"})), ErrInvalid, nil},
		{"rule ip empty", good(tk.ec, rule(map[string]any{"type": "ip.src", "action": "allow", "ip": []string{}})), ErrInvalid, nil},
		{"rule ip with country", good(tk.ec, rule(map[string]any{"type": "ip.src", "action": "allow", "ip": []string{"10.0.0.1"}, "country": []string{"GB"}})), ErrInvalid, nil},
		{"rule country 3 letters", good(tk.ec, rule(map[string]any{"type": "ip.geoip.country", "action": "allow", "country": []string{"GBR"}})), ErrInvalid, nil},
		{"rule country digits", good(tk.ec, rule(map[string]any{"type": "ip.geoip.country", "action": "allow", "country": []string{"G1"}})), ErrInvalid, nil},
		{"rule country not strings", good(tk.ec, rule(map[string]any{"type": "ip.geoip.country", "action": "allow", "country": []int{1}})), ErrInvalid, nil},
		{"rule any with ip", good(tk.ec, rule(map[string]any{"type": "any", "action": "allow", "ip": []string{"10.0.0.1"}})), ErrInvalid, nil},
		{"rule null", good(tk.ec, map[string]any{"accessRules": []any{nil}}), ErrInvalid, nil},
		{"rules ok: IPv6, CIDR, mapped, lower-case country", good(tk.ec, map[string]any{"accessRules": []any{
			map[string]any{"type": "ip.src", "action": "allow", "ip": []string{"2001:db8::/32", "203.0.113.7", "::ffff:198.51.100.0/120"}},
			map[string]any{"type": "ip.geoip.country", "action": "block", "country": []string{"gb", "Us"}},
			map[string]any{"type": "any", "action": "allow"},
		}}), nil, nil},
		{"payload not an object", craft(t, hdr(tk.ec), "[1,2]", signES256(tk.ec.Private)), errMalformed, nil},
		{"payload null", craft(t, hdr(tk.ec), "null", signES256(tk.ec.Private)), errNoSub, nil},
		{"payload not JSON", craft(t, hdr(tk.ec), "sub=video1", signES256(tk.ec.Private)), errMalformed, nil},
		{"header not JSON", b64([]byte("{alg")) + "." + parts[1] + "." + parts[2], errMalformed, nil},
		{"padded segment", parts[0] + "=." + parts[1] + "." + parts[2], errMalformed, nil},
		{"standard base64 alphabet", strings.Join([]string{base64.StdEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"ed"}`)) + "+/", edParts[1], edParts[2]}, "."), errMalformed, nil},
		{"non-canonical trailing bits", edParts[0] + "." + edParts[1] + "." + nonCanonical(edParts[2]), errMalformed, nil},
		{"two segments", parts[0] + "." + parts[1], errMalformed, nil},
		{"four segments", valid + "." + parts[2], errMalformed, nil},
		{"empty", "", errEmpty, nil},
		{"dots", "..", errMalformed, nil},
		{"junk", "hello", errMalformed, nil},
		{"non-base64", "!!!.???.***", errMalformed, nil},
		{"spaces", " " + valid, errMalformed, nil},
		{"too long", strings.Repeat("a", MaxTokenLen+1), errTooLong, nil},
		{"long but allowed", parts[0] + "." + strings.Repeat("A", MaxTokenLen-len(parts[0])-len(parts[2])-2) + "." + parts[2], nil, nil}, // replaced below
		{"NUL bytes", "\x00.\x00.\x00", errMalformed, nil},
		{"unicode", "é.ü.ß", errMalformed, nil},
	}
	// Cases that need the verifier's error rather than a constructed token:
	for i := range cases {
		switch cases[i].name {
		case "downloadable null":
			cases[i].token = good(tk.ec, map[string]any{"downloadable": json.RawMessage("null")})
			cases[i].want = errDownloadable
		case "long but allowed":
			// A valid claim set padded with a long ignored claim to just under the limit.
			c := claimsAt(t0, nil)
			c["pad"] = ""
			base := len(good(tk.ed, c))
			c["pad"] = strings.Repeat("x", (MaxTokenLen-base)*3/4)
			cases[i].token = good(tk.ed, c)
			if len(cases[i].token) > MaxTokenLen || len(cases[i].token) < MaxTokenLen-8 {
				t.Fatalf("long token of %d bytes", len(cases[i].token))
			}
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := v.Verify(c.token)
			if c.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got == nil || got.Subject == "" {
					t.Fatal("no claims")
				}
				if c.check != nil {
					if err := c.check(got); err != nil {
						t.Fatal(err)
					}
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			if got != nil {
				t.Fatal("claims with an error")
			}
			checkErrMessage(t, err, c.token)
			if c.want != ErrInvalid && err != c.want {
				t.Fatalf("error %q, want %q", err, c.want)
			}
		})
	}
}

// nonCanonical changes the unused low bits of the last base64url character.
func nonCanonical(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[last^1])
}

func TestVerifyErrorMessagesOfRules(t *testing.T) {
	tk := keysOnce()
	fixedNow(t, t0)
	v := testVerifier(t, 0)
	tok := craft(t, hdr(tk.ec), claimsAt(t0, map[string]any{"accessRules": []any{
		map[string]any{"type": "any", "action": "allow"},
		map[string]any{"type": "ip.src", "action": "allow", "ip": []string{"10.0.0.0/33"}},
	}}), signES256(tk.ec.Private))
	_, err := v.Verify(tok)
	if err == nil || !strings.Contains(err.Error(), "access rule 2") || !strings.Contains(err.Error(), "CIDR") {
		t.Fatalf("error %v", err)
	}
	checkErrMessage(t, err, tok)
}

func TestSignRoundTrip(t *testing.T) {
	tk := keysOnce()
	fixedNow(t, t0)
	v := testVerifier(t, 0)
	yes, no := true, false
	for _, k := range []*Key{tk.rsa, tk.ec, tk.ed} {
		for _, r := range []Request{
			{},
			{Expires: t0.Add(time.Hour), Downloadable: &yes},
			{Expires: t0.Add(time.Hour), NotBefore: t0.Add(-time.Second), Downloadable: &no, AccessRules: []Rule{
				{Type: RuleIPSrc, Action: ActionAllow, IP: []string{"203.0.113.0/24", "2001:db8::1"}},
				{Type: RuleCountry, Action: ActionBlock, Country: []string{"gb"}},
				{Type: RuleAny, Action: ActionBlock},
			}},
		} {
			t.Run(k.Alg(), func(t *testing.T) {
				tok, err := Sign(k, "video-1_A", r)
				if err != nil {
					t.Fatal(err)
				}
				// Header as documented.
				var h map[string]any
				hb, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
				if err := json.Unmarshal(hb, &h); err != nil || h["alg"] != k.Alg() || h["kid"] != k.ID || h["typ"] != "JWT" || len(h) != 3 {
					t.Fatalf("header %v", h)
				}
				var cl map[string]any
				cb, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
				if err := json.Unmarshal(cb, &cl); err != nil {
					t.Fatal(err)
				}
				if _, has := cl["downloadable"]; has != (r.Downloadable != nil) {
					t.Fatalf("claims %v", cl)
				}
				if _, has := cl["exp"]; has != !r.Expires.IsZero() {
					t.Fatalf("claims %v", cl)
				}
				c, err := v.Verify(tok)
				if err != nil {
					t.Fatal(err)
				}
				if c.Subject != "video-1_A" || c.KeyID != k.ID || c.Downloadable != (r.Downloadable != nil && *r.Downloadable) ||
					!c.Expires.Equal(r.Expires) || !c.NotBefore.Equal(r.NotBefore) || len(c.AccessRules) != len(r.AccessRules) {
					t.Fatalf("claims %+v for %+v", c, r)
				}
				if len(r.AccessRules) == 3 {
					if !c.Allow(netip.MustParseAddr("203.0.113.9"), "GB") || c.Allow(netip.MustParseAddr("198.51.100.1"), "gb") || c.Allow(netip.MustParseAddr("198.51.100.1"), "") {
						t.Fatal("rules lost in the round trip")
					}
				}
			})
		}
	}
}

func TestSignErrors(t *testing.T) {
	tk := keysOnce()
	fixedNow(t, t0)
	rules6 := make([]Rule, 6)
	for i := range rules6 {
		rules6[i] = Rule{Type: RuleAny, Action: ActionAllow}
	}
	cases := []struct {
		name string
		key  *Key
		sub  string
		r    Request
	}{
		{"public key only", publicOnly(tk.ec), "v", Request{}},
		{"nil key", nil, "v", Request{}},
		{"no subject", tk.ec, "", Request{}},
		{"6 rules", tk.ec, "v", Request{AccessRules: rules6}},
		{"bad rule type", tk.ec, "v", Request{AccessRules: []Rule{{Type: "asn", Action: ActionAllow}}}},
		{"bad rule action", tk.ec, "v", Request{AccessRules: []Rule{{Type: RuleAny, Action: "deny"}}}},
		{"bad CIDR", tk.ec, "v", Request{AccessRules: []Rule{{Type: RuleIPSrc, Action: ActionAllow, IP: []string{"1.2.3.0/40"}}}}},
		{"bad country", tk.ec, "v", Request{AccessRules: []Rule{{Type: RuleCountry, Action: ActionAllow, Country: []string{"GBR"}}}}},
		{"nbf after exp", tk.ec, "v", Request{Expires: t0, NotBefore: t0.Add(time.Second)}},
		{"exp out of range", tk.ec, "v", Request{Expires: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"RSA 1024", &Key{ID: "s", Public: tk.rsa1024.Public(), Private: tk.rsa1024}, "v", Request{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if tok, err := Sign(c.key, c.sub, c.r); err == nil {
				t.Fatalf("signed %s", tok)
			}
		})
	}
}

func TestRequestJSON(t *testing.T) {
	ok := []struct {
		body string
		want func(Request) bool
	}{
		{`{}`, func(r Request) bool { return r.Expires.IsZero() && r.Downloadable == nil && r.AccessRules == nil }},
		{`{"exp": 1900000000, "nbf": 1800000000.5, "downloadable": true}`, func(r Request) bool {
			return r.Expires.Unix() == 1900000000 && r.NotBefore.Unix() == 1800000000 && *r.Downloadable
		}},
		{`{"downloadable": false, "accessRules": [{"type":"ip.geoip.country","action":"allow","country":["gb"]},{"type":"any","action":"block"}]}`, func(r Request) bool {
			return !*r.Downloadable && len(r.AccessRules) == 2 && ruleAllows(r.AccessRules[0], netip.Addr{}, "GB")
		}},
		{`{"accessRules": null}`, func(r Request) bool { return r.AccessRules == nil }},
	}
	for _, c := range ok {
		var r Request
		if err := json.Unmarshal([]byte(c.body), &r); err != nil {
			t.Fatalf("%s: %v", c.body, err)
		}
		if !c.want(r) {
			t.Fatalf("%s: got %+v", c.body, r)
		}
	}
	bad := []string{
		`{"downloadable": "true"}`,
		`{"downloadable": null}`,
		`{"exp": "1900000000"}`,
		`{"nbf": true}`,
		`{"exp": 1e300}`,
		`{"sub": "other"}`,
		`{"Downloadable": true}`,
		`{"accesRules": []}`,
		`{"accessRules": [{"type":"any","action":"allow"},{"type":"any","action":"allow"},{"type":"any","action":"allow"},{"type":"any","action":"allow"},{"type":"any","action":"allow"},{"type":"any","action":"allow"}]}`,
		`{"accessRules": [{"type":"ip.src","action":"allow","ip":["300.1.1.1"]}]}`,
		`{"accessRules": [{"type":"ip.src","action":"permit","ip":["1.1.1.1"]}]}`,
		`{"accessRules": {}}`,
		`[]`,
		`null`,
		`"x"`,
	}
	for _, b := range bad {
		var r Request
		if err := json.Unmarshal([]byte(b), &r); err == nil {
			t.Errorf("%s accepted: %+v", b, r)
		}
	}
	// The lead's handler decodes with a json.Decoder that disallows unknown fields.
	dec := json.NewDecoder(strings.NewReader(`{"exp": 1900000000, "bogus": 1}`))
	dec.DisallowUnknownFields()
	var r Request
	if err := dec.Decode(&r); err == nil {
		t.Fatal("unknown member accepted through a Decoder")
	}
	if r, err := ParseRequest([]byte("  \n")); err != nil || !r.Expires.IsZero() {
		t.Fatalf("empty body: %v", err)
	}
	if _, err := ParseRequest([]byte(`{"downloadable":"yes"}`)); err == nil {
		t.Fatal("bad body accepted")
	}
	// Rules decoded on their own (the CLI's --access-rules) are strict too.
	var rules []Rule
	if err := json.Unmarshal([]byte(`[{"type":"ip.src","action":"allow","ip":["10.0.0.0/8"],"extra":1}]`), &rules); err == nil {
		t.Fatal("unknown rule member accepted")
	}
	if err := json.Unmarshal([]byte(`[{"type":"ip.src","action":"allow","ip":["10.0.0.0/8"]}]`), &rules); err != nil || !rules[0].compiled {
		t.Fatalf("rules: %v", err)
	}
}

// ruleAllows reports whether r, compiled from JSON, matches and allows.
func ruleAllows(r Rule, ip netip.Addr, country string) bool {
	return r.compiled && r.matches(ip.Unmap(), country) && r.Action == ActionAllow
}

func TestVerifyConcurrent(t *testing.T) {
	tk := keysOnce()
	fixedNow(t, t0)
	v := testVerifier(t, 8)
	var toks []string
	for i := 0; i < 16; i++ {
		tok, err := Sign(tk.ed, fmt.Sprintf("video%d", i), Request{Expires: t0.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				n := (g*7 + i) % len(toks)
				c, err := v.Verify(toks[n])
				if err != nil || c.Subject != fmt.Sprintf("video%d", n) {
					t.Errorf("token %d: %v %v", n, c, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	if _, _, size := v.CacheStats(); size > 8 {
		t.Fatalf("cache holds %d > 8", size)
	}
}
