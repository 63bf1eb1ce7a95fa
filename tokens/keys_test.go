package tokens

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func pemOf(t testing.TB, typ string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func mustDER(der []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return der
}

func jwkOf(t testing.TB, k *Key, private bool, edit func(map[string]any)) []byte {
	t.Helper()
	j, err := k.JWK(private)
	if err != nil {
		t.Fatal(err)
	}
	if edit == nil {
		return j
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	j, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func selfSigned(t testing.TB, k *Key) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public, k.Private)
	return mustDER(der, err)
}

// TestParseKeysFormats loads keys of each type through every format and checks that
// what comes out verifies what the original signs.
func TestParseKeysFormats(t *testing.T) {
	tk := keysOnce()
	type format struct {
		name    string
		kid     string // argument
		data    []byte
		wantKID string
		private bool
	}
	var cases []struct {
		key *Key
		f   format
	}
	add := func(k *Key, f format) {
		cases = append(cases, struct {
			key *Key
			f   format
		}{k, f})
	}
	for _, k := range []*Key{tk.rsa, tk.ec, tk.ed} {
		pkcs8 := pemOf(t, "PRIVATE KEY", mustDER(x509.MarshalPKCS8PrivateKey(k.Private)))
		pkix := pemOf(t, "PUBLIC KEY", mustDER(x509.MarshalPKIXPublicKey(k.Public)))
		add(k, format{"PEM PKCS8 private", "cfg", pkcs8, "cfg", true})
		add(k, format{"PEM PKIX public", "cfg", pkix, "cfg", false})
		add(k, format{"PEM with text around and CRLF", "cfg", []byte("a comment\r\n" + strings.ReplaceAll(string(pkix), "\n", "\r\n") + "trailer\n"), "cfg", false})
		add(k, format{"PEM private then public of the same pair", "cfg", append(append([]byte{}, pkcs8...), pkix...), "cfg", true})
		add(k, format{"PEM certificate", "cfg", pemOf(t, "CERTIFICATE", selfSigned(t, k)), "cfg", false})
		add(k, format{"base64 of PEM", "cfg", []byte(base64.StdEncoding.EncodeToString(pkix)), "cfg", false})
		pubJWK := jwkOf(t, k, false, nil)
		privJWK := jwkOf(t, k, true, nil)
		add(k, format{"JWK public", "cfg", pubJWK, k.ID, false})
		add(k, format{"JWK private", "cfg", privJWK, k.ID, true})
		add(k, format{"JWK without kid", "cfg", jwkOf(t, k, false, func(m map[string]any) { delete(m, "kid"); delete(m, "alg"); delete(m, "use") }), "cfg", false})
		add(k, format{"JWK std base64", "cfg", []byte(base64.StdEncoding.EncodeToString(privJWK)), k.ID, true})
		add(k, format{"JWK raw url base64 with newline", "", []byte(base64.RawURLEncoding.EncodeToString(pubJWK) + "\n"), k.ID, false})
		add(k, format{"JWK std base64 wrapped at 64", "", wrap(base64.StdEncoding.EncodeToString(pubJWK), 64), k.ID, false})
		add(k, format{"JWK set", "", []byte(`{"keys":[` + string(pubJWK) + `]}`), k.ID, false})
		add(k, format{"JWK set base64", "", []byte(base64.StdEncoding.EncodeToString([]byte(`{"keys":[` + string(privJWK) + `]}`))), k.ID, true})
	}
	add(tk.rsa, format{"PEM PKCS1 private", "cfg", pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(tk.rsa.Private.(*rsa.PrivateKey))), "cfg", true})
	add(tk.rsa, format{"PEM PKCS1 public", "cfg", pemOf(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(tk.rsa.Public.(*rsa.PublicKey))), "cfg", false})
	sec1 := pemOf(t, "EC PRIVATE KEY", mustDER(x509.MarshalECPrivateKey(tk.ec.Private.(*ecdsa.PrivateKey))))
	add(tk.ec, format{"PEM SEC1 private", "cfg", sec1, "cfg", true})
	add(tk.ec, format{"PEM EC PARAMETERS + SEC1", "cfg", append([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"), sec1...), "cfg", true})

	for _, c := range cases {
		t.Run(c.key.Alg()+"/"+c.f.name, func(t *testing.T) {
			keys, err := ParseKeys(c.f.kid, c.f.data)
			if err != nil {
				t.Fatalf("ParseKeys: %v", err)
			}
			if len(keys) != 1 {
				t.Fatalf("got %d keys", len(keys))
			}
			k := keys[0]
			if k.ID != c.f.wantKID {
				t.Errorf("kid %q, want %q", k.ID, c.f.wantKID)
			}
			if k.Alg() != c.key.Alg() {
				t.Errorf("alg %q, want %q", k.Alg(), c.key.Alg())
			}
			if (k.Private != nil) != c.f.private {
				t.Errorf("private: %v, want %v", k.Private != nil, c.f.private)
			}
			if !sameKey(k.Public, c.key.Public) {
				t.Fatal("public key differs")
			}
			// The loaded key verifies what the original signs, and signs if private.
			v, err := NewVerifier([]*Key{k}, 0)
			if err != nil {
				t.Fatal(err)
			}
			orig := *c.key
			orig.ID = k.ID
			tok, err := Sign(&orig, "video1", Request{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(tok); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if k.Private != nil {
				tok, err := Sign(k, "video1", Request{})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := v.Verify(tok); err != nil {
					t.Fatalf("Verify own: %v", err)
				}
			}
		})
	}
}

func wrap(s string, n int) []byte {
	var b bytes.Buffer
	for len(s) > n {
		b.WriteString(s[:n] + "\n")
		s = s[n:]
	}
	b.WriteString(s + "\n")
	return b.Bytes()
}

func TestParseKeysJWKSet(t *testing.T) {
	tk := keysOnce()
	set := `{"keys":[` + string(jwkOf(t, tk.rsa, false, nil)) + "," + string(jwkOf(t, tk.ec, true, nil)) + "," +
		string(jwkOf(t, tk.ed, false, func(m map[string]any) { delete(m, "kid") })) + `]}`
	keys, err := ParseKeys("fallback", []byte(set))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.ID+":"+k.Alg())
	}
	if want := "rsa:RS256 ec:ES256 fallback:EdDSA"; strings.Join(got, " ") != want {
		t.Fatalf("got %v, want %s", got, want)
	}
	if keys[1].Private == nil || keys[0].Private != nil {
		t.Fatal("private halves wrong")
	}
	if _, err := NewVerifier(keys, 10); err != nil {
		t.Fatal(err)
	}
}

func TestLoadKeys(t *testing.T) {
	tk := keysOnce()
	dir := t.TempDir()
	p := filepath.Join(dir, "k.pem")
	pemData, err := tk.ed.PEM(true)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadKeys("kid1", p)
	if err != nil || len(keys) != 1 || keys[0].ID != "kid1" || keys[0].Private == nil {
		t.Fatalf("LoadKeys: %v %v", keys, err)
	}
	if _, err := LoadKeys("kid1", filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file loaded")
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("A"), maxKeyFile+10), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeys("kid1", big); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Fatalf("big file: %v", err)
	}
}

func TestParseKeysErrors(t *testing.T) {
	tk := keysOnce()
	rsa1024 := &Key{ID: "small", Public: tk.rsa1024.Public(), Private: tk.rsa1024}
	p384 := tk.ecP384
	otherEC := tk.ec2.Private.(*ecdsa.PrivateKey)
	rsaPriv := tk.rsa.Private.(*rsa.PrivateKey)
	cases := []struct {
		name, kid string
		data      []byte
		want      string // substring of the error
	}{
		{"empty", "k", nil, "no key data"},
		{"spaces", "k", []byte("  \n"), "no key data"},
		{"junk", "k", []byte("hello world!"), "neither"},
		{"base64 of junk", "k", []byte(base64.StdEncoding.EncodeToString([]byte("hello world"))), "neither"},
		{"bad JSON", "k", []byte(`{"kty":`), "not valid JSON"},
		{"RSA 1024 PEM private", "k", pemOf(t, "PRIVATE KEY", mustDER(x509.MarshalPKCS8PrivateKey(tk.rsa1024))), "too small"},
		{"RSA 1024 PEM public", "k", pemOf(t, "PUBLIC KEY", mustDER(x509.MarshalPKIXPublicKey(tk.rsa1024.Public()))), "too small"},
		{"RSA 1024 JWK", "k", jwkOf(t, rsa1024, false, nil), "too small"},
		{"P-384 PEM", "k", pemOf(t, "PRIVATE KEY", mustDER(x509.MarshalPKCS8PrivateKey(p384))), "P-384"},
		{"P-384 JWK", "k", jwkOf(t, tk.ec, false, func(m map[string]any) { m["crv"] = "P-384" }), "P-384"},
		{"oct JWK", "k", []byte(`{"kty":"oct","k":"c2VjcmV0","kid":"h"}`), "HMAC is never accepted"},
		{"JWK alg HS256", "k", jwkOf(t, tk.rsa, false, func(m map[string]any) { m["alg"] = "HS256" }), "not supported"},
		{"JWK alg RS512", "k", jwkOf(t, tk.rsa, false, func(m map[string]any) { m["alg"] = "RS512" }), "not supported"},
		{"JWK alg ES256 on RSA", "k", jwkOf(t, tk.rsa, false, func(m map[string]any) { m["alg"] = "ES256" }), "not supported"},
		{"JWK use enc", "k", jwkOf(t, tk.ec, false, func(m map[string]any) { m["use"] = "enc" }), "use"},
		{"JWK kty missing", "k", jwkOf(t, tk.ec, false, func(m map[string]any) { delete(m, "kty") }), "kty"},
		{"JWK kty unknown", "k", jwkOf(t, tk.ec, false, func(m map[string]any) { m["kty"] = "XYZ" }), "not supported"},
		{"JWK kid not string", "k", jwkOf(t, tk.ec, false, func(m map[string]any) { m["kid"] = 5 }), "string"},
		{"JWK no kid, none given", "", jwkOf(t, tk.ec, false, func(m map[string]any) { delete(m, "kid") }), "no \"kid\""},
		{"JWK x not base64", "k", jwkOf(t, tk.ec, false, func(m map[string]any) { m["x"] = "!!!" }), "base64url"},
		{"JWK EC point not on curve", "k", jwkOf(t, tk.ec, false, func(m map[string]any) { m["y"] = m["x"] }), "not on declared curve"},
		{"JWK EC d of another key", "k", jwkOf(t, tk.ec, true, func(m map[string]any) {
			d, _ := otherEC.Bytes()
			m["d"] = b64(d)
		}), "does not match"},
		{"JWK Ed25519 d of another key", "k", jwkOf(t, tk.ed, true, func(m map[string]any) {
			m["d"] = b64(tk.ed2.Private.(ed25519.PrivateKey).Seed())
		}), "does not match"},
		{"JWK RSA d wrong", "k", jwkOf(t, tk.rsa, true, func(m map[string]any) { m["d"] = b64(big.NewInt(12345).Bytes()) }), "d does not match"},
		{"JWK RSA private without primes", "k", jwkOf(t, tk.rsa, true, func(m map[string]any) { delete(m, "p"); delete(m, "q") }), "missing P, Q"},
		{"JWK RSA e even", "k", jwkOf(t, tk.rsa, false, func(m map[string]any) { m["e"] = b64([]byte{2}) }), "exponent"},
		{"JWK OKP X25519", "k", jwkOf(t, tk.ed, false, func(m map[string]any) { m["crv"] = "X25519" }), "X25519"},
		{"JWK set empty", "k", []byte(`{"keys":[]}`), "no key"},
		{"JWK set not array", "k", []byte(`{"keys":{}}`), "array"},
		{"JWK set duplicate kid", "k", []byte(`{"keys":[` + string(jwkOf(t, tk.ec, false, nil)) + "," + string(jwkOf(t, tk.ec2, false, func(m map[string]any) { m["kid"] = "ec" })) + `]}`), "more than one key"},
		{"JWK set entry not object", "k", []byte(`{"keys":[1]}`), "array"},
		{"PEM without kid", "", pemOf(t, "PUBLIC KEY", mustDER(x509.MarshalPKIXPublicKey(tk.ec.Public))), "key id"},
		{"PEM two different keys", "k", append(pemOf(t, "PUBLIC KEY", mustDER(x509.MarshalPKIXPublicKey(tk.ec.Public))), pemOf(t, "PUBLIC KEY", mustDER(x509.MarshalPKIXPublicKey(tk.ec2.Public)))...), "more than one key"},
		{"PEM private and foreign public", "k", append(pemOf(t, "PRIVATE KEY", mustDER(x509.MarshalPKCS8PrivateKey(tk.ed.Private))), pemOf(t, "PUBLIC KEY", mustDER(x509.MarshalPKIXPublicKey(tk.ed2.Public)))...), "more than one key"},
		{"PEM encrypted", "k", []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), "encrypted"},
		{"PEM legacy encrypted", "k", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}}), "encrypted"},
		{"PEM unknown type", "k", pemOf(t, "OPENSSH PRIVATE KEY", []byte{1, 2, 3}), "not a supported key"},
		{"PEM corrupt body", "k", pemOf(t, "PUBLIC KEY", []byte{1, 2, 3}), "not a valid PKIX"},
		{"PEM truncated", "k", []byte("-----BEGIN PUBLIC KEY-----\nMFkw"), "no PEM block"},
		{"PEM PKCS1 private corrupt", "k", pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaPriv)[:50]), "not a valid PKCS #1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keys, err := ParseKeys(c.kid, c.data)
			if err == nil {
				t.Fatalf("accepted: %v", keys)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			// No key material in the message: no 12-character run of the input.
			msg := err.Error()
			in := string(c.data)
			for i := 0; i+12 <= len(in); i++ {
				chunk := in[i : i+12]
				if strings.ContainsAny(chunk, " \n\"{}:,-") {
					continue
				}
				if strings.Contains(msg, chunk) {
					t.Fatalf("error %q echoes input %q", msg, chunk)
				}
			}
		})
	}
}

