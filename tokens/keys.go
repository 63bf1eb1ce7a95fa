// Package tokens verifies and issues the signed viewer tokens of SPEC §5: JWTs signed
// with RS256, ES256 or EdDSA keys, carrying sub (the video id), kid, exp, nbf,
// downloadable and accessRules; it loads the signing keys (PEM, JWK, JWK set), evaluates
// access rules, and looks up countries in a MaxMind database.
//
// Nothing in this package puts a token or key material into an error message.
package tokens

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"

	jose "github.com/go-jose/go-jose/v4"
)

// The algorithms a key can be used with: exactly one per key type.
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
)

// MinRSABits is the smallest RSA modulus accepted.
const MinRSABits = 2048

// maxKeyFile bounds what LoadKeys reads.
const maxKeyFile = 1 << 20

// maxKIDLen bounds a key id.
const maxKIDLen = 256

// Key is one configured signing key: a public key, or a private key with its public half.
type Key struct {
	// ID is the key id ("kid") that tokens name the key by.
	ID string
	// Public is *rsa.PublicKey, *ecdsa.PublicKey (P-256) or ed25519.PublicKey.
	Public crypto.PublicKey
	// Private is *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey; nil if the
	// key is public only.
	Private crypto.Signer
}

// Alg is the only JWT algorithm accepted and used with the key: RS256 for RSA keys of
// at least 2048 bits (and an odd public exponent of at least 3), ES256 for ECDSA P-256 keys, EdDSA for Ed25519 keys; "" for any
// other key, which no token can use.
func (k *Key) Alg() string {
	if k == nil {
		return ""
	}
	switch p := k.Public.(type) {
	case *rsa.PublicKey:
		if p != nil && p.N != nil && p.N.BitLen() >= MinRSABits && p.E >= 3 && p.E&1 == 1 {
			return AlgRS256
		}
	case *ecdsa.PublicKey:
		if p != nil && p.Curve == elliptic.P256() {
			return AlgES256
		}
	case ed25519.PublicKey:
		if len(p) == ed25519.PublicKeySize {
			return AlgEdDSA
		}
	}
	return ""
}

// check reports whether k is usable: an id, a supported public key, and a private key
// (if any) that is the public key's other half.
func (k *Key) check() error {
	if k == nil {
		return errors.New("nil key")
	}
	if err := checkKID(k.ID); err != nil {
		return err
	}
	if k.Alg() == "" {
		return fmt.Errorf("key %q: %s", k.ID, describeUnsupported(k.Public))
	}
	if k.Private != nil {
		pub, ok := k.Private.Public().(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !pub.Equal(k.Public) {
			return fmt.Errorf("key %q: the private key does not match the public key", k.ID)
		}
	}
	return nil
}

func checkKID(kid string) error {
	if kid == "" {
		return errors.New("the key has no key id (kid)")
	}
	if len(kid) > maxKIDLen {
		return fmt.Errorf("key id longer than %d bytes", maxKIDLen)
	}
	for _, r := range kid {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return errors.New("key id holds control or invalid characters")
		}
	}
	return nil
}

func describeUnsupported(pub crypto.PublicKey) string {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p == nil || p.N == nil {
			return "empty RSA key"
		}
		if p.E < 3 || p.E&1 == 0 {
			return "RSA public exponent is not supported"
		}
		return fmt.Sprintf("RSA key of %d bits is too small (at least %d)", p.N.BitLen(), MinRSABits)
	case *ecdsa.PublicKey:
		if p == nil || p.Curve == nil {
			return "empty ECDSA key"
		}
		return fmt.Sprintf("ECDSA curve %s is not supported (only P-256, for ES256)", p.Curve.Params().Name)
	case ed25519.PublicKey:
		return "Ed25519 key of the wrong size"
	case nil:
		return "no public key"
	default:
		return fmt.Sprintf("key type %T is not supported (RSA, ECDSA P-256 or Ed25519)", pub)
	}
}

