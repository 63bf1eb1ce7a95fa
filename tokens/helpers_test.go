package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test keys, made once per test binary.
type testKeys struct {
	rsa, ec, ed     *Key // private keys with kids "rsa", "ec", "ed"
	rsa2, ec2, ed2  *Key // other keys of each type (attackers), kids "rsa2", …
	rsa1024, ecP384 crypto.Signer
}

var keysOnce = sync.OnceValue(func() *testKeys {
	must := func(k crypto.Signer, err error) crypto.Signer {
		if err != nil {
			panic(err)
		}
		return k
	}
	mk := func(id string, s crypto.Signer) *Key { return &Key{ID: id, Public: s.Public(), Private: s} }
	ed := func() crypto.Signer {
		_, p, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return p
	}
	tk := &testKeys{
		rsa:     mk("rsa", must(rsa.GenerateKey(rand.Reader, 2048))),
		ec:      mk("ec", must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))),
		ed:      mk("ed", ed()),
		rsa2:    mk("rsa2", must(rsa.GenerateKey(rand.Reader, 2048))),
		ec2:     mk("ec2", must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))),
		ed2:     mk("ed2", ed()),
		rsa1024: must(rsa.GenerateKey(rand.Reader, 1024)),
		ecP384:  must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)),
	}
	return tk
})

func publicOnly(k *Key) *Key { return &Key{ID: k.ID, Public: k.Public} }

// fixedNow sets the clock seam to t for the test.
func fixedNow(t testing.TB, at time.Time) *time.Time {
	t.Helper()
	cur := at
	old := now
	now = func() time.Time { return cur }
	t.Cleanup(func() { now = old })
	return &cur
}

var t0 = time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jsonSeg(t testing.TB, v any) string {
	t.Helper()
	if s, ok := v.(string); ok {
		return b64([]byte(s))
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

// craft builds a token from header and claims (values, or raw JSON strings) signed by sign.
func craft(t testing.TB, header, claims any, sign func(input string) []byte) string {
	t.Helper()
	input := jsonSeg(t, header) + "." + jsonSeg(t, claims)
	var sig []byte
	if sign != nil {
		sig = sign(input)
	}
	return input + "." + b64(sig)
}

func signRS256(k crypto.Signer) func(string) []byte {
	return func(in string) []byte {
		h := sha256.Sum256([]byte(in))
		s, err := rsa.SignPKCS1v15(rand.Reader, k.(*rsa.PrivateKey), crypto.SHA256, h[:])
		if err != nil {
			panic(err)
		}
		return s
	}
}

func signPS256(k crypto.Signer) func(string) []byte {
	return func(in string) []byte {
		h := sha256.Sum256([]byte(in))
		s, err := rsa.SignPSS(rand.Reader, k.(*rsa.PrivateKey), crypto.SHA256, h[:], nil)
		if err != nil {
			panic(err)
		}
		return s
	}
}

func signES256(k crypto.Signer) func(string) []byte {
	return func(in string) []byte {
		h := sha256.Sum256([]byte(in))
		r, s, err := ecdsa.Sign(rand.Reader, k.(*ecdsa.PrivateKey), h[:])
		if err != nil {
			panic(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

func signEdDSA(k crypto.Signer) func(string) []byte {
	return func(in string) []byte { return ed25519.Sign(k.(ed25519.PrivateKey), []byte(in)) }
}

func signHS256(secret []byte) func(string) []byte {
	return func(in string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		return m.Sum(nil)
	}
}

// signerFor returns the algorithm and signing function of a test key.
func signerFor(k *Key) (string, func(string) []byte) {
	switch k.Alg() {
	case AlgRS256:
		return AlgRS256, signRS256(k.Private)
	case AlgES256:
		return AlgES256, signES256(k.Private)
	default:
		return AlgEdDSA, signEdDSA(k.Private)
	}
}

// hdr is a JWT header for k.
func hdr(k *Key) map[string]any { return map[string]any{"alg": k.Alg(), "typ": "JWT", "kid": k.ID} }

// checkErrMessage checks that err is a refusal safe to show: wraps ErrInvalid, one
// short line, and holds no part of the token.
func checkErrMessage(t testing.TB, err error, token string) {
	t.Helper()
	var ie *invalidError
	if !errors.As(err, &ie) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v (%T) does not wrap ErrInvalid", err, err)
	}
	msg := err.Error()
	if msg == "" || len(msg) > 120 || strings.ContainsAny(msg, "\r\n") {
		t.Fatalf("error message %q is not one short line", msg)
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && strings.Contains(msg, part) {
			t.Fatalf("error message %q echoes the token", msg)
		}
	}
}