func TestNewVerifierErrors(t *testing.T) {
	tk := keysOnce()
	dup := publicOnly(tk.ec)
	mismatch := &Key{ID: "m", Public: tk.ec.Public, Private: tk.ec2.Private}
	cases := []struct {
		name string
		keys []*Key
	}{
		{"none", nil},
		{"duplicate kid", []*Key{tk.ec, dup}},
		{"duplicate kid across types", []*Key{tk.ec, {ID: "ec", Public: tk.ed.Public}}},
		{"no kid", []*Key{{Public: tk.ec.Public}}},
		{"nil key", []*Key{nil}},
		{"RSA 1024", []*Key{{ID: "s", Public: tk.rsa1024.Public()}}},
		{"P-384", []*Key{{ID: "s", Public: tk.ecP384.Public()}}},
		{"private not matching public", []*Key{mismatch}},
		{"unsupported type", []*Key{{ID: "x", Public: []byte("secret")}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewVerifier(c.keys, 10); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestGenerateKeyEncode(t *testing.T) {
	for _, kind := range []string{"rsa", "ec", "ed25519"} {
		t.Run(kind, func(t *testing.T) {
			k, err := GenerateKey(kind)
			if err != nil {
				t.Fatal(err)
			}
			if len(k.ID) != 32 || k.Alg() == "" || k.Private == nil {
				t.Fatalf("key %q alg %q", k.ID, k.Alg())
			}
			var loaded []*Key
			for _, private := range []bool{true, false} {
				p, err := k.PEM(private)
				if err != nil {
					t.Fatal(err)
				}
				wantType := "PUBLIC KEY"
				if private {
					wantType = "PRIVATE KEY"
				}
				if b, _ := pem.Decode(p); b == nil || b.Type != wantType {
					t.Fatalf("PEM type wrong: %s", p)
				}
				j, err := k.JWK(private)
				if err != nil {
					t.Fatal(err)
				}
				var m map[string]any
				if err := json.Unmarshal(j, &m); err != nil {
					t.Fatal(err)
				}
				if m["kid"] != k.ID || m["alg"] != k.Alg() || m["use"] != "sig" {
					t.Fatalf("JWK members: %v", m)
				}
				if _, hasD := m["d"]; hasD != private {
					t.Fatalf("JWK private %v has d %v", private, hasD)
				}
				jb, err := k.JWKBase64(private)
				if err != nil {
					t.Fatal(err)
				}
				for _, data := range [][]byte{p, j, []byte(jb)} {
					ks, err := ParseKeys(k.ID, data)
					if err != nil {
						t.Fatal(err)
					}
					if (ks[0].Private != nil) != private || ks[0].ID != k.ID || !sameKey(ks[0].Public, k.Public) {
						t.Fatal("round trip lost something")
					}
					loaded = append(loaded, ks[0])
				}
			}
			pub := loaded[len(loaded)-1]
			v, err := NewVerifier([]*Key{pub}, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range loaded[:3] {
				tok, err := Sign(l, "vid", Request{})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := v.Verify(tok); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := (&Key{ID: "p", Public: k.Public}).PEM(true); err == nil {
				t.Fatal("PEM(private) of a public key")
			}
			if _, err := (&Key{ID: "p", Public: k.Public}).JWK(true); err == nil {
				t.Fatal("JWK(private) of a public key")
			}
		})
	}
	if _, err := GenerateKey("dsa"); err == nil {
		t.Fatal("dsa accepted")
	}
}

var _ crypto.Signer = ed25519.PrivateKey(nil)