// LoadKeys reads the keys of the file at path; see ParseKeys.
func LoadKeys(kid, path string) ([]*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%s: key file larger than %d bytes", path, maxKeyFile)
	}
	keys, err := ParseKeys(kid, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// ParseKeys reads keys from data, which is one of:
//   - PEM: PKIX ("PUBLIC KEY") or PKCS #1 ("RSA PUBLIC KEY") public keys, PKCS #1
//     ("RSA PRIVATE KEY"), PKCS #8 ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY") private
//     keys, or a "CERTIFICATE" (its public key). Several blocks are allowed as long as
//     they hold one key (a private key and its public half, say): PEM carries no key
//     id, so the key is named kid, which must not be empty;
//   - a JWK (RFC 7517) as JSON, or the standard or URL-safe base64 of that JSON, as
//     hosted video platforms hand keys out; base64 of PEM is read too;
//   - a JWK set, {"keys": [...]}, as JSON or base64.
//
// A JWK's own "kid" wins over the kid argument, which names only the JWKs that carry
// none. Key ids must be unique within data. Keys must be RSA of at least 2048 bits,
// ECDSA P-256 or Ed25519; a JWK's "alg", when present, must be the one the key type is
// used with (RS256, ES256, EdDSA) and its "use", when present, "sig".
//
// Errors say what is wrong without echoing key material.
func ParseKeys(kid string, data []byte) ([]*Key, error) {
	keys, err := parseKeys(kid, data, true)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if err := k.check(); err != nil {
			return nil, err
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("key id %q is used by more than one key", k.ID)
		}
		seen[k.ID] = true
	}
	return keys, nil
}

func parseKeys(kid string, data []byte, allowBase64 bool) ([]*Key, error) {
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) == 0:
		return nil, errors.New("no key data")
	case bytes.Contains(trimmed, []byte("-----BEGIN ")):
		return parsePEM(kid, trimmed)
	case trimmed[0] == '{':
		return parseJWKJSON(kid, trimmed)
	case allowBase64:
		dec, ok := decodeBase64(trimmed)
		if !ok {
			return nil, errors.New("key data is neither PEM, JWK JSON, nor base64 of either")
		}
		keys, err := parseKeys(kid, dec, false)
		if err != nil {
			return nil, fmt.Errorf("base64 key data: %w", err)
		}
		return keys, nil
	default:
		return nil, errors.New("key data is neither PEM nor JWK JSON")
	}
}

// decodeBase64 decodes standard or URL-safe base64, padded or not, ignoring whitespace.
func decodeBase64(b []byte) ([]byte, bool) {
	s := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, string(b))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if d, err := enc.DecodeString(s); err == nil {
			return d, true
		}
	}
	return nil, false
}

