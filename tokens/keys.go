// Package tokens verifies and issues the signed viewer tokens of docs/spec.md §5: JWTs signed
// with RS256, ES256 or EdDSA keys, carrying sub (the video id), kid, exp, nbf,
// downloadable and accessRules; it loads the signing keys (PEM, JWK, JWK set), evaluates
// access rules, and looks up countries in a MaxMind database.
//
// Nothing in this package puts a token or key material into an error message.
package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
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