// parsePEM reads the PEM blocks of data, which must hold one key (public, private, or
// both halves of one pair).
func parsePEM(kid string, data []byte) ([]*Key, error) {
	var pubs []crypto.PublicKey
	var privs []crypto.Signer
	rest := data
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n++
		if _, encrypted := block.Headers["DEK-Info"]; encrypted || block.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, fmt.Errorf("PEM block %d: encrypted private keys are not supported", n)
		}
		switch block.Type {
		case "PUBLIC KEY":
			pub, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d (PUBLIC KEY): not a valid PKIX public key", n)
			}
			pubs = append(pubs, pub)
		case "RSA PUBLIC KEY":
			pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d (RSA PUBLIC KEY): not a valid PKCS #1 public key", n)
			}
			pubs = append(pubs, pub)
		case "CERTIFICATE":
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d (CERTIFICATE): not a valid certificate", n)
			}
			pubs = append(pubs, cert.PublicKey)
		case "RSA PRIVATE KEY":
			priv, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d (RSA PRIVATE KEY): not a valid PKCS #1 private key", n)
			}
			privs = append(privs, priv)
		case "EC PRIVATE KEY":
			priv, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d (EC PRIVATE KEY): not a valid SEC 1 private key", n)
			}
			privs = append(privs, priv)
		case "PRIVATE KEY":
			priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d (PRIVATE KEY): not a valid PKCS #8 private key", n)
			}
			signer, ok := priv.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("PEM block %d (PRIVATE KEY): key type %T is not supported", n, priv)
			}
			privs = append(privs, signer)
		case "EC PARAMETERS":
			// openssl ecparam writes the curve before the key; the key names it too.
		default:
			return nil, fmt.Errorf("PEM block %d: type %q is not a supported key", n, block.Type)
		}
	}
	if n == 0 {
		return nil, errors.New("no PEM block found")
	}
	if len(pubs)+len(privs) == 0 {
		return nil, errors.New("no key in the PEM data")
	}
	k := &Key{ID: kid}
	if len(privs) > 0 {
		k.Private = privs[0]
		k.Public = privs[0].Public()
	} else {
		k.Public = pubs[0]
	}
	for _, p := range privs[min(1, len(privs)):] {
		if !sameKey(k.Public, p.Public()) {
			return nil, errors.New("the PEM data holds more than one key: give each its own file and key id")
		}
	}
	for _, p := range pubs {
		if !sameKey(k.Public, p) {
			return nil, errors.New("the PEM data holds more than one key: give each its own file and key id")
		}
	}
	if kid == "" {
		return nil, errors.New("a PEM key carries no key id: one must be given")
	}
	return []*Key{k}, nil
}

func sameKey(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// jwk is a JSON Web Key's members, undecoded, to read those this package decides on
// (kid, use, kty, crv, alg) by their exact names: JSON member names are case-sensitive.
type jwk map[string]json.RawMessage

func (j jwk) str(name string) (string, bool, error) {
	raw, ok := j[name]
	if !ok {
		return "", false, nil
	}
	var s string
	if isNull(raw) || json.Unmarshal(raw, &s) != nil {
		return "", true, fmt.Errorf("JWK member %q must be a string", name)
	}
	return s, true, nil
}

func parseJWKJSON(kid string, data []byte) ([]*Key, error) {
	var top jwk
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, errors.New("key data is not valid JSON")
	}
	raw, isSet := top["keys"]
	if !isSet {
		k, err := parseJWK(kid, top, data)
		if err != nil {
			return nil, err
		}
		return []*Key{k}, nil
	}
	var set []json.RawMessage
	if err := json.Unmarshal(raw, &set); err != nil || set == nil {
		return nil, errors.New(`JWK set: "keys" must be an array of JWKs`)
	}
	if len(set) == 0 {
		return nil, errors.New("JWK set holds no key")
	}
	keys := make([]*Key, 0, len(set))
	for i, data := range set {
		var j jwk
		if err := json.Unmarshal(data, &j); err != nil || j == nil {
			return nil, errors.New(`JWK set: "keys" must be an array of JWKs`)
		}
		k, err := parseJWK(kid, j, data)
		if err != nil {
			return nil, fmt.Errorf("JWK set: key %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// parseJWK reads one JWK, j being data's members; its own "kid" wins over kid. The
// key material is go-jose's to read.
func parseJWK(kid string, j jwk, data []byte) (*Key, error) {
	own, hasKID, err := j.str("kid")
	if err != nil {
		return nil, err
	}
	if hasKID {
		kid = own
	}
	if kid == "" {
		return nil, errors.New(`the JWK has no "kid" and no key id was given`)
	}
	if use, ok, err := j.str("use"); err != nil {
		return nil, err
	} else if ok && use != "sig" {
		return nil, fmt.Errorf("JWK %q: use %q is not \"sig\"", kid, use)
	}
	kty, ok, err := j.str("kty")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("JWK %q: \"kty\" is missing", kid)
	}
	crv, _, err := j.str("crv")
	if err != nil {
		return nil, err
	}
	switch {
	case kty == "RSA":
	case kty == "EC" && crv != "P-256":
		return nil, fmt.Errorf("JWK %q: EC curve %q is not supported (only P-256, for ES256)", kid, crv)
	case kty == "OKP" && crv != "Ed25519":
		return nil, fmt.Errorf("JWK %q: OKP curve %q is not supported (only Ed25519, for EdDSA)", kid, crv)
	case kty == "EC", kty == "OKP":
	case kty == "oct":
		return nil, fmt.Errorf("JWK %q: symmetric (oct) keys are not supported: HMAC is never accepted", kid)
	default:
		return nil, fmt.Errorf("JWK %q: key type %q is not supported (RSA, EC or OKP)", kid, kty)
	}
	var jk jose.JSONWebKey
	if err := jk.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("JWK %q: %s", kid, joseError(err))
	}
	k := &Key{ID: kid, Public: jk.Key}
	if priv, ok := jk.Key.(crypto.Signer); ok {
		k.Private, k.Public = priv, priv.Public()
	}
	if priv, ok := k.Private.(*ecdsa.PrivateKey); ok {
		// go-jose does not check that d is the private half of x and y.
		d, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), priv.D.FillBytes(make([]byte, 32)))
		if err != nil || !d.PublicKey.Equal(k.Public) {
			return nil, fmt.Errorf("JWK %q: EC private key does not match x and y", kid)
		}
		k.Private = d
	}
	if err := k.check(); err != nil {
		return nil, err
	}
	if alg, ok, err := j.str("alg"); err != nil {
		return nil, err
	} else if ok && alg != k.Alg() {
		return nil, fmt.Errorf("JWK %q: alg %q is not supported for a %s key (only %s)", kid, alg, kty, k.Alg())
	}
	return k, nil
}

// joseError words a go-jose error without its package prefix.
func joseError(err error) string {
	var b64err base64.CorruptInputError
	if errors.As(err, &b64err) {
		return "a key member is not base64url"
	}
	_, msg, ok := strings.Cut(err.Error(), "go-jose: ")
	if !ok {
		msg = err.Error()
	}
	return msg
}

// GenerateKey makes a new key pair of kind "rsa" (2048 bits, RS256), "ec" (P-256,
// ES256) or "ed25519" (EdDSA) with a random 32-hex-digit key id.
func GenerateKey(kind string) (*Key, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	k := &Key{ID: hex.EncodeToString(id[:])}
	switch strings.ToLower(kind) {
	case "rsa", "rs256":
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		k.Private, k.Public = priv, &priv.PublicKey
	case "ec", "ecdsa", "es256", "p-256", "p256":
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		k.Private, k.Public = priv, &priv.PublicKey
	case "ed25519", "eddsa":
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		k.Private, k.Public = priv, pub
	default:
		return nil, fmt.Errorf("key type %q is not supported: rsa, ec or ed25519", kind)
	}
	return k, nil
}

// PEM encodes the key: the private key as PKCS #8 ("PRIVATE KEY"), or the public key
// as PKIX ("PUBLIC KEY").
func (k *Key) PEM(private bool) ([]byte, error) {
	if private {
		if k.Private == nil {
			return nil, errors.New("the key has no private half")
		}
		der, err := x509.MarshalPKCS8PrivateKey(k.Private)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// JWK encodes the key as a JWK (JSON) with its kid, alg and use "sig": the private key
// (with its public members) or the public key only.
func (k *Key) JWK(private bool) ([]byte, error) {
	switch k.Public.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
	default: // go-jose would write a []byte as a symmetric key
		return nil, errors.New(describeUnsupported(k.Public))
	}
	jk := jose.JSONWebKey{Key: k.Public, KeyID: k.ID, Algorithm: k.Alg(), Use: "sig"}
	if private {
		if k.Private == nil {
			return nil, errors.New("the key has no private half")
		}
		jk.Key = k.Private
	}
	j, err := jk.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("the key cannot be encoded as a JWK: %s", joseError(err))
	}
	return j, nil
}

// JWKBase64 is JWK in standard base64, the form hosted platforms hand keys out in.
func (k *Key) JWKBase64(private bool) (string, error) {
	j, err := k.JWK(private)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(j), nil
}
